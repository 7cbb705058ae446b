//! `normalize_chunks`: every vector and error of reference §6, and Dask's
//! byte-target algorithm with and without previous chunks.

use indexmap::IndexMap;
use xbeam_chunk::chunks::normalize_chunks;
use xbeam_chunk::{ChunkError, DType, Template, VarSchema};
use xbeam_key::ChunksRequest;

/// A template with `dims` and data variables `(name, dims, dtype)`.
fn template(dims: &[(&str, u64)], vars: &[(&str, &[&str], DType)]) -> Template {
    let sizes = dims.iter().map(|(d, s)| ((*d).to_string(), *s)).collect();
    let data_vars = vars
        .iter()
        .map(|(name, dims, dtype)| {
            let schema = VarSchema {
                dims: dims.iter().map(ToString::to_string).collect(),
                dtype: *dtype,
                attrs: xbeam_chunk::Attrs::default(),
                encoding: xbeam_chunk::Attrs::default(),
            };
            ((*name).to_string(), schema)
        })
        .collect();
    Template::new(sizes, data_vars, IndexMap::default(), IndexMap::default()).unwrap()
}

fn sizes(pairs: &[(&str, u64)]) -> IndexMap<String, u64> {
    pairs.iter().map(|(d, s)| ((*d).to_string(), *s)).collect()
}

fn normalize(
    chunks: &str,
    t: &Template,
    split_vars: bool,
    previous: Option<&[(&str, u64)]>,
) -> Result<IndexMap<String, u64>, ChunkError> {
    let request: ChunksRequest = chunks.parse().unwrap();
    let previous = previous.map(sizes);
    normalize_chunks(&request, t, split_vars, previous.as_ref())
}

fn ok(chunks: &str, t: &Template, split_vars: bool, previous: Option<&[(&str, u64)]>) -> Vec<u64> {
    normalize(chunks, t, split_vars, previous)
        .unwrap()
        .values()
        .copied()
        .collect()
}

fn foo(dims: &[(&str, u64)], dtype: DType) -> Template {
    let names: Vec<&str> = dims.iter().map(|(d, _)| *d).collect();
    template(dims, &[("foo", &names, dtype)])
}

#[test]
fn sizes_minus_one_and_clamping() {
    let x10 = foo(&[("x", 10)], DType::I64);
    assert_eq!(ok("-1", &x10, false, None), [10]);
    assert_eq!(ok("x=-1", &x10, false, None), [10]);
    assert_eq!(ok("x=5", &x10, false, None), [5]);
    assert_eq!(ok("x=100", &x10, false, None), [10]);
    let xy = foo(&[("x", 10), ("y", 2)], DType::I64);
    assert_eq!(
        normalize("x=5", &xy, false, None).unwrap(),
        sizes(&[("x", 5), ("y", 2)])
    );
    // Explicit sizes give their first; they must add up.
    assert_eq!(ok("x=4,6", &x10, false, None), [4]);
    let err = normalize("x=4,5", &x10, false, None).unwrap_err();
    assert!(err.to_string().starts_with("Invalid input for normalize_chunks: chunks={'x': (4, 5)}, previous_chunks=None, template="), "{err}");
}

#[test]
fn missing_dimensions_keep_previous_or_full_size() {
    let xy = foo(&[("x", 10), ("y", 20)], DType::F32);
    assert_eq!(ok("", &xy, false, None), [10, 20]);
    assert_eq!(ok("", &xy, false, Some(&[("x", 5), ("y", 4)])), [5, 4]);
    assert_eq!(ok("x=2", &xy, false, Some(&[("x", 5), ("y", 4)])), [2, 4]);
    // Empty previous chunks count as none (Python's truthiness).
    let empty = IndexMap::new();
    let r: ChunksRequest = "".parse().unwrap();
    assert_eq!(
        normalize_chunks(&r, &xy, false, Some(&empty)).unwrap(),
        sizes(&[("x", 10), ("y", 20)])
    );
}

#[test]
fn ellipsis_is_the_default_for_other_dimensions() {
    let xyz = foo(&[("x", 100), ("y", 100), ("z", 100)], DType::F32);
    assert_eq!(
        normalize("x=10,...=20", &xyz, false, None).unwrap(),
        sizes(&[("x", 10), ("y", 20), ("z", 20)])
    );
    assert_eq!(ok("x=10,y=20,z=30,...=1", &xyz, false, None), [10, 20, 30]);
    assert_eq!(ok("...=-1", &xyz, false, None), [100, 100, 100]);
    assert_eq!(
        ok(
            "time=-1,...=292000B",
            &foo(&[("time", 365), ("lat", 73), ("lon", 144)], DType::F32),
            false,
            None
        ),
        [365, 14, 14]
    );
}

#[test]
fn byte_targets_without_previous_chunks() {
    // Small arrays are taken whole.
    assert_eq!(
        ok(
            "128MiB",
            &foo(&[("x", 10), ("y", 20)], DType::I64),
            false,
            None
        ),
        [10, 20]
    );
    assert_eq!(
        ok("64KiB", &foo(&[("x", 1 << 20)], DType::I64), false, None),
        [8192]
    );
    assert_eq!(
        ok(
            "1KiB",
            &foo(&[("x", 100), ("y", 100)], DType::I8),
            false,
            None
        ),
        [32, 32]
    );
    // The record of all data variables: two float64 give 16 bytes.
    let two = template(
        &[("x", 1 << 20)],
        &[("a", &["x"], DType::F64), ("b", &["x"], DType::F64)],
    );
    assert_eq!(ok("64KiB", &two, false, None), [4096]);
    // Split variables: the largest item size.
    let mixed = template(
        &[("x", 1 << 20)],
        &[("a", &["x"], DType::F64), ("b", &["x"], DType::I8)],
    );
    assert_eq!(ok("32KiB", &mixed, true, None), [4096]);
    assert_eq!(ok("32KiB", &mixed, false, None), [3640]);
    // No data variables: one byte per element.
    let bare = template(&[("x", 1000)], &[]);
    assert_eq!(ok("100B", &bare, false, None), [100]);
    // Fixed dimensions count toward the block; a fixed size above the
    // dimension counts as given (Dask does not clamp it first).
    let xy = foo(&[("x", 1000), ("y", 10)], DType::U8);
    assert_eq!(ok("x=1kB,y=-1", &xy, false, None), [100, 10]);
    assert_eq!(ok("x=1kB,y=20", &xy, false, None), [50, 10]);
    // A dimension smaller than the square-ish size is taken whole and the
    // rest recomputed.
    let thin = foo(&[("x", 4), ("y", 10_000)], DType::U8);
    assert_eq!(ok("4000B", &thin, false, None), [4, 1000]);
}

#[test]
fn byte_targets_with_previous_chunks() {
    let xy = foo(&[("x", 5), ("y", 4)], DType::I64);
    assert_eq!(ok("80B", &xy, false, Some(&[("x", 5), ("y", 1)])), [5, 2]);
    let big = foo(&[("x", 100), ("y", 100)], DType::F64);
    assert_eq!(
        ok("8000B", &big, false, Some(&[("x", 10), ("y", 25)])),
        [20, 50]
    );
    // Shrinking rounds down toward multiples of the previous chunks' size.
    assert_eq!(
        ok("800B", &big, false, Some(&[("x", 100), ("y", 100)])),
        [10, 10]
    );
    // Growing merges whole previous chunks ...
    assert_eq!(
        ok("40000B", &big, false, Some(&[("x", 10), ("y", 10)])),
        [70, 70]
    );
    // ... and past the dimension takes it whole, giving the rest to the
    // other dimensions.
    let wide = foo(&[("x", 50), ("y", 1000)], DType::F64);
    assert_eq!(
        ok("80000B", &wide, false, Some(&[("x", 10), ("y", 10)])),
        [50, 200]
    );
    // Shrinking previous chunks far larger than the target (pancakes to
    // 100 MB with all of time): iterate until the rounded sizes settle.
    let era = foo(&[("time", 8760), ("lat", 721), ("lon", 1440)], DType::F32);
    assert_eq!(
        ok(
            "time=-1,...=100MB",
            &era,
            false,
            Some(&[("time", 24), ("lat", 721), ("lon", 1440)])
        ),
        [8760, 37, 76]
    );
    // A previous chunk of zero is an error in Dask (division by zero).
    assert!(normalize("1kB", &big, false, Some(&[("x", 0), ("y", 10)])).is_err());
}

#[test]
fn empty_templates_and_unknown_dimensions() {
    let empty = template(&[], &[]);
    assert!(normalize("", &empty, false, None).unwrap().is_empty());
    assert!(normalize("100MB", &empty, false, None).unwrap().is_empty());
    let x10 = foo(&[("x", 10)], DType::I64);
    let err = normalize("y=5", &x10, false, None).unwrap_err().to_string();
    assert!(err.starts_with("Invalid input for normalize_chunks: chunks={'y': 5}, previous_chunks=None, template=<xbeam.Template>") || err.starts_with("Invalid input for normalize_chunks: chunks={'y': 5}, previous_chunks=None, template="), "{err}");
    let err = normalize("1kB", &x10, false, Some(&[("z", 5)]))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "Invalid input for normalize_chunks: chunks='1kB', previous_chunks={'z': 5}, template="
        ),
        "{err}"
    );
}

#[test]
fn xarray_beam_errors() {
    let x10 = foo(&[("x", 10)], DType::I64);
    assert_eq!(
        normalize("auto", &x10, false, None).unwrap_err().to_string(),
        "Unlike Dask, xarray_beam.normalize_chunks() does not support chunks='auto'. Supply an explicit number of bytes instead, e.g., chunks='100MB'."
    );
    assert_eq!(
        normalize("x=auto", &x10, false, None).unwrap_err().to_string(),
        "Unlike Dask, xarray_beam.normalize_chunks() does not support 'auto' chunk sizes. Supply an explicit number of bytes instead, e.g., '100MB'. Got chunks={'x': 'auto'}"
    );
    let xy = foo(&[("x", 10), ("y", 10)], DType::I64);
    assert_eq!(
        normalize("x=100MB,y=1MB", &xy, false, None)
            .unwrap_err()
            .to_string(),
        "cannot provide multiple distinct chunk sizes in bytes: {'x': '100MB', 'y': '1MB'}"
    );
    assert_eq!(ok("x=1kB,y=1000B", &xy, false, None), [10, 10]);
    // A malformed string is refused when it is parsed.
    assert!("invalid_chunks".parse::<ChunksRequest>().is_err());
    // A zero chunk of a non-empty dimension.
    assert!(normalize("x=0", &x10, false, None).is_err());
    assert_eq!(ok("x=0", &foo(&[("x", 0)], DType::I64), false, None), [0]);
}

/// Random byte-target cases answered by Dask itself (the fixture and its
/// generator script are in `tests/fixtures/`).
#[test]
fn byte_targets_match_dask() {
    #[derive(serde::Deserialize)]
    struct Case {
        chunks: Vec<String>,
        shape: Vec<u64>,
        itemsize: usize,
        previous: Option<Vec<u64>>,
        expected: Option<Vec<u64>>,
    }
    let cases: Vec<Case> =
        serde_json::from_str(include_str!("../fixtures/dask_normalize_chunks.json")).unwrap();
    assert_eq!(cases.len(), 200);
    for case in cases {
        let names: Vec<String> = (0..case.shape.len()).map(|i| format!("d{i}")).collect();
        let dims: Vec<(&str, u64)> = names
            .iter()
            .map(String::as_str)
            .zip(case.shape.iter().copied())
            .collect();
        let var_dims: Vec<&str> = names.iter().map(String::as_str).collect();
        let t = match case.itemsize {
            16 => template(
                &dims,
                &[("a", &var_dims, DType::F64), ("b", &var_dims, DType::F64)],
            ),
            n => {
                let dtype =
                    [DType::U8, DType::I16, DType::F32, DType::F64][n.trailing_zeros() as usize];
                template(&dims, &[("foo", &var_dims, dtype)])
            }
        };
        let text: Vec<String> = names
            .iter()
            .zip(&case.chunks)
            .map(|(d, c)| format!("{d}={c}"))
            .collect();
        let previous: Option<Vec<(&str, u64)>> = case.previous.as_ref().map(|p| {
            names
                .iter()
                .map(String::as_str)
                .zip(p.iter().copied())
                .collect()
        });
        let got = normalize(&text.join(","), &t, false, previous.as_deref())
            .ok()
            .map(|m| m.values().copied().collect::<Vec<u64>>());
        assert_eq!(
            got, case.expected,
            "chunks {text:?}, shape {:?}, itemsize {}, previous {:?}",
            case.shape, case.itemsize, case.previous
        );
    }
}
