//! [`RunError`]: why a pipeline run failed.

use std::error::Error;
use std::sync::Arc;

/// An error from user code, kept with its own cause chain.
pub type Cause = Arc<dyn Error + Send + Sync + 'static>;

/// Why a run failed. Messages name the transform and the element; the
/// error user code returned stays reachable through [`Error::source`], so a
/// caller can walk the chain down to the real reason (a full disk, a
/// corrupt chunk file).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RunError {
    /// User code returned an error for an element.
    Element {
        /// The transform's name (scoped: `rechunk/stage 1/split`).
        transform: String,
        /// A description of the element.
        element: String,
        /// The error's message.
        message: String,
        /// The error itself; [`Error::source`] of the `RunError` continues
        /// with the error's own source (its message is already in ours).
        cause: Option<Cause>,
    },
    /// User code panicked on an element.
    Panic {
        /// The transform's name.
        transform: String,
        /// A description of the element.
        element: String,
        /// The panic message.
        message: String,
    },
    /// The pipeline itself is invalid (a duplicate name, an empty cluster).
    Pipeline(String),
    /// A cluster peer could not be reached or went away.
    Cluster(String),
    /// A worker thread died outside user code (for example in an
    /// element's `ByteSize`); the other workers were stopped.
    Worker(String),
    /// Spilling to or reading back from disk failed; [`Error::source`] is
    /// the IO error when there was one (a full disk, a missing directory).
    Spill {
        /// What failed, naming the transform and the file.
        message: String,
        /// The IO error.
        io: Option<Arc<std::io::Error>>,
    },
}

impl RunError {
    /// An element error from user code's error `e`.
    pub(crate) fn element(
        transform: &str,
        element: String,
        e: Box<dyn Error + Send + Sync + 'static>,
    ) -> RunError {
        let message = e.to_string();
        RunError::Element {
            transform: transform.to_owned(),
            element,
            message,
            cause: Some(Arc::from(e)),
        }
    }

    /// The error user code returned, if this is an element error: downcast
    /// it to get the typed error back.
    ///
    /// ```
    /// use xbeam_runner::{Pipeline, Runner};
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("odd number {0}")]
    /// struct Odd(u64);
    ///
    /// let p = Pipeline::new();
    /// p.create("numbers", vec![1u64]).map("even", |x| if x % 2 == 1 { Err(Odd(x)) } else { Ok(x) });
    /// let err = p.run(&Runner::local_with_workers(1).quiet()).unwrap_err();
    /// let odd = err.cause().and_then(|c| c.downcast_ref::<Odd>()).unwrap();
    /// assert_eq!(odd.0, 1);
    /// ```
    pub fn cause(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        match self {
            RunError::Element { cause: Some(c), .. } => Some(&**c),
            _ => None,
        }
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Element {
                transform,
                element,
                message,
                ..
            } => write!(f, "transform {transform:?} failed on {element}: {message}"),
            RunError::Panic {
                transform,
                element,
                message,
            } => write!(
                f,
                "transform {transform:?} panicked on {element}: {message}"
            ),
            RunError::Pipeline(m) => write!(f, "invalid pipeline: {m}"),
            RunError::Cluster(m) => write!(f, "cluster: {m}"),
            RunError::Worker(m) => write!(f, "worker failed: {m}"),
            RunError::Spill { message, .. } => write!(f, "spill: {message}"),
        }
    }
}

/// The source of an element error is the user's error's *own* source: the
/// user's message is already part of ours, so a chain printer shows each
/// reason once.
impl Error for RunError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            RunError::Element { cause: Some(c), .. } => c.source(),
            RunError::Spill { io: Some(e), .. } => Some(&**e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write chunk 3")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_below_the_users_message_is_kept() {
        let e = RunError::element(
            "write",
            "element 3".into(),
            Box::new(Outer(std::io::Error::other("no space left on device"))),
        );
        assert_eq!(
            e.to_string(),
            "transform \"write\" failed on element 3: cannot write chunk 3"
        );
        // the chain goes on below the user's message, which is not repeated
        let mut chain = Vec::new();
        let mut next = e.source();
        while let Some(c) = next {
            chain.push(c.to_string());
            next = c.source();
        }
        assert_eq!(chain, ["no space left on device"]);
        assert!(e.cause().unwrap().downcast_ref::<Outer>().is_some());
    }
}
