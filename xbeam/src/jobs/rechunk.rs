//! `xbeam rechunk`: rechunk a Zarr store into another under a memory
//! budget for the whole process, with the Rechunker multi-stage plan
//! ([`Rechunk`]) on the engine.
//!
//! The budget (`max_mem`) is split as [`Runner::max_mem`] says: half for
//! the groups a shuffle holds before it spills to disk, the other half for
//! chunks being worked on (source chunks waiting in flight take at most an
//! eighth of the budget), which bounds each chunk of the plan to
//! [`chunk_budget`]`(max_mem, workers)` (and [`CHUNK_MEM_CAP`]). Each
//! data variable is read, rechunked and written as chunks of its own
//! (xarray-beam's `xbeam_rechunk.py` reads with `split_vars=True` too), so
//! a chunk holds one variable and more of them fit each worker. Every data
//! variable and coordinate is written with its values, dimensions, dtype,
//! attributes and CF encoding; data variables get the target chunks (or
//! shards, in v3).
//!
//! ```
//! use xbeam::io::open_zarr;
//! use xbeam::jobs::{generate, rechunk};
//! use xbeam::runner::Runner;
//!
//! let dir = tempfile::tempdir()?;
//! let (src, dst) = (dir.path().join("a.zarr"), dir.path().join("b.zarr"));
//! let runner = Runner::local_with_workers(2).quiet();
//! generate::run(&generate::Options { ntime: Some(48), nlat: 5, nlon: 8, ..generate::Options::new(&src) }, &runner)?;
//! let options = rechunk::Options::new(&src, &dst, "time=-1,latitude=2,longitude=3".parse()?);
//! rechunk::run(&options, &runner)?;
//! let all = Default::default();
//! let (a, b) = (open_zarr(&src)?.read(&all, None)?, open_zarr(&dst)?.read(&all, None)?);
//! assert!(a.identical(&b));
//! assert_eq!(open_zarr(&dst)?.chunks()["time"], 48);
//! assert_eq!(open_zarr(&dst)?.chunks()["longitude"], 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use indexmap::IndexMap;
use xbeam_chunk::chunks::{normalize_chunks, TargetChunks};
use xbeam_chunk::Template;
use xbeam_io::{open_zarr, zarr_chunk_size, SetupOptions, ZarrFormat, ZarrSource};
use xbeam_key::{ChunkSpec, ChunksRequest};
use xbeam_runner::{Pipeline, Runner};

use super::{output, Summary};
use crate::dataset::size_specs;
use crate::error::{ensure_usage, Error};
use crate::rechunk::{DimChunks, RechunkError, RechunkPlan};
use crate::transforms::{chunk_budget, process_budget_for, Rechunk};
use crate::ChunkedDataset;

/// What to rechunk, and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The input store.
    pub src: PathBuf,
    /// The output store.
    pub dst: PathBuf,
    /// Target chunks: `time=-1,latitude=11` (`-1` the whole dimension;
    /// dimensions not named keep the input's chunks; byte sizes like
    /// `100MB` as xarray-beam resolves them).
    pub target: ChunksRequest,
    /// The memory budget of the whole process, in bytes (xarray-beam's
    /// default: 1 GiB).
    pub max_mem: u64,
    /// The output's Zarr format (default: the input's).
    pub format: Option<ZarrFormat>,
    /// Shards per dimension (v3): each shard holds whole target chunks.
    pub shards: Option<TargetChunks>,
    /// What to do with an existing output, and the free-space check.
    pub write: output::WriteMode,
    /// The output's dimension order, as xarray's `ds.transpose(*dims)`:
    /// every data variable's dimensions follow it, and dimensions not named
    /// keep their order after those named (default: each variable keeps
    /// the input's order).
    pub transpose: Option<Vec<String>>,
}

impl Options {
    /// A rechunk of `src` to `dst` with `target` chunks and a 1 GiB budget.
    pub fn new(src: impl AsRef<Path>, dst: impl AsRef<Path>, target: ChunksRequest) -> Options {
        Options {
            src: src.as_ref().to_path_buf(),
            dst: dst.as_ref().to_path_buf(),
            target,
            max_mem: crate::rechunk::DEFAULT_MAX_MEM,
            format: None,
            shards: None,
            write: output::WriteMode::default(),
            transpose: None,
        }
    }
}

/// A rechunk, planned: what [`plan`] prints and [`run`] executes.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The target chunks of every dimension.
    pub chunks: IndexMap<String, u64>,
    /// What the pipeline writes: the target chunks, or whole shards.
    pub write: IndexMap<String, u64>,
    /// Workers the job runs on: all it was given, or fewer when the input
    /// or target chunks are too large for all of them to hold chunks at
    /// once within the budget.
    pub workers: usize,
    /// Memory per chunk the plan was made with
    /// ([`chunk_budget`]`(max_mem, workers)`, at most [`CHUNK_MEM_CAP`]
    /// unless the input's or target's chunks are larger).
    pub chunk_max_mem: u64,
    /// The plan.
    pub plan: RechunkPlan,
    /// Whether the plan's first stage (to its read chunks, multiples of
    /// the input's) is done by reading the input with those chunks instead
    /// of a shuffle.
    pub read_directly: bool,
}

/// Plans the rechunk of `options` on `workers` workers, without writing
/// anything (`xbeam rechunk --dry-run` prints it).
pub fn plan(options: &Options, workers: usize) -> Result<Planned, Error> {
    let source = open_zarr(&options.src).map_err(Error::input(&options.src))?;
    plan_for(&source, options, workers)
}

fn plan_for(source: &ZarrSource, options: &Options, workers: usize) -> Result<Planned, Error> {
    let t = source.template();
    ensure_usage!(
        options.shards.is_none() || options.format.unwrap_or(source.format()) == ZarrFormat::V3,
        "--shards needs --format 3"
    );
    let native = native_chunks(source);
    let named: Vec<&String> = match &options.target {
        ChunksRequest::PerDim { dims, .. } => dims.keys().collect(),
        _ => Vec::new(),
    };
    for d in named {
        ensure_known_dim(t, "--target-chunks", d, &options.src)?;
    }
    check_transpose(options, t)?;
    let chunks = normalize_chunks(&options.target, t, false, Some(&native))?;
    let write = match &options.shards {
        None => chunks.clone(),
        Some(shards) => {
            let mut write = chunks.clone();
            for (d, spec) in shards {
                ensure_known_dim(t, "--shards", d, &options.src)?;
                let n = t.sizes()[d];
                let s = zarr_chunk_size(d, spec, n)
                    .map_err(|e| Error::Usage(format!("--shards {d}={spec}: {e}")))?
                    .clamp(1, n.max(1));
                ensure_usage!(
                    s % chunks[d] == 0 || s >= n,
                    "--shards {d}={s} is not a multiple of the target chunk {}",
                    chunks[d]
                );
                write.insert(d.clone(), s.min(n));
            }
            write
        }
    };
    // each data variable is its own chunks (as xarray-beam's
    // `xbeam_rechunk.py` reads with `split_vars=True`): the plan's element
    // is the largest variable's
    let itemsize: u64 = t
        .data_vars()
        .values()
        .map(|v| v.dtype.itemsize() as u64)
        .max()
        .unwrap_or(1);
    // fewer workers when the largest input or target chunk does not fit
    // each one's share of the budget
    let chunk_mem = |c: &IndexMap<String, u64>| -> u64 {
        c.values()
            .fold(itemsize.max(1), |m, &n| m.saturating_mul(n))
    };
    let largest = chunk_mem(&native).max(chunk_mem(&write)).max(1);
    let fit = usize::try_from(chunk_budget(options.max_mem, 1) / largest).unwrap_or(usize::MAX);
    let workers = workers.min(fit).max(1);
    let chunk_max_mem = chunk_budget(options.max_mem, workers).min(CHUNK_MEM_CAP.max(largest));
    let rechunk = Rechunk::new(
        t.sizes(),
        &size_specs(&native),
        &size_specs(&write),
        itemsize.max(1),
    )?
    .with_memory(Some(min_mem(chunk_max_mem)), chunk_max_mem)
    .map_err(|e| too_big(e, options.max_mem))?;
    let plan = rechunk.plan().clone();
    let read_directly = plan.stages().first().is_some_and(|first| {
        plan.dims().iter().zip(&first.target).all(|(d, c)| match c {
            DimChunks::Regular(n) => *n % native[d] == 0 || *n >= t.sizes()[d],
            DimChunks::Irregular(_) => false,
        })
    });
    Ok(Planned {
        chunks,
        write,
        workers,
        chunk_max_mem,
        plan,
        read_directly,
    })
}

/// A flag naming a dimension that the input does not have is a usage error
/// that lists the dimensions it has.
pub(crate) fn ensure_known_dim(
    t: &Template,
    flag: &str,
    dim: &str,
    src: &Path,
) -> Result<(), Error> {
    ensure_usage!(
        t.sizes().contains_key(dim),
        "{flag} names dimension {dim:?}, which {} does not have: expected one of {}",
        src.display(),
        t.sizes().keys().cloned().collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// `--transpose` names dimensions of the input, each once.
fn check_transpose(options: &Options, t: &Template) -> Result<(), Error> {
    let Some(order) = &options.transpose else {
        return Ok(());
    };
    for (i, d) in order.iter().enumerate() {
        ensure_known_dim(t, "--transpose", d, &options.src)?;
        ensure_usage!(
            !order[..i].contains(d),
            "--transpose names dimension {d:?} twice: expected each dimension at most once"
        );
    }
    Ok(())
}

/// The most memory per chunk a plan is given, unless the input's or the
/// target's chunks are larger: the Rechunker plan makes intermediate chunks
/// as large as it may (to save IO operations on object stores), and here
/// larger chunks only cost time. Measured on the 1 GB pancake → pencil
/// rechunk with the default 1 GiB budget on 2 workers (3 interleaved runs):
/// 89 MB chunks 4.26-4.79 s and 830 MB peak RSS, 16 MiB 3.35-4.16 s and
/// 710-750 MB, 8 MiB 3.45-4.25 s.
pub const CHUNK_MEM_CAP: u64 = 16 << 20;

/// The smallest pieces the plan aims for: xarray-beam's `max_mem / 100`,
/// at most 64 KiB. Upstream's floor keeps IO operations on an intermediate
/// store large; on this engine a shuffle moves pieces in memory (or spill
/// files) and a 64 KiB piece already costs more to copy than to route, so
/// a higher floor would only add stages, each a full pass over the data.
pub fn min_mem(chunk_max_mem: u64) -> u64 {
    (chunk_max_mem / 100).min(64 << 10)
}

/// The input's chunks per dimension (whole where it has none).
pub(crate) fn native_chunks(source: &dyn xbeam_io::ChunkSource) -> IndexMap<String, u64> {
    source
        .template()
        .sizes()
        .iter()
        .map(|(d, &n)| {
            let c = source.chunks().get(d).copied().unwrap_or(n);
            (d.clone(), c.clamp(1, n.max(1)))
        })
        .collect()
}

/// A chunk that does not fit the budget even on one worker, said in terms
/// of `--max-mem`, with the smallest budget that fits.
fn too_big(e: Error, max_mem: u64) -> Error {
    let Error::Rechunk(r) = &e else {
        return e;
    };
    let (what, mem) = match r {
        RechunkError::SourceMem { mem, .. } => ("an input chunk", *mem),
        RechunkError::TargetMem { mem, .. } => ("a target chunk", *mem),
        _ => return e,
    };
    let mem = u64::try_from(mem).unwrap_or(u64::MAX);
    Error::Usage(format!(
        "{what} holds {} but --max-mem {} allows {} per chunk even on one worker: use --max-mem {} or more, or smaller chunks ({r})",
        crate::key::to_human_size(mem),
        crate::key::to_human_size(max_mem),
        crate::key::to_human_size(chunk_budget(max_mem, 1)),
        crate::key::to_human_size_up(process_budget_for(mem)),
    ))
}

/// Rechunks `options.src` into `options.dst`; nothing is written if the
/// plan fails or `dst` may not be written.
pub fn run(options: &Options, runner: &Runner) -> Result<Summary, Error> {
    let started = Instant::now();
    let source = open_zarr(&options.src).map_err(Error::input(&options.src))?;
    let planned = plan_for(&source, options, runner.workers())?;
    let runner = runner.clone().limit_workers(planned.workers);
    let format = options.format.unwrap_or(source.format());
    let t = source.template().clone();
    let bytes: u64 = t.data_nbytes();
    output::prepare(&options.dst, Some(&options.src), options.write, bytes)?;
    // the shuffles hold half the budget; past it, their groups spill
    // (checked after `prepare`, as its own check, so that a store
    // --overwrite replaces no longer takes room)
    if !planned.plan.stages().is_empty() && bytes > options.max_mem / 2 {
        let output = if options.write.resume { 0 } else { bytes };
        output::check_scratch_space(
            runner.spill_path(),
            bytes,
            &options.dst,
            output,
            options.write.ignore_free_space,
        )?;
    }
    let p = Pipeline::new();
    let ds = ChunkedDataset::from_zarr(&p, &options.src, &ChunksRequest::default())?
        .split_variables()?;
    let write: ChunksRequest = planned
        .write
        .iter()
        .map(|(d, &n)| (d.clone(), ChunkSpec::Size(n)))
        .collect();
    let out = ds.rechunk_with(
        &write,
        Some(min_mem(planned.chunk_max_mem)),
        planned.chunk_max_mem,
    )?;
    let out = match &options.transpose {
        Some(order) => out.transpose(&order.iter().map(String::as_str).collect::<Vec<_>>())?,
        None => out,
    };
    let count = out.chunk_count();
    let setup = SetupOptions {
        chunks: size_specs(&planned.chunks),
        shards: options.shards.as_ref().map(|_| size_specs(&planned.write)),
        format,
        encoding: IndexMap::new(),
        resume: options.write.resume,
    };
    out.to_zarr(&options.dst, setup)?;
    p.run(&runner)?;
    Ok(Summary::finish(started, bytes, bytes, count))
}
