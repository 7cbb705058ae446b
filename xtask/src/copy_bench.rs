//! `xbeam copy` of the 1 GB bench store timed side by side with
//! `zarrs_reencode` (`zarrs_tools`) re-encoding the same arrays: the target
//! is within 1.25× of its time. It is found through `ZARRS_REENCODE`, on
//! `PATH`, or where `shared/bench/setup_venvs.sh` installs it
//! (`$XB_BASE/zt/bin`, default `~/.cache/xbeam-baseline/zt/bin`); without
//! it only xbeam is timed, with a note.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Best-of-N runs of each tool.
const REPEAT: usize = 5;

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

/// One timed run of `cmds` into `out`: `out` is cleared and the page
/// cache's dirty pages written back first (`sync`), so a run never pays
/// for the writeback of the run before it. Measured interleaved on this
/// VM, whichever tool ran second after the other's 0.6 GB of writes was
/// 0.3-0.8 s slower.
fn timed(out: &Path, cmds: Vec<Command>) -> Result<f64, String> {
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| format!("cannot clear {}: {e}", out.display()))?;
    }
    super::settle();
    let start = Instant::now();
    for mut cmd in cmds {
        super::quiet(&mut cmd)?;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Builds xbeam (release), makes the 1 GB store if needed, and times the
/// copy and the baseline, interleaved (xbeam, zarrs, xbeam, ...), best of
/// `REPEAT` each.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    let (release, store) = super::release_bench_setup(root)?;
    let xbeam = release.join("xbeam");
    let data = root.join("target/bench-data");
    let out = data.join("copy-bench.zarr");
    let reencoded = data.join("zarrs-reencode.zarr");
    let zarrs = zarrs_reencode();
    let (mut copy, mut baseline) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..REPEAT {
        let mut cmd = Command::new(&xbeam);
        cmd.arg("copy").arg(&store).arg(&out).arg("--quiet");
        copy = copy.min(timed(&out, vec![cmd])?);
        if let Some(zarrs) = &zarrs {
            let cmds = ARRAYS
                .iter()
                .map(|a| {
                    let mut cmd = Command::new(zarrs);
                    cmd.arg(store.join(a)).arg(reencoded.join(a));
                    cmd
                })
                .collect();
            baseline = baseline.min(timed(&reencoded, cmds)?);
        }
    }
    eprintln!(
        "\nxbeam copy of {} (best of {REPEAT}, interleaved):",
        store.display()
    );
    eprintln!("  xbeam copy        {copy:7.3} s  {:6.2} GB/s", 1.0 / copy);
    if zarrs.is_none() {
        eprintln!(
            "  zarrs_reencode is not installed (shared/bench/setup_venvs.sh installs it): no baseline"
        );
        return Ok(());
    }
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
