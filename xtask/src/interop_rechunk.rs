//! `xbeam rechunk` against xarray-beam's `Rechunk` + `ChunksToZarr` (part
//! of `cargo xtask interop`): `xtask/interop/rechunk_fixtures.py make`
//! writes odd-shaped v2 and v3 stores with xarray and lists the jobs; every
//! job is run here by `target/debug/xbeam rechunk` (with `--max-mem 2MiB`,
//! whose plan is kept from `--dry-run`, and with the default budget) while
//! the script's `beam` runs xarray-beam on the `DirectRunner` beside it; then
//! its `check` compares, in xarray, each store xbeam wrote with the source
//! and with xarray-beam's (the script's docstring lists what and why).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{quiet, read_json, run, workspace_root};

/// Runs the comparison in `dir/rechunk` with the interop venv's `python`.
pub(crate) fn run_all(python: &Path, dir: &Path) -> Result<(), String> {
    let root = workspace_root();
    let script = root
        .join("xtask")
        .join("interop")
        .join("rechunk_fixtures.py");
    let xbeam = root.join("target").join("debug").join("xbeam");
    let dir = dir.join("rechunk");
    let mut make = Command::new(python);
    make.arg(&script).arg("make").arg(&dir);
    run("interop rechunk: source stores written by xarray", make)?;
    let jobs = read_json(&dir.join("jobs.json"))?;
    let jobs = jobs.as_array().ok_or("jobs.json is not a list")?;

    // xarray-beam (a few seconds per rechunk) runs beside xbeam's jobs
    eprintln!("\n==> interop rechunk: xarray-beam's Rechunk + ChunksToZarr (in the background)");
    let beam = Command::new(python)
        .arg(&script)
        .arg("beam")
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", script.display()))?;

    let start = Instant::now();
    let mut count = 0;
    let ours = jobs.iter().try_for_each(|job| {
        for r in job["runs"].as_array().into_iter().flatten() {
            let args: Vec<&str> = r["args"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(serde_json::Value::as_str)
                .collect();
            quiet(Command::new(&xbeam).args(&args))?;
            let plan = Command::new(&xbeam)
                .args(&args)
                .arg("--dry-run")
                .output()
                .map_err(|e| format!("cannot run xbeam rechunk --dry-run: {e}"))?;
            if !plan.status.success() {
                return Err(format!(
                    "xbeam {} --dry-run failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&plan.stderr)
                ));
            }
            let path = r["plan"].as_str().ok_or("a run without a plan path")?;
            std::fs::write(path, &plan.stdout).map_err(|e| format!("cannot write {path}: {e}"))?;
            count += 1;
        }
        // `--transpose`, on the pencil jobs
        if let Some(args) = job["transposed"]["args"].as_array() {
            let args: Vec<&str> = args.iter().filter_map(serde_json::Value::as_str).collect();
            quiet(Command::new(&xbeam).args(&args))?;
            count += 1;
        }
        Ok(())
    });
    if ours.is_ok() {
        eprintln!(
            "==> interop rechunk: xbeam ran {count} rechunks (and their dry runs) in {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
    let beam = beam
        .wait_with_output()
        .map_err(|e| format!("xarray-beam's run: {e}"))?;
    eprint!("{}", String::from_utf8_lossy(&beam.stdout));
    if !beam.status.success() {
        return Err(format!(
            "xarray-beam's rechunks failed ({}):\n{}",
            beam.status,
            String::from_utf8_lossy(&beam.stderr)
        ));
    }
    ours?;
    let mut check = Command::new(python);
    check.arg(&script).arg("check").arg(&dir);
    run(
        "interop rechunk: xbeam's stores against xarray-beam's",
        check,
    )
}
