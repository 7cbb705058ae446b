//! The one error type of rechunk planning.

/// Errors of rechunk planning. Messages that xarray-beam also raises read
/// exactly as its `ValueError`s do (tuples and dicts written as Python
/// writes them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RechunkError {
    /// Shapes and chunks have different numbers of dimensions.
    #[error("{what} {found} must have length {expected}")]
    Length {
        /// Which argument (`source_chunks`, `target_chunks`, ...).
        what: &'static str,
        /// The argument, as a Python tuple.
        found: String,
        /// The number of dimensions of the shape.
        expected: usize,
    },
    /// A chunk size of zero along a dimension that is not empty.
    #[error("{what} {found} has a chunk size of 0; chunk sizes must be positive")]
    ZeroChunk {
        /// Which argument.
        what: &'static str,
        /// The argument, as a Python tuple.
        found: String,
    },
    /// A chunk size of zero along a named dimension that is not empty.
    #[error("chunks {found} for dimension {dim} include a chunk size of 0; chunk sizes must be positive")]
    ZeroDimChunk {
        /// The dimension.
        dim: String,
        /// Its chunks, as Python writes them.
        found: String,
    },
    /// `chunk_limits` of `consolidate_chunks` has the wrong number of
    /// dimensions.
    #[error("chunk_limits {found} must have length {expected}")]
    LimitsLength {
        /// The limits, as a Python tuple.
        found: String,
        /// The number of dimensions of the shape.
        expected: usize,
    },
    /// A chunk limit smaller than the chunk it limits.
    #[error("Invalid chunk_limits {limits}.")]
    InvalidChunkLimits {
        /// The limits, as a Python tuple (`None` = not consolidated,
        /// `-1` = the whole axis).
        limits: String,
    },
    /// `consolidate_chunks` was given chunks larger than `max_mem`.
    #[error("chunk_mem {chunk_mem} > max_mem {max_mem}")]
    ChunkMem {
        /// Bytes of one chunk.
        chunk_mem: u128,
        /// The budget.
        max_mem: u64,
    },
    /// One source chunk does not fit in `max_mem`.
    #[error("Source chunk memory ({mem}) exceeds max_mem ({max_mem})")]
    SourceMem {
        /// Bytes of one (the largest) source chunk.
        mem: u128,
        /// The budget.
        max_mem: u64,
    },
    /// One target chunk does not fit in `max_mem`.
    #[error("Target chunk memory ({mem}) exceeds max_mem ({max_mem})")]
    TargetMem {
        /// Bytes of one (the largest) target chunk.
        mem: u128,
        /// The budget.
        max_mem: u64,
    },
    /// `min_mem` above `max_mem`.
    #[error("max_mem ({max_mem}) cannot be smaller than min_mem ({min_mem})")]
    MinMem {
        /// The smallest intermediate chunk asked for, in bytes.
        min_mem: u64,
        /// The budget.
        max_mem: u64,
    },
    /// No number of stages below [`MAX_STAGES`](crate::MAX_STAGES) reached
    /// `min_mem` (Rechunker's `AssertionError`; a bug if it happens).
    #[error(
        "Failed to find a feasible multi-staging rechunking scheme satisfying \
         min_mem ({min_mem}) and max_mem ({max_mem}) constraints. \
         Please file a bug report on GitHub: https://github.com/xbeam-rs/xbeam/issues\n\n\
         Include the following debugging info:\n\
         shape={shape}, source_chunks={source_chunks}, target_chunks={target_chunks}, \
         itemsize={itemsize}, min_mem={min_mem}, max_mem={max_mem}, \
         consolidate_reads=True, consolidate_writes=True"
    )]
    NoFeasiblePlan {
        /// The array shape, as a Python tuple.
        shape: String,
        /// The source chunks, as a Python tuple.
        source_chunks: String,
        /// The target chunks, as a Python tuple.
        target_chunks: String,
        /// Bytes per element.
        itemsize: u64,
        /// The smallest intermediate chunk asked for, in bytes.
        min_mem: u64,
        /// The budget.
        max_mem: u64,
    },
    /// Chunks named for a dimension that has no size.
    #[error(
        "all dimensions used in chunks must also have an indicated size: \
         chunks={chunks} vs dim_sizes={dim_sizes}"
    )]
    UnknownDims {
        /// The chunks, as a Python dict.
        chunks: String,
        /// The dimension sizes, as a Python dict.
        dim_sizes: String,
    },
    /// Source and target chunks name different dimensions.
    #[error(
        "source_chunks and target_chunks have different keys: {source_chunks} vs {target_chunks}"
    )]
    KeysDiffer {
        /// The source chunks, as a Python dict.
        source_chunks: String,
        /// The target chunks, as a Python dict.
        target_chunks: String,
    },
    /// Irregular chunk sizes that do not add up to their dimension.
    #[error("irregular chunks for dimension {dim} add up to {total}, not to its size {size}")]
    IrregularSum {
        /// The dimension.
        dim: String,
        /// What the sizes add up to.
        total: u64,
        /// The dimension's size.
        size: u64,
    },
}
