//! `--max-mem` bounds the whole process: a pancake → pencil rechunk of
//! 300 MB (a synthetic source that makes each pancake when it is read, so
//! the input is never in memory) with a 64 MiB budget, run in a child
//! process, peaks under budget + 200 MB of RSS, and every pencil holds the
//! right values.

mod common;

use std::ops::Range;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use indexmap::IndexMap;
use xbeam::chunk::{Array, DType, Dataset, Template, VarSchema, Variable};
use xbeam::io::{ChunkSource, IoError};
use xbeam::key::{ChunksRequest, Key, VarSet};
use xbeam::runner::{Pipeline, Runner};
use xbeam::ChunkedDataset;

const HOURS: u64 = 2592; // 300 MB of float32 on a 121 x 240 grid
const LAT: u64 = 121;
const LON: u64 = 240;
const MAX_MEM: usize = 64 << 20;

fn value(t: u64, lat: u64, lon: u64) -> f32 {
    ((t * 7 + lat * 3 + lon) % 1000) as f32
}

/// An ERA5-like source whose chunks are computed when read.
struct Synthetic {
    template: Template,
    chunks: IndexMap<String, u64>,
}

impl Synthetic {
    fn new() -> Synthetic {
        let sizes: IndexMap<String, u64> = [("time", HOURS), ("latitude", LAT), ("longitude", LON)]
            .into_iter()
            .map(|(d, s)| (d.to_owned(), s))
            .collect();
        let schema = VarSchema {
            dims: vec!["time".into(), "latitude".into(), "longitude".into()],
            dtype: DType::F32,
            attrs: IndexMap::default(),
            encoding: IndexMap::default(),
        };
        let template = Template::new(
            sizes,
            [("t".to_owned(), schema)].into_iter().collect(),
            IndexMap::default(),
            IndexMap::default(),
        )
        .unwrap();
        Synthetic {
            template,
            chunks: [("time".to_owned(), 24)].into_iter().collect(),
        }
    }
}

impl ChunkSource for Synthetic {
    fn template(&self) -> &Template {
        &self.template
    }

    fn chunks(&self) -> &IndexMap<String, u64> {
        &self.chunks
    }

    fn read(
        &self,
        region: &IndexMap<String, Range<u64>>,
        _vars: Option<&VarSet>,
    ) -> Result<Dataset, IoError> {
        let range = |d: &str, size: u64| region.get(d).cloned().unwrap_or(0..size);
        let (t, la, lo) = (
            range("time", HOURS),
            range("latitude", LAT),
            range("longitude", LON),
        );
        let mut values = Vec::with_capacity(
            ((t.end - t.start) * (la.end - la.start) * (lo.end - lo.start)) as usize,
        );
        for i in t.clone() {
            for j in la.clone() {
                values.extend(lo.clone().map(|k| value(i, j, k)));
            }
        }
        let shape = vec![
            (t.end - t.start) as usize,
            (la.end - la.start) as usize,
            (lo.end - lo.start) as usize,
        ];
        let var = Variable::new(
            ["time", "latitude", "longitude"],
            Array::from_vec(shape, values)?,
        )?;
        Ok(Dataset::new().with_data_var("t", var)?)
    }

    fn describe(&self) -> String {
        "a synthetic source".into()
    }
}

/// Peak RSS of this process in MB.
fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// The child: runs the rechunk, checks every pencil, prints its peak RSS.
#[test]
fn memory_child() {
    if std::env::var_os("XBEAM_MEMORY_CHILD").is_none() {
        return; // run by `rechunk_stays_within_max_mem` in a process of its own
    }
    let p = Pipeline::new();
    let ds = ChunkedDataset::from_source(&p, Arc::new(Synthetic::new()), &ChunksRequest::default())
        .unwrap();
    let pencils = ds
        .rechunk(&"time=-1,latitude=11,longitude=24".parse().unwrap())
        .unwrap();
    let checked = Arc::new(AtomicU64::new(0));
    let count = checked.clone();
    pencils
        .to_chunks()
        .unwrap()
        .for_each("check", move |(key, chunk): (Key, Dataset)| {
            let v = chunk.data_var("t")?.data().as_view::<f32>()?;
            let (lat0, lon0) = (
                key.offset_or_zero("latitude"),
                key.offset_or_zero("longitude"),
            );
            assert_eq!(v.shape(), [HOURS as usize, 11, 24]);
            for (t, i, j) in [(0, 0, 0), (HOURS as usize - 1, 10, 23), (1000, 5, 7)] {
                assert_eq!(
                    v[[t, i, j]],
                    value(t as u64, lat0 + i as u64, lon0 + j as u64),
                    "{key} [{t},{i},{j}]"
                );
            }
            count.fetch_add(1, Ordering::Relaxed);
            Ok::<_, xbeam::chunk::ChunkError>(())
        });
    let metrics = p
        .run(&Runner::local_with_workers(2).max_mem(MAX_MEM).quiet())
        .unwrap();
    let spilled: u64 = metrics.transforms.values().map(|m| m.spilled_bytes).sum();
    assert_eq!(
        checked.load(Ordering::Relaxed),
        11 * 10,
        "every pencil was checked"
    );
    println!("PEAK_RSS_MB={} SPILLED={spilled}", peak_rss_mb());
}

#[test]
fn rechunk_stays_within_max_mem() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "memory_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("XBEAM_MEMORY_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("PEAK_RSS_MB=").map(|(_, r)| r.to_owned()))
        .unwrap_or_else(|| panic!("no peak RSS in {stdout}"));
    let mut parts = line.split(" SPILLED=");
    let peak: u64 = parts.next().unwrap().trim().parse().unwrap();
    let spilled: u64 = parts.next().unwrap().trim().parse().unwrap();
    let data_mb = HOURS * LAT * LON * 4 / (1 << 20);
    let limit = (MAX_MEM >> 20) as u64 + 200;
    assert!(
        spilled > 0,
        "a 300 MB rechunk under a 64 MiB budget must spill"
    );
    assert!(
        peak <= limit,
        "peak RSS {peak} MB over max-mem + 200 MB = {limit} MB ({data_mb} MB of data)"
    );
}

/// `xbeam generate` of `gb` GB over `nlat × nlon` points into `out`.
fn generate(out: &std::path::Path, (gb, nlat, nlon): (&str, &str, &str)) {
    let out = out.to_str().unwrap();
    xbeam(&[
        "generate", "--gb", gb, "--nlat", nlat, "--nlon", nlon, "--quiet", "--out", out,
    ]);
}

/// Runs the `xbeam` binary, which must succeed; returns its stderr.
fn xbeam(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_xbeam"))
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {err}");
    err
}

/// `xbeam rechunk` of a store 8× `--max-mem` (135 MB under 16 MiB), run as
/// users run it: the summary's peak RSS stays under max-mem + 200 MB, and
/// the output holds the input's data in the target chunks.
#[test]
fn cli_rechunk_of_eight_times_max_mem_stays_within_it() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src.zarr"), dir.path().join("dst.zarr"));
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    xbeam(&[
        "generate",
        "--gb",
        "0.135",
        "--nlat",
        "121",
        "--nlon",
        "240",
        "--chunks",
        "time=2",
        "--quiet",
        "--out",
        &s(&src),
    ]);
    let err = xbeam(&[
        "rechunk",
        &s(&src),
        &s(&dst),
        "--target-chunks",
        "time=-1,latitude=11,longitude=12",
        "--max-mem",
        "16MiB",
        "--workers",
        "2",
    ]);
    common::assert_within_max_mem(&err, 16 << 20);
    let all = IndexMap::new();
    let a = xbeam::io::open_zarr(&src)
        .unwrap()
        .read(&all, None)
        .unwrap();
    let b = xbeam::io::open_zarr(&dst).unwrap();
    assert_eq!(b.chunks()["latitude"], 11);
    assert_eq!(b.chunks()["time"], a.sizes()["time"]);
    assert!(a.identical(&b.read(&all, None).unwrap()));
}

/// `xbeam climatology --window 61` (WeatherBench 2's, streamed over the
/// days) of a store 3× `--max-mem` (50 MB under 16 MiB), run as users run
/// it: the summary's peak RSS stays under max-mem + 200 MB, and the result
/// is the one of an ample budget.
#[test]
fn cli_windowed_climatology_of_three_times_max_mem_stays_within_it() {
    // half a year of a 61 × 120 grid: each day read step by step
    let sizes = windowed_climatology_within_max_mem(("61", "120"), &[]);
    assert!(sizes["dayofyear"] > 30, "{sizes:?}");
}

#[test]
fn cli_windowed_climatology_of_many_years_stays_within_max_mem() {
    // 5.6 years of an 8 × 16 grid: days of 5 or 6 float32 steps per hour,
    // gathered into their sums (16 bytes an element for a mean)
    let sizes = windowed_climatology_within_max_mem(("8", "16"), &[]);
    assert_eq!(sizes["dayofyear"], 366, "{sizes:?}");
}

#[test]
fn cli_windowed_quantiles_of_many_years_stay_within_max_mem() {
    // every value of a block held (49 MB a variable on one core): cut
    // into stripes, and rechunked into pencils first, under 16 MiB
    let sizes = windowed_climatology_within_max_mem(("8", "16"), &["--quantiles", "0.1,0.9"]);
    assert_eq!(sizes["quantile"], 2, "{sizes:?}");
}

/// Runs the windowed climatology of a generated 0.05 GB store of `(nlat,
/// nlon)` points under `--max-mem 16MiB` (a third of it) as a child
/// process, checks its peak RSS, and that 1 GiB gives the same result;
/// returns the result's sizes.
fn windowed_climatology_within_max_mem(
    (nlat, nlon): (&str, &str),
    flags: &[&str],
) -> IndexMap<String, u64> {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.zarr");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    generate(&src, ("0.05", nlat, nlon));
    let clim = |dst: &std::path::Path, max_mem: &str| {
        let (src, dst) = (s(&src), s(dst));
        let mut args = vec![
            "climatology",
            &src,
            &dst,
            "--groupby",
            "time.hour,time.dayofyear",
            "--window",
            "61",
            "--max-mem",
            max_mem,
            "--workers",
            "2",
        ];
        args.extend_from_slice(flags);
        xbeam(&args)
    };
    let (small, ample) = (dir.path().join("small.zarr"), dir.path().join("ample.zarr"));
    let err = clim(&small, "16MiB");
    common::assert_within_max_mem(&err, 16 << 20);
    clim(&ample, "1GiB");
    let all = IndexMap::new();
    let a = xbeam::io::open_zarr(&small)
        .unwrap()
        .read(&all, None)
        .unwrap();
    let b = xbeam::io::open_zarr(&ample)
        .unwrap()
        .read(&all, None)
        .unwrap();
    assert_eq!(a.sizes()["hour"], 24);
    assert!(a.identical(&b), "the budget changed the result");
    a.sizes().clone()
}

/// A store chunked in pencils (time whole, 25 MB a chunk, as WeatherBench 2
/// keeps its inputs) under budgets too small for the windowed climatology:
/// each refusal (exit 2, nothing written) names a budget, and that budget
/// runs within max-mem + 200 MB, though it cuts coarser stripes than the
/// smaller one did (the pencil, decoded whole, does not shrink with them).
#[test]
fn cli_windowed_climatology_of_pencils_names_a_budget_that_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (src, pencils) = (dir.path().join("src.zarr"), dir.path().join("pencils.zarr"));
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    generate(&src, ("0.05", "8", "16"));
    xbeam(&[
        "rechunk",
        &s(&src),
        &s(&pencils),
        "--target-chunks",
        "time=-1",
        "--quiet",
    ]);
    let dst = dir.path().join("clim.zarr");
    for budget in ["16MiB", "24MiB", "32MiB", "36MiB"] {
        let clim = |max_mem: &str| {
            Command::new(env!("CARGO_BIN_EXE_xbeam"))
                .args(["climatology", &s(&pencils), &s(&dst), "--groupby"])
                .args([
                    "time.hour,time.dayofyear",
                    "--window",
                    "61",
                    "--max-mem",
                    max_mem,
                ])
                .args(["--workers", "2", "--overwrite"])
                .output()
                .unwrap()
        };
        let out = clim(budget);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{budget}: {err}");
        assert!(!dst.exists(), "{budget}");
        let named = common::named_budget(&err);
        let out = clim(&named.to_string());
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{budget} named {named}: {err}");
        common::assert_within_max_mem(&err, named);
        std::fs::remove_dir_all(&dst).unwrap();
    }
}
