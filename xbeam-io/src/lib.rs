//! Zarr and NetCDF input/output for xbeam, with CF decoding as xarray does
//! it, behind the [`ChunkSource`] and [`ChunkSink`] seams.
//!
//! - [`open_zarr`] opens a Zarr v2 or v3 group written by xarray or
//!   zarr-python and returns a lazy [`ZarrSource`]: the [`Template`](xbeam_chunk::Template)
//!   (dimensions, variables, coordinates loaded), the native chunking, and
//!   [`ZarrSource::read`] which decodes only the Zarr chunks a region needs,
//!   in parallel.
//! - [`setup_zarr`] writes a store's metadata and coordinates from a
//!   template; [`ZarrSink::write_chunk`] writes one keyed chunk after
//!   validating it; [`verify`] lists chunks that were never written.
//! - [`expand_pattern`] lists the NetCDF files of a glob, a directory or a
//!   list; [`open_netcdf`] reads them (classic CDF-1/2/5 and NetCDF-4) as
//!   one [`NetcdfSource`], concatenated along a dimension and merged across
//!   variables, each file decoded with its own encoding, the encoding kept
//!   chosen so that every value is stored exactly.
//! - [`decode_cf_time`] / [`encode_cf_time`] / [`encode_cf_time_float`]: CF time coding in every
//!   calendar.
//! - [`ChunkSource`] (a template, a preferred chunking, read a region) and
//!   [`ChunkSink`] (a template, write a keyed chunk) are the seams pipelines
//!   use: [`ZarrSource`], [`NetcdfSource`] and [`MemorySource`] are
//!   sources, [`ZarrSink`] a sink, and object stores will be more of each.
//! - Every failure is an [`IoError`] naming the path and what was expected;
//!   the file system's, JSON's or zarrs' own error is its `source()`.
//!
//! Inside, `zarr/` holds what is Zarr's (metadata, stored types, fill
//! values, zarrs arrays; one file per job: open, setup, sink, verify,
//! append), `netcdf/` what is NetCDF's (one file's header and raw reads,
//! file patterns, the many-file source and its reconciliation) and `cf/`
//! the CF coding every format shares (masks, packing, times).
//!
//! ```
//! use xbeam_chunk::{Array, Dataset, Template, Variable};
//! use xbeam_io::{open_zarr, setup_zarr, SetupOptions};
//! use xbeam_key::Key;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("example.zarr");
//! let ds = Dataset::new()
//!     .with_coord("x", Variable::new(["x"], Array::from_1d(vec![10i64, 20, 30, 40]))?)?
//!     .with_data_var("foo", Variable::new(["x"], Array::from_1d(vec![1.0f32, 2.0, 3.0, 4.0]))?)?;
//! let options = SetupOptions::default().chunks([("x", 2)]);
//! let sink = setup_zarr(&Template::from(&ds), &path, &options)?;
//! sink.write_chunk(&Key::new().with_offset("x", 0), &ds.isel([("x", 0..2)])?)?;
//! sink.write_chunk(&Key::new().with_offset("x", 2), &ds.isel([("x", 2..4)])?)?;
//! xbeam_io::sync_store(&path)?; // flushed, and its manifest says complete
//! assert!(xbeam_io::verify(&path)?.is_ok());
//!
//! let source = open_zarr(&path)?;
//! assert_eq!(source.chunks()["x"], 2);
//! let region = [("x".to_owned(), 1..3)].into_iter().collect();
//! let back = source.read(&region, None)?;
//! assert!(back.identical(&ds.isel([("x", 1..3)])?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Code that only reads regions takes any [`ChunkSource`], a Zarr store or
//! an in-memory dataset alike:
//!
//! ```
//! use std::sync::Arc;
//! use indexmap::IndexMap;
//! use xbeam_chunk::{Array, Dataset, Variable};
//! use xbeam_io::{ChunkSource, MemorySource};
//!
//! /// The regions of `source` along `dim`, one per native chunk.
//! fn chunked(source: &dyn ChunkSource, dim: &str) -> Result<Vec<Dataset>, xbeam_io::IoError> {
//!     let n = source.template().sizes()[dim];
//!     let step = source.chunks().get(dim).copied().unwrap_or(n);
//!     (0..n)
//!         .step_by(step as usize)
//!         .map(|start| {
//!             let region = IndexMap::from([(dim.to_owned(), start..(start + step).min(n))]);
//!             source.read(&region, None)
//!         })
//!         .collect()
//! }
//!
//! let ds = Dataset::new()
//!     .with_data_var("foo", Variable::new(["x"], Array::from_1d(vec![1.0f32, 2.0, 3.0]))?)?;
//! let source: Arc<dyn ChunkSource> = Arc::new(MemorySource::new(ds).with_chunks([("x", 2)])?);
//! let pieces = chunked(source.as_ref(), "x")?;
//! assert_eq!(pieces.iter().map(|p| p.sizes()["x"]).collect::<Vec<_>>(), [2, 1]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use xbeam_chunk::calendar::CalendarError;
use xbeam_chunk::ChunkError;
use xbeam_key::KeyError;

mod cf;
mod netcdf;
mod sink;
mod source;
mod zarr;

pub use cf::{decode_cf_time, encode_cf_time, encode_cf_time_float, numpy_dtype};
pub use netcdf::{expand_pattern, open_netcdf, NetcdfSource};
pub use sink::ChunkSink;
pub use source::{ChunkSource, ConcatSource, MemorySource};
pub use zarr::{
    append_dim, free_space, is_manifest_file, manifest_status, open_zarr, partial_of, read_limits,
    set_memory_budget, setup_zarr, skipped_on_resume, sync_store, verify, zarr_chunk_size,
    ArrayInfo, ChunkProblem, ManifestStatus, Problem, SetupOptions, Verified, ZarrFormat, ZarrSink,
    ZarrSource, LISTED_PROBLEMS, MANIFEST, MAX_CHUNKS, PARTIAL_SUFFIX,
};

/// The cause of an [`IoError`] from a library with many error types
/// (zarrs); `downcast_ref` finds the concrete one.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Errors of xbeam IO. Messages name the path and say what was expected and
/// what was found; an error from below (the file system, JSON, zarrs) is
/// kept as the [`source`](std::error::Error::source), itself, so
/// `source().and_then(|s| s.downcast_ref::<std::io::Error>())` finds it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// A calendar or CF units error.
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    /// A data-model error.
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    /// A key or chunk-grid error.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A value could not be coded.
    #[error("{0}")]
    Invalid(String),
    /// A store, array or chunk is not what was expected.
    #[error("{path}: {message}")]
    Store {
        /// The path of the store, array or chunk.
        path: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A file or directory of a store could not be read, written or
    /// removed.
    #[error("{path}: {message}")]
    File {
        /// The path of the file or directory.
        path: String,
        /// What could not be done.
        message: String,
        /// The file system's error.
        source: std::io::Error,
    },
    /// A metadata document is not the JSON expected.
    #[error("{path}: {message}")]
    Json {
        /// The path of the store or array.
        path: String,
        /// What was expected.
        message: String,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// zarrs could not open, read or write an array.
    #[error("{path}: {message}")]
    Zarr {
        /// The path of the store or array.
        path: String,
        /// What could not be done.
        message: String,
        /// zarrs' error.
        source: Cause,
    },
    /// A chunk did not fit the store it was written to; nothing was written.
    #[error("{0}")]
    Write(String),
    /// A chunk that fits the store could not be written.
    #[error("failed to write chunk corresponding to key={key}")]
    WriteChunk {
        /// The chunk's key.
        key: String,
        /// Why.
        source: Box<IoError>,
    },
}

impl IoError {
    pub(crate) fn store(path: impl std::fmt::Display, message: impl Into<String>) -> IoError {
        IoError::Store {
            path: path.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn file(
        path: impl std::fmt::Display,
        message: impl Into<String>,
        source: std::io::Error,
    ) -> IoError {
        IoError::File {
            path: path.to_string(),
            message: message.into(),
            source,
        }
    }

    pub(crate) fn json(
        path: impl std::fmt::Display,
        message: impl Into<String>,
        source: serde_json::Error,
    ) -> IoError {
        IoError::Json {
            path: path.to_string(),
            message: message.into(),
            source,
        }
    }

    pub(crate) fn zarr(
        path: impl std::fmt::Display,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> IoError {
        IoError::Zarr {
            path: path.to_string(),
            message: message.into(),
            source: Box::new(source),
        }
    }

    /// The error as it concerns `path` (an array): errors that name a path
    /// name this one instead, keeping their cause; the others become a
    /// [`Store`](IoError::Store) error whose message is theirs.
    pub(crate) fn at(self, path: impl std::fmt::Display) -> IoError {
        let path = path.to_string();
        match self {
            IoError::Store { message, .. } => IoError::Store { path, message },
            IoError::File {
                message, source, ..
            } => IoError::File {
                path,
                message,
                source,
            },
            IoError::Json {
                message, source, ..
            } => IoError::Json {
                path,
                message,
                source,
            },
            IoError::Zarr {
                message, source, ..
            } => IoError::Zarr {
                path,
                message,
                source,
            },
            e @ IoError::WriteChunk { .. } => e,
            other => IoError::Store {
                path,
                message: other.to_string(),
            },
        }
    }
}
