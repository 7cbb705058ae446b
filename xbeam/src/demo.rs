//! The `xbeam demo` job: what xbeam can do today, end to end.
//!
//! It builds a synthetic ERA5-like dataset, splits it into keyed chunks,
//! rechunks them from time slices ("pancakes") to all-time columns
//! ("pencils"), splits and merges variables, consolidates everything back
//! and checks the result is identical to the input, then reduces over time.
//! Finally it does the rechunk again for real: from a Zarr store of
//! pancakes, on the in-process engine (timely workers as threads), into a
//! Zarr store of pencils, which it verifies and compares with the input.

use std::io::Write;
use std::time::Instant;

use crate::prelude::*;

/// Errors of the demo: the facade's [`Error`](crate::error::Error).
pub type DemoError = crate::error::Error;

/// Rechunks the pancake store `src` into pencils at `dst` on the engine:
/// read each time chunk, split it into pieces of pencils, group the pieces
/// of each pencil (emitted as soon as all `n_time_chunks` have arrived),
/// consolidate, write.
fn rechunk_on_engine(
    src: &std::path::Path,
    dst: &std::path::Path,
    chunk_hours: u64,
    pencil: &TargetChunks,
    runner: &crate::runner::Runner,
) -> Result<crate::runner::Metrics, DemoError> {
    use crate::io::{open_zarr, setup_zarr, SetupOptions};
    use crate::runner::Pipeline;
    use std::sync::Arc;

    let source = Arc::new(open_zarr(src)?);
    let ntime = source.template().sizes()["time"];
    let n_chunks = ntime.div_ceil(chunk_hours);
    let zarr_chunks: Vec<(String, i64)> = pencil
        .iter()
        .map(|(d, spec)| match spec {
            ChunkSpec::Size(n) => (d.clone(), *n as i64),
            _ => (d.clone(), -1),
        })
        .collect();
    let sink = Arc::new(setup_zarr(
        source.template(),
        dst,
        &SetupOptions::default().chunks(zarr_chunks),
    )?);
    let target = Arc::new(pencil.clone());
    let split_target = target.clone();
    let p = Pipeline::new();
    p.source("read pancakes", n_chunks, move |i| {
        let t0 = i * chunk_hours;
        let region = [("time".to_owned(), t0..(t0 + chunk_hours).min(ntime))]
            .into_iter()
            .collect();
        let ds = source.read(&region, None)?;
        let key = Key::from_offsets([("time", t0), ("latitude", 0), ("longitude", 0)]);
        Ok::<_, crate::io::IoError>((key, ds))
    })
    .flat_map("split into pencil pieces", move |(key, ds): Chunk| {
        let pieces = split_chunks(&key, &ds, &split_target)?;
        Ok::<_, ChunkError>(
            pieces
                .into_iter()
                .map(|(k, d)| {
                    let pencil_key = rounded_key(&k, &split_target).encode();
                    (pencil_key, (k, d))
                })
                .collect::<Vec<_>>(),
        )
    })
    .group_by_key_expecting("group pencils", move |_| n_chunks as usize)
    .map("consolidate", |(_, pieces): (Vec<u8>, Vec<Chunk>)| {
        let mut out = consolidate_chunks(pieces)?;
        Ok::<_, ChunkError>(out.remove(0))
    })
    .for_each("write pencils", move |(key, ds): Chunk| {
        sink.write_chunk(&key, &ds)
    });
    Ok(p.run(runner)?)
}

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
    run_on(out, options, &crate::runner::Runner::local().quiet())
}

/// Runs the demo with `runner` for its engine step, writing a report to
/// `out`.
pub fn run_on(
    out: &mut impl Write,
    options: &DemoOptions,
    runner: &crate::runner::Runner,
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

    let pencil = target_chunks([
        ("time", ChunkSpec::Full),
        ("latitude", ChunkSpec::Size(10)),
        ("longitude", ChunkSpec::Size(12)),
    ]);
    let pencils = in_memory_rechunk(chunks.clone(), &pencil)?;
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

    files_and_engine(out, &ds, &chunks, options.chunk_hours, &pencil, runner)?;
    writeln!(
        out,
        "\ndone in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    )?;
    Ok(())
}

/// Step 7: the same rechunk on Zarr files and the in-process engine.
fn files_and_engine(
    out: &mut impl Write,
    ds: &Dataset,
    chunks: &[Chunk],
    chunk_hours: u64,
    pencil: &TargetChunks,
    runner: &crate::runner::Runner,
) -> Result<(), DemoError> {
    // the same rechunk on files and the engine
    let dir = tempfile::tempdir().map_err(|source| DemoError::Replace {
        path: std::env::temp_dir(),
        source,
    })?;
    let src = dir.path().join("pancakes.zarr");
    let dst = dir.path().join("pencils.zarr");
    let sink = crate::io::setup_zarr(
        &Template::from(ds),
        &src,
        &crate::io::SetupOptions::default().chunks([("time", chunk_hours as i64)]),
    )?;
    for (key, chunk) in chunks {
        sink.write_chunk(key, chunk)?;
    }
    let metrics = rechunk_on_engine(&src, &dst, chunk_hours, pencil, runner)?;
    let missing = crate::io::verify(&dst)?;
    check(missing.is_empty(), "every pencil was written")?;
    let back = crate::io::open_zarr(&dst)?.read(&indexmap::IndexMap::new(), None)?;
    let same = back.identical(ds);
    writeln!(
        out,
        "\n== 7. On files and the engine: {} pancakes (Zarr) -> {} pencils (Zarr), {} chunks missing; identical to the input: {}",
        metrics.get("read pancakes").map_or(0, |m| m.elements),
        metrics.get("consolidate").map_or(0, |m| m.elements),
        missing.len(),
        if same { "yes" } else { "no" }
    )?;
    check(same, "the engine's Zarr rechunk is identical to the input")?;
    Ok(())
}
