//! What the engine costs on top of the work it runs: the same per-chunk job
//! (sum every value of a float32 chunk) over a 280 MB in-memory dataset,
//! once as a plain loop over the chunks and once as a pipeline
//! (`DatasetToChunks → map → combine_globally`) on one worker, with
//! 2.8 MB chunks (24 hours × a 121 × 240 grid, the baseline store's) and
//! 116 kB chunks (1 hour). `cargo xtask bench` prints the overhead (target:
//! < 5% of wall time on 2.8 MB chunks) and the per-byte cost of small
//! chunks against large ones (target: < 2×).

#![allow(missing_docs)] // criterion_group! generates an undocumented function

// the allocator the `xbeam` binary runs with: with the system allocator the
// pipeline's few chunks in flight made glibc return and fault in pages that
// the plain loop reused (3% of the engine's samples were page faults)
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::ops::Range;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use indexmap::IndexMap;
use xbeam::chunk::{Array, Dataset, Variable};
use xbeam::io::{ChunkSource, MemorySource};
use xbeam::key::ChunkSpec;
use xbeam::runner::{Pipeline, Runner, Sum};
use xbeam::transforms::DatasetToChunks;

/// Hours of the dataset: 280 MB at 121 × 240 float32 (a tenth in test mode).
fn hours() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        2400
    } else {
        240
    }
}

fn dataset(hours: usize) -> Dataset {
    let n = hours * 121 * 240;
    let values: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 0.5).collect();
    let data = Array::from_vec(vec![hours, 121, 240], values).unwrap();
    Dataset::new()
        .with_data_var(
            "t",
            Variable::new(["time", "latitude", "longitude"], data).unwrap(),
        )
        .unwrap()
}

/// The per-chunk work.
fn chunk_sum(ds: &Dataset) -> f64 {
    let v = ds.data_var("t").unwrap().data().as_view::<f32>().unwrap();
    v.iter().map(|&x| f64::from(x)).sum()
}

/// The plain loop: read each chunk from the same source, sum it.
fn direct(source: &MemorySource, hours: usize, step: usize) -> f64 {
    let mut total = 0.0;
    for t0 in (0..hours).step_by(step) {
        let region: IndexMap<String, Range<u64>> =
            [("time".to_owned(), t0 as u64..(t0 + step).min(hours) as u64)]
                .into_iter()
                .collect();
        total += chunk_sum(&source.read(&region, None).unwrap());
    }
    total
}

/// The same on the engine.
fn pipeline(source: &Arc<MemorySource>, step: usize, runner: &Runner) -> f64 {
    let p = Pipeline::new();
    let chunks = [("time".to_owned(), ChunkSpec::Size(step as u64))]
        .into_iter()
        .collect();
    let out = p
        .apply("read", DatasetToChunks::new(source.clone(), chunks))
        .unwrap()
        .map("sum", |(_, ds)| Ok::<_, String>(chunk_sum(&ds)))
        .combine_globally("total", Sum)
        .collect("out");
    p.run(runner).unwrap();
    out.take().unwrap()[0]
}

fn engine_overhead(c: &mut Criterion) {
    let hours = hours();
    let ds = dataset(hours);
    let bytes = ds.nbytes() as u64;
    let source = Arc::new(MemorySource::new(ds));
    let runner = Runner::local_with_workers(1).quiet();
    // the engine and the loop compute the same thing
    for step in [24, 1] {
        assert!((direct(&source, hours, step) - pipeline(&source, step, &runner)).abs() < 1e-6);
    }
    let mut g = c.benchmark_group("engine_overhead");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    for (name, step) in [("2.8MB", 24), ("116kB", 1)] {
        g.bench_function(format!("direct_{name}"), |b| {
            b.iter(|| direct(&source, hours, step));
        });
        g.bench_function(format!("engine_{name}"), |b| {
            b.iter(|| pipeline(&source, step, &runner));
        });
    }
    g.finish();
}

criterion_group!(benches, engine_overhead);
criterion_main!(benches);
