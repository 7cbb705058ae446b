//! `xbeam climatology`, `stats`, `resample` and `rolling`.

use std::path::PathBuf;

use xbeam::error::Error;
use xbeam::io::ZarrFormat;
use xbeam::jobs::reduce::{self, Options, PencilPass, WeightSpec};
use xbeam::stats::{Grouper, Resample, Stat, StatsError};

use super::args::{Shared, WriteArgs};
use super::progress::{Progress, StageProgress};
use super::report;

/// The stores and output flags every statistics command takes.
#[derive(Debug, clap::Args)]
pub(crate) struct Io {
    /// The input Zarr store.
    src: PathBuf,
    /// The output Zarr store (must be missing or empty, see --overwrite).
    dst: PathBuf,
    /// Zarr format of the output, 2 or 3 (default: the input's).
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=3))]
    format: Option<u8>,
    #[command(flatten)]
    write: WriteArgs,
    #[command(flatten)]
    shared: Shared,
}

impl Io {
    fn format(&self) -> Result<Option<ZarrFormat>, Error> {
        Ok(self.format.map(ZarrFormat::from_number).transpose()?)
    }
}

/// Flags of climatology, stats and resample.
#[derive(Debug, clap::Args)]
pub(crate) struct Common {
    #[command(flatten)]
    io: Io,
    /// Statistics, e.g. `mean` or `mean,std` (mean, sum, std, var, min,
    /// max, count; default mean, unless --quantiles is given). With
    /// several outputs, each variable is written as `<var>_<stat>` (and
    /// `<var>_quantile`).
    #[arg(long, value_delimiter = ',', value_parser = parse_stat)]
    stat: Vec<Stat>,
    /// Exact quantiles, e.g. `0.1,0.5,0.9` (linear interpolation, as
    /// xarray's `quantile`): a `quantile` dimension after the group
    /// dimensions. Every value of a block is held in memory; --sketch takes
    /// them in one pass in little memory instead.
    #[arg(long, value_delimiter = ',')]
    quantiles: Vec<f64>,
    /// Take --quantiles from sketches of relative accuracy ALPHA (default
    /// 0.005: within 0.5% of the exact value) in one pass, holding about
    /// 600 bytes per group and element instead of every value.
    #[arg(long, value_name = "ALPHA", num_args = 0..=1, default_missing_value = "0.005")]
    sketch: Option<f64>,
    /// Delta degrees of freedom of var and std (0: population, as xarray).
    #[arg(long, default_value_t = 0)]
    ddof: u64,
    /// Keep NaN: any NaN in a group makes its result NaN (xarray's
    /// `skipna=False`).
    #[arg(long)]
    keep_nan: bool,
    /// When --max-mem cuts each input chunk into stripes (an hour ×
    /// day-of-year climatology, quantiles), first rechunk the input into
    /// pencils in a temporary store, so each chunk is decoded once more
    /// rather than once per stripe: auto (from 16 stripes per chunk),
    /// always or never. Not used with --window's mean, var and std, which
    /// stream over the days instead.
    #[arg(long, default_value = "auto", value_parser = parse_pencil)]
    pencil_pass: PencilPass,
}

/// Flags of `xbeam climatology`.
#[derive(Debug, clap::Args)]
pub(crate) struct ClimatologyArgs {
    /// Groupers along one dimension, e.g. `time.month` or
    /// `time.month,time.hour` (parts: year, month, day, hour, dayofyear,
    /// season, week), or the name of a 1-D coordinate (its values).
    #[arg(long, value_delimiter = ',', required = true, value_parser = parse_grouper)]
    groupby: Vec<Grouper>,
    /// WeatherBench 2's climatology: with `--groupby
    /// time.dayofyear[,time.hour]`, smooth each day of the year with a
    /// triangular window of W days (odd; WeatherBench 2 uses 61) that
    /// wraps around the year's end, weighted over the window and the years
    /// (mean, var and std, ddof 0; or with --quantiles, without --stat,
    /// the weighted quantiles of WeatherBench 2's SEEPS climatology, every
    /// value held as exact quantiles are).
    #[arg(long, value_name = "W")]
    window: Option<u32>,
    #[command(flatten)]
    common: Common,
}

/// Flags of `xbeam stats`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatsArgs {
    /// Dimensions to reduce over, e.g. `time` or `latitude,longitude`.
    #[arg(long, value_delimiter = ',', required = true)]
    over: Vec<String>,
    /// Weights along a reduced dimension: `latitude=cos` (area weights) or
    /// `DIM=values` (the coordinate's values), as xarray's `weighted`.
    #[arg(long, value_delimiter = ',', value_parser = parse_weight)]
    weights: Vec<WeightSpec>,
    #[command(flatten)]
    common: Common,
}

/// Flags of `xbeam resample`.
#[derive(Debug, clap::Args)]
pub(crate) struct ResampleArgs {
    /// The new time step: a count and min, h, D, MS (month start) or YS
    /// (year start), e.g. `1D`, `6h`, `1MS`; bins are closed and labelled
    /// on the left, as xarray's `resample(time=...)`.
    #[arg(long = "time", value_name = "FREQ")]
    freq: String,
    /// The datetime dimension to resample.
    #[arg(long, default_value = "time")]
    dim: String,
    #[command(flatten)]
    common: Common,
}

/// Flags of `xbeam rolling`.
#[derive(Debug, clap::Args)]
pub(crate) struct RollingArgs {
    #[command(flatten)]
    io: Io,
    /// The dimension the windows move along.
    #[arg(long, default_value = "time")]
    dim: String,
    /// Steps per window.
    #[arg(long)]
    window: u64,
    /// Centre each window on its label (xarray's `center=True`).
    #[arg(long)]
    center: bool,
    /// Fewest valid values a window needs (default: the whole window, so
    /// any NaN in a window makes it NaN, as xarray).
    #[arg(long)]
    min_periods: Option<u64>,
    /// Statistics: mean, sum, std, var, min, max.
    #[arg(long, default_value = "mean", value_delimiter = ',', value_parser = parse_stat)]
    stat: Vec<Stat>,
    /// Delta degrees of freedom of var and std (0, as xarray).
    #[arg(long, default_value_t = 0)]
    ddof: u64,
}

/// Names the variables a job left out because they are not numeric.
fn note_skipped(quiet: bool, skipped: &[(String, xbeam::chunk::DType)]) {
    if !quiet && !skipped.is_empty() {
        let names: Vec<String> = skipped.iter().map(|(n, d)| format!("{n} ({d})")).collect();
        eprintln!(
            "note: not numeric, left out (as xarray's numeric_only): {}",
            names.join(", ")
        );
    }
}

fn parse_pencil(s: &str) -> Result<PencilPass, String> {
    s.parse()
}

fn parse_stat(s: &str) -> Result<Stat, String> {
    s.parse().map_err(|e: StatsError| e.to_string())
}

fn parse_grouper(s: &str) -> Result<Grouper, String> {
    s.parse().map_err(|e: StatsError| e.to_string())
}

fn parse_weight(s: &str) -> Result<WeightSpec, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

impl Common {
    fn options(&self) -> Result<Options, Error> {
        let stats = if self.stat.is_empty() && self.quantiles.is_empty() {
            vec![Stat::Mean]
        } else {
            self.stat.clone()
        };
        Ok(Options {
            stats,
            quantiles: self.quantiles.clone(),
            ddof: self.ddof,
            skipna: !self.keep_nan,
            max_mem: self.io.shared.max_mem,
            format: self.io.format()?,
            write: self.io.write.mode(),
            pencil: self.pencil_pass,
            sketch: self.sketch,
            ..Options::new(&self.io.src, &self.io.dst)
        })
    }

    fn run(&self, job: &str, options: &Options) -> Result<(), Error> {
        let shared = &self.io.shared;
        // a bar of chunks read: the engine's elements are whole sequences
        // (one per variable of whole-grid chunks), too few to show progress
        let read = std::sync::Arc::new(reduce::ReadProgress::default());
        let options = Options {
            progress: Some(read.clone()),
            ..options.clone()
        };
        let progress = Progress::new(job, shared.quiet);
        let result = reduce::run(&options, &progress.attach_reads(shared.runner(), read));
        progress.finish();
        let done = result?;
        note_skipped(shared.quiet, &done.skipped);
        if let (Some(p), false) = (&done.pencils, shared.quiet) {
            let chunks: Vec<String> = p.iter().map(|(d, n)| format!("{d}={n}")).collect();
            eprintln!(
                "note: --max-mem cut the input's chunks into stripes, so it was first rechunked to {} in a temporary store (see --pencil-pass)",
                chunks.join(",")
            );
        }
        report::summary(job, &done.summary, shared.quiet);
        report::resumed(&self.io.dst, self.io.write.resume, shared.quiet);
        Ok(())
    }
}

pub(crate) fn climatology(a: &ClimatologyArgs) -> Result<(), Error> {
    let options = Options {
        groupby: a.groupby.clone(),
        window: a.window,
        ..a.common.options()?
    };
    a.common.run("climatology", &options)
}

pub(crate) fn stats(a: &StatsArgs) -> Result<(), Error> {
    let options = Options {
        over: a.over.clone(),
        weights: a.weights.clone(),
        ..a.common.options()?
    };
    a.common.run("stats", &options)
}

pub(crate) fn resample(a: &ResampleArgs) -> Result<(), Error> {
    let bins = Resample::new(&a.dim, &a.freq).map_err(|e| Error::Usage(e.to_string()))?;
    let options = Options {
        groupby: vec![Grouper::Resample(bins)],
        ..a.common.options()?
    };
    a.common.run("resample", &options)
}

pub(crate) fn rolling(a: &RollingArgs) -> Result<(), Error> {
    let options = xbeam::jobs::rolling::Options {
        window: a.window,
        center: a.center,
        min_periods: a.min_periods,
        stats: a.stat.clone(),
        ddof: a.ddof,
        format: a.io.format()?,
        write: a.io.write.mode(),
        ..xbeam::jobs::rolling::Options::new(&a.io.src, &a.io.dst, &a.dim)
    };
    let shared = &a.io.shared;
    let progress = StageProgress::new(shared.quiet);
    let result = xbeam::jobs::rolling::run(&options, &progress.attach(shared.runner()));
    progress.finish();
    let done = result?;
    note_skipped(shared.quiet, &done.skipped);
    report::summary("rolling", &done.summary, shared.quiet);
    report::resumed(&a.io.dst, a.io.write.resume, shared.quiet);
    Ok(())
}
