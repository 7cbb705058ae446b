//! [`Error`]: the facade's one error, with the exit code the `xbeam` CLI
//! returns for it.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | anything else (for example the report could not be printed) |
//! | 2 | usage: an invalid flag or value, or an output path xbeam refuses to touch |
//! | 3 | input: the input store is missing, unreadable or invalid |
//! | 4 | output: the output could not be written or replaced |
//! | 5 | engine: the pipeline engine failed (a worker, spilling, a cluster peer) |
//!
//! ```
//! use xbeam::error::Error;
//!
//! let e = Error::Usage("--gb must be a finite number > 0, found NaN".into());
//! assert_eq!(e.exit_code(), 2);
//! ```

use std::path::PathBuf;

use crate::chunk::ChunkError;
use crate::io::IoError;
use crate::key::KeyError;
use crate::runner::RunError;

/// Why an xbeam job failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A flag or value is invalid.
    #[error("{0}")]
    Usage(String),
    /// xbeam refuses to write to (or delete) an output path.
    #[error("refusing to write {}: {reason}", path.display())]
    Refused {
        /// The output path.
        path: PathBuf,
        /// Why, in one sentence.
        reason: String,
    },
    /// The input store could not be opened or read.
    #[error("cannot read {}", path.display())]
    Input {
        /// The input store.
        path: PathBuf,
        /// The reason.
        #[source]
        source: IoError,
    },
    /// The output store could not be set up or written.
    #[error("cannot write {}", path.display())]
    Output {
        /// The output store.
        path: PathBuf,
        /// The reason.
        #[source]
        source: IoError,
    },
    /// A store lacks chunks that its metadata promises, holds chunks that
    /// are not what was written, or was left by a job that did not finish
    /// ([`crate::io::verify`]).
    #[error("{} is incomplete: {reason}", path.display())]
    Incomplete {
        /// The store.
        path: PathBuf,
        /// What is wrong, e.g. "2 chunks are missing or damaged".
        reason: String,
    },
    /// An existing output could not be inspected or removed.
    #[error("cannot replace {}", path.display())]
    Replace {
        /// The path.
        path: PathBuf,
        /// The reason.
        #[source]
        source: std::io::Error,
    },
    /// A key or chunk-grid error.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A data-model error.
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    /// A Zarr or CF coding error not tied to the input or the output.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A rechunk could not be planned (chunks that do not fit the memory
    /// budget, dimensions that do not match).
    #[error(transparent)]
    Rechunk(#[from] crate::rechunk::RechunkError),
    /// A statistic or grouper that is not known or does not fit.
    #[error(transparent)]
    Stats(#[from] crate::stats::StatsError),
    /// The pipeline run failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The report could not be printed.
    #[error("cannot print the report")]
    Report(#[from] std::io::Error),
    /// A self-check failed (a bug: please report it).
    #[error("check failed: {0}")]
    Check(String),
}

impl Error {
    /// The exit code of the `xbeam` CLI for this error (see the module
    /// docs); an element error of a run takes the code of the error the
    /// job returned for that element.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Refused { .. } | Error::Rechunk(_) | Error::Stats(_) => 2,
            Error::Input { .. }
            | Error::Incomplete { .. }
            | Error::Key(_)
            | Error::Chunk(_)
            | Error::Io(_) => 3,
            Error::Output { .. } | Error::Replace { .. } => 4,
            Error::Run(e) => e
                .cause()
                .and_then(|c| c.downcast_ref::<Error>())
                .map_or(5, Error::exit_code),
            Error::Report(_) | Error::Check(_) => 1,
        }
    }

    pub(crate) fn input(path: impl Into<PathBuf>) -> impl FnOnce(IoError) -> Error {
        let path = path.into();
        move |source| Error::Input { path, source }
    }

    pub(crate) fn output(path: impl Into<PathBuf>) -> impl FnOnce(IoError) -> Error {
        let path = path.into();
        move |source| Error::Output { path, source }
    }
}

/// Returns early with a usage error unless `cond` holds.
macro_rules! ensure_usage {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::error::Error::Usage(format!($($fmt)+)));
        }
    };
}
pub(crate) use ensure_usage;
