//! The codec bound of a Zarr store: every chunk of its data variables
//! decoded and encoded again with the store's own codecs (zarrs' codec
//! chain, as `xbeam` reads and writes chunks), in memory, on `THREADS`
//! threads. A rechunk cannot do less work than this: it adds reading the
//! files, moving data between chunks and writing. `cargo xtask bench
//! rechunk` prints how close each rechunk comes to it.
//!
//! ```text
//! cargo run --release -p xbeam --example codec_bound -- STORE [THREADS] [REPEAT]
//! ```
//!
//! The encoded chunks are read into memory first (not timed). Prints one
//! JSON line: `seconds` (decode + encode, best of `REPEAT`, default 3),
//! `decode_seconds` (decode alone, best of `REPEAT`), the uncompressed
//! `bytes`, the encoded bytes, the number of chunks and threads.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use zarrs::array::Array as ZArray;
use zarrs::array::{ArrayToBytesCodecTraits, CodecOptions};
use zarrs::filesystem::FilesystemStore;

/// Every index of a chunk grid of shape `grid`, in C order.
fn grid_indices(grid: &[u64]) -> Vec<Vec<u64>> {
    let mut all = vec![Vec::new()];
    for &n in grid {
        all = all
            .into_iter()
            .flat_map(|prefix| {
                (0..n).map(move |i| {
                    let mut idx = prefix.clone();
                    idx.push(i);
                    idx
                })
            })
            .collect();
    }
    all
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        return Err("usage: codec_bound STORE [THREADS] [REPEAT]".into());
    };
    let threads: usize = args.get(2).map_or(Ok(2), |s| s.parse())?;
    let repeat: usize = args.get(3).map_or(Ok(3), |s| s.parse())?;
    let names: Vec<String> = xbeam::io::open_zarr(path)?
        .template()
        .data_vars()
        .keys()
        .cloned()
        .collect();
    let store = Arc::new(FilesystemStore::new(path)?);
    let mut arrays = Vec::new();
    let mut work: Vec<(usize, Vec<u64>, Vec<u8>)> = Vec::new();
    for name in &names {
        let array = ZArray::open(store.clone(), &format!("/{name}"))?;
        for idx in grid_indices(array.chunk_grid_shape()) {
            if let Some(encoded) = array.retrieve_encoded_chunk(&idx)? {
                work.push((arrays.len(), idx, encoded));
            }
        }
        arrays.push(array);
    }
    let options = CodecOptions::default();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    // decodes each chunk (and encodes it again): the uncompressed bytes
    let pass = |encode: bool| -> Result<(f64, usize), String> {
        let start = Instant::now();
        let bytes = pool.install(|| {
            work.par_iter()
                .map(|(i, idx, encoded)| {
                    let array = &arrays[*i];
                    let shape = array.chunk_shape(idx).map_err(|e| e.to_string())?;
                    let decoded = array
                        .codecs()
                        .decode(
                            Cow::Borrowed(encoded.as_slice()),
                            &shape,
                            array.data_type(),
                            array.fill_value(),
                            &options,
                        )
                        .map_err(|e| e.to_string())?;
                    let n = decoded.size();
                    if encode {
                        let again = array
                            .codecs()
                            .encode(
                                decoded,
                                &shape,
                                array.data_type(),
                                array.fill_value(),
                                &options,
                            )
                            .map_err(|e| e.to_string())?;
                        std::hint::black_box(again.len());
                    }
                    Ok(n)
                })
                .sum::<Result<usize, String>>()
        })?;
        Ok((start.elapsed().as_secs_f64(), bytes))
    };
    let mut best = (f64::INFINITY, f64::INFINITY);
    let mut bytes = 0;
    for _ in 0..repeat.max(1) {
        let (decode, _) = pass(false)?;
        let (both, n) = pass(true)?;
        best = (best.0.min(both), best.1.min(decode));
        bytes = n;
    }
    let encoded: usize = work.iter().map(|(_, _, e)| e.len()).sum();
    println!(
        "{}",
        serde_json::json!({
            "seconds": best.0,
            "decode_seconds": best.1,
            "bytes": bytes,
            "encoded_bytes": encoded,
            "chunks": work.len(),
            "threads": threads,
        })
    );
    Ok(())
}
