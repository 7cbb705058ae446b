//! The xbeam pipeline engine on timely-dataflow: [`Pipeline`] and
//! [`PCollection`], run in one process ([`Runner::local`], timely workers
//! as threads) or many ([`Runner::cluster`], timely's TCP exchange). It
//! knows nothing about arrays.
//!
//! - Transforms carry names: `create`, `source` (lazy, partitioned,
//!   throttled), `map`, `flat_map`, `filter` (fallible), `group_by_key`,
//!   `group_by_key_expecting`, `fold_by_key_expecting` (a [`FoldFn`]
//!   folds each value into its key's accumulator as it arrives),
//!   `combine_per_key` / `combine_globally` with a [`CombineFn`] (partial
//!   combine before the exchange), `flatten`, `reshuffle`, `for_each`,
//!   `collect`.
//! - Memory is bounded: sources keep a bounded number of bytes in flight
//!   per worker (probe-based flow control), and group-by-key holds groups up
//!   to a byte budget ([`ByteSize`]) and spills to disk beyond it; a fold
//!   makes accumulators only within that budget and groups the rest.
//! - A failing or panicking element stops the whole run; [`Pipeline::run`]
//!   returns the error with the transform's name and the element.
//! - [`Metrics`] per transform (elements, bytes, busy time) come back from
//!   `run`; progress is drawn on a terminal or given to a callback.
//!
//! ```
//! use xbeam_runner::{CombineFn, Pipeline, Runner};
//!
//! struct Sum;
//! impl CombineFn<u64> for Sum {
//!     type Acc = u64;
//!     type Out = u64;
//!     fn create(&self) -> u64 { 0 }
//!     fn add(&self, acc: u64, v: u64) -> u64 { acc + v }
//!     fn merge(&self, a: u64, b: u64) -> u64 { a + b }
//!     fn extract(&self, acc: u64) -> u64 { acc }
//! }
//!
//! let p = Pipeline::new();
//! let words = p.create("words", vec!["a b", "b c", "c c"].into_iter().map(String::from).collect());
//! let counts = words
//!     .flat_map("split", |line: String| {
//!         Ok::<_, String>(line.split(' ').map(|w| (w.to_owned(), 1u64)).collect::<Vec<_>>())
//!     })
//!     .combine_per_key("count", Sum)
//!     .collect("out");
//! let metrics = p.run(&Runner::local_with_workers(2).quiet())?;
//! let mut got = counts.take()?;
//! got.sort();
//! assert_eq!(got, vec![("a".into(), 1), ("b".into(), 2), ("c".into(), 3)]);
//! assert_eq!(metrics.get("split").unwrap().elements, 6);
//! # Ok::<(), xbeam_runner::RunError>(())
//! ```

mod driver;
mod erased;
mod error;
mod graph;
mod metrics;
mod ops;
mod pipeline;
mod progress;
mod runner;
pub mod scratch;
mod state;

pub use error::{Cause, RunError};
pub use metrics::{Metrics, TransformMetrics};
pub use pipeline::{Collected, CombineFn, Data, FoldFn, PCollection, Pipeline, Sum, Transform};
pub use runner::{ProgressFn, Runner};
pub use xbeam_size::ByteSize;
