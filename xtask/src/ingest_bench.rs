//! `cargo xtask bench ingest`: many NetCDF files into one Zarr store, timed
//! as users run it, side by side in one run: `xbeam ingest DIR OUT
//! --workers 2 --max-mem 1GiB` (the CLI, best of 3) and xarray's
//! `open_mfdataset(sorted(files), combine="nested",
//! concat_dim="time").chunk({"time": <first file's length>}).to_zarr(OUT)`
//! on dask's threaded scheduler with 2 threads
//! (`xtask/bench/xarray_ingest.py`, best of 2).
//!
//! The inputs are `../shared/bench/make_dataset.py --netcdf-dir` (one
//! NetCDF-4 file per month, ERA5-like, contiguous and uncompressed) at
//! 0.25 GB and 1 GB, and the same files re-written with zlib level 1 and
//! shuffle in (24, lat, lon) chunks (`xtask/bench/nc_zlib.py`); made once in
//! `target/bench-data/` with the interop virtualenv's Python (the pinned
//! xarray, netCDF4 and dask of `xtask/interop/requirements.txt`, which the
//! baseline also runs in). xbeam's store is compared with xarray's in
//! xarray (`assert_identical`). Peak RSS from `/usr/bin/time -v`. Writes
//! `target/bench-data/ingest-bench.json` with the ratios and the issue's
//! targets: at least 4x xarray's speed, and peak RSS within `--max-mem` +
//! 200 MB.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use super::rechunk_bench::{
    build, clear, compare_in_python, json_line, loadavg, measure, opt, print_rows, Row,
};

const XBEAM: &str = "xbeam ingest (CLI)";
const XARRAY: &str = "xarray open_mfdataset + dask";
const MAX_MEM: &str = "1GiB";
const RSS_BOUND: f64 = (1u64 << 30) as f64 + 200e6;
const SPEEDUP: f64 = 4.0;

/// One input: its name, size for `make_dataset.py --gb`, and whether it is
/// the zlib variant.
struct Input {
    name: &'static str,
    gb: &'static str,
    zlib: bool,
}

const INPUTS: [Input; 4] = [
    Input {
        name: "0.25gb",
        gb: "0.25",
        zlib: false,
    },
    Input {
        name: "0.25gb_zlib",
        gb: "0.25",
        zlib: true,
    },
    Input {
        name: "1gb",
        gb: "1",
        zlib: false,
    },
    Input {
        name: "1gb_zlib",
        gb: "1",
        zlib: true,
    },
];

/// The directory of `input`'s files, made if missing.
fn ensure_input(root: &Path, python: &Path, data: &Path, input: &Input) -> Result<PathBuf, String> {
    let raw = data.join(format!("nc_{}gb", input.gb));
    let raw_done = data.join(format!("nc_{}gb.done", input.gb));
    if !raw_done.exists() {
        let _ = std::fs::remove_dir_all(&raw);
        let mut make = Command::new(python);
        make.arg(root.join("../shared/bench/make_dataset.py"))
            .args(["--gb", input.gb, "--no-zarr", "--netcdf-dir"])
            .arg(&raw);
        super::run(&format!("bench: NetCDF files of {} GB", input.gb), make)?;
        std::fs::write(&raw_done, "").map_err(|e| e.to_string())?;
    }
    if !input.zlib {
        return Ok(raw);
    }
    let zlib = data.join(format!("nc_{}gb_zlib", input.gb));
    let zlib_done = data.join(format!("nc_{}gb_zlib.done", input.gb));
    if !zlib_done.exists() {
        let _ = std::fs::remove_dir_all(&zlib);
        let mut make = Command::new(python);
        make.arg(root.join("xtask/bench/nc_zlib.py"))
            .arg(&raw)
            .arg(&zlib);
        super::run(
            &format!("bench: zlib NetCDF files of {} GB", input.gb),
            make,
        )?;
        std::fs::write(&zlib_done, "").map_err(|e| e.to_string())?;
    }
    Ok(zlib)
}

/// Bytes of data (uncompressed) in an ingested store, from the summary
/// line `xbeam ingest: in 1.00 GB, ...`.
fn summary_gb(stderr: &str) -> Option<f64> {
    let line = stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("xbeam ingest: in "))?;
    line.split_whitespace().next()?.parse().ok()
}

fn xbeam_row(xbeam: &Path, dir: &Path, out: &Path, scratch: &Path) -> (Row, Option<f64>) {
    let mut row = Row {
        tool: XBEAM,
        ..Row::default()
    };
    let mut gb = None;
    for _ in 0..3 {
        let _ = clear(out);
        let mut cmd = Command::new(xbeam);
        cmd.arg("ingest")
            .arg(dir)
            .arg(out)
            .args(["--workers", "2", "--max-mem", MAX_MEM]);
        match measure(&cmd, scratch, None) {
            Ok(run) => {
                gb = summary_gb(&run.stderr).or(gb);
                row.add(&run, None);
            }
            Err(e) => return (Row::failed(XBEAM, e), gb),
        }
    }
    (row, gb)
}

fn xarray_row(python: &Path, root: &Path, dir: &Path, out: &Path, scratch: &Path) -> Row {
    let mut row = Row {
        tool: XARRAY,
        ..Row::default()
    };
    for _ in 0..2 {
        let _ = clear(out);
        let mut cmd = Command::new(python);
        cmd.arg(root.join("xtask/bench/xarray_ingest.py"))
            .arg("--input")
            .arg(dir)
            .arg("--output")
            .arg(out)
            .args(["--threads", "2"]);
        match measure(&cmd, scratch, None) {
            Ok(run) => {
                let own = json_line(&run.stdout, "RESULT ").and_then(|v| v["seconds"].as_f64());
                row.add(&run, own);
            }
            Err(e) => return Row::failed(XARRAY, e),
        }
    }
    row
}

/// xbeam's store against xarray's, in xarray.
const COMPARE: &str = r#"
import sys, xarray as xr
want = xr.open_zarr(sys.argv[1]).load()
got = xr.open_zarr(sys.argv[2]).load()
xr.testing.assert_identical(got, want)
print("identical")
"#;

fn check(python: &Path, ours: &Path, theirs: &Path) -> String {
    compare_in_python(
        python,
        COMPARE,
        (theirs, ours),
        "identical to xarray's",
        "xarray's",
    )
}

fn table(input: &Input, gb: f64, rows: &[Row], equal: &str) -> Value {
    let ours = rows.iter().find(|r| r.tool == XBEAM).and_then(Row::ok);
    eprintln!(
        "\n{} ({}, {gb:.2} GB of data) into Zarr v3; xbeam's store {equal}",
        input.name,
        if input.zlib {
            "NetCDF-4, zlib 1 + shuffle"
        } else {
            "NetCDF-4, uncompressed"
        }
    );
    let out = print_rows(rows, gb, ours);
    let speedup = rows
        .iter()
        .find(|r| r.tool == XARRAY)
        .and_then(Row::ok)
        .zip(ours)
        .map(|(x, o)| x / o);
    let rss = rows.iter().find(|r| r.tool == XBEAM).and_then(|r| r.rss);
    let fast = speedup.map(|s| s >= SPEEDUP);
    let lean = rss.map(|r| r <= RSS_BOUND);
    let verdict = |m: Option<bool>| m.map_or("not measured", |m| if m { "met" } else { "MISSED" });
    eprintln!(
        "target {}: >= {SPEEDUP}x xarray: {}x ({}); peak RSS <= --max-mem {MAX_MEM} + 200 MB: {} MB ({})",
        input.name,
        opt(speedup, 1.0, 2),
        verdict(fast),
        opt(rss, 1e6, 0),
        verdict(lean)
    );
    json!({
        "input": input.name, "zlib": input.zlib, "data_gb": gb, "xbeam_output": equal, "rows": out,
        "targets": [
            {"target": format!(">= {SPEEDUP}x xarray"), "value": speedup, "met": fast},
            {"target": "peak RSS <= max-mem + 200 MB", "value_mb": rss.map(|r| r / 1e6), "met": lean},
        ],
    })
}

/// Runs the bench; `args` may name inputs with `--inputs 1gb,1gb_zlib`.
pub(crate) fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let chosen: Vec<&Input> = match args.iter().position(|a| a == "--inputs") {
        Some(i) => {
            let list = args
                .get(i + 1)
                .ok_or("bench ingest: --inputs needs a value")?;
            list.split(',')
                .map(|n| {
                    INPUTS.iter().find(|x| x.name == n.trim()).ok_or_else(|| {
                        format!("bench ingest: unknown input {n:?}: expected 0.25gb, 0.25gb_zlib, 1gb or 1gb_zlib")
                    })
                })
                .collect::<Result<_, _>>()?
        }
        None => INPUTS.iter().collect(),
    };
    let data = root.join("target/bench-data");
    let scratch = data.join("ingest-bench");
    std::fs::create_dir_all(&scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    let python = super::python_env()?;
    let xbeam = build(
        root,
        &scratch,
        "bench: build the xbeam CLI (release)",
        &["--bin", "xbeam"],
        "xbeam",
    )?;
    let started = loadavg();
    let mut tables = Vec::new();
    let mut failed = false;
    for input in chosen {
        let dir = ensure_input(root, &python, &data, input)?;
        let (ours, theirs) = (scratch.join("xbeam.zarr"), scratch.join("xarray.zarr"));
        let (row, gb) = xbeam_row(&xbeam, &dir, &ours, &scratch);
        failed |= row.problem.is_some();
        let rows = vec![row, xarray_row(&python, root, &dir, &theirs, &scratch)];
        let equal = if ours.exists() && theirs.exists() {
            check(&python, &ours, &theirs)
        } else {
            "not checked (a run failed)".into()
        };
        failed |= equal.starts_with("DIFFERS");
        tables.push(table(input, gb.unwrap_or(0.0), &rows, &equal));
        let _ = clear(&ours);
        let _ = clear(&theirs);
    }
    let report = json!({
        "job": format!("ingest of monthly NetCDF-4 files into Zarr v3, 2 workers, --max-mem {MAX_MEM}"),
        "load_average_start": started,
        "load_average_end": loadavg(),
        "inputs": tables,
    });
    let path = data.join("ingest-bench.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&path, text + "\n")
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("\nwritten: {}", path.display());
    if failed {
        Err("xbeam ingest failed or differs from xarray: see the tables above".into())
    } else {
        Ok(())
    }
}
