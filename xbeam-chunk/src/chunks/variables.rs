//! Splitting chunks into one chunk per variable, and merging them back.

use indexmap::IndexMap;
use xbeam_key::{Key, VarSet};

use super::consolidate::sets_repr;
use super::{merge_chunks, Chunk};
use crate::error::bail;
use crate::{ChunkError, Dataset};

/// One chunk per data variable, with the coordinates that variable has;
/// each key keeps only the offsets of the new chunk's dimensions and has
/// `vars = {name}`. A chunk without data variables gives nothing.
///
/// ```
/// use xbeam_chunk::{chunks::split_variables, Array, Dataset, Variable};
/// use xbeam_key::Key;
/// let ds = Dataset::new()
///     .with_data_var("foo", Variable::new(["x"], Array::from_1d(vec![1i64]))?)?
///     .with_data_var("bar", Variable::new(["x", "y"], Array::from_vec(vec![1, 1], vec![2i64])?)?)?;
/// let out = split_variables(&Key::from_offsets([("x", 0), ("y", 0)]), &ds)?;
/// assert_eq!(out[0].0.to_string(), "Key(offsets={'x': 0}, vars={'foo'})");
/// assert_eq!(out[1].0.to_string(), "Key(offsets={'x': 0, 'y': 0}, vars={'bar'})");
/// # Ok::<(), xbeam_chunk::ChunkError>(())
/// ```
pub fn split_variables(key: &Key, dataset: &Dataset) -> Result<Vec<Chunk>, ChunkError> {
    dataset
        .data_vars()
        .keys()
        .map(|name| {
            let single = dataset.select_vars(&[name])?;
            let sizes = single.sizes();
            let offsets = key
                .offsets()
                .iter()
                .filter(|(d, _)| sizes.contains_key(*d))
                .map(|(d, o)| (d.clone(), *o));
            Ok((Key::from_parts(offsets, Some([name.clone()])), single))
        })
        .collect()
}

/// Merges chunks that share offsets (whatever their `vars`) into one chunk
/// per offsets, as xarray-beam's `consolidate_variables`; the result's key
/// has the union of the variables.
pub fn consolidate_variables(
    inputs: impl IntoIterator<Item = Chunk>,
) -> Result<Vec<Chunk>, ChunkError> {
    let mut groups: IndexMap<Key, Vec<Chunk>> = IndexMap::new();
    for (key, ds) in inputs {
        groups
            .entry(key.replace(None, Some(None)))
            .or_default()
            .push((key, ds));
    }
    groups
        .into_iter()
        .map(|(offsets_key, chunks)| {
            let all_vars: Vec<VarSet> = chunks
                .iter()
                .map(|(_, d)| d.data_vars().keys().cloned().collect())
                .collect();
            let mut union = VarSet::new();
            for vars in &all_vars {
                if vars.iter().any(|v| union.contains(v)) {
                    bail!(
                        Chunks,
                        "cannot merge chunks with overlapping variables: {}",
                        sets_repr(&all_vars)
                    );
                }
                union.extend(vars.iter().cloned());
            }
            let datasets: Vec<&Dataset> = chunks.iter().map(|(_, d)| d).collect();
            let merged = merge_chunks(&datasets)?;
            Ok((offsets_key.with_vars(Some(union)), merged))
        })
        .collect()
}
