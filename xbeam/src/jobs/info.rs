//! `xbeam info`: what a Zarr store holds, optionally with statistics of
//! every data variable, read chunk by chunk on the engine.
//!
//! ```
//! use xbeam::jobs::{generate, info};
//! use xbeam::runner::Runner;
//!
//! let dir = tempfile::tempdir()?;
//! let out = dir.path().join("era5.zarr");
//! let runner = Runner::local_with_workers(2).quiet();
//! generate::run(&generate::Options { ntime: Some(24), nlat: 5, nlon: 8, ..generate::Options::new(&out) }, &runner)?;
//! let (store, summary) = info::run(&info::Options { path: out, stats: true }, &runner)?;
//! assert_eq!(store.dims["time"], 24);
//! assert_eq!(store.data_vars["temperature"].stats.unwrap().count, 24 * 5 * 8);
//! assert_eq!(summary.bytes_in, 2 * 24 * 5 * 8 * 4);
//! # Ok::<(), xbeam::error::Error>(())
//! ```

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use xbeam_chunk::{Array, ArrayData, Attrs, DType, Variable};
use xbeam_io::{open_zarr, ZarrSource};
use xbeam_runner::{ByteSize, CombineFn, Pipeline, Runner};

use super::Summary;
use crate::error::Error;

/// What to describe.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Zarr store.
    pub path: PathBuf,
    /// Read every data variable and compute [`Stats`].
    pub stats: bool,
}

/// Statistics of one variable's decoded values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Valid (not NaN / NaT) values.
    pub count: u64,
    /// NaN or NaT values.
    pub nan_count: u64,
    /// The smallest valid value.
    pub min: f64,
    /// The largest valid value.
    pub max: f64,
    /// Sum of valid values (f64).
    pub sum: f64,
}

impl ByteSize for Stats {
    fn byte_size(&self) -> usize {
        std::mem::size_of::<Stats>()
    }
}

impl Stats {
    fn empty() -> Stats {
        Stats {
            count: 0,
            nan_count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
        }
    }

    fn merge(self, o: Stats) -> Stats {
        Stats {
            count: self.count + o.count,
            nan_count: self.nan_count + o.nan_count,
            min: self.min.min(o.min),
            max: self.max.max(o.max),
            sum: self.sum + o.sum,
        }
    }

    /// The mean of valid values (NaN if there are none).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.sum / self.count as f64
        }
    }

    fn add(&mut self, x: f64, valid: bool) {
        if valid {
            self.count += 1;
            self.min = self.min.min(x);
            self.max = self.max.max(x);
            self.sum += x;
        } else {
            self.nan_count += 1;
        }
    }

    fn of(a: &Array) -> Stats {
        let mut s = Stats::empty();
        match a {
            Array::F32(v) => match v.as_slice_memory_order() {
                Some(xs) => s = floats(xs, f64::from),
                None => v.iter().for_each(|&x| s.add(f64::from(x), !x.is_nan())),
            },
            Array::F64(v) => match v.as_slice_memory_order() {
                Some(xs) => s = floats(xs, |x| x),
                None => v.iter().for_each(|&x| s.add(x, !x.is_nan())),
            },
            Array::DateTime(v, ..) | Array::TimeDelta(v, _) => {
                each(v, |x| s.add(x as f64, x != i64::MIN));
            }
            Array::String(v) => s.count = v.len() as u64,
            other => {
                if let Ok(v) = other.to_f64() {
                    v.iter().for_each(|&x| s.add(x, true));
                }
            }
        }
        s
    }
}

/// Statistics of floats, NaN skipped, in 8 independent lanes (a single
/// running sum is bound by the latency of one addition per element).
fn floats<T: Copy>(xs: &[T], to_f64: impl Fn(T) -> f64) -> Stats {
    const LANES: usize = 8;
    let mut sum = [0f64; LANES];
    let mut count = [0u64; LANES];
    let mut min = [f64::INFINITY; LANES];
    let mut max = [f64::NEG_INFINITY; LANES];
    let mut lane = |i: usize, x: f64| {
        let valid = !x.is_nan();
        sum[i] += if valid { x } else { 0.0 };
        count[i] += u64::from(valid);
        // `f64::min`/`max` ignore a NaN argument
        min[i] = min[i].min(x);
        max[i] = max[i].max(x);
    };
    let blocks = xs.chunks_exact(LANES);
    let rest = blocks.remainder();
    for block in blocks {
        for (i, &x) in block.iter().enumerate() {
            lane(i, to_f64(x));
        }
    }
    for (i, &x) in rest.iter().enumerate() {
        lane(i, to_f64(x));
    }
    let count: u64 = count.iter().sum();
    Stats {
        count,
        nan_count: xs.len() as u64 - count,
        min: min.into_iter().fold(f64::INFINITY, f64::min),
        max: max.into_iter().fold(f64::NEG_INFINITY, f64::max),
        sum: sum.iter().sum(),
    }
}

/// Calls `f` with every element, in memory order: a plain slice loop when
/// the array is contiguous (dynamic-rank iterators are several times
/// slower).
fn each<T: Copy>(a: &ArrayData<T>, mut f: impl FnMut(T)) {
    match a.as_slice_memory_order() {
        Some(s) => s.iter().for_each(|&x| f(x)),
        None => a.iter().for_each(|&x| f(x)),
    }
}

/// One variable of a store, for display.
#[derive(Debug, Clone)]
pub struct VarInfo {
    /// Dimension names.
    pub dims: Vec<String>,
    /// Decoded dtype.
    pub dtype: DType,
    /// Zarr chunk shape.
    pub chunks: Option<Vec<u64>>,
    /// Attributes (decoded).
    pub attrs: Attrs,
    /// Statistics, when asked for.
    pub stats: Option<Stats>,
    /// The variable's values (coordinates only).
    pub values: Option<Array>,
}

/// What `xbeam info` reports about a store.
#[derive(Debug, Clone)]
pub struct StoreInfo {
    /// The store's path.
    pub path: String,
    /// 2 or 3.
    pub format: u8,
    /// Dimension sizes.
    pub dims: IndexMap<String, u64>,
    /// Global attributes.
    pub attrs: Attrs,
    /// Coordinates.
    pub coords: IndexMap<String, VarInfo>,
    /// Data variables.
    pub data_vars: IndexMap<String, VarInfo>,
    /// Uncompressed bytes of all variables.
    pub nbytes: u64,
    /// What the store's xbeam content manifest says (whether the job that
    /// wrote it finished), if it has one.
    pub manifest: Option<xbeam_io::ManifestStatus>,
}

fn encoding_chunks(encoding: &Attrs) -> Option<Vec<u64>> {
    encoding
        .get("chunks")?
        .as_array()?
        .iter()
        .map(Value::as_u64)
        .collect()
}

/// The native chunk grid of every data variable: element `i` of the
/// engine's source is one chunk of one variable.
struct ChunkPlan {
    vars: Vec<VarGrid>,
    count: u64,
}

/// One variable's native chunks.
struct VarGrid {
    name: String,
    dims: Vec<String>,
    /// Chunk size per dimension.
    step: Vec<u64>,
    /// Chunks per dimension.
    per_dim: Vec<u64>,
    /// The element index of its first chunk.
    first: u64,
}

impl ChunkPlan {
    fn new(source: &ZarrSource) -> ChunkPlan {
        let sizes = source.template().sizes();
        let mut vars = Vec::new();
        let mut count = 0;
        for (name, v) in source.template().data_vars() {
            let step: Vec<u64> = v
                .dims
                .iter()
                .map(|d| source.chunks().get(d).copied().unwrap_or(sizes[d]).max(1))
                .collect();
            let per_dim: Vec<u64> = v
                .dims
                .iter()
                .zip(&step)
                .map(|(d, s)| sizes[d].div_ceil(*s))
                .collect();
            let n: u64 = per_dim.iter().product();
            vars.push(VarGrid {
                name: name.clone(),
                dims: v.dims.clone(),
                step,
                per_dim,
                first: count,
            });
            count += n;
        }
        ChunkPlan { vars, count }
    }

    /// Variable number and region of element `i`.
    fn region(
        &self,
        sizes: &IndexMap<String, u64>,
        i: u64,
    ) -> (usize, IndexMap<String, Range<u64>>) {
        let v = self.vars.partition_point(|x| x.first <= i) - 1;
        let VarGrid {
            dims,
            step,
            per_dim,
            first,
            ..
        } = &self.vars[v];
        let mut flat = i - first;
        let mut region = IndexMap::new();
        for k in (0..dims.len()).rev() {
            let idx = flat % per_dim[k];
            flat /= per_dim[k];
            let start = idx * step[k];
            region.insert(
                dims[k].clone(),
                start..(start + step[k]).min(sizes[&dims[k]]),
            );
        }
        (v, region)
    }
}

/// Merges per-chunk statistics in chunk order, so sums (and means) are the
/// same whatever the number of workers.
struct OrderedStats {
    nvars: usize,
}

impl CombineFn<(u64, u64, Stats)> for OrderedStats {
    type Acc = Vec<(u64, u64, Stats)>;
    type Out = Vec<Stats>;

    fn create(&self) -> Self::Acc {
        Vec::new()
    }

    fn add(&self, mut acc: Self::Acc, value: (u64, u64, Stats)) -> Self::Acc {
        acc.push(value);
        acc
    }

    fn merge(&self, mut a: Self::Acc, b: Self::Acc) -> Self::Acc {
        a.extend(b);
        a
    }

    fn extract(&self, mut acc: Self::Acc) -> Self::Out {
        acc.sort_by_key(|x| x.0);
        let mut out = vec![Stats::empty(); self.nvars];
        for (_, v, s) in acc {
            out[v as usize] = out[v as usize].merge(s);
        }
        out
    }
}

/// Statistics of every data variable, in template order.
fn data_stats(source: &Arc<ZarrSource>, runner: &Runner) -> Result<(Vec<Stats>, u64), Error> {
    let plan = Arc::new(ChunkPlan::new(source));
    let nvars = plan.vars.len();
    let count = plan.count;
    let src = Arc::clone(source);
    let p = Pipeline::new();
    let stats = p
        .source("read", count, move |i| {
            let (v, region) = plan.region(src.template().sizes(), i);
            let name = &plan.vars[v].name;
            let vars = [name.clone()].into_iter().collect();
            let ds = src
                .read(&region, Some(&vars))
                .map_err(Error::input(src.path()))?;
            Ok::<_, Error>((i, v as u64, Stats::of(ds.data_var(name)?.data())))
        })
        .combine_globally("stats", OrderedStats { nvars })
        .collect("out");
    p.run(runner)?;
    let out = stats
        .take()?
        .pop()
        .unwrap_or_else(|| vec![Stats::empty(); nvars]);
    Ok((out, count))
}

/// Opens the store and describes it; with `options.stats`, reads every
/// data variable on the engine, one native chunk per element.
pub fn run(options: &Options, runner: &Runner) -> Result<(StoreInfo, Summary), Error> {
    let started = Instant::now();
    let path = &options.path;
    let source = Arc::new(open_zarr(path).map_err(Error::input(path))?);
    let t = source.template();
    let coords: IndexMap<String, VarInfo> = t
        .coords()
        .iter()
        .map(|(name, c)| (name.clone(), coord_info(c, options.stats)))
        .collect();
    let data_bytes: u64 = t.data_nbytes();
    let nbytes = data_bytes + t.coords().values().map(|c| c.nbytes() as u64).sum::<u64>();
    let (stats, chunks) = if options.stats {
        let (s, n) = data_stats(&source, runner)?;
        (Some(s), n)
    } else {
        (None, 0)
    };
    let data_vars = t
        .data_vars()
        .iter()
        .enumerate()
        .map(|(i, (name, v))| {
            let info = VarInfo {
                dims: v.dims.clone(),
                dtype: v.dtype,
                chunks: encoding_chunks(&v.encoding),
                attrs: v.attrs.clone(),
                stats: stats.as_ref().map(|s| s[i]),
                values: None,
            };
            (name.clone(), info)
        })
        .collect();
    let info = StoreInfo {
        path: path.display().to_string(),
        format: source.format().number(),
        dims: t.sizes().clone(),
        attrs: t.attrs().clone(),
        coords,
        data_vars,
        nbytes,
        manifest: xbeam_io::manifest_status(path).map_err(Error::input(path))?,
    };
    let bytes_in = if options.stats { data_bytes } else { 0 };
    Ok((info, Summary::finish(started, bytes_in, 0, chunks)))
}

fn coord_info(c: &Variable, stats: bool) -> VarInfo {
    VarInfo {
        dims: c.dims().to_vec(),
        dtype: c.dtype(),
        chunks: encoding_chunks(c.encoding()),
        attrs: c.attrs().clone(),
        stats: stats.then(|| Stats::of(c.data())),
        values: Some(c.data().clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_lanes_skip_nan_and_agree_with_one_running_sum() {
        let xs: Vec<f32> = (0..1003)
            .map(|i| {
                if i % 7 == 0 {
                    f32::NAN
                } else {
                    (i as f32).sin() * 100.0
                }
            })
            .collect();
        let fast = floats(&xs, f64::from);
        let mut slow = Stats::empty();
        for &x in &xs {
            slow.add(f64::from(x), !x.is_nan());
        }
        assert_eq!((fast.count, fast.nan_count), (slow.count, slow.nan_count));
        assert_eq!((fast.min, fast.max), (slow.min, slow.max));
        assert!((fast.sum - slow.sum).abs() < 1e-9 * slow.sum.abs().max(1.0));
        assert_eq!(fast.nan_count, 144);
        let empty = floats::<f64>(&[f64::NAN], |x| x);
        assert_eq!((empty.count, empty.nan_count), (0, 1));
        assert!(empty.mean().is_nan());
    }
}
