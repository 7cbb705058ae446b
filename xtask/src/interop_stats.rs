//! `xbeam climatology` and `xbeam stats` against xarray and xarray-beam
//! (part of `cargo xtask interop`): `xtask/interop/stats_fixtures.py make`
//! writes stores in three calendars with xarray and lists the jobs; each is
//! run here by `target/debug/xbeam`; then its `check` compares every output
//! with xarray's groupby / reductions / weighted reductions (and the month
//! mean with xarray-beam's `Mean.PerKey`); the script's docstring lists
//! what and why.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use super::{quiet, read_json, run, workspace_root};

/// Runs the comparison in `dir/stats` with the interop venv's `python`.
pub(crate) fn run_all(python: &Path, dir: &Path) -> Result<(), String> {
    let root = workspace_root();
    let script = root.join("xtask").join("interop").join("stats_fixtures.py");
    let xbeam = root.join("target").join("debug").join("xbeam");
    let dir = dir.join("stats");
    let mut make = Command::new(python);
    make.arg(&script).arg("make").arg(&dir);
    run("interop stats: source stores written by xarray", make)?;
    let jobs = read_json(&dir.join("jobs.json"))?;
    let jobs = jobs.as_array().ok_or("jobs.json is not a list")?;
    let start = Instant::now();
    for job in jobs {
        let args: Vec<&str> = job["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_str)
            .collect();
        quiet(Command::new(&xbeam).args(&args))?;
    }
    eprintln!(
        "==> interop stats: xbeam ran {} climatologies and reductions in {:.1} s",
        jobs.len(),
        start.elapsed().as_secs_f64()
    );
    let mut check = Command::new(python);
    check.arg(&script).arg("check").arg(&dir);
    run("interop stats: compare with xarray and xarray-beam", check)
}
