//! The one-stage pancake → pencil rechunk of a Zarr store, written as a user
//! would with the high-level API:
//! `ChunkedDataset::from_zarr(..).rechunk(..).to_zarr(..)` on
//! `Runner::local()`. `cargo xtask bench` times it side by side with
//! xarray + dask and `zarrs_reencode`.
//!
//! ```text
//! cargo run --release -p xbeam --example one_stage_rechunk -- SRC DST [MAX_MEM_BYTES] [WORKERS]
//! ```
//!
//! `MAX_MEM_BYTES` is the runner's memory budget ([`Runner::max_mem`]:
//! half of it for groups before they spill). Prints one JSON line: seconds,
//! input bytes, MB/s, peak RSS, bytes spilled.
//! `XBEAM_PROGRESS=1` prints per-stage progress and RSS every 250 ms.

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::time::Instant;

use xbeam::prelude::*;

/// A field of /proc/self/status in MB (Linux; 0 elsewhere).
fn status_mb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(src), Some(dst)) = (args.get(1), args.get(2)) else {
        return Err("usage: one_stage_rechunk SRC DST [MAX_MEM_BYTES] [WORKERS]".into());
    };
    let budget: usize = args.get(3).map_or(Ok(8 << 30), |s| s.parse())?;
    let workers: usize = args.get(4).map_or(Ok(2), |s| s.parse())?;
    if std::path::Path::new(dst).join(".zgroup").exists() {
        std::fs::remove_dir_all(dst)?;
    }
    let start = Instant::now();
    let p = Pipeline::new();
    let ds = ChunkedDataset::from_zarr(&p, src, &ChunksRequest::default())?;
    ds.rechunk(&"time=-1,latitude=11,longitude=24".parse()?)?
        .to_zarr(dst, SetupOptions::default())?;
    let mut runner = Runner::local_with_workers(workers).max_mem(budget).quiet();
    if std::env::var_os("XBEAM_PROGRESS").is_some() {
        let t0 = Instant::now();
        runner = runner.on_progress(move |m| {
            let stages: Vec<String> = m
                .transforms
                .iter()
                .map(|(n, t)| format!("{}={}", n.rsplit('/').next().unwrap_or(n), t.elements))
                .collect();
            eprintln!(
                "{:5.2}s rss {} MB {}",
                t0.elapsed().as_secs_f64(),
                status_mb("VmRSS"),
                stages.join(" ")
            );
        });
    }
    let metrics = p.run(&runner)?;
    let seconds = start.elapsed().as_secs_f64();
    let bytes = ds.template().nbytes();
    let spilled: u64 = metrics.transforms.values().map(|t| t.spilled_bytes).sum();
    println!(
        "{{\"seconds\": {seconds:.3}, \"input_bytes\": {bytes}, \"mb_per_s\": {:.0}, \"peak_rss_mb\": {}, \"spilled_bytes\": {spilled}}}",
        bytes as f64 / 1e6 / seconds,
        status_mb("VmHWM")
    );
    Ok(())
}
