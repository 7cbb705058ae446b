//! Writing keyed chunks into a store: [`ZarrSink`].

use std::ops::Range;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use rayon::prelude::*;
use xbeam_chunk::{Array, DType, Dataset, Template, Variable};
use xbeam_key::{offsets_to_slices, repr, Key};

use super::array::{open_store, write_region, zarrs_array, Writer};
use super::meta::ZarrFormat;
use super::open::open_zarr;
use crate::{ChunkSink, IoError};

/// Element ranges per dimension.
type Region = IndexMap<String, Range<u64>>;

/// A Zarr store set up for writing chunks ([`setup_zarr`](super::setup_zarr)).
pub struct ZarrSink {
    pub(super) path: PathBuf,
    pub(super) format: ZarrFormat,
    pub(super) template: Template,
    /// Zarr chunk size per template dimension.
    pub(super) chunks: IndexMap<String, u64>,
    /// Shard size per dimension, if sharded.
    pub(super) shards: Option<IndexMap<String, u64>>,
    pub(super) writers: IndexMap<String, Writer>,
    /// Where an append started: writes may begin there even if it is not on
    /// a chunk boundary.
    pub(super) append_start: Option<(String, u64)>,
}

impl std::fmt::Debug for ZarrSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrSink")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("chunks", &self.chunks)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

impl ZarrSink {
    /// The store's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The template the store was set up with.
    pub fn template(&self) -> &Template {
        &self.template
    }

    /// Zarr chunk size per dimension.
    pub fn zarr_chunks(&self) -> &IndexMap<String, u64> {
        &self.chunks
    }

    /// Shard size per dimension, if sharded.
    pub fn zarr_shards(&self) -> Option<&IndexMap<String, u64>> {
        self.shards.as_ref()
    }

    /// Opens an existing store for writing more chunks (xarray-beam's
    /// `needs_setup=False`).
    pub fn open(path: impl AsRef<Path>) -> Result<ZarrSink, IoError> {
        let root = path.as_ref();
        let source = open_zarr(root)?;
        let store = open_store(root)?;
        let mut writers = IndexMap::new();
        let mut chunks: IndexMap<String, u64> = IndexMap::new();
        let mut shards: IndexMap<String, u64> = IndexMap::new();
        for (name, o) in &source.arrays {
            for (i, d) in o.info.dims.iter().enumerate() {
                chunks.insert(d.clone(), o.info.chunks[i]);
                if let Some(s) = &o.info.shards {
                    shards.insert(d.clone(), s[i]);
                }
            }
            writers.insert(
                name.clone(),
                Writer {
                    array: zarrs_array(&store, root, &o.info)?,
                    coding: o.coding.clone(),
                    stored: o.info.stored,
                    dims: o.info.dims.clone(),
                },
            );
        }
        for (d, &n) in source.template.sizes() {
            chunks.entry(d.clone()).or_insert(n.max(1));
        }
        Ok(ZarrSink {
            path: root.to_path_buf(),
            format: source.format,
            template: source.template.clone(),
            chunks,
            shards: (!shards.is_empty()).then_some(shards),
            writers,
            append_start: None,
        })
    }

    /// Checks a chunk against the store, as xarray-beam's
    /// `validate_zarr_chunk` does and more: indexes must match the
    /// template's, offsets must lie on chunk (shard) boundaries, and only
    /// the last chunk along a dimension may be partial. Returns the region
    /// and the variables (transposed to the template's order) to write.
    #[allow(clippy::too_many_lines)] // indexes, alignment, then each variable
    fn validate(
        &self,
        key: &Key,
        chunk: &Dataset,
    ) -> Result<(Region, Vec<(String, Variable)>), IoError> {
        let template = &self.template;
        let t_sizes = template.sizes();
        let unexpected: Vec<&String> = chunk
            .coords()
            .iter()
            .filter(|(n, c)| c.dims().len() == 1 && &c.dims()[0] == *n)
            .map(|(n, _)| n)
            .filter(|n| !template.coords().contains_key(*n))
            .collect();
        if !unexpected.is_empty() {
            return Err(IoError::Write(format!(
                "unexpected new indexes found in chunk but not template: {}",
                repr::tuple(unexpected)
            )));
        }
        let sizes = chunk.sizes();
        let region = offsets_to_slices(key.offsets(), &sizes, None)?;
        for (d, r) in &region {
            match t_sizes.get(d) {
                None => {
                    return Err(IoError::Write(format!(
                        "chunk dimension {} is not in the template: expected one of {}",
                        repr::quote(d),
                        repr::tuple(t_sizes.keys())
                    )))
                }
                Some(&n) if r.end > n => {
                    return Err(IoError::Write(format!(
                    "chunk spans {}..{} along dimension {} but the store has size {n}\nkey={key}",
                    r.start,
                    r.end,
                    repr::quote(d)
                )))
                }
                _ => {}
            }
        }
        for (name, c) in template.coords() {
            let is_index = c.dims().len() == 1 && &c.dims()[0] == name;
            if !is_index {
                continue;
            }
            let Some(actual) = chunk.coords().get(name) else {
                continue;
            };
            let r = &region[name];
            let expected = c.isel(
                &[(name.clone(), r.start as usize..r.end as usize)]
                    .into_iter()
                    .collect(),
            )?;
            if !expected.data().equals(actual.data()) {
                return Err(IoError::Write(format!(
                    "template and chunk indexes do not match for dim {}:\n{}\nvs.\n{}\nkey={key}.",
                    repr::quote(name),
                    format_index(expected.data()),
                    format_index(actual.data())
                )));
            }
        }
        let (grid, what) = match &self.shards {
            Some(s) => (s, "shards"),
            None => (&self.chunks, "chunks"),
        };
        for (d, r) in &region {
            let Some(&c) = grid.get(d) else { continue };
            let appending = self
                .append_start
                .as_ref()
                .is_some_and(|(ad, s)| ad == d && *s == r.start);
            if r.start % c != 0 && !appending {
                return Err(IoError::Write(format!(
                    "chunk offset {} along dimension {} is not a multiple of zarr {what} {}",
                    r.start,
                    repr::quote(d),
                    repr::dict(grid.iter().map(|(k, v)| (k, *v)))
                )));
            }
            let size = r.end - r.start;
            if size % c != 0 && r.end != t_sizes[d] && !appending {
                return Err(IoError::Write(format!(
                    "chunk is smaller than zarr {what} {} along at least one dimension, which can lead to a race condition that results in incomplete writes. Use ConsolidateChunks() or Rechunk() to ensure appropriate chunk sizes before feeding data into ChunksToZarr().\nkey={key}\nchunk={chunk}",
                    repr::dict(grid.iter().map(|(k, v)| (k, *v)))
                )));
            }
        }
        let mut vars = Vec::new();
        for (name, var) in chunk.data_vars() {
            let Some(w) = self.writers.get(name) else {
                if template.coords().contains_key(name) {
                    continue; // written at setup
                }
                return Err(IoError::Write(format!(
                    "chunk variable {} is not in the template: expected one of {}",
                    repr::quote(name),
                    repr::tuple(self.writers.keys())
                )));
            };
            let same_dims =
                var.dims().len() == w.dims.len() && var.dims().iter().all(|d| w.dims.contains(d));
            if !same_dims {
                return Err(IoError::Write(format!(
                    "chunk variable {} has dimensions {} but the store has {}\nkey={key}",
                    repr::quote(name),
                    repr::tuple(var.dims()),
                    repr::tuple(&w.dims)
                )));
            }
            let var = if var.dims() == w.dims.as_slice() {
                var.clone()
            } else {
                var.transpose(&w.dims)?
            };
            let expected = w.coding.decoded;
            let ok = var.dtype() == expected
                || (var.dtype().is_numeric() && expected.is_numeric())
                || matches!((var.dtype(), expected), (DType::DateTime(_, a), DType::DateTime(_, b)) if a == b);
            if !ok {
                return Err(IoError::Write(format!(
                    "chunk variable {} has dtype {} but the store holds {expected}\nkey={key}",
                    repr::quote(name),
                    var.dtype()
                )));
            }
            vars.push((name.clone(), var));
        }
        Ok((region, vars))
    }

    /// Writes one chunk: validates it first (see xarray-beam's
    /// `validate_zarr_chunk`; on failure nothing is written), transposes
    /// each variable to the template's dimension order, skips variables
    /// written at setup, and writes whole Zarr chunks (or shards) in
    /// parallel. Writing the same chunk twice gives the same store.
    pub fn write_chunk(&self, key: &Key, chunk: &Dataset) -> Result<(), IoError> {
        let (region, vars) = self.validate(key, chunk)?;
        vars.par_iter()
            .map(|(name, var)| {
                let w = &self.writers[name];
                let ranges: Vec<Range<u64>> = w
                    .dims
                    .iter()
                    .map(|d| {
                        region
                            .get(d)
                            .cloned()
                            .unwrap_or(0..var.size_of(d).unwrap_or(0) as u64)
                    })
                    .collect();
                write_region(&self.path, w, &ranges, var.data())
            })
            .collect::<Result<Vec<()>, IoError>>()
            .map_err(|e| IoError::WriteChunk {
                key: key.to_string(),
                source: Box::new(e),
            })?;
        Ok(())
    }
}

fn format_index(a: &Array) -> String {
    let n = a.len();
    let items: Vec<String> = (0..n.min(20)).filter_map(|i| a.format_value(i)).collect();
    let more = if n > 20 { ", ..." } else { "" };
    format!("[{}{more}]", items.join(", "))
}

impl ChunkSink for ZarrSink {
    fn template(&self) -> &Template {
        &self.template
    }

    fn write_chunk(&self, key: &Key, chunk: &Dataset) -> Result<(), IoError> {
        ZarrSink::write_chunk(self, key, chunk)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn flush(&self) -> Result<(), IoError> {
        super::sync_store(&self.path)
    }
}
