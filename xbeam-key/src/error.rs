//! The error type of `xbeam-key`.

/// Errors from building keys and from chunk-grid arithmetic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// `without_offset` named a dimension the key has no offset for.
    #[error("cannot remove the offset of dimension {dim}: {key} has no offset for it")]
    MissingOffset {
        /// The dimension asked for (quoted).
        dim: String,
        /// The key, as displayed.
        key: String,
    },
    /// Explicit chunk sizes do not add up to the dimension's size.
    #[error("sum of provided chunks does not match size of dimension {dim}: {total} vs {size}")]
    ChunkSumMismatch {
        /// The dimension.
        dim: String,
        /// The sum of the provided chunk sizes.
        total: u64,
        /// The dimension's size.
        size: u64,
    },
    /// A chunk size of zero was given for a non-empty dimension.
    #[error("chunk sizes must be positive, but dimension {dim:?} has a chunk of size 0")]
    ZeroChunk {
        /// The dimension.
        dim: String,
    },
    /// A chunk spec would cut a dimension into more chunks than a grid holds.
    #[error(
        "dimension {dim} of size {size} in chunks of {chunk} would have more than {limit} chunks: \
         expected a larger chunk size"
    )]
    TooManyChunks {
        /// The dimension (quoted).
        dim: String,
        /// The dimension's size.
        size: u64,
        /// The chunk size.
        chunk: u64,
        /// The largest number of chunks per dimension.
        limit: u64,
    },
    /// A chunk specification names a dimension the dataset does not have.
    #[error("chunks key {dim} is not a dimension on the provided dataset(s)")]
    UnknownChunkDim {
        /// The dimension (quoted).
        dim: String,
    },
    /// Offsets were given for dimensions without sizes.
    #[error(
        "some dimensions have offsets specified but no dimension sizes: offsets={offsets} and sizes={sizes}"
    )]
    OffsetsWithoutSizes {
        /// The offsets, as a Python dict.
        offsets: String,
        /// The sizes, as a Python dict.
        sizes: String,
    },
    /// An offset lies before the base it is measured from.
    #[error("offset {offset} along dimension {dim} is before the base offset {base}")]
    OffsetBeforeBase {
        /// The dimension (quoted).
        dim: String,
        /// The offset.
        offset: u64,
        /// The base.
        base: u64,
    },
    /// An offset does not fall on a chunk boundary of the grid.
    #[error(
        "offset {offset} along dimension {dim} is not on a chunk boundary: expected one of {expected}"
    )]
    OffsetNotOnGrid {
        /// The dimension (quoted).
        dim: String,
        /// The offset.
        offset: u64,
        /// The boundaries (abbreviated when long).
        expected: String,
    },
    /// A grid lookup named a dimension the grid does not have.
    #[error("dimension {dim} is not part of the chunk grid with dimensions {dims}")]
    UnknownGridDim {
        /// The dimension (quoted).
        dim: String,
        /// The grid's dimensions (a tuple).
        dims: String,
    },
    /// Chunks written as text (`time=24,latitude=-1`, `100MB`) did not
    /// parse.
    #[error("expected {expected}, found {found}")]
    Parse {
        /// What the text should look like.
        expected: String,
        /// What was found (quoted).
        found: String,
    },
    /// A chunks request needs a dataset to resolve (byte targets, `auto`,
    /// `...`) where fixed chunk sizes were expected.
    #[error("expected fixed chunk sizes per dimension, found {found}: byte targets and `...` need normalize_chunks and a template")]
    NotFixed {
        /// The request (as written).
        found: String,
    },
    /// A binary key encoding was malformed.
    #[error("cannot decode key: {0}")]
    Decode(String),
}
