//! The xarray-beam transforms on the engine, one file each, named and
//! behaving as xarray-beam's: [`DatasetToChunks`], [`ValidateEachChunk`],
//! [`SplitChunks`], [`ConsolidateChunks`], [`SplitVariables`],
//! [`ConsolidateVariables`], [`Rechunk`], [`ChunksToZarr`], [`DatasetToZarr`]
//! and [`Mean`].
//!
//! Each is a composite [`Transform`](crate::runner::Transform): applied to a
//! [`Chunks`] collection (or, for sources, to the
//! [`Pipeline`](crate::runner::Pipeline)) under a
//! name, its inner steps are named `name/step` in metrics, progress and
//! errors. They work the same with one worker, many, and across processes.
//!
//! ```
//! use xbeam::prelude::*;
//! use xbeam::transforms::{parse_chunks, ConsolidateChunks, DatasetToChunks, SplitChunks};
//!
//! let ds = xbeam::demo::era5_like(48, 19, 36, 42)?;
//! let p = Pipeline::new();
//! let pencil = parse_chunks("time=-1,latitude=10,longitude=12")?;
//! let pancakes = p.apply("read", DatasetToChunks::from_dataset(ds.clone(), parse_chunks("time=24")?))?;
//! let pencils = pancakes
//!     .apply("split", SplitChunks::new(pencil.clone()))
//!     .apply("consolidate", ConsolidateChunks::new(pencil))
//!     .collect("pencils");
//! p.run(&Runner::local_with_workers(2).quiet())?;
//! let pencils = pencils.take()?;
//! assert_eq!(pencils.len(), 2 * 3);
//! assert!(consolidate_fully(pencils)?.1.identical(&ds));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod chunks_to_zarr;
mod consolidate_chunks;
mod dataset_to_chunks;
mod elements;
mod groupby;
mod quantile;
mod rechunk;
mod reduce;
mod rolling;
mod split_chunks;
mod validate;
mod variables;

pub use chunks_to_zarr::{write_to, ChunksToZarr, DatasetToZarr};
pub use consolidate_chunks::ConsolidateChunks;
pub use dataset_to_chunks::{ChunkPlan, DatasetToChunks, DatasetsToChunks};
pub use groupby::GroupBy;
pub use quantile::{
    Quantile, QuantileAcc, QuantileFn, QuantileGlobally, QuantilePerKey, DEFAULT_ALPHA,
};
pub(crate) use rechunk::process_budget_for;
pub(crate) use rechunk::run_stages;
pub use rechunk::{chunk_budget, Rechunk};
pub(crate) use reduce::stat_dtype;
pub use reduce::{
    Count, Max, Mean, MeanGlobally, MeanPerKey, Min, Reduce, ReduceAcc, ReduceFn, ReduceGlobally,
    ReducePerKey, Std, Sum, Var,
};
pub use rolling::Rolling;
pub use split_chunks::SplitChunks;
pub use validate::ValidateEachChunk;
pub use variables::{ConsolidateVariables, SplitVariables};

use crate::key::Key;

/// A collection of keyed chunks, the element type of every transform here.
pub type Chunks = crate::runner::PCollection<(Key, crate::chunk::Dataset)>;

/// Chunk specs from text, for the transforms: `"time=24,latitude=-1"`,
/// `"time=365,366,365"` (irregular), `"x=10,...=-1"` (the others). Byte
/// targets (`"100MB"`) need a template: see
/// [`ChunkedDataset`](crate::ChunkedDataset) and
/// [`normalize_chunks`](crate::chunk::chunks::normalize_chunks).
///
/// ```
/// use xbeam::key::ChunkSpec;
/// let t = xbeam::transforms::parse_chunks("time=24,latitude=-1")?;
/// assert_eq!(t["time"], ChunkSpec::Size(24));
/// assert_eq!(t["latitude"], ChunkSpec::Full);
/// # Ok::<(), xbeam::key::KeyError>(())
/// ```
pub fn parse_chunks(
    text: &str,
) -> Result<crate::chunk::chunks::TargetChunks, crate::key::KeyError> {
    text.parse::<crate::key::ChunksRequest>()?.fixed_specs()
}

/// `key` with its offsets sorted by dimension name: keys that are equal
/// (offsets compare as an unordered map) then group together in the engine,
/// which compares keys by their serialized bytes.
pub fn canonical_key(key: &Key) -> Key {
    let mut offsets: Vec<(&String, &u64)> = key.offsets().iter().collect();
    offsets.sort();
    key.replace(
        Some(offsets.into_iter().map(|(d, o)| (d.clone(), *o)).collect()),
        None,
    )
}
