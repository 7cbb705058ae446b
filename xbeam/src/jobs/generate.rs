//! `xbeam generate`: the [synthetic](crate::synthetic) ERA5-like dataset
//! written to a Zarr store on the engine, one time chunk per element.
//!
//! ```
//! use xbeam::jobs::generate::{run, Options};
//! use xbeam::runner::Runner;
//!
//! let dir = tempfile::tempdir()?;
//! let out = dir.path().join("era5.zarr");
//! let options = Options { ntime: Some(48), nlat: 7, nlon: 12, ..Options::new(&out) };
//! let summary = run(&options, &Runner::local_with_workers(2).quiet())?;
//! assert_eq!(summary.chunks, 2);
//! assert_eq!(summary.bytes_out, 2 * 48 * 7 * 12 * 4);
//! assert!(xbeam::io::verify(&out)?.is_ok()); // every chunk there, as written, the job finished
//! # Ok::<(), xbeam::error::Error>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use xbeam_chunk::chunks::TargetChunks;
use xbeam_io::{setup_zarr, zarr_chunk_size, SetupOptions, ZarrFormat};
use xbeam_key::{ChunkSpec, Key};
use xbeam_runner::{Pipeline, Runner};

use super::{output, Summary};
use crate::error::{ensure_usage, Error};
use crate::synthetic::Era5Like;
use crate::transforms::write_to;

/// The largest grid and level counts `generate` accepts.
pub const MAX_POINTS: u64 = 1 << 20;
/// The most hours from one time step to the next (`--step-hours`): a
/// week.
pub const MAX_HOURS: u64 = 168;
/// The largest uncompressed size `generate` accepts, in GB.
pub const MAX_GB: f64 = 1e6;

/// What to generate, and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Zarr store to write.
    pub out: PathBuf,
    /// What to do with an existing output, and the free-space check.
    pub write: output::WriteMode,
    /// Target uncompressed size of the data variables, in 1e9 bytes.
    pub gb: f64,
    /// An explicit number of time steps (overrides `gb`).
    pub ntime: Option<u64>,
    /// Hours from one time step to the next (1: hourly).
    pub hours: u64,
    /// Latitude points (121 = 1.5°).
    pub nlat: u64,
    /// Longitude points (240 = 1.5°).
    pub nlon: u64,
    /// Pressure levels; 0 = no level dimension.
    pub levels: u64,
    /// Zarr chunks per dimension, [`ChunkSpec::Full`] (`-1`) for the whole
    /// dimension (default: 24 hours × the full grid).
    pub chunks: TargetChunks,
    /// Zarr format.
    pub format: ZarrFormat,
    /// Noise seed.
    pub seed: u64,
}

impl Options {
    /// The defaults (1 GB, 121 × 240, 24-hour chunks, Zarr v2), written to
    /// `out`.
    pub fn new(out: impl AsRef<Path>) -> Options {
        Options {
            out: out.as_ref().to_path_buf(),
            write: output::WriteMode::default(),
            gb: 1.0,
            ntime: None,
            hours: 1,
            nlat: 121,
            nlon: 240,
            levels: 0,
            chunks: [("time".to_owned(), ChunkSpec::Size(24))]
                .into_iter()
                .collect(),
            format: ZarrFormat::V2,
            seed: 0,
        }
    }

    /// The dataset these options describe, after checking every value.
    pub fn dataset(&self) -> Result<Era5Like, Error> {
        ensure_usage!(
            self.gb.is_finite() && self.gb > 0.0 && self.gb <= MAX_GB,
            "--gb must be a finite number in (0, {MAX_GB}], found {}",
            self.gb
        );
        ensure_usage!(
            (1..=MAX_HOURS).contains(&self.hours),
            "--step-hours must be in 1..={MAX_HOURS}, found {}",
            self.hours
        );
        for (flag, n, min) in [
            ("--nlat", self.nlat, 1),
            ("--nlon", self.nlon, 1),
            ("--levels", self.levels, 0),
        ] {
            ensure_usage!(
                (min..=MAX_POINTS).contains(&n),
                "{flag} must be in {min}..={MAX_POINTS}, found {n}"
            );
        }
        let per_step = Era5Like::bytes_per_step(self.nlat, self.nlon, self.levels)
            .ok_or_else(|| Error::Usage("the grid is too large".into()))?;
        let ntime = match self.ntime {
            Some(n) => n,
            None => ((self.gb * 1e9 / per_step as f64).round() as u64).max(1),
        };
        ensure_usage!(
            ntime >= 1
                && ntime.checked_mul(per_step).is_some()
                && ntime.checked_mul(self.hours).is_some_and(|h| h < 1 << 60),
            "the number of time steps must be at least 1 and fit the grid and the time axis \
             (--step-hours), found {ntime}"
        );
        Ok(Era5Like {
            ntime,
            hours: self.hours,
            nlat: self.nlat,
            nlon: self.nlon,
            levels: self.levels,
            seed: self.seed,
        })
    }
}

/// Writes the dataset to `options.out`, one time chunk per engine element.
pub fn run(options: &Options, runner: &Runner) -> Result<Summary, Error> {
    let started = Instant::now();
    let era5 = options.dataset()?;
    let template = era5.template()?;
    for (d, c) in &options.chunks {
        let dims: Vec<&str> = template.sizes().keys().map(String::as_str).collect();
        ensure_usage!(
            dims.contains(&d.as_str()),
            "--chunks names dimension {d:?}, which the dataset does not have: expected one of {}",
            dims.join(", ")
        );
        zarr_chunk_size(d, c, template.sizes()[d])
            .map_err(|e| Error::Usage(format!("--chunks {d}={c}: {e}")))?;
    }
    let setup = SetupOptions {
        chunks: options.chunks.clone(),
        format: options.format,
        resume: options.write.resume,
        ..SetupOptions::default()
    };
    output::prepare(&options.out, None, options.write, template.data_nbytes())?;
    let sink = setup_zarr(&template, &options.out, &setup).map_err(Error::output(&options.out))?;
    let tc = sink.zarr_chunks()["time"];
    let ntime = era5.ntime;
    let count = ntime.div_ceil(tc);
    let p = Pipeline::new();
    let chunks = p.source("generate", count, move |i| {
        let t0 = i * tc;
        let block = era5.block(t0, (t0 + tc).min(ntime))?;
        Ok::<_, Error>((Key::new().with_offset("time", t0), block))
    });
    write_to(&chunks, Arc::new(sink));
    p.run(runner)?;
    Ok(Summary::finish(started, 0, era5.nbytes(), count))
}
