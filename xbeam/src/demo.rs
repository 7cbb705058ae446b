//! The `xbeam demo` job: what xbeam can do today, end to end.
//!
//! It builds a synthetic ERA5-like dataset, splits it into keyed chunks,
//! rechunks them from time slices ("pancakes") to all-time columns
//! ("pencils"), splits and merges variables, consolidates everything back
//! and checks the result is identical to the input, then reduces over time.
//! Finally it does the rechunk again for real, on the in-process engine
//! (timely workers as threads): the transforms write the dataset to a Zarr
//! store of pancakes ([`DatasetToZarr`]), then the high-level API reads it,
//! rechunks it and writes a Zarr store of pencils
//! ([`ChunkedDataset::from_zarr`] → [`rechunk`](ChunkedDataset::rechunk) →
//! [`to_zarr`](ChunkedDataset::to_zarr)), which it verifies and compares
//! with the input.

use std::io::Write;
use std::time::Instant;

use crate::prelude::*;
use crate::runner::scratch::Scratch;
use crate::runner::Metrics;

/// The pencils: all of time, 10 latitudes by 12 longitudes.
const PENCILS: &str = "time=-1,latitude=10,longitude=12";

/// Errors of the demo: the facade's [`Error`].
pub type DemoError = crate::error::Error;

/// Options of [`run`].
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Hours of data (hourly time steps).
    pub hours: usize,
    /// Hours per input chunk.
    pub chunk_hours: u64,
    /// Seed of the noise.
    pub seed: u64,
}

impl Default for DemoOptions {
    fn default() -> DemoOptions {
        DemoOptions {
            hours: 96,
            chunk_hours: 24,
            seed: 42,
        }
    }
}

/// A synthetic ERA5-like dataset of `hours` hourly steps on a `lats` ×
/// `lons` grid: [`Era5Like::dataset`](crate::synthetic::Era5Like::dataset)
/// (hourly `time` from 2020-01-01, `latitude` from 90 to -90, `longitude`
/// from 0, float32 `temperature` and `geopotential`).
pub fn era5_like(hours: usize, lats: usize, lons: usize, seed: u64) -> Result<Dataset, ChunkError> {
    crate::synthetic::Era5Like {
        ntime: hours as u64,
        hours: 1,
        nlat: lats as u64,
        nlon: lons as u64,
        levels: 0,
        seed,
    }
    .dataset()
}

fn check(ok: bool, what: &str) -> Result<(), DemoError> {
    if ok {
        Ok(())
    } else {
        Err(DemoError::Check(format!("the demo's {what}")))
    }
}

/// Runs the demo on the local engine, writing a report to `out`.
///
/// ```
/// let mut report = Vec::new();
/// xbeam::demo::run(&mut report, &xbeam::demo::DemoOptions { hours: 48, ..Default::default() })?;
/// let text = String::from_utf8(report).unwrap();
/// assert!(text.contains("identical to the input: yes"));
/// # Ok::<(), xbeam::demo::DemoError>(())
/// ```
pub fn run(out: &mut impl Write, options: &DemoOptions) -> Result<(), DemoError> {
    run_on(out, options, &Runner::local().quiet())
}

/// Runs the demo with `runner` for its engine step, writing a report to
/// `out`.
pub fn run_on(
    out: &mut impl Write,
    options: &DemoOptions,
    runner: &Runner,
) -> Result<(), DemoError> {
    let started = Instant::now();
    let ds = era5_like(options.hours, 19, 36, options.seed)?;
    writeln!(out, "== 1. An in-memory ERA5-like dataset\n{ds}\n")?;

    let plan = DatasetChunks::new(
        vec![&ds],
        &target_chunks([("time", ChunkSpec::Size(options.chunk_hours))]),
        false,
    )?;
    let chunks: Vec<Chunk> = plan
        .keys()
        .map(|k| Ok((k.clone(), plan.chunk(&k)?.remove(0))))
        .collect::<Result<_, ChunkError>>()?;
    writeln!(
        out,
        "== 2. Split into {} keyed chunks of {} hours (pancakes)",
        chunks.len(),
        options.chunk_hours
    )?;
    for (key, chunk) in &chunks {
        let sizes = chunk.sizes();
        writeln!(
            out,
            "  {key}  time={} ({})",
            sizes["time"],
            crate::chunk::display::human_bytes(chunk.nbytes())
        )?;
    }

    let pencils = in_memory_rechunk(chunks, &parse_chunks(PENCILS)?)?;
    writeln!(
        out,
        "\n== 3. Rechunked in memory to {} all-time columns (pencils)",
        pencils.len()
    )?;
    for (key, chunk) in pencils.iter().take(3) {
        let s = chunk.sizes();
        writeln!(
            out,
            "  {key}  time={} latitude={} longitude={}",
            s["time"], s["latitude"], s["longitude"]
        )?;
    }
    if pencils.len() > 3 {
        writeln!(out, "  ... and {} more", pencils.len() - 3)?;
    }

    let split: Vec<Chunk> = pencils
        .iter()
        .map(|(k, d)| split_variables(k, d))
        .collect::<Result<Vec<_>, _>>()?
        .concat();
    writeln!(
        out,
        "\n== 4. Split into {} single-variable chunks, e.g. {}",
        split.len(),
        split[0].0
    )?;
    let merged = consolidate_variables(split)?;
    check(
        merged.len() == pencils.len(),
        "variables merge back into as many chunks as before",
    )?;

    let whole = consolidate_chunks(
        merged
            .into_iter()
            .map(|(k, d)| (k.replace(None, Some(None)), d)),
    )?;
    check(whole.len() == 1, "one consolidated chunk")?;
    let identical = whole[0].1.identical(&ds);
    writeln!(
        out,
        "\n== 5. Consolidated back into {}: identical to the input: {}",
        whole[0].0,
        if identical { "yes" } else { "no" }
    )?;
    check(identical, "round trip is identical")?;

    let mean = ds.reduce(Reduction::Mean, &["time"])?;
    writeln!(out, "\n== 6. Mean over time (NaN-skipping)\n{mean}")?;

    files_and_engine(out, &ds, options.chunk_hours, &PENCILS.parse()?, runner)?;
    writeln!(
        out,
        "\ndone in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    )?;
    Ok(())
}

/// Step 7: the same rechunk on Zarr files and the in-process engine, in
/// two pipelines: the transforms write the dataset as a store of pancakes,
/// then a [`ChunkedDataset`] reads it, rechunks it into pencils and writes
/// those to a second store.
fn files_and_engine(
    out: &mut impl Write,
    ds: &Dataset,
    chunk_hours: u64,
    pencil: &ChunksRequest,
    runner: &Runner,
) -> Result<(), DemoError> {
    let dir = Scratch::new("demo", None).map_err(|source| DemoError::Replace {
        path: std::env::temp_dir(),
        source,
    })?;
    let src = dir.path().join("pancakes.zarr");
    let dst = dir.path().join("pencils.zarr");

    // The transforms themselves: DatasetToChunks then ChunksToZarr.
    let p = Pipeline::new();
    let days = target_chunks([("time", ChunkSpec::Size(chunk_hours))]);
    p.apply("write pancakes", DatasetToZarr::new(ds.clone(), &src, days))?;
    p.run(runner)?;

    // The high-level API: read as stored, rechunk, write.
    let p = Pipeline::new();
    ChunkedDataset::from_zarr(&p, &src, &ChunksRequest::default())?
        .rechunk(pencil)?
        .to_zarr(&dst, SetupOptions::default())?;
    let metrics = p.run(runner)?;

    let missing = crate::io::verify(&dst)?.problems;
    check(missing.is_empty(), "every pencil was written")?;
    let back = open_zarr(&dst)?.read(&indexmap::IndexMap::new(), None)?;
    let same = back.identical(ds);
    writeln!(
        out,
        "\n== 7. On files and the engine: {} pancakes (Zarr) -> {} pencils (Zarr), {} chunks missing; identical to the input: {}",
        elements(&metrics, "/read chunks"),
        elements(&metrics, "/write chunks"),
        missing.len(),
        if same { "yes" } else { "no" }
    )?;
    let width = metrics
        .transforms
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0);
    for (name, m) in &metrics.transforms {
        writeln!(
            out,
            "  {name:<width$}  {:>4} chunks  {:>6}",
            m.elements,
            crate::chunk::display::human_bytes(m.bytes as usize)
        )?;
    }
    check(same, "the engine's Zarr rechunk is identical to the input")?;
    Ok(())
}

/// Elements of the one transform whose scoped name ends with `suffix`
/// (a [`ChunkedDataset`] labels its steps `rechunk_3`, `to_zarr_4`, ...).
fn elements(metrics: &Metrics, suffix: &str) -> u64 {
    metrics
        .transforms
        .iter()
        .filter(|(name, _)| name.ends_with(suffix))
        .map(|(_, m)| m.elements)
        .sum()
}
