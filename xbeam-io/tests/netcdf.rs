//! NetCDF files written by netCDF4-python (`tests/data/netcdf/make.py`
//! says what each holds) read as one dataset: values, masking, unpacking,
//! times in units that differ per file, classic and NetCDF-4 (contiguous
//! and zlib-chunked) files, regions across files, and the errors that
//! name the file.

use std::path::PathBuf;

use indexmap::IndexMap;
use xbeam_chunk::calendar::TimeUnit;
use xbeam_chunk::{DType, Dataset};
use xbeam_io::{expand_pattern, open_netcdf, ChunkSource, IoError, NetcdfSource};

fn files(set: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/netcdf");
    expand_pattern(&format!("{}/{set}/*.nc", dir.display())).unwrap()
}

fn open(set: &str) -> Result<NetcdfSource, IoError> {
    open_netcdf(&files(set), "time", &|| {})
}

/// What `make.py` wrote at (time, lat, lon) of t.
fn t_at(t: usize, la: usize, lo: usize) -> f32 {
    if (t, la, lo) == (1, 0, 0) {
        return f32::NAN;
    }
    (1000 * t + 10 * la + lo) as f32
}

fn read(source: &NetcdfSource, time: std::ops::Range<u64>) -> Dataset {
    let region = IndexMap::from([("time".to_owned(), time)]);
    source.read(&region, None).unwrap()
}

fn check_values(ds: &Dataset, start: usize) {
    let t = ds.data_vars()["t"].data().as_view::<f32>().unwrap();
    for ((i, la, lo), v) in t.indexed_iter().map(|(ix, v)| ((ix[0], ix[1], ix[2]), *v)) {
        let want = t_at(start + i, la, lo);
        assert!(
            v == want || (v.is_nan() && want.is_nan()),
            "t[{}, {la}, {lo}] = {v}, expected {want}",
            start + i
        );
    }
    let p = ds.data_vars()["p"].data().to_f64().unwrap();
    for (ix, v) in p.indexed_iter() {
        assert_eq!(*v, 0.5 * (start + ix[0]) as f64 + 100.0);
    }
}

#[test]
fn every_format_reads_as_one_dataset_with_each_files_encoding() {
    for set in ["nc4", "contig", "classic", "classic_fixed"] {
        let source = open(set).unwrap();
        let t = source.template();
        assert_eq!(t.sizes()["time"], 9, "{set}");
        assert_eq!(t.sizes()["lat"], 3);
        assert_eq!(source.chunks()["time"], 5, "the first file's length");
        assert_eq!(t.data_vars()["t"].dtype, DType::F32);
        // int16 packed with float64 scale_factor and add_offset: float64
        assert_eq!(t.data_vars()["p"].dtype, DType::F64);
        assert_eq!(t.data_vars()["p"].encoding["dtype"], "int16");
        assert_eq!(t.data_vars()["p"].encoding["scale_factor"], 0.5);
        assert_eq!(t.data_vars()["t"].attrs["units"], "K");
        // hours since 2004-01-01 (int) then days since 2004-01-02 (float):
        // one axis, 6 hours apart, stored in the first file's units
        let time = &t.coords()["time"];
        let (ticks, unit, _) = time.data().datetime_ticks().unwrap();
        let start = xbeam_chunk::calendar::Calendar::Standard
            .to_ticks(&xbeam_chunk::calendar::DateTime::new(2004, 1, 1), unit)
            .unwrap();
        let step = 6 * TimeUnit::Hours.nanos() / unit.nanos();
        let want: Vec<i64> = (0..9).map(|k| start + k * step).collect();
        assert_eq!(ticks.iter().copied().collect::<Vec<_>>(), want, "{set}");
        assert_eq!(time.encoding()["units"], "hours since 2004-01-01");
        assert!(source
            .notes()
            .iter()
            .any(|n| n.contains("time units differ")));
        // the whole, and regions within one file and across both
        check_values(&read(&source, 0..9), 0);
        check_values(&read(&source, 1..4), 1);
        check_values(&read(&source, 3..8), 3);
        check_values(&read(&source, 6..9), 6);
        // a region cut along other dimensions too
        let region = IndexMap::from([("time".to_owned(), 4..6), ("lat".to_owned(), 1..3)]);
        let ds = source.read(&region, None).unwrap();
        let v = ds.data_vars()["t"].data().as_view::<f32>().unwrap();
        assert_eq!(v.shape(), &[2, 2, 4]);
        assert_eq!(v[[1, 1, 3]], t_at(5, 2, 3), "{set}");
    }
}

#[test]
fn a_file_that_does_not_match_is_named() {
    let err = open("bad").unwrap_err().to_string();
    assert!(err.contains("b.nc") && err.contains("'lat'"), "{err}");
    let err = open("noleap").unwrap_err().to_string();
    assert!(
        err.contains("b.nc") && err.contains("a.nc") && err.contains("noleap"),
        "{err}"
    );
    let err = open_netcdf(&files("nc4"), "step", &|| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("no dimension 'step'"), "{err}");
}

#[test]
fn files_that_are_not_netcdf_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.nc");
    std::fs::write(&junk, b"this is not a NetCDF file").unwrap();
    let err = open_netcdf(&[junk], "time", &|| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("junk.nc") && err.contains("NetCDF"), "{err}");
    let err = open_netcdf(&[dir.path().to_path_buf()], "time", &|| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected a NetCDF file"), "{err}");
    let truncated = dir.path().join("truncated.nc");
    let whole = std::fs::read(&files("classic")[0]).unwrap();
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    let opened = open_netcdf(&[truncated], "time", &|| {});
    let err = match opened {
        Err(e) => e.to_string(),
        Ok(s) => s
            .read(&IndexMap::new(), None)
            .expect_err("half a file cannot be read whole")
            .to_string(),
    };
    assert!(err.contains("truncated.nc"), "{err}");
}

#[test]
fn scanning_reports_every_file() {
    let count = std::sync::atomic::AtomicUsize::new(0);
    open_netcdf(&files("nc4"), "time", &|| {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    })
    .unwrap();
    assert_eq!(count.into_inner(), 2);
}
