//! `xbeam ingest`: many NetCDF files into one analysis-ready Zarr store,
//! as `xr.open_mfdataset(sorted(files), combine="nested",
//! concat_dim=...).to_zarr(...)` does, on the engine and under the
//! memory budget.
//!
//! The files are scanned in parallel ([`open_netcdf`]: headers and
//! coordinates), their CF encodings reconciled (each file decoded with
//! its own time units, packing and fill values; the store's encoding
//! chosen to hold every value exactly, see
//! [`NetcdfSource::notes`](xbeam_io::NetcdfSource::notes)), and
//! then every target chunk of every data variable is read from the files
//! it spans and written. Chunks along the concat dimension default to the
//! first file's length and other dimensions are whole; files of other
//! lengths (months, leap years) are fine, a chunk then spans two files.
//!
//! A store that `ingest` wrote records the files it holds in
//! [`RECORD`] (beside the Zarr metadata, which xarray and zarr-python do
//! not read), so `--append` adds only files not yet ingested: the append
//! is recorded as pending, the store grows along the concat dimension
//! ([`append_dim`](xbeam_io::append_dim)), a partly filled last chunk is
//! read back and written again whole with the first new values
//! ([`ConcatSource`](xbeam_io::ConcatSource)), and the record is rewritten
//! (atomically) once every chunk is on disk; an append stopped half way is
//! finished by the next one. A file recorded as held that has changed
//! since (size or modification time) is an error, not skipped.
//!
//! ```
//! use xbeam::jobs::ingest::{self, Options};
//! use xbeam::runner::Runner;
//!
//! let files = concat!(env!("CARGO_MANIFEST_DIR"), "/../xbeam-io/tests/data/netcdf/nc4/*.nc");
//! let dir = tempfile::tempdir()?;
//! let options = Options::new(files, dir.path().join("out.zarr"), "time");
//! let done = ingest::run(&options, &Runner::local_with_workers(2).quiet(), &|| {})?;
//! assert_eq!(done.files, 2);
//! let store = xbeam::io::open_zarr(dir.path().join("out.zarr"))?;
//! assert_eq!(store.template().sizes()["time"], 9);
//! assert_eq!(store.chunks()["time"], 5); // the first file's length
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indexmap::IndexMap;
use xbeam_chunk::chunks::normalize_chunks;
use xbeam_io::{expand_pattern, open_netcdf, ChunkSource, SetupOptions, ZarrFormat};
use xbeam_key::ChunksRequest;
use xbeam_runner::{Pipeline, Runner};

use super::rechunk::{ensure_known_dim, native_chunks};
use super::{output, Summary};
use crate::dataset::size_specs;
use crate::error::{ensure_usage, Error};
use crate::transforms::{chunk_budget, process_budget_for};
use crate::ChunkedDataset;

mod append;
mod record;

use record::{recorded, Record};

/// The file, at a store's root, listing the NetCDF files `ingest` wrote
/// into it (path, size, length along the concat dimension).
pub const RECORD: &str = ".xbeam-ingest.json";

/// What to ingest, and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The input files: a glob, a directory, or `@LIST` (see
    /// [`expand_pattern`]).
    pub pattern: String,
    /// The output store.
    pub dst: PathBuf,
    /// The dimension the files are concatenated along.
    pub concat_dim: String,
    /// Chunks of the store: `time=744,latitude=100` (`-1` whole; byte
    /// sizes as xarray-beam reads them); the concat dimension defaults to
    /// the first file's length, other dimensions to whole.
    pub target: ChunksRequest,
    /// The store's Zarr format (default v3, zarr-python 3's).
    pub format: ZarrFormat,
    /// The memory budget of the whole process, in bytes.
    pub max_mem: u64,
    /// Add the files not yet ingested to the store at `dst` (which
    /// `ingest` wrote), along the concat dimension.
    pub append: bool,
    /// What to do with an existing output, and the free-space check.
    pub write: output::WriteMode,
}

impl Options {
    /// Ingests the files `pattern` names into `dst` along `concat_dim`,
    /// with the defaults above and a 1 GiB budget.
    pub fn new(pattern: impl Into<String>, dst: impl AsRef<Path>, concat_dim: &str) -> Options {
        Options {
            pattern: pattern.into(),
            dst: dst.as_ref().to_path_buf(),
            concat_dim: concat_dim.to_owned(),
            target: ChunksRequest::default(),
            format: ZarrFormat::V3,
            max_mem: crate::rechunk::DEFAULT_MAX_MEM,
            append: false,
            write: output::WriteMode::default(),
        }
    }
}

/// What an ingest did.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// Bytes, chunks, time and peak memory.
    pub summary: Summary,
    /// Files ingested by this run.
    pub files: usize,
    /// Files skipped by `--append` because the store holds them already.
    pub skipped: usize,
    /// What was reconciled between files, and warnings; one sentence each.
    pub notes: Vec<String>,
}

/// An error reading the input files, named by the pattern.
fn input(options: &Options) -> impl Fn(xbeam_io::IoError) -> Error + '_ {
    move |e| Error::Input {
        path: PathBuf::from(&options.pattern),
        source: e,
    }
}

/// The chunk sizes of the store, checked against the budget: the workers
/// that fit, each holding its chunks.
fn plan(
    source: &dyn ChunkSource,
    target: &ChunksRequest,
    options: &Options,
    workers: usize,
) -> Result<(IndexMap<String, u64>, usize), Error> {
    let t = source.template();
    if let ChunksRequest::PerDim { dims, .. } = target {
        for d in dims.keys() {
            ensure_known_dim(t, "--target-chunks", d, Path::new(&options.pattern))?;
        }
    }
    let chunks = normalize_chunks(target, t, false, Some(&native_chunks(source)))?;
    // the largest chunk of one variable: its decoded values, and where
    // decoding makes a copy (packed or masked values) its stored ones and
    // the float64 values decoding goes through
    let largest = t
        .data_vars()
        .values()
        .map(|v| {
            let copies = ["scale_factor", "add_offset", "missing_value"]
                .iter()
                .any(|k| v.encoding.contains_key(*k))
                || v.encoding
                    .get("_FillValue")
                    .is_some_and(|f| f.as_f64().is_some_and(|f| !f.is_nan()));
            let itemsize = v.dtype.itemsize() as u64;
            let item = if copies { 2 * itemsize + 8 } else { itemsize };
            v.dims.iter().fold(item, |m, d| m.saturating_mul(chunks[d]))
        })
        .max()
        .unwrap_or(1)
        .max(1);
    let one = chunk_budget(options.max_mem, 1);
    ensure_usage!(
        largest <= one,
        "a chunk of one variable holds {} while read but --max-mem {} allows {} per chunk: use --target-chunks to cut it (for example {}={}), or --max-mem {} or more",
        crate::key::to_human_size(largest),
        crate::key::to_human_size(options.max_mem),
        crate::key::to_human_size(one),
        options.concat_dim,
        (chunks[&options.concat_dim] * one / largest).max(1),
        crate::key::to_human_size_up(process_budget_for(largest))
    );
    let fit = usize::try_from(one / largest).unwrap_or(usize::MAX);
    Ok((chunks, workers.min(fit).max(1)))
}

/// Ingests the files of `options` into its store; `on_file` is called as
/// each file is scanned. Nothing is written when the files do not agree
/// (each error names the file and what differs) or `dst` may not be
/// written.
pub fn run(
    options: &Options,
    runner: &Runner,
    on_file: &(dyn Fn() + Sync),
) -> Result<Ingested, Error> {
    let started = Instant::now();
    let input = input(options);
    let files = expand_pattern(&options.pattern).map_err(&input)?;
    if options.append {
        return append::append(options, runner, files, on_file, started);
    }
    let source = open_netcdf(&files, &options.concat_dim, on_file).map_err(input)?;
    let (chunks, workers) = plan(&source, &options.target, options, runner.workers())?;
    let runner = runner.clone().limit_workers(workers);
    let t = source.template().clone();
    let bytes: u64 = t.data_nbytes();
    output::prepare(&options.dst, None, options.write, bytes)?;
    let notes = source.notes().to_vec();
    let held = Record {
        concat_dim: options.concat_dim.clone(),
        files: recorded(source.paths(), source.lengths())?,
        pending: None,
    };
    let p = Pipeline::new();
    let request: ChunksRequest = chunks
        .iter()
        .map(|(d, &n)| (d.clone(), xbeam_key::ChunkSpec::Size(n)))
        .collect();
    let ds = ChunkedDataset::from_source(&p, Arc::new(source), &request)?.split_variables()?;
    let count = ds.chunk_count();
    let setup = SetupOptions {
        chunks: size_specs(&chunks),
        shards: None,
        format: options.format,
        encoding: IndexMap::new(),
        resume: options.write.resume,
    };
    ds.to_zarr(&options.dst, setup)?;
    p.run(&runner)?;
    held.write(&options.dst)?;
    Ok(Ingested {
        summary: Summary::finish(started, bytes, bytes, count),
        files: files.len(),
        skipped: 0,
        notes,
    })
}
