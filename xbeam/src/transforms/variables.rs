//! [`SplitVariables`] and [`ConsolidateVariables`].

use super::{canonical_key, Chunks};
use crate::chunk::chunks::{consolidate_variables, split_variables};
use crate::chunk::{ChunkError, Dataset};
use crate::key::Key;
use crate::runner::Transform;

/// One chunk per data variable (`key.vars = {name}`, offsets only for the
/// variable's dimensions), as xarray-beam's `SplitVariables`.
///
/// ```
/// use xbeam::prelude::*;
/// use xbeam::transforms::{ConsolidateVariables, SplitVariables};
///
/// let ds = Dataset::new()
///     .with_data_var("foo", Variable::new(["x"], Array::from_1d(vec![1i64, 2]))?)?
///     .with_data_var("bar", Variable::new(["x"], Array::from_1d(vec![3i64, 4]))?)?;
/// let p = Pipeline::new();
/// let chunks = p.create("chunk", vec![(Key::from_offsets([("x", 0)]), ds.clone())]);
/// let split = chunks.apply("split", SplitVariables).collect("split");
/// let back = chunks
///     .apply("split again", SplitVariables)
///     .apply("merge", ConsolidateVariables)
///     .collect("back");
/// p.run(&Runner::local_with_workers(2).quiet())?;
/// assert_eq!(split.take()?.len(), 2);
/// let back = back.take()?;
/// assert_eq!(back.len(), 1);
/// assert_eq!(back[0].0, Key::from_offsets([("x", 0)]));
/// assert!(back[0].1.identical(&ds));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SplitVariables;

impl Transform<Chunks> for SplitVariables {
    type Output = Chunks;

    fn expand(self, input: Chunks) -> Chunks {
        input.flat_map("split variables", |(key, ds): (Key, Dataset)| {
            split_variables(&key, &ds)
        })
    }
}

/// Merges the single-variable chunks that share offsets back into one
/// chunk with `vars = None`, as xarray-beam's `ConsolidateVariables`
/// (chunks with different offset dimensions are not merged). Variables are
/// merged in name order, so the result does not depend on arrival order.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsolidateVariables;

impl Transform<Chunks> for ConsolidateVariables {
    type Output = Chunks;

    fn expand(self, input: Chunks) -> Chunks {
        input
            .map("key by offsets", |(key, ds): (Key, Dataset)| {
                let group = canonical_key(&key.replace(None, Some(None)));
                Ok::<_, ChunkError>((group.encode(), (key, ds)))
            })
            .group_by_key("group")
            .flat_map(
                "merge",
                |(_, mut chunks): (Vec<u8>, Vec<(Key, Dataset)>)| {
                    chunks.sort_by(|a, b| a.0.vars().cmp(&b.0.vars()));
                    let merged = consolidate_variables(chunks)?;
                    Ok::<_, ChunkError>(
                        merged
                            .into_iter()
                            .map(|(k, d)| (k.replace(None, Some(None)), d))
                            .collect::<Vec<_>>(),
                    )
                },
            )
    }
}
