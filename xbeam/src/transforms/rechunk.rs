//! [`Rechunk`]: xarray-beam's `Rechunk`, the Rechunker multi-stage
//! algorithm on the engine.

use std::sync::Arc;

use indexmap::IndexMap;

use super::{Chunks, ConsolidateChunks, SplitChunks};
use crate::chunk::chunks::TargetChunks;
use crate::key::{ChunkGrid, ChunkSpec};
use crate::rechunk::{DimChunks, RechunkPlan, RechunkStage, Rechunking};
use crate::runner::Transform;
use crate::Error;

/// Rechunks keyed chunks from `source` to `target` chunks in the stages of
/// the Rechunker multi-stage plan (xarray-beam's `Rechunk(dim_sizes,
/// source_chunks, target_chunks, itemsize, min_mem, max_mem)`).
///
/// The plan ([`xbeam_rechunk`](crate::rechunk)) keeps every chunk a stage
/// reads, holds or writes within `max_mem` bytes (`itemsize` is the bytes of
/// one element of all variables a chunk holds), and keeps the pieces a
/// stage moves above `min_mem` bytes where it can (default: `max_mem /
/// 100`), so that a rechunk between very different chunks does not move
/// millions of tiny pieces. Each executed stage is named `stage {i}`: it
/// splits chunks at its target boundaries ([`SplitChunks`]) if it must, then
/// groups the pieces of each target chunk ([`ConsolidateChunks`], a
/// shuffle that spills to disk beyond the runner's budget) if it must.
/// Equal source and target chunks give no stage.
///
/// `max_mem` is memory per chunk, as upstream; the whole process's budget
/// is the runner's ([`Runner::max_mem`](crate::runner::Runner::max_mem)).
/// [`ChunkedDataset::rechunk_with`](crate::ChunkedDataset::rechunk_with)
/// and `xbeam rechunk` derive one from the other.
///
/// ```
/// use xbeam::prelude::*;
/// use xbeam::transforms::{parse_chunks, DatasetToChunks, Rechunk};
///
/// let ds = xbeam::demo::era5_like(48, 19, 36, 1)?;
/// let p = Pipeline::new();
/// let pancakes = p.apply("read", DatasetToChunks::from_dataset(ds.clone(), parse_chunks("time=4")?))?;
/// let rechunk = Rechunk::new(
///     &ds.sizes(),
///     &parse_chunks("time=4,latitude=-1,longitude=-1")?,
///     &parse_chunks("time=-1,latitude=5,longitude=6")?,
///     8,
/// )?
/// .with_memory(Some(1_000), 100_000)?;
/// assert_eq!(rechunk.plan().stages().len(), 3);
/// let pencils = pancakes.apply("rechunk", rechunk).collect("pencils");
/// p.run(&Runner::local_with_workers(2).quiet())?;
/// let pencils = pencils.take()?;
/// assert_eq!(pencils.len(), 4 * 6);
/// assert!(pencils.iter().all(|(_, c)| c.sizes()["time"] == 48 && c.sizes()["latitude"] <= 5));
/// assert!(consolidate_fully(pencils)?.1.identical(&ds));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Rechunk {
    request: RechunkRequest,
    plan: RechunkPlan,
}

/// What a [`Rechunk`] was asked for, to plan again with other memory.
#[derive(Debug, Clone)]
struct RechunkRequest {
    dim_sizes: IndexMap<String, u64>,
    source: TargetChunks,
    target: TargetChunks,
    itemsize: u64,
}

impl Rechunk {
    /// A rechunk of chunks of a dataset with `dim_sizes` from `source` to
    /// `target` chunks (both naming the same dimensions; `-1` or
    /// [`ChunkSpec::Full`] is the whole dimension, explicit sizes are
    /// irregular chunks), `itemsize` bytes per element, planned with
    /// xarray-beam's default budget (`max_mem` 1 GiB, `min_mem` 10 MiB).
    ///
    /// Errors name what does not fit: dimensions that differ between
    /// `source` and `target`, chunks larger than `max_mem`.
    pub fn new(
        dim_sizes: &IndexMap<String, u64>,
        source: &TargetChunks,
        target: &TargetChunks,
        itemsize: u64,
    ) -> Result<Rechunk, Error> {
        let request = RechunkRequest {
            dim_sizes: dim_sizes.clone(),
            source: source.clone(),
            target: target.clone(),
            itemsize,
        };
        let plan = request.rechunking()?.plan()?;
        Ok(Rechunk { request, plan })
    }

    /// The same rechunk planned with `min_mem` (default `max_mem / 100`)
    /// and `max_mem` bytes per chunk.
    pub fn with_memory(self, min_mem: Option<u64>, max_mem: u64) -> Result<Rechunk, Error> {
        let mut rechunking = self.request.rechunking()?.with_max_mem(max_mem);
        if let Some(min) = min_mem {
            rechunking = rechunking.with_min_mem(min);
        }
        let plan = rechunking.plan()?;
        Ok(Rechunk {
            request: self.request,
            plan,
        })
    }

    /// The plan: the stages this transform runs (printable, see
    /// [`RechunkPlan`]'s `Display`: `xbeam rechunk --dry-run`).
    pub fn plan(&self) -> &RechunkPlan {
        &self.plan
    }
}

impl RechunkRequest {
    fn rechunking(&self) -> Result<Rechunking, Error> {
        Ok(Rechunking::from_named(
            &self.dim_sizes,
            &self.source,
            &self.target,
            self.itemsize,
        )?)
    }
}

impl Transform<Chunks> for Rechunk {
    type Output = Chunks;

    fn expand(self, input: Chunks) -> Chunks {
        run_stages(
            input,
            self.plan.dims(),
            self.plan.shape(),
            self.plan.stages(),
        )
    }
}

/// Runs `stages` (of a plan over `dims` of `shape`) on `input`, each named
/// `stage {i}`.
pub(crate) fn run_stages(
    input: Chunks,
    dims: &[String],
    shape: &[u64],
    stages: &[RechunkStage],
) -> Chunks {
    let mut chunks = input;
    for (i, stage) in stages.iter().enumerate() {
        if stage.is_noop() {
            continue;
        }
        let target = specs(dims, &stage.target);
        let split = stage.needs_split();
        let consolidate = stage.needs_consolidate().then(|| {
            let source = ChunkGrid::new(
                dims.iter().cloned().zip(shape.iter().copied()),
                dims.iter()
                    .map(String::as_str)
                    .zip(stage.source.iter().map(ChunkSpec::from)),
            );
            // the grid was validated by the planner
            source.map(|grid| ConsolidateChunks::from_grid(grid, target.clone()))
        });
        let target = Arc::new(target);
        chunks = chunks.apply(&format!("stage {i}"), move |c: Chunks| {
            let mut c = c;
            if split {
                c = c.apply("split", SplitChunks::new((*target).clone()));
            }
            match consolidate {
                Some(Ok(Ok(consolidate))) => c.apply("consolidate", consolidate),
                Some(_) => c.apply("consolidate", ConsolidateChunks::new((*target).clone())),
                None => c,
            }
        });
    }
    chunks
}

/// Chunk specs of `dims` from a stage's chunks.
fn specs(dims: &[String], chunks: &[DimChunks]) -> TargetChunks {
    dims.iter()
        .cloned()
        .zip(chunks.iter().map(ChunkSpec::from))
        .collect()
}

/// The memory per chunk ([`Rechunk`]'s `max_mem`) that keeps a rechunk
/// within a whole-process budget of `process_max_mem` bytes on `workers`
/// workers: `process_max_mem / (6 × workers)`.
///
/// Half of the process budget goes to the groups a shuffle holds before it
/// spills ([`Runner::max_mem`](crate::runner::Runner::max_mem)); the other
/// half to chunks being worked on (the engine lets source chunks waiting in
/// flight take at most an eighth of the budget), where each worker holds
/// about three chunks at a time (one being read and split, one being
/// assembled, its encoded copy). Measured with `xbeam rechunk --max-mem 256MB --workers 2`
/// (pancakes to 18 MB pencils of one variable): 1 GB and 4 GB stores peak
/// at 290-300 MB RSS.
///
/// ```
/// use xbeam::transforms::chunk_budget;
/// assert_eq!(chunk_budget(256 << 20, 2), (256 << 20) / 12);
/// assert_eq!(chunk_budget(768 << 20, 1), 128 << 20);
/// ```
pub fn chunk_budget(process_max_mem: u64, workers: usize) -> u64 {
    (process_max_mem / (BUDGET_PER_CHUNK * workers.max(1) as u64)).max(1)
}

/// Shares of the process budget per chunk of one worker: the half for
/// chunks in flight holds three.
const BUDGET_PER_CHUNK: u64 = 6;

/// The smallest whole-process budget whose [`chunk_budget`] on one worker
/// holds `chunk_mem` bytes (the inverse, for error messages).
pub(crate) fn process_budget_for(chunk_mem: u64) -> u64 {
    chunk_mem.saturating_mul(BUDGET_PER_CHUNK)
}
