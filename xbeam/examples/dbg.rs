//! One-stage pancake -> pencil rechunk of a Zarr store with the high-level API.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use xbeam::prelude::*;
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (src, dst) = (&args[1], &args[2]);
    let budget: usize = args.get(3).map_or(4 << 30, |s| s.parse().unwrap());
    let workers: usize = args.get(4).map_or(2, |s| s.parse().unwrap());
    let _ = std::fs::remove_dir_all(dst);
    let t = std::time::Instant::now();
    let p = Pipeline::new();
    let ds = ChunkedDataset::from_zarr(&p, src, &ChunksRequest::default())?;
    ds.rechunk(&"time=-1,latitude=11,longitude=24".parse()?)?
        .to_zarr(dst, SetupOptions::default())?;
    let t0 = std::time::Instant::now();
    let last = std::sync::Mutex::new(0u64);
    let runner = Runner::local_with_workers(workers)
        .group_budget(budget)
        .quiet()
        .on_progress(move |m| {
            let ms = t0.elapsed().as_millis() as u64;
            let mut l = last.lock().unwrap();
            if ms < *l + 500 {
                return;
            }
            *l = ms;
            let line: Vec<String> = m
                .transforms
                .iter()
                .map(|(n, t)| {
                    format!(
                        "{}={}/{:.1}s",
                        n.rsplit('/').next().unwrap(),
                        t.elements,
                        t.busy.as_secs_f64()
                    )
                })
                .collect();
            eprintln!("{:5.1}s {}", ms as f64 / 1000.0, line.join(" "));
        });
    let m = p.run(&runner)?;
    let secs = t.elapsed().as_secs_f64();
    let bytes = ds.template().nbytes() as f64;
    for (n, tm) in &m.transforms {
        eprintln!(
            "{n}: {} el, {:.1} MB, busy {:.2}s, spilled {:.1} MB",
            tm.elements,
            tm.bytes as f64 / 1e6,
            tm.busy.as_secs_f64(),
            tm.spilled_bytes as f64 / 1e6
        );
    }
    println!("{:.2} s, {:.0} MB/s", secs, bytes / 1e6 / secs);
    Ok(())
}
