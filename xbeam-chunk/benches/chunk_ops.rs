//! Split and consolidate throughput on 64 MiB float32 chunks, against a
//! plain memcpy of the same bytes (the target: within 2x of memcpy), and
//! serializing the strided pieces of a spatial split (the codec's
//! row-by-row copy against the element-by-element copy it replaced).
//!
//! Run with `cargo xtask bench` (or `cargo bench -p xbeam-chunk`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_main, BatchSize, Criterion, Throughput};
use xbeam_chunk::chunks::{consolidate_chunks, split_chunks, target_chunks, Chunk};
use xbeam_chunk::{codec, Array, Dataset, Variable};
use xbeam_key::{ChunkSpec, Key};

const SHAPE: [usize; 3] = [64, 512, 512]; // time x lat x lon, float32: 64 MiB
const BYTES: u64 = (SHAPE[0] * SHAPE[1] * SHAPE[2] * 4) as u64;

fn chunk() -> Dataset {
    let n = SHAPE.iter().product();
    let values: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 0.25).collect();
    let data = Array::from_vec(SHAPE.to_vec(), values).expect("shape fits");
    Dataset::new()
        .with_data_var(
            "t",
            Variable::new(["time", "lat", "lon"], data).expect("dims fit"),
        )
        .expect("one variable")
}

/// The pieces' data copied into contiguous buffers, as an engine does before
/// shipping or writing them.
fn materialize(pieces: Vec<Chunk>) -> Vec<Chunk> {
    pieces
        .into_iter()
        .map(|(k, d)| (k, d.to_standard_layout()))
        .collect()
}

fn benches(c: &mut Criterion) {
    let whole = chunk();
    let mut group = c.benchmark_group("64MiB_f32");
    group.throughput(Throughput::Bytes(BYTES));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));

    let src: Vec<f32> = vec![1.5; SHAPE.iter().product()];
    let mut dst: Vec<f32> = vec![0.0; src.len()];
    group.bench_function("memcpy", |b| {
        b.iter(|| dst.copy_from_slice(black_box(&src)));
    });
    // A copy into a fresh allocation pays page faults, as every new chunk does.
    group.bench_function("memcpy_fresh", |b| b.iter(|| black_box(src.clone())));

    // Pancakes: cut along time. The pieces are contiguous views of the
    // chunk's buffer, so no copy is needed at all.
    let by_time = target_chunks([("time", ChunkSpec::Size(1))]);
    group.bench_function("split_time_views", |b| {
        b.iter(|| black_box(split_chunks(&Key::new(), &whole, &by_time).unwrap()));
    });

    // Pencils: cut along space (strided pieces), then copied.
    let by_space = target_chunks([("lat", ChunkSpec::Size(128)), ("lon", ChunkSpec::Size(128))]);
    group.bench_function("split_space_copied", |b| {
        b.iter(|| {
            black_box(materialize(
                split_chunks(&Key::new(), &whole, &by_space).unwrap(),
            ))
        });
    });

    // Serializing the strided spatial pieces for the wire: the codec copies
    // whole rows; the element-by-element copy through ndarray's iterator is
    // what `wire::le_bytes` did before (kept here as the baseline).
    let space_views = split_chunks(&Key::new(), &whole, &by_space).unwrap();
    let arrays: Vec<&Array> = space_views
        .iter()
        .map(|(_, d)| d.data_vars()["t"].data())
        .collect();
    group.bench_function("serialize_space_rows", |b| {
        b.iter(|| {
            for a in &arrays {
                black_box(codec::to_le_bytes(a).unwrap());
            }
        });
    });
    group.bench_function("serialize_space_elementwise", |b| {
        b.iter(|| {
            for a in &arrays {
                let values: Vec<f32> = a.as_view::<f32>().unwrap().iter().copied().collect();
                black_box(bytemuck::cast_slice::<f32, u8>(&values).to_vec());
            }
        });
    });
    group.bench_function("serialize_space_bincode", |b| {
        b.iter(|| {
            for (_, d) in &space_views {
                black_box(bincode::serialize(d).unwrap());
            }
        });
    });

    // Consolidating 64 time slices, and 16 spatial tiles, back into 64 MiB.
    let time_pieces = materialize(split_chunks(&Key::new(), &whole, &by_time).unwrap());
    group.bench_function("consolidate_time", |b| {
        b.iter_batched(
            || time_pieces.clone(),
            |p| black_box(consolidate_chunks(p).unwrap()),
            BatchSize::LargeInput,
        );
    });
    let space_pieces = materialize(split_chunks(&Key::new(), &whole, &by_space).unwrap());
    group.bench_function("consolidate_space", |b| {
        b.iter_batched(
            || space_pieces.clone(),
            |p| black_box(consolidate_chunks(p).unwrap()),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

// criterion's macro generates an undocumented fn.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(chunk_ops, super::benches);
}
criterion_main!(group::chunk_ops);
