//! [`Rolling`]: moving-window statistics along a dimension split across
//! chunks, each chunk completed with a halo from its neighbours (no
//! rechunk), as xarray's `ds.rolling(dim=window, center=...).<stat>()`.

use std::sync::Arc;

use super::Chunks;
use crate::chunk::{Array, ChunkError, Dataset, Variable};
use crate::jobs::rolling::{moving, reach, rolling_dtype, Window};
use crate::key::Key;
use crate::runner::Transform;
use crate::stats::Stat;

/// Steps of a chunk sent to a chunk whose windows read them: where they
/// start along the dimension, and the steps.
type Piece = (u64, Dataset);

/// `stat` (mean, sum, std, var, min or max) over windows of `window` steps
/// of dimension `dim`, trailing or centred, NaN where a window holds fewer
/// than `min_periods` valid values (default: the whole window) — xarray's
/// `rolling` with its NaN edges.
///
/// Each chunk sends the steps its neighbours' windows reach to them, keyed
/// by their offsets; each chunk waits for exactly the pieces it needs, so
/// only chunks in flight are held. Every window is summed on its own, in
/// index order, so results do not depend on the chunking. Chunks must be
/// keyed by their offset along `dim` and split along it as `chunks` says
/// (the sizes of consecutive chunks from 0). Data variables along `dim`
/// become float (see xarray's `maybe_promote`); the others are kept.
///
/// ```
/// use xbeam::prelude::*;
/// use xbeam::stats::Stat;
/// use xbeam::transforms::Rolling;
///
/// let x = Array::from_1d((0..10).map(f64::from).collect::<Vec<_>>());
/// let ds = Dataset::new().with_data_var("x", Variable::new(["t"], x)?)?;
/// let p = Pipeline::new();
/// let chunks = p.create("chunks", (0..5u64).map(|i| (Key::new().with_offset("t", 2 * i), ds.isel([("t", 2 * i..2 * i + 2)]).unwrap())).collect());
/// let rolling = Rolling::new("t", 3, Stat::Sum, vec![2; 5])?;
/// let out = chunks.apply("rolling", rolling).collect("out");
/// p.run(&Runner::local_with_workers(2).quiet())?;
/// let mut out = out.take()?;
/// out.sort_by_key(|(k, _)| k.offset("t"));
/// let first = out[0].1.data_var("x")?.data().to_f64()?;
/// assert!(first[[0]].is_nan() && first[[1]].is_nan()); // windows not yet full
/// assert_eq!(out[1].1.data_var("x")?.data().to_f64()?[[0]], 0.0 + 1.0 + 2.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Rolling {
    dim: String,
    stat: Stat,
    window: u64,
    center: bool,
    min_periods: Option<u64>,
    ddof: u64,
    /// Chunk offsets along `dim`, and the end.
    bounds: Arc<Vec<u64>>,
}

impl Rolling {
    /// `stat` over trailing windows of `window` steps along `dim`, whose
    /// chunks have the sizes `chunks`.
    ///
    /// # Errors
    /// A window of 0 or longer than the dimension, or [`Stat::Count`].
    pub fn new(
        dim: impl Into<String>,
        window: u64,
        stat: Stat,
        chunks: Vec<u64>,
    ) -> Result<Rolling, ChunkError> {
        let dim = dim.into();
        let mut bounds = vec![0u64];
        for c in chunks {
            bounds.push(bounds[bounds.len() - 1] + c);
        }
        let n = bounds[bounds.len() - 1];
        if window == 0 || window > n {
            return Err(ChunkError::Invalid(format!(
                "a rolling window must be from 1 to the length of {dim:?} ({n}): found {window}"
            )));
        }
        if stat == Stat::Count {
            return Err(ChunkError::Invalid(
                "rolling windows give mean, sum, std, var, min and max, not count".into(),
            ));
        }
        Ok(Rolling {
            dim,
            stat,
            window,
            center: false,
            min_periods: None,
            ddof: 0,
            bounds: Arc::new(bounds),
        })
    }

    /// Centre each window on its label (xarray's `center=True`).
    pub fn center(mut self, center: bool) -> Rolling {
        self.center = center;
        self
    }

    /// The fewest valid values a window needs (1 to the window).
    ///
    /// # Errors
    /// Outside that range.
    pub fn min_periods(mut self, m: u64) -> Result<Rolling, ChunkError> {
        if m == 0 || m > self.window {
            return Err(ChunkError::Invalid(format!(
                "min_periods must be from 1 to the window ({}): found {m}",
                self.window
            )));
        }
        self.min_periods = Some(m);
        Ok(self)
    }

    /// Delta degrees of freedom of var and std (default 0, as xarray).
    pub fn ddof(mut self, ddof: u64) -> Rolling {
        self.ddof = ddof;
        self
    }

    /// The chunk (its index) starting at `offset`.
    fn chunk_at(&self, offset: u64) -> Result<usize, ChunkError> {
        self.bounds[..self.bounds.len() - 1]
            .binary_search(&offset)
            .map_err(|_| {
                ChunkError::Invalid(format!(
                    "no chunk of {:?} starts at {offset}: chunks start at {:?}",
                    self.dim,
                    &self.bounds[..self.bounds.len() - 1]
                ))
            })
    }

    /// The steps chunk `i`'s windows read: its own and its halo.
    fn needs(&self, i: usize) -> (u64, u64) {
        let (before, after) = reach(self.window, self.center);
        let n = self.bounds[self.bounds.len() - 1];
        (
            self.bounds[i].saturating_sub(before),
            (self.bounds[i + 1] + after).min(n),
        )
    }

    /// The chunks whose windows read some of chunk `i`'s steps (`i`
    /// included), with the steps they read.
    fn readers(&self, i: usize) -> Vec<(usize, u64, u64)> {
        let (lo, hi) = (self.bounds[i], self.bounds[i + 1]);
        (0..self.bounds.len() - 1)
            .filter_map(|j| {
                let (a, b) = self.needs(j);
                let (s, e) = (a.max(lo), b.min(hi));
                (s < e).then_some((j, s, e))
            })
            .collect()
    }

    /// Pieces of one chunk for each chunk that reads it: `(key, (start,
    /// piece))`; the chunk itself goes whole (every variable), the halos
    /// hold the variables along `dim` only.
    fn scatter(&self, key: &Key, ds: &Dataset) -> Result<Vec<(Key, Piece)>, ChunkError> {
        let offset = key.offset(&self.dim).unwrap_or(0);
        let i = self.chunk_at(offset)?;
        let len = ds.sizes().get(&self.dim).copied().unwrap_or(0);
        if len != self.bounds[i + 1] - self.bounds[i] {
            return Err(ChunkError::Invalid(format!(
                "the chunk at {key} has {len} steps of {:?}, but the chunks given to Rolling have {} there",
                self.dim,
                self.bounds[i + 1] - self.bounds[i]
            )));
        }
        let along: Vec<&String> = ds
            .data_vars()
            .iter()
            .filter(|(_, v)| v.dims().contains(&self.dim))
            .map(|(n, _)| n)
            .collect();
        let halo = ds.select_vars(&along)?;
        self.readers(i)
            .into_iter()
            .map(|(j, s, e)| {
                let k = key.clone().with_offset(&self.dim, self.bounds[j]);
                let piece = if j == i {
                    ds.clone()
                } else {
                    halo.isel([(self.dim.as_str(), s - offset..e - offset)])?
                };
                Ok((k, (s, piece)))
            })
            .collect()
    }

    /// Chunk `key`'s windows from its pieces.
    fn gather(&self, key: Key, pieces: Vec<Piece>) -> Result<(Key, Dataset), ChunkError> {
        let offset = key.offset(&self.dim).unwrap_or(0);
        let i = self.chunk_at(offset)?;
        let mut pieces = pieces;
        pieces.sort_by_key(|(s, _)| *s);
        let start = pieces.first().map_or(offset, |(s, _)| *s);
        let own = pieces
            .iter()
            .find(|(s, d)| *s == offset && d.sizes().get(&self.dim).is_some())
            .map(|(_, d)| d.clone())
            .ok_or_else(|| ChunkError::Invalid(format!("the chunk at {key} did not arrive")))?;
        let window = Window {
            reach: reach(self.window, self.center),
            need: self.min_periods.unwrap_or(self.window),
            ddof: self.ddof,
        };
        let len = (self.bounds[i + 1] - self.bounds[i]) as usize;
        let mut out = own.clone();
        for (name, v) in own.data_vars() {
            let Some(axis) = v.dims().iter().position(|d| *d == self.dim) else {
                continue;
            };
            let parts: Vec<&Array> = pieces
                .iter()
                .map(|(_, d)| d.data_var(name).map(Variable::data))
                .collect::<Result<_, _>>()?;
            let values = Array::concat(axis, &parts)?.to_f64()?;
            let result = moving(
                self.stat,
                &values,
                axis,
                ((offset - start) as usize, len),
                window,
            );
            let data = Array::from(result).astype(rolling_dtype(self.stat, v.dtype()))?;
            out.insert_data_var(name.clone(), v.with_data(data)?)?;
        }
        Ok((key, out))
    }
}

impl Transform<Chunks> for Rolling {
    type Output = Chunks;

    fn expand(self, input: Chunks) -> Chunks {
        let this = Arc::new(self);
        let (scatter, gather) = (this.clone(), this.clone());
        input
            .flat_map("halos", move |(key, ds): (Key, Dataset)| {
                scatter.scatter(&key, &ds)
            })
            .group_by_key_expecting("gather", {
                let this = this.clone();
                // as many pieces as chunks its windows read
                move |key: &Key| {
                    let offset = key.offset(&this.dim).unwrap_or(0);
                    this.chunk_at(offset).map_or(1, |i| {
                        let (a, b) = this.needs(i);
                        (0..this.bounds.len() - 1)
                            .filter(|&j| this.bounds[j] < b && this.bounds[j + 1] > a)
                            .count()
                    })
                }
            })
            .map(
                "windows",
                move |(key, pieces): (Key, Vec<(u64, Dataset)>)| gather.gather(key, pieces),
            )
    }
}
