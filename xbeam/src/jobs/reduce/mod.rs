//! `xbeam climatology` and `xbeam stats`: statistics of every data variable
//! over some dimensions, optionally grouped by parts of a time coordinate
//! (`time.month`, `time.hour`, ...), in one pass over the store as it is
//! chunked, written to a new Zarr store.
//!
//! Each engine element folds one *sequence*: one variable over one block
//! of the dimensions that are kept, reading its chunks along the reduced
//! dimensions in index order and folding the time steps in time order
//! ([`Fold`](xbeam_stats::Fold)). Merges along the other reduced dimensions go in index order
//! ([`Partial::reduce_axis`](xbeam_stats::Partial::reduce_axis)), so every result is bit-identical whatever
//! the source chunking and the number of workers. WeatherBench 2's
//! windowed climatology (`--window`) streams over the days of the year
//! instead (see `stream.rs` and [`WindowStream`](xbeam_stats::WindowStream));
//! its quantiles are folded as exact quantiles are and merged over the
//! window's days at the end ([`Values::window_quantiles`](xbeam_stats::Values::window_quantiles)).
//!
//! ```
//! use xbeam::jobs::{generate, reduce};
//! use xbeam::runner::Runner;
//! use xbeam::stats::{parse_groupers, Stat};
//!
//! let dir = tempfile::tempdir()?;
//! let (src, dst) = (dir.path().join("era5.zarr"), dir.path().join("clim.zarr"));
//! let runner = Runner::local_with_workers(2).quiet();
//! generate::run(&generate::Options { ntime: Some(96), nlat: 5, nlon: 8, ..generate::Options::new(&src) }, &runner)?;
//! let options = reduce::Options {
//!     groupby: parse_groupers("time.hour")?,
//!     stats: vec![Stat::Mean, Stat::Std],
//!     ..reduce::Options::new(&src, &dst)
//! };
//! let done = reduce::run(&options, &runner)?;
//! assert_eq!(done.summary.bytes_in, 2 * 96 * 5 * 8 * 4);
//! let out = xbeam::io::open_zarr(&dst)?;
//! assert_eq!(out.template().sizes()["hour"], 24);
//! assert!(out.template().data_vars().contains_key("temperature_std"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use indexmap::IndexMap;
use xbeam_chunk::{DType, Template};
use xbeam_io::{open_zarr, setup_zarr, sync_store, SetupOptions, ZarrFormat, ZarrSource};
use xbeam_runner::{Pipeline, Runner};
use xbeam_stats::{Grouper, Groups, Need, Stat};

use super::{output, Summary};
use crate::error::{ensure_usage, Error};

mod budget;
mod fold;
mod grouping;
mod pencil;
mod stream;
mod template;

use budget::{fit_budget, regroup, sequences};
use fold::Plan;
use grouping::{groups_of, weights_of, Grouping};
use template::output_template;
pub(in crate::jobs) use template::plain_attrs;

pub use pencil::{PencilPass, AUTO_STRIPES};

/// Weights along one dimension, from its coordinate's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// `cos(value°)`: area weights from latitudes in degrees.
    Cos,
    /// The coordinate's values themselves.
    Values,
}

/// A `DIM=cos` or `DIM=values` weight specification.
///
/// ```
/// use xbeam::jobs::reduce::{Weights, WeightSpec};
///
/// let w: WeightSpec = "latitude=cos".parse()?;
/// assert_eq!((w.dim.as_str(), w.weights), ("latitude", Weights::Cos));
/// assert!("latitude=sin".parse::<WeightSpec>().is_err());
/// # Ok::<(), xbeam::error::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightSpec {
    /// The dimension (and its 1-D coordinate).
    pub dim: String,
    /// How its coordinate gives the weights.
    pub weights: Weights,
}

impl FromStr for WeightSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<WeightSpec, Error> {
        let bad = || {
            Error::Usage(format!(
                "invalid weights {s:?}: expected DIM=cos or DIM=values (e.g. latitude=cos)"
            ))
        };
        let (dim, how) = s.split_once('=').ok_or_else(bad)?;
        let weights = match how.trim() {
            "cos" => Weights::Cos,
            "values" => Weights::Values,
            _ => return Err(bad()),
        };
        ensure_usage!(!dim.trim().is_empty(), "{}", bad());
        Ok(WeightSpec {
            dim: dim.trim().to_owned(),
            weights,
        })
    }
}

/// What to compute.
#[derive(Debug, Clone)]
pub struct Options {
    /// The input store.
    pub src: PathBuf,
    /// The output store.
    pub dst: PathBuf,
    /// Groupers, all along one dimension, which is reduced: parts of a
    /// time coordinate, a 1-D coordinate's values, resampling bins or a
    /// user function.
    pub groupby: Vec<Grouper>,
    /// Other dimensions to reduce over.
    pub over: Vec<String>,
    /// The statistics; with one, variables keep their names, with several
    /// each is written as `<var>_<stat>`.
    pub stats: Vec<Stat>,
    /// Weights along reduced dimensions (mean, sum, var and std only).
    pub weights: Vec<WeightSpec>,
    /// Delta degrees of freedom of var and std (0, as xarray).
    pub ddof: u64,
    /// Skip NaN (true, as xarray).
    pub skipna: bool,
    /// The whole process's memory budget in bytes.
    pub max_mem: u64,
    /// Output Zarr format (default: the input's).
    pub format: Option<ZarrFormat>,
    /// What to do with an existing output, and the free-space check.
    pub write: output::WriteMode,
    /// Exact quantile levels (each from 0 to 1), as xarray's
    /// `quantile(q)`: written as one more output, with a `quantile`
    /// dimension after the group dimensions.
    pub quantiles: Vec<f64>,
    /// WeatherBench 2's smoothing: with a `time.dayofyear` grouper (and
    /// optionally `time.hour`), each day of year merges the days around it
    /// (wrapping around the year's end) with triangular weights over this
    /// odd number of days, and over every year; day 366 of common years
    /// takes day 365's values. Mean, var and std (streamed over the days),
    /// or exact `quantiles` alone (xarray's weighted quantile over the
    /// window's days and the years, every value of a block held).
    pub window: Option<u32>,
    /// Take the quantiles from sketches of this relative accuracy (see
    /// [`Sketch`](xbeam_stats::Sketch): within `α` of the exact value, in
    /// one pass whatever the number of values) instead of every value.
    pub sketch: Option<f64>,
    /// Whether to rechunk the input into pencils first when the budget
    /// cuts its chunks into stripes (see [`PencilPass`]; not used for a
    /// window's mean, var and std, which stream over the days instead).
    pub pencil: PencilPass,
    /// Where to report chunks read as the job runs, if anywhere.
    pub progress: Option<Arc<ReadProgress>>,
}

impl Options {
    /// The mean of `src` into `dst` (set `groupby` or `over`).
    pub fn new(src: impl AsRef<Path>, dst: impl AsRef<Path>) -> Options {
        Options {
            src: src.as_ref().to_path_buf(),
            dst: dst.as_ref().to_path_buf(),
            groupby: Vec::new(),
            over: Vec::new(),
            stats: vec![Stat::Mean],
            weights: Vec::new(),
            ddof: 0,
            skipna: true,
            max_mem: 1 << 30,
            format: None,
            write: output::WriteMode::default(),
            quantiles: Vec::new(),
            window: None,
            sketch: None,
            pencil: PencilPass::Auto,
            progress: None,
        }
    }
}

/// Live progress of a reduction, for a progress bar: source chunks read
/// of all it will read, and their bytes. Updated as each chunk is folded,
/// so a job of a few long sequences (one per variable of whole-grid
/// chunks) moves steadily. Set [`Options::progress`] and read it while
/// the job runs; a pencil pass counts its second pass (the rechunk before
/// it reports nothing here).
///
/// ```
/// use xbeam::jobs::reduce::ReadProgress;
///
/// let p = ReadProgress::default();
/// p.read(1000);
/// assert_eq!((p.chunks(), p.bytes(), p.total()), (1, 1000, 0));
/// ```
#[derive(Debug, Default)]
pub struct ReadProgress {
    chunks: AtomicU64,
    bytes: AtomicU64,
    total: AtomicU64,
}

impl ReadProgress {
    /// Starts counting the `total` chunks of a run from none.
    fn start(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.chunks.store(0, Ordering::Relaxed);
        self.bytes.store(0, Ordering::Relaxed);
    }

    /// Counts one chunk of `bytes` read.
    pub fn read(&self, bytes: u64) {
        self.chunks.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Chunks read so far.
    pub fn chunks(&self) -> u64 {
        self.chunks.load(Ordering::Relaxed)
    }

    /// Bytes of the chunks read so far (decoded).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Chunks the job reads in all (0 until it has planned).
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Done {
    /// Bytes, chunks, time and memory.
    pub summary: Summary,
    /// Data variables left out because they are not numeric (as xarray's
    /// `numeric_only`), with their dtypes.
    pub skipped: Vec<(String, DType)>,
    /// Sequences folded in parallel.
    pub workers: usize,
    /// The chunks the input was first rechunked to, in a temporary store
    /// (the pencil pass, see [`PencilPass`]), if it was.
    pub pencils: Option<IndexMap<String, u64>>,
}

/// How one variable is reduced.
#[derive(Debug, Clone)]
struct VarPlan {
    name: String,
    dims: Vec<String>,
    dtype: DType,
    /// The axis folded in order (the grouped time dimension), if any.
    fold: Option<usize>,
    /// Other reduced axes (of `dims`).
    reduced: Vec<usize>,
    /// Kept axes (of `dims`).
    kept: Vec<usize>,
}

/// One engine element: a variable over one block of its kept axes.
#[derive(Debug, Clone)]
struct Sequence {
    var: usize,
    /// Element range per kept axis.
    block: Vec<Range<u64>>,
}

/// `var` itself with one output, `<var>_<what>` with several.
pub(super) fn out_name(var: &str, what: &str, outputs: usize) -> String {
    if outputs == 1 {
        var.to_owned()
    } else {
        format!("{var}_{what}")
    }
}

/// How many outputs each variable has: one per statistic, and one for the
/// quantiles.
fn outputs(stats: &[Stat], quantiles: &[f64]) -> usize {
    stats.len() + usize::from(!quantiles.is_empty())
}

fn check(options: &Options, t: &Template) -> Result<(), Error> {
    ensure_usage!(
        !options.stats.is_empty() || !options.quantiles.is_empty(),
        "no statistic asked for: give --stat or --quantiles"
    );
    xbeam_stats::check_quantiles(&options.quantiles).map_err(|e| Error::Usage(e.to_string()))?;
    if let Some(alpha) = options.sketch {
        ensure_usage!(
            !options.quantiles.is_empty(),
            "--sketch gives quantiles: give --quantiles too"
        );
        xbeam_stats::Sketch::new(alpha).map_err(|e| Error::Usage(e.to_string()))?;
    }
    ensure_usage!(
        options.quantiles.is_empty() || options.weights.is_empty(),
        "--quantiles cannot be combined with --weights"
    );
    ensure_usage!(
        options.quantiles.is_empty() || options.window.is_none() || options.stats.is_empty(),
        "--window takes either --stat or --quantiles, not both: run the climatology once for each"
    );
    ensure_usage!(
        options.sketch.is_none() || options.window.is_none(),
        "--window takes exact quantiles only (WeatherBench 2's weighted quantile): drop --sketch"
    );
    for (i, s) in options.stats.iter().enumerate() {
        ensure_usage!(
            !options.stats[..i].contains(s),
            "statistic {s} is named twice"
        );
    }
    for (i, g) in options.groupby.iter().enumerate() {
        ensure_usage!(
            options.groupby[..i].iter().all(|o| o.name() != g.name()),
            "grouper {g} is named twice"
        );
    }
    ensure_usage!(
        !options.groupby.is_empty() || !options.over.is_empty(),
        "nothing to reduce over: give --groupby or --over"
    );
    for d in &options.over {
        ensure_usage!(
            t.sizes().contains_key(d),
            "dimension {d:?} is not in {}: expected one of {}",
            options.src.display(),
            crate::key::repr::tuple(t.sizes().keys())
        );
    }
    if let Some(w) = options.window {
        check_window(options, w)?;
    }
    let weighted = !options.weights.is_empty();
    if weighted {
        let bad: Vec<&str> = options
            .stats
            .iter()
            .filter(|s| !s.weightable())
            .map(|s| s.name())
            .collect();
        ensure_usage!(
            bad.is_empty(),
            "--weights applies to mean, sum, var and std, not {}",
            bad.join(", ")
        );
        ensure_usage!(
            options.ddof == 0,
            "--ddof cannot be used with --weights (as xarray's weighted var)"
        );
    }
    Ok(())
}

fn check_window(options: &Options, w: u32) -> Result<(), Error> {
    use xbeam_chunk::TimeField;
    ensure_usage!(
        w >= 3 && w % 2 == 1,
        "--window must be an odd number of days, at least 3 (WeatherBench 2 uses 61): found {w}"
    );
    let field = |g: &Grouper| match g {
        Grouper::Time(t) => Some(t.field),
        _ => None,
    };
    ensure_usage!(
        options
            .groupby
            .iter()
            .any(|g| field(g) == Some(TimeField::DayOfYear)),
        "--window smooths over the day of the year: it needs time.dayofyear in --groupby"
    );
    let other: Vec<String> = options
        .groupby
        .iter()
        .filter(|g| !matches!(field(g), Some(TimeField::DayOfYear | TimeField::Hour)))
        .map(ToString::to_string)
        .collect();
    ensure_usage!(
        other.is_empty(),
        "--window takes time.dayofyear and time.hour groupers only, not {}",
        other.join(", ")
    );
    let bad: Vec<&str> = options
        .stats
        .iter()
        .filter(|s| !matches!(s, Stat::Mean | Stat::Var | Stat::Std))
        .map(|s| s.name())
        .collect();
    ensure_usage!(
        bad.is_empty(),
        "--window gives weighted mean, var and std (or, without --stat, --quantiles), not {}",
        bad.join(", ")
    );
    ensure_usage!(
        options.ddof == 0 && options.weights.is_empty() && options.over.is_empty(),
        "--window cannot be combined with --ddof, --weights or --over (its std is WeatherBench 2's, ddof 0)"
    );
    Ok(())
}

/// Whether statistics take a variable: integers and floats (bool,
/// datetimes and strings are left out, as xarray's `numeric_only`).
pub(super) fn numeric(dtype: DType) -> bool {
    dtype.is_integer() || dtype.is_float()
}

/// Non-numeric variables left out, with their dtypes.
type Skipped = Vec<(String, DType)>;

/// Plans every variable; returns the plans and the non-numeric skipped,
/// or an error when no variable is numeric.
fn plan_vars(
    options: &Options,
    t: &Template,
    fold: Option<&str>,
) -> Result<(Vec<VarPlan>, Skipped), Error> {
    let over = &options.over;
    let mut vars = Vec::new();
    let mut skipped = Vec::new();
    for (name, v) in t.data_vars() {
        if !numeric(v.dtype) {
            skipped.push((name.clone(), v.dtype));
            continue;
        }
        let fold_axis = fold.and_then(|f| v.dims.iter().position(|d| d == f));
        let (mut reduced, mut kept) = (Vec::new(), Vec::new());
        for (i, d) in v.dims.iter().enumerate() {
            if Some(i) == fold_axis {
                continue;
            }
            if over.contains(d) {
                reduced.push(i);
            } else {
                kept.push(i);
            }
        }
        vars.push(VarPlan {
            name: name.clone(),
            dims: v.dims.clone(),
            dtype: v.dtype,
            fold: fold_axis,
            reduced,
            kept,
        });
    }
    ensure_usage!(
        !vars.is_empty(),
        "{} has no numeric data variable to reduce",
        options.src.display()
    );
    Ok((vars, skipped))
}

/// The source chunks a sequence of `v` reads: one per chunk along the
/// axes it folds or reduces (`sizes` and chunk `step` by dimension).
fn chunks_read(v: &VarPlan, sizes: &IndexMap<String, u64>, step: &IndexMap<String, u64>) -> u64 {
    v.reduced
        .iter()
        .copied()
        .chain(v.fold)
        .map(|a| sizes[&v.dims[a]].div_ceil(step[&v.dims[a]]).max(1))
        .product()
}

/// The elements of one whole source chunk of `v` (`sizes` and chunk
/// `step` by dimension).
fn chunk_elems(v: &VarPlan, sizes: &IndexMap<String, u64>, step: &IndexMap<String, u64>) -> u64 {
    v.dims.iter().map(|d| step[d].min(sizes[d])).product()
}

/// Source chunk size per dimension (the whole dimension where unchunked).
pub(super) fn steps(source: &ZarrSource) -> IndexMap<String, u64> {
    let sizes = source.template().sizes();
    sizes
        .iter()
        .map(|(d, &n)| {
            (
                d.clone(),
                source.chunks().get(d).copied().unwrap_or(n).max(1),
            )
        })
        .collect()
}

/// Each step's slot among the steps of its group, its slot in its second
/// group (`dup`: day 366 filled from day 365 under a window), and the
/// steps per group.
fn slots_of(groups: &Groups, dup: &[Option<usize>]) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let mut count = vec![0usize; groups.count().max(1)];
    let mut take = |g: &Option<usize>| {
        g.map_or(0, |g| {
            count[g] += 1;
            count[g] - 1
        })
    };
    let slot = groups.index.iter().map(&mut take).collect();
    let second = dup.iter().map(&mut take).collect();
    (slot, second, count)
}

/// Whether any time step falls in each group (empty without groupers; all
/// under a window, which takes every day from the days around it).
fn present(options: &Options, groups: &Groups, windowed: bool) -> Vec<bool> {
    if options.groupby.is_empty() {
        Vec::new()
    } else if windowed {
        vec![true; groups.count()]
    } else {
        groups.present()
    }
}

/// Reduces `options.src` into `options.dst`; nothing is written when the
/// options or the store do not fit (a usage error names what).
pub fn run(options: &Options, runner: &Runner) -> Result<Done, Error> {
    let started = Instant::now();
    let source = open_zarr(&options.src).map_err(Error::input(&options.src))?;
    let t = source.template().clone();
    check(options, &t)?;
    let Grouping {
        dim: fold,
        groups,
        dup,
        window,
    } = groups_of(options, &t)?;
    let weights = weights_of(options, &t)?;
    let step = steps(&source);
    let (vars, skipped) = plan_vars(options, &t, fold.as_deref())?;
    let group_dims: Vec<String> = options.groupby.iter().map(Grouper::name).collect();
    let (template, chunks) = output_template(
        options,
        &t,
        &vars,
        &groups,
        &group_dims,
        &step,
        fold.as_deref(),
    )?;
    let need = Need::of(&options.stats, options.skipna);
    let sequences = sequences(&vars, t.sizes(), &step);
    let day_window = window.as_ref().map(|w| w.of_groups(&groups));
    if let Some(window) = window.filter(|_| options.quantiles.is_empty()) {
        // a window groups by the day of the year, so the time is folded
        let parts = stream::Parts {
            source,
            template,
            chunks,
            vars,
            sequences,
            groups,
            dup,
            window,
            group_dims,
            step,
            need,
            skipped,
            started,
        };
        return stream::run(options, runner, parts);
    }
    let (sequences, mut chunks, workers, stripes) = fit_budget(
        options,
        runner.workers(),
        (&t, &vars, &step, need, (&groups, &dup)),
        &sequences,
        chunks,
    )?;
    let planned = template.data_nbytes();
    let pencils = pencil::target(options.pencil, &t, &vars, &step, (fold.as_deref(), stripes));
    if let Some(target) = pencils {
        return pencil::run(options, runner, target, (started, planned));
    }
    regroup(&mut chunks, &group_dims, &groups);
    let runner = runner.clone().limit_workers(workers);
    output::prepare(&options.dst, Some(&options.src), options.write, planned)?;
    let setup = SetupOptions {
        chunks,
        shards: None,
        format: options.format.unwrap_or(source.format()),
        encoding: IndexMap::new(),
        resume: options.write.resume,
    };
    let sink = setup_zarr(&template, &options.dst, &setup).map_err(Error::output(&options.dst))?;
    let present = present(options, &groups, day_window.is_some());
    let (slot, dup_slot, slots) = slots_of(&groups, &dup);
    let plan = Arc::new(Plan {
        progress: options.progress.clone(),
        source,
        sink,
        vars,
        sequences,
        present,
        quantiles: options.quantiles.clone(),
        sketch: options.sketch,
        slot,
        slots,
        dup,
        dup_slot,
        window: day_window,
        skipna: options.skipna,
        groups,
        group_dims,
        step,
        weights,
        stats: options.stats.clone(),
        need,
        ddof: options.ddof,
    });
    let count = plan.sequences.len();
    let reads = (0..count).map(|i| plan.reads(i)).sum();
    execute(
        options,
        (count, reads, move |i| plan.run_sequence(i)),
        &runner,
        (started, skipped, workers),
    )
}

/// Runs `count` sequences (`run(i)` folds and writes sequence `i`,
/// returning bytes read, bytes written and chunks read; `reads` chunks in
/// all) on the engine, flushes the output and sums up.
fn execute<F>(
    options: &Options,
    (count, reads, run): (usize, u64, F),
    runner: &Runner,
    (started, skipped, workers): (Instant, Vec<(String, DType)>, usize),
) -> Result<Done, Error>
where
    F: Fn(usize) -> Result<(u64, u64, u64), Error> + Send + Sync + 'static,
{
    if let Some(p) = &options.progress {
        p.start(reads);
    }
    let p = Pipeline::new();
    let done = p
        .source("fold", count as u64, move |i| run(i as usize))
        .collect("out");
    p.run(runner)?;
    sync_store(&options.dst).map_err(Error::output(&options.dst))?;
    let done = done.take()?;
    let bytes_in: u64 = done.iter().map(|d| d.0).sum();
    let bytes_out: u64 = done.iter().map(|d| d.1).sum();
    let chunks: u64 = done.iter().map(|d| d.2).sum();
    Ok(Done {
        summary: Summary::finish(started, bytes_in, bytes_out, chunks),
        skipped,
        workers,
        pencils: None,
    })
}
