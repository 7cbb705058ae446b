//! Pure, in-memory chunk operations with xarray-beam's semantics and error
//! messages: split and consolidate chunks and variables, rechunk in memory,
//! validate a chunk against its key; and [`normalize_chunks`], which turns
//! what a user asks for (an [`xbeam_key::ChunksRequest`] such as
//! `time=-1,...=100MB`) into one chunk size per dimension.
//!
//! Beyond xarray-beam: chunk specs may be irregular
//! ([`ChunkSpec::Sizes`], e.g. one chunk per calendar year), and
//! [`consolidate_chunks_filled`] fills missing chunks instead of failing.

use indexmap::IndexMap;
use xbeam_key::{repr, ChunkSpec, Key, VarSet};

use crate::display::indent;
use crate::{ChunkError, Dataset};

mod assemble;
mod consolidate;
mod normalize;
mod split;
mod to_chunks;
mod validate;
mod variables;

pub use assemble::{Assembly, Extent};
pub use consolidate::{
    consolidate_chunks, consolidate_chunks_filled, consolidate_chunks_to, consolidate_fully,
    in_memory_rechunk, rounded_key, FillMissing,
};
pub use normalize::normalize_chunks;
pub use split::split_chunks;
pub use to_chunks::DatasetChunks;
pub use validate::validate_chunk;
pub use variables::{consolidate_variables, split_variables};

/// A keyed chunk: where it sits, and its data.
pub type Chunk = (Key, Dataset);

/// Chunk specs by dimension name (xarray-beam's `target_chunks`).
pub type TargetChunks = IndexMap<String, ChunkSpec>;

/// Builds [`TargetChunks`] from `(dimension, spec)` pairs.
///
/// ```
/// use xbeam_chunk::chunks::target_chunks;
/// use xbeam_key::ChunkSpec;
/// let t = target_chunks([("time", ChunkSpec::Size(24)), ("lat", ChunkSpec::Full)]);
/// assert_eq!(t["time"], ChunkSpec::Size(24));
/// ```
pub fn target_chunks<S: Into<String>>(
    specs: impl IntoIterator<Item = (S, ChunkSpec)>,
) -> TargetChunks {
    specs.into_iter().map(|(d, s)| (d.into(), s)).collect()
}

/// `vars` as xarray-beam prints them in messages: `None` or a set.
fn vars_repr(vars: Option<&VarSet>) -> String {
    vars.map_or_else(|| "None".to_owned(), repr::set)
}

/// Merges chunks with disjoint variables, with xarray-beam's message on
/// failure.
fn merge_chunks(datasets: &[&Dataset]) -> Result<Dataset, ChunkError> {
    Dataset::merge(datasets).map_err(|cause| {
        let all_vars: Vec<VarSet> = datasets
            .iter()
            .map(|d| d.data_vars().keys().cloned().collect())
            .collect();
        ChunkError::Chunks(format!(
            "merging dataset chunks with variables {} failed.\n{}\nCause: {cause}",
            consolidate::sets_repr(&all_vars),
            leading_reprs(datasets.iter().copied())
        ))
    })
}

/// The reprs of the first two datasets, indented, with `...` when there are
/// more (how xarray-beam shows what failed to combine).
fn leading_reprs<'a>(datasets: impl IntoIterator<Item = &'a Dataset>) -> String {
    let all: Vec<&Dataset> = datasets.into_iter().collect();
    let mut text = all
        .iter()
        .take(2)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    if all.len() > 2 {
        text.push_str("\n...");
    }
    indent(&text, "  ")
}
