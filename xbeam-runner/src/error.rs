//! [`RunError`]: why a pipeline run failed.

/// Why a run failed. Messages name the transform and the element.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// User code returned an error for an element.
    #[error("transform {transform:?} failed on {element}: {message}")]
    Element {
        /// The transform's name.
        transform: String,
        /// A description of the element.
        element: String,
        /// The error.
        message: String,
    },
    /// User code panicked on an element.
    #[error("transform {transform:?} panicked on {element}: {message}")]
    Panic {
        /// The transform's name.
        transform: String,
        /// A description of the element.
        element: String,
        /// The panic message.
        message: String,
    },
    /// The pipeline itself is invalid (a duplicate name, an empty cluster).
    #[error("invalid pipeline: {0}")]
    Pipeline(String),
    /// A cluster peer could not be reached or went away.
    #[error("cluster: {0}")]
    Cluster(String),
    /// A worker thread died outside user code (for example in an
    /// element's `ByteSize`); the other workers were stopped.
    #[error("worker failed: {0}")]
    Worker(String),
    /// Spilling to or reading back from disk failed.
    #[error("spill: {0}")]
    Spill(String),
}
