//! Reductions over named dimensions, per key or globally, with a partial
//! combine on every worker before the exchange: [`Mean`], [`Sum`],
//! [`Var`], [`Std`], [`Min`], [`Max`] and [`Count`], each a [`Reduce`] of
//! one [`Stat`].

use std::sync::Arc;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::elements::{
    check_dims, kept_coords, merge_accs, rows, same_shape, same_vars, without_offsets,
};
use super::Chunks;
use crate::chunk::ndarray::{ArrayD, IxDyn};
use crate::chunk::{Array, ChunkError, DType, Dataset, Variable};
use crate::key::Key;
use crate::runner::{ByteSize, CombineFn, Data, PCollection, Transform};
use crate::stats::{Need, Stat};

/// A statistic over `dims` (none: elementwise across chunks), skipping NaN
/// unless [`skipna(false)`](Reduce::skipna), accumulated in f64 (sums,
/// Chan's merge of means and squared deviations, min, max): the transform
/// behind [`Mean`], [`Sum`], [`Var`], [`Std`], [`Min`], [`Max`] and
/// [`Count`]. Results are float64, counts int64.
///
/// Chunks combine in the order the engine meets them, so the last bits of
/// a sum may differ between runs with different workers; the `climatology`
/// and `stats` jobs ([`crate::jobs::reduce`]) fold in a fixed order instead
/// and are bit-identical.
#[derive(Debug, Clone)]
pub struct Reduce {
    dims: Vec<String>,
    stat: Stat,
    skipna: bool,
    ddof: u64,
    fanout: u64,
}

impl Reduce {
    /// `stat` over `dims` of keyed chunks.
    pub fn new<S: Into<String>>(stat: Stat, dims: impl IntoIterator<Item = S>) -> Reduce {
        Reduce {
            dims: dims.into_iter().map(Into::into).collect(),
            stat,
            skipna: true,
            ddof: 0,
            fanout: 1,
        }
    }

    /// Whether NaN values are skipped (default true).
    pub fn skipna(mut self, skipna: bool) -> Reduce {
        self.skipna = skipna;
        self
    }

    /// Delta degrees of freedom of var and std (default 0, as xarray).
    pub fn ddof(mut self, ddof: u64) -> Reduce {
        self.ddof = ddof;
        self
    }

    /// Spreads each key's datasets over `n` intermediate keys, each
    /// combined on its own, before the last merge (Beam's
    /// `with_hot_key_fanout`): for a key with many large inputs, the merges
    /// are spread over the workers instead of landing on the one that owns
    /// the key. Default 1 (no fanout; every worker still combines its own
    /// inputs before the exchange).
    ///
    /// ```
    /// use xbeam::prelude::*;
    /// use xbeam::stats::Stat;
    /// use xbeam::transforms::Reduce;
    ///
    /// let p = Pipeline::new();
    /// let x = |v: f64| Dataset::new().with_data_var("x", Variable::new(["t"], Array::from_1d(vec![v, v + 1.0])).unwrap()).unwrap();
    /// let chunks = p.create("c", (0..8).map(|i| (Key::new().with_offset("t", 2 * i), x(i as f64))).collect());
    /// let out = chunks.apply("max", Reduce::new(Stat::Max, ["t"]).fanout(3)).collect("out");
    /// p.run(&Runner::local_with_workers(2).quiet())?;
    /// assert_eq!(out.take()?[0].1.data_var("x")?.data().to_f64()?[[]], 8.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fanout(mut self, n: u64) -> Reduce {
        self.fanout = n.max(1);
        self
    }

    /// This reduction over the datasets of each key.
    pub fn per_key(self) -> ReducePerKey {
        ReducePerKey(self)
    }

    /// This reduction over a whole collection of datasets.
    pub fn globally(self) -> ReduceGlobally {
        ReduceGlobally(self)
    }

    fn combine_fn(&self) -> ReduceFn {
        ReduceFn {
            dims: Arc::new(self.dims.clone()),
            stat: self.stat,
            need: Need::of(&[self.stat], self.skipna),
            ddof: self.ddof,
        }
    }
}

/// The dtype of `stat` on the engine: int64 counts, float64 otherwise.
pub(crate) fn stat_dtype(stat: Stat) -> DType {
    if stat == Stat::Count {
        DType::I64
    } else {
        DType::F64
    }
}

impl Transform<Chunks> for Reduce {
    type Output = Chunks;

    fn expand(self, input: Chunks) -> Chunks {
        let dims = self.dims.clone();
        input
            .map("drop reduced offsets", move |(key, ds): (Key, Dataset)| {
                Ok::<_, ChunkError>((without_offsets(key, &dims)?, ds))
            })
            .apply("per key", ReducePerKey(self))
    }
}

/// [`Reduce`] over the datasets of each key (`Mean::per_key`, ...).
#[derive(Debug, Clone)]
pub struct ReducePerKey(Reduce);

impl ReducePerKey {
    /// Whether NaN values are skipped (default true).
    pub fn skipna(self, skipna: bool) -> ReducePerKey {
        ReducePerKey(self.0.skipna(skipna))
    }

    /// Delta degrees of freedom of var and std.
    pub fn ddof(self, ddof: u64) -> ReducePerKey {
        ReducePerKey(self.0.ddof(ddof))
    }

    /// See [`Reduce::fanout`].
    pub fn fanout(self, n: u64) -> ReducePerKey {
        ReducePerKey(self.0.fanout(n))
    }
}

impl<K: Data> Transform<PCollection<(K, Dataset)>> for ReducePerKey {
    type Output = PCollection<(K, Dataset)>;

    fn expand(self, input: PCollection<(K, Dataset)>) -> Self::Output {
        let combined = if self.0.fanout > 1 {
            let n = self.0.fanout;
            let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
            input
                .map("fan out", move |(k, ds): (K, Dataset)| {
                    let shard = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % n;
                    Ok::<_, ChunkError>(((k, shard), ds))
                })
                .combine_per_key("combine shards", Partials(self.0.combine_fn()))
                .map("drop shards", |((k, _), acc): ((K, u64), ReduceAcc)| {
                    Ok::<_, ChunkError>((k, acc))
                })
                .combine_per_key("combine", Merges(self.0.combine_fn()))
        } else {
            input.combine_per_key("combine", self.0.combine_fn())
        };
        combined.map("finish", |(k, out): (K, Result<Dataset, String>)| {
            out.map(|d| (k, d))
        })
    }
}

/// [`ReduceFn`] stopping at the accumulator: the first step of a fanout.
struct Partials(ReduceFn);

impl CombineFn<Dataset> for Partials {
    type Acc = ReduceAcc;
    type Out = ReduceAcc;

    fn create(&self) -> ReduceAcc {
        self.0.create()
    }

    fn add(&self, acc: ReduceAcc, value: Dataset) -> ReduceAcc {
        self.0.add(acc, value)
    }

    fn merge(&self, a: ReduceAcc, b: ReduceAcc) -> ReduceAcc {
        self.0.merge(a, b)
    }

    fn extract(&self, acc: ReduceAcc) -> ReduceAcc {
        acc
    }
}

/// [`ReduceFn`] merging accumulators: the last step of a fanout.
struct Merges(ReduceFn);

impl CombineFn<ReduceAcc> for Merges {
    type Acc = ReduceAcc;
    type Out = Result<Dataset, String>;

    fn create(&self) -> ReduceAcc {
        self.0.create()
    }

    fn add(&self, acc: ReduceAcc, value: ReduceAcc) -> ReduceAcc {
        self.0.merge(acc, value)
    }

    fn merge(&self, a: ReduceAcc, b: ReduceAcc) -> ReduceAcc {
        self.0.merge(a, b)
    }

    fn extract(&self, acc: ReduceAcc) -> Result<Dataset, String> {
        self.0.extract(acc)
    }
}

/// [`Reduce`] over a whole collection of datasets (`Mean::globally`, ...).
#[derive(Debug, Clone)]
pub struct ReduceGlobally(Reduce);

impl ReduceGlobally {
    /// Whether NaN values are skipped (default true).
    pub fn skipna(self, skipna: bool) -> ReduceGlobally {
        ReduceGlobally(self.0.skipna(skipna))
    }

    /// Delta degrees of freedom of var and std.
    pub fn ddof(self, ddof: u64) -> ReduceGlobally {
        ReduceGlobally(self.0.ddof(ddof))
    }

    /// See [`Reduce::fanout`].
    pub fn fanout(self, n: u64) -> ReduceGlobally {
        ReduceGlobally(self.0.fanout(n))
    }
}

impl Transform<PCollection<Dataset>> for ReduceGlobally {
    type Output = PCollection<Dataset>;

    fn expand(self, input: PCollection<Dataset>) -> Self::Output {
        let combined = if self.0.fanout > 1 {
            let n = self.0.fanout;
            let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
            input
                .map("fan out", move |ds: Dataset| {
                    let shard = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % n;
                    Ok::<_, ChunkError>((shard, ds))
                })
                .combine_per_key("combine shards", Partials(self.0.combine_fn()))
                .map("drop shards", |(_, acc): (u64, ReduceAcc)| {
                    Ok::<_, ChunkError>(acc)
                })
                .combine_globally("combine", Merges(self.0.combine_fn()))
        } else {
            input.combine_globally("combine", self.0.combine_fn())
        };
        combined.map("finish", |out: Result<Dataset, String>| out)
    }
}

macro_rules! statistic {
    ($(#[$doc:meta])* $name:ident, $stat:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl $name {
            /// Over `dims` of keyed chunks (the reduced dimensions' offsets
            /// are dropped from the keys; chunks that then share a key
            /// combine).
            #[allow(clippy::new_ret_no_self)]
            pub fn new<S: Into<String>>(dims: impl IntoIterator<Item = S>) -> Reduce {
                Reduce::new($stat, dims)
            }

            /// Over `dims` of the datasets of each key.
            pub fn per_key<S: Into<String>>(dims: impl IntoIterator<Item = S>) -> ReducePerKey {
                ReducePerKey(Reduce::new($stat, dims))
            }

            /// Over `dims` of a whole collection of datasets.
            pub fn globally<S: Into<String>>(dims: impl IntoIterator<Item = S>) -> ReduceGlobally {
                ReduceGlobally(Reduce::new($stat, dims))
            }
        }
    };
}

statistic!(
    /// The mean over `dims` (none: elementwise across chunks), skipping NaN unless
    /// [`skipna(false)`](Reduce::skipna), accumulated in f64 and returned as
    /// float64, as xarray-beam's `Mean` (whose sums divide by an int64 count):
    /// a [`Reduce`] of [`Stat::Mean`].
    ///
    /// - [`Mean::new`] on keyed chunks: drops the averaged dimensions' offsets
    ///   from each key, reduces each chunk over `dims`, and combines the chunks
    ///   that then share a key (`Mean('x')` of `{x:0}`, `{x:3}` → `Key()`).
    /// - [`Mean::per_key`] on `(K, Dataset)`: averages the datasets of each key
    ///   elementwise after reducing each over `dims`.
    /// - [`Mean::globally`] on datasets: the same over the whole collection,
    ///   one result (an error for an empty collection).
    ///
    /// ```
    /// use xbeam::prelude::*;
    /// use xbeam::transforms::Mean;
    ///
    /// let chunk = |x: u64, v: Vec<f64>| -> Result<(Key, Dataset), ChunkError> {
    ///     let ds = Dataset::new().with_data_var("y", Variable::new(["x"], Array::from_1d(v))?)?;
    ///     Ok((Key::from_offsets([("x", x)]), ds))
    /// };
    /// let p = Pipeline::new();
    /// let mean = p
    ///     .create("chunks", vec![chunk(0, vec![1.0, 2.0, 3.0])?, chunk(3, vec![4.0, 5.0, 6.0])?])
    ///     .apply("mean", Mean::new(["x"]))
    ///     .collect("out");
    /// p.run(&Runner::local_with_workers(2).quiet())?;
    /// let mean = mean.take()?;
    /// assert_eq!(mean[0].0, Key::new());
    /// assert_eq!(mean[0].1.data_var("y")?.data().as_view::<f64>()?.first(), Some(&3.5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    Mean,
    Stat::Mean
);

statistic!(
    /// The sum over `dims`, skipping NaN (0 where no value is valid, as
    /// xarray), as float64: a [`Reduce`] of [`Stat::Sum`].
    ///
    /// ```
    /// use xbeam::prelude::*;
    /// use xbeam::transforms::{Max, Std, Sum};
    ///
    /// let ds = |v: Vec<f64>| Dataset::new().with_data_var("y", Variable::new(["x"], Array::from_1d(v)).unwrap()).unwrap();
    /// let p = Pipeline::new();
    /// let chunks = p.create("chunks", vec![ds(vec![1.0, 2.0]), ds(vec![3.0, f64::NAN, 6.0])]);
    /// let sum = chunks.apply("sum", Sum::globally(["x"])).collect("sum");
    /// let std = chunks.apply("std", Std::globally(["x"]).ddof(1)).collect("std");
    /// let max = chunks.apply("max", Max::globally(["x"])).collect("max");
    /// p.run(&Runner::local_with_workers(2).quiet())?;
    /// let first = |d: &Dataset| d.data_var("y").unwrap().data().to_f64().unwrap().first().copied();
    /// assert_eq!(first(&sum.take()?[0]), Some(12.0));
    /// assert_eq!(first(&max.take()?[0]), Some(6.0));
    /// assert!((first(&std.take()?[0]).unwrap() - 2.160_246_899_469_287).abs() < 1e-12);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    Sum,
    Stat::Sum
);
statistic!(
    /// The variance over `dims` (ddof 0 unless [`Reduce::ddof`]), skipping
    /// NaN, by Chan's merge: a [`Reduce`] of [`Stat::Var`].
    Var,
    Stat::Var
);
statistic!(
    /// The standard deviation over `dims`: a [`Reduce`] of [`Stat::Std`].
    Std,
    Stat::Std
);
statistic!(
    /// The smallest valid value over `dims`: a [`Reduce`] of [`Stat::Min`].
    Min,
    Stat::Min
);
statistic!(
    /// The largest valid value over `dims`: a [`Reduce`] of [`Stat::Max`].
    Max,
    Stat::Max
);
statistic!(
    /// The number of valid values over `dims`, as int64: a [`Reduce`] of
    /// [`Stat::Count`].
    Count,
    Stat::Count
);

/// The combining function of [`Reduce`]: per data variable and element,
/// f64 accumulators of the values reduced over `dims`. A chunk that cannot
/// be reduced (a missing dimension, a non-numeric variable, shapes that do
/// not match) makes the result an error, which the transform reports.
#[derive(Debug, Clone)]
pub struct ReduceFn {
    dims: Arc<Vec<String>>,
    stat: Stat,
    need: Need,
    ddof: u64,
}

/// The accumulator of [`ReduceFn`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReduceAcc(Option<Result<Sums, String>>);

/// Accumulators per data variable, and the coordinates kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sums {
    vars: IndexMap<String, VarSums>,
    coords: Dataset,
}

/// Per element: count, and what the statistic needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct VarSums {
    dims: Vec<String>,
    shape: Vec<usize>,
    count: Vec<f64>,
    sum: Vec<f64>,
    mean: Vec<f64>,
    m2: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
    nan: Vec<bool>,
}

impl ByteSize for ReduceAcc {
    fn byte_size(&self) -> usize {
        match &self.0 {
            Some(Ok(s)) => {
                s.coords.nbytes()
                    + s.vars
                        .values()
                        .map(|v| {
                            8 * (v.count.len() + v.sum.len() + v.mean.len() + v.m2.len())
                                + 8 * (v.min.len() + v.max.len())
                                + v.nan.len()
                        })
                        .sum::<usize>()
            }
            _ => 0,
        }
    }
}

impl VarSums {
    /// Accumulators of `rows` (one row of `n` values per element).
    fn of(need: Need, dims: Vec<String>, shape: Vec<usize>, flat: &[f64], n: usize) -> VarSums {
        let out: usize = shape.iter().product();
        let on = |b: bool| if b { out } else { 0 };
        let mut v = VarSums {
            dims,
            shape,
            count: vec![0.0; out],
            sum: vec![0.0; on(need.sum)],
            mean: vec![0.0; on(need.moments)],
            m2: vec![0.0; on(need.moments)],
            min: vec![f64::INFINITY; on(need.min)],
            max: vec![f64::NEG_INFINITY; on(need.max)],
            nan: vec![false; on(need.propagate_nan)],
        };
        if n == 0 {
            return v;
        }
        for (j, row) in flat.chunks_exact(n).enumerate() {
            let valid = || row.iter().copied().filter(|x| !x.is_nan());
            let c = valid().count() as f64;
            v.count[j] = c;
            if need.sum {
                v.sum[j] = valid().sum();
            }
            if need.moments && c > 0.0 {
                let m = valid().sum::<f64>() / c;
                v.mean[j] = m;
                v.m2[j] = valid().map(|x| (x - m) * (x - m)).sum();
            }
            if need.min {
                v.min[j] = valid().fold(f64::INFINITY, f64::min);
            }
            if need.max {
                v.max[j] = valid().fold(f64::NEG_INFINITY, f64::max);
            }
            if need.propagate_nan {
                v.nan[j] = row.iter().any(|x| x.is_nan());
            }
        }
        v
    }

    /// Merges `b` into `self` (Chan's update for the moments).
    fn merge(&mut self, b: &VarSums) {
        for j in 0..self.count.len() {
            let (na, nb) = (self.count[j], b.count[j]);
            if !self.mean.is_empty() && nb > 0.0 {
                let n = na + nb;
                let d = b.mean[j] - self.mean[j];
                self.mean[j] += d * nb / n;
                self.m2[j] += b.m2[j] + d * d * na * nb / n;
            }
            self.count[j] = na + nb;
        }
        let add = |a: &mut Vec<f64>, b: &Vec<f64>, f: fn(f64, f64) -> f64| {
            a.iter_mut().zip(b).for_each(|(x, &y)| *x = f(*x, y));
        };
        add(&mut self.sum, &b.sum, |x, y| x + y);
        add(&mut self.min, &b.min, f64::min);
        add(&mut self.max, &b.max, f64::max);
        self.nan.iter_mut().zip(&b.nan).for_each(|(x, &y)| *x |= y);
    }

    /// The statistic of every element.
    fn finish(&self, stat: Stat, ddof: u64) -> Vec<f64> {
        #[allow(clippy::cast_precision_loss)]
        let ddof = ddof as f64;
        (0..self.count.len())
            .map(|j| {
                let n = self.count[j];
                if stat != Stat::Count && self.nan.get(j).copied().unwrap_or(false) {
                    return f64::NAN;
                }
                match stat {
                    Stat::Count => n,
                    Stat::Sum => self.sum[j],
                    _ if n == 0.0 => f64::NAN,
                    Stat::Mean => self.sum[j] / n,
                    Stat::Var | Stat::Std if n <= ddof => f64::NAN,
                    Stat::Var => self.m2[j] / (n - ddof),
                    Stat::Std => (self.m2[j] / (n - ddof)).sqrt(),
                    Stat::Min => self.min[j],
                    Stat::Max => self.max[j],
                }
            })
            .collect()
    }
}

impl ReduceFn {
    /// Accumulators of one chunk.
    fn sums(&self, ds: &Dataset) -> Result<Sums, ChunkError> {
        check_dims(ds, &self.dims, "reduce over")?;
        let mut vars = IndexMap::new();
        for (name, var) in ds.data_vars() {
            let r = rows(name, var, &self.dims, "reduce")?;
            let sums = VarSums::of(self.need, r.dims.clone(), r.shape.clone(), r.flat(), r.n);
            vars.insert(name.clone(), sums);
        }
        let coords = kept_coords(ds, &self.dims)?;
        Ok(Sums { vars, coords })
    }
}

fn merge(a: Sums, b: Sums) -> Result<Sums, String> {
    let mut a = a;
    same_vars(a.vars.keys(), b.vars.keys(), "reduce")?;
    for (name, vb) in b.vars {
        let Some(va) = a.vars.get_mut(&name) else {
            continue; // checked above: both sides hold the same variables
        };
        same_shape(
            &name,
            (&va.dims, &va.shape),
            (&vb.dims, &vb.shape),
            "reduce",
        )?;
        va.merge(&vb);
    }
    Ok(a)
}

impl CombineFn<Dataset> for ReduceFn {
    type Acc = ReduceAcc;
    type Out = Result<Dataset, String>;

    fn create(&self) -> ReduceAcc {
        ReduceAcc(None)
    }

    fn add(&self, acc: ReduceAcc, value: Dataset) -> ReduceAcc {
        let sums = self.sums(&value).map_err(|e| e.to_string());
        self.merge(acc, ReduceAcc(Some(sums)))
    }

    fn merge(&self, a: ReduceAcc, b: ReduceAcc) -> ReduceAcc {
        ReduceAcc(merge_accs(a.0, b.0, merge))
    }

    fn extract(&self, acc: ReduceAcc) -> Result<Dataset, String> {
        let sums = acc
            .0
            .ok_or_else(|| "cannot reduce an empty collection".to_owned())??;
        let mut ds = sums.coords;
        for (name, v) in sums.vars {
            let values = v.finish(self.stat, self.ddof);
            let data =
                ArrayD::from_shape_vec(IxDyn(&v.shape), values).map_err(|e| e.to_string())?;
            let mut data = Array::from(data);
            if self.stat == Stat::Count {
                data = data.astype(DType::I64).map_err(|e| e.to_string())?;
            }
            let var = Variable::new(v.dims, data).map_err(|e| e.to_string())?;
            ds = ds.with_data_var(name, var).map_err(|e| e.to_string())?;
        }
        Ok(ds)
    }
}

/// The names `Mean` had before the other statistics joined it.
pub type MeanPerKey = ReducePerKey;
/// See [`MeanPerKey`].
pub type MeanGlobally = ReduceGlobally;
