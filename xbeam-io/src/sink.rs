//! [`ChunkSink`]: the seam every writable store implements (a Zarr store
//! today, object stores later).

use std::sync::Arc;

use xbeam_chunk::{Dataset, Template};
use xbeam_key::Key;

use crate::IoError;

/// A store that was set up from a [`Template`] and takes keyed chunks.
///
/// Writes happen on many threads at once, each a region named by the
/// chunk's key; writing the same chunk twice gives the same store. Object
/// safe: pipelines hold sinks as `Arc<dyn ChunkSink>`.
///
/// ```
/// use std::sync::Arc;
/// use xbeam_chunk::{Array, Dataset, Template, Variable};
/// use xbeam_io::{setup_zarr, ChunkSink, SetupOptions};
/// use xbeam_key::Key;
///
/// let dir = tempfile::tempdir()?;
/// let ds = Dataset::new()
///     .with_data_var("t", Variable::new(["x"], Array::from_1d(vec![1.0f32, 2.0, 3.0, 4.0]))?)?;
/// let options = SetupOptions::default().chunks([("x", 2)]);
/// let sink: Arc<dyn ChunkSink> = Arc::new(setup_zarr(&Template::from(&ds), dir.path().join("t.zarr"), &options)?);
/// for start in [0, 2] {
///     sink.write_chunk(&Key::new().with_offset("x", start), &ds.isel([("x", start..start + 2)])?)?;
/// }
/// assert!(sink.describe().ends_with("t.zarr"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ChunkSink: Send + Sync {
    /// The schema of the whole dataset the store was set up with.
    fn template(&self) -> &Template;

    /// Writes one chunk at the region its key's offsets name. A chunk that
    /// does not fit the store is rejected before any byte is written.
    fn write_chunk(&self, key: &Key, chunk: &Dataset) -> Result<(), IoError>;

    /// What the sink is, for error messages (e.g. a store's path).
    fn describe(&self) -> String;

    /// Makes every chunk written so far durable; called once, after the
    /// last chunk. The default does nothing (an in-memory sink).
    fn flush(&self) -> Result<(), IoError> {
        Ok(())
    }
}

impl<S: ChunkSink + ?Sized> ChunkSink for Arc<S> {
    fn template(&self) -> &Template {
        (**self).template()
    }

    fn write_chunk(&self, key: &Key, chunk: &Dataset) -> Result<(), IoError> {
        (**self).write_chunk(key, chunk)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }

    fn flush(&self) -> Result<(), IoError> {
        (**self).flush()
    }
}
