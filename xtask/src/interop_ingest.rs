//! `xbeam ingest` against xarray's `open_mfdataset` (part of `cargo xtask
//! interop`): `xtask/interop/ingest_fixtures.py make` writes NetCDF files
//! with netCDF4-python (NetCDF-4 with zlib, CDF-1/2/5, other time units
//! and packing per file, one file per variable, mismatched files) and
//! lists the jobs; each runs here with `target/debug/xbeam`, its exit code
//! and stderr recorded; then `check` compares every store with xarray's
//! (the script's docstring lists the cases).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Map, Value};

use super::{read_json, run, workspace_root};

/// Runs the comparison in `dir/ingest` with the interop venv's `python`.
pub(crate) fn run_all(python: &Path, dir: &Path) -> Result<(), String> {
    let root = workspace_root();
    let script = root
        .join("xtask")
        .join("interop")
        .join("ingest_fixtures.py");
    let xbeam = root.join("target").join("debug").join("xbeam");
    let dir = dir.join("ingest");
    let mut make = Command::new(python);
    make.arg(&script).arg("make").arg(&dir);
    run(
        "interop ingest: NetCDF files written by netCDF4-python",
        make,
    )?;
    let jobs = read_json(&dir.join("jobs.json"))?;
    let jobs = jobs.as_array().ok_or("jobs.json is not a list")?;
    let start = Instant::now();
    let mut results = Map::new();
    for job in jobs {
        let name = job["name"].as_str().ok_or("a job has no name")?;
        let args: Vec<&str> = job["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let out = Command::new(&xbeam)
            .args(&args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", xbeam.display()))?;
        results.insert(
            name.to_owned(),
            json!({
                "code": out.status.code(),
                "stderr": String::from_utf8_lossy(&out.stderr),
            }),
        );
    }
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_vec_pretty(&Value::Object(results)).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("cannot write results.json: {e}"))?;
    eprintln!(
        "==> interop ingest: xbeam ran {} ingests in {:.1} s",
        jobs.len(),
        start.elapsed().as_secs_f64()
    );
    let mut check = Command::new(python);
    check.arg(&script).arg("check").arg(&dir);
    run(
        "interop ingest: compare with xarray's open_mfdataset",
        check,
    )
}
