//! Growing a store along a dimension: [`append_dim`].

use std::ops::Range;
use std::path::Path;

use serde_json::{json, Value};
use xbeam_chunk::{Array, Attrs, DType};
use xbeam_key::repr;

use super::array::{open_store, write_region, zarrs_array, Writer};
use super::coding;
use super::meta::{self, ZarrFormat};
use super::open::open_zarr;
use super::sink::ZarrSink;
use crate::IoError;

/// Appends along `dim`: grows every array with that dimension by the length
/// of `coord` (the new index values, which must continue the existing
/// index: same direction, no overlap), writes the new index values, and
/// returns a sink whose [`write_chunk`](ZarrSink::write_chunk) fills the
/// new region (offsets count from the start of the whole dimension).
pub fn append_dim(path: impl AsRef<Path>, dim: &str, coord: &Array) -> Result<ZarrSink, IoError> {
    let root = path.as_ref();
    let mut group = meta::read_group(root)?;
    let source = open_zarr(root)?;
    let sizes = source.template.sizes().clone();
    let Some(&old) = sizes.get(dim) else {
        return Err(IoError::store(
            root.display(),
            format!(
                "cannot append along {}: the store has no such dimension, expected one of {}",
                repr::quote(dim),
                repr::tuple(sizes.keys())
            ),
        ));
    };
    if coord.ndim() != 1 {
        return Err(IoError::Invalid(format!(
            "expected 1-D coordinate values to append along {}, found {} dimensions",
            repr::quote(dim),
            coord.ndim()
        )));
    }
    let added = coord.len() as u64;
    if let Some(index) = source.template.coords().get(dim) {
        check_continues(dim, index.data(), coord)?;
    }
    let new_size = old + added;
    for info in group.arrays.values_mut() {
        if let Some(axis) = info.dims.iter().position(|d| d == dim) {
            info.shape[axis] = new_size;
            info.meta["shape"] = json!(info.shape);
        }
    }
    let documents: Vec<(String, Value, Attrs)> = group
        .arrays
        .values()
        .map(|info| {
            let mut attrs = info.attrs.clone();
            if info.format == ZarrFormat::V2 {
                attrs.insert("_ARRAY_DIMENSIONS".into(), json!(info.dims));
            }
            (info.name.clone(), info.meta.clone(), attrs)
        })
        .collect();
    meta::write_group(root, group.format, &group.attrs, &documents)?;
    if let Some(index) = source.template.coords().get(dim) {
        let store = open_store(root)?;
        let info = &group.arrays[dim];
        let (coding, _, _) = coding::decoding(info)?;
        let w = Writer {
            array: zarrs_array(&store, root, info)?,
            coding,
            stored: info.stored,
            dims: info.dims.clone(),
        };
        let values = match (index.dtype(), coord.dtype()) {
            (DType::DateTime(u, _), DType::DateTime(..)) => crate::cf::retick(coord, u)?,
            _ => coord.clone(),
        };
        let ranges = [Range {
            start: old,
            end: new_size,
        }];
        write_region(root, &w, &ranges, &values)?;
    }
    let mut sink = ZarrSink::open(root)?;
    sink.append_start = Some((dim.to_owned(), old));
    Ok(sink)
}

/// Checks that `new` continues the index `old`: the same direction and no
/// overlap.
fn check_continues(dim: &str, old: &Array, new: &Array) -> Result<(), IoError> {
    if old.dtype() != new.dtype()
        && !(matches!((old.dtype(), new.dtype()), (DType::DateTime(_, a), DType::DateTime(_, b)) if a == b)
            || (old.dtype().is_numeric() && new.dtype().is_numeric()))
    {
        return Err(IoError::Invalid(format!(
            "cannot append along {}: the store's index is {}, the new values are {}",
            repr::quote(dim),
            old.dtype(),
            new.dtype()
        )));
    }
    let as_f64 = |a: &Array| -> Option<Vec<f64>> {
        match a {
            Array::DateTime(..) => {
                let (t, u, _) = a.datetime_ticks().ok()?;
                Some(t.iter().map(|&x| x as f64 * u.nanos() as f64).collect())
            }
            _ => a.to_f64().ok().map(|v| v.iter().copied().collect()),
        }
    };
    let (Some(o), Some(n)) = (as_f64(old), as_f64(new)) else {
        return Ok(());
    };
    let all: Vec<f64> = o.iter().chain(&n).copied().collect();
    let increasing = all.windows(2).all(|w| w[0] < w[1]);
    let decreasing = all.windows(2).all(|w| w[0] > w[1]);
    if !(increasing || decreasing) {
        let last = old
            .format_value(old.len().saturating_sub(1))
            .unwrap_or_default();
        let first = new.format_value(0).unwrap_or_default();
        return Err(IoError::Invalid(format!(
            "cannot append along {}: the new index values must continue the existing ones (strictly monotonic, no overlap), but the store ends at {last} and the new values start at {first}",
            repr::quote(dim)
        )));
    }
    Ok(())
}
