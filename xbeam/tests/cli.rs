//! The `xbeam` binary: the demo runs and checks itself; generate, info and
//! copy give the right stores; bad arguments and unsafe outputs are clear
//! errors with the documented exit codes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn xbeam(args: &[&str]) -> Output {
    xbeam_in(None, args)
}

fn xbeam_in(dir: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xbeam"));
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.args(args).output().expect("the xbeam binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs xbeam and checks it succeeded.
fn ok(args: &[&str]) -> Output {
    let out = xbeam(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    out
}

/// Runs xbeam and checks it failed with `code` and a message containing
/// `fragment`.
fn fails(dir: Option<&Path>, args: &[&str], code: i32, fragment: &str) {
    let out = xbeam_in(dir, args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert!(
        err.contains(fragment),
        "{args:?}: expected {fragment:?} in {err}"
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small generated store: 2 levels, 7 × 12 grid, chunks of 5 hours.
fn small_store(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut args = vec![
        "generate", "--gb", "0.0002", "--nlat", "7", "--nlon", "12", "--levels", "2", "--chunks",
        "time=5", "--out",
    ];
    args.push(s(&path));
    args.extend_from_slice(extra);
    ok(&args);
    path
}

/// Every file of a store and its bytes.
fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// Checks two stores hold the same files: metadata as equal JSON (key
/// order aside), chunks byte for byte. Names the files that differ.
fn assert_same_store(a: &Path, b: &Path) {
    let (fa, fb) = (files(a), files(b));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    let differ: Vec<&PathBuf> = fa
        .iter()
        .filter(|(p, x)| {
            let y = &fb[*p];
            let name = p.file_name().unwrap().to_str().unwrap();
            if name == ".xbeam-manifest" {
                *x != y
            } else if name.starts_with('.') || name == "zarr.json" {
                let parse = |v: &[u8]| serde_json::from_slice::<serde_json::Value>(v).unwrap();
                parse(x) != parse(y)
            } else {
                *x != y
            }
        })
        .map(|(p, _)| p)
        .collect();
    assert!(
        differ.is_empty(),
        "{} and {} differ in {differ:?}",
        a.display(),
        b.display()
    );
}

/// The whole decoded dataset of a store.
fn read_all(path: &Path) -> xbeam::chunk::Dataset {
    xbeam::io::open_zarr(path)
        .unwrap()
        .read(&indexmap::IndexMap::new(), None)
        .unwrap()
}

#[test]
fn demo_splits_rechunks_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let out = xbeam(&[
        "demo",
        "--hours",
        "30",
        "--chunk-hours",
        "7",
        "--gb",
        "0.02",
        "--max-mem",
        "64MiB",
        "--workers",
        "2",
        "--out",
        s(dir.path()),
    ]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        text.contains("== 2. Split into 5 keyed chunks of 7 hours"),
        "{text}"
    );
    assert!(
        text.contains("Key(offsets={'time': 28, 'latitude': 0, 'longitude': 0})  time=2"),
        "{text}"
    );
    assert!(text.contains("identical to the input: yes"), "{text}");
    assert!(
        text.contains(
            "== 7. On files and the engine: 5 pancakes (Zarr) -> 6 pencils (Zarr), 0 chunks missing; identical to the input: yes"
        ),
        "{text}"
    );
    assert!(
        text.contains("Dimensions:       (time: 30, latitude: 19, longitude: 36)"),
        "{text}"
    );
    // step 8, the main job: generate, rechunk under the budget, verify
    assert!(
        text.contains("== 8. The main job: an ERA5-like store of 0.02 GB"),
        "{text}"
    );
    assert!(text.contains("  plan, stage 0: time=24,"), "{text}");
    assert!(
        text.contains("0 chunks missing, statistics of every variable equal to the input's, 2 of 2 sampled pencils identical to the input: yes"),
        "{text}"
    );
    let pencils = xbeam::io::open_zarr(dir.path().join("era5_pencils.zarr")).unwrap();
    assert_eq!(pencils.chunks()["latitude"], 11);
    assert!(
        stderr(&out).contains("xbeam demo: in 0.02 GB"),
        "{}",
        stderr(&out)
    );
    // a second demo into the same --out refuses the stores of the first
    // unless --overwrite, and leaves them as they were
    let again = |extra: &[&str]| {
        let mut args = vec![
            "demo",
            "--hours",
            "30",
            "--gb",
            "0.02",
            "--max-mem",
            "64MiB",
        ];
        args.extend_from_slice(&["--quiet", "--out", s(dir.path())]);
        args.extend_from_slice(extra);
        xbeam(&args)
    };
    let refused = again(&[]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("era5_pancakes.zarr") && stderr(&refused).contains("--overwrite"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        xbeam::io::open_zarr(dir.path().join("era5_pencils.zarr"))
            .unwrap()
            .chunks()["latitude"],
        11
    );
    let replaced = again(&["--overwrite"]);
    assert!(replaced.status.success(), "{}", stderr(&replaced));
}

#[test]
fn bad_arguments_are_clear_errors() {
    let out = xbeam(&["demo", "--hours", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("invalid value '0' for '--hours <HOURS>'"),
        "{err}"
    );

    let out = xbeam(&["frobnicate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("unrecognized subcommand 'frobnicate'"));
}

#[test]
fn generate_then_info_json_with_stats() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("era5.zarr");
    let store_s = store.to_str().unwrap();
    let out = xbeam(&[
        "generate", "--gb", "0.001", "--nlat", "7", "--nlon", "12", "--levels", "2", "--chunks",
        "time=5", "--format", "3", "--out", store_s,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 1e6 bytes / (2 vars × 2 levels × 7 × 12 × 4 bytes) = 744 steps
    let out = xbeam(&["info", "--json", "--stats", store_s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], 3);
    assert_eq!(v["dims"]["time"], 744);
    assert_eq!(v["dims"]["level"], 2);
    let t = &v["data_vars"]["temperature"];
    assert_eq!(t["dtype"], "float32");
    assert_eq!(
        t["dims"],
        serde_json::json!(["time", "level", "latitude", "longitude"])
    );
    assert_eq!(t["chunks"], serde_json::json!([5, 2, 7, 12]));
    assert_eq!(t["attrs"]["units"], "K");
    assert_eq!(t["stats"]["count"], 744 * 2 * 7 * 12);
    assert_eq!(t["stats"]["nan_count"], 0);
    let (lo, hi, mean) = (
        t["stats"]["min"].as_f64().unwrap(),
        t["stats"]["max"].as_f64().unwrap(),
        t["stats"]["mean"].as_f64().unwrap(),
    );
    assert!(
        150.0 < lo && lo < mean && mean < hi && hi < 330.0,
        "{lo} {mean} {hi}"
    );
    let time = &v["coords"]["time"];
    assert_eq!(time["dtype"], "datetime64[ns]");
    assert_eq!(time["calendar"], "proleptic_gregorian");
    assert_eq!(time["stats"]["min"], "2020-01-01T00:00:00");
    assert_eq!(time["stats"]["max"], "2020-01-31T23:00:00");

    let text = xbeam(&["info", store_s]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("Dimensions:  (time: 744, level: 2, latitude: 7, longitude: 12)"),
        "{text}"
    );
    assert!(
        text.contains(
            "temperature  (time, level, latitude, longitude) float32 chunks=(5, 2, 7, 12)"
        ),
        "{text}"
    );
}

#[test]
fn info_on_bad_input_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.zarr");
    let out = xbeam(&["info", s(&missing)]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr(&out),
        format!(
            "error: cannot read {0}\n  caused by: {0}: no such file or directory\n",
            missing.display()
        )
    );
    fails(
        None,
        &["generate", "--out", s(dir.path()), "--chunks", "time"],
        2,
        "expected chunks like time=24",
    );
}

#[test]
fn copy_v2_to_v3_and_back_equals_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_store(dir.path(), "src.zarr", &[]);
    let v3 = dir.path().join("v3.zarr");
    let back = dir.path().join("back.zarr");
    let out = ok(&[
        "copy",
        s(&src),
        s(&v3),
        "--format",
        "3",
        "--codec",
        "zstd",
        "--clevel",
        "7",
    ]);
    let err = stderr(&out);
    assert!(
        err.contains("xbeam copy: in 0.00 GB, out 0.00 GB, ") && err.contains("peak RSS "),
        "{err}"
    );
    let meta = std::fs::read_to_string(v3.join("temperature/zarr.json")).unwrap();
    assert!(
        meta.contains(r#""name": "zstd""#) && meta.contains(r#""level": 7"#),
        "{meta}"
    );
    ok(&["copy", s(&v3), s(&back), "--format", "2", "--codec", "gzip"]);
    let meta = std::fs::read_to_string(back.join("temperature/.zarray")).unwrap();
    assert!(meta.contains(r#""id": "gzip""#), "{meta}");
    let input = read_all(&src);
    assert_eq!(input.sizes()["time"], 149);
    assert!(read_all(&v3).identical(&input));
    assert!(read_all(&back).identical(&input));
    // a plain copy keeps the format and the codec, byte for byte
    let plain = dir.path().join("plain.zarr");
    ok(&["copy", s(&src), s(&plain), "--quiet"]);
    assert_same_store(&plain, &src);
}

#[test]
fn copy_to_multiples_divisors_and_shards_of_the_input_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_store(dir.path(), "src.zarr", &["--format", "3"]);
    let input = read_all(&src);
    for (name, extra, time, lat) in [
        ("multiple", vec!["--chunks", "time=20"], 20, 7),
        ("divisor", vec!["--chunks", "time=1,latitude=3"], 1, 3),
        ("whole", vec!["--chunks", "time=-1"], 149, 7),
        (
            "sharded",
            vec!["--chunks", "time=1", "--shards", "time=10"],
            1,
            7,
        ),
    ] {
        let dst = dir.path().join(format!("{name}.zarr"));
        let mut args = vec!["copy", s(&src), s(&dst), "--quiet"];
        args.extend(extra);
        ok(&args);
        let copy = xbeam::io::open_zarr(&dst).unwrap();
        assert_eq!(copy.chunks()["time"], time, "{name}");
        assert_eq!(copy.chunks()["latitude"], lat, "{name}");
        assert!(read_all(&dst).identical(&input), "{name}");
        assert!(
            xbeam::io::verify(&dst).unwrap().problems.is_empty(),
            "{name}"
        );
    }
    let meta =
        std::fs::read_to_string(dir.path().join("sharded.zarr/temperature/zarr.json")).unwrap();
    assert!(meta.contains("sharding_indexed"), "{meta}");
    fails(
        None,
        &[
            "copy",
            s(&src),
            s(&dir.path().join("x")),
            "--chunks",
            "time=7",
        ],
        2,
        "neither divides the input's chunk 5 nor is a multiple of it",
    );
    fails(
        None,
        &[
            "copy",
            s(&src),
            s(&dir.path().join("x")),
            "--chunks",
            "height=2",
        ],
        2,
        "--chunks names dimension \"height\"",
    );
    fails(
        None,
        &[
            "copy",
            s(&src),
            s(&dir.path().join("x")),
            "--chunks",
            "time=5,10,134",
        ],
        2,
        "--chunks time=5,10,134: Zarr chunks must be regular: expected a size or -1 for dimension 'time', found 5,10,134",
    );
    fails(
        None,
        &[
            "copy",
            s(&src),
            s(&dir.path().join("x")),
            "--chunks",
            "time=0",
        ],
        2,
        "--chunks time=0: zarr chunks for dimension 'time' must be positive or -1, found 0",
    );
    fails(
        None,
        &[
            "copy",
            s(&src),
            s(&dir.path().join("x")),
            "--format",
            "2",
            "--shards",
            "time=10",
        ],
        2,
        "--shards needs --format 3",
    );
    assert!(!dir.path().join("x").exists());
}

#[test]
fn writing_jobs_refuse_unsafe_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_store(dir.path(), "src.zarr", &[]);
    let dst = dir.path().join("dst.zarr");
    ok(&["copy", s(&src), s(&dst), "--quiet"]);
    // a non-empty output needs --overwrite, then a clean store is replaced
    fails(
        None,
        &["copy", s(&src), s(&dst)],
        2,
        "it is not empty (pass --overwrite",
    );
    ok(&[
        "copy",
        s(&src),
        s(&dst),
        "--format",
        "3",
        "--overwrite",
        "--quiet",
    ]);
    assert!(dst.join("zarr.json").exists() && !dst.join(".zgroup").exists());
    // a store holding a file of the user's is never deleted
    std::fs::write(dst.join("temperature/notes.txt"), "mine").unwrap();
    fails(
        None,
        &["copy", s(&src), s(&dst), "--overwrite"],
        2,
        "notes.txt, which is not part of the Zarr store",
    );
    assert!(dst.join("temperature/notes.txt").exists());
    // nor a directory that is not a Zarr store
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("data.csv"), "1,2").unwrap();
    for args in [
        vec!["copy", s(&src), s(&mine), "--overwrite"],
        vec![
            "generate",
            "--gb",
            "0.0001",
            "--out",
            s(&mine),
            "--overwrite",
        ],
    ] {
        fails(
            None,
            &args,
            2,
            "it is not a Zarr store (no .zgroup, .zarray or zarr.json at its root)",
        );
    }
    assert!(mine.join("data.csv").exists());
    // never the working directory, its ancestors, the input or its ancestors
    fails(
        Some(&src),
        &["generate", "--gb", "0.0001", "--out", ".", "--overwrite"],
        2,
        "it is the current directory or one of its ancestors",
    );
    fails(
        Some(&src.join("temperature")),
        &["generate", "--gb", "0.0001", "--out", "..", "--overwrite"],
        2,
        "current directory or one of its ancestors",
    );
    fails(
        None,
        &["copy", s(&src), s(&src), "--overwrite"],
        2,
        "it is the input store or one of its ancestors",
    );
    fails(
        None,
        &["copy", s(&src), s(dir.path()), "--overwrite"],
        2,
        "it is the input store or one of its ancestors",
    );
    fails(
        None,
        &["copy", s(&src), s(&src.join("sub")), "--overwrite"],
        2,
        "inside the input store",
    );
    assert_eq!(read_all(&src).sizes()["time"], 149);
}

#[test]
fn bad_generate_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.zarr");
    for gb in ["0", "-1", "NaN", "inf", "1e400"] {
        let flag = format!("--gb={gb}");
        fails(
            None,
            &["generate", &flag, "--out", s(&out)],
            2,
            "expected a finite number > 0",
        );
    }
    fails(
        None,
        &[
            "generate",
            "--levels",
            "4611686018427387904",
            "--out",
            s(&out),
        ],
        2,
        "--levels",
    );
    fails(
        None,
        &["generate", "--nlat", "0", "--out", s(&out)],
        2,
        "--nlat",
    );
    fails(
        None,
        &["generate", "--workers", "0", "--out", s(&out)],
        2,
        "--workers",
    );
    fails(
        None,
        &["generate", "--max-mem", "12XB", "--out", s(&out)],
        2,
        "expected a size like 256MB or 1GiB",
    );
    fails(
        None,
        &["generate", "--max-mem", "0", "--out", s(&out)],
        2,
        "expected a size from 1MiB",
    );
    fails(
        None,
        &["generate", "--gb", "2e6", "--out", s(&out)],
        2,
        "--gb must be a finite number in (0, 1000000]",
    );
    // a bad chunk name is refused before an existing store is touched
    let keep = small_store(dir.path(), "keep.zarr", &[]);
    fails(
        None,
        &[
            "generate",
            "--chunks",
            "height=3",
            "--overwrite",
            "--out",
            s(&keep),
        ],
        2,
        "--chunks names dimension \"height\"",
    );
    assert_eq!(read_all(&keep).sizes()["time"], 149);
    assert!(!out.exists());
}

#[test]
fn bad_copy_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.zarr");
    let src = small_store(dir.path(), "src.zarr", &[]);
    fails(
        None,
        &["copy", s(&src), s(&out), "--codec", "lz5"],
        2,
        "invalid value 'lz5' for '--codec",
    );
    fails(
        None,
        &[
            "copy",
            s(&src),
            s(&out),
            "--codec",
            "zstd",
            "--clevel",
            "30",
        ],
        2,
        "--clevel 30 is out of range for zstd: expected 1..=22",
    );
    fails(
        None,
        &["copy", s(&src), s(&out), "--clevel", "3"],
        2,
        "--codec",
    );
    fails(
        None,
        &["copy", s(&dir.path().join("none.zarr")), s(&out)],
        3,
        "error: cannot read",
    );
    assert!(!out.exists());
}

#[test]
fn one_worker_and_all_workers_write_identical_stores() {
    let dir = tempfile::tempdir().unwrap();
    let one = small_store(dir.path(), "one.zarr", &["--workers", "1", "--format", "3"]);
    let all = small_store(
        dir.path(),
        "all.zarr",
        &["--max-mem", "64MB", "--format", "3"],
    );
    assert_same_store(&one, &all);
    let (c1, c2) = (dir.path().join("c1.zarr"), dir.path().join("c2.zarr"));
    ok(&[
        "copy",
        s(&one),
        s(&c1),
        "--chunks",
        "time=1",
        "--workers",
        "1",
        "--format",
        "2",
    ]);
    ok(&[
        "copy",
        s(&one),
        s(&c2),
        "--chunks",
        "time=1",
        "--workers",
        "3",
        "--format",
        "2",
    ]);
    let chunks = files(&c1)
        .into_keys()
        .filter(|p| p.starts_with("temperature"))
        .count();
    assert_eq!(chunks, 149 + 2);
    assert_same_store(&c1, &c2);
    // and info --stats gives the same numbers
    let a = ok(&["info", "--json", "--stats", "--workers", "1", s(&c1)]);
    let b = ok(&["info", "--json", "--stats", s(&c1)]);
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&a.stdout).unwrap(),
        serde_json::from_slice(&b.stdout).unwrap(),
    );
    assert_eq!(a["data_vars"], b["data_vars"]);
}

#[test]
fn rechunk_gives_the_target_chunks_and_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_store(dir.path(), "src.zarr", &[]);
    let dst = dir.path().join("dst.zarr");
    // a budget small enough for a multi-stage plan (chunks of 64 kB)
    let out = ok(&[
        "rechunk",
        s(&src),
        s(&dst),
        "--target-chunks",
        "time=-1,latitude=2",
        "--max-mem",
        "1MiB",
        "--workers",
        "2",
    ]);
    let err = stderr(&out);
    assert!(err.contains("xbeam rechunk: in "), "{err}");
    let (a, b) = (read_all(&src), read_all(&dst));
    assert!(a.identical(&b), "the rechunked store holds other data");
    let store = xbeam::io::open_zarr(&dst).unwrap();
    assert_eq!(store.chunks()["time"], 149);
    assert_eq!(store.chunks()["latitude"], 2);
    // not named: kept
    assert_eq!(store.chunks()["longitude"], 12);
    assert_eq!(store.format(), xbeam::io::ZarrFormat::V2);

    // v3 with shards of whole target chunks, one worker: the same data
    let v3 = dir.path().join("v3.zarr");
    ok(&[
        "rechunk",
        s(&src),
        s(&v3),
        "--target-chunks",
        "time=50,level=1",
        "--format",
        "3",
        "--shards",
        "time=100",
        "--workers",
        "1",
        "--quiet",
    ]);
    assert!(read_all(&v3).identical(&a));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(v3.join("temperature/zarr.json")).unwrap()).unwrap();
    assert_eq!(
        meta["chunk_grid"]["configuration"]["chunk_shape"][0], 100,
        "{meta}"
    );
    assert_eq!(
        meta["codecs"][0]["configuration"]["chunk_shape"][0], 50,
        "{meta}"
    );
}

#[test]
fn rechunk_transpose_writes_the_dimension_order_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_store(dir.path(), "src.zarr", &[]);
    let dst = dir.path().join("dst.zarr");
    ok(&[
        "rechunk",
        s(&src),
        s(&dst),
        "--target-chunks",
        "time=-1,latitude=2",
        "--transpose",
        "latitude,longitude,time",
        "--max-mem",
        "1MiB",
        "--quiet",
    ]);
    let (a, b) = (read_all(&src), read_all(&dst));
    // every variable follows the order; `level`, not named, comes last
    let order = ["latitude", "longitude", "time"];
    assert!(b.identical(&a.transpose(&order).unwrap()));
    let dims = b.data_vars()["temperature"].dims().to_vec();
    assert_eq!(dims, ["latitude", "longitude", "time", "level"]);
    assert_ne!(a.data_vars()["temperature"].dims(), dims.as_slice());
    let store = xbeam::io::open_zarr(&dst).unwrap();
    assert_eq!(store.chunks()["latitude"], 2);
    assert_eq!(store.chunks()["time"], 149);
}

#[test]
fn rechunk_dry_run_prints_the_plan_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_store(dir.path(), "src.zarr", &[]);
    let dst = dir.path().join("dst.zarr");
    // the plan of `--target-chunks target --max-mem mem --workers workers`
    let dry_run = |target: &str, mem: &str, workers: &str| -> String {
        let out = ok(&[
            "rechunk",
            s(&src),
            s(&dst),
            "--target-chunks",
            target,
            "--max-mem",
            mem,
            "--workers",
            workers,
            "--dry-run",
        ]);
        assert!(!dst.exists(), "a dry run wrote {}", dst.display());
        String::from_utf8(out.stdout).unwrap()
    };
    let text = dry_run("time=-1,latitude=1,longitude=1", "1MiB", "2");
    for fragment in [
        "on 2 worker(s): 87kB per chunk",
        "rechunk plan: ",
        "source: time=5, level=2, latitude=7, longitude=12",
        "target: time=149, level=2, latitude=1, longitude=1",
        "stage 0: ",
        "predicted peak: ",
    ] {
        assert!(text.contains(fragment), "{fragment:?} not in\n{text}");
    }
    // 100 kB target chunks (one float32 variable) fit a 4 MiB budget's
    // share of 6 workers, not 8
    let text = dry_run("time=-1", "4MiB", "8");
    assert!(
        text.contains("on 6 worker(s) (of 8: larger chunks would not fit): 117kB per chunk"),
        "{text}"
    );
    // a large budget plans chunks of at most CHUNK_MEM_CAP (16 MiB), not
    // 4 GiB / 6
    let text = dry_run("time=-1", "4GiB", "1");
    assert!(text.contains("on 1 worker(s): 17MB per chunk"), "{text}");
}

/// Runs `xbeam rechunk SRC DST EXTRA...`, which must fail with `code` and
/// `fragment` in its message, and checks that DST was not written.
fn refused_rechunk(src: &Path, dst: &Path, extra: &[&str], code: i32, fragment: &str) {
    let mut a = vec!["rechunk", s(src), s(dst)];
    a.extend_from_slice(extra);
    fails(None, &a, code, fragment);
    assert!(!dst.exists(), "{a:?} wrote {}", dst.display());
}

#[test]
fn rechunk_flags_naming_unknown_or_repeated_dimensions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_store(dir.path(), "src.zarr", &[]);
    let dst = dir.path().join("dst.zarr");
    let run = |extra: &[&str], code: i32, fragment: &str| {
        refused_rechunk(&src, &dst, extra, code, fragment);
    };
    run(
        &["--target-chunks", "hour=-1"],
        2,
        "--target-chunks names dimension \"hour\", which",
    );
    run(
        &["--target-chunks", "time=-1", "--transpose", "latitude,lon"],
        2,
        "--transpose names dimension \"lon\", which",
    );
    run(
        &[
            "--target-chunks",
            "time=-1",
            "--format",
            "3",
            "--shards",
            "lat=10",
        ],
        2,
        "--shards names dimension \"lat\", which",
    );
    run(
        &["--target-chunks", "time=-1", "--transpose", "time,time"],
        2,
        "--transpose names dimension \"time\" twice",
    );
}

#[test]
fn bad_rechunk_flags_are_clear_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_store(dir.path(), "src.zarr", &[]);
    let dst = dir.path().join("dst.zarr");
    let run = |extra: &[&str], code: i32, fragment: &str| {
        refused_rechunk(&src, &dst, extra, code, fragment);
    };
    run(
        &["--target-chunks", "time=-1", "--max-mem", "12XB"],
        2,
        "expected a size like 256MB or 1GiB",
    );
    // a target chunk of 372 x 2 x 7 x 12 x 4 bytes (one float32 variable)
    // = 250 kB cannot fit a 1 MiB budget even on one worker (175 kB per
    // chunk); the error says what does
    let big = dir.path().join("big.zarr");
    ok(&[
        "generate",
        "--gb",
        "0.0005",
        "--nlat",
        "7",
        "--nlon",
        "12",
        "--levels",
        "2",
        "--chunks",
        "time=5",
        "--out",
        s(&big),
    ]);
    for fragment in [
        "a target chunk holds 250kB but --max-mem 1.0MB allows 175kB per chunk even on one worker",
        "use --max-mem 1.5MB or more",
    ] {
        fails(
            None,
            &[
                "rechunk",
                s(&big),
                s(&dst),
                "--target-chunks",
                "time=-1",
                "--max-mem",
                "1MiB",
                "--workers",
                "8",
            ],
            2,
            fragment,
        );
        assert!(!dst.exists(), "a refused rechunk wrote {}", dst.display());
    }
    run(
        &["--target-chunks", "time=-1", "--shards", "time=100"],
        2,
        "--shards needs --format 3",
    );
    // an existing output needs --overwrite; a directory that is not a Zarr
    // store is refused even with it
    std::fs::create_dir(&dst).unwrap();
    std::fs::write(dst.join("notes.txt"), "mine").unwrap();
    fails(
        None,
        &["rechunk", s(&src), s(&dst), "--target-chunks", "time=-1"],
        2,
        "it is not empty (pass --overwrite",
    );
    fails(
        None,
        &[
            "rechunk",
            s(&src),
            s(&dst),
            "--target-chunks",
            "time=-1",
            "--overwrite",
        ],
        2,
        "it is not a Zarr store",
    );
    assert!(dst.join("notes.txt").exists());
}

#[test]
fn climatology_and_stats_write_what_they_say() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_store(dir.path(), "src.zarr", &[]);
    let clim = dir.path().join("clim.zarr");
    let out = ok(&[
        "climatology",
        s(&src),
        s(&clim),
        "--groupby",
        "time.hour",
        "--stat",
        "mean,max",
    ]);
    assert!(
        stderr(&out).contains("xbeam climatology: in "),
        "{}",
        stderr(&out)
    );
    let c = read_all(&clim);
    assert_eq!(c.sizes()["hour"], 24);
    let v = c.data_var("temperature_max").unwrap();
    assert_eq!(v.dims(), ["hour", "level", "latitude", "longitude"]);
    // the maximum over hour 0 is the largest of the input's hour-0 values
    let a = read_all(&src);
    let t = a.data_var("temperature").unwrap().data().to_f64().unwrap();
    let want = (0..a.sizes()["time"] as usize)
        .step_by(24)
        .map(|i| t[[i, 1, 2, 3]])
        .fold(f64::MIN, f64::max);
    assert_eq!(v.data().to_f64().unwrap()[[0, 1, 2, 3]], want);
    let stats = dir.path().join("stats.zarr");
    ok(&[
        "stats",
        s(&src),
        s(&stats),
        "--over",
        "time,latitude",
        "--weights",
        "latitude=cos",
        "--quiet",
    ]);
    let st = read_all(&stats);
    let m = st.data_var("temperature").unwrap();
    assert_eq!(m.dims(), ["level", "longitude"]);
    assert_eq!(m.dtype(), xbeam::chunk::DType::F64);
    // resample to 6 hours: the mean of each 6 steps
    let six = dir.path().join("six.zarr");
    let out = ok(&["resample", s(&src), s(&six), "--time", "6h"]);
    assert!(
        stderr(&out).contains("xbeam resample: in "),
        "{}",
        stderr(&out)
    );
    let r = read_all(&six);
    let n = a.sizes()["time"];
    assert_eq!(r.sizes()["time"], n.div_ceil(6));
    let mean = r.data_var("temperature").unwrap().data().to_f64().unwrap();
    let want = (6..12).map(|i| t[[i, 0, 1, 2]]).sum::<f64>() / 6.0;
    assert!(
        (mean[[1, 0, 1, 2]] - want).abs() < 1e-3,
        "{} vs {want}",
        mean[[1, 0, 1, 2]]
    );
    // WeatherBench 2's smoothed climatology
    let wb = dir.path().join("wb.zarr");
    ok(&[
        "climatology",
        s(&src),
        s(&wb),
        "--groupby",
        "time.hour,time.dayofyear",
        "--window",
        "61",
        "--stat",
        "mean,std",
        "--quiet",
    ]);
    let w = read_all(&wb);
    let v = w.data_var("temperature_std").unwrap();
    assert_eq!(
        v.dims(),
        ["hour", "dayofyear", "level", "latitude", "longitude"]
    );
    assert!(v.attrs()["cell_methods"]
        .as_str()
        .unwrap()
        .contains("61-day triangular window"));
}

#[test]
fn bad_climatology_and_stats_flags_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_store(dir.path(), "src.zarr", &[]);
    let out = dir.path().join("out.zarr");
    let (src_s, out_s) = (s(&src), s(&out));
    let clim = |rest: &[&'static str]| [&["climatology", src_s, out_s, "--groupby"], rest].concat();
    let stats = |rest: &[&'static str]| [&["stats", src_s, out_s, "--over"], rest].concat();
    #[rustfmt::skip]
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (clim(&["time.fortnight"]), "unknown grouper \"time.fortnight\""),
        (clim(&["when.month"]), "names coordinate \"when\""),
        (clim(&["latitude.month"]), "grouper latitude.month needs a datetime coordinate"),
        (clim(&["nothere"]), "names coordinate \"nothere\""),
        (clim(&["latitude,time.hour"]), "groupers must group one dimension"),
        (clim(&["time.hour", "--window", "61"]), "it needs time.dayofyear in --groupby"),
        (clim(&["time.dayofyear", "--window", "60"]), "--window must be an odd number of days"),
        (clim(&["time.dayofyear", "--window", "61", "--stat", "max"]),
         "--window gives weighted mean, var and std (or, without --stat, --quantiles), not max"),
        (clim(&["time.dayofyear,time.month", "--window", "61"]),
         "--window takes time.dayofyear and time.hour groupers only, not time.month"),
        (clim(&["time.dayofyear", "--window", "4294967295"]),
         "--window must be at most the 366 days of a year in the calendar of \"time\": found 4294967295"),
        (vec!["resample", src_s, out_s, "--time", "1ME"], "unsupported resampling frequency \"1ME\""),
        (vec!["rolling", src_s, out_s, "--dim", "height", "--window", "3"], "dimension \"height\" is not in"),
        (vec!["rolling", src_s, out_s, "--window", "0"], "--window must be from 1 to the length of \"time\""),
        (vec!["rolling", src_s, out_s, "--window", "3", "--min-periods", "4"], "--min-periods must be from 1 to the window (3): found 4"),
        (vec!["rolling", src_s, out_s, "--window", "3", "--stat", "count"], "not count"),
        (clim(&["time.hour", "--quantiles", "0.5,1.5"]), "quantile 1.5 is out of range: expected a number from 0 to 1"),
        (clim(&["time.dayofyear", "--quantiles", "0.5", "--window", "61", "--stat", "mean"]),
         "--window takes either --stat or --quantiles, not both"),
        (clim(&["time.dayofyear", "--quantiles", "0.5", "--window", "61", "--sketch"]),
         "--window takes exact quantiles only (WeatherBench 2's weighted quantile): drop --sketch"),
        (stats(&["latitude", "--weights", "latitude=cos", "--quantiles", "0.5"]),
         "--quantiles cannot be combined with --weights"),
        (vec!["resample", src_s, out_s, "--time", "1D", "--dim", "latitude"],
         "needs a datetime coordinate"),
        (clim(&["time.hour,time.hour"]), "grouper time.hour is named twice"),
        (clim(&["time.hour", "--stat", "median"]), "unknown statistic \"median\""),
        (clim(&["time.hour", "--stat", "mean,mean"]), "statistic mean is named twice"),
        (stats(&["height"]), "dimension \"height\" is not in"),
        (stats(&["time", "--weights", "latitude=cos"]), "need \"latitude\" in --over"),
        (stats(&["latitude", "--weights", "latitude=sin"]), "expected DIM=cos or DIM=values"),
        (stats(&["latitude", "--weights", "latitude=cos", "--stat", "max"]),
         "--weights applies to mean, sum, var and std, not max"),
        (stats(&["time", "--sketch"]), "--sketch gives quantiles: give --quantiles too"),
        (stats(&["time", "--quantiles", "0.5", "--sketch", "0"]),
         "a sketch's relative accuracy must be at least 1e-6 and below 1: found 0"),
        (stats(&["time", "--pencil-pass", "sometimes"]),
         "the pencil pass is auto, always or never, not \"sometimes\""),
    ];
    for (args, fragment) in &cases {
        fails(None, args, 2, fragment);
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
    // an existing output is kept without --overwrite
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    fails(
        None,
        &["stats", src_s, out_s, "--over", "time"],
        2,
        "refusing to write",
    );
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
}

/// SIGTERM (or SIGINT) during a spilling rechunk: xbeam removes its spill
/// directory, says so, and exits with 128 + 15; a spill directory that a
/// killed run left behind in the same place is removed by the next run.
#[cfg(unix)]
#[test]
fn a_stopped_run_removes_its_scratch_directories() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // what a SIGKILLed run left (no process has pid 4194305)
    let stale = tmp.join("xbeam-spill-4194305-AbC123");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("run-0.bin"), vec![0u8; 4096]).unwrap();
    let src = dir.path().join("src.zarr");
    ok(&[
        "generate",
        "--gb",
        "0.05",
        "--nlat",
        "61",
        "--nlon",
        "120",
        "--chunks",
        "time=2",
        "--quiet",
        "--out",
        s(&src),
    ]);
    let dst = dir.path().join("dst.zarr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_xbeam"))
        .args([
            "rechunk",
            s(&src),
            s(&dst),
            "--target-chunks",
            "time=-1,latitude=5,longitude=5",
            "--max-mem",
            "8MiB",
            "--workers",
            "1",
            "--quiet",
        ])
        .env("TMPDIR", &tmp)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let scratch = |tmp: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(tmp)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("xbeam-")
            })
            .collect()
    };
    // wait until the run has made its spill directory (and so removed the stale one)
    let started = std::time::Instant::now();
    while stale.exists() || scratch(&tmp).is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the rechunk ended before it could be stopped"
        );
        assert!(
            started.elapsed().as_secs() < 120,
            "no spill directory appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!stale.exists());
    let live = scratch(&tmp);
    assert_eq!(live.len(), 1, "{live:?}");
    assert!(live[0].is_dir());
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(128 + 15), "{err}");
    assert!(err.contains("stopped by SIGTERM"), "{err}");
    assert!(err.contains("removed 1 scratch directory"), "{err}");
    assert_eq!(scratch(&tmp), Vec::<PathBuf>::new());
}

/// `xbeam verify`: a whole store is complete (exit 0); chunk files removed
/// on purpose are each found, by key, and the store is incomplete (exit 3),
/// with beyond 20 a count per variable; a path that is no store is an
/// input error.
#[test]
fn verify_finds_every_chunk_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path(), "v.zarr", &["--format", "3"]);
    let out = ok(&["verify", s(&store)]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("complete: every chunk"), "{text}");
    let chunk_files = |var: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = files(&store.join(var))
            .into_keys()
            .filter(|p| !p.ends_with("zarr.json"))
            .map(|p| store.join(var).join(p))
            .collect();
        v.sort();
        v
    };
    let temperature = chunk_files("temperature");
    assert!(temperature.len() > 3, "{temperature:?}");
    std::fs::remove_file(&temperature[0]).unwrap();
    std::fs::remove_file(&temperature[2]).unwrap();
    let out = xbeam(&["verify", s(&store)]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        stderr(&out).contains("is incomplete: 2 chunks are missing or damaged"),
        "{}",
        stderr(&out)
    );
    for gone in [&temperature[0], &temperature[2]] {
        let key = gone.strip_prefix(store.join("temperature")).unwrap();
        assert!(
            text.contains(&format!("temperature/{}", key.display())),
            "{key:?} in {text}"
        );
    }
    assert_eq!(text.lines().count(), 3, "{text}");
    // many missing: the first 20 listed, the rest counted per variable
    let geopotential = chunk_files("geopotential");
    for f in &geopotential {
        std::fs::remove_file(f).unwrap();
    }
    let out = xbeam(&["verify", s(&store)]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let total = 2 + geopotential.len();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        total > 20,
        "the store has too few chunks for this test: {total}"
    );
    assert!(
        text.contains(&format!(
            "and {} more; missing or damaged per variable: geopotential: {}, temperature: 2",
            total - 20,
            geopotential.len()
        )),
        "{text}"
    );
    assert_eq!(text.lines().count(), 22, "{text}");
    assert!(stderr(&out).contains(&format!("{total} chunks are missing or damaged")));
    fails(
        None,
        &["verify", s(&dir.path().join("none.zarr"))],
        3,
        "cannot read",
    );
}

/// Names and attributes from a store reach the terminal escaped: an escape
/// sequence in a variable name or an attribute cannot recolour or move the
/// cursor (`info`, `verify`, errors).
#[test]
fn store_text_is_escaped_before_it_reaches_the_terminal() {
    use xbeam::chunk::{Array, Dataset, Template, Variable};
    use xbeam::io::{setup_zarr, SetupOptions};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil.zarr");
    let name = "t\u{1b}[2J\u{1b}[31m";
    let var = Variable::new(["x"], Array::from_1d(vec![1.0f32, 2.0]))
        .unwrap()
        .with_attrs(
            [(
                "note".to_owned(),
                serde_json::json!("a\rb\u{1b}]0;title\u{7}"),
            )]
            .into_iter()
            .collect(),
        );
    let ds = Dataset::new().with_data_var(name, var).unwrap();
    let options = SetupOptions::default().chunks([("x", 1)]);
    setup_zarr(&Template::from(&ds), &path, &options).unwrap();
    let p = path.to_str().unwrap();
    for args in [vec!["info", p], vec!["verify", p]] {
        let out = xbeam(&args);
        for stream in [&out.stdout, &out.stderr] {
            assert!(
                !stream.iter().any(|&b| b == 0x1b || b == b'\r' || b == 0x07),
                "{args:?} wrote a raw control character: {}",
                String::from_utf8_lossy(stream)
            );
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            text.contains("\\x1b[2J"),
            "{args:?}: the name is shown escaped: {text}"
        );
    }
}

/// A generated store of a few kB (5 × 8 grid) in Zarr `format` 2 or 3.
fn tiny_store(path: &Path, format: &str) {
    let out = xbeam(&[
        "generate",
        "--gb",
        "0.0001",
        "--nlat",
        "5",
        "--nlon",
        "8",
        "--format",
        format,
        "--quiet",
        "--out",
        path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs xbeam with a deadline: a FIFO or a device in a store must be an
/// error, never a hang.
fn xbeam_within(args: &[&str], secs: u64) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xbeam"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed().as_secs() > secs {
            child.kill().unwrap();
            panic!("{args:?} hung for {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// FIFOs and devices where a store has metadata or chunks are refused by
/// name, at once.
#[test]
fn fifos_and_devices_in_a_store_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str| {
        let path = dir.path().join(name);
        tiny_store(&path, "2");
        path
    };
    let fifo = |path: &Path| {
        std::fs::remove_file(path).unwrap();
        assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
    };
    // consolidated metadata as a FIFO, then as /dev/zero
    let a = make("a.zarr");
    fifo(&a.join(".zmetadata"));
    let out = xbeam_within(&["info", a.to_str().unwrap()], 20);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(".zmetadata: expected a metadata file, found a FIFO"),
        "{err}"
    );
    std::fs::remove_file(a.join(".zmetadata")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", a.join(".zmetadata")).unwrap();
    let out = xbeam_within(&["info", a.to_str().unwrap()], 20);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("found a device"), "{err}");
    // a chunk as a FIFO: info --stats reads it
    let b = make("b.zarr");
    fifo(&b.join("temperature").join("0.0.0"));
    let out = xbeam_within(&["info", "--stats", b.to_str().unwrap()], 20);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("expected a chunk file, found a FIFO"), "{err}");
}

/// A chunk that cannot be decoded is named by its key, with the bytes it
/// must decode to and the bytes its file holds.
#[test]
fn a_corrupt_chunk_is_named_with_expected_and_found_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.zarr");
    tiny_store(&path, "2");
    std::fs::write(path.join("temperature").join("0.0.0"), b"junk!").unwrap();
    let out = xbeam(&["info", "--stats", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("cannot read chunk temperature/0.0.0 (expected "),
        "{err}"
    );
    assert!(err.contains("its file holds 5 bytes"), "{err}");
}

/// A Zarr v3 extension xbeam does not implement is refused unless it says
/// `"must_understand": false` (the spec's rule), and storage transformers
/// are refused; a store with an optional extension reads as before.
#[test]
fn v3_extensions_that_must_be_understood_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.zarr");
    tiny_store(&path, "3");
    // the array's document, both its own and the consolidated copy
    let edit = |field: &str, value: serde_json::Value| {
        let own = path.join("temperature").join("zarr.json");
        let mut doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&own).unwrap()).unwrap();
        doc[field] = value.clone();
        std::fs::write(&own, doc.to_string()).unwrap();
        let root = path.join("zarr.json");
        let mut doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&root).unwrap()).unwrap();
        if doc["consolidated_metadata"]["metadata"]["temperature"].is_object() {
            doc["consolidated_metadata"]["metadata"]["temperature"][field] = value;
        }
        std::fs::write(&root, doc.to_string()).unwrap();
    };
    let p = path.to_str().unwrap();
    edit(
        "my_extension",
        serde_json::json!({"must_understand": false, "x": 1}),
    );
    let out = xbeam(&["info", p]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    edit("my_extension", serde_json::json!({"must_understand": true}));
    let out = xbeam(&["info", p]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("has the extension \"my_extension\", which xbeam does not implement"),
        "{err}"
    );
    edit(
        "my_extension",
        serde_json::json!({"must_understand": false}),
    );
    edit(
        "storage_transformers",
        serde_json::json!([{"name": "sharded_store"}]),
    );
    let out = xbeam(&["info", p]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("storage transformers"), "{err}");
}

/// Lines recorded so far in the content-manifest logs of the store at
/// `root` (chunks written by the running job).
fn logged_chunks(root: &Path) -> usize {
    std::fs::read_dir(root).map_or(0, |list| {
        list.filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with(".xbeam-manifest.") && name.ends_with(".log")
            })
            .map(|e| {
                std::fs::read(e.path()).map_or(0, |b| String::from_utf8_lossy(&b).lines().count())
            })
            .sum()
    })
}

/// Runs xbeam with `args` and kills it with SIGKILL once `dst`'s manifest
/// logs record `after` chunks. Returns whether it was killed (false: it
/// finished first).
fn kill_after(args: &[&str], dst: &Path, after: usize) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xbeam"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if logged_chunks(dst) >= after {
            child.kill().unwrap(); // SIGKILL: no handler runs
            child.wait().unwrap();
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A generate and a rechunk, each killed with SIGKILL at points drawn from
/// several seeds and run again with `--resume`, give stores byte-identical
/// (every file, the manifest included) to an uninterrupted run; the killed
/// store says it is incomplete (`info`, `verify` exit 3) until resumed.
#[test]
fn killed_jobs_resumed_give_the_uninterrupted_store() {
    let dir = tempfile::tempdir().unwrap();
    let gen = |out: &Path| -> Vec<String> {
        [
            "generate", "--gb", "0.01", "--nlat", "20", "--nlon", "30", "--levels", "2",
            "--chunks", "time=2", "--quiet", "--out",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .chain([s(out).to_owned()])
        .collect()
    };
    let whole = dir.path().join("whole.zarr");
    ok(&gen(&whole).iter().map(String::as_str).collect::<Vec<_>>());
    let total = files(&whole).len();
    assert!(total > 1000, "too few chunks to kill in between: {total}");
    let rechunk = |src: &Path, dst: &Path| -> Vec<String> {
        [
            "rechunk",
            s(src),
            s(dst),
            "--target-chunks",
            "time=100,latitude=5",
            "--max-mem",
            "20MB",
            "--quiet",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .collect()
    };
    let pencils = dir.path().join("pencils.zarr");
    ok(&rechunk(&whole, &pencils)
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    let expected_gen = files(&whole);
    let expected_rechunk = files(&pencils);
    let mut killed = 0;
    // a small LCG: the kill points are the same on every run
    let mut state: u64 = 0x5eed;
    for seed in 0..3 {
        for (job, expected) in [("generate", &expected_gen), ("rechunk", &expected_rechunk)] {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let at = 1 + (state >> 33) as usize % 300;
            let dst = dir.path().join(format!("{job}-{seed}.zarr"));
            let args = if job == "generate" {
                gen(&dst)
            } else {
                rechunk(&whole, &dst)
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            if kill_after(&args, &dst, at) {
                killed += 1;
                let out = ok(&["info", s(&dst)]);
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                assert!(text.contains("INCOMPLETE"), "{job} seed {seed}: {text}");
                // said once: in the text, and as a warning beside JSON
                assert!(!stderr(&out).contains("incomplete"), "{}", stderr(&out));
                let out = ok(&["info", "--json", s(&dst)]);
                assert!(stderr(&out).contains("is incomplete"), "{}", stderr(&out));
                let out = ok(&["info", "--json", "--quiet", s(&dst)]);
                assert!(!stderr(&out).contains("incomplete"), "{}", stderr(&out));
                let out = xbeam(&["verify", s(&dst)]);
                assert_eq!(
                    out.status.code(),
                    Some(3),
                    "{job} seed {seed}: {}",
                    stderr(&out)
                );
                // without --resume the store is refused, and kept
                fails(None, &args, 2, "--resume");
            }
            let mut resumed = args.clone();
            resumed.push("--resume");
            let out = ok(&resumed);
            assert_eq!(
                &files(&dst),
                expected,
                "{job} seed {seed} killed after {at} chunks"
            );
            ok(&["verify", s(&dst)]);
            drop(out);
        }
    }
    assert!(
        killed >= 4,
        "only {killed} of 6 runs were killed before they finished"
    );
}

/// `verify` with a manifest finds each chunk removed (as removed), damaged
/// with its length kept (checksum) or cut short (lengths), never written
/// (a data chunk of a store whose job was killed before it), and says a
/// chunk file the manifest does not know was not checked.
#[test]
fn verify_tells_removed_corrupt_and_never_written_chunks_apart() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path(), "v.zarr", &["--format", "3"]);
    let t = store.join("temperature");
    let chunks: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = files(&t)
            .into_keys()
            .filter(|p| !p.ends_with("zarr.json"))
            .map(|p| t.join(p))
            .collect();
        v.sort();
        v
    };
    assert!(chunks.len() >= 4, "{chunks:?}");
    std::fs::remove_file(&chunks[0]).unwrap();
    let mut bytes = std::fs::read(&chunks[1]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&chunks[1], &bytes).unwrap();
    let short = std::fs::read(&chunks[2]).unwrap();
    std::fs::write(&chunks[2], &short[..short.len() / 2]).unwrap();
    let out = xbeam(&["verify", s(&store)]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(3), "{text}");
    let line = |p: &Path| {
        let key = p.strip_prefix(&t).unwrap().display().to_string();
        text.lines()
            .find(|l| l.contains(&format!("temperature/{key} ")))
            .unwrap_or_else(|| panic!("{key} not in {text}"))
            .to_owned()
    };
    assert!(
        line(&chunks[0]).ends_with("missing: written, then removed"),
        "{text}"
    );
    assert!(line(&chunks[1]).contains("checksum differs"), "{text}");
    assert!(
        line(&chunks[2]).contains(&format!(
            "expected {} bytes as written, found {}",
            short.len(),
            short.len() / 2
        )),
        "{text}"
    );
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        stderr(&out).contains("3 chunks are missing or damaged"),
        "{}",
        stderr(&out)
    );

    // a store whose manifest has no record of a chunk: never written
    let fresh = small_store(dir.path(), "w.zarr", &["--format", "3"]);
    let manifest = fresh.join(".xbeam-manifest");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let dropped: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("\"temperature/c/0/") && !l.contains("\"temperature/c/1/"))
        .collect();
    assert_eq!(dropped.len() + 2, text.lines().count(), "{text}");
    std::fs::write(&manifest, dropped.join("\n") + "\n").unwrap();
    std::fs::remove_file(fresh.join("temperature/c/0/0/0/0")).unwrap();
    let out = xbeam(&["verify", s(&fresh)]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("temperature/c/0/0/0/0 (chunk [0, 0, 0, 0]): never written"),
        "{text}"
    );
    assert!(
        stderr(&out).contains("1 chunk file(s) are not in the store's xbeam manifest"),
        "{}",
        stderr(&out)
    );
}

/// `--resume` keeps only a store that xbeam set up with the same
/// metadata: another job's store, a store without a manifest, and
/// `--resume --overwrite` are refused, and nothing is changed.
#[test]
fn resume_refuses_a_store_it_did_not_set_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path(), "r.zarr", &[]);
    let before = files(&store);
    let args = |nlat: &str, extra: &[&str]| -> Vec<String> {
        [
            "generate",
            "--gb",
            "0.0002",
            "--nlat",
            nlat,
            "--nlon",
            "12",
            "--levels",
            "2",
            "--chunks",
            "time=5",
            "--out",
            s(&store),
            "--resume",
        ]
        .iter()
        .chain(extra)
        .map(|a| (*a).to_owned())
        .collect()
    };
    let run = |nlat: &str, extra: &[&str], code: i32, fragment: &str| {
        let a = args(nlat, extra);
        fails(
            None,
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            code,
            fragment,
        );
        assert_eq!(files(&store), before, "{nlat} {extra:?} changed the store");
    };
    run("8", &[], 4, "cannot resume: this metadata document differs");
    run("7", &["--overwrite"], 2, "cannot be used with");
    // the same job resumed on a finished store changes nothing
    let a = args("7", &[]);
    let out = ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(stderr(&out).contains("resumed: "), "{}", stderr(&out));
    assert_eq!(files(&store), before);
    std::fs::remove_file(store.join(".xbeam-manifest")).unwrap();
    let before = files(&store);
    let a = args("7", &[]);
    fails(
        None,
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        2,
        "has no .xbeam-manifest",
    );
    assert_eq!(files(&store), before);
}

/// A write larger than the free space of the output's filesystem is
/// refused (exit 2) before anything is written; `--ignore-free-space` is
/// accepted by the writing commands.
#[test]
fn a_write_larger_than_the_free_disk_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("huge.zarr");
    let free = xbeam::io::free_space(dir.path()).unwrap().unwrap();
    // twice the free space, in GB, at least 1
    let gb = format!("{}", (2 * free / 1_000_000_000).max(1) as f64 + 1.0);
    fails(
        None,
        &["generate", "--gb", &gb, "--out", s(&out)],
        2,
        "uncompressed and its filesystem has",
    );
    assert!(!out.exists(), "nothing is written");
    let small = dir.path().join("small.zarr");
    ok(&[
        "generate",
        "--gb",
        "0.0002",
        "--nlat",
        "7",
        "--nlon",
        "12",
        "--out",
        s(&small),
        "--ignore-free-space",
    ]);
    ok(&["verify", s(&small)]);
}

/// No chunk file larger than `--max-mem` is read whole, but a shard file
/// that large is read by parts (its index, then each inner chunk), so a
/// sharded store reads under a budget smaller than its shards; a plain
/// chunk file that large is refused, naming it.
#[test]
fn shards_larger_than_the_budget_read_by_parts() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, sharded) = (dir.path().join("p.zarr"), dir.path().join("s.zarr"));
    ok(&[
        "generate",
        "--gb",
        "0.02",
        "--format",
        "3",
        "--chunks",
        "time=2",
        "--quiet",
        "--out",
        s(&plain),
    ]);
    ok(&[
        "copy",
        s(&plain),
        s(&sharded),
        "--shards",
        "time=40",
        "--quiet",
    ]);
    let shard = sharded.join("temperature/c/0/0/0");
    let len = std::fs::metadata(&shard).unwrap().len();
    assert!(len > 2 << 20, "a shard of {len} bytes");
    let out = ok(&["info", "--stats", "--max-mem", "1MiB", s(&sharded)]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("temperature"), "{text}");
    // the same bytes as one plain chunk file: refused
    std::fs::copy(&shard, plain.join("temperature/c/0/0/0")).unwrap();
    fails(
        None,
        &["info", "--stats", "--max-mem", "1MiB", s(&plain)],
        3,
        "expected to read at most 1048576 bytes (the memory budget) of a chunk file",
    );
}

#[test]
fn windowed_quantiles_bracket_the_windowed_mean() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_store(dir.path(), "src.zarr", &[]);
    // WeatherBench 2's window into `out`, with `flags`
    let window = |out: &Path, flags: &[&str]| {
        let mut args = vec!["climatology", s(&src), s(out), "--groupby"];
        args.extend(["time.hour,time.dayofyear", "--window", "61", "--quiet"]);
        args.extend(flags);
        ok(&args);
    };
    let wb = dir.path().join("wb.zarr");
    window(&wb, &[]);
    let w = read_all(&wb);
    // WeatherBench 2's weighted quantiles (float64, a quantile dimension
    // after the groups): the lowest and highest levels average the
    // lightest and heaviest values, so they bracket the weighted mean
    let wq = dir.path().join("wq.zarr");
    window(&wq, &["--quantiles", "0,1"]);
    let q = read_all(&wq);
    let v = q.data_var("temperature").unwrap();
    assert_eq!(
        v.dims(),
        [
            "hour",
            "dayofyear",
            "quantile",
            "level",
            "latitude",
            "longitude"
        ]
    );
    assert_eq!(v.dtype(), xbeam::chunk::DType::F64);
    let (lo, hi) = {
        let a = v.data().to_f64().unwrap();
        let a = a
            .view()
            .into_dimensionality::<xbeam::chunk::ndarray::Ix6>()
            .unwrap();
        (
            a.index_axis(xbeam::chunk::ndarray::Axis(2), 0).to_owned(),
            a.index_axis(xbeam::chunk::ndarray::Axis(2), 1).to_owned(),
        )
    };
    let mean = w.data_var("temperature").unwrap().data().to_f64().unwrap();
    for ((l, h), m) in lo.iter().zip(hi.iter()).zip(mean.iter()) {
        assert!(l <= m && m <= h, "{l} <= {m} <= {h}");
    }
}
