//! Rechunker multi-stage rechunking plans for xbeam: pure planning
//! functions, no IO and no engine.
//!
//! Rechunking an array from one chunking to another (say from "pancakes",
//! one time step of the whole globe, to "pencils", all time steps of a small
//! patch) under a memory budget takes stages: each stage splits chunks at
//! new boundaries and consolidates the pieces into bigger chunks, and no
//! chunk of any stage may exceed `max_mem` bytes. This crate plans those
//! stages with the algorithm of [Rechunker] as xarray-beam uses it, and
//! extends it to irregular chunks.
//!
//! # A plan, end to end
//!
//! ```
//! use xbeam_rechunk::{DimChunks::Regular, Rechunking};
//!
//! // 10 time steps of a 20 x 30 grid, 8 bytes per element, from one time
//! // step per chunk to 5 x 5 pencils of all times, 10 kB per chunk at most.
//! let plan = Rechunking::new(
//!     [("time", 10), ("x", 20), ("y", 30)],
//!     vec![Regular(1), Regular(20), Regular(30)],
//!     vec![Regular(10), Regular(5), Regular(5)],
//!     8,
//! )
//! .with_max_mem(10_000)
//! .plan()?;
//!
//! // Three stages: gather pairs of time steps, regroup into 10 x 5 x 25,
//! // then cut the 5 x 5 pencils.
//! let [gather, regroup, cut] = plan.stages() else { panic!("three stages") };
//! assert_eq!(gather.target, [Regular(2), Regular(20), Regular(30)]);
//! assert!(!gather.needs_split() && gather.needs_consolidate());
//! assert_eq!(regroup.target, [Regular(10), Regular(5), Regular(25)]);
//! assert!(regroup.needs_split() && regroup.needs_consolidate());
//! assert!(cut.needs_split() && !cut.needs_consolidate());
//! assert!(plan.peak_mem() <= 10_000);
//!
//! // `Display` is the dry-run report.
//! let report = plan.to_string();
//! assert!(report.starts_with("rechunk plan: 3 stages, 144kB moved, peak 10kB per task"));
//! # Ok::<(), xbeam_rechunk::RechunkError>(())
//! ```
//!
//! # The algorithm, as xarray-beam has it
//!
//! The functions on plain `u64` slices are Rechunker's, with the same
//! arguments, results and error messages as xarray-beam 0.11.5:
//! [`consolidate_chunks`] grows chunks up to `max_mem`,
//! [`calculate_stage_chunks`] spaces stage chunks geometrically,
//! [`io_ops`] counts the pieces a stage makes, [`multistage_rechunking_plan`]
//! adds stages until the intermediate pieces reach `min_mem` (or stops with
//! an [`ExcessiveIo`] warning, returned in the [`Plan`] rather than printed),
//! and [`rechunking_plan`] is its single-stage form.
//!
//! [`Rechunking::plan`] is xarray-beam's `Rechunk`: it plans on named
//! dimensions and returns the stages to execute, `source → read → … →
//! write → target`, each a [`RechunkStage`] that says whether it splits,
//! consolidates, both or neither.
//!
//! ```
//! use xbeam_rechunk::{multistage_rechunking_plan, Stage};
//!
//! let plan = multistage_rechunking_plan(&[100, 100], &[100, 1], &[1, 100], 1, 10, 100)?;
//! assert_eq!(plan.stages[0], Stage { read: vec![100, 1], intermediate: vec![10, 1], write: vec![10, 10] });
//! assert_eq!(plan.stages[1], Stage { read: vec![10, 10], intermediate: vec![1, 10], write: vec![1, 100] });
//! # Ok::<(), xbeam_rechunk::RechunkError>(())
//! ```
//!
//! # Irregular chunks
//!
//! Data often arrives in chunks that are not all the same size: one chunk
//! (or file) per calendar year of daily data is 365 or 366 days, one per
//! month 28 to 31 days. xarray-beam rejects such chunks; the usual
//! workaround, splitting everything down to the greatest common divisor of
//! the sizes, turns years into single days. xbeam plans them as they are.
//!
//! A dimension's chunking is a [`DimChunks`]: `Regular(size)` or
//! `Irregular(sizes)`. What a chunking costs in memory is set by its largest
//! chunk: itemsize times the product over dimensions of the largest chunk
//! ([`chunking_mem`]). The planner works on the *regular envelope* of the
//! source and target chunkings (per dimension the largest chunk) and fits
//! the irregular chunkings inside it:
//!
//! 1. The Rechunker plan is made for the envelope. It decides the number of
//!    stages and the regular read, stage and write sizes; since every real
//!    chunk is at most its envelope, every chunk of the plan fits in
//!    `max_mem`, and memory errors name the largest chunk.
//! 2. Along a dimension where the source is irregular, the read chunks are
//!    whole source chunks grouped greedily up to the envelope's read size
//!    (years into pairs of years, months into quarters): the first stage
//!    reads the irregular source chunks directly and only consolidates, it
//!    never cuts a source chunk.
//! 3. The intermediate stages are regular, with the envelope plan's sizes.
//!    A stage splits each incoming chunk at the outgoing boundaries and
//!    consolidates the pieces, whatever those boundaries are, so irregular
//!    chunks meet regular ones directly.
//! 4. Along a dimension where the target is irregular, the write chunks are
//!    whole target chunks grouped up to the envelope's write size, so the
//!    last stage only splits.
//!
//! Pieces are counted for irregular chunkings as for regular ones: the
//! distinct (source chunk, target chunk) pairs along each axis, found by a
//! sweep over both chunkings' boundaries ([`stage_io_ops`]). With regular
//! chunks everywhere, the plan is exactly xarray-beam's.
//!
//! ```
//! use xbeam_rechunk::{DimChunks::{Irregular, Regular}, Rechunking};
//!
//! // Four years of daily data on a 100 x 100 grid, one chunk per year,
//! // to all-time pencils of 10 x 10, in at most 64 MB per chunk.
//! let years = Irregular(vec![366, 365, 365, 365]);
//! let plan = Rechunking::new(
//!     [("time", 1461), ("x", 100), ("y", 100)],
//!     vec![years.clone(), Regular(100), Regular(100)],
//!     vec![Regular(1461), Regular(10), Regular(10)],
//!     4,
//! )
//! .with_max_mem(64_000_000)
//! .plan()?;
//! let first = &plan.stages()[0];
//! assert_eq!(first.source[0], years);
//! assert!(!first.needs_split()); // years are grouped, never cut
//! assert!(plan.peak_mem() <= 64_000_000);
//! # Ok::<(), xbeam_rechunk::RechunkError>(())
//! ```
//!
//! # Where xbeam differs from xarray-beam
//!
//! Each difference is a case where xarray-beam fails or a user would
//! clearly want something else; everything else matches it.
//!
//! - Irregular chunks are planned (above); xarray-beam's `normalize_chunks`
//!   rejects any tuple of chunk sizes that is not constant, even `(3, 3, 1)`.
//!   Here a tuple of one distinct size is that size (as in xarray-beam),
//!   equal sizes with a smaller last one are regular, and anything else is
//!   irregular and must add up to the dimension.
//! - [`Rechunking::plan`] plans a chunk larger than its dimension as the
//!   whole dimension; xarray-beam keeps it unclamped and its planner then
//!   fails with `Invalid chunk_limits`. The executed stages still carry the
//!   chunks as given.
//! - An array with an empty dimension needs no stage (xarray-beam divides
//!   by zero).
//! - The `ExcessiveIOWarning` is a value, [`Plan::warning`], not a printed
//!   warning; the failure to find a plan is an error, not an assertion,
//!   and asks for bug reports on xbeam's tracker.
//! - Memory headroom in [`consolidate_chunks`] is an exact integer
//!   quotient where Python divides floats; they differ only beyond 2^53
//!   bytes. Memory quantities are `u128`, so no product overflows.
//!
//! [Rechunker]: https://rechunker.readthedocs.io

mod chunks;
mod consolidate;
mod error;
mod io_ops;
mod plan;
mod pyrepr;
mod rechunking;
mod report;
mod stage;

pub use chunks::{normalize_chunks, DimChunks};
pub use consolidate::{chunk_mem, consolidate_chunks, ChunkLimit};
pub use error::RechunkError;
pub use io_ops::{io_ops, stage_io_ops};
pub use plan::{
    calculate_stage_chunks, multistage_rechunking_plan, rechunking_plan, ExcessiveIo, Plan, Stage,
    MAX_STAGES,
};
pub use rechunking::{chunking_mem, RechunkPlan, Rechunking, StageSummary, DEFAULT_MAX_MEM};
pub use stage::RechunkStage;
