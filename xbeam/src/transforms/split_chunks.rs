//! [`SplitChunks`]: cut each chunk at absolute multiples of target chunks.

use std::sync::Arc;

use super::Chunks;
use crate::chunk::chunks::{split_chunks, TargetChunks};
use crate::runner::Transform;

/// Splits every chunk into pieces that never cross a boundary of
/// `target_chunks` (cut at absolute multiples, or at the boundaries of
/// irregular specs), as xarray-beam's `SplitChunks`. Target dimensions a
/// chunk lacks are ignored for that chunk; the new keys have an offset for
/// every target dimension the chunk has.
///
/// ```
/// use xbeam::prelude::*;
/// use xbeam::transforms::SplitChunks;
///
/// let ds = Dataset::new()
///     .with_data_var("foo", Variable::new(["x"], Array::from_1d((0..10i64).collect()))?)?;
/// let p = Pipeline::new();
/// let pieces = p
///     .create("chunk", vec![(Key::from_offsets([("x", 0)]), ds)])
///     .apply("split", SplitChunks::new(target_chunks([("x", ChunkSpec::Size(4))])))
///     .collect("out");
/// p.run(&Runner::local_with_workers(1).quiet())?;
/// let mut sizes: Vec<u64> = pieces.take()?.iter().map(|(_, d)| d.sizes()["x"]).collect();
/// sizes.sort_unstable();
/// assert_eq!(sizes, [2, 4, 4]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SplitChunks {
    target: TargetChunks,
}

impl SplitChunks {
    /// Splits at the boundaries of `target`.
    pub fn new(target: TargetChunks) -> SplitChunks {
        SplitChunks { target }
    }
}

impl Transform<Chunks> for SplitChunks {
    type Output = Chunks;

    fn expand(self, input: Chunks) -> Chunks {
        let target = Arc::new(self.target);
        input.flat_map("split chunks", move |(key, ds)| {
            split_chunks(&key, &ds, &specs_for(&target, &ds))
        })
    }
}

/// Keeps only the target specs for dimensions `ds` has.
pub(crate) fn specs_for(target: &TargetChunks, ds: &crate::chunk::Dataset) -> TargetChunks {
    // (without building `ds.sizes()`: this runs once or twice per piece)
    let has_dim = |d: &str| ds.variables().any(|(_, v)| v.axis(d).is_some());
    target
        .iter()
        .filter(|(d, _)| has_dim(d))
        .map(|(d, s)| (d.clone(), s.clone()))
        .collect()
}
