//! `xbeam copy` of the 1 GB bench store timed side by side with
//! `zarrs_reencode` (`zarrs_tools`) re-encoding the same arrays: the target
//! is within 1.25× of its time. It is found through `ZARRS_REENCODE`, on
//! `PATH`, or where `shared/bench/setup_venvs.sh` installs it
//! (`$XB_BASE/zt/bin`, default `~/.cache/xbeam-baseline/zt/bin`); without
//! it only xbeam is timed, with a note.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Best-of-N runs.
const REPEAT: usize = 3;

/// The bench store's data arrays.
const ARRAYS: [&str; 2] = ["temperature", "geopotential"];

pub(crate) fn zarrs_reencode() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ZARRS_REENCODE") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("zarrs_reencode"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let base = std::env::var_os("XB_BASE").map(PathBuf::from).or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/xbeam-baseline"))
        })?;
        Some(base.join("zt/bin/zarrs_reencode")).filter(|p| p.is_file())
    })
}

/// The best wall time of `REPEAT` runs of `make()`, clearing `out` first.
fn best_of(out: &Path, mut make: impl FnMut() -> Vec<Command>) -> Result<f64, String> {
    let mut best = f64::INFINITY;
    for _ in 0..REPEAT {
        if out.exists() {
            std::fs::remove_dir_all(out)
                .map_err(|e| format!("cannot clear {}: {e}", out.display()))?;
        }
        let start = Instant::now();
        for mut cmd in make() {
            super::quiet(&mut cmd)?;
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// Builds xbeam (release), makes the 1 GB store if needed, and times the
/// copy and the baseline.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    let (release, store) = super::release_bench_setup(root)?;
    let xbeam = release.join("xbeam");
    let data = root.join("target/bench-data");
    let out = data.join("copy-bench.zarr");
    let copy = best_of(&out, || {
        let mut cmd = Command::new(&xbeam);
        cmd.arg("copy").arg(&store).arg(&out).arg("--quiet");
        vec![cmd]
    })?;
    eprintln!("\nxbeam copy of {} (best of {REPEAT}):", store.display());
    eprintln!("  xbeam copy        {copy:7.3} s  {:6.2} GB/s", 1.0 / copy);
    let Some(zarrs) = zarrs_reencode() else {
        eprintln!(
            "  zarrs_reencode is not installed (shared/bench/setup_venvs.sh installs it): no baseline"
        );
        return Ok(());
    };
    let reencoded = data.join("zarrs-reencode.zarr");
    let baseline = best_of(&reencoded, || {
        ARRAYS
            .iter()
            .map(|a| {
                let mut cmd = Command::new(&zarrs);
                cmd.arg(store.join(a)).arg(reencoded.join(a));
                cmd
            })
            .collect()
    })?;
    eprintln!(
        "  zarrs_reencode    {baseline:7.3} s  {:6.2} GB/s  (both arrays, one after the other)",
        1.0 / baseline
    );
    eprintln!(
        "  copy: {:.2}x zarrs_reencode's time (target <= 1.25x)",
        copy / baseline
    );
    for dir in [&out, &reencoded] {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}
