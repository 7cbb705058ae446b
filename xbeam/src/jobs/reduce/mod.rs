//! `xbeam climatology` and `xbeam stats`: statistics of every data variable
//! over some dimensions, optionally grouped by parts of a time coordinate
//! (`time.month`, `time.hour`, ...), in one pass over the store as it is
//! chunked, written to a new Zarr store.
//!
//! Each engine element folds one *sequence*: one variable over one block
//! of the dimensions that are kept, reading its chunks along the reduced
//! dimensions in index order and folding the time steps in time order
//! ([`Fold`]). Merges along the other reduced dimensions go in index order
//! ([`Partial::reduce_axis`]), so every result is bit-identical whatever
//! the source chunking and the number of workers.
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
use std::sync::Arc;
use std::time::Instant;

use indexmap::IndexMap;
use serde_json::Value as Json;
use xbeam_chunk::ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};
use xbeam_chunk::{dispatch, Array, Attrs, DType, Dataset, Template, VarSchema, Variable};
use xbeam_io::{open_zarr, setup_zarr, sync_store, SetupOptions, ZarrFormat, ZarrSink, ZarrSource};
use xbeam_key::{ChunkSpec, Key};
use xbeam_runner::{Pipeline, Runner};
use xbeam_stats::{Fold, Grouper, Groups, Need, Partial, Sketches, Stat, Values};

use super::{output, Summary};
use crate::error::{ensure_usage, Error};
use crate::key::{to_human_size, to_human_size_up};

mod pencil;

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
    /// takes day 365's values. Mean, var and std only.
    pub window: Option<u32>,
    /// Take the quantiles from sketches of this relative accuracy (see
    /// [`Sketch`](xbeam_stats::Sketch): within `α` of the exact value, in
    /// one pass whatever the number of values) instead of every value.
    pub sketch: Option<f64>,
    /// Whether to rechunk the input into pencils first when the budget
    /// cuts its chunks into stripes (see [`PencilPass`]).
    pub pencil: PencilPass,
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
        }
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

/// Everything a sequence needs, shared by the workers.
struct Plan {
    source: ZarrSource,
    sink: ZarrSink,
    vars: Vec<VarPlan>,
    sequences: Vec<Sequence>,
    groups: Groups,
    /// Whether any time step falls in each group (empty without groupers).
    present: Vec<bool>,
    /// A second group for each step (day 365 of a common year also fills
    /// day 366 under a window), empty without a window.
    dup: Vec<Option<usize>>,
    /// The window over the day of the year, if any.
    window: Option<Window>,
    /// Quantile levels (none: no quantiles).
    quantiles: Vec<f64>,
    /// The sketches' accuracy, when quantiles come from sketches.
    sketch: Option<f64>,
    /// Each step's slot among the steps of its group (for quantiles).
    slot: Vec<usize>,
    /// Steps per group.
    slots: Vec<usize>,
    skipna: bool,
    /// Group dimension names (empty without groupers).
    group_dims: Vec<String>,
    /// Source chunk size per dimension.
    step: IndexMap<String, u64>,
    /// Weights per dimension.
    weights: IndexMap<String, Vec<f64>>,
    stats: Vec<Stat>,
    need: Need,
    ddof: u64,
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
        options.quantiles.is_empty() || (options.window.is_none() && options.weights.is_empty()),
        "--quantiles cannot be combined with --window or --weights"
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
        "--window gives weighted mean, var and std only, not {}",
        bad.join(", ")
    );
    ensure_usage!(
        options.ddof == 0 && options.weights.is_empty() && options.over.is_empty(),
        "--window cannot be combined with --ddof, --weights or --over (its std is WeatherBench 2's, ddof 0)"
    );
    Ok(())
}

/// How the steps of the grouped dimension fall into groups.
struct Grouping {
    /// The dimension folded in order (grouped, or reduced), if any.
    dim: Option<String>,
    groups: Groups,
    /// A second group per step (see [`Plan::dup`]).
    dup: Vec<Option<usize>>,
    /// The window, if any.
    window: Option<Window>,
}

/// A window over the day-of-year axis of the groups (read as `[outer,
/// days, inner]`), as [`Partial::window`] takes it.
#[derive(Debug, Clone)]
struct Window {
    outer: usize,
    /// The days present, from 0.
    days: Vec<usize>,
    period: usize,
    width: usize,
}

/// The day-of-year part under a window: the days present (and day 366
/// when a year of 366 days is present: day 365 of a shorter year then also
/// counts as day 366, the second list, as WeatherBench 2 fills the missing
/// day from the day before), the step positions, and the period the window
/// wraps around (the longest year present: 366, 365 or 360 days).
fn window_days(time: &xbeam_chunk::Array) -> Result<WindowDays, Error> {
    use xbeam_chunk::TimeField;
    let (_, _, calendar) = time.datetime_ticks()?;
    let ints = |f: TimeField| -> Result<Vec<Option<i64>>, Error> {
        let a = time.time_field(f)?;
        Ok(match a.as_view::<i64>() {
            Ok(v) => v.iter().map(|&x| Some(x)).collect(),
            Err(_) => a
                .to_f64()?
                .iter()
                .map(|x| (!x.is_nan()).then_some(*x as i64))
                .collect(),
        })
    };
    let (days, years) = (ints(TimeField::DayOfYear)?, ints(TimeField::Year)?);
    let period = years
        .iter()
        .flatten()
        .map(|&y| calendar.days_in_year(y))
        .max()
        .unwrap_or(365);
    let filled: Vec<bool> = days
        .iter()
        .zip(&years)
        .map(|(d, y)| {
            matches!((d, y), (Some(365), Some(y)) if period == 366 && calendar.days_in_year(*y) == 365)
        })
        .collect();
    let mut present: std::collections::BTreeSet<i64> = days.iter().flatten().copied().collect();
    if filled.contains(&true) {
        present.insert(366);
    }
    let labels: Vec<i64> = present.into_iter().collect();
    let at = |d: i64| labels.binary_search(&d).ok();
    let positions = days.iter().map(|d| d.and_then(at)).collect();
    let dup = filled
        .iter()
        .map(|&f| if f { at(366) } else { None })
        .collect();
    let offsets = labels.iter().map(|&d| (d - 1) as usize).collect();
    Ok(WindowDays {
        part: (xbeam_stats::Labels::Ints(labels), positions),
        dup,
        offsets,
        period: period as usize,
    })
}

/// See [`window_days`].
struct WindowDays {
    part: (xbeam_stats::Labels, Vec<Option<usize>>),
    dup: Vec<Option<usize>>,
    /// Each label's day, from 0.
    offsets: Vec<usize>,
    period: usize,
}

/// The time coordinate's dimension and the groups, or one group of all.
/// Without groupers: a reduction over a time dimension folds it in order
/// as one group; otherwise nothing is folded.
fn ungrouped(options: &Options, t: &Template) -> Grouping {
    let time_dim = options.over.iter().find(|d| {
        t.coords()
            .get(*d)
            .is_some_and(|c| matches!(c.dtype(), DType::DateTime(..)))
    });
    let n = time_dim.map_or(0, |d| t.sizes()[d] as usize);
    Grouping {
        dim: time_dim.cloned(),
        groups: Groups {
            labels: Vec::new(),
            index: vec![Some(0); n],
        },
        dup: Vec::new(),
        window: None,
    }
}

fn groups_of(options: &Options, t: &Template) -> Result<Grouping, Error> {
    let plain = |dim, groups| Grouping {
        dim,
        groups,
        dup: Vec::new(),
        window: None,
    };
    let Some(first) = options.groupby.first() else {
        return Ok(ungrouped(options, t));
    };
    let mut dim: Option<String> = None;
    let mut parts = Vec::with_capacity(options.groupby.len());
    let mut window_at = None;
    for g in &options.groupby {
        let coord = t.coords().get(g.coord()).ok_or_else(|| {
            Error::Usage(format!(
                "grouper {g} names coordinate {:?}, which {} does not have: expected one of {}",
                g.coord(),
                options.src.display(),
                crate::key::repr::tuple(t.coords().keys())
            ))
        })?;
        ensure_usage!(
            coord.dims().len() == 1,
            "grouper {g} needs a 1-D coordinate, but {:?} has dimensions {:?}",
            g.coord(),
            coord.dims()
        );
        ensure_usage!(
            !g.needs_time() || matches!(coord.dtype(), DType::DateTime(..)),
            "grouper {g} needs a datetime coordinate, but {:?} is {}",
            g.coord(),
            coord.dtype()
        );
        let d = &coord.dims()[0];
        if let Some(prev) = &dim {
            ensure_usage!(
                prev == d,
                "groupers must group one dimension: {first} groups {prev:?} and {g} groups {d:?}"
            );
        }
        dim = Some(d.clone());
        let is_day = matches!(g, Grouper::Time(t) if t.field == xbeam_chunk::TimeField::DayOfYear);
        if options.window.is_some() && is_day {
            let days = window_days(coord.data())?;
            window_at = Some((parts.len(), days.dup, days.offsets, days.period));
            parts.push(days.part);
        } else {
            parts.push(
                g.labels(coord.data())
                    .map_err(|e| Error::Usage(e.to_string()))?,
            );
        }
    }
    let dim = dim.expect("at least one grouper");
    let lens: Vec<usize> = parts.iter().map(|p| p.0.len()).collect();
    let positions: Vec<Vec<Option<usize>>> = parts.iter().map(|p| p.1.clone()).collect();
    let groups = Groups::from_parts(t.sizes()[&dim] as usize, parts);
    ensure_usage!(
        groups.count() > 0,
        "grouping by {} leaves no group: every label is missing (NaN or NaT)",
        first
    );
    let Some((k, extra, offsets, period)) = window_at else {
        return Ok(plain(Some(dim), groups));
    };
    // the second group of a step: its day moved from 365 to 366
    let inner: usize = lens[k + 1..].iter().product();
    let dup = groups
        .index
        .iter()
        .zip(extra)
        .zip(&positions[k])
        .map(|((g, e), p)| match (g, e, p) {
            (Some(g), Some(e), Some(p)) => Some(g + (e - p) * inner),
            _ => None,
        })
        .collect();
    let window = Window {
        outer: lens[..k].iter().product(),
        days: offsets,
        period,
        width: options.window.unwrap_or(0) as usize,
    };
    Ok(Grouping {
        dim: Some(dim),
        groups,
        dup,
        window: Some(window),
    })
}

fn weights_of(options: &Options, t: &Template) -> Result<IndexMap<String, Vec<f64>>, Error> {
    let mut out = IndexMap::new();
    for w in &options.weights {
        ensure_usage!(
            options.over.contains(&w.dim),
            "weights along {:?} need {:?} in --over",
            w.dim,
            w.dim
        );
        let c = t
            .coords()
            .get(&w.dim)
            .filter(|c| c.dims().len() == 1)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "weights along {:?} need a 1-D coordinate {:?}",
                    w.dim, w.dim
                ))
            })?;
        let values = c.data().to_f64().map_err(|_| {
            Error::Usage(format!(
                "weights along {:?} need a numeric coordinate, found {}",
                w.dim,
                c.dtype()
            ))
        })?;
        let values: Vec<f64> = values
            .iter()
            .map(|&v| match w.weights {
                Weights::Cos => v.to_radians().cos(),
                Weights::Values => v,
            })
            .collect();
        out.insert(w.dim.clone(), values);
    }
    Ok(out)
}

/// Whether statistics take a variable: integers and floats (bool,
/// datetimes and strings are left out, as xarray's `numeric_only`).
pub(super) fn numeric(dtype: DType) -> bool {
    dtype.is_integer() || dtype.is_float()
}

/// Plans every variable; returns the plans and the non-numeric skipped.
fn plan_vars(
    t: &Template,
    fold: Option<&str>,
    over: &[String],
) -> (Vec<VarPlan>, Vec<(String, DType)>) {
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
    (vars, skipped)
}

/// Every sequence: each variable over each block of source chunks of its
/// kept axes, in order.
fn sequences(
    vars: &[VarPlan],
    sizes: &IndexMap<String, u64>,
    step: &IndexMap<String, u64>,
) -> Vec<Sequence> {
    let mut out = Vec::new();
    for (vi, v) in vars.iter().enumerate() {
        let axes: Vec<(u64, u64)> = v
            .kept
            .iter()
            .map(|&a| {
                let d = &v.dims[a];
                (sizes[d], step[d])
            })
            .collect();
        let counts: Vec<u64> = axes.iter().map(|(n, s)| n.div_ceil(*s).max(1)).collect();
        let total: u64 = counts.iter().product();
        for mut flat in 0..total {
            let mut block = vec![0..0; axes.len()];
            for k in (0..axes.len()).rev() {
                let (n, s) = axes[k];
                let i = flat % counts[k];
                flat /= counts[k];
                block[k] = i * s..((i + 1) * s).min(n);
            }
            out.push(Sequence { var: vi, block });
        }
    }
    out
}

/// When sequences are too large for a worker's share of the budget: the
/// kept dimension to cut them along (the one with the largest source
/// chunks) and the stripe length, a divisor of that chunk size, so stripes
/// of different blocks never share an output chunk. Each stripe reads the
/// chunks it crosses, so a chunk is decoded once per stripe.
fn stripes(
    sequences: &[Sequence],
    vars: &[VarPlan],
    step: &IndexMap<String, u64>,
    largest: u64,
    per_worker: u64,
) -> Option<(String, u64)> {
    let seq = sequences.first()?;
    let v = &vars[seq.var];
    let (k, len) = seq
        .block
        .iter()
        .enumerate()
        .map(|(k, r)| (k, r.end - r.start))
        .max_by_key(|&(_, n)| n)?;
    let dim = v.dims[v.kept[k]].clone();
    let parts = largest.div_ceil(per_worker.max(1)).max(2);
    let want = len.div_ceil(parts).max(1);
    let s = step[&dim];
    let stripe = (1..=want).rev().find(|d| s % d == 0)?;
    Some((dim, stripe))
}

/// Cuts every sequence whose variable keeps `dim` into stripes of
/// `stripe` elements along it.
fn split(sequences: Vec<Sequence>, vars: &[VarPlan], dim: &str, stripe: u64) -> Vec<Sequence> {
    let mut out = Vec::new();
    for seq in sequences {
        let v = &vars[seq.var];
        let Some(k) = v.kept.iter().position(|&a| v.dims[a] == dim) else {
            out.push(seq);
            continue;
        };
        let r = seq.block[k].clone();
        let mut start = r.start;
        while start < r.end {
            let mut block = seq.block.clone();
            block[k] = start..(start + stripe).min(r.end);
            out.push(Sequence {
                var: seq.var,
                block,
            });
            start += stripe;
        }
    }
    out
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

/// Output chunk sizes of the group dimensions: whole from the last while a
/// chunk stays within 4 MiB, then as many groups as fit, then 1.
fn group_chunks(groups: &Groups, block_bytes: u64) -> Vec<u64> {
    let mut chunks = vec![1u64; groups.labels.len()];
    let mut bytes = block_bytes.max(1);
    for k in (0..chunks.len()).rev() {
        let n = groups.labels[k].len().max(1) as u64;
        let fit = ((4 << 20) / bytes).clamp(1, n);
        chunks[k] = fit;
        if fit < n {
            break;
        }
        bytes *= n;
    }
    chunks
}

/// Sets the group dimensions' output chunks for the blocks the other
/// dimensions' chunks make (after [`fit_budget`] cut them into stripes).
fn regroup(chunks: &mut OutputChunks, group_dims: &[String], groups: &Groups) {
    let block: u64 = chunks
        .iter()
        .filter(|(d, _)| !group_dims.contains(d) && d.as_str() != BOUNDS_DIM)
        .map(|(_, c)| match c {
            ChunkSpec::Size(n) => *n,
            ChunkSpec::Full | ChunkSpec::Sizes(_) => 1,
        })
        .product::<u64>()
        * 8;
    for (d, c) in group_dims.iter().zip(group_chunks(groups, block)) {
        chunks.insert(d.clone(), ChunkSpec::Size(c));
    }
}

/// The coordinate of a climatology's bounds, and its second dimension.
const BOUNDS: &str = "climatology_bounds";
const BOUNDS_DIM: &str = "nv";

/// CF climatology bounds (CF 7.4) when grouping by parts of a time
/// coordinate: for each group, the first and the last time of the input
/// steps in it, `[groups..., nv]`. `None` for other groupings, when the
/// input has an `nv` dimension, or when some group has no step (its
/// bounds would be NaT, which xarray cannot decode in cftime calendars).
fn climatology_bounds(
    options: &Options,
    t: &Template,
    groups: &Groups,
    group_dims: &[String],
) -> Result<Option<Variable>, Error> {
    let times = options
        .groupby
        .iter()
        .all(|g| matches!(g, Grouper::Time(_)));
    let Some(first) = options.groupby.first() else {
        return Ok(None);
    };
    if !times || t.sizes().contains_key(BOUNDS_DIM) || groups.present().contains(&false) {
        return Ok(None);
    }
    let (ticks, unit, calendar) = t.coords()[first.coord()].data().datetime_ticks()?;
    let mut bounds = vec![[i64::MAX, i64::MIN]; groups.count()];
    for (&tick, g) in ticks.iter().zip(&groups.index) {
        if let (Some(g), true) = (g, tick != i64::MIN) {
            bounds[*g] = [bounds[*g][0].min(tick), bounds[*g][1].max(tick)];
        }
    }
    let flat: Vec<i64> = bounds.iter().flatten().copied().collect();
    let mut shape: Vec<usize> = groups.labels.iter().map(xbeam_stats::Labels::len).collect();
    shape.push(2);
    let data = ArrayD::from_shape_vec(IxDyn(&shape), flat)
        .map_err(|e| Error::Check(format!("climatology bounds: {e}")))?;
    let dims: Vec<String> = group_dims
        .iter()
        .cloned()
        .chain([BOUNDS_DIM.to_owned()])
        .collect();
    Ok(Some(Variable::new(
        dims,
        Array::datetime(data, unit, calendar),
    )?))
}

/// The output's coordinates: each group dimension's labels, the quantile
/// levels, the input's coordinates along kept dimensions only, and the
/// climatology bounds (whose `nv` dimension joins `sizes`).
fn output_coords(
    options: &Options,
    t: &Template,
    groups: &Groups,
    group_dims: &[String],
    sizes: &mut IndexMap<String, u64>,
    reduced: &[&str],
) -> Result<IndexMap<String, Variable>, Error> {
    let mut coords = IndexMap::new();
    for (d, l) in group_dims.iter().zip(&groups.labels) {
        coords.insert(d.clone(), Variable::new([d.clone()], l.to_array())?);
    }
    if !options.quantiles.is_empty() {
        let levels = Array::from_1d(options.quantiles.clone());
        coords.insert("quantile".into(), Variable::new(["quantile"], levels)?);
    }
    for (name, c) in t.coords() {
        // coordinates along a reduced dimension go (resampling names its
        // new dimension as the reduced one)
        let kept = c
            .dims()
            .iter()
            .all(|d| sizes.contains_key(d) && !reduced.contains(&d.as_str()));
        if kept && !coords.contains_key(name) {
            coords.insert(name.clone(), c.clone());
        }
    }
    if let Some(bounds) = climatology_bounds(options, t, groups, group_dims)? {
        sizes.insert(BOUNDS_DIM.into(), 2);
        if let Some(first) = group_dims.first().and_then(|d| coords.get_mut(d)) {
            first
                .attrs_mut()
                .insert("climatology".into(), Json::String(BOUNDS.into()));
        }
        coords.insert(BOUNDS.into(), bounds);
    }
    Ok(coords)
}

/// The output template and its chunks.
fn output_template(
    options: &Options,
    t: &Template,
    vars: &[VarPlan],
    groups: &Groups,
    group_dims: &[String],
    step: &IndexMap<String, u64>,
    fold: Option<&str>,
) -> Result<(Template, IndexMap<String, ChunkSpec>), Error> {
    let mut reduced: Vec<&str> = fold.into_iter().collect();
    for d in &options.over {
        if !reduced.contains(&d.as_str()) {
            reduced.push(d);
        }
    }
    let mut sizes: IndexMap<String, u64> = IndexMap::new();
    for (d, l) in group_dims.iter().zip(&groups.labels) {
        sizes.insert(d.clone(), l.len() as u64);
    }
    if !options.quantiles.is_empty() {
        sizes.insert("quantile".into(), options.quantiles.len() as u64);
    }
    for (d, &n) in t.sizes() {
        if !reduced.contains(&d.as_str()) {
            ensure_usage!(
                !sizes.contains_key(d),
                "the group dimension {d:?} is also a dimension of {}",
                options.src.display()
            );
            sizes.insert(d.clone(), n);
        }
    }
    let coords = output_coords(options, t, groups, group_dims, &mut sizes, &reduced)?;
    let weighted = !options.weights.is_empty() || options.window.is_some();
    // absent groups are NaN, so integer results become float64 (as xarray)
    let absent =
        !group_dims.is_empty() && (options.window.is_some() || groups.present().contains(&false));
    let methods = reduced.join(": ");
    let by = match (group_dims.is_empty(), options.window) {
        (true, _) => String::new(),
        (false, None) => format!(" (grouped by {})", group_dims.join(", ")),
        (false, Some(w)) => format!(
            " (grouped by {}, over years and a {w}-day triangular window on dayofyear)",
            group_dims.join(", ")
        ),
    };
    let mut data_vars = IndexMap::new();
    for v in vars {
        let src = &t.data_vars()[&v.name];
        let dims: Vec<String> = group_dims
            .iter()
            .cloned()
            .chain(v.kept.iter().map(|&a| v.dims[a].clone()))
            .collect();
        for &stat in &options.stats {
            let mut attrs = plain_attrs(&src.attrs);
            if let (Some(m), false) = (stat.cell_method(), reduced.is_empty()) {
                let before = attrs
                    .get("cell_methods")
                    .and_then(Json::as_str)
                    .unwrap_or("");
                let sep = if before.is_empty() { "" } else { " " };
                let text = format!("{before}{sep}{methods}: {m}{by}");
                attrs.insert("cell_methods".into(), Json::String(text));
            }
            let schema = VarSchema {
                dims: dims.clone(),
                dtype: match stat.output_dtype(v.dtype, weighted) {
                    DType::F32 | DType::F64 => stat.output_dtype(v.dtype, weighted),
                    _ if absent => DType::F64,
                    other => other,
                },
                attrs,
                encoding: Attrs::new(),
            };
            let n = outputs(&options.stats, &options.quantiles);
            data_vars.insert(out_name(&v.name, stat.name(), n), schema);
        }
        if !options.quantiles.is_empty() {
            let n = outputs(&options.stats, &options.quantiles);
            let schema = quantile_schema(options, v, group_dims, &src.attrs);
            data_vars.insert(out_name(&v.name, "quantile", n), schema);
        }
    }
    let itemsize = 8u64;
    let block_bytes: u64 = sizes
        .iter()
        .filter(|(d, _)| !group_dims.contains(d) && *d != BOUNDS_DIM)
        .map(|(d, &n)| step.get(d).copied().unwrap_or(n).min(n))
        .product::<u64>()
        * itemsize;
    let mut chunks: IndexMap<String, ChunkSpec> = IndexMap::new();
    for (d, c) in group_dims.iter().zip(group_chunks(groups, block_bytes)) {
        chunks.insert(d.clone(), ChunkSpec::Size(c));
    }
    for (d, &n) in &sizes {
        if !group_dims.contains(d) {
            let c = step.get(d).copied().unwrap_or(n);
            chunks.insert(d.clone(), ChunkSpec::Size(c.min(n).max(1)));
        }
    }
    let template = Template::new(sizes, data_vars, coords, t.attrs().clone())?;
    Ok((template, chunks))
}

/// Whether a variable's quantiles have a `quantile` dimension, and their
/// dtype, as xarray gives them: grouped, a float variable keeps its dtype
/// and one without the grouped dimension is repeated unchanged, with no
/// `quantile` dimension; otherwise float64 over `quantile`.
fn quantile_form(options: &Options, v: &VarPlan) -> (bool, DType) {
    let grouped = !options.groupby.is_empty();
    let dtype = if grouped && v.dtype.is_float() {
        v.dtype
    } else {
        DType::F64
    };
    (!grouped || v.fold.is_some(), dtype)
}

/// The schema of a variable's quantiles.
fn quantile_schema(
    options: &Options,
    v: &VarPlan,
    group_dims: &[String],
    attrs: &Attrs,
) -> VarSchema {
    let mut dims = group_dims.to_vec();
    let (levels, dtype) = quantile_form(options, v);
    if levels {
        dims.push("quantile".into());
    }
    dims.extend(v.kept.iter().map(|&a| v.dims[a].clone()));
    VarSchema {
        dims,
        dtype,
        attrs: plain_attrs(attrs),
        encoding: Attrs::new(),
    }
}

/// A variable's attributes without its CF encoding keys (statistics of
/// packed or masked values are plain floats).
pub(super) fn plain_attrs(attrs: &Attrs) -> Attrs {
    const ENCODING: [&str; 6] = [
        "_FillValue",
        "missing_value",
        "scale_factor",
        "add_offset",
        "_Unsigned",
        "dtype",
    ];
    attrs
        .iter()
        .filter(|(k, _)| !ENCODING.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Bytes a sequence holds at its peak: its fold, the partial made from
/// it, one result, and one source chunk.
fn sequence_bytes(
    plan_groups: usize,
    v: &VarPlan,
    seq: &Sequence,
    sizes: &IndexMap<String, u64>,
    step: &IndexMap<String, u64>,
    (need, weighted, (steps, levels, sketch)): (Need, bool, (u64, u64, bool)),
) -> u64 {
    let kept: u64 = seq.block.iter().map(|r| r.end - r.start).product();
    let reduced: u64 = v.reduced.iter().map(|&a| sizes[&v.dims[a]]).product();
    let elems = plan_groups as u64 * kept * reduced;
    let chunk: u64 = v
        .dims
        .iter()
        .map(|d| step[d].min(sizes[d]))
        .product::<u64>()
        * 8;
    // at its peak a sequence holds its fold and the counts made from it,
    // or its partial, one finalized statistic and its output copy
    let per = (need.fold_bytes() + 8).max(need.partial_bytes() + 16) + 8 * usize::from(weighted);
    // exact quantiles keep every value (f64), and make a result per level
    let steps = if v.fold.is_some() {
        steps
    } else {
        steps.min(1)
    };
    let results = plan_groups as u64 * levels * kept * 2 * 8;
    let quantiles = if sketch {
        // a sketch per group and element (none without levels)
        (levels.min(1) * plan_groups as u64 * kept * reduced) * xbeam_stats::SKETCH_BYTES as u64
            + results
    } else {
        kept * reduced * steps * 8 + results
    };
    elems * per as u64 + chunk + quantiles
}

/// Output chunk sizes per dimension.
type OutputChunks = IndexMap<String, ChunkSpec>;

/// The sequences, output chunks and workers that fit the budget, and the
/// stripes (dimension and length) sequences were cut into, if any.
type Fitted = (Vec<Sequence>, OutputChunks, usize, Option<(String, u64)>);

/// Cuts sequences into stripes when a worker's share of the budget cannot
/// hold one, refuses a budget too small even then, and says how many
/// workers fit.
fn fit_budget(
    options: &Options,
    workers: usize,
    (t, vars, step, need, groups): (&Template, &[VarPlan], &IndexMap<String, u64>, Need, &Groups),
    mut sequences: Vec<Sequence>,
    mut chunks: OutputChunks,
) -> Result<Fitted, Error> {
    let ngroups = groups.count().max(1);
    let quantiles = if options.quantiles.is_empty() {
        (0, 0, false)
    } else {
        let steps = groups.index.iter().flatten().count().max(1) as u64;
        (
            steps,
            options.quantiles.len() as u64,
            options.sketch.is_some(),
        )
    };
    let headroom = options.max_mem / 8;
    let per_worker = (options.max_mem - headroom) / workers.max(1) as u64;
    let bytes_of = |seqs: &[Sequence]| {
        seqs.iter()
            .map(|s| {
                sequence_bytes(
                    ngroups,
                    &vars[s.var],
                    s,
                    t.sizes(),
                    step,
                    (need, !options.weights.is_empty(), quantiles),
                )
            })
            .max()
            .unwrap_or(0)
    };
    let mut cut = None;
    if bytes_of(&sequences) > per_worker {
        if let Some((dim, stripe)) =
            stripes(&sequences, vars, step, bytes_of(&sequences), per_worker)
        {
            sequences = split(sequences, vars, &dim, stripe);
            chunks.insert(dim.clone(), ChunkSpec::Size(stripe));
            cut = Some((dim, stripe));
        }
    }
    let largest = bytes_of(&sequences);
    ensure_usage!(
        largest + headroom <= options.max_mem,
        "the largest variable block needs {} of accumulators, which with an eighth of the budget \
         kept for reading is more than --max-mem {} allows: give --max-mem {} or more, or chunk \
         the kept dimensions more finely{}",
        to_human_size(largest),
        to_human_size(options.max_mem),
        to_human_size_up(largest + largest / 7 + 1),
        if options.quantiles.is_empty() || options.sketch.is_some() {
            ""
        } else {
            " (or take the quantiles from sketches: --sketch)"
        }
    );
    let fit = ((options.max_mem - headroom) / largest.max(1)).max(1) as usize;
    let workers = workers.min(fit).min(sequences.len()).max(1);
    Ok((sequences, chunks, workers, cut))
}

/// Each step's slot among the steps of its group, and the steps per group.
fn slots_of(groups: &Groups) -> (Vec<usize>, Vec<usize>) {
    let mut count = vec![0usize; groups.count().max(1)];
    let slot = groups
        .index
        .iter()
        .map(|g| {
            g.map_or(0, |g| {
                count[g] += 1;
                count[g] - 1
            })
        })
        .collect();
    (slot, count)
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
    let (vars, skipped) = plan_vars(&t, fold.as_deref(), &options.over);
    ensure_usage!(
        !vars.is_empty(),
        "{} has no numeric data variable to reduce",
        options.src.display()
    );
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
    let (sequences, mut chunks, workers, stripes) = fit_budget(
        options,
        runner.workers(),
        (&t, &vars, &step, need, &groups),
        sequences,
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
    let count = sequences.len() as u64;
    let present = if options.groupby.is_empty() {
        Vec::new()
    } else if window.is_some() {
        // smoothed days without data are NaN by their zero weights
        vec![true; groups.count()]
    } else {
        groups.present()
    };
    let (slot, slots) = slots_of(&groups);
    let plan = Arc::new(Plan {
        source,
        sink,
        vars,
        sequences,
        present,
        dup,
        window,
        quantiles: options.quantiles.clone(),
        sketch: options.sketch,
        slot,
        slots,
        skipna: options.skipna,
        groups,
        group_dims,
        step,
        weights,
        stats: options.stats.clone(),
        need,
        ddof: options.ddof,
    });
    let p = Pipeline::new();
    let done = p
        .source("fold", count, move |i| plan.run_sequence(i as usize))
        .collect("out");
    p.run(&runner)?;
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

/// What quantiles are taken from: every value, or sketches.
enum Kept {
    Exact(Values),
    Sketch(Sketches),
}

impl Kept {
    fn add<T: xbeam_stats::Value>(
        &mut self,
        group: usize,
        slot: usize,
        origin: &[usize],
        values: &ArrayViewD<'_, T>,
    ) {
        match self {
            Kept::Exact(v) => v.add(group, slot, origin, values),
            Kept::Sketch(s) => s.add(group, origin, values),
        }
    }

    fn quantiles(&self, q: &[f64], keep: &[usize], skipna: bool) -> ArrayD<f64> {
        match self {
            Kept::Exact(v) => v.quantiles(q, keep, skipna),
            Kept::Sketch(s) => s.quantiles(q, keep, skipna),
        }
    }
}

impl Plan {
    /// Folds sequence `i` and writes its results; returns bytes read,
    /// bytes written and chunks read.
    fn run_sequence(&self, i: usize) -> Result<(u64, u64, u64), Error> {
        let seq = &self.sequences[i];
        let v = &self.vars[seq.var];
        let sizes = self.source.template().sizes();
        // the fold's element shape: every axis but the fold axis
        let axes: Vec<usize> = (0..v.dims.len()).filter(|&a| Some(a) != v.fold).collect();
        let block_of = |a: usize| -> Range<u64> {
            match v.kept.iter().position(|&k| k == a) {
                Some(k) => seq.block[k].clone(),
                None => 0..sizes[&v.dims[a]],
            }
        };
        let shape: Vec<usize> = axes
            .iter()
            .map(|&a| {
                let r = block_of(a);
                (r.end - r.start) as usize
            })
            .collect();
        let ngroups = if v.fold.is_some() {
            self.groups.count().max(1)
        } else {
            1
        };
        let mut fold = Fold::new(self.need, ngroups, &shape);
        let mut values = match (self.quantiles.is_empty(), self.sketch) {
            (true, _) => None,
            (false, Some(alpha)) => Some(Kept::Sketch(
                Sketches::new(alpha, ngroups, &shape).map_err(|e| Error::Usage(e.to_string()))?,
            )),
            (false, None) => {
                let slots = if v.fold.is_some() {
                    self.slots.clone()
                } else {
                    vec![1]
                };
                Some(Kept::Exact(Values::new(&slots, &shape)))
            }
        };
        // chunk positions along the reduced axes and the fold axis, in order
        let walk: Vec<usize> = v.reduced.iter().copied().chain(v.fold).collect();
        let counts: Vec<u64> = walk
            .iter()
            .map(|&a| sizes[&v.dims[a]].div_ceil(self.step[&v.dims[a]]).max(1))
            .collect();
        let total: u64 = counts.iter().product();
        let (mut bytes_in, mut chunks) = (0u64, 0u64);
        let vars = [v.name.clone()].into_iter().collect();
        for mut flat in 0..total {
            let mut region: IndexMap<String, Range<u64>> = IndexMap::new();
            for (k, &a) in walk.iter().enumerate().rev() {
                let d = &v.dims[a];
                let i = flat % counts[k];
                flat /= counts[k];
                let s = self.step[d];
                region.insert(d.clone(), i * s..((i + 1) * s).min(sizes[d]));
            }
            for (k, &a) in v.kept.iter().enumerate() {
                region.insert(v.dims[a].clone(), seq.block[k].clone());
            }
            let ds = self
                .source
                .read(&region, Some(&vars))
                .map_err(Error::input(self.source.path()))?;
            let data = ds.data_var(&v.name)?.data();
            bytes_in += data.nbytes() as u64;
            chunks += 1;
            // where the chunk sits in the fold's elements
            let origin: Vec<usize> = axes
                .iter()
                .map(|&a| {
                    let d = &v.dims[a];
                    (region[d].start - block_of(a).start) as usize
                })
                .collect();
            let start = v.fold.map_or(0, |a| region[&v.dims[a]].start as usize);
            let into = (&mut fold, values.as_mut());
            dispatch!(primitive: data, a => self.fold_chunk(into, v.fold, start, &origin, &a.view()),
                _ => unreachable!("non-numeric variables are skipped"));
        }
        let bytes_out = self.write(v, seq, fold.into_partial(), values)?;
        Ok((bytes_in, bytes_out, chunks))
    }

    /// Folds every step of a chunk (one step when there is no fold axis).
    fn fold_chunk<T: xbeam_stats::Value>(
        &self,
        (fold, mut keep): (&mut Fold, Option<&mut Kept>),
        axis: Option<usize>,
        start: usize,
        origin: &[usize],
        values: &ArrayViewD<'_, T>,
    ) {
        match axis {
            None => {
                fold.add(0, origin, values);
                if let Some(k) = keep {
                    k.add(0, 0, origin, values);
                }
            }
            Some(a) => {
                for (t, step) in values.axis_iter(Axis(a)).enumerate() {
                    if let Some(g) = self.groups.index[start + t] {
                        fold.add(g, origin, &step);
                        if let Some(k) = keep.as_deref_mut() {
                            k.add(g, self.slot[start + t], origin, &step);
                        }
                    }
                    if let Some(g) = self.dup.get(start + t).copied().flatten() {
                        fold.add(g, origin, &step);
                    }
                }
            }
        }
    }

    /// A finalized `[groups, kept...]` result (`[1, kept...]` for a
    /// variable without the grouped dimension: repeated for every group, as
    /// xarray's groupby does) in the output's `shape`, NaN in groups that
    /// no time step falls in (a year × month product has absent months).
    fn by_group(
        &self,
        v: &VarPlan,
        values: ArrayD<f64>,
        shape: &[usize],
    ) -> Result<ArrayD<f64>, Error> {
        let bad = |e: xbeam_chunk::ndarray::ShapeError| Error::Check(format!("result shape: {e}"));
        let ngroups = self.present.len();
        if ngroups == 0 {
            return values.into_shape_with_order(IxDyn(shape)).map_err(bad);
        }
        let mut values = if v.fold.is_none() {
            let mut whole = vec![ngroups];
            whole.extend_from_slice(&values.shape()[1..]);
            values
                .broadcast(IxDyn(&whole))
                .ok_or_else(|| Error::Check("cannot repeat a result over the groups".into()))?
                .to_owned()
        } else {
            values
        };
        for (g, &here) in self.present.iter().enumerate() {
            if !here {
                values.index_axis_mut(Axis(0), g).fill(f64::NAN);
            }
        }
        values.into_shape_with_order(IxDyn(shape)).map_err(bad)
    }

    /// Merges the reduced axes, finalizes every statistic and writes them.
    fn write(
        &self,
        v: &VarPlan,
        seq: &Sequence,
        partial: Partial,
        values: Option<Kept>,
    ) -> Result<u64, Error> {
        // partial axes: [group, every var axis but the fold axis]
        let axes: Vec<usize> = (0..v.dims.len()).filter(|&a| Some(a) != v.fold).collect();
        let mut partial = partial;
        if let (Some(w), Some(_)) = (&self.window, v.fold) {
            partial = partial
                .window(w.outer, &w.days, w.period, w.width)
                .map_err(|e| Error::Check(e.to_string()))?;
        }
        for &a in v.reduced.iter().rev() {
            let at = 1 + axes.iter().position(|&x| x == a).expect("reduced axis");
            let w = self.weights.get(&v.dims[a]).map(Vec::as_slice);
            partial = partial
                .reduce_axis(at, w)
                .map_err(|e| Error::Check(e.to_string()))?;
        }
        let groups: Vec<usize> = self
            .groups
            .labels
            .iter()
            .map(xbeam_stats::Labels::len)
            .collect();
        let mut shape: Vec<usize> = groups.clone();
        shape.extend(seq.block.iter().map(|r| (r.end - r.start) as usize));
        let mut out = Dataset::new();
        let t = self.sink.template();
        for &stat in &self.stats {
            let values = self.by_group(v, partial.finalize(stat, self.ddof), &shape)?;
            let name = out_name(&v.name, stat.name(), outputs(&self.stats, &self.quantiles));
            let schema = &t.data_vars()[&name];
            let data = Array::from(values).astype(schema.dtype)?;
            out = out.with_data_var(name, Variable::new(schema.dims.clone(), data)?)?;
        }
        if let Some(values) = values {
            // the kept axes among the fold's element axes
            let keep: Vec<usize> = v
                .kept
                .iter()
                .map(|k| axes.iter().position(|a| a == k).expect("kept axis"))
                .collect();
            let mut q = values.quantiles(&self.quantiles, &keep, self.skipna);
            let name = out_name(&v.name, "quantile", outputs(&self.stats, &self.quantiles));
            let schema = &t.data_vars()[&name];
            let mut qshape = groups.clone();
            if schema.dims.iter().any(|d| d == "quantile") {
                qshape.push(self.quantiles.len());
            } else {
                // repeated unchanged over the groups (any level will do)
                q = q.index_axis_move(Axis(1), 0);
            }
            qshape.extend(seq.block.iter().map(|r| (r.end - r.start) as usize));
            let data = Array::from(self.by_group(v, q, &qshape)?).astype(schema.dtype)?;
            out = out.with_data_var(name, Variable::new(schema.dims.clone(), data)?)?;
        }
        let mut key = Key::new();
        for d in &self.group_dims {
            key = key.with_offset(d, 0);
        }
        if out.sizes().contains_key("quantile") {
            key = key.with_offset("quantile", 0);
        }
        for (k, &a) in v.kept.iter().enumerate() {
            key = key.with_offset(&v.dims[a], seq.block[k].start);
        }
        let bytes = out.nbytes() as u64;
        self.sink
            .write_chunk(&key, &out)
            .map_err(Error::output(self.sink.path()))?;
        Ok(bytes)
    }
}
