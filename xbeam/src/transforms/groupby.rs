//! Grouped reductions on the engine: [`GroupBy`], xarray's
//! `ds.groupby(...).<stat>()` and `ds.resample(...).<stat>()` over keyed
//! chunks (a climatology is a [`GroupBy`] of parts of a time coordinate).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{canonical_key, Chunks, Reduce};
use crate::chunk::ndarray::Axis;
use crate::chunk::{Array, ChunkError, DType, Dataset, Variable};
use crate::key::{unravel, Key};
use crate::runner::Transform;
use crate::stats::{Groups, Stat};

/// `stat` of the steps of dimension `dim` in each group (see [`Groups`]:
/// every step's group, row-major over the groupers' labels), per element of
/// the other dimensions, skipping NaN: each chunk's steps are split by
/// group, each group is keyed by its position along the group dimensions
/// (the key loses `dim`'s offset and gains one per group dimension), and
/// the pieces of a group are combined as [`Reduce`] does, with a partial
/// combine on every worker before the exchange.
///
/// Output chunks hold one group each: every data variable that has `dim`
/// becomes `[group dims..., its other dims]` (float64; int64 for
/// [`Stat::Count`], unless some group is absent), with each group
/// dimension's label as its coordinate. Variables without `dim` are left
/// out, and so are coordinates along it. A group no step falls in (a month
/// × day product has absent days) has no chunk
/// ([`ChunkedDataset::groupby`](crate::ChunkedDataset::groupby) fills them
/// with NaN, as xarray). Keys must carry `dim`'s offset when chunks do not start at
/// step 0 (as [`DatasetToChunks`](super::DatasetToChunks) gives them).
///
/// ```
/// use xbeam::prelude::*;
/// use xbeam::stats::{Grouper, Groups, Stat};
/// use xbeam::transforms::GroupBy;
///
/// // six steps grouped as [a, b, a, b, a, b] by a coordinate's values
/// let x = Array::from_1d(vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0]);
/// let ds = Dataset::new().with_data_var("x", Variable::new(["t"], x)?)?;
/// let (labels, index) = Grouper::Coord("c".into()).labels(&Array::from_1d(vec![0i64, 1, 0, 1, 0, 1]))?;
/// let groups = Groups::from_parts(6, vec![(labels, index)]);
/// let p = Pipeline::new();
/// let chunks = p.create("chunks", vec![
///     (Key::new().with_offset("t", 0), ds.isel([("t", 0..4u64)])?),
///     (Key::new().with_offset("t", 4), ds.isel([("t", 4..6u64)])?),
/// ]);
/// let out = chunks
///     .apply("mean", GroupBy::new("t", groups, ["c"], Stat::Mean)?)
///     .collect("out");
/// p.run(&Runner::local_with_workers(2).quiet())?;
/// let mut out = out.take()?;
/// out.sort_by_key(|(k, _)| k.offset("c"));
/// assert_eq!(out[1].0, Key::new().with_offset("c", 1));
/// assert_eq!(out[1].1.data_var("x")?.data().to_f64()?.into_raw_vec_and_offset().0, vec![20.0]);
/// assert_eq!(out[0].1.coord("c")?.data().to_f64()?.into_raw_vec_and_offset().0, vec![0.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct GroupBy {
    dim: String,
    groups: Arc<Groups>,
    group_dims: Vec<String>,
    reduce: Reduce,
}

impl GroupBy {
    /// `stat` of the steps of `dim` by `groups`, whose groupers name the
    /// group dimensions `group_dims` (one per grouper).
    ///
    /// A group dimension may be `dim` itself (resampling keeps the name).
    ///
    /// # Errors
    /// When `group_dims` and the groupers differ in number.
    pub fn new<S: Into<String>>(
        dim: impl Into<String>,
        groups: Groups,
        group_dims: impl IntoIterator<Item = S>,
        stat: Stat,
    ) -> Result<GroupBy, ChunkError> {
        let dim = dim.into();
        let group_dims: Vec<String> = group_dims.into_iter().map(Into::into).collect();
        if group_dims.len() != groups.labels.len() {
            return Err(ChunkError::Invalid(format!(
                "{} group dimensions {group_dims:?} for {} groupers",
                group_dims.len(),
                groups.labels.len()
            )));
        }
        Ok(GroupBy {
            reduce: Reduce::new(stat, [dim.clone()]),
            dim,
            groups: Arc::new(groups),
            group_dims,
        })
    }

    /// Whether NaN values are skipped (default true).
    pub fn skipna(mut self, skipna: bool) -> GroupBy {
        self.reduce = self.reduce.skipna(skipna);
        self
    }

    /// Delta degrees of freedom of var and std (default 0, as xarray).
    pub fn ddof(mut self, ddof: u64) -> GroupBy {
        self.reduce = self.reduce.ddof(ddof);
        self
    }
}

/// Splits one chunk's steps by group: each group's steps, keyed by its
/// position along the group dimensions.
fn split(
    dim: &str,
    groups: &Groups,
    group_dims: &[String],
    (key, ds): (Key, Dataset),
) -> Result<Vec<(Key, Dataset)>, ChunkError> {
    let Some(len) = ds.sizes().get(dim).map(|&n| n as usize) else {
        return Err(ChunkError::Invalid(format!(
            "cannot group by dimension {dim:?}: the chunk at {key} has dimensions {:?}",
            ds.sizes().keys().collect::<Vec<_>>()
        )));
    };
    let start = key.offset(dim).unwrap_or(0) as usize;
    if start + len > groups.index.len() {
        return Err(ChunkError::Invalid(format!(
            "the chunk at {key} holds steps {start}..{} of {dim:?}, which has {} steps",
            start + len,
            groups.index.len()
        )));
    }
    // the data variables along `dim`, without the coordinates along it
    let along: Vec<&String> = ds
        .data_vars()
        .iter()
        .filter(|(_, v)| v.dims().iter().any(|d| d == dim))
        .map(|(n, _)| n)
        .collect();
    let mut keep = Dataset::new();
    for name in along {
        keep = keep.with_data_var(name.clone(), ds.data_var(name)?.clone())?;
    }
    for (name, c) in ds.coords() {
        if !c.dims().iter().any(|d| d == dim) {
            keep = keep.with_coord(name.clone(), c.clone())?;
        }
    }
    let mut steps: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..len {
        if let Some(g) = groups.index[start + i] {
            steps.entry(g).or_default().push(i);
        }
    }
    let base = key.without_offset(dim)?;
    let lens: Vec<usize> = groups
        .labels
        .iter()
        .map(crate::stats::Labels::len)
        .collect();
    steps
        .into_iter()
        .map(|(g, idx)| {
            let mut k = base.clone();
            for (d, i) in group_dims.iter().zip(unravel(g, &lens)) {
                k = k.with_offset(d, i as u64);
            }
            Ok((canonical_key(&k), keep.take(dim, &idx)?))
        })
        .collect()
}

/// A reduced group with its group dimensions (length 1) put first on every
/// data variable, and their labels as coordinates.
/// With `float`, results are float64 whatever their dtype.
fn label(
    (groups, group_dims, float): (&Groups, &[String], bool),
    (key, ds): (Key, Dataset),
) -> Result<(Key, Dataset), ChunkError> {
    let mut out = Dataset::new().with_attrs(ds.attrs().clone());
    for (name, v) in ds.data_vars() {
        let dtype = if float { DType::F64 } else { v.dtype() };
        let mut a = v.data().to_f64()?;
        for _ in group_dims {
            a = a.insert_axis(Axis(0));
        }
        let dims: Vec<String> = group_dims.iter().chain(v.dims()).cloned().collect();
        let data = Array::from(a).astype(dtype)?;
        out = out.with_data_var(name.clone(), Variable::new(dims, data)?)?;
    }
    for (name, c) in ds.coords() {
        out = out.with_coord(name.clone(), c.clone())?;
    }
    for (d, labels) in group_dims.iter().zip(&groups.labels) {
        let i = key.offset(d).unwrap_or(0) as usize;
        let value = labels.to_array().select(0, &[i])?;
        out = out.with_coord(d.clone(), Variable::new([d.clone()], value)?)?;
    }
    Ok((key, out))
}

impl Transform<Chunks> for GroupBy {
    type Output = Chunks;

    fn expand(self, input: Chunks) -> Chunks {
        let (dim, groups, group_dims) = (self.dim.clone(), self.groups.clone(), self.group_dims);
        let (g2, d2) = (groups.clone(), group_dims.clone());
        let float = groups.present().contains(&false);
        input
            .flat_map("split groups", move |chunk: (Key, Dataset)| {
                split(&dim, &groups, &group_dims, chunk)
            })
            .apply("per group", self.reduce.per_key())
            .map("label groups", move |chunk: (Key, Dataset)| {
                label((&g2, &d2, float), chunk)
            })
    }
}
