//! [`Quantile`]: quantiles over named dimensions, per key or globally, in
//! one pass over any number of values, from mergeable sketches
//! ([`Sketch`]) combined on every worker before the exchange.

use std::sync::Arc;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::elements::{
    check_dims, kept_coords, merge_accs, rows, same_shape, same_vars, without_offsets,
};
use super::Chunks;
use crate::chunk::ndarray::{ArrayD, IxDyn};
use crate::chunk::{Array, ChunkError, Dataset, Variable};
use crate::key::Key;
use crate::runner::{ByteSize, CombineFn, Data, PCollection, Transform};
use crate::stats::{check_quantiles, Sketch, StatsError};

/// The sketches' default relative accuracy: quantiles within 0.5%.
pub const DEFAULT_ALPHA: f64 = 0.005;

/// Quantiles at `levels` over `dims` (none: elementwise across chunks),
/// skipping NaN, as xarray's `ds.quantile(levels, dim=dims)` within a
/// relative accuracy `alpha` (see [`Sketch`] for the bound): every data
/// variable becomes `[quantile, its other dims]`, float64, with the levels
/// as the `quantile` coordinate. Each element's values go into a sketch
/// whose memory grows with the logarithm of their range, not their number,
/// and sketches merge exactly, so the result does not depend on the
/// chunking, the order chunks arrive in or the number of workers.
///
/// ```
/// use xbeam::prelude::*;
/// use xbeam::transforms::Quantile;
///
/// let p = Pipeline::new();
/// let chunk = |lo: usize| Dataset::new().with_data_var("x", Variable::new(["t"], Array::from_1d((lo..lo + 50).map(|i| i as f64).collect::<Vec<_>>())).unwrap()).unwrap();
/// let chunks = p.create("chunks", vec![
///     (Key::new().with_offset("t", 0), chunk(1)),
///     (Key::new().with_offset("t", 50), chunk(51)),
/// ]);
/// let out = chunks.apply("q", Quantile::new(&[0.5], ["t"])?).collect("out");
/// p.run(&Runner::local_with_workers(2).quiet())?;
/// let (_, ds) = out.take()?.remove(0);
/// let median = ds.data_var("x")?.data().to_f64()?[[0]];
/// assert!((median - 50.5).abs() <= 0.005 * 51.0, "{median}");
/// assert_eq!(ds.data_var("x")?.dims(), ["quantile"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Quantile {
    levels: Vec<f64>,
    dims: Vec<String>,
    alpha: f64,
}

impl Quantile {
    /// Quantiles at `levels` (each from 0 to 1) over `dims`.
    ///
    /// # Errors
    /// When a level is outside [0, 1], NaN or repeated, or none is given.
    pub fn new<S: Into<String>>(
        levels: &[f64],
        dims: impl IntoIterator<Item = S>,
    ) -> Result<Quantile, StatsError> {
        if levels.is_empty() {
            return Err(StatsError::Invalid("no quantile level given".into()));
        }
        check_quantiles(levels)?;
        Ok(Quantile {
            levels: levels.to_vec(),
            dims: dims.into_iter().map(Into::into).collect(),
            alpha: DEFAULT_ALPHA,
        })
    }

    /// The sketches' relative accuracy (default [`DEFAULT_ALPHA`]).
    ///
    /// # Errors
    /// When `alpha` is not between 0 and 1.
    pub fn alpha(mut self, alpha: f64) -> Result<Quantile, StatsError> {
        Sketch::new(alpha)?;
        self.alpha = alpha;
        Ok(self)
    }

    /// This transform over the datasets of each key.
    pub fn per_key(self) -> QuantilePerKey {
        QuantilePerKey(self)
    }

    /// This transform over a whole collection of datasets.
    pub fn globally(self) -> QuantileGlobally {
        QuantileGlobally(self)
    }

    fn combine_fn(&self) -> QuantileFn {
        QuantileFn {
            levels: Arc::new(self.levels.clone()),
            dims: Arc::new(self.dims.clone()),
            alpha: self.alpha,
        }
    }
}

impl Transform<Chunks> for Quantile {
    type Output = Chunks;

    fn expand(self, input: Chunks) -> Chunks {
        let dims = self.dims.clone();
        input
            .map("drop reduced offsets", move |(key, ds): (Key, Dataset)| {
                let key = without_offsets(key, &dims)?.with_offset("quantile", 0);
                Ok::<_, ChunkError>((key, ds))
            })
            .apply("per key", self.per_key())
    }
}

/// [`Quantile`] over the datasets of each key.
#[derive(Debug, Clone)]
pub struct QuantilePerKey(Quantile);

impl<K: Data> Transform<PCollection<(K, Dataset)>> for QuantilePerKey {
    type Output = PCollection<(K, Dataset)>;

    fn expand(self, input: PCollection<(K, Dataset)>) -> Self::Output {
        input
            .combine_per_key("combine", self.0.combine_fn())
            .map("finish", |(k, out): (K, Result<Dataset, String>)| {
                out.map(|d| (k, d))
            })
    }
}

/// [`Quantile`] over a whole collection of datasets.
#[derive(Debug, Clone)]
pub struct QuantileGlobally(Quantile);

impl Transform<PCollection<Dataset>> for QuantileGlobally {
    type Output = PCollection<Dataset>;

    fn expand(self, input: PCollection<Dataset>) -> Self::Output {
        input
            .combine_globally("combine", self.0.combine_fn())
            .map("finish", |out: Result<Dataset, String>| out)
    }
}

/// The [`CombineFn`] of [`Quantile`].
#[derive(Debug, Clone)]
pub struct QuantileFn {
    levels: Arc<Vec<f64>>,
    dims: Arc<Vec<String>>,
    alpha: f64,
}

/// The accumulator of [`QuantileFn`]: a sketch per kept element of every
/// variable (or the first error met).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QuantileAcc(Option<Result<Sketches, String>>);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sketches {
    vars: IndexMap<String, VarSketches>,
    coords: Dataset,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct VarSketches {
    dims: Vec<String>,
    shape: Vec<usize>,
    sketches: Vec<Sketch>,
}

impl ByteSize for QuantileAcc {
    fn byte_size(&self) -> usize {
        match &self.0 {
            Some(Ok(s)) => {
                s.coords.nbytes()
                    + s.vars
                        .values()
                        .flat_map(|v| &v.sketches)
                        .map(Sketch::byte_size)
                        .sum::<usize>()
            }
            _ => 0,
        }
    }
}

impl QuantileFn {
    fn sketches(&self, ds: &Dataset) -> Result<Sketches, ChunkError> {
        const WHAT: &str = "take quantiles of";
        check_dims(ds, &self.dims, "take quantiles over")?;
        let empty = Sketch::new(self.alpha).map_err(|e| ChunkError::Invalid(e.to_string()))?;
        let mut vars = IndexMap::new();
        for (name, var) in ds.data_vars() {
            let r = rows(name, var, &self.dims, WHAT)?;
            let mut sketches = vec![empty.clone(); r.shape.iter().product()];
            if r.n > 0 {
                for (s, row) in sketches.iter_mut().zip(r.flat().chunks_exact(r.n)) {
                    for &x in row {
                        s.add(x);
                    }
                }
            }
            let (dims, shape) = (r.dims, r.shape);
            vars.insert(
                name.clone(),
                VarSketches {
                    dims,
                    shape,
                    sketches,
                },
            );
        }
        let coords = kept_coords(ds, &self.dims)?;
        Ok(Sketches { vars, coords })
    }
}

fn merge(a: Sketches, b: Sketches) -> Result<Sketches, String> {
    const WHAT: &str = "take quantiles of";
    let mut a = a;
    same_vars(a.vars.keys(), b.vars.keys(), WHAT)?;
    for (name, vb) in b.vars {
        let Some(va) = a.vars.get_mut(&name) else {
            continue; // checked above
        };
        same_shape(&name, (&va.dims, &va.shape), (&vb.dims, &vb.shape), WHAT)?;
        for (s, t) in va.sketches.iter_mut().zip(&vb.sketches) {
            s.merge(t).map_err(|e| e.to_string())?;
        }
    }
    Ok(a)
}

impl CombineFn<Dataset> for QuantileFn {
    type Acc = QuantileAcc;
    type Out = Result<Dataset, String>;

    fn create(&self) -> QuantileAcc {
        QuantileAcc(None)
    }

    fn add(&self, acc: QuantileAcc, value: Dataset) -> QuantileAcc {
        let s = self.sketches(&value).map_err(|e| e.to_string());
        self.merge(acc, QuantileAcc(Some(s)))
    }

    fn merge(&self, a: QuantileAcc, b: QuantileAcc) -> QuantileAcc {
        QuantileAcc(merge_accs(a.0, b.0, merge))
    }

    fn extract(&self, acc: QuantileAcc) -> Result<Dataset, String> {
        let s = acc
            .0
            .ok_or_else(|| "cannot take quantiles of an empty collection".to_owned())??;
        let levels = Array::from_1d(self.levels.to_vec());
        let mut ds = s
            .coords
            .with_coord(
                "quantile",
                Variable::new(["quantile"], levels).map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?;
        for (name, v) in s.vars {
            let mut shape = vec![self.levels.len()];
            shape.extend(&v.shape);
            let values: Vec<f64> = self
                .levels
                .iter()
                .flat_map(|&q| v.sketches.iter().map(move |s| s.quantile(q)))
                .collect();
            let data = ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|e| e.to_string())?;
            let dims: Vec<String> = std::iter::once("quantile".to_owned())
                .chain(v.dims)
                .collect();
            let var = Variable::new(dims, Array::from(data)).map_err(|e| e.to_string())?;
            ds = ds.with_data_var(name, var).map_err(|e| e.to_string())?;
        }
        Ok(ds)
    }
}
