//! Zarr read and write throughput on a 1 GB store made by `xbeam generate`
//! (ERA5-like, 24-hour × full-grid chunks of 2.8 MB, Blosc-lz4, Zarr v2 —
//! the baseline store of `shared/bench`), and the codec-bound limit: the
//! same chunks decoded from memory. `cargo xtask bench` runs xarray + dask
//! on the same store right after and prints the ratios.
//!
//! The store is generated once into `target/bench-data/` (set
//! `XBEAM_BENCH_GB` for another size).

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use indexmap::IndexMap;
use rayon::prelude::*;
use xbeam::io::{open_zarr, setup_zarr, SetupOptions};
use xbeam::jobs::generate;
use xbeam::key::Key;
use xbeam::runner::Runner;
use zarrs::array::{Array as ZArray, ArrayBytes, ArraySubset};
use zarrs::storage::store::MemoryStore;
use zarrs::storage::{StoreKey, WritableStorageTraits};

fn bench_store() -> PathBuf {
    // `cargo test --all-targets` runs benchmarks once, in test mode (no
    // `--bench` argument): a small store is enough there
    let default = if std::env::args().any(|a| a == "--bench") {
        1.0
    } else {
        0.01
    };
    let gb: f64 = std::env::var("XBEAM_BENCH_GB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    let path = dir.join(format!("era5_{gb}gb.zarr"));
    let marker = dir.join(format!("era5_{gb}gb.done"));
    if !marker.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let options = generate::Options {
            gb,
            write: xbeam::jobs::output::WriteMode::overwrite(),
            ..generate::Options::new(&path)
        };
        generate::run(&options, &Runner::local().quiet()).unwrap();
        std::fs::write(&marker, "").unwrap();
    }
    path
}

/// Every file of the store, in a `MemoryStore`.
fn in_memory(root: &Path) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let bytes = std::fs::read(&p).unwrap();
                store
                    .set(&StoreKey::new(rel).unwrap(), bytes.into())
                    .unwrap();
            }
        }
    }
    store
}

fn zarr_io(c: &mut Criterion) {
    let path = bench_store();
    let source = open_zarr(&path).unwrap();
    let nbytes = source.template().data_nbytes();
    let mut g = c.benchmark_group("zarr_1gb");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(nbytes));
    g.bench_function("read", |b| {
        b.iter(|| {
            let source = open_zarr(&path).unwrap();
            let ds = source.read(&IndexMap::new(), None).unwrap();
            assert_eq!(ds.data_vars().len(), 2);
            ds
        });
    });
    let memory = in_memory(&path);
    let names: Vec<String> = source.template().data_vars().keys().cloned().collect();
    g.bench_function("decode_in_memory", |b| {
        b.iter(|| {
            names
                .par_iter()
                .map(|name| {
                    let array = ZArray::open(memory.clone(), &format!("/{name}")).unwrap();
                    let subset = ArraySubset::new_with_shape(array.shape().to_vec());
                    let bytes: ArrayBytes<'static> = array.retrieve_array_subset(&subset).unwrap();
                    bytes.size()
                })
                .sum::<usize>()
        });
    });
    // write: the whole dataset, already in memory, chunk by chunk
    let full = source.read(&IndexMap::new(), None).unwrap();
    let step = source.chunks()["time"];
    let ntime = source.template().sizes()["time"];
    let chunks: Vec<(Key, xbeam::chunk::Dataset)> = (0..ntime)
        .step_by(step as usize)
        .map(|t| {
            let chunk = full
                .isel([("time", t..(t + step).min(ntime))])
                .unwrap()
                .to_standard_layout();
            (Key::new().with_offset("time", t), chunk)
        })
        .collect();
    let out = path.with_extension("write.zarr");
    g.bench_function("write", |b| {
        b.iter(|| {
            let options = SetupOptions::default()
                .format(source.format())
                .chunks([("time", step)]);
            let sink = setup_zarr(source.template(), &out, &options).unwrap();
            chunks
                .par_iter()
                .for_each(|(key, chunk)| sink.write_chunk(key, chunk).unwrap());
        });
    });
    g.finish();
}

/// Setting up a store from a template of a million chunks (114 years of
/// hourly 721 × 1440 fields of two float32 variables, one hour per chunk,
/// with its coordinates): metadata and coordinates only.
fn setup_million_chunks(c: &mut Criterion) {
    let template = xbeam::synthetic::Era5Like {
        ntime: 1_000_000,
        nlat: 721,
        nlon: 1440,
        ..Default::default()
    }
    .template()
    .unwrap();
    let options = SetupOptions::default().chunks([("time", 1)]);
    let mut g = c.benchmark_group("setup");
    g.sample_size(10);
    g.bench_function("million_chunks", |b| {
        b.iter_with_setup(
            || tempfile::tempdir().unwrap(),
            |dir| {
                setup_zarr(&template, dir.path().join("big.zarr"), &options).unwrap();
                dir
            },
        );
    });
    g.finish();
}

criterion_group!(benches, zarr_io, setup_million_chunks);
criterion_main!(benches);
