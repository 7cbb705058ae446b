//! [`ValidateEachChunk`].

use super::Chunks;
use crate::chunk::chunks::validate_chunk;
use crate::chunk::Dataset;
use crate::key::Key;
use crate::runner::Transform;

/// Checks every chunk against its key and passes it on unchanged, as
/// xarray-beam's `ValidateEachChunk`: every key offset must be a dimension
/// of the chunk, and `key.vars` (when set) its data variables. The first
/// bad chunk fails the run with xarray-beam's message.
///
/// ```
/// use xbeam::prelude::*;
/// use xbeam::transforms::ValidateEachChunk;
///
/// let ds = Dataset::new().with_data_var("foo", Variable::new(["x"], Array::from_1d(vec![1i64]))?)?;
/// let p = Pipeline::new();
/// p.create("chunk", vec![(Key::from_offsets([("x", 0), ("y", 0)]), ds)])
///     .apply("validate", ValidateEachChunk)
///     .collect("out");
/// let err = p.run(&Runner::local_with_workers(1).quiet()).unwrap_err();
/// assert!(err.to_string().contains("Key offset(s) 'y' in Key(offsets={'x': 0, 'y': 0}) not found in Dataset dimensions"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidateEachChunk;

impl Transform<Chunks> for ValidateEachChunk {
    type Output = Chunks;

    fn expand(self, input: Chunks) -> Chunks {
        input.map("validate chunks", |(key, ds): (Key, Dataset)| {
            validate_chunk(&key, &[&ds])?;
            Ok::<_, crate::chunk::ChunkError>((key, ds))
        })
    }
}
