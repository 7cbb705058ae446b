//! The error type of `xbeam-chunk`.

use crate::calendar::CalendarError;

/// Errors from the data model and chunk operations. Messages are lowercase
/// and name what was expected and what was found; the chunk-operation
/// messages follow xarray-beam's wording.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// Typed access asked for the wrong element type.
    #[error("expected an array of {expected}, found {found}")]
    WrongType {
        /// The dtype asked for.
        expected: String,
        /// The array's dtype.
        found: String,
    },
    /// A shape did not fit the data or the dimensions.
    #[error("{0}")]
    Shape(String),
    /// Dimension sizes disagree between variables.
    #[error(
        "conflicting sizes for dimension {dim}: {first} in existing variables vs {second} in {var}"
    )]
    SizeConflict {
        /// The dimension (quoted).
        dim: String,
        /// The size already known.
        first: u64,
        /// The size of the new variable.
        second: u64,
        /// The variable that disagreed (quoted).
        var: String,
    },
    /// A name (variable, coordinate or dimension) was not found.
    #[error("{what} {name} not found: expected one of {available}")]
    NotFound {
        /// What kind of name (`variable`, `dimension`, ...).
        what: &'static str,
        /// The name (quoted).
        name: String,
        /// What exists (a Python tuple).
        available: String,
    },
    /// An operation is not defined for a dtype.
    #[error("{op} is not supported for dtype {dtype}")]
    Unsupported {
        /// The operation.
        op: String,
        /// The dtype.
        dtype: String,
    },
    /// Datasets or arrays that must agree did not.
    #[error("{0}")]
    Mismatch(String),
    /// Chunk keys or chunks do not fit together (xarray-beam's
    /// consolidation, merge and validation messages).
    #[error("{0}")]
    Chunks(String),
    /// An invalid argument.
    #[error("{0}")]
    Invalid(String),
    /// A key or grid error.
    #[error(transparent)]
    Key(#[from] xbeam_key::KeyError),
    /// A calendar or time-units error.
    #[error(transparent)]
    Calendar(#[from] CalendarError),
}

/// Returns early with a [`ChunkError`] built from a format string.
macro_rules! bail {
    ($variant:ident, $($arg:tt)*) => {
        return Err($crate::ChunkError::$variant(format!($($arg)*)))
    };
}
pub(crate) use bail;

/// Returns early with a [`ChunkError`] unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $variant:ident, $($arg:tt)*) => {
        if !$cond {
            $crate::error::bail!($variant, $($arg)*);
        }
    };
}
pub(crate) use ensure;
