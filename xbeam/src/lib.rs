//! xbeam: chunked, parallel and distributed pipelines over large labeled
//! N-dimensional array datasets (the xarray data model), in Rust. It does
//! what xarray-beam does on Apache Beam, with a hard memory bound.
//!
//! This facade re-exports every xbeam crate as a module ([`key`], [`chunk`],
//! [`rechunk`], [`io`], [`stats`], [`runner`]) and gathers what a pipeline
//! author needs in [`prelude`].
//!
//! A dataset moves through a pipeline as `(Key, Dataset)` chunks:
//!
//! ```
//! use xbeam::prelude::*;
//!
//! // An ERA5-like dataset: 2 days of hourly data on a 19 x 36 grid.
//! let ds = xbeam::demo::era5_like(48, 19, 36, 42)?;
//!
//! // Keyed chunks of one day each ("pancakes").
//! let plan = DatasetChunks::new(vec![&ds], &target_chunks([("time", ChunkSpec::Size(24))]), false)?;
//! let days: Vec<Chunk> = plan.keys().map(|k| Ok((k.clone(), plan.chunk(&k)?.remove(0)))).collect::<Result<_, ChunkError>>()?;
//! assert_eq!(days[1].0.to_string(), "Key(offsets={'time': 24, 'latitude': 0, 'longitude': 0})");
//!
//! // Rechunk in memory to all-time "pencils", then put everything back.
//! let pencils = in_memory_rechunk(days, &target_chunks([
//!     ("time", ChunkSpec::Full), ("latitude", ChunkSpec::Size(10)), ("longitude", ChunkSpec::Size(12)),
//! ]))?;
//! assert_eq!(pencils.len(), 2 * 3);
//! let whole = consolidate_chunks(pencils)?;
//! assert!(whole[0].1.identical(&ds));
//! # Ok::<(), ChunkError>(())
//! ```

pub use xbeam_chunk as chunk;
pub use xbeam_io as io;
pub use xbeam_key as key;
pub use xbeam_rechunk as rechunk;
pub use xbeam_runner as runner;
pub use xbeam_stats as stats;

pub mod dataset;
pub mod demo;
pub mod error;
pub mod jobs;
mod rng;
pub mod synthetic;
pub mod transforms;

pub use dataset::ChunkedDataset;
pub use error::Error;

/// Everything a pipeline author needs for the common case.
pub mod prelude {
    pub use xbeam_chunk::calendar::{Calendar, CfUnits, DateTime, TimeUnit};
    pub use xbeam_chunk::chunks::{
        consolidate_chunks, consolidate_chunks_filled, consolidate_chunks_to, consolidate_fully,
        consolidate_variables, in_memory_rechunk, rounded_key, split_chunks, split_variables,
        normalize_chunks, target_chunks, validate_chunk, Chunk, DatasetChunks, FillMissing,
        TargetChunks,
    };
    pub use xbeam_chunk::{
        Array, Attrs, ChunkError, DType, Dataset, DimReplacement, Label, Labels, Reduction,
        Template, TimeField, VarSchema, Variable,
    };
    pub use xbeam_io::{open_zarr, setup_zarr, ChunkSink, ChunkSource, MemorySource, SetupOptions};
    pub use xbeam_key::{ChunkGrid, ChunkRequest, ChunkSpec, ChunksRequest, Key, KeyError};
    pub use xbeam_runner::{CombineFn, PCollection, Pipeline, RunError, Runner, Transform};

    pub use crate::transforms::{
        parse_chunks, Chunks, ChunksToZarr, ConsolidateChunks, ConsolidateVariables,
        DatasetToChunks, DatasetToZarr, DatasetsToChunks, Mean, SplitChunks, SplitVariables,
        ValidateEachChunk,
    };
    pub use crate::{ChunkedDataset, Error};
}

/// The README's examples, compiled and run as doctests so they never rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
