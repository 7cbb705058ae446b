//! What [`Reduce`](super::Reduce) and [`Quantile`](super::Quantile) share:
//! each data variable of a chunk as rows of the values each kept element
//! folds over, the coordinates that stay, and the checks that two
//! accumulators can merge.

use crate::chunk::ndarray::{ArrayD, IxDyn};
use crate::chunk::{ChunkError, Dataset, Variable};
use crate::key::Key;

use super::canonical_key;

/// A variable's values over `dims`, one row per kept element: the kept
/// dimensions, their shape, the values (row-major, a row per element) and
/// the row length.
pub(super) struct Rows {
    pub(super) dims: Vec<String>,
    pub(super) shape: Vec<usize>,
    pub(super) values: ArrayD<f64>,
    pub(super) n: usize,
}

impl Rows {
    /// The values as a slice, rows one after another.
    pub(super) fn flat(&self) -> &[f64] {
        self.values.as_slice().expect("standard layout")
    }
}

/// `var` (named `name`) as rows over `dims`; `what` names the job in
/// errors ("reduce", "take quantiles of").
pub(super) fn rows(
    name: &str,
    var: &Variable,
    dims: &[String],
    what: &str,
) -> Result<Rows, ChunkError> {
    let data = var
        .data()
        .to_f64()
        .map_err(|e| ChunkError::Invalid(format!("cannot {what} variable {name:?}: {e}")))?;
    let vdims = var.dims();
    let (kept, reduced): (Vec<usize>, Vec<usize>) =
        (0..vdims.len()).partition(|&i| !dims.contains(&vdims[i]));
    let order: Vec<usize> = kept.iter().chain(&reduced).copied().collect();
    let shape: Vec<usize> = kept.iter().map(|&i| data.shape()[i]).collect();
    let n: usize = reduced.iter().map(|&i| data.shape()[i]).product();
    let values = data
        .permuted_axes(IxDyn(&order))
        .as_standard_layout()
        .into_owned();
    Ok(Rows {
        dims: kept.iter().map(|&i| vdims[i].clone()).collect(),
        shape,
        values,
        n,
    })
}

/// An error when the chunk lacks one of `dims` (`what`: "reduce over").
pub(super) fn check_dims(ds: &Dataset, dims: &[String], what: &str) -> Result<(), ChunkError> {
    let sizes = ds.sizes();
    match dims.iter().find(|d| !sizes.contains_key(*d)) {
        Some(d) => Err(ChunkError::Invalid(format!(
            "cannot {what} dimension {d:?}: the chunk has dimensions {:?}",
            sizes.keys().collect::<Vec<_>>()
        ))),
        None => Ok(()),
    }
}

/// The coordinates of `ds` not along any of `dims`.
pub(super) fn kept_coords(ds: &Dataset, dims: &[String]) -> Result<Dataset, ChunkError> {
    let mut coords = Dataset::new();
    for (name, c) in ds.coords() {
        if !c.dims().iter().any(|d| dims.contains(d)) {
            coords = coords.with_coord(name.clone(), c.clone())?;
        }
    }
    Ok(coords)
}

/// An error unless both sides hold the same variables (whichever order
/// chunks merge in: a variable missing from some chunks would be reduced
/// over fewer).
pub(super) fn same_vars<'a>(
    a: impl Iterator<Item = &'a String>,
    b: impl Iterator<Item = &'a String>,
    what: &str,
) -> Result<(), String> {
    let (mut x, mut y): (Vec<&String>, Vec<&String>) = (a.collect(), b.collect());
    x.sort();
    y.sort();
    if x == y {
        return Ok(());
    }
    let (x, y) = if x < y { (x, y) } else { (y, x) };
    Err(format!(
        "cannot {what} chunks with different variables: {x:?} vs {y:?}"
    ))
}

/// An error unless a variable has the same kept dimensions and shape on
/// both sides.
pub(super) fn same_shape(
    name: &str,
    (da, sa): (&[String], &[usize]),
    (db, sb): (&[String], &[usize]),
    what: &str,
) -> Result<(), String> {
    if da == db && sa == sb {
        return Ok(());
    }
    Err(format!(
        "cannot {what} chunks of variable {name:?} with different shapes: {da:?} {sa:?} vs {db:?} {sb:?}"
    ))
}

/// Merges two optional accumulators (the first error wins).
pub(super) fn merge_accs<T>(
    a: Option<Result<T, String>>,
    b: Option<Result<T, String>>,
    merge: impl FnOnce(T, T) -> Result<T, String>,
) -> Option<Result<T, String>> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(Err(e)), _) | (_, Some(Err(e))) => Some(Err(e)),
        (Some(Ok(a)), Some(Ok(b))) => Some(merge(a, b)),
    }
}

/// `key` without its offsets along `dims`, canonical.
pub(super) fn without_offsets(key: Key, dims: &[String]) -> Result<Key, ChunkError> {
    let mut key = key;
    for d in dims {
        if key.offset(d).is_some() {
            key = key.without_offset(d)?;
        }
    }
    Ok(canonical_key(&key))
}
