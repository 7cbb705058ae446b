//! `xbeam ingest`: many NetCDF files into one analysis-ready Zarr store,
//! as `xr.open_mfdataset(sorted(files), combine="nested",
//! concat_dim=...).to_zarr(...)` does, on the engine and under the
//! memory budget.
//!
//! The files are scanned in parallel ([`open_netcdf`]: headers and
//! coordinates), their CF encodings reconciled (each file decoded with
//! its own time units, packing and fill values; the store's encoding
//! chosen to hold every value exactly, see [`NetcdfSource::notes`]), and
//! then every target chunk of every data variable is read from the files
//! it spans and written. Chunks along the concat dimension default to the
//! first file's length and other dimensions are whole; files of other
//! lengths (months, leap years) are fine, a chunk then spans two files.
//!
//! A store that `ingest` wrote records the files it holds in
//! [`RECORD`] (beside the Zarr metadata, which xarray and zarr-python do
//! not read), so `--append` adds only files not yet ingested: the store
//! grows along the concat dimension ([`append_dim`]), a partly filled last
//! chunk is read back and written again whole with the first new values
//! ([`ConcatSource`](xbeam_io::ConcatSource)), and the record is rewritten
//! (atomically) once every chunk is on disk.
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
use serde_json::{json, Value};
use xbeam_chunk::chunks::normalize_chunks;
use xbeam_chunk::{DType, Template};
use xbeam_io::{
    append_dim, expand_pattern, open_netcdf, open_zarr, ChunkSink, ChunkSource, NetcdfSource,
    SetupOptions, ZarrFormat,
};
use xbeam_key::{ChunksRequest, Key};
use xbeam_runner::{Pipeline, Runner};

use super::rechunk::ensure_known_dim;
use super::{output, Summary};
use crate::dataset::size_specs;
use crate::error::{ensure_usage, Error};
use crate::transforms::{chunk_budget, process_budget_for, write_to};
use crate::ChunkedDataset;

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
    /// Replace a Zarr store at `dst` (see [`output::prepare`]).
    pub overwrite: bool,
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
            overwrite: false,
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

/// One ingested file, as [`RECORD`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Recorded {
    path: String,
    bytes: u64,
    length: u64,
}

fn identity(path: &Path) -> Result<(String, u64), Error> {
    let canonical = std::fs::canonicalize(path).map_err(|e| Error::Input {
        path: path.to_path_buf(),
        source: xbeam_io::IoError::Invalid(format!("cannot resolve the path: {e}")),
    })?;
    let bytes = std::fs::metadata(&canonical).map_or(0, |m| m.len());
    Ok((canonical.display().to_string(), bytes))
}

fn read_record(dst: &Path) -> Result<(String, Vec<Recorded>), Error> {
    let path = dst.join(RECORD);
    let bad = |what: String| {
        Error::Usage(format!(
            "--append needs a store that xbeam ingest wrote: {} {what}",
            path.display()
        ))
    };
    let text = std::fs::read_to_string(&path).map_err(|e| bad(format!("cannot be read ({e})")))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| bad(format!("is not JSON ({e})")))?;
    let concat = doc["concat_dim"]
        .as_str()
        .ok_or_else(|| bad("has no concat_dim".into()))?;
    let files = doc["files"]
        .as_array()
        .ok_or_else(|| bad("has no list of files".into()))?
        .iter()
        .map(|f| {
            Some(Recorded {
                path: f["path"].as_str()?.to_owned(),
                bytes: f["bytes"].as_u64()?,
                length: f["length"].as_u64()?,
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("has a malformed file entry".into()))?;
    Ok((concat.to_owned(), files))
}

fn write_record(dst: &Path, concat: &str, files: &[Recorded]) -> Result<(), Error> {
    let doc = json!({
        "written_by": "xbeam ingest",
        "concat_dim": concat,
        "files": files.iter().map(|f| json!({"path": f.path, "bytes": f.bytes, "length": f.length})).collect::<Vec<_>>(),
    });
    let path = dst.join(RECORD);
    let tmp = dst.join(format!("{RECORD}.{}.tmp", std::process::id()));
    let output = |e: std::io::Error| Error::Output {
        path: path.clone(),
        source: xbeam_io::IoError::Invalid(format!("cannot write the ingest record: {e}")),
    };
    std::fs::write(&tmp, serde_json::to_vec_pretty(&doc).expect("JSON")).map_err(output)?;
    std::fs::rename(&tmp, &path).map_err(output)
}

/// The chunk sizes of the store, checked against the budget: the workers
/// that fit, each holding its chunks.
fn plan(
    source: &NetcdfSource,
    options: &Options,
    workers: usize,
) -> Result<(IndexMap<String, u64>, usize), Error> {
    let t = source.template();
    if let ChunksRequest::PerDim { dims, .. } = &options.target {
        for d in dims.keys() {
            ensure_known_dim(t, "--target-chunks", d, Path::new(&options.pattern))?;
        }
    }
    let native: IndexMap<String, u64> = t
        .sizes()
        .iter()
        .map(|(d, &n)| {
            let c = source.chunks().get(d).copied().unwrap_or(n);
            (d.clone(), c.clamp(1, n.max(1)))
        })
        .collect();
    let chunks = normalize_chunks(&options.target, t, false, Some(&native))?;
    // the largest chunk of one variable: its decoded values, and its
    // stored ones too where decoding makes a copy (packed or masked values)
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
            let item = v.dtype.itemsize() as u64 * if copies { 2 } else { 1 };
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
    let input = |e| Error::Input {
        path: PathBuf::from(&options.pattern),
        source: e,
    };
    let files = expand_pattern(&options.pattern).map_err(input)?;
    if options.append {
        return append(options, runner, files, on_file, started);
    }
    let source = open_netcdf(&files, &options.concat_dim, on_file).map_err(input)?;
    let (chunks, workers) = plan(&source, options, runner.workers())?;
    output::prepare(&options.dst, None, options.overwrite)?;
    let runner = runner.clone().limit_workers(workers);
    let t = source.template().clone();
    let bytes: u64 = t.data_vars().values().map(|v| t.var_nbytes(v) as u64).sum();
    let notes = source.notes().to_vec();
    let recorded = record_of(&source)?;
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
    };
    ds.to_zarr(&options.dst, setup)?;
    p.run(&runner)?;
    write_record(&options.dst, &options.concat_dim, &recorded)?;
    Ok(Ingested {
        summary: Summary::finish(started, bytes, bytes, count),
        files: files.len(),
        skipped: 0,
        notes,
    })
}

fn record_of(source: &NetcdfSource) -> Result<Vec<Recorded>, Error> {
    source
        .paths()
        .iter()
        .zip(source.lengths())
        .map(|(p, &length)| {
            let (path, bytes) = identity(p)?;
            Ok(Recorded {
                path,
                bytes,
                length,
            })
        })
        .collect()
}

/// `--append`: the files not yet in the store, added along the concat
/// dimension.
fn append(
    options: &Options,
    runner: &Runner,
    files: Vec<PathBuf>,
    on_file: &(dyn Fn() + Sync),
    started: Instant,
) -> Result<Ingested, Error> {
    let (concat, mut recorded) = read_record(&options.dst)?;
    ensure_usage!(
        concat == options.concat_dim,
        "--concat-dim {} does not match the store, which was ingested along {concat}",
        options.concat_dim
    );
    let all = files.len();
    let new = not_recorded(files, &recorded)?;
    let skipped = all - new.len();
    if new.is_empty() {
        return Ok(Ingested {
            summary: Summary::finish(started, 0, 0, 0),
            files: 0,
            skipped,
            notes: Vec::new(),
        });
    }
    let input = |e| Error::Input {
        path: PathBuf::from(&options.pattern),
        source: e,
    };
    let store = open_zarr(&options.dst).map_err(Error::input(&options.dst))?;
    let mut source = open_netcdf(&new, &options.concat_dim, on_file).map_err(input)?;
    if let Some(DType::DateTime(unit, _)) = store
        .template()
        .coords()
        .get(&options.concat_dim)
        .map(xbeam_chunk::Variable::dtype)
    {
        source = source.with_index_unit(unit).map_err(input)?;
    }
    let st = store.template();
    let t = source.template();
    same_dataset(st, t, &options.concat_dim)?;
    let old = st.sizes()[&options.concat_dim];
    let chunk = store
        .chunks()
        .get(&options.concat_dim)
        .copied()
        .unwrap_or(old)
        .max(1);
    let Some(index) = t.coords().get(&options.concat_dim) else {
        return Err(Error::Usage(format!(
            "the new files have no {} coordinate to append",
            options.concat_dim
        )));
    };
    let index = index.data().clone();
    let request: ChunksRequest = st
        .sizes()
        .iter()
        .map(|(d, &n)| {
            let c = store.chunks().get(d).copied().unwrap_or(n);
            (d.clone(), xbeam_key::ChunkSpec::Size(c))
        })
        .collect();
    let t = t.clone();
    let bytes: u64 = t.data_vars().values().map(|v| t.var_nbytes(v) as u64).sum();
    let notes = source.notes().to_vec();
    let added = record_of(&source)?;
    let (source, base) = continuing(&store, source, &options.concat_dim, chunk)
        .map_err(Error::input(&options.dst))?;
    let sink =
        append_dim(&options.dst, &options.concat_dim, &index).map_err(|e| Error::Output {
            path: options.dst.clone(),
            source: e,
        })?;
    let p = Pipeline::new();
    let ds = ChunkedDataset::from_source(&p, source, &request)?.split_variables()?;
    let count = ds.chunk_count();
    let dim = options.concat_dim.clone();
    // variables without the concat dimension are in the store already
    let shifted = ds.to_chunks()?.flat_map(
        "shift along the store",
        move |(key, chunk): (Key, xbeam_chunk::Dataset)| {
            if !chunk.sizes().contains_key(&dim) {
                return Ok::<_, Error>(None);
            }
            let at = key.offsets().get(&dim).copied().unwrap_or(0);
            Ok(Some((key.with_offset(dim.clone(), base + at), chunk)))
        },
    );
    let sink: Arc<dyn ChunkSink> = Arc::new(sink);
    write_to(&shifted, sink);
    p.run(&runner.clone())?;
    recorded.extend(added);
    write_record(&options.dst, &options.concat_dim, &recorded)?;
    Ok(Ingested {
        summary: Summary::finish(started, bytes, bytes, count),
        files: all - skipped,
        skipped,
        notes,
    })
}

/// The new files' source as the store's continuation, and where along the
/// concat dimension it starts: the store's last chunk, when partly filled,
/// is written again whole, its values read back, then the new files'.
fn continuing(
    store: &xbeam_io::ZarrSource,
    source: NetcdfSource,
    dim: &str,
    chunk: u64,
) -> Result<(Arc<dyn ChunkSource>, u64), xbeam_io::IoError> {
    let old = store.template().sizes()[dim];
    let base = old - old % chunk;
    if base == old {
        return Ok((Arc::new(source), base));
    }
    let region = IndexMap::from([(dim.to_owned(), base..old)]);
    let tail = store.read(&region, None)?;
    let parts: Vec<Arc<dyn ChunkSource>> = vec![
        Arc::new(xbeam_io::MemorySource::new(tail)),
        Arc::new(source),
    ];
    Ok((Arc::new(xbeam_io::ConcatSource::new(parts, dim)?), base))
}

/// The files a store's record does not list (by resolved path and size).
fn not_recorded(files: Vec<PathBuf>, recorded: &[Recorded]) -> Result<Vec<PathBuf>, Error> {
    let mut new = Vec::new();
    for f in files {
        let (path, bytes) = identity(&f)?;
        if !recorded.iter().any(|r| r.path == path && r.bytes == bytes) {
            new.push(f);
        }
    }
    Ok(new)
}

/// The new files of an append hold the store's variables (same
/// dimensions and dtypes) and its sizes along every other dimension.
fn same_dataset(st: &Template, t: &Template, concat: &str) -> Result<(), Error> {
    for (name, v) in st.data_vars() {
        let Some(n) = t.data_vars().get(name) else {
            return Err(Error::Usage(format!(
                "the new files have no variable {name:?}, which the store holds: expected the same variables"
            )));
        };
        let alike = n.dtype == v.dtype
            || (n.dtype.is_float() && v.dtype.is_float())
            || matches!(
                (n.dtype, v.dtype),
                (DType::DateTime(_, a), DType::DateTime(_, b)) if a == b
            );
        ensure_usage!(
            n.dims == v.dims && alike,
            "variable {name:?} is {} {:?} in the new files but {} {:?} in the store",
            n.dtype,
            n.dims,
            v.dtype,
            v.dims
        );
        // values are encoded with the store's packing: another packing
        // would be re-quantized
        let number = |e: &xbeam_chunk::Attrs, k: &str| e.get(k).and_then(Value::as_f64);
        let packed = |e: &xbeam_chunk::Attrs| {
            (
                number(e, "scale_factor"),
                number(e, "add_offset"),
                e.get("dtype").cloned(),
            )
        };
        let (store, new) = (packed(&v.encoding), packed(&n.encoding));
        ensure_usage!(
            (store.0.is_none() && store.1.is_none()) || store == new,
            "variable {name:?} is packed with scale_factor {:?}, add_offset {:?} ({:?}) in the store but {:?}, {:?} ({:?}) in the new files: appending would re-pack their values; ingest all the files again instead",
            store.0,
            store.1,
            store.2,
            new.0,
            new.1,
            new.2
        );
    }
    ensure_usage!(
        t.data_vars().len() == st.data_vars().len(),
        "the new files hold variables the store does not: expected exactly {:?}",
        st.data_vars().keys().collect::<Vec<_>>()
    );
    for (d, &n) in t.sizes() {
        if d != concat {
            ensure_usage!(
                st.sizes().get(d) == Some(&n),
                "dimension {d:?} has size {n} in the new files but {:?} in the store",
                st.sizes().get(d)
            );
        }
    }
    Ok(())
}
