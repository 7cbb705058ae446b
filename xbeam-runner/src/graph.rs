//! The pipeline graph: nodes (sources and operators) with their inputs, as
//! built by [`Pipeline`](crate::Pipeline) and run by the driver.

use std::sync::{Arc, Mutex};

use timely::dataflow::Stream;

use crate::erased::Erased;
use crate::state::Ctx;
use crate::RunError;

/// Every stream carries type-erased elements; timestamps are rounds of
/// source input.
pub(crate) type S<'s> = Stream<'s, u64, Vec<Erased>>;

/// Builds one node's operator from its inputs' streams.
pub(crate) type Build = Arc<dyn for<'s> Fn(&Ctx, Vec<S<'s>>) -> S<'s> + Send + Sync>;

/// A lazily generated source element: `index` in `0..count` → element and
/// its size in bytes.
pub(crate) type Generate = Arc<dyn Fn(u64) -> Result<(Erased, u64), RunError> + Send + Sync>;

/// How many values a key's group holds ([`PCollection::group_by_key_expecting`](crate::PCollection::group_by_key_expecting)).
pub(crate) type Expect<K> = Arc<dyn Fn(&K) -> usize + Send + Sync>;

pub(crate) enum NodeKind {
    /// Elements `0..count`, split across workers by index.
    Source { count: u64, generate: Generate },
    /// An operator on its inputs' streams.
    Op {
        build: Build,
        /// Holds all input until the end (group-by-key, combine).
        barrier: bool,
    },
}

pub(crate) struct Node {
    /// The full, scoped name (`rechunk/stage 1/split`).
    pub(crate) name: String,
    pub(crate) inputs: Vec<usize>,
    pub(crate) kind: NodeKind,
}

impl Node {
    pub(crate) fn is_barrier(&self) -> bool {
        matches!(self.kind, NodeKind::Op { barrier: true, .. })
    }
}

/// The graph under construction: nodes in the order they were added, the
/// errors found while building (reported by `run`), the collect slots and
/// the stack of composite-transform scopes names are prefixed with.
#[derive(Default)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<Arc<Node>>,
    pub(crate) errors: Vec<String>,
    pub(crate) collects: Vec<Arc<Mutex<Vec<Erased>>>>,
    pub(crate) scope: Vec<String>,
}

impl Graph {
    /// `name` inside the current scope.
    pub(crate) fn scoped(&self, name: &str) -> String {
        if self.scope.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.scope.join("/"))
        }
    }
}
