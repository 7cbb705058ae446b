//! `xbeam rolling`: moving-window statistics along one dimension, as
//! xarray's `ds.rolling(time=24, center=False).mean()`, over a store as it
//! is chunked: each output chunk reads its input chunk plus a halo of the
//! neighbouring steps the windows reach, so no rechunk is needed.
//!
//! Windows end at their label (or, with `center`, hold `window / 2` steps
//! before it and the rest after, as xarray); a window with fewer than
//! `min_periods` valid values (default: the whole window) is NaN, so the
//! first `window - 1` steps are NaN, as in xarray. Each window is summed
//! on its own, in index order, so results are bit-identical whatever the
//! chunking and the number of workers.
//!
//! ```
//! use xbeam::jobs::{generate, rolling};
//! use xbeam::runner::Runner;
//! use xbeam::stats::Stat;
//!
//! let dir = tempfile::tempdir()?;
//! let (src, dst) = (dir.path().join("era5.zarr"), dir.path().join("daily.zarr"));
//! let runner = Runner::local_with_workers(2).quiet();
//! generate::run(&generate::Options { ntime: Some(72), nlat: 3, nlon: 4, ..generate::Options::new(&src) }, &runner)?;
//! let options = rolling::Options { window: 24, stats: vec![Stat::Mean], ..rolling::Options::new(&src, &dst, "time") };
//! rolling::run(&options, &runner)?;
//! let out = xbeam::io::open_zarr(&dst)?.read(&Default::default(), None)?;
//! let t = out.data_var("temperature")?.data().to_f64()?;
//! assert!(t[[22, 0, 0]].is_nan() && !t[[23, 0, 0]].is_nan());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indexmap::IndexMap;
use serde_json::Value as Json;
use xbeam_chunk::ndarray::{ArrayD, ArrayView1, ArrayViewMut1, Axis, Zip};
use xbeam_chunk::{Array, Attrs, DType, Dataset, Template, VarSchema, Variable};
use xbeam_io::{open_zarr, setup_zarr, sync_store, SetupOptions, ZarrFormat, ZarrSink, ZarrSource};
use xbeam_key::{ChunkSpec, Key};
use xbeam_runner::{Pipeline, Runner};
use xbeam_stats::Stat;

use super::reduce::{numeric, out_name, plain_attrs, steps};
use super::{output, Summary};
use crate::error::{ensure_usage, Error};

/// What to compute.
#[derive(Debug, Clone)]
pub struct Options {
    /// The input store.
    pub src: PathBuf,
    /// The output store.
    pub dst: PathBuf,
    /// The dimension the windows move along.
    pub dim: String,
    /// Steps per window.
    pub window: u64,
    /// Centre each window on its label instead of ending it there.
    pub center: bool,
    /// Fewest valid values a window needs (default: the window).
    pub min_periods: Option<u64>,
    /// Mean, sum, std, var, min or max; with several, each variable is
    /// written as `<var>_<stat>`.
    pub stats: Vec<Stat>,
    /// Delta degrees of freedom of var and std (0, as xarray).
    pub ddof: u64,
    /// Output Zarr format (default: the input's).
    pub format: Option<ZarrFormat>,
    /// What to do with an existing output, and the free-space check.
    pub write: output::WriteMode,
}

impl Options {
    /// A rolling mean of 3 steps along `dim` of `src` into `dst`.
    pub fn new(src: impl AsRef<Path>, dst: impl AsRef<Path>, dim: &str) -> Options {
        Options {
            src: src.as_ref().to_path_buf(),
            dst: dst.as_ref().to_path_buf(),
            dim: dim.to_owned(),
            window: 3,
            center: false,
            min_periods: None,
            stats: vec![Stat::Mean],
            ddof: 0,
            format: None,
            write: output::WriteMode::default(),
        }
    }

    /// Steps before and after a label that its window holds.
    fn reach(&self) -> (u64, u64) {
        reach(self.window, self.center)
    }
}

/// One output chunk of one variable.
#[derive(Debug, Clone)]
struct Piece {
    var: String,
    region: IndexMap<String, Range<u64>>,
}

struct Plan {
    source: ZarrSource,
    sink: ZarrSink,
    pieces: Vec<Piece>,
    options: Options,
}

/// The dtype xarray gives a rolling statistic: floats keep theirs;
/// integers become float (min and max as xarray's `maybe_promote`:
/// float32 for up to 16 bits), since edges are NaN.
pub(crate) fn rolling_dtype(stat: Stat, input: DType) -> DType {
    match input {
        DType::F32 | DType::F64 => input,
        _ if matches!(stat, Stat::Min | Stat::Max) && input.itemsize() <= 2 => DType::F32,
        _ => DType::F64,
    }
}

fn check(options: &Options, t: &Template) -> Result<u64, Error> {
    let n = *t.sizes().get(&options.dim).ok_or_else(|| {
        Error::Usage(format!(
            "dimension {:?} is not in {}: expected one of {}",
            options.dim,
            options.src.display(),
            crate::key::repr::tuple(t.sizes().keys())
        ))
    })?;
    ensure_usage!(
        options.window >= 1 && options.window <= n,
        "--window must be from 1 to the length of {:?} ({n}): found {}",
        options.dim,
        options.window
    );
    if let Some(m) = options.min_periods {
        ensure_usage!(
            m >= 1 && m <= options.window,
            "--min-periods must be from 1 to the window ({}): found {m}",
            options.window
        );
    }
    ensure_usage!(
        !options.stats.is_empty(),
        "no statistic asked for: give --stat"
    );
    for (i, s) in options.stats.iter().enumerate() {
        ensure_usage!(
            *s != Stat::Count,
            "rolling windows give mean, sum, std, var, min and max, not count"
        );
        ensure_usage!(
            !options.stats[..i].contains(s),
            "statistic {s} is named twice"
        );
    }
    Ok(n)
}

/// The output template (numeric variables, each statistic) and the
/// numeric variables; others are named as left out.
fn template(options: &Options, t: &Template) -> Result<(Template, Vec<(String, DType)>), Error> {
    let mut data_vars = IndexMap::new();
    let mut skipped = Vec::new();
    for (name, v) in t.data_vars() {
        if !numeric(v.dtype) {
            skipped.push((name.clone(), v.dtype));
            continue;
        }
        for &stat in &options.stats {
            let mut attrs = plain_attrs(&v.attrs);
            let moving = v.dims.contains(&options.dim);
            if let (Some(m), true) = (stat.cell_method(), moving) {
                let text = format!(
                    "{}: {m} (rolling window of {}{})",
                    options.dim,
                    options.window,
                    if options.center { ", centred" } else { "" }
                );
                attrs.insert("cell_methods".into(), Json::String(text));
            }
            let name = out_name(name, stat.name(), options.stats.len());
            let schema = VarSchema {
                dims: v.dims.clone(),
                // variables without the dimension are kept unchanged
                dtype: if moving {
                    rolling_dtype(stat, v.dtype)
                } else {
                    v.dtype
                },
                attrs,
                encoding: if moving {
                    Attrs::new()
                } else {
                    v.encoding.clone()
                },
            };
            data_vars.insert(name, schema);
        }
    }
    let out = Template::new(
        t.sizes().clone(),
        data_vars,
        t.coords().clone(),
        t.attrs().clone(),
    )?;
    Ok((out, skipped))
}

/// Every chunk of every numeric variable, in order.
fn pieces(t: &Template, step: &IndexMap<String, u64>) -> Vec<Piece> {
    let mut out = Vec::new();
    for (name, v) in t.data_vars() {
        if !numeric(v.dtype) {
            continue;
        }
        let counts: Vec<usize> = v
            .dims
            .iter()
            .map(|d| t.sizes()[d].div_ceil(step[d]).max(1) as usize)
            .collect();
        for flat in 0..counts.iter().product::<usize>() {
            let index = xbeam_key::unravel(flat, &counts);
            let region = v
                .dims
                .iter()
                .zip(index)
                .map(|(d, i)| {
                    let start = i as u64 * step[d];
                    (d.clone(), start..(start + step[d]).min(t.sizes()[d]))
                })
                .collect();
            out.push(Piece {
                var: name.clone(),
                region,
            });
        }
    }
    out
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Done {
    /// Bytes, chunks, time and memory.
    pub summary: Summary,
    /// Data variables left out because they are not numeric.
    pub skipped: Vec<(String, DType)>,
}

/// Computes the moving-window statistics of `options.src` into
/// `options.dst`; nothing is written when the options do not fit the store.
pub fn run(options: &Options, runner: &Runner) -> Result<Done, Error> {
    let started = Instant::now();
    let source = open_zarr(&options.src).map_err(Error::input(&options.src))?;
    let t = source.template().clone();
    check(options, &t)?;
    let (out, skipped) = template(options, &t)?;
    ensure_usage!(
        !out.data_vars().is_empty(),
        "{} has no numeric data variable",
        options.src.display()
    );
    let step = steps(&source);
    let pieces = pieces(&t, &step);
    output::prepare(
        &options.dst,
        Some(&options.src),
        options.write,
        out.data_nbytes(),
    )?;
    let setup = SetupOptions {
        chunks: step
            .iter()
            .map(|(d, &c)| (d.clone(), ChunkSpec::Size(c)))
            .collect(),
        shards: None,
        format: options.format.unwrap_or(source.format()),
        encoding: IndexMap::new(),
        resume: options.write.resume,
    };
    let sink = setup_zarr(&out, &options.dst, &setup).map_err(Error::output(&options.dst))?;
    let count = pieces.len() as u64;
    let plan = Arc::new(Plan {
        source,
        sink,
        pieces,
        options: options.clone(),
    });
    let p = Pipeline::new();
    let done = p
        .source("rolling", count, move |i| plan.run_piece(i as usize))
        .collect("out");
    p.run(runner)?;
    sync_store(&options.dst).map_err(Error::output(&options.dst))?;
    let done = done.take()?;
    let bytes_in: u64 = done.iter().map(|d| d.0).sum();
    let bytes_out: u64 = done.iter().map(|d| d.1).sum();
    Ok(Done {
        summary: Summary::finish(started, bytes_in, bytes_out, count),
        skipped,
    })
}

impl Plan {
    /// Reads a chunk and its halo, computes every statistic and writes the
    /// chunk; returns bytes read and written.
    fn run_piece(&self, i: usize) -> Result<(u64, u64), Error> {
        let piece = &self.pieces[i];
        let o = &self.options;
        let n = self.source.template().sizes()[&o.dim];
        let (before, after) = o.reach();
        let mut region = piece.region.clone();
        let axis = region.get_index_of(&o.dim);
        if let Some(r) = region.get_mut(&o.dim) {
            *r = r.start.saturating_sub(before)..(r.end + after).min(n);
        }
        let vars = [piece.var.clone()].into_iter().collect();
        let ds = self
            .source
            .read(&region, Some(&vars))
            .map_err(Error::input(self.source.path()))?;
        let input = ds.data_var(&piece.var)?;
        let t = self.sink.template();
        let mut out = Dataset::new();
        for &stat in &o.stats {
            let name = out_name(&piece.var, stat.name(), o.stats.len());
            let schema = &t.data_vars()[&name];
            let data = match axis {
                None => input.data().clone(),
                Some(a) => {
                    let offset = (piece.region[&o.dim].start - region[&o.dim].start) as usize;
                    let len = (piece.region[&o.dim].end - piece.region[&o.dim].start) as usize;
                    let values = input.data().to_f64()?;
                    Array::from(self.moving(stat, &values, a, offset, len)).astype(schema.dtype)?
                }
            };
            out = out.with_data_var(name, Variable::new(schema.dims.clone(), data)?)?;
        }
        let mut key = Key::new();
        for (d, r) in &piece.region {
            key = key.with_offset(d, r.start);
        }
        let bytes = out.nbytes() as u64;
        self.sink
            .write_chunk(&key, &out)
            .map_err(Error::output(self.sink.path()))?;
        Ok((input.data().nbytes() as u64, bytes))
    }

    /// The statistic of the windows at `len` positions from `offset` along
    /// `axis` of `values` (the chunk and its halo).
    fn moving(
        &self,
        stat: Stat,
        values: &ArrayD<f64>,
        axis: usize,
        offset: usize,
        len: usize,
    ) -> ArrayD<f64> {
        let o = &self.options;
        let window = Window {
            reach: o.reach(),
            need: o.min_periods.unwrap_or(o.window),
            ddof: o.ddof,
        };
        moving(stat, values, axis, (offset, len), window)
    }
}

/// Steps before and after a label that a window of `window` steps holds
/// (xarray's centring: a centred window of 4 holds `[i-2, i+1]`).
pub(crate) fn reach(window: u64, center: bool) -> (u64, u64) {
    if center {
        (window / 2, window - 1 - window / 2)
    } else {
        (window - 1, 0)
    }
}

/// A rolling window: the steps it reaches before and after its label, the
/// fewest valid values it needs, and var and std's ddof.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) reach: (u64, u64),
    pub(crate) need: u64,
    pub(crate) ddof: u64,
}

/// The statistic of the windows at `len` positions from `offset` along
/// `axis` of `values` (a chunk and its halo): NaN where a window holds
/// fewer than `need` valid values.
pub(crate) fn moving(
    stat: Stat,
    values: &ArrayD<f64>,
    axis: usize,
    (offset, len): (usize, usize),
    w: Window,
) -> ArrayD<f64> {
    let mut shape = values.shape().to_vec();
    shape[axis] = len;
    let mut out = ArrayD::from_elem(shape, f64::NAN);
    #[allow(clippy::cast_precision_loss)]
    let ctx = Lane {
        stat,
        offset,
        before: w.reach.0 as usize,
        after: w.reach.1 as usize,
        need: w.need as usize,
        ddof: w.ddof as f64,
    };
    Zip::from(out.lanes_mut(Axis(axis)))
        .and(values.lanes(Axis(axis)))
        .for_each(|out, x| ctx.run(x, out));
    out
}

/// One lane's windows.
struct Lane {
    stat: Stat,
    offset: usize,
    before: usize,
    after: usize,
    need: usize,
    ddof: f64,
}

impl Lane {
    /// Fills `out[j]` with the window at `x[offset + j]`: `before` steps
    /// back to `after` steps on, clipped to `x` (the chunk and all of its
    /// halo inside the array, so clipped steps are outside the array).
    fn run(&self, x: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
        let m = x.len();
        let window = |j: usize| {
            let at = self.offset + j;
            at.saturating_sub(self.before)..(at + self.after + 1).min(m)
        };
        match self.stat {
            Stat::Min | Stat::Max => {
                for (j, o) in out.iter_mut().enumerate() {
                    let w = window(j);
                    let window = x.slice_axis(Axis(0), w.into());
                    let valid = window.iter().copied().filter(|v| !v.is_nan());
                    let best = if self.stat == Stat::Min {
                        valid.clone().fold(f64::INFINITY, f64::min)
                    } else {
                        valid.clone().fold(f64::NEG_INFINITY, f64::max)
                    };
                    *o = if valid.count() >= self.need {
                        best
                    } else {
                        f64::NAN
                    };
                }
            }
            _ => self.moments(x, &mut out, window),
        }
    }

    /// Sums, means, variances of each window, summed in index order from
    /// the window's first step (shifted by its first valid value, so nothing
    /// is lost to cancellation): the arithmetic depends only on the window's
    /// values, so results are bit-identical whatever the chunking and the
    /// number of workers. Costs `O(window)` per value.
    fn moments(
        &self,
        x: ArrayView1<'_, f64>,
        out: &mut ArrayViewMut1<'_, f64>,
        window: impl Fn(usize) -> Range<usize>,
    ) {
        for (j, o) in out.iter_mut().enumerate() {
            let (mut n, mut s1, mut s2, mut shift) = (0usize, 0.0f64, 0.0f64, f64::NAN);
            for &v in &x.slice_axis(Axis(0), window(j).into()) {
                if v.is_nan() {
                    continue;
                }
                if n == 0 {
                    shift = v;
                }
                let d = v - shift;
                n += 1;
                s1 += d;
                s2 += d * d;
            }
            if n < self.need || n == 0 {
                continue;
            }
            let count = n as f64;
            *o = match self.stat {
                Stat::Sum => s1 + shift * count,
                Stat::Mean => shift + s1 / count,
                _ => {
                    let var = if count > self.ddof {
                        ((s2 - s1 * s1 / count) / (count - self.ddof)).max(0.0)
                    } else {
                        f64::NAN
                    };
                    if self.stat == Stat::Std {
                        var.sqrt()
                    } else {
                        var
                    }
                }
            };
        }
    }
}
