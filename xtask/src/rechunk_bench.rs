//! `cargo xtask bench-rechunk` (also run by `cargo xtask bench`): the
//! one-stage pancake → pencil rechunk of the 1 GB store written as a user
//! would (`ChunkedDataset::from_zarr(..).rechunk(..).to_zarr(..)`, the
//! `one_stage_rechunk` example), with its groups in memory and with a
//! `--max-mem` 256 MiB (`Runner::max_mem`), timed side by side with xarray + dask
//! (`shared/bench/dask_rechunk.py --method xarray`) and `zarrs_reencode`
//! (both arrays, `--chunk-shape` and `--shard-shape` with a 200-chunk cache). Each is the best
//! of a few runs; peak RSS as each process reports it.

use std::path::{Path, PathBuf};
use std::process::Command;

const REPEAT: usize = 3;
const TARGET: &str = "time=-1,latitude=11,longitude=24";

/// One measured run: seconds and peak RSS in MB (when known).
struct Measured {
    seconds: f64,
    rss_mb: Option<f64>,
}

/// Runs `cmd`, returning its stdout (an error with stderr when it fails).
fn output(mut cmd: Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The JSON object on the line of `text` that starts with `prefix`.
fn json_line(text: &str, prefix: &str) -> Result<serde_json::Value, String> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .ok_or_else(|| format!("no line starting with {prefix:?} in {text:?}"))?;
    serde_json::from_str(line.trim()).map_err(|e| format!("bad JSON {line:?}: {e}"))
}

/// The best of `REPEAT` runs.
fn best(mut once: impl FnMut() -> Result<Measured, String>) -> Result<Measured, String> {
    let mut best: Option<Measured> = None;
    for _ in 0..REPEAT {
        let m = once()?;
        if best.as_ref().is_none_or(|b| m.seconds < b.seconds) {
            best = Some(m);
        }
    }
    best.ok_or_else(|| "no run".into())
}

fn xbeam_run(example: &Path, store: &Path, out: &Path, budget: u64) -> Result<Measured, String> {
    let mut cmd = Command::new(example);
    cmd.arg(store).arg(out).arg(budget.to_string()).arg("2");
    let text = output(cmd)?;
    let v = json_line(&text, "")?;
    Ok(Measured {
        seconds: v["seconds"].as_f64().ok_or("no seconds")?,
        rss_mb: v["peak_rss_mb"].as_f64(),
    })
}

fn dask_run(python: &Path, script: &Path, store: &Path, out: &Path) -> Result<Measured, String> {
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .args([
            "--method",
            "xarray",
            "--threads",
            "2",
            "--target-chunks",
            TARGET,
        ])
        .arg("--input")
        .arg(store)
        .arg("--output")
        .arg(out);
    let text = output(cmd)?;
    let v = json_line(&text, "RESULT ")?;
    Ok(Measured {
        seconds: v["seconds"].as_f64().ok_or("no seconds")?,
        rss_mb: None,
    })
}

fn zarrs_run(zarrs: &Path, store: &Path, out: &Path, shape: &str) -> Result<Measured, String> {
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| format!("cannot clear {}: {e}", out.display()))?;
    }
    let start = std::time::Instant::now();
    for array in ["temperature", "geopotential"] {
        let mut cmd = Command::new(zarrs);
        // with --chunk-shape alone zarrs_tools 0.8.1 keeps the old chunks:
        // the shard shape makes it rechunk (shared/bench/setup_venvs.sh)
        cmd.args([
            "--chunk-shape",
            shape,
            "--shard-shape",
            shape,
            "--cache-chunks",
            "200",
        ])
        .arg(store.join(array))
        .arg(out.join(array));
        output(cmd)?;
    }
    Ok(Measured {
        seconds: start.elapsed().as_secs_f64(),
        rss_mb: None,
    })
}

/// The shared bench scripts, beside the repository (`../shared/bench`).
fn shared_bench(root: &Path) -> Option<PathBuf> {
    let dir = root.parent()?.join("shared/bench");
    dir.join("dask_rechunk.py").is_file().then_some(dir)
}

/// Builds the example, makes the 1 GB store if needed, and times the jobs.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    let (release, store) = super::release_bench_setup(root)?;
    let example = release.join("examples/one_stage_rechunk");
    let data = root.join("target/bench-data");
    let out = data.join("rechunk-bench.zarr");
    let in_memory = best(|| xbeam_run(&example, &store, &out, 16 << 30))?;
    let spilling = best(|| xbeam_run(&example, &store, &out, 256 << 20))?;
    let mbps = |m: &Measured| 1000.0 / m.seconds;
    let rss = |m: &Measured| m.rss_mb.map_or("   n/a".to_owned(), |r| format!("{r:6.0}"));
    eprintln!(
        "\none-stage rechunk {TARGET} of {} (best of {REPEAT}; 1000 MB):",
        store.display()
    );
    eprintln!(
        "  xbeam, groups in memory      {:6.2} s  {:5.0} MB/s  peak RSS {} MB  (target >= 700 MB/s)",
        in_memory.seconds,
        mbps(&in_memory),
        rss(&in_memory)
    );
    eprintln!(
        "  xbeam, max-mem 256 MiB       {:6.2} s  {:5.0} MB/s  peak RSS {} MB  (target >= 400 MB/s, RSS <= 456 MB)",
        spilling.seconds,
        mbps(&spilling),
        rss(&spilling)
    );
    let dask_out = data.join("rechunk-bench-dask.zarr");
    match (shared_bench(root), super::python_env()) {
        (Some(dir), Ok(python)) => {
            let dask = best(|| dask_run(&python, &dir.join("dask_rechunk.py"), &store, &dask_out))?;
            eprintln!(
                "  xarray + dask (2 threads)    {:6.2} s  {:5.0} MB/s  -> xbeam in memory is {:.1}x, with the budget {:.1}x",
                dask.seconds,
                mbps(&dask),
                dask.seconds / in_memory.seconds,
                dask.seconds / spilling.seconds
            );
        }
        _ => {
            eprintln!("  xarray + dask: ../shared/bench or the Python env is missing: no baseline");
        }
    }
    let zarrs_out = data.join("rechunk-bench-zarrs.zarr");
    match super::copy_bench::zarrs_reencode() {
        Some(zarrs) => {
            let ntime = store_ntime(&store)?;
            let shape = format!("{ntime},11,24");
            let z = best(|| zarrs_run(&zarrs, &store, &zarrs_out, &shape))?;
            eprintln!(
                "  zarrs_reencode (200 cached)  {:6.2} s  {:5.0} MB/s  -> xbeam in memory takes {:.2}x its time (target <= 1.25x)",
                z.seconds,
                mbps(&z),
                in_memory.seconds / z.seconds
            );
        }
        None => eprintln!(
            "  zarrs_reencode is not installed (shared/bench/setup_venvs.sh installs it): no baseline"
        ),
    }
    for dir in [&out, &dask_out, &zarrs_out] {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

/// The store's time length, from its `time/.zarray`.
fn store_ntime(store: &Path) -> Result<u64, String> {
    let meta = super::read_json(&store.join("time/.zarray"))?;
    meta["shape"][0]
        .as_u64()
        .ok_or_else(|| format!("no shape in {}", store.join("time/.zarray").display()))
}
