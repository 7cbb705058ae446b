//! Zarr round trips, xarray-beam's Zarr conformance cases (22, 24–27, 29,
//! 31), verify, append, and bad input.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::json;
use xbeam_chunk::calendar::{Calendar, TimeUnit};
use xbeam_chunk::{Array, Attrs, DType, Dataset, Template, Variable};
use xbeam_io::{
    append_dim, open_zarr, setup_zarr, verify, ChunkSink, ChunkSource, IoError, MemorySource,
    SetupOptions, ZarrFormat, ZarrSink,
};
use xbeam_key::{ChunkSpec, Key};

fn foo_x() -> Dataset {
    // foo(x) = 0, 10, ..., 50 with coordinate x = 0..5
    Dataset::new()
        .with_coord(
            "x",
            Variable::new(["x"], Array::from_1d((0..6i64).collect())).unwrap(),
        )
        .unwrap()
        .with_data_var(
            "foo",
            Variable::new(["x"], Array::from_1d((0..6i64).map(|i| i * 10).collect()))
                .unwrap()
                .with_attr("units", json!("m")),
        )
        .unwrap()
}

fn key_x(x: u64) -> Key {
    Key::new().with_offset("x", x)
}

fn store(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

fn write_all(sink: &ZarrSink, ds: &Dataset, dim: &str, step: u64) {
    let n = ds.sizes()[dim];
    let mut start = 0;
    while start < n {
        let end = (start + step).min(n);
        let chunk = ds.isel([(dim, start..end)]).unwrap();
        sink.write_chunk(&Key::new().with_offset(dim, start), &chunk)
            .unwrap();
        start = end;
    }
}

fn read_all(path: &Path) -> Dataset {
    open_zarr(path)
        .unwrap()
        .read(&IndexMap::new(), None)
        .unwrap()
}

#[test]
fn round_trip_in_both_formats_and_chunkings() {
    let ds = foo_x();
    let dir = tempfile::tempdir().unwrap();
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        for (chunks, expected) in [(3i64, 3u64), (-1, 6)] {
            let path = store(&dir, &format!("{format:?}_{chunks}.zarr"));
            let options = SetupOptions::default()
                .format(format)
                .chunks([("x", chunks)]);
            let sink = setup_zarr(&Template::from(&ds), &path, &options).unwrap();
            write_all(&sink, &ds, "x", expected);
            let source = open_zarr(&path).unwrap();
            assert_eq!(source.format(), format);
            assert_eq!(source.chunks()["x"], expected);
            let back = source.read(&IndexMap::new(), None).unwrap();
            assert!(
                back.identical(&ds),
                "{format:?} chunks {chunks}:\n{back}\nvs\n{ds}"
            );
            assert!(verify(&path).unwrap().problems.is_empty());
        }
    }
}

#[test]
fn case_22_inconsistent_native_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = store(&dir, "mixed.zarr");
    let ds = foo_x()
        .with_data_var(
            "bar",
            Variable::new(["x"], Array::from_1d(vec![1.0f32; 6])).unwrap(),
        )
        .unwrap();
    let options = SetupOptions::default()
        .chunks([("x", 2)])
        .encoding("bar", Attrs::new());
    let _ = setup_zarr(&Template::from(&ds), &path, &options).unwrap();
    // re-chunk bar to 3 by rewriting its metadata the way zarr-python would
    let meta = path.join("bar").join("zarr.json");
    let text = fs::read_to_string(&meta).unwrap().replace(
        "\"chunk_shape\": [\n          2\n        ]",
        "\"chunk_shape\": [3]",
    );
    fs::write(&meta, &text).unwrap();
    let zarr_json = path.join("zarr.json");
    let mut group: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&zarr_json).unwrap()).unwrap();
    group["consolidated_metadata"]["metadata"]["bar"]["chunk_grid"]["configuration"]
        ["chunk_shape"] = json!([3]);
    fs::write(&zarr_json, group.to_string()).unwrap();
    let err = open_zarr(&path).unwrap_err().to_string();
    assert!(
        err.ends_with("inconsistent chunk sizes on Zarr dataset for dimension 'x': {2, 3}"),
        "{err}"
    );
}

#[test]
fn case_25_bad_chunks_are_rejected_before_anything_is_written() {
    let ds = foo_x();
    let dir = tempfile::tempdir().unwrap();
    let path = store(&dir, "bad.zarr");
    let sink = setup_zarr(
        &Template::from(&ds),
        &path,
        &SetupOptions::default().chunks([("x", 4)]),
    )
    .unwrap();
    let missing_before = verify(&path).unwrap().problems;
    assert_eq!(missing_before.len(), 2, "{missing_before:?}");

    // wrong x coordinate
    let mut wrong = ds.isel([("x", 0..4)]).unwrap();
    wrong
        .insert_coord(
            "x",
            Variable::new(["x"], Array::from_1d(vec![9i64, 8, 7, 6])).unwrap(),
        )
        .unwrap();
    let err = sink.write_chunk(&key_x(0), &wrong).unwrap_err().to_string();
    assert!(
        err.starts_with("template and chunk indexes do not match for dim 'x':"),
        "{err}"
    );
    // a new index
    let extra = ds
        .isel([("x", 0..4)])
        .unwrap()
        .with_coord(
            "z",
            Variable::new(["z"], Array::from_1d(vec![1i64])).unwrap(),
        )
        .unwrap();
    let err = sink.write_chunk(&key_x(0), &extra).unwrap_err().to_string();
    assert_eq!(
        err,
        "unexpected new indexes found in chunk but not template: ('z',)"
    );
    // misaligned offset
    let err = sink
        .write_chunk(&key_x(3), &ds.isel([("x", 3..6)]).unwrap())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "chunk offset 3 along dimension 'x' is not a multiple of zarr chunks {'x': 4}"
    );
    // too small, not at the end
    let err = sink
        .write_chunk(&key_x(0), &ds.isel([("x", 0..3)]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("chunk is smaller than zarr chunks {'x': 4} along at least one dimension"),
        "{err}"
    );
    assert_eq!(
        verify(&path).unwrap().problems,
        missing_before,
        "nothing was written"
    );

    // shards
    let path = store(&dir, "sharded.zarr");
    let sink = setup_zarr(
        &Template::from(&ds),
        &path,
        &SetupOptions::default()
            .chunks([("x", 3)])
            .shards([("x", 6)]),
    )
    .unwrap();
    let err = sink
        .write_chunk(&key_x(0), &ds.isel([("x", 0..3)]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("chunk is smaller than zarr shards {'x': 6}"),
        "{err}"
    );
    sink.write_chunk(&key_x(0), &ds).unwrap();
    assert!(read_all(&path).identical(&ds));
    assert_eq!(
        open_zarr(&path).unwrap().chunks()["x"],
        3,
        "inner chunks are reported"
    );
}

#[test]
fn case_26_encoding() {
    let ds = foo_x();
    let dir = tempfile::tempdir().unwrap();
    let path = store(&dir, "enc.zarr");
    let mut enc = Attrs::new();
    enc.insert("dtype".into(), json!("float32"));
    let sink = setup_zarr(
        &Template::from(&ds),
        &path,
        &SetupOptions::default().encoding("foo", enc),
    )
    .unwrap();
    sink.write_chunk(&Key::new(), &ds).unwrap();
    let source = open_zarr(&path).unwrap();
    assert_eq!(source.template().data_vars()["foo"].dtype, DType::F32);
    let back = source.read(&IndexMap::new(), None).unwrap();
    assert_eq!(
        back.data_var("foo")
            .unwrap()
            .data()
            .as_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    );

    let err = setup_zarr(
        &Template::from(&ds),
        &path,
        &SetupOptions::default().encoding("bar", Attrs::new()),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "encoding contains key not present in template: 'bar'"
    );
    let mut chunked = Attrs::new();
    chunked.insert("chunks".into(), json!([3]));
    let err = setup_zarr(
        &Template::from(&ds),
        &path,
        &SetupOptions::default().encoding("foo", chunked),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("encoding for 'foo' includes 'chunks' or 'shards', which must be specified via zarr_chunks or zarr_shards"),
        "{err}"
    );
}

#[test]
fn case_27_shard_sizes() {
    let ds = Dataset::new()
        .with_data_var(
            "foo",
            Variable::new(
                ["x", "y"],
                Array::from_vec(vec![6, 2], vec![1.0f64; 12]).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = store(&dir, "s.zarr");
    let sink = setup_zarr(
        &Template::from(&ds),
        &path,
        &SetupOptions::default()
            .chunks([("x", 1), ("y", 1)])
            .shards([("x", 2)]),
    )
    .unwrap();
    assert_eq!(sink.zarr_shards().unwrap()["x"], 2);
    assert_eq!(sink.zarr_shards().unwrap()["y"], 1);
    let info = open_zarr(&path).unwrap();
    let foo = info.array_info("foo").unwrap();
    assert_eq!(foo.chunks, vec![1, 1]);
    assert_eq!(foo.shards, Some(vec![2, 1]));
    let err = setup_zarr(
        &Template::from(&ds),
        &path,
        &SetupOptions::default()
            .chunks([("x", 2), ("y", 3)])
            .shards([("x", 1), ("y", 1)]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "shard sizes are not all evenly divisible by chunk sizes: shards={'x': 1, 'y': 1}, chunks={'x': 2, 'y': 3}"
    );
    let err = setup_zarr(
        &Template::from(&ds),
        &path,
        &SetupOptions::default()
            .format(ZarrFormat::V2)
            .shards([("x", 2)]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("format 3"), "{err}");
}

#[test]
fn inner_chunks_are_in_c_order_in_a_shard() {
    // 256 inner chunks of different compressed sizes, encoded in parallel:
    // their order in the shard must not depend on which thread finished
    // first (the same data gave different shard files)
    let n = 64usize;
    let values: Vec<f64> = (0..n * n).map(|i| ((i * i) % 977) as f64).collect();
    let ds = Dataset::new()
        .with_data_var(
            "foo",
            Variable::new(["x", "y"], Array::from_vec(vec![n, n], values).unwrap()).unwrap(),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut shards = Vec::new();
    for name in ["a.zarr", "b.zarr"] {
        let path = store(&dir, name);
        let sink = setup_zarr(
            &Template::from(&ds),
            &path,
            &SetupOptions::default()
                .chunks([("x", 4), ("y", 4)])
                .shards([("x", -1), ("y", -1)]),
        )
        .unwrap();
        sink.write_chunk(&Key::new(), &ds).unwrap();
        assert!(read_all(&path).identical(&ds));
        shards.push(fs::read(path.join("foo/c/0/0")).unwrap());
    }
    assert_eq!(shards[0], shards[1]);
    // the index at the end: (offset, length) per inner chunk, then a crc32c
    let index = &shards[0][shards[0].len() - 4 - 256 * 16..shards[0].len() - 4];
    let offsets: Vec<u64> = index
        .chunks(16)
        .map(|e| u64::from_le_bytes(e[..8].try_into().unwrap()))
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
}

#[test]
fn chunks_and_shards_are_chunk_specs_and_must_be_regular() {
    let ds = foo_x();
    let dir = tempfile::tempdir().unwrap();
    let path = store(&dir, "specs.zarr");
    let template = Template::from(&ds);
    // text, ChunkSpec and sizes with -1 say the same
    let sink = setup_zarr(
        &template,
        &path,
        &SetupOptions::default().chunks_str("x=2").unwrap(),
    )
    .unwrap();
    assert_eq!(sink.zarr_chunks()["x"], 2);
    let sink = setup_zarr(
        &template,
        &path,
        &SetupOptions::default().chunks([("x", ChunkSpec::Full)]),
    )
    .unwrap();
    assert_eq!(sink.zarr_chunks()["x"], 6);
    let sink = setup_zarr(
        &template,
        &path,
        &SetupOptions::default()
            .chunks_str("x=1")
            .unwrap()
            .shards_str("x=-1")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(sink.zarr_shards().unwrap()["x"], 6);
    // explicit sizes are fine when they are a regular grid
    let sink = setup_zarr(
        &template,
        &path,
        &SetupOptions::default().chunks_str("x=4,2").unwrap(),
    )
    .unwrap();
    assert_eq!(sink.zarr_chunks()["x"], 4);
    for (options, message) in [
        (
            SetupOptions::default().chunks_str("x=2,4").unwrap(),
            "Zarr chunks must be regular: expected a size or -1 for dimension 'x', found 2,4",
        ),
        (
            SetupOptions::default()
                .chunks([("x", 1)])
                .shards([("x", ChunkSpec::Sizes(vec![3, 2, 1]))]),
            "Zarr shards must be regular: expected a size or -1 for dimension 'x', found 3,2,1",
        ),
        (
            SetupOptions::default().chunks([("x", 0)]),
            "zarr chunks for dimension 'x' must be positive or -1, found 0",
        ),
    ] {
        let err = setup_zarr(&template, &path, &options).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
    // text that is not fixed chunk sizes does not parse
    assert!(SetupOptions::default().chunks_str("x=100MB").is_err());
    assert!(SetupOptions::default().chunks_str("x").is_err());
}

#[test]
fn chunks_are_transposed_to_the_template_order_and_writes_are_idempotent() {
    let data: Vec<f32> = (0..24).map(|i| i as f32).collect();
    let ds = Dataset::new()
        .with_data_var(
            "v",
            Variable::new(
                ["t", "y", "x"],
                Array::from_vec(vec![4, 2, 3], data).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = store(&dir, "t.zarr");
    let sink = setup_zarr(
        &Template::from(&ds),
        &path,
        &SetupOptions::default().chunks([("t", 2)]),
    )
    .unwrap();
    for t in [0u64, 2] {
        let chunk = ds
            .isel([("t", t..t + 2)])
            .unwrap()
            .transpose(&["x", "t", "y"])
            .unwrap();
        sink.write_chunk(&Key::new().with_offset("t", t), &chunk)
            .unwrap();
    }
    assert!(read_all(&path).identical(&ds));
    let file = path.join("v").join("c").join("1").join("0").join("0");
    let first = fs::read(&file).unwrap();
    sink.write_chunk(
        &Key::new().with_offset("t", 2),
        &ds.isel([("t", 2..4)]).unwrap(),
    )
    .unwrap();
    assert_eq!(fs::read(&file).unwrap(), first, "same chunk, same bytes");
}

#[test]
fn verify_lists_chunks_never_written() {
    let ds = foo_x();
    let dir = tempfile::tempdir().unwrap();
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        let path = store(&dir, &format!("{format:?}.zarr"));
        let sink = setup_zarr(
            &Template::from(&ds),
            &path,
            &SetupOptions::default().format(format).chunks([("x", 2)]),
        )
        .unwrap();
        sink.write_chunk(&key_x(0), &ds.isel([("x", 0..2)]).unwrap())
            .unwrap();
        sink.write_chunk(&key_x(4), &ds.isel([("x", 4..6)]).unwrap())
            .unwrap();
        let missing = verify(&path).unwrap().problems;
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(missing[0].array, "foo");
        assert_eq!(missing[0].indices, vec![1]);
        let expected_key = if format == ZarrFormat::V2 { "1" } else { "c/1" };
        assert_eq!(missing[0].key, expected_key);
        // an all-fill chunk is still written, so it is not reported
        let nan = Dataset::new()
            .with_data_var(
                "f",
                Variable::new(["x"], Array::from_1d(vec![f64::NAN; 4])).unwrap(),
            )
            .unwrap();
        let p2 = store(&dir, &format!("{format:?}_nan.zarr"));
        let s2 = setup_zarr(
            &Template::from(&nan),
            &p2,
            &SetupOptions::default().format(format),
        )
        .unwrap();
        s2.write_chunk(&Key::new(), &nan).unwrap();
        assert!(verify(&p2).unwrap().problems.is_empty());
    }
}

fn hourly(start: i64, n: i64) -> Array {
    Array::datetime(
        ndarray::Array1::from_iter(start..start + n).into_dyn(),
        TimeUnit::Hours,
        Calendar::ProlepticGregorian,
    )
}

fn temps(start: i64, n: i64) -> Dataset {
    let values: Vec<f32> = (start * 5..(start + n) * 5)
        .map(|i| i as f32 * 0.5)
        .collect();
    Dataset::new()
        .with_coord("t", Variable::new(["t"], hourly(start, n)).unwrap())
        .unwrap()
        .with_coord(
            "x",
            Variable::new(["x"], Array::from_1d((0..5i64).collect())).unwrap(),
        )
        .unwrap()
        .with_data_var(
            "temp",
            Variable::new(
                ["t", "x"],
                Array::from_vec(vec![n as usize, 5], values).unwrap(),
            )
            .unwrap(),
        )
        .unwrap()
}

#[test]
fn case_31_append_along_time() {
    let dir = tempfile::tempdir().unwrap();
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        let path = store(&dir, &format!("append_{format:?}.zarr"));
        let first = temps(0, 2);
        let sink = setup_zarr(
            &Template::from(&first),
            &path,
            &SetupOptions::default().format(format).chunks([("t", 1)]),
        )
        .unwrap();
        write_all(&sink, &first, "t", 1);
        let more = temps(2, 1);
        let sink = append_dim(&path, "t", more.coord("t").unwrap().data()).unwrap();
        assert_eq!(open_zarr(&path).unwrap().chunks()["t"], 1);
        sink.write_chunk(&Key::new().with_offset("t", 2), &more)
            .unwrap();
        assert!(read_all(&path).identical(&temps(0, 3)), "{format:?}");
        assert!(verify(&path).unwrap().problems.is_empty());

        // overlapping or going backwards is refused, and nothing changes
        let err = append_dim(&path, "t", &hourly(1, 2))
            .unwrap_err()
            .to_string();
        assert!(err.contains("must continue the existing ones"), "{err}");
        assert_eq!(open_zarr(&path).unwrap().template().sizes()["t"], 3);
    }
}

#[test]
fn append_into_a_partial_last_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let path = store(&dir, "partial.zarr");
    let first = temps(0, 3);
    let sink = setup_zarr(
        &Template::from(&first),
        &path,
        &SetupOptions::default().chunks([("t", 2)]),
    )
    .unwrap();
    write_all(&sink, &first, "t", 2);
    let more = temps(3, 3);
    let sink = append_dim(&path, "t", more.coord("t").unwrap().data()).unwrap();
    sink.write_chunk(&Key::new().with_offset("t", 3), &more)
        .unwrap();
    assert!(read_all(&path).identical(&temps(0, 6)));
}

#[test]
fn partial_keys_case_29() {
    let data: Vec<i64> = (0..6).collect();
    let ds = Dataset::new()
        .with_data_var(
            "foo",
            Variable::new(["x", "y"], Array::from_vec(vec![3, 2], data).unwrap()).unwrap(),
        )
        .unwrap()
        .with_coord(
            "bar",
            Variable::new(
                ["x", "y"],
                Array::from_vec(vec![3, 2], vec![1.5f64; 6]).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for key in [
        Key::new().with_offset("x", 0),
        Key::new().with_offset("x", 0).with_offset("y", 0),
    ] {
        let path = store(&dir, &format!("p{}.zarr", key.offsets().len()));
        let sink = setup_zarr(&Template::from(&ds), &path, &SetupOptions::default()).unwrap();
        sink.write_chunk(&key, &ds).unwrap();
        assert!(read_all(&path).identical(&ds));
    }
}

#[test]
fn a_region_read_touches_only_its_chunks() {
    let ds = temps(0, 8);
    let dir = tempfile::tempdir().unwrap();
    let path = store(&dir, "region.zarr");
    let sink = setup_zarr(
        &Template::from(&ds),
        &path,
        &SetupOptions::default().chunks([("t", 2)]),
    )
    .unwrap();
    write_all(&sink, &ds, "t", 2);
    // remove a chunk outside the region: the read must not notice
    fs::remove_file(path.join("temp").join("c").join("0").join("0")).unwrap();
    let source = open_zarr(&path).unwrap();
    let region: IndexMap<String, std::ops::Range<u64>> =
        [("t".to_owned(), 3..6)].into_iter().collect();
    let part = source.read(&region, None).unwrap();
    assert!(part.identical(&ds.isel([("t", 3..6)]).unwrap()));
    let err = source
        .read(&[("t".to_owned(), 0..9)].into_iter().collect(), None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "region 0..9 is out of bounds for dimension 't' of size 8"
    );
}

fn written(dir: &tempfile::TempDir, format: ZarrFormat) -> PathBuf {
    let ds = temps(0, 4);
    let path = store(dir, &format!("w_{format:?}.zarr"));
    let sink = setup_zarr(
        &Template::from(&ds),
        &path,
        &SetupOptions::default().format(format).chunks([("t", 2)]),
    )
    .unwrap();
    write_all(&sink, &ds, "t", 2);
    path
}

/// An error and its causes, as the CLI prints them.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str("\ncaused by: ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn read_err(path: &Path) -> IoError {
    match open_zarr(path) {
        Err(e) => e,
        Ok(source) => source.read(&IndexMap::new(), None).unwrap_err(),
    }
}

#[test]
fn bad_input_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.zarr");
    let err = open_zarr(&missing).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{}: no such file or directory", missing.display())
    );

    let plain = dir.path().join("plain");
    fs::create_dir(&plain).unwrap();
    fs::write(plain.join("notes.txt"), "hi").unwrap();
    let err = open_zarr(&plain).unwrap_err().to_string();
    assert!(
        err.contains("not a Zarr group: expected zarr.json (v3) or .zgroup (v2)"),
        "{err}"
    );
    // setup refuses to replace something that is not a store
    let err = setup_zarr(
        &Template::from(&temps(0, 1)),
        &plain,
        &SetupOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("refusing to overwrite"), "{err}");
    assert!(plain.join("notes.txt").exists());

    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        // truncated chunk
        let path = written(&dir, format);
        let chunk = if format == ZarrFormat::V2 {
            path.join("temp").join("1.0")
        } else {
            path.join("temp/c/1/0")
        };
        let bytes = fs::read(&chunk).unwrap();
        fs::write(&chunk, &bytes[..bytes.len() / 2]).unwrap();
        let err = read_err(&path);
        assert!(
            std::error::Error::source(&err).is_some(),
            "zarrs' error is kept: {err:?}"
        );
        let err = err.to_string();
        assert!(
            err.starts_with(&path.join("temp").display().to_string()),
            "{err}"
        );
        assert!(err.contains("cannot read"), "{err}");
        // corrupt chunk
        fs::write(&chunk, vec![0xAB; bytes.len()]).unwrap();
        let err = read_err(&path).to_string();
        assert!(err.contains("temp"), "{err}");

        // no dimension names
        let path = written(&dir, format);
        let (file, key) = if format == ZarrFormat::V2 {
            (".zmetadata", "_ARRAY_DIMENSIONS")
        } else {
            ("zarr.json", "dimension_names")
        };
        let text = fs::read_to_string(path.join(file))
            .unwrap()
            .replace(&format!("\"{key}\""), "\"renamed\"");
        fs::write(path.join(file), text).unwrap();
        let err = read_err(&path).to_string();
        assert!(err.contains("array has no dimension names"), "{err}");

        // unsupported codec
        let path = written(&dir, format);
        let text = fs::read_to_string(path.join(file))
            .unwrap()
            .replace("\"blosc\"", "\"lzma\"");
        fs::write(path.join(file), text).unwrap();
        // zarrs says which codec: the message names the array, the cause
        // the codec
        let err = read_err(&path);
        assert!(matches!(err, IoError::Zarr { .. }), "{err:?}");
        assert!(err.to_string().ends_with("cannot open array"), "{err}");
        let cause = std::error::Error::source(&err).expect("zarrs' error");
        assert!(
            cause
                .downcast_ref::<zarrs::array::ArrayCreateError>()
                .is_some(),
            "{cause:?}"
        );
        let err = chain(&err);
        assert!(err.contains("lzma"), "{err}");
        assert!(err.starts_with(&path.display().to_string()), "{err}");
    }
}

#[test]
fn packed_and_time_encodings_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::new()
        .with_coord("t", Variable::new(["t"], hourly(10, 4)).unwrap())
        .unwrap()
        .with_data_var(
            "p",
            Variable::new(["t"], Array::from_1d(vec![1.25, f64::NAN, -3.5, 0.0])).unwrap(),
        )
        .unwrap();
    let mut enc = Attrs::new();
    enc.insert("dtype".into(), json!("int16"));
    enc.insert("scale_factor".into(), json!(0.25));
    enc.insert("_FillValue".into(), json!(-1));
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        let path = store(&dir, &format!("packed_{format:?}.zarr"));
        let sink = setup_zarr(
            &Template::from(&ds),
            &path,
            &SetupOptions::default()
                .format(format)
                .encoding("p", enc.clone()),
        )
        .unwrap();
        sink.write_chunk(&Key::new(), &ds).unwrap();
        let source = open_zarr(&path).unwrap();
        let p = &source.template().data_vars()["p"];
        assert_eq!(p.encoding["dtype"], json!("int16"));
        assert_eq!(p.encoding["scale_factor"], json!(0.25));
        let t = &source.template().coords()["t"];
        assert_eq!(
            t.encoding()["units"],
            json!("hours since 1970-01-01 10:00:00")
        );
        assert_eq!(t.encoding()["calendar"], json!("proleptic_gregorian"));
        assert!(source.read(&IndexMap::new(), None).unwrap().identical(&ds));
    }
}

#[test]
fn zarr_and_memory_sources_read_the_same_regions_through_the_traits() {
    let grid: Vec<f32> = (0..24u8).map(f32::from).collect();
    let ds = Dataset::new()
        .with_coord(
            "t",
            Variable::new(["t"], Array::from_1d((0..4i64).collect())).unwrap(),
        )
        .unwrap()
        .with_coord(
            "x",
            Variable::new(["x"], Array::from_1d((0..6i64).map(|i| i * 10).collect())).unwrap(),
        )
        .unwrap()
        .with_data_var(
            "grid",
            Variable::new(["t", "x"], Array::from_vec(vec![4, 6], grid).unwrap()).unwrap(),
        )
        .unwrap()
        .with_data_var(
            "series",
            Variable::new(["t"], Array::from_1d(vec![1i32, 2, 3, 4])).unwrap(),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = store(&dir, "traits.zarr");
    let options = SetupOptions::default().chunks([("t", 2), ("x", 3)]);
    let sink: Arc<dyn ChunkSink> =
        Arc::new(setup_zarr(&Template::from(&ds), &path, &options).unwrap());
    assert_eq!(sink.template().sizes(), Template::from(&ds).sizes());
    for t in [0, 2] {
        for x in [0, 3] {
            let key = Key::new().with_offset("t", t).with_offset("x", x);
            let chunk = ds.isel([("t", t..t + 2), ("x", x..x + 3)]).unwrap();
            sink.write_chunk(&key, &chunk).unwrap();
        }
    }
    // a misaligned chunk is refused through the trait too
    let bad = ds.isel([("t", 1..3)]).unwrap();
    let err = sink
        .write_chunk(&Key::new().with_offset("t", 1), &bad)
        .unwrap_err();
    assert!(err.to_string().contains("not a multiple"), "{err}");
    assert!(verify(&path).unwrap().problems.is_empty());

    let zarr: Arc<dyn ChunkSource> = Arc::new(open_zarr(&path).unwrap());
    let memory: Arc<dyn ChunkSource> = Arc::new(MemorySource::new(ds.clone()));
    assert_eq!(zarr.chunks()["x"], 3);
    assert!(
        zarr.describe().ends_with("traits.zarr"),
        "{}",
        zarr.describe()
    );
    let only_series: xbeam_key::VarSet = ["series".to_owned()].into_iter().collect();
    let region = |ranges: &[(&str, Range<u64>)]| -> IndexMap<String, Range<u64>> {
        ranges
            .iter()
            .map(|(d, r)| ((*d).to_owned(), r.clone()))
            .collect()
    };
    let requests = [
        (region(&[]), None),
        (region(&[("t", 1..3)]), None),
        (region(&[("t", 1..4), ("x", 2..5)]), None),
        (region(&[("t", 0..2), ("x", 2..5)]), Some(&only_series)),
    ];
    for (region, vars) in &requests {
        let from_zarr = zarr.read(region, *vars).unwrap();
        let from_memory = memory.read(region, *vars).unwrap();
        assert!(
            from_zarr.identical(&from_memory),
            "{region:?} {vars:?}:\n{from_zarr}\nvs\n{from_memory}"
        );
    }
    let err = zarr.read(
        &IndexMap::new(),
        Some(&["nope".to_owned()].into_iter().collect()),
    );
    assert!(err
        .unwrap_err()
        .to_string()
        .contains("traits.zarr has no data variable 'nope'"));
}

#[test]
fn file_system_and_json_errors_keep_their_cause() {
    let dir = tempfile::tempdir().unwrap();
    // a file where the store's parent directory should be
    let blocker = dir.path().join("blocker");
    fs::write(&blocker, "not a directory").unwrap();
    let path = blocker.join("out.zarr");
    let err = setup_zarr(&Template::from(&foo_x()), &path, &SetupOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: cannot create the directory", path.display())
    );
    let cause = std::error::Error::source(&err).expect("the file system's error");
    assert!(
        cause.downcast_ref::<std::io::Error>().is_some(),
        "{cause:?}"
    );

    // consolidated metadata that is not JSON
    let ds = foo_x();
    let path = store(&dir, "broken.zarr");
    let options = SetupOptions::default().format(ZarrFormat::V2);
    let sink = setup_zarr(&Template::from(&ds), &path, &options).unwrap();
    write_all(&sink, &ds, "x", 6);
    fs::write(path.join(".zmetadata"), "{not json").unwrap();
    let err = open_zarr(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: invalid JSON", path.join(".zmetadata").display())
    );
    let cause = std::error::Error::source(&err).expect("serde_json's error");
    assert!(
        cause.downcast_ref::<serde_json::Error>().is_some(),
        "{cause:?}"
    );
    assert!(chain(&err).contains("line 1"), "{}", chain(&err));
}

#[test]
fn a_failed_chunk_write_names_the_key_and_keeps_why() {
    let ds = foo_x();
    let dir = tempfile::tempdir().unwrap();
    let path = store(&dir, "nan.zarr");
    let mut encoding = Attrs::new();
    encoding.insert("dtype".into(), json!("int16"));
    let template = Template::from(&ds.astype(DType::F64).unwrap());
    let options = SetupOptions::default()
        .chunks([("x", 3)])
        .encoding("foo", encoding);
    let sink = setup_zarr(&template, &path, &options).unwrap();
    let chunk = ds
        .isel([("x", 0..3)])
        .unwrap()
        .astype(DType::F64)
        .unwrap()
        .map_f64(|_| f64::NAN)
        .unwrap();
    let err = sink.write_chunk(&key_x(0), &chunk).unwrap_err();
    assert!(matches!(err, IoError::WriteChunk { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("failed to write chunk corresponding to key=Key("),
        "{err}"
    );
    let why = chain(&err);
    assert!(
        why.contains("cannot store NaN as int16 without a _FillValue"),
        "{why}"
    );
}

#[test]
fn float_encoded_times_keep_their_fractions_in_data_variables() {
    // 6-hourly times stored as float days (0.25 steps), as xarray writes
    // them with `dtype: float64`: they were refused on write ("not a whole
    // number of days"), and a data variable read back was labelled days
    // while holding finer ticks (info --stats printed the year 2.6e15)
    let dir = tempfile::tempdir().unwrap();
    let hours = [0, 6, 12, 18, i64::MIN, 30];
    let when = Array::datetime(
        ndarray::arr1(&hours).into_dyn(),
        TimeUnit::Hours,
        Calendar::ProlepticGregorian,
    );
    let ds = Dataset::new()
        .with_data_var("when", Variable::new(["t"], when).unwrap())
        .unwrap();
    let mut enc = Attrs::new();
    enc.insert("dtype".into(), json!("float64"));
    enc.insert("units".into(), json!("days since 1970-01-01"));
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        let path = store(&dir, &format!("float_times_{format:?}.zarr"));
        let options = SetupOptions::default()
            .format(format)
            .chunks([("t", 3)])
            .encoding("when", enc.clone());
        let sink = setup_zarr(&Template::from(&ds), &path, &options).unwrap();
        for t in [0, 3] {
            let key = Key::new().with_offset("t", t);
            sink.write_chunk(&key, &ds.isel([("t", t..t + 3)]).unwrap())
                .unwrap();
        }
        let source = open_zarr(&path).unwrap();
        let schema = &source.template().data_vars()["when"];
        assert_eq!(schema.encoding["dtype"], json!("float64"));
        assert_eq!(
            schema.dtype,
            DType::DateTime(TimeUnit::Microseconds, Calendar::ProlepticGregorian)
        );
        // each chunk alone, and the whole: in the template's unit
        for (range, want) in [(0..3, &hours[..3]), (3..6, &hours[3..]), (0..6, &hours[..])] {
            let region: IndexMap<String, Range<u64>> = [("t".to_string(), range)].into();
            let got = source.read(&region, None).unwrap();
            let (ticks, unit, _) = got.data_vars()["when"].data().datetime_ticks().unwrap();
            assert_eq!(unit, TimeUnit::Microseconds);
            let want: Vec<i64> = want
                .iter()
                .map(|&h| if h == i64::MIN { h } else { h * 3_600_000_000 })
                .collect();
            assert_eq!(ticks.iter().copied().collect::<Vec<_>>(), want);
        }
    }
}

/// Chunks from 256 KiB up are written with `O_DIRECT` (padded to the
/// block size, then cut to their length), on disk and on tmpfs
/// (`/dev/shm`, which refuses `O_DIRECT` before Linux 6.6, so there they
/// are written buffered). Either way the files hold exactly the chunk and
/// read back the same, and `sync_store` flushes the store.
#[test]
fn large_chunks_are_written_exactly_on_disk_and_on_tmpfs() {
    let n = 100_003usize; // 800 024 bytes per chunk: not a block multiple
    let values: Vec<f64> = (0..n as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) % 1_000_003) as f64 / 7.0)
        .collect();
    let ds = Dataset::new()
        .with_coord(
            "x",
            Variable::new(["x"], Array::from_1d((0..n as i64).collect())).unwrap(),
        )
        .unwrap()
        .with_data_var("foo", Variable::new(["x"], Array::from_1d(values)).unwrap())
        .unwrap();
    let disk = tempfile::tempdir().unwrap();
    let shm = Path::new("/dev/shm")
        .is_dir()
        .then(|| tempfile::tempdir_in("/dev/shm").unwrap());
    for dir in std::iter::once(&disk).chain(shm.as_ref()) {
        let path = store(dir, "big.zarr");
        let options = SetupOptions::default()
            .format(ZarrFormat::V3)
            .chunks([("x", -1i64)])
            .encoding(
                "foo",
                Attrs::from_iter([("compressors".to_owned(), json!([]))]),
            );
        let sink = setup_zarr(&Template::from(&ds), &path, &options).unwrap();
        write_all(&sink, &ds, "x", n as u64);
        xbeam_io::sync_store(&path).unwrap();
        assert_eq!(
            fs::metadata(path.join("foo/c/0")).unwrap().len(),
            8 * n as u64,
            "{}",
            path.display()
        );
        let back = read_all(&path);
        assert!(back.identical(&ds), "{}", path.display());
    }
}

/// A chunk is written to `<key>.<pid>.<n>.xbeam-partial` and renamed when whole: a
/// finished write leaves no partial file, and a partial file alone (what a
/// killed write leaves) is a missing chunk to `verify`.
#[test]
fn chunks_are_renamed_into_place_and_a_partial_one_is_missing() {
    let ds = foo_x();
    let dir = tempfile::tempdir().unwrap();
    let path = store(&dir, "p.zarr");
    let options = SetupOptions::default()
        .format(ZarrFormat::V3)
        .chunks([("x", 3i64)]);
    let sink = setup_zarr(&Template::from(&ds), &path, &options).unwrap();
    write_all(&sink, &ds, "x", 3);
    let names = || {
        let mut names: Vec<String> = fs::read_dir(path.join("foo/c"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(), ["0", "1"]);
    // a killed write of chunk 1: only its partial file is there
    fs::rename(
        path.join("foo/c/1"),
        path.join(format!("foo/c/1.4711.0{}", xbeam_io::PARTIAL_SUFFIX)),
    )
    .unwrap();
    let missing = verify(&path).unwrap().problems;
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].key, "c/1");
    // writing it again makes it whole; the killed write's own partial file
    // stays beside it (readers ignore it, --overwrite removes it)
    sink.write_chunk(&key_x(3), &ds.isel([("x", 3..6)]).unwrap())
        .unwrap();
    assert!(verify(&path).unwrap().problems.is_empty());
    assert_eq!(names(), ["0", "1", "1.4711.0.xbeam-partial"]);
    assert!(read_all(&path).identical(&ds));
}

/// A store of `n` float32 zeros in one chunk, compressed with `codec`.
fn zeros_store(path: &Path, n: usize, format: ZarrFormat, codec: &serde_json::Value) {
    let ds = Dataset::new()
        .with_data_var(
            "a",
            Variable::new(["x"], Array::from_1d(vec![0f32; n])).unwrap(),
        )
        .unwrap();
    let options = SetupOptions::default().format(format).encoding(
        "a",
        Attrs::from_iter([("compressors".to_owned(), json!([codec]))]),
    );
    let sink = setup_zarr(&Template::from(&ds), path, &options).unwrap();
    sink.write_chunk(&Key::new(), &ds).unwrap();
}

/// A decompression bomb (a chunk that inflates far past the size its
/// array's metadata give it) is an error naming the chunk and both sizes,
/// from the bounded decoder, which stops one byte past the expected size
/// (zarrs' own decoders inflate it whole first): gzip, zlib, zstd and
/// blosc, in both formats.
#[test]
fn decompression_bombs_stop_at_the_chunk_size() {
    let dir = tempfile::tempdir().unwrap();
    let codecs = [
        json!({"id": "gzip", "level": 9}),
        json!({"id": "zlib", "level": 9}),
        json!({"id": "zstd", "level": 19}),
        json!({"id": "blosc", "cname": "lz4", "clevel": 9, "shuffle": 1, "blocksize": 0}),
    ];
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        for codec in &codecs {
            let id = codec["id"].as_str().unwrap();
            let big = dir.path().join(format!("{format:?}_{id}_big.zarr"));
            let small = dir.path().join(format!("{format:?}_{id}_small.zarr"));
            zeros_store(&big, 4 << 20, format, codec);
            zeros_store(&small, 1000, format, codec);
            let key = if format == ZarrFormat::V2 {
                "a/0"
            } else {
                "a/c/0"
            };
            let bomb = fs::read(big.join(key)).unwrap();
            assert!(bomb.len() < 200_000, "{id}: {} bytes", bomb.len());
            fs::write(small.join(key), &bomb).unwrap();
            let e = open_zarr(&small)
                .unwrap()
                .read(&IndexMap::new(), None)
                .unwrap_err();
            let chain = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" / ");
            assert!(
                chain.contains(&format!(
                    "cannot read chunk {key} (expected 4000 bytes once decoded"
                )),
                "{format:?} {id}: {chain}"
            );
            assert!(
                chain.contains(
                    "expected 4000 bytes once decoded (a corrupt chunk or a decompression bomb"
                ),
                "{format:?} {id}: {chain}"
            );
        }
    }
}
