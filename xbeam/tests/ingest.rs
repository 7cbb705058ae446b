//! `xbeam ingest` as users run it: the store holds what the files hold,
//! `--append` adds only new files and repeating it changes nothing, bad
//! input is refused with a clear error and nothing written, and a 300 MB
//! ingest under `--max-mem 64MiB` peaks under budget + 200 MB of RSS.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use indexmap::IndexMap;
use xbeam::io::{open_netcdf, open_zarr, ChunkSource};

fn fixtures(set: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../xbeam-io/tests/data/netcdf")
        .join(set)
}

fn xbeam(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xbeam"))
        .args(args)
        .output()
        .expect("the xbeam binary runs")
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file of a store with its bytes, to see that nothing changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_store_holds_what_the_files_hold() {
    for set in ["nc4", "classic"] {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("out.zarr");
        let out = xbeam(&["ingest", &s(&fixtures(set)), &s(&dst), "--workers", "2"]);
        assert!(out.status.success(), "{set}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("xbeam ingest: in "), "{err}");
        assert!(
            err.contains("note: time: the files' time units differ"),
            "{err}"
        );
        let files: Vec<PathBuf> = ["a.nc", "b.nc"]
            .iter()
            .map(|f| fixtures(set).join(f))
            .collect();
        let all = IndexMap::new();
        let want = open_netcdf(&files, "time", &|| {})
            .unwrap()
            .read(&all, None)
            .unwrap();
        let store = open_zarr(&dst).unwrap();
        assert_eq!(store.format().number(), 3, "Zarr v3 by default");
        assert_eq!(store.chunks()["time"], 5, "the first file's length");
        let got = store.read(&all, None).unwrap();
        for (name, v) in want.data_vars() {
            assert!(
                got.data_vars()[name].identical(v),
                "{set} {name}:\n{got}\nvs\n{want}"
            );
        }
        assert_eq!(got.attrs(), want.attrs());
        for name in ["lat", "lon"] {
            assert!(
                got.coords()[name].identical(&want.coords()[name]),
                "{set} {name}"
            );
        }
        // the same instants (the store's in its units' ticks, hours)
        let nanos = |d: &xbeam::chunk::Dataset| -> Vec<i64> {
            let (ticks, unit, _) = d.coords()["time"].data().datetime_ticks().unwrap();
            ticks.iter().map(|t| t * unit.nanos()).collect()
        };
        assert_eq!(nanos(&got), nanos(&want), "{set}");
        assert!(xbeam::io::verify(&dst).unwrap().problems.is_empty());
    }
}

#[test]
fn append_adds_new_files_once() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out.zarr");
    let list = dir.path().join("first.txt");
    std::fs::write(
        &list,
        format!("{}\n", fixtures("nc4").join("a.nc").display()),
    )
    .unwrap();
    let out = xbeam(&[
        "ingest",
        &format!("@{}", list.display()),
        &s(&dst),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(open_zarr(&dst).unwrap().template().sizes()["time"], 5);
    let glob = format!("{}/*.nc", fixtures("nc4").display());
    let out = xbeam(&["ingest", &glob, &s(&dst), "--append"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 new file(s) appended, 1 already in the store skipped"),
        "{}",
        stderr(&out)
    );
    let whole = dir.path().join("whole.zarr");
    assert!(xbeam(&["ingest", &glob, &s(&whole), "--quiet"])
        .status
        .success());
    let all = IndexMap::new();
    let appended = open_zarr(&dst).unwrap().read(&all, None).unwrap();
    let at_once = open_zarr(&whole).unwrap().read(&all, None).unwrap();
    assert!(appended.identical(&at_once), "{appended}\nvs\n{at_once}");
    // again: nothing to add, nothing changed
    let before = snapshot(&dst);
    let out = xbeam(&["ingest", &glob, &s(&dst), "--append"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("0 new file(s) appended, 2 already"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&dst), before);
    // a file that does not match the store (another calendar): refused
    // before anything is recorded, store and record as they were
    let other = dir.path().join("other.txt");
    std::fs::write(
        &other,
        format!("{}\n", fixtures("noleap").join("b.nc").display()),
    )
    .unwrap();
    let out = xbeam(&[
        "ingest",
        &format!("@{}", other.display()),
        &s(&dst),
        "--append",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("uses calendar \"noleap\" but the store's uses \"standard\""),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&dst), before, "{}", stderr(&out));
    // a store ingest did not write cannot be appended to
    let out = xbeam(&["ingest", &glob, &s(&whole.join("t")), "--append"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--append needs a store that xbeam ingest wrote"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_input_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out.zarr");
    let nc4 = s(&fixtures("nc4"));
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![s(&fixtures("bad"))],
            3,
            "b.nc: coordinate 'lat' has other values here than in",
        ),
        (vec![s(&fixtures("noleap"))], 3, "uses calendar 'noleap'"),
        (
            vec![format!("{}/*.grib", dir.path().display())],
            3,
            "no files match",
        ),
        (
            vec![nc4.clone(), "--concat-dim".into(), "step".into()],
            3,
            "no dimension 'step' to concatenate along",
        ),
        (
            vec![nc4.clone(), "--target-chunks".into(), "height=2".into()],
            2,
            "--target-chunks names dimension \"height\"",
        ),
        (
            vec![nc4.clone(), "--format".into(), "4".into()],
            2,
            "4 is not in 2..=3",
        ),
        (
            vec![nc4.clone(), "--append".into(), "--overwrite".into()],
            2,
            "cannot be used with",
        ),
    ];
    for (args, code, says) in cases {
        let mut all = vec!["ingest".to_owned(), args[0].clone(), s(&dst)];
        all.extend(args[1..].iter().cloned());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = xbeam(&refs);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{refs:?}: {err}");
        assert!(err.contains(says), "{refs:?}: expected {says:?} in {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!dst.exists(), "{refs:?} wrote {}", dst.display());
    }
    // a non-empty DST without --overwrite
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::write(dst.join("notes.txt"), "keep").unwrap();
    let out = xbeam(&["ingest", &nc4, &s(&dst)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dst.join("notes.txt")).unwrap(),
        "keep"
    );
}

/// Writes a CDF-1 (classic) file: `time(time)` int32 hours since
/// 2000-01-01 from `t0`, and `t(time, latitude, longitude)` float32 with
/// [`value`], big-endian as the format says.
fn write_cdf1(path: &Path, t0: u32, nt: u32, nlat: u32, nlon: u32) {
    fn name(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u32).to_be_bytes());
        out.extend(s.as_bytes());
        out.resize(out.len().next_multiple_of(4), 0);
    }
    let header = |begins: (u32, u32)| -> Vec<u8> {
        let mut h = b"CDF\x01".to_vec();
        h.extend(0u32.to_be_bytes()); // numrecs
        h.extend(0x0Au32.to_be_bytes()); // NC_DIMENSION
        h.extend(3u32.to_be_bytes());
        for (d, n) in [("time", nt), ("latitude", nlat), ("longitude", nlon)] {
            name(&mut h, d);
            h.extend(n.to_be_bytes());
        }
        h.extend([0u8; 8]); // no global attributes
        h.extend(0x0Bu32.to_be_bytes()); // NC_VARIABLE
        h.extend(2u32.to_be_bytes());
        name(&mut h, "time");
        h.extend(1u32.to_be_bytes());
        h.extend(0u32.to_be_bytes());
        h.extend(0x0Cu32.to_be_bytes()); // NC_ATTRIBUTE
        h.extend(1u32.to_be_bytes());
        name(&mut h, "units");
        h.extend(2u32.to_be_bytes()); // NC_CHAR
        name(&mut h, "hours since 2000-01-01");
        h.extend(4u32.to_be_bytes()); // NC_INT
        h.extend((4 * nt).to_be_bytes());
        h.extend(begins.0.to_be_bytes());
        name(&mut h, "t");
        h.extend(3u32.to_be_bytes());
        for id in 0..3u32 {
            h.extend(id.to_be_bytes());
        }
        h.extend([0u8; 8]); // no attributes
        h.extend(5u32.to_be_bytes()); // NC_FLOAT
        h.extend((4 * nt * nlat * nlon).to_be_bytes());
        h.extend(begins.1.to_be_bytes());
        h
    };
    let len = header((0, 0)).len() as u32;
    let mut file = header((len, len + 4 * nt));
    for t in t0..t0 + nt {
        file.extend(t.to_be_bytes());
    }
    for t in t0..t0 + nt {
        for la in 0..nlat {
            for lo in 0..nlon {
                file.extend(value(t, la, lo).to_be_bytes());
            }
        }
    }
    std::fs::write(path, file).unwrap();
}

fn value(t: u32, la: u32, lo: u32) -> f32 {
    ((t * 7 + la * 3 + lo) % 1000) as f32
}

/// 300 MB of classic files of uneven lengths (a chunk spans two files)
/// ingested with `--max-mem 64MiB`: the summary's peak RSS stays under
/// max-mem + 200 MB, and the store holds the files' values.
#[test]
fn a_300_mb_ingest_stays_within_max_mem() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("nc");
    std::fs::create_dir_all(&src).unwrap();
    let (nlat, nlon) = (121, 240);
    let lengths = [240, 216, 264, 240, 228, 252, 240, 240, 240, 240, 240, 192];
    let mut t0 = 0;
    for (k, &n) in lengths.iter().enumerate() {
        write_cdf1(&src.join(format!("f{k:02}.nc")), t0, n, nlat, nlon);
        t0 += n;
    }
    let dst = dir.path().join("out.zarr");
    let out = xbeam(&[
        "ingest",
        &s(&src),
        &s(&dst),
        "--max-mem",
        "64MiB",
        "--target-chunks",
        "time=24",
        "--workers",
        "2",
    ]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    common::assert_within_max_mem(&err, 64 << 20);
    let store = open_zarr(&dst).unwrap();
    assert_eq!(store.template().sizes()["time"], u64::from(t0));
    let region = IndexMap::from([("time".to_owned(), 230..250)]);
    let got = store.read(&region, None).unwrap();
    let v = got.data_vars()["t"].data().as_view::<f32>().unwrap();
    for (t, la, lo) in [(0, 0, 0), (10, 120, 239), (19, 60, 100)] {
        assert_eq!(v[[t, la, lo]], value(230 + t as u32, la as u32, lo as u32));
    }
}

/// A too-large chunk for the budget is refused before anything is written,
/// saying what to change.
#[test]
fn a_chunk_over_the_budget_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("nc");
    std::fs::create_dir_all(&src).unwrap();
    write_cdf1(&src.join("a.nc"), 0, 100, 121, 240);
    let dst = dir.path().join("out.zarr");
    let out = xbeam(&["ingest", &s(&src), &s(&dst), "--max-mem", "8MiB"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("use --target-chunks to cut it (for example time="),
        "{err}"
    );
    assert!(!dst.exists());
}

/// An append stopped half way (here: one chunk cannot be written, after
/// the store grew) leaves the store recorded as mid-append; the next
/// `--append` finishes it, and the store then equals an ingest of both
/// files at once. A file the store holds that changes afterwards is
/// refused, not skipped.
#[test]
fn an_interrupted_append_is_finished_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("nc");
    std::fs::create_dir_all(&src).unwrap();
    for f in ["a.nc", "b.nc"] {
        std::fs::copy(fixtures("contig").join(f), src.join(f)).unwrap();
    }
    let whole = dir.path().join("whole.zarr");
    let glob = format!("{}/*.nc", src.display());
    let out = xbeam(&[
        "ingest",
        &glob,
        &s(&whole),
        "--quiet",
        "--target-chunks",
        "time=3",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list = dir.path().join("first.txt");
    std::fs::write(&list, format!("{}\n", src.join("a.nc").display())).unwrap();
    let dst = dir.path().join("out.zarr");
    let out = xbeam(&[
        "ingest",
        &format!("@{}", list.display()),
        &s(&dst),
        "--quiet",
        "--target-chunks",
        "time=3",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // a directory where t's third chunk (steps 6-8) goes: its write fails
    let blocker = dst.join("t/c/2/0/0");
    std::fs::create_dir_all(blocker.join("in-the-way")).unwrap();
    let out = xbeam(&["ingest", &glob, &s(&dst), "--append", "--quiet"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let record = std::fs::read_to_string(dst.join(".xbeam-ingest.json")).unwrap();
    assert!(record.contains("\"pending\""), "{record}");
    assert_eq!(open_zarr(&dst).unwrap().template().sizes()["time"], 9);
    assert!(
        !xbeam::io::verify(&dst).unwrap().problems.is_empty(),
        "a chunk is missing"
    );
    // the way cleared, the next append finishes it
    std::fs::remove_dir_all(&blocker).unwrap();
    let out = xbeam(&["ingest", &glob, &s(&dst), "--append"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("finished the append of 1 file(s)"),
        "{}",
        stderr(&out)
    );
    let all = IndexMap::new();
    let appended = open_zarr(&dst).unwrap().read(&all, None).unwrap();
    let at_once = open_zarr(&whole).unwrap().read(&all, None).unwrap();
    assert!(appended.identical(&at_once), "{appended}\nvs\n{at_once}");
    assert!(xbeam::io::verify(&dst).unwrap().problems.is_empty());
    let record = std::fs::read_to_string(dst.join(".xbeam-ingest.json")).unwrap();
    assert!(!record.contains("\"pending\""), "{record}");
    // nothing more to do
    let out = xbeam(&["ingest", &glob, &s(&dst), "--append"]);
    assert!(
        stderr(&out).contains("0 new file(s) appended, 2 already"),
        "{}",
        stderr(&out)
    );
    // a file the store holds that changes is refused, not skipped
    let b = std::fs::read(src.join("b.nc")).unwrap();
    std::fs::write(src.join("b.nc"), [&b[..], &[0u8; 4][..]].concat()).unwrap();
    let out = xbeam(&["ingest", &glob, &s(&dst), "--append"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("has changed since"),
        "{}",
        stderr(&out)
    );
}
