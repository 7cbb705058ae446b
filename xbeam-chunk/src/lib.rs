//! The in-memory labeled-array model of xbeam (the xarray data model) and
//! pure chunk operations.
//!
//! A [`Dataset`] holds named [`Variable`]s (an [`Array`] with named
//! dimensions, attributes and encoding) as data variables and coordinates.
//! A pipeline moves `(Key, Dataset)` chunks of a full dataset whose schema is
//! a [`Template`]. The [`chunks`] module splits and consolidates chunks
//! exactly as xarray-beam does, in memory and without an engine.
//!
//! ```
//! use xbeam_chunk::{chunks, Array, Dataset, Variable};
//! use xbeam_key::{ChunkSpec, Key};
//!
//! let ds = Dataset::new()
//!     .with_data_var("foo", Variable::new(["x"], Array::from_1d((0..10i64).collect()))?)?;
//!
//! // Split one chunk at multiples of 4, then put it back together.
//! let pieces = chunks::split_chunks(&Key::new(), &ds, &chunks::target_chunks([("x", ChunkSpec::Size(4))]))?;
//! let keys: Vec<String> = pieces.iter().map(|(k, _)| k.to_string()).collect();
//! assert_eq!(keys, ["Key(offsets={'x': 0})", "Key(offsets={'x': 4})", "Key(offsets={'x': 8})"]);
//!
//! let whole = chunks::consolidate_chunks(pieces)?;
//! assert_eq!(whole.len(), 1);
//! assert_eq!(whole[0].0, Key::from_offsets([("x", 0)]));
//! assert!(whole[0].1.identical(&ds));
//! # Ok::<(), xbeam_chunk::ChunkError>(())
//! ```

mod array;
pub mod calendar;
pub mod chunks;
pub mod codec;
mod dataset;
mod dispatch;
pub mod display;
mod dtype;
mod error;
mod fields;
mod size;
mod template;
mod variable;
mod wire;

pub use array::{Array, ArrayData, Reduction};
pub use dataset::{Dataset, Label, Labels, Variables};
pub use dtype::{DType, Element};
pub use error::ChunkError;
pub use fields::TimeField;
/// The `ndarray` version arrays are built on, re-exported so callers can
/// build [`Array`]s without naming a second dependency.
pub use ndarray;
pub use template::{DimReplacement, Template, VarSchema};
pub use variable::{Attrs, Variable};
