//! [`ConsolidateChunks`]: put pieces back together into target chunks.

use std::sync::Arc;

use super::split_chunks::specs_for;
use super::{canonical_key, Chunks};
use crate::chunk::chunks::{
    consolidate_chunks, consolidate_chunks_filled, rounded_key, Assembly, Chunk, Extent,
    FillMissing, TargetChunks,
};
use crate::chunk::{ChunkError, Dataset, Template};
use crate::key::{ChunkGrid, Key};
use crate::runner::FoldFn;

/// How many pieces make the target chunk of a key.
type Expected = Arc<dyn Fn(&Key) -> usize + Send + Sync>;

/// Groups chunks by their target chunk (offsets rounded down to the target
/// boundaries; dimensions without a target spec keep their offset) and
/// consolidates each group, as xarray-beam's `ConsolidateChunks`. Stricter
/// than upstream: a group that lacks the piece starting its target chunk,
/// or whose pieces do not tile it, is an error naming the keys.
///
/// When the source grid is known ([`ConsolidateChunks::from_grid`]), each
/// target chunk is assembled in place as its pieces arrive (within the
/// group budget each element is copied once, straight from the chunk it was
/// split from: see [`Assembly`]) and emitted as soon as all its pieces are
/// in, so memory
/// holds only the chunks in progress; beyond the runner's group budget,
/// pieces wait in groups that spill to disk. Missing pieces can be filled
/// with a fill value ([`ConsolidateChunks::fill_missing`]) instead of
/// failing.
///
/// ```
/// use xbeam::prelude::*;
/// use xbeam::transforms::ConsolidateChunks;
///
/// let piece = |x: u64, v: Vec<i64>| -> Result<(Key, Dataset), ChunkError> {
///     let ds = Dataset::new().with_data_var("foo", Variable::new(["x"], Array::from_1d(v))?)?;
///     Ok((Key::from_offsets([("x", x)]), ds))
/// };
/// let p = Pipeline::new();
/// let whole = p
///     .create("pieces", vec![piece(0, vec![0, 1, 2])?, piece(3, vec![3, 4])?])
///     .apply("consolidate", ConsolidateChunks::new(target_chunks([("x", ChunkSpec::Full)])))
///     .collect("out");
/// p.run(&Runner::local_with_workers(2).quiet())?;
/// let whole = whole.take()?;
/// assert_eq!(whole.len(), 1);
/// assert_eq!(whole[0].1.sizes()["x"], 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ConsolidateChunks {
    target: TargetChunks,
    expected: Option<Expected>,
    /// The grid of target chunks, when known: each is then assembled in
    /// place as its pieces arrive ([`Assembly`]).
    grid: Option<Arc<ChunkGrid>>,
    fill: Option<Arc<Fill>>,
}

/// What [`ConsolidateChunks::fill_missing`] fills with.
#[derive(Debug)]
struct Fill {
    template: Template,
    source: ChunkGrid,
    value: f64,
}

impl std::fmt::Debug for ConsolidateChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsolidateChunks")
            .field("target", &self.target)
            .field("emits_early", &self.expected.is_some())
            .finish_non_exhaustive()
    }
}

impl ConsolidateChunks {
    /// Consolidates into `target` chunks.
    pub fn new(target: TargetChunks) -> ConsolidateChunks {
        ConsolidateChunks {
            target,
            expected: None,
            grid: None,
            fill: None,
        }
    }

    /// Consolidates pieces of chunks from `source` (the grid the chunks
    /// were read on) that were split at the boundaries of `target`: each
    /// target chunk is emitted as soon as its pieces are all there.
    pub fn from_grid(
        source: ChunkGrid,
        target: TargetChunks,
    ) -> Result<ConsolidateChunks, crate::Error> {
        let target_grid = ChunkGrid::new(
            source
                .chunks()
                .iter()
                .map(|(d, c)| (d.clone(), c.iter().sum::<u64>())),
            target.iter().map(|(d, s)| (d.as_str(), s.clone())),
        )?;
        let grid = Arc::new(target_grid);
        let expected: Expected = {
            let grid = grid.clone();
            Arc::new(move |key: &Key| pieces_in(&source, &grid, key))
        };
        Ok(ConsolidateChunks {
            target,
            expected: Some(expected),
            grid: Some(grid),
            fill: None,
        })
    }

    /// Emits a group as soon as it holds `expected(rounded key)` pieces.
    pub fn expecting(
        mut self,
        expected: impl Fn(&Key) -> usize + Send + Sync + 'static,
    ) -> ConsolidateChunks {
        self.expected = Some(Arc::new(expected));
        self
    }

    /// Fills the pieces of `source` chunks that never arrive with
    /// `fill_value` (NaN for floats and datetimes; integer variables need a
    /// number), shaped and labelled by `template`, instead of failing (see
    /// [`consolidate_chunks_filled`]).
    pub fn fill_missing(
        mut self,
        template: Template,
        source: ChunkGrid,
        fill_value: f64,
    ) -> ConsolidateChunks {
        self.fill = Some(Arc::new(Fill {
            template,
            source,
            value: fill_value,
        }));
        self
    }
}

/// How many pieces of `source` chunks, split at the boundaries of `target`,
/// lie in the target chunk starting at `key`: per dimension, the source
/// chunks that overlap it.
fn pieces_in(source: &ChunkGrid, target: &ChunkGrid, key: &Key) -> usize {
    let mut n = 1usize;
    for (dim, &start) in key.offsets() {
        let (Ok(sizes), Ok(len)) = (source.chunk_sizes(dim), target.chunk_size(dim, start)) else {
            continue;
        };
        let end = start + len;
        let mut lo = 0u64;
        let mut count = 0usize;
        for &s in sizes {
            let hi = lo + s;
            if lo < end && hi > start {
                count += 1;
            }
            lo = hi;
        }
        n *= count.max(1);
    }
    n
}

impl crate::runner::Transform<Chunks> for ConsolidateChunks {
    type Output = Chunks;

    fn expand(self, input: Chunks) -> Chunks {
        let target = Arc::new(self.target);
        if let (Some(expected), Some(grid), None) = (self.expected.clone(), self.grid, &self.fill) {
            return assemble_in_place(&input, target, expected, grid);
        }
        let keyed = {
            let target = target.clone();
            input.map("key by target chunk", move |(key, ds): (Key, Dataset)| {
                let rounded = target_key(&target, &key, &ds);
                // a piece waits in its group: it must hold only its own
                // bytes, not the whole chunk it was split from
                Ok::<_, ChunkError>((rounded.encode(), (key, ds.compact())))
            })
        };
        let groups = match self.expected {
            Some(expected) => keyed.group_by_key_expecting("group", move |k: &Vec<u8>| {
                Key::decode(k).map_or(usize::MAX, |k| expected(&k))
            }),
            None => keyed.group_by_key("group"),
        };
        let fill = self.fill;
        groups.map("consolidate", move |(rounded, pieces): (Vec<u8>, Vec<(Key, Dataset)>)| {
            let rounded = Key::decode(&rounded).map_err(ChunkError::from)?;
            let mut out = match &fill {
                Some(fill) => consolidate_chunks_filled(
                    pieces,
                    &FillMissing {
                        template: &fill.template,
                        source_chunks: &fill.source,
                        target_chunks: &target,
                        fill_value: fill.value,
                    },
                )?,
                None => consolidate_chunks(pieces)?,
            };
            if out.len() != 1 || canonical_key(&out[0].0) != rounded {
                let keys: Vec<String> = out.iter().map(|(k, _)| k.to_string()).collect();
                return Err(ChunkError::Chunks(format!(
                    "consolidating the chunks of target chunk {rounded} gave {}: the chunk that starts the target chunk is missing, or the pieces belong to different variables",
                    keys.join(", ")
                )));
            }
            Ok(out.remove(0))
        })
    }
}

/// The key of the target chunk a piece keyed `key` belongs to, in the
/// canonical form that groups compare.
fn target_key(target: &TargetChunks, key: &Key, ds: &Dataset) -> Key {
    canonical_key(&rounded_key(key, &specs_for(target, ds)))
}

/// Consolidates by assembling each target chunk in place as its pieces
/// arrive: within the group budget each piece is copied once, straight from
/// the chunk it was split from, instead of being copied out to wait in its
/// group and copied again when the group is consolidated. The pieces of
/// target chunks beyond the budget wait in groups (compacted, spilled to
/// disk) and are assembled when complete.
fn assemble_in_place(
    input: &Chunks,
    target: Arc<TargetChunks>,
    expected: Expected,
    grid: Arc<ChunkGrid>,
) -> Chunks {
    let keyed = {
        let target = target.clone();
        input.map("key by target chunk", move |(key, ds): (Key, Dataset)| {
            Ok::<_, ChunkError>((target_key(&target, &key, &ds), (key, ds)))
        })
    };
    keyed
        .fold_by_key_expecting(
            "assemble",
            move |k: &Key| expected(k),
            Assemble { target, grid },
        )
        .map("chunks", |(_, chunk): (Key, Chunk)| {
            Ok::<_, ChunkError>(chunk)
        })
}

/// The fold that assembles target chunks ([`Assembly`]) on `grid`.
struct Assemble {
    target: Arc<TargetChunks>,
    grid: Arc<ChunkGrid>,
}

impl Assemble {
    /// The target chunk of a piece: its key, and its start and length
    /// along each dimension consolidated. A piece off the grid is an error.
    fn target_of(&self, key: &Key, ds: &Dataset) -> Result<(Key, Vec<Extent>), ChunkError> {
        let specs = specs_for(&self.target, ds);
        let rounded = rounded_key(key, &specs);
        let extents = rounded
            .offsets()
            .iter()
            .filter(|(d, _)| specs.contains_key(*d))
            .map(|(d, &start)| {
                let len = self.grid.chunk_size(d, start).map_err(|e| {
                    ChunkError::Chunks(format!(
                        "the chunk {key} is not on the grid of target chunks: {e}"
                    ))
                })?;
                Ok((d.clone(), start, len))
            })
            .collect::<Result<_, ChunkError>>()?;
        Ok((rounded, extents))
    }
}

impl FoldFn<Key, Chunk> for Assemble {
    type Acc = Assembly;
    type Out = Chunk;
    type Error = ChunkError;

    fn size_hint(&self, _: &Key, (key, ds): &Chunk) -> Option<usize> {
        // a piece off the grid waits in a group, and fails in `create`
        let (_, extents) = self.target_of(key, ds).ok()?;
        Some(Assembly::nbytes_for(&extents, ds))
    }

    fn hold(&self, (key, ds): Chunk) -> Chunk {
        // a piece waiting in its group must hold only its own bytes, not
        // the whole chunk it was split from
        (key, ds.compact())
    }

    fn create(&self, _: &Key, (key, ds): Chunk) -> Result<Assembly, ChunkError> {
        let (rounded, extents) = self.target_of(&key, &ds)?;
        Assembly::new(rounded, &extents, &key, &ds)
    }

    fn add(&self, acc: &mut Assembly, (key, ds): Chunk) -> Result<(), ChunkError> {
        acc.add(&key, &ds)
    }

    fn extract(&self, _: &Key, acc: Assembly) -> Result<Chunk, ChunkError> {
        acc.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::ChunkSpec;

    #[test]
    fn pieces_of_a_target_chunk_are_counted_from_the_source_grid() {
        let source = ChunkGrid::new([("t", 10u64), ("x", 6)], [("t", ChunkSpec::Size(3))]).unwrap();
        let target = ChunkGrid::new(
            [("t", 10u64), ("x", 6)],
            [("t", ChunkSpec::Full), ("x", ChunkSpec::Size(2))],
        )
        .unwrap();
        // t: source chunks 0-3, 3-6, 6-9, 9-10 all overlap the one target chunk
        assert_eq!(
            pieces_in(&source, &target, &Key::from_offsets([("t", 0), ("x", 2)])),
            4
        );
        let target = ChunkGrid::new([("t", 10u64), ("x", 6)], [("t", ChunkSpec::Size(5))]).unwrap();
        // t 5..10 overlaps 3-6, 6-9, 9-10
        assert_eq!(
            pieces_in(&source, &target, &Key::from_offsets([("t", 5), ("x", 0)])),
            3
        );
    }
}
