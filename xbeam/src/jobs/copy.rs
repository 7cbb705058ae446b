//! `xbeam copy`: re-encode a Zarr store or convert it between v2 and v3 on
//! the engine, optionally with other chunks (that divide the source's
//! chunks or are multiples of them) or shards.
//!
//! Element `i` of the engine's source is one region aligned to both the
//! source chunks and the target's write unit (chunk, or shard when
//! sharded): a multiple of the source chunks is read directly; a source
//! chunk larger than the target is read once and split. Different regions
//! are read and written by different workers; within a region, Zarr chunks
//! are decoded and encoded in parallel.
//!
//! ```
//! use xbeam::io::{open_zarr, ZarrFormat};
//! use xbeam::jobs::{copy, generate};
//! use xbeam::runner::Runner;
//!
//! let dir = tempfile::tempdir()?;
//! let (src, dst) = (dir.path().join("a.zarr"), dir.path().join("b.zarr"));
//! let runner = Runner::local_with_workers(2).quiet();
//! generate::run(&generate::Options { ntime: Some(48), nlat: 5, nlon: 8, ..generate::Options::new(&src) }, &runner)?;
//! let options = copy::Options {
//!     format: Some(ZarrFormat::V3),
//!     codec: Some(copy::Codec::Zstd),
//!     chunks: xbeam::transforms::parse_chunks("time=12")?,
//!     ..copy::Options::new(&src, &dst)
//! };
//! copy::run(&options, &runner)?;
//! let all = Default::default();
//! let (a, b) = (open_zarr(&src)?.read(&all, None)?, open_zarr(&dst)?.read(&all, None)?);
//! assert!(a.identical(&b));
//! assert_eq!(open_zarr(&dst)?.chunks()["time"], 12);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use indexmap::IndexMap;
use serde_json::{json, Value};
use xbeam_chunk::chunks::TargetChunks;
use xbeam_chunk::Attrs;
use xbeam_io::{
    open_zarr, setup_zarr, zarr_chunk_size, ChunkSink, SetupOptions, ZarrFormat, ZarrSource,
};
use xbeam_key::ChunkSpec;
use xbeam_runner::{Pipeline, Runner};

use super::{output, Summary};
use crate::error::{ensure_usage, Error};
use crate::transforms::{write_to, DatasetToChunks, SplitChunks};

/// A compressor for the copy's arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// Blosc with LZ4 and byte shuffle (xarray-beam's and xbeam's default).
    Lz4,
    /// Zstandard.
    Zstd,
    /// Gzip.
    Gzip,
    /// Zlib (v3 has no zlib codec: written as gzip there).
    Zlib,
    /// Blosc with Zstandard and byte shuffle.
    BloscZstd,
    /// No compression.
    None,
}

impl Codec {
    /// Every codec, by its CLI name.
    pub const ALL: [Codec; 6] = [
        Codec::Lz4,
        Codec::Zstd,
        Codec::Gzip,
        Codec::Zlib,
        Codec::BloscZstd,
        Codec::None,
    ];

    /// The CLI name: `lz4`, `zstd`, `gzip`, `zlib`, `blosc-zstd`, `none`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
            Codec::Gzip => "gzip",
            Codec::Zlib => "zlib",
            Codec::BloscZstd => "blosc-zstd",
            Codec::None => "none",
        }
    }

    /// The compression levels the codec takes, and its default.
    pub fn levels(self) -> (std::ops::RangeInclusive<i64>, i64) {
        match self {
            Codec::Lz4 | Codec::BloscZstd | Codec::Gzip | Codec::Zlib => (0..=9, 5),
            Codec::Zstd => (1..=22, 3),
            Codec::None => (0..=0, 0),
        }
    }

    /// The numcodecs compressor list of an array's encoding.
    fn compressors(self, level: Option<i64>) -> Result<Value, Error> {
        let (range, default) = self.levels();
        let level = level.unwrap_or(default);
        ensure_usage!(
            range.contains(&level),
            "--clevel {level} is out of range for {self}: expected {}..={}",
            range.start(),
            range.end()
        );
        let blosc = |cname: &str| json!([{"id": "blosc", "cname": cname, "clevel": level, "shuffle": 1, "blocksize": 0}]);
        Ok(match self {
            Codec::Lz4 => blosc("lz4"),
            Codec::BloscZstd => blosc("zstd"),
            Codec::Zstd => json!([{"id": "zstd", "level": level}]),
            Codec::Gzip => json!([{"id": "gzip", "level": level}]),
            Codec::Zlib => json!([{"id": "zlib", "level": level}]),
            Codec::None => json!([]),
        })
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Codec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Codec, Error> {
        Codec::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Codec::ALL.iter().map(|c| c.name()).collect();
                Error::Usage(format!(
                    "unknown codec {s:?}: expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// What to copy, and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The input store.
    pub src: PathBuf,
    /// The output store.
    pub dst: PathBuf,
    /// What to do with an existing output, and the free-space check.
    pub write: output::WriteMode,
    /// The output's Zarr format (default: the input's).
    pub format: Option<ZarrFormat>,
    /// The output's compressor (default: each variable's own).
    pub codec: Option<Codec>,
    /// The compression level (default: the codec's).
    pub clevel: Option<i64>,
    /// Chunks per dimension ([`ChunkSpec::Full`], `-1`: whole); other
    /// dimensions keep the input's. Each must divide the input's chunk or be
    /// a multiple of it.
    pub chunks: TargetChunks,
    /// Shards per dimension (v3).
    pub shards: Option<TargetChunks>,
}

impl Options {
    /// A plain copy of `src` to `dst`.
    pub fn new(src: impl AsRef<Path>, dst: impl AsRef<Path>) -> Options {
        Options {
            src: src.as_ref().to_path_buf(),
            dst: dst.as_ref().to_path_buf(),
            write: output::WriteMode::default(),
            format: None,
            codec: None,
            clevel: None,
            chunks: TargetChunks::new(),
            shards: None,
        }
    }
}

/// The regions the engine reads (`read` per dimension) and the pieces it
/// writes (`write`: the target chunk, or shard).
#[derive(Debug, Clone)]
struct Plan {
    dims: Vec<String>,
    /// The output's chunks (inside the shards, when sharded).
    chunks: Vec<u64>,
    read: Vec<u64>,
    write: Vec<u64>,
    /// Regions per dimension.
    counts: Vec<u64>,
}

/// A size per dimension from a flag's chunks (`-1`: the whole dimension;
/// regular sizes only), or `default` for a dimension not named.
fn size_of(flag: &str, map: &TargetChunks, d: &str, n: u64, default: u64) -> Result<u64, Error> {
    let size = match map.get(d) {
        Some(c) => {
            zarr_chunk_size(d, c, n).map_err(|e| Error::Usage(format!("{flag} {d}={c}: {e}")))?
        }
        None => default,
    };
    Ok(size.clamp(1, n.max(1)))
}

fn check_names(flag: &str, map: &TargetChunks, dims: &[String], src: &Path) -> Result<(), Error> {
    for d in map.keys() {
        ensure_usage!(
            dims.contains(d),
            "{flag} names dimension {d:?}, which the data variables of {} do not have: expected one of {}",
            src.display(),
            dims.join(", ")
        );
    }
    Ok(())
}

impl Plan {
    fn new(source: &ZarrSource, options: &Options) -> Result<Plan, Error> {
        let t = source.template();
        let dims: Vec<String> = t
            .sizes()
            .keys()
            .filter(|d| t.data_vars().values().any(|v| v.dims.contains(d)))
            .cloned()
            .collect();
        check_names("--chunks", &options.chunks, &dims, &options.src)?;
        if let Some(shards) = &options.shards {
            check_names("--shards", shards, &dims, &options.src)?;
        }
        let (mut chunks, mut read, mut write, mut counts) = (vec![], vec![], vec![], vec![]);
        for d in &dims {
            let n = t.sizes()[d];
            let s = source
                .chunks()
                .get(d)
                .copied()
                .unwrap_or(n)
                .clamp(1, n.max(1));
            let c = size_of("--chunks", &options.chunks, d, n, s)?;
            let w = match &options.shards {
                None => c,
                Some(shards) => size_of("--shards", shards, d, n, c)?,
            };
            let u = s.max(w);
            ensure_usage!(
                u % s.min(w) == 0 || u >= n,
                "the output's {} {w} along {d:?} neither divides the input's chunk {s} nor is a multiple of it (use xbeam rechunk)",
                if options.shards.is_some() { "shard" } else { "chunk" }
            );
            chunks.push(c);
            read.push(u);
            write.push(w);
            counts.push(n.div_ceil(u));
        }
        Ok(Plan {
            dims,
            chunks,
            read,
            write,
            counts,
        })
    }

    /// How many regions are read (the summary's chunk count).
    fn count(&self) -> u64 {
        self.counts.iter().product()
    }

    /// Chunk specs along the data variables' dimensions.
    fn specs(&self, sizes: &[u64]) -> TargetChunks {
        self.dims
            .iter()
            .zip(sizes)
            .map(|(d, &n)| (d.clone(), ChunkSpec::Size(n)))
            .collect()
    }
}

fn encodings(source: &ZarrSource, options: &Options) -> Result<IndexMap<String, Attrs>, Error> {
    let Some(codec) = options.codec else {
        ensure_usage!(options.clevel.is_none(), "--clevel needs --codec");
        return Ok(IndexMap::new());
    };
    let compressors = codec.compressors(options.clevel)?;
    let t = source.template();
    Ok(t.data_vars()
        .keys()
        .chain(t.coords().keys())
        .map(|name| {
            let e: Attrs = [("compressors".to_owned(), compressors.clone())]
                .into_iter()
                .collect();
            (name.clone(), e)
        })
        .collect())
}

/// Copies `options.src` to `options.dst`.
pub fn run(options: &Options, runner: &Runner) -> Result<Summary, Error> {
    let started = Instant::now();
    let source = open_zarr(&options.src).map_err(Error::input(&options.src))?;
    let format = options.format.unwrap_or(source.format());
    ensure_usage!(
        options.shards.is_none() || format == ZarrFormat::V3,
        "--shards needs --format 3"
    );
    let plan = Plan::new(&source, options)?;
    // unsharded, the output's chunks are what is written; sharded, the
    // shards are, with the chunks inside them
    let setup = SetupOptions {
        chunks: plan.specs(&plan.chunks),
        shards: options.shards.as_ref().map(|_| plan.specs(&plan.write)),
        format,
        encoding: encodings(&source, options)?,
        resume: options.write.resume,
    };
    let t = source.template();
    let bytes = t.data_nbytes();
    output::prepare(&options.dst, Some(&options.src), options.write, bytes)?;
    let sink = setup_zarr(t, &options.dst, &setup).map_err(Error::output(&options.dst))?;
    let count = plan.count();
    // each variable is read over its own dimensions (a variable without
    // some dimension is read once, not in every region along it), regions
    // aligned to the input's chunks, then cut into the output's chunks
    let read = DatasetToChunks::new(Arc::new(source), plan.specs(&plan.read)).split_vars(true);
    let whole = plan.read == plan.write;
    let write = plan.specs(&plan.write);
    let sink: Arc<dyn ChunkSink> = Arc::new(sink);
    let p = Pipeline::new();
    let regions = p.apply("read", read)?;
    // a region is written as read unless it holds several pieces
    let pieces = if whole {
        regions
    } else {
        regions.apply("split", SplitChunks::new(write))
    };
    write_to(&pieces, sink);
    p.run(runner)?;
    Ok(Summary::finish(started, bytes, bytes, count))
}
