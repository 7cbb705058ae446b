//! Fuzz targets for what xbeam reads from a store: metadata parsing, CF
//! decoding and chunk decoding. Each mutates a good store (values at random
//! JSON pointers replaced by random JSON, text bytes flipped, CF attributes
//! drawn from a grammar of plausible and hostile values, chunk files
//! replaced by random or damaged bytes under every codec) and opens and
//! reads it: any result is fine except a panic (an abort or a runaway
//! allocation ends the process, which fails too).
//!
//! `cargo test` runs each target for a few hundred cases;
//! `cargo xtask fuzz` runs each for minutes (`XBEAM_FUZZ_SECONDS`) in
//! release mode and reports the executions.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{json, Value};
use xbeam_chunk::{Array, Attrs, Dataset, Template, Variable};
use xbeam_io::{open_zarr, setup_zarr, SetupOptions, ZarrFormat};
use xbeam_key::Key;

/// A small good store: a time coordinate and one float32 variable in three
/// chunks, with `codec`.
fn good_store(path: &Path, format: ZarrFormat, codec: Option<Value>) {
    let time = Variable::new(["time"], Array::from_1d((0..12i64).collect::<Vec<_>>()))
        .unwrap()
        .with_attrs(Attrs::from_iter([
            ("units".to_owned(), json!("hours since 2000-01-01")),
            ("calendar".to_owned(), json!("noleap")),
        ]));
    let t = Variable::new(
        ["time", "x"],
        Array::from_vec(vec![12, 2], (0..24).map(|i| i as f32 * 0.5).collect()).unwrap(),
    )
    .unwrap()
    .with_attrs(Attrs::from_iter([("units".to_owned(), json!("K"))]));
    let ds = Dataset::new()
        .with_coord("time", time)
        .unwrap()
        .with_data_var("t", t)
        .unwrap();
    let mut options = SetupOptions::default().format(format).chunks([("time", 4)]);
    if let Some(c) = codec {
        options = options.encoding(
            "t",
            Attrs::from_iter([("compressors".to_owned(), json!([c]))]),
        );
    }
    let sink = setup_zarr(&Template::from(&ds), path, &options).unwrap();
    for start in [0u64, 4, 8] {
        let part = ds.isel([("time", start..start + 4)]).unwrap();
        sink.write_chunk(&Key::new().with_offset("time", start), &part)
            .unwrap();
    }
}

/// Opens the store and reads everything: the code under test. Errors are
/// fine; panics are not.
fn open_and_read(path: &Path) {
    if let Ok(source) = open_zarr(path) {
        let _ = source.read(&IndexMap::new(), None);
        let region = [("time".to_owned(), 3..9)].into_iter().collect();
        let _ = source.read(&region, None);
    }
    let _ = xbeam_io::verify(path);
    let _ = xbeam_io::manifest_status(path);
}

/// Every JSON pointer into `v`.
fn pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    out.push(at.to_owned());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let k = k.replace('~', "~0").replace('/', "~1");
                pointers(x, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Strings that mean something somewhere in Zarr or CF metadata.
const WORDS: &[&str] = &[
    "",
    "NaN",
    "Infinity",
    "-Infinity",
    "blosc",
    "gzip",
    "zstd",
    "zlib",
    "bytes",
    "regular",
    "default",
    "v2",
    "array",
    "group",
    "float32",
    "<f4",
    ">f8",
    "|O",
    "<U5",
    "|S3",
    "int64",
    "<M8[ns]",
    "bool",
    "C",
    "F",
    ".",
    "/",
    "time",
    "x",
    "hours since 2000-01-01",
    "days since 1-1-1",
    "seconds since 2000-13-01",
    "months since 2000-01-01",
    "noleap",
    "360_day",
    "julian",
    "standard",
    "AAAAAAAA+H8=",
    "\u{1b}[2J",
    "c",
    "shuffle",
    "lz4",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-3i64..40).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(WORDS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(WORDS), inner), 0..5).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

/// A target: its name and one case.
type Target = fn(&mut TestRunner, &Path) -> Result<u64, String>;

/// Runs `target` for the configured time (or a few hundred cases) and
/// returns the executions.
fn drive(name: &str, target: Target) {
    let seconds: f64 = std::env::var("XBEAM_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    let dir = tempfile::tempdir().unwrap();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut executions = 0u64;
    let mut round = 0u64;
    loop {
        let cases = if seconds > 0.0 { 500 } else { 150 };
        let seed = {
            let mut s = [0u8; 32];
            s[..8].copy_from_slice(&round.to_le_bytes());
            s[8..16].copy_from_slice(&(name.len() as u64).to_le_bytes());
            s
        };
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases,
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
        );
        let work = dir.path().join(format!("round{round}"));
        std::fs::create_dir_all(&work).unwrap();
        match target(&mut runner, &work) {
            Ok(n) => executions += n,
            Err(e) => panic!("fuzz target {name}: {e}"),
        }
        let _ = std::fs::remove_dir_all(&work);
        round += 1;
        if seconds <= 0.0 || Instant::now() >= deadline {
            break;
        }
    }
    eprintln!("FUZZ {name}: {executions} executions, 0 findings");
}

/// The cases run, or the failure `runner.run` found.
fn count(
    cases: &std::sync::atomic::AtomicU64,
    result: Result<(), proptest::test_runner::TestError<impl std::fmt::Debug>>,
) -> Result<u64, String> {
    result.map_err(|e| e.to_string())?;
    Ok(cases.load(std::sync::atomic::Ordering::Relaxed))
}

/// Copies the store at `from` to `to` (a fresh case).
fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The metadata documents of the good stores: (store, file).
fn metadata_files(work: &Path) -> Vec<(PathBuf, &'static str)> {
    let v2 = work.join("base_v2.zarr");
    let v3 = work.join("base_v3.zarr");
    if !v2.exists() {
        good_store(&v2, ZarrFormat::V2, None);
        good_store(&v3, ZarrFormat::V3, None);
    }
    vec![
        (v2.clone(), ".zmetadata"),
        (v2, "t/.zarray"),
        (v3.clone(), "zarr.json"),
        (v3, "t/zarr.json"),
    ]
}

fn metadata_target(runner: &mut TestRunner, work: &Path) -> Result<u64, String> {
    let files = metadata_files(work);
    let docs: Vec<(Value, Vec<String>)> = files
        .iter()
        .map(|(store, f)| {
            let doc: Value =
                serde_json::from_slice(&std::fs::read(store.join(f)).unwrap()).unwrap();
            let mut ps = Vec::new();
            pointers(&doc, "", &mut ps);
            (doc, ps)
        })
        .collect();
    let case_dir = work.join("case.zarr");
    let n = std::sync::atomic::AtomicU64::new(0);
    let strategy = (
        0..files.len(),
        prop::collection::vec(
            (any::<prop::sample::Index>(), prop::option::of(json_value())),
            1..4,
        ),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
    );
    let result = runner.run(&strategy, |(which, edits, flips)| {
        n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (store, file) = &files[which];
        let (doc, ps) = &docs[which];
        let mut doc = doc.clone();
        for (at, value) in edits {
            let p = at.get(ps);
            if p.is_empty() {
                continue;
            }
            let (parent, key) = p.rsplit_once('/').unwrap();
            let key = key.replace("~1", "/").replace("~0", "~");
            match (doc.pointer_mut(parent), value) {
                (Some(Value::Object(m)), Some(v)) => {
                    m.insert(key, v);
                }
                (Some(Value::Object(m)), None) => {
                    m.remove(&key);
                }
                (Some(Value::Array(a)), v) => {
                    if let Ok(i) = key.parse::<usize>() {
                        if i < a.len() {
                            match v {
                                Some(v) => a[i] = v,
                                None => {
                                    a.remove(i);
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let mut text = serde_json::to_vec(&doc).unwrap();
        for (at, byte) in flips {
            if !text.is_empty() {
                let i = at.index(text.len());
                text[i] = byte;
            }
        }
        copy_dir(store, &case_dir);
        std::fs::write(case_dir.join(file), &text)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        open_and_read(&case_dir);
        Ok(())
    });
    count(&n, result)
}

/// CF attributes drawn from a grammar of plausible and hostile values:
/// time units, calendar, `scale_factor`, `add_offset`, `_FillValue`, units of the
/// data variable, its stored dtype, and whether the time coordinate (else
/// the data variable) gets the time attributes.
#[allow(clippy::type_complexity)]
fn cf_strategy() -> impl Strategy<
    Value = (
        Option<Value>,
        Option<Value>,
        Option<Value>,
        Option<Value>,
        Option<Value>,
        Option<Value>,
        &'static str,
        bool,
    ),
> {
    let unit = prop::sample::select(
        &[
            "days",
            "hours",
            "minutes",
            "seconds",
            "milliseconds",
            "microseconds",
            "nanoseconds",
            "weeks",
            "months",
            "years",
            "fortnights",
            "d",
            "h",
            "s",
        ][..],
    );
    let date = prop_oneof![
        (-5000i32..10000, 0u32..14, 0u32..33, 0u32..25, 0u32..61)
            .prop_map(|(y, m, d, h, mi)| format!("{y}-{m}-{d} {h}:{mi}:00")),
        Just("1-1-1".to_owned()),
        Just("2000-01-01T00:00:00Z".to_owned()),
        Just("2000-01-01 00:00:00 +05:30".to_owned()),
        ".{0,10}",
    ];
    let units = prop_oneof![
        (unit, date).prop_map(|(u, d)| json!(format!("{u} since {d}"))),
        json_value(),
    ];
    let number = prop_oneof![
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(json!("NaN"), Value::Number)),
        Just(json!("NaN")),
        Just(json!("Infinity")),
        any::<i64>().prop_map(Value::from),
        json_value(),
    ];
    let dtype = prop::sample::select(
        &[
            "<f4", "<f8", "<i1", "<i2", "<i4", "<i8", "<u1", "<u2", "<u4", "<u8", "|b1", "<f2",
            ">f4",
        ][..],
    );
    (
        prop::option::of(units.clone()),
        prop::option::of(json_value()),
        prop::option::of(number.clone()),
        prop::option::of(number.clone()),
        prop::option::of(number),
        prop::option::of(units),
        dtype,
        any::<bool>(),
    )
}

fn cf_target(runner: &mut TestRunner, work: &Path) -> Result<u64, String> {
    let v2 = work.join("base_cf.zarr");
    if !v2.exists() {
        good_store(&v2, ZarrFormat::V2, None);
    }
    let doc: Value =
        serde_json::from_slice(&std::fs::read(v2.join(".zmetadata")).unwrap()).unwrap();
    let case_dir = work.join("case.zarr");
    let n = std::sync::atomic::AtomicU64::new(0);
    let strategy = cf_strategy();
    let result = runner.run(
        &strategy,
        |(time_units, calendar, scale, offset, fill, t_units, t_dtype, on_time)| {
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut doc = doc.clone();
            let attrs_ptr = if on_time {
                "/metadata/time~1.zattrs"
            } else {
                "/metadata/t~1.zattrs"
            };
            let attrs = doc.pointer_mut(attrs_ptr).unwrap().as_object_mut().unwrap();
            for (k, v) in [
                ("units", time_units.or(t_units)),
                ("calendar", calendar),
                ("scale_factor", scale),
                ("add_offset", offset),
                ("_FillValue", fill),
            ] {
                match v {
                    Some(v) => {
                        attrs.insert(k.to_owned(), v);
                    }
                    None => {
                        attrs.remove(k);
                    }
                }
            }
            if !on_time {
                // reinterpret the stored bytes: a narrower or wider type
                if let Some(d) = doc.pointer_mut("/metadata/t~1.zarray/dtype") {
                    *d = json!(t_dtype);
                }
            }
            copy_dir(&v2, &case_dir);
            std::fs::write(
                case_dir.join(".zmetadata"),
                serde_json::to_vec(&doc).unwrap(),
            )
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
            open_and_read(&case_dir);
            Ok(())
        },
    );
    count(&n, result)
}

fn chunk_target(runner: &mut TestRunner, work: &Path) -> Result<u64, String> {
    let codecs = [
        None,
        Some(json!({"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0})),
        Some(json!({"id": "blosc", "cname": "zstd", "clevel": 3, "shuffle": 2, "blocksize": 0})),
        Some(json!({"id": "gzip", "level": 5})),
        Some(json!({"id": "zlib", "level": 5})),
        Some(json!({"id": "zstd", "level": 3})),
    ];
    let mut stores = Vec::new();
    for (i, c) in codecs.iter().enumerate() {
        for format in [ZarrFormat::V2, ZarrFormat::V3] {
            let p = work.join(format!("chunks_{i}_{format:?}.zarr"));
            if !p.exists() {
                good_store(&p, format, c.clone());
            }
            let key = if format == ZarrFormat::V2 {
                "t/1.0"
            } else {
                "t/c/1/0"
            };
            let bytes = std::fs::read(p.join(key)).unwrap();
            stores.push((p, key, bytes));
        }
    }
    let case_dir = work.join("case.zarr");
    let n = std::sync::atomic::AtomicU64::new(0);
    let damage = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| (0u8, b, 0usize)),
        (any::<prop::sample::Index>()).prop_map(|i| (1u8, Vec::new(), i.index(1 << 16))),
        prop::collection::vec(any::<u8>(), 1..8).prop_map(|b| (2u8, b, 0usize)),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| (3u8, b, 0usize)),
    ];
    let strategy = (0..stores.len(), damage, any::<prop::sample::Index>());
    let result = runner.run(&strategy, |(which, (kind, bytes, cut), at)| {
        n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (store, key, good) = &stores[which];
        let chunk = match kind {
            // random bytes
            0 => bytes,
            // truncated
            1 => good[..cut % (good.len() + 1)].to_vec(),
            // bytes overwritten at a position
            2 => {
                let mut c = good.clone();
                let i = at.index(c.len().max(1));
                for (j, b) in bytes.iter().enumerate() {
                    if let Some(x) = c.get_mut(i + j) {
                        *x = *b;
                    }
                }
                c
            }
            // garbage appended
            _ => {
                let mut c = good.clone();
                c.extend(bytes);
                c
            }
        };
        copy_dir(store, &case_dir);
        std::fs::write(case_dir.join(key), &chunk)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        open_and_read(&case_dir);
        Ok(())
    });
    count(&n, result)
}

#[test]
fn fuzz_metadata_parsing() {
    drive("metadata", metadata_target);
}

#[test]
fn fuzz_cf_decoding() {
    drive("cf", cf_target);
}

#[test]
fn fuzz_chunk_decoding() {
    drive("chunks", chunk_target);
}
