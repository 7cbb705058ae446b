//! xbeam: chunked, parallel and distributed pipelines over large labeled
//! N-dimensional array datasets (the xarray data model), in Rust. It does
//! what xarray-beam does on Apache Beam, with a hard memory bound.
//!
//! This facade re-exports every xbeam crate as a module ([`key`], [`chunk`],
//! [`rechunk`], [`io`], [`stats`], [`runner`]), adds the xarray-beam
//! [`transforms`], the high-level [`ChunkedDataset`] and the jobs of the
//! `xbeam` command line ([`jobs`]), and gathers what a pipeline author
//! needs in [`prelude`]. The tour below goes in that order: chunks, a
//! pipeline of transforms, `ChunkedDataset`, the command line.
//!
//! # Chunks
//!
//! A dataset moves through xbeam as `(Key, Dataset)` chunks: the [`Key`](key::Key)
//! says where the chunk starts in the whole dataset. The chunk operations
//! are plain functions ([`chunk::chunks`]), so they can be tried without a
//! pipeline:
//!
//! ```
//! use xbeam::prelude::*;
//!
//! // An ERA5-like dataset: 2 days of hourly data on a 19 x 36 grid.
//! let ds = xbeam::demo::era5_like(48, 19, 36, 42)?;
//!
//! // Keyed chunks of one day each ("pancakes").
//! let plan = DatasetChunks::new(vec![&ds], &parse_chunks("time=24")?, false)?;
//! let days: Vec<Chunk> = plan.keys().map(|k| Ok((k.clone(), plan.chunk(&k)?.remove(0)))).collect::<Result<_, ChunkError>>()?;
//! assert_eq!(days[1].0.to_string(), "Key(offsets={'time': 24, 'latitude': 0, 'longitude': 0})");
//!
//! // Rechunk in memory to all-time "pencils", then put everything back.
//! let pencils = in_memory_rechunk(days, &parse_chunks("time=-1,latitude=10,longitude=12")?)?;
//! assert_eq!(pencils.len(), 2 * 3);
//! let (_, whole) = consolidate_fully(pencils)?;
//! assert!(whole.identical(&ds));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # A pipeline of transforms
//!
//! The same steps on the engine, for data larger than memory: a
//! [`Pipeline`](runner::Pipeline) of xarray-beam's [`transforms`]
//! ([`DatasetToChunks`](transforms::DatasetToChunks),
//! [`SplitChunks`](transforms::SplitChunks),
//! [`ConsolidateChunks`](transforms::ConsolidateChunks),
//! [`ChunksToZarr`](transforms::ChunksToZarr), [`Mean`](transforms::Mean),
//! ...), each applied under a name that scopes the steps inside it
//! (`pencils/split`). Nothing runs until [`Pipeline::run`](runner::Pipeline::run);
//! the [`Runner`](runner::Runner) says where: timely workers as threads in
//! this process, or several processes of a cluster, with the same code.
//!
//! ```
//! use xbeam::prelude::*;
//!
//! let ds = xbeam::demo::era5_like(48, 19, 36, 42)?;
//! let dir = tempfile::tempdir()?;
//! let store = dir.path().join("pencils.zarr");
//!
//! let p = Pipeline::new();
//! let pencil = parse_chunks("time=-1,latitude=10,longitude=12")?;
//! p.apply("pancakes", DatasetToChunks::from_dataset(ds.clone(), parse_chunks("time=24")?))?
//!     .apply("pencils", |c: Chunks| {
//!         c.apply("split", SplitChunks::new(pencil.clone()))
//!             .apply("consolidate", ConsolidateChunks::new(pencil))
//!     })
//!     .apply("write", ChunksToZarr::new(&store, Template::from(&ds)).zarr_chunks([("latitude", 10), ("longitude", 12)]))?;
//! let metrics = p.run(&Runner::local_with_workers(2).quiet())?;
//!
//! assert_eq!(metrics.get("pancakes/read chunks").unwrap().elements, 2);
//! assert_eq!(metrics.get("pencils/split/split chunks").unwrap().elements, 2 * 6);
//! assert_eq!(metrics.get("write/write chunks").unwrap().elements, 6);
//! assert!(open_zarr(&store)?.read(&Default::default(), None)?.identical(&ds));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # `ChunkedDataset`
//!
//! [`ChunkedDataset`] is the high-level API (xarray-beam's
//! `xbeam.Dataset`): a template of the whole dataset and its chunking, with
//! dataset-like methods ([`rechunk`](ChunkedDataset::rechunk),
//! [`map_blocks`](ChunkedDataset::map_blocks),
//! [`mean`](ChunkedDataset::mean), [`isel`](ChunkedDataset::isel), ...)
//! that add the transforms for you. It reads from a Zarr store
//! ([`from_zarr`](ChunkedDataset::from_zarr)) or memory, chunk sizes may
//! be bytes (`"time=-1,...=1MB"`), and it ends in
//! [`to_zarr`](ChunkedDataset::to_zarr) or, for small results,
//! [`collect`](ChunkedDataset::collect) (which runs the pipeline):
//!
//! ```
//! use xbeam::prelude::*;
//!
//! let ds = xbeam::demo::era5_like(48, 19, 36, 42)?;
//! let p = Pipeline::new();
//! let celsius = ChunkedDataset::from_dataset(&p, ds.clone(), &"time=24".parse()?)?
//!     .map_blocks(|chunk| chunk.select_vars(&["temperature"])?.map_f64(|k| k - 273.15), None)?;
//! let mean = celsius.rechunk(&"time=-1,latitude=10".parse()?)?.mean(&["time"])?;
//! assert_eq!(mean.sizes()["latitude"], 19);
//!
//! let got = mean.collect(&Runner::local_with_workers(2).quiet())?;
//! let want = ds.select_vars(&["temperature"])?.map_f64(|k| k - 273.15)?.reduce(Reduction::Mean, &["time"])?;
//! assert!(got.allclose(&want.astype(DType::F64)?, 1e-5, 1e-3));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The command line
//!
//! The `xbeam` binary runs the common jobs on the engine, with
//! `--workers`, `--max-mem` and a progress bar:
//!
//! ```sh
//! xbeam generate --gb 1 --out era5.zarr        # a synthetic ERA5-like store
//! xbeam info era5.zarr --stats                 # what it holds, with statistics
//! xbeam copy era5.zarr era5-v3.zarr --format 3 # re-encode, or Zarr v2 <-> v3
//! xbeam demo                                   # the tour above, end to end
//! ```
//!
//! Each job is a library function too ([`jobs`]: options in, a
//! [`Summary`](jobs::Summary) out):
//!
//! ```
//! use xbeam::jobs::generate;
//! use xbeam::prelude::*;
//!
//! let dir = tempfile::tempdir()?;
//! let out = dir.path().join("era5.zarr");
//! let options = generate::Options { ntime: Some(48), nlat: 19, nlon: 36, ..generate::Options::new(&out) };
//! let summary = generate::run(&options, &Runner::local_with_workers(2).quiet())?;
//! assert_eq!(summary.chunks, 2);
//! let stored = ChunkedDataset::from_zarr(&Pipeline::new(), &out, &ChunksRequest::default())?;
//! assert_eq!(stored.chunks()["time"], 24);
//! # Ok::<(), xbeam::Error>(())
//! ```

pub use xbeam_chunk as chunk;
pub use xbeam_io as io;
pub use xbeam_key as key;
pub use xbeam_rechunk as rechunk;
pub use xbeam_runner as runner;
pub use xbeam_stats as stats;

pub mod dataset;
pub mod demo;
pub mod error;
pub mod jobs;
mod rng;
pub mod synthetic;
pub mod transforms;

pub use dataset::{ChunkedDataset, Grouped, Rolled};
pub use error::Error;

/// Everything a pipeline author needs for the common case.
pub mod prelude {
    pub use xbeam_chunk::calendar::{Calendar, CfUnits, DateTime, TimeUnit};
    pub use xbeam_chunk::chunks::{
        consolidate_chunks, consolidate_chunks_filled, consolidate_chunks_to, consolidate_fully,
        consolidate_variables, in_memory_rechunk, normalize_chunks, rounded_key, split_chunks,
        split_variables, target_chunks, validate_chunk, Chunk, DatasetChunks, FillMissing,
        TargetChunks,
    };
    pub use xbeam_chunk::{
        Array, Attrs, ChunkError, DType, Dataset, DimReplacement, Label, Labels, Reduction,
        Template, TimeField, VarSchema, Variable,
    };
    pub use xbeam_io::{open_zarr, setup_zarr, ChunkSink, ChunkSource, MemorySource, SetupOptions};
    pub use xbeam_key::{ChunkGrid, ChunkRequest, ChunkSpec, ChunksRequest, Key, KeyError};
    pub use xbeam_runner::{CombineFn, PCollection, Pipeline, RunError, Runner, Transform};

    pub use crate::transforms::{
        parse_chunks, Chunks, ChunksToZarr, ConsolidateChunks, ConsolidateVariables,
        DatasetToChunks, DatasetToZarr, DatasetsToChunks, Mean, Rechunk, SplitChunks,
        SplitVariables, ValidateEachChunk,
    };
    pub use crate::{ChunkedDataset, Error};
}

/// The README's examples, compiled and run as doctests so they never rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
