//! [`Mean`]: averages over named dimensions, per key or globally, with a
//! partial combine on every worker before the exchange.

use std::sync::Arc;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::{canonical_key, Chunks};
use crate::chunk::ndarray::{ArrayD, IxDyn};
use crate::chunk::{Array, ChunkError, Dataset, Variable};
use crate::key::Key;
use crate::runner::{ByteSize, CombineFn, Data, PCollection, Transform};

/// The mean over `dims` (none: elementwise across chunks), skipping NaN unless
/// [`skipna(false)`](Mean::skipna), accumulated in f64 and returned as
/// float64, as xarray-beam's `Mean` (whose sums divide by an int64 count).
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
#[derive(Debug, Clone)]
pub struct Mean {
    dims: Vec<String>,
    skipna: bool,
}

impl Mean {
    /// The mean over `dims` of keyed chunks.
    pub fn new<S: Into<String>>(dims: impl IntoIterator<Item = S>) -> Mean {
        Mean {
            dims: dims.into_iter().map(Into::into).collect(),
            skipna: true,
        }
    }

    /// Whether NaN values are skipped (default true).
    pub fn skipna(mut self, skipna: bool) -> Mean {
        self.skipna = skipna;
        self
    }

    /// The mean over `dims` of the datasets of each key.
    pub fn per_key<S: Into<String>>(dims: impl IntoIterator<Item = S>) -> MeanPerKey {
        MeanPerKey(Mean::new(dims))
    }

    /// The mean over `dims` of a whole collection of datasets.
    pub fn globally<S: Into<String>>(dims: impl IntoIterator<Item = S>) -> MeanGlobally {
        MeanGlobally(Mean::new(dims))
    }

    fn combine_fn(&self) -> MeanFn {
        MeanFn {
            dims: Arc::new(self.dims.clone()),
            skipna: self.skipna,
        }
    }
}

impl Transform<Chunks> for Mean {
    type Output = Chunks;

    fn expand(self, input: Chunks) -> Chunks {
        let dims = self.dims.clone();
        input
            .map("drop averaged offsets", move |(key, ds): (Key, Dataset)| {
                let mut key = key;
                for d in &dims {
                    if key.offset(d).is_some() {
                        key = key.without_offset(d)?;
                    }
                }
                Ok::<_, ChunkError>((canonical_key(&key), ds))
            })
            .apply("per key", MeanPerKey(self))
    }
}

/// [`Mean::per_key`].
#[derive(Debug, Clone)]
pub struct MeanPerKey(Mean);

impl MeanPerKey {
    /// Whether NaN values are skipped (default true).
    pub fn skipna(self, skipna: bool) -> MeanPerKey {
        MeanPerKey(self.0.skipna(skipna))
    }
}

impl<K: Data> Transform<PCollection<(K, Dataset)>> for MeanPerKey {
    type Output = PCollection<(K, Dataset)>;

    fn expand(self, input: PCollection<(K, Dataset)>) -> Self::Output {
        input
            .combine_per_key("combine", self.0.combine_fn())
            .map("finish", |(k, mean): (K, Result<Dataset, String>)| {
                mean.map(|d| (k, d))
            })
    }
}

/// [`Mean::globally`].
#[derive(Debug, Clone)]
pub struct MeanGlobally(Mean);

impl MeanGlobally {
    /// Whether NaN values are skipped (default true).
    pub fn skipna(self, skipna: bool) -> MeanGlobally {
        MeanGlobally(self.0.skipna(skipna))
    }
}

impl Transform<PCollection<Dataset>> for MeanGlobally {
    type Output = PCollection<Dataset>;

    fn expand(self, input: PCollection<Dataset>) -> Self::Output {
        input
            .combine_globally("combine", self.0.combine_fn())
            .map("finish", |mean: Result<Dataset, String>| mean)
    }
}

/// The combining function of [`Mean`]: per data variable and element, the
/// f64 sum and count of the values reduced over `dims`. A chunk that cannot
/// be averaged (a missing dimension, a non-numeric variable, shapes that do
/// not match) makes the result an error, which the transform reports.
#[derive(Debug, Clone)]
pub struct MeanFn {
    dims: Arc<Vec<String>>,
    skipna: bool,
}

/// The accumulator of [`MeanFn`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MeanAcc(Option<Result<Sums, String>>);

/// Sums and counts per data variable, and the coordinates kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sums {
    vars: IndexMap<String, VarSums>,
    coords: Dataset,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct VarSums {
    dims: Vec<String>,
    shape: Vec<usize>,
    sum: Vec<f64>,
    count: Vec<f64>,
}

impl ByteSize for MeanAcc {
    fn byte_size(&self) -> usize {
        match &self.0 {
            Some(Ok(s)) => {
                s.coords.nbytes() + s.vars.values().map(|v| 16 * v.sum.len()).sum::<usize>()
            }
            _ => 0,
        }
    }
}

impl MeanFn {
    /// Sums and counts of one chunk.
    fn sums(&self, ds: &Dataset) -> Result<Sums, ChunkError> {
        let sizes = ds.sizes();
        if let Some(d) = self.dims.iter().find(|d| !sizes.contains_key(*d)) {
            return Err(ChunkError::Invalid(format!(
                "cannot average over dimension {d:?}: the chunk has dimensions {:?}",
                sizes.keys().collect::<Vec<_>>()
            )));
        }
        let mut vars = IndexMap::new();
        for (name, var) in ds.data_vars() {
            let data = var.data().to_f64().map_err(|e| {
                ChunkError::Invalid(format!("cannot average variable {name:?}: {e}"))
            })?;
            let dims = var.dims();
            let kept: Vec<usize> = (0..dims.len())
                .filter(|&i| !self.dims.contains(&dims[i]))
                .collect();
            let reduced: Vec<usize> = (0..dims.len())
                .filter(|&i| self.dims.contains(&dims[i]))
                .collect();
            let order: Vec<usize> = kept.iter().chain(&reduced).copied().collect();
            let shape: Vec<usize> = kept.iter().map(|&i| data.shape()[i]).collect();
            let n: usize = reduced.iter().map(|&i| data.shape()[i]).product();
            let values = data
                .permuted_axes(IxDyn(&order))
                .as_standard_layout()
                .into_owned();
            let flat = values.as_slice().expect("standard layout");
            let out = shape.iter().product::<usize>();
            let mut sum = vec![0.0; out];
            let mut count = vec![0.0; out];
            if n > 0 {
                for (j, row) in flat.chunks_exact(n).enumerate() {
                    let (s, c) = if self.skipna {
                        row.iter()
                            .filter(|v| !v.is_nan())
                            .fold((0.0, 0.0), |(s, c), v| (s + v, c + 1.0))
                    } else {
                        (row.iter().sum(), n as f64)
                    };
                    sum[j] = s;
                    count[j] = c;
                }
            }
            let dims = kept.iter().map(|&i| dims[i].clone()).collect();
            vars.insert(
                name.clone(),
                VarSums {
                    dims,
                    shape,
                    sum,
                    count,
                },
            );
        }
        let mut coords = Dataset::new();
        for (name, c) in ds.coords() {
            if !c.dims().iter().any(|d| self.dims.contains(d)) {
                coords = coords.with_coord(name.clone(), c.clone())?;
            }
        }
        Ok(Sums { vars, coords })
    }
}

fn merge(a: Sums, b: Sums) -> Result<Sums, String> {
    let mut a = a;
    // the same variables on both sides, whichever order chunks merge in (a
    // variable missing from some chunks would be averaged over fewer)
    fn names(s: &Sums) -> Vec<&String> {
        let mut v: Vec<&String> = s.vars.keys().collect();
        v.sort();
        v
    }
    let (x, y) = (names(&a), names(&b));
    if x != y {
        let (x, y) = if x < y { (x, y) } else { (y, x) };
        return Err(format!(
            "cannot average chunks with different variables: {x:?} vs {y:?}"
        ));
    }
    for (name, vb) in b.vars {
        let Some(va) = a.vars.get_mut(&name) else {
            continue; // checked above: both sides hold the same variables
        };
        if va.shape != vb.shape || va.dims != vb.dims {
            return Err(format!(
                "cannot average chunks of variable {name:?} with different shapes: {:?} {:?} vs {:?} {:?}",
                va.dims, va.shape, vb.dims, vb.shape
            ));
        }
        for (s, x) in va.sum.iter_mut().zip(&vb.sum) {
            *s += x;
        }
        for (c, x) in va.count.iter_mut().zip(&vb.count) {
            *c += x;
        }
    }
    Ok(a)
}

impl CombineFn<Dataset> for MeanFn {
    type Acc = MeanAcc;
    type Out = Result<Dataset, String>;

    fn create(&self) -> MeanAcc {
        MeanAcc(None)
    }

    fn add(&self, acc: MeanAcc, value: Dataset) -> MeanAcc {
        let sums = self.sums(&value).map_err(|e| e.to_string());
        self.merge(acc, MeanAcc(Some(sums)))
    }

    fn merge(&self, a: MeanAcc, b: MeanAcc) -> MeanAcc {
        MeanAcc(match (a.0, b.0) {
            (None, x) | (x, None) => x,
            (Some(Err(e)), _) | (_, Some(Err(e))) => Some(Err(e)),
            (Some(Ok(a)), Some(Ok(b))) => Some(merge(a, b)),
        })
    }

    fn extract(&self, acc: MeanAcc) -> Result<Dataset, String> {
        let sums = acc
            .0
            .ok_or_else(|| "cannot average an empty collection".to_owned())??;
        let mut ds = sums.coords;
        for (name, v) in sums.vars {
            let means: Vec<f64> = v.sum.iter().zip(&v.count).map(|(s, c)| s / c).collect();
            let data = ArrayD::from_shape_vec(IxDyn(&v.shape), means).map_err(|e| e.to_string())?;
            let var = Variable::new(v.dims, Array::from(data)).map_err(|e| e.to_string())?;
            ds = ds.with_data_var(name, var).map_err(|e| e.to_string())?;
        }
        Ok(ds)
    }
}
