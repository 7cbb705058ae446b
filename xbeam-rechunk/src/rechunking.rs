//! The plan a rechunk executes: named dimensions, regular or irregular
//! source and target chunks, and the stages between them.

use std::borrow::Borrow;

use xbeam_key::ChunkSpec;

use crate::chunks::{named, normalize_chunks, DimChunks};
use crate::error::RechunkError;
use crate::io_ops::pieces;
use crate::plan::{chunkings_repr, multistage_rechunking_plan, ExcessiveIo, Plan};
use crate::pyrepr;
use crate::stage::RechunkStage;

/// xarray-beam's default `max_mem`: 1 GiB.
pub const DEFAULT_MAX_MEM: u64 = 1 << 30;

/// A rechunk to plan: named dimensions and their sizes, source and target
/// chunks, bytes per element and the memory budget (xarray-beam's
/// `Rechunk(dim_sizes, source_chunks, target_chunks, itemsize, min_mem,
/// max_mem)`). [`plan`](Rechunking::plan) makes the [`RechunkPlan`].
///
/// `itemsize` is the bytes of one element of all variables together (e.g.
/// `4 * n_vars` for float32 variables), so that `itemsize` times the
/// elements of a chunk is the memory of a chunk.
///
/// ```
/// use xbeam_rechunk::{DimChunks::Regular, Rechunking};
///
/// let plan = Rechunking::new(
///     [("time", 10), ("x", 20), ("y", 30)],
///     vec![Regular(1), Regular(20), Regular(30)],
///     vec![Regular(10), Regular(5), Regular(5)],
///     8,
/// )
/// .with_max_mem(10_000)
/// .plan()?;
/// assert_eq!(plan.stages().len(), 3);
/// # Ok::<(), xbeam_rechunk::RechunkError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rechunking {
    dims: Vec<String>,
    shape: Vec<u64>,
    source: Vec<DimChunks>,
    target: Vec<DimChunks>,
    itemsize: u64,
    min_mem: Option<u64>,
    max_mem: u64,
}

impl Rechunking {
    /// A rechunk of an array with `dim_sizes` (name and size per dimension,
    /// in order) from `source` to `target` chunks (one per dimension, in
    /// the same order), `itemsize` bytes per element, with the default
    /// budget ([`DEFAULT_MAX_MEM`], `min_mem` a hundredth of it).
    ///
    /// ```
    /// use xbeam_rechunk::{DimChunks::Regular, Rechunking, DEFAULT_MAX_MEM};
    /// let r = Rechunking::new([("x", 100)], vec![Regular(5)], vec![Regular(7)], 1);
    /// assert_eq!(r.max_mem(), DEFAULT_MAX_MEM);
    /// assert_eq!(r.min_mem(), DEFAULT_MAX_MEM / 100);
    /// ```
    pub fn new<K: AsRef<str>, N: Borrow<u64>>(
        dim_sizes: impl IntoIterator<Item = (K, N)>,
        source: Vec<DimChunks>,
        target: Vec<DimChunks>,
        itemsize: u64,
    ) -> Rechunking {
        let (dims, shape) = named::<K, N, u64>(dim_sizes).into_iter().unzip();
        Rechunking {
            dims,
            shape,
            source,
            target,
            itemsize,
            min_mem: None,
            max_mem: DEFAULT_MAX_MEM,
        }
    }

    /// A rechunk from chunk requests keyed by dimension name, as
    /// xarray-beam's `Rechunk` takes them: both requests must name the same
    /// dimensions, and each is normalized with [`normalize_chunks`]
    /// (missing or `-1` is the whole dimension).
    ///
    /// ```
    /// use xbeam_key::ChunkSpec;
    /// use xbeam_rechunk::{DimChunks::Regular, Rechunking};
    ///
    /// let sizes = [("time", 10), ("x", 20)];
    /// let r = Rechunking::from_named(
    ///     sizes,
    ///     [("time", ChunkSpec::Size(1)), ("x", ChunkSpec::Full)],
    ///     [("time", ChunkSpec::Full), ("x", ChunkSpec::Size(5))],
    ///     4,
    /// )?;
    /// assert_eq!(r.source(), &[Regular(1), Regular(20)]);
    /// assert_eq!(r.target(), &[Regular(10), Regular(5)]);
    ///
    /// let err = Rechunking::from_named(sizes, [("x", ChunkSpec::Size(2))], [("time", ChunkSpec::Size(2))], 4);
    /// assert_eq!(
    ///     err.unwrap_err().to_string(),
    ///     "source_chunks and target_chunks have different keys: {'x': 2} vs {'time': 2}",
    /// );
    /// # Ok::<(), xbeam_rechunk::RechunkError>(())
    /// ```
    pub fn from_named<K1, N, K2, C, K3, D>(
        dim_sizes: impl IntoIterator<Item = (K1, N)>,
        source: impl IntoIterator<Item = (K2, C)>,
        target: impl IntoIterator<Item = (K3, D)>,
        itemsize: u64,
    ) -> Result<Rechunking, RechunkError>
    where
        K1: AsRef<str>,
        N: Borrow<u64>,
        K2: AsRef<str>,
        C: Borrow<ChunkSpec>,
        K3: AsRef<str>,
        D: Borrow<ChunkSpec>,
    {
        let dim_sizes = named::<K1, N, u64>(dim_sizes);
        let source = named::<K2, C, ChunkSpec>(source);
        let target = named::<K3, D, ChunkSpec>(target);
        let same_keys = source.len() == target.len()
            && source
                .iter()
                .all(|(k, _)| target.iter().any(|(t, _)| t == k));
        if !same_keys {
            return Err(RechunkError::KeysDiffer {
                source_chunks: pyrepr::spec_dict(&source),
                target_chunks: pyrepr::spec_dict(&target),
            });
        }
        let sizes = || dim_sizes.iter().map(|(k, n)| (k, *n));
        let source = normalize_chunks(sizes(), source.iter().map(|(k, c)| (k, c)))?;
        let target = normalize_chunks(sizes(), target.iter().map(|(k, c)| (k, c)))?;
        Ok(Rechunking::new(sizes(), source, target, itemsize))
    }

    /// The same rechunk with a budget of `max_mem` bytes per chunk.
    ///
    /// ```
    /// use xbeam_rechunk::{DimChunks::Regular, Rechunking};
    /// let r = Rechunking::new([("x", 100)], vec![Regular(5)], vec![Regular(7)], 1);
    /// assert_eq!(r.with_max_mem(20).max_mem(), 20);
    /// ```
    pub fn with_max_mem(mut self, max_mem: u64) -> Rechunking {
        self.max_mem = max_mem;
        self
    }

    /// The same rechunk asking for intermediate pieces of at least
    /// `min_mem` bytes (default: a hundredth of `max_mem`).
    ///
    /// ```
    /// use xbeam_rechunk::{DimChunks::Regular, Rechunking};
    /// let r = Rechunking::new([("x", 100)], vec![Regular(5)], vec![Regular(7)], 1);
    /// assert_eq!(r.with_min_mem(3).min_mem(), 3);
    /// ```
    pub fn with_min_mem(mut self, min_mem: u64) -> Rechunking {
        self.min_mem = Some(min_mem);
        self
    }

    /// The dimension names, in order.
    pub fn dims(&self) -> &[String] {
        &self.dims
    }

    /// The dimension sizes, in order.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// The source chunks, one per dimension.
    pub fn source(&self) -> &[DimChunks] {
        &self.source
    }

    /// The target chunks, one per dimension.
    pub fn target(&self) -> &[DimChunks] {
        &self.target
    }

    /// Bytes per element.
    pub fn itemsize(&self) -> u64 {
        self.itemsize
    }

    /// The budget: bytes one chunk may hold.
    pub fn max_mem(&self) -> u64 {
        self.max_mem
    }

    /// The smallest intermediate piece asked for, in bytes.
    pub fn min_mem(&self) -> u64 {
        self.min_mem.unwrap_or(self.max_mem / 100)
    }

    /// The plan: the stages to execute, each within `max_mem`.
    ///
    /// Equal source and target chunks (or an empty array) need no stage.
    /// Otherwise the Rechunker multi-stage plan is made on the regular
    /// envelope of the chunks (per dimension the largest chunk, at most the
    /// dimension), and the executed stages are
    /// `source → read → stage 1 → … → write → target`; along irregular
    /// dimensions the read chunks are whole source chunks grouped up to the
    /// envelope's read size and the write chunks whole target chunks
    /// grouped up to its write size (see the crate docs on irregular
    /// chunks). For regular chunks (no larger than their dimension) this is
    /// exactly xarray-beam's `Rechunk`.
    ///
    /// ```
    /// use xbeam_rechunk::{DimChunks::{Irregular, Regular}, Rechunking};
    ///
    /// // Two years of daily data, a chunk per year, to 30-day chunks.
    /// let plan = Rechunking::new(
    ///     [("time", 731), ("x", 100)],
    ///     vec![Irregular(vec![366, 365]), Regular(100)],
    ///     vec![Regular(30), Regular(100)],
    ///     4,
    /// )
    /// .with_max_mem(1_000_000)
    /// .plan()?;
    /// assert_eq!(plan.stages().first().unwrap().source, plan.source());
    /// assert_eq!(plan.stages().last().unwrap().target, plan.target());
    /// assert!(plan.peak_mem() <= 1_000_000);
    /// # Ok::<(), xbeam_rechunk::RechunkError>(())
    /// ```
    pub fn plan(&self) -> Result<RechunkPlan, RechunkError> {
        let ndim = self.shape.len();
        for (what, chunks) in [
            ("source_chunks", &self.source),
            ("target_chunks", &self.target),
        ] {
            if chunks.len() != ndim {
                return Err(RechunkError::Length {
                    what,
                    found: chunkings_repr(chunks),
                    expected: ndim,
                });
            }
            for ((dim, &n), c) in self.dims.iter().zip(&self.shape).zip(chunks) {
                c.validate(dim, n)?;
            }
        }
        let mut plan = RechunkPlan {
            rechunking: self.clone(),
            multistage: None,
            stages: Vec::new(),
        };
        if self.source == self.target || self.shape.contains(&0) {
            return Ok(plan);
        }
        let envelope = |chunks: &[DimChunks]| -> Vec<u64> {
            chunks
                .iter()
                .zip(&self.shape)
                .map(|(c, &n)| c.max_chunk().min(n))
                .collect()
        };
        let multistage = multistage_rechunking_plan(
            &self.shape,
            &envelope(&self.source),
            &envelope(&self.target),
            self.itemsize,
            self.min_mem(),
            self.max_mem,
        )?;
        plan.stages = executed_stages(&self.source, &self.target, &multistage);
        plan.multistage = Some(multistage);
        Ok(plan)
    }
}

/// The chain `source → read → … → write → target` as consecutive stages,
/// with read and write fitted to irregular source and target chunks.
fn executed_stages(
    source: &[DimChunks],
    target: &[DimChunks],
    multistage: &Plan,
) -> Vec<RechunkStage> {
    let (Some(first), Some(last)) = (multistage.stages.first(), multistage.stages.last()) else {
        return Vec::new();
    };
    let regular = |chunks: &[u64]| chunks.iter().map(|&c| DimChunks::Regular(c)).collect();
    let mut chain: Vec<Vec<DimChunks>> = vec![source.to_vec(), fit(source, &first.read)];
    let middle = &multistage.stages[..multistage.stages.len() - 1];
    chain.extend(middle.iter().map(|stage| regular(&stage.write)));
    chain.push(fit(target, &last.write));
    chain.push(target.to_vec());
    chain
        .windows(2)
        .map(|pair| RechunkStage::new(pair[0].clone(), pair[1].clone()))
        .collect()
}

/// Chunks of the envelope's sizes, except along irregular dimensions of
/// `requested`: there, whole requested chunks grouped up to the envelope's
/// size, so no requested chunk is cut.
fn fit(requested: &[DimChunks], envelope: &[u64]) -> Vec<DimChunks> {
    requested
        .iter()
        .zip(envelope)
        .map(|(chunks, &size)| match chunks {
            DimChunks::Irregular(sizes) => DimChunks::from_sizes(&group(sizes, size)),
            DimChunks::Regular(_) => DimChunks::Regular(size),
        })
        .collect()
}

/// Consecutive `sizes` summed greedily into groups of at most `limit`
/// (a size above `limit` is a group by itself).
fn group(sizes: &[u64], limit: u64) -> Vec<u64> {
    let mut groups = Vec::new();
    let mut current = 0u64;
    for &c in sizes {
        if current > 0 && current.saturating_add(c) > limit {
            groups.push(current);
            current = 0;
        }
        current += c;
    }
    if current > 0 {
        groups.push(current);
    }
    groups
}

/// Bytes of the largest chunk of a chunking: `itemsize` times the product
/// of the largest chunk per dimension (each at most its dimension).
///
/// ```
/// use xbeam_rechunk::{chunking_mem, DimChunks::{Irregular, Regular}};
/// let years = [Irregular(vec![365, 366]), Regular(10)];
/// assert_eq!(chunking_mem(&[731, 10], &years, 4), 366 * 10 * 4);
/// assert_eq!(chunking_mem(&[731, 10], &[Regular(1000), Regular(10)], 4), 731 * 10 * 4);
/// ```
pub fn chunking_mem(shape: &[u64], chunks: &[DimChunks], itemsize: u64) -> u128 {
    chunks
        .iter()
        .zip(shape)
        .fold(u128::from(itemsize), |acc, (c, &n)| {
            acc.saturating_mul(u128::from(c.max_chunk().min(n)))
        })
}

/// The plan of a [`Rechunking`]: the stages to execute, in order, and what
/// each moves. Its `Display` is the dry-run report.
///
/// ```
/// use xbeam_rechunk::{DimChunks::Regular, Rechunking};
///
/// // xarray-beam's 1-D example: chunks of 5 to chunks of 7 under 20 bytes.
/// let plan = Rechunking::new([("x", 100)], vec![Regular(5)], vec![Regular(7)], 1)
///     .with_max_mem(20)
///     .plan()?;
/// let chunks: Vec<_> = plan.stages().iter().map(|s| (s.source[0].clone(), s.target[0].clone())).collect();
/// assert_eq!(chunks, [(Regular(5), Regular(14)), (Regular(14), Regular(14)), (Regular(14), Regular(7))]);
/// assert!(plan.stages()[1].is_noop());
/// # Ok::<(), xbeam_rechunk::RechunkError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RechunkPlan {
    rechunking: Rechunking,
    multistage: Option<Plan>,
    stages: Vec<RechunkStage>,
}

/// What one executed stage moves: tasks, bytes and memory.
///
/// ```
/// use xbeam_rechunk::{DimChunks::Regular, Rechunking};
///
/// let plan = Rechunking::new([("x", 100)], vec![Regular(5)], vec![Regular(7)], 1)
///     .with_max_mem(20)
///     .plan()?;
/// let first = &plan.summaries()[0];
/// // 20 chunks of 5 cut at multiples of 14 make 26 pieces, gathered into 8 chunks.
/// assert_eq!((first.chunks_read, first.pieces, first.chunks_written), (20, 26, 8));
/// assert_eq!(first.bytes, 100);
/// assert_eq!(first.mem(), 14);
/// # Ok::<(), xbeam_rechunk::RechunkError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StageSummary {
    /// Whether source chunks are split at target boundaries.
    pub split: bool,
    /// Whether pieces are consolidated into target chunks (a shuffle).
    pub consolidate: bool,
    /// Source chunks the stage receives.
    pub chunks_read: u64,
    /// Pieces it cuts them into: the distinct (source chunk, target chunk)
    /// pairs ([`stage_io_ops`](crate::stage_io_ops)).
    pub pieces: u64,
    /// Target chunks it emits.
    pub chunks_written: u64,
    /// Bytes that pass through the stage: the whole array, or nothing for
    /// a stage with nothing to do.
    pub bytes: u128,
    /// Bytes of the largest source chunk.
    pub source_chunk_mem: u128,
    /// Bytes of the largest target chunk.
    pub target_chunk_mem: u128,
}

impl StageSummary {
    /// The memory one task of the stage holds: the larger of a source chunk
    /// being split and a target chunk being consolidated (0 for a stage
    /// with nothing to do).
    pub fn mem(&self) -> u128 {
        if self.split || self.consolidate {
            self.source_chunk_mem.max(self.target_chunk_mem)
        } else {
            0
        }
    }
}

impl RechunkPlan {
    /// The rechunk this plan is for.
    pub fn rechunking(&self) -> &Rechunking {
        &self.rechunking
    }

    /// The dimension names, in order.
    pub fn dims(&self) -> &[String] {
        &self.rechunking.dims
    }

    /// The dimension sizes, in order.
    pub fn shape(&self) -> &[u64] {
        &self.rechunking.shape
    }

    /// The source chunks, one per dimension.
    pub fn source(&self) -> &[DimChunks] {
        &self.rechunking.source
    }

    /// The target chunks, one per dimension.
    pub fn target(&self) -> &[DimChunks] {
        &self.rechunking.target
    }

    /// The stages to execute, in order (`Stage0`, `Stage1`, ... in
    /// xarray-beam); empty when there is nothing to do.
    pub fn stages(&self) -> &[RechunkStage] {
        &self.stages
    }

    /// The Rechunker multi-stage plan on the regular envelope of the chunks
    /// (`None` when no stage is needed). With regular chunks it is what
    /// [`multistage_rechunking_plan`] returns.
    ///
    /// ```
    /// use xbeam_rechunk::{multistage_rechunking_plan, DimChunks::Regular, Rechunking};
    ///
    /// let plan = Rechunking::new([("x", 100)], vec![Regular(5)], vec![Regular(7)], 1)
    ///     .with_max_mem(20)
    ///     .plan()?;
    /// let expected = multistage_rechunking_plan(&[100], &[5], &[7], 1, 0, 20)?;
    /// assert_eq!(plan.multistage(), Some(&expected));
    /// # Ok::<(), xbeam_rechunk::RechunkError>(())
    /// ```
    pub fn multistage(&self) -> Option<&Plan> {
        self.multistage.as_ref()
    }

    /// The warning of the plan search, if it stopped short of `min_mem`.
    ///
    /// ```
    /// use xbeam_rechunk::{DimChunks::Regular, Rechunking};
    ///
    /// let plan = Rechunking::new(
    ///     [("x", 100), ("y", 100)],
    ///     vec![Regular(100), Regular(1)],
    ///     vec![Regular(1), Regular(100)],
    ///     1,
    /// )
    /// .with_min_mem(90)
    /// .with_max_mem(100)
    /// .plan()?;
    /// assert_eq!(plan.warning().map(|w| w.min_mem), Some(90));
    /// # Ok::<(), xbeam_rechunk::RechunkError>(())
    /// ```
    pub fn warning(&self) -> Option<&ExcessiveIo> {
        self.multistage.as_ref().and_then(|m| m.warning.as_ref())
    }

    /// What each stage moves, in order (see [`StageSummary`]): what a
    /// progress bar needs to know the totals of each stage.
    pub fn summaries(&self) -> Vec<StageSummary> {
        let r = &self.rechunking;
        let total = chunking_mem(&r.shape, &r.shape_chunks(), r.itemsize);
        let count = |chunks: &[DimChunks]| {
            chunks
                .iter()
                .zip(&r.shape)
                .fold(1u64, |acc, (c, &n)| acc.saturating_mul(c.count(n)))
        };
        self.stages
            .iter()
            .map(|stage| {
                let (split, consolidate) = (stage.needs_split(), stage.needs_consolidate());
                StageSummary {
                    split,
                    consolidate,
                    chunks_read: count(&stage.source),
                    pieces: pieces(&r.shape, &stage.source, &stage.target),
                    chunks_written: count(&stage.target),
                    bytes: if split || consolidate { total } else { 0 },
                    source_chunk_mem: chunking_mem(&r.shape, &stage.source, r.itemsize),
                    target_chunk_mem: chunking_mem(&r.shape, &stage.target, r.itemsize),
                }
            })
            .collect()
    }

    /// The most memory one task holds in any stage (0 with no stages); at
    /// most `max_mem`. The engine holds as many of these as it has tasks
    /// in flight.
    ///
    /// ```
    /// use xbeam_rechunk::{DimChunks::Regular, Rechunking};
    ///
    /// let plan = Rechunking::new(
    ///     [("time", 10), ("x", 20), ("y", 30)],
    ///     vec![Regular(1), Regular(20), Regular(30)],
    ///     vec![Regular(10), Regular(5), Regular(5)],
    ///     8,
    /// )
    /// .with_max_mem(10_000)
    /// .plan()?;
    /// assert_eq!(plan.peak_mem(), 10_000); // a write chunk of 10 x 5 x 25 x 8 bytes
    /// # Ok::<(), xbeam_rechunk::RechunkError>(())
    /// ```
    pub fn peak_mem(&self) -> u128 {
        self.summaries()
            .iter()
            .map(StageSummary::mem)
            .max()
            .unwrap_or(0)
    }
}

impl Rechunking {
    /// The whole array as one chunk (for its total bytes).
    fn shape_chunks(&self) -> Vec<DimChunks> {
        self.shape.iter().map(|&n| DimChunks::Regular(n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::DimChunks::{Irregular, Regular};
    use super::*;

    fn regular(c: &[u64]) -> Vec<DimChunks> {
        c.iter().map(|&c| Regular(c)).collect()
    }

    fn chain(plan: &RechunkPlan) -> Vec<(Vec<DimChunks>, Vec<DimChunks>)> {
        plan.stages()
            .iter()
            .map(|s| (s.source.clone(), s.target.clone()))
            .collect()
    }

    #[test]
    fn worked_example_time_to_space() {
        let plan = Rechunking::new(
            [("time", 10), ("x", 20), ("y", 30)],
            regular(&[1, 20, 30]),
            regular(&[10, 5, 5]),
            8,
        )
        .with_max_mem(10_000)
        .plan()
        .unwrap();
        assert_eq!(plan.rechunking().min_mem(), 100);
        let stage = &plan.multistage().unwrap().stages;
        assert_eq!(stage.len(), 1);
        assert_eq!(stage[0].read, [2, 20, 30]);
        assert_eq!(stage[0].write, [10, 5, 25]);
        assert_eq!(
            chain(&plan),
            [
                (regular(&[1, 20, 30]), regular(&[2, 20, 30])),
                (regular(&[2, 20, 30]), regular(&[10, 5, 25])),
                (regular(&[10, 5, 25]), regular(&[10, 5, 5])),
            ]
        );
        let kinds: Vec<_> = plan
            .stages()
            .iter()
            .map(|s| (s.needs_split(), s.needs_consolidate()))
            .collect();
        assert_eq!(kinds, [(false, true), (true, true), (true, false)]);
    }

    #[test]
    fn worked_example_5_to_7() {
        let plan = Rechunking::new([("x", 100)], regular(&[5]), regular(&[7]), 1)
            .with_max_mem(20)
            .plan()
            .unwrap();
        assert_eq!(plan.rechunking().min_mem(), 0);
        assert_eq!(
            chain(&plan),
            [
                (regular(&[5]), regular(&[14])),
                (regular(&[14]), regular(&[14])),
                (regular(&[14]), regular(&[7])),
            ]
        );
        assert!(plan.stages()[1].is_noop());
    }

    #[test]
    fn equal_chunks_and_empty_arrays_need_no_stage() {
        let plan = Rechunking::new([("x", 10), ("y", 5)], regular(&[2, 5]), regular(&[2, 5]), 1)
            .plan()
            .unwrap();
        assert!(plan.stages().is_empty());
        assert!(plan.multistage().is_none());
        assert_eq!(plan.peak_mem(), 0);
        let plan = Rechunking::new([("x", 0)], regular(&[0]), regular(&[1]), 1)
            .plan()
            .unwrap();
        assert!(plan.stages().is_empty());
    }

    #[test]
    fn chunks_larger_than_their_dimension_plan_as_the_whole_dimension() {
        // xarray-beam fails here with "Invalid chunk_limits (10,)."
        let plan = Rechunking::new([("x", 10)], regular(&[3]), regular(&[100]), 1)
            .with_max_mem(20)
            .plan()
            .unwrap();
        assert_eq!(plan.multistage().unwrap().stages[0].write, [10]);
        assert_eq!(plan.stages().last().unwrap().target, regular(&[100]));
    }

    #[test]
    fn named_requests_as_xarray_beam_rechunk() {
        let sizes = [("time", 10u64), ("x", 20), ("y", 30)];
        let r = Rechunking::from_named(
            sizes,
            [("time", ChunkSpec::Size(1))],
            [("time", ChunkSpec::Full)],
            8,
        )
        .unwrap();
        assert_eq!(r.source(), regular(&[1, 20, 30]));
        assert_eq!(r.target(), regular(&[10, 20, 30]));
        let err = Rechunking::from_named(
            sizes,
            [("time", ChunkSpec::Size(1)), ("x", ChunkSpec::Size(2))],
            [("time", ChunkSpec::Full)],
            8,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "source_chunks and target_chunks have different keys: \
             {'time': 1, 'x': 2} vs {'time': -1}"
        );
    }

    #[test]
    fn invalid_chunkings_are_named() {
        let err = Rechunking::new([("x", 10)], vec![Irregular(vec![3, 3])], regular(&[2]), 1)
            .plan()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "irregular chunks for dimension x add up to 6, not to its size 10"
        );
        let err = Rechunking::new([("x", 10)], regular(&[0]), regular(&[2]), 1)
            .plan()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "chunks 0 for dimension x include a chunk size of 0; chunk sizes must be positive"
        );
        let err = Rechunking::new([("x", 10)], regular(&[2, 2]), regular(&[2]), 1)
            .plan()
            .unwrap_err();
        assert_eq!(err.to_string(), "source_chunks (2, 2) must have length 1");
        let err = Rechunking::new([("x", 10)], regular(&[5]), regular(&[2]), 4)
            .with_max_mem(10)
            .plan()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Source chunk memory (20) exceeds max_mem (10)"
        );
    }

    #[test]
    fn grouping_keeps_whole_chunks() {
        assert_eq!(group(&[366, 365, 365, 365], 366), [366, 365, 365, 365]);
        assert_eq!(group(&[366, 365, 365, 365], 732), [731, 730]);
        assert_eq!(group(&[1, 1, 10, 1], 10), [2, 10, 1]);
        assert_eq!(group(&[31, 28, 31], 1000), [90]);
    }
}
