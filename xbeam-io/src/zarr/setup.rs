//! Setting up a new store from a template: [`SetupOptions`], [`setup_zarr`].

use std::fs;
use std::ops::Range;
use std::path::Path;

use indexmap::{IndexMap, IndexSet};
use rayon::prelude::*;
use serde_json::{json, Value};
use xbeam_chunk::chunks::TargetChunks;
use xbeam_chunk::{Attrs, Template};
use xbeam_key::{repr, ChunkSpec, ChunksRequest};

use super::array::{open_store, write_region, zarrs_array, Writer};
use super::coding::{self, Plan};
use super::manifest;
use super::meta::{self, ArrayInfo, Stored, ZarrFormat};
use super::sink::ZarrSink;
use crate::IoError;

/// Options of [`setup_zarr`]: chunks, shards, format and encoding, as in
/// xarray-beam's `setup_zarr`.
///
/// Chunks and shards are [`TargetChunks`], the chunk vocabulary of the
/// transforms: [`ChunkSpec::Size`], or [`ChunkSpec::Full`] (`-1`) for the
/// whole dimension. Zarr grids are regular: explicit sizes
/// ([`ChunkSpec::Sizes`]) are accepted only when they are a regular grid.
///
/// ```
/// use xbeam_io::SetupOptions;
/// use xbeam_key::ChunkSpec;
/// let a = SetupOptions::default().chunks([("time", 24), ("latitude", -1)]);
/// let b = SetupOptions::default().chunks_str("time=24,latitude=-1")?;
/// assert_eq!(a.chunks, b.chunks);
/// assert_eq!(a.chunks["latitude"], ChunkSpec::Full);
/// # Ok::<(), xbeam_io::IoError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct SetupOptions {
    /// Zarr chunks per dimension; [`ChunkSpec::Full`] or a missing
    /// dimension means the whole dimension.
    pub chunks: TargetChunks,
    /// Shards per dimension (v3 only); unnamed dimensions default to the
    /// chunk size, [`ChunkSpec::Full`] to the whole dimension. Chunks
    /// written must then be whole shards.
    pub shards: Option<TargetChunks>,
    /// The Zarr format (default v3).
    pub format: ZarrFormat,
    /// Per-variable encoding (xarray's keys: `dtype`, `_FillValue`,
    /// `scale_factor`, `add_offset`, `units`, `calendar`, `compressors`),
    /// merged over each variable's own encoding.
    pub encoding: IndexMap<String, Attrs>,
    /// Resume writing a store this setup wrote before (a run that was
    /// killed or failed): the store is kept, its metadata must be exactly
    /// what this setup writes, and chunks whose file already holds the
    /// bytes a write would put there are not written again (see the
    /// [`manifest`](super::manifest_status) docs). Without a store at the
    /// path, a plain setup.
    pub resume: bool,
}

fn collect_specs<S: Into<String>, C: Into<ChunkSpec>>(
    specs: impl IntoIterator<Item = (S, C)>,
) -> TargetChunks {
    specs
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

fn parse_specs(text: &str) -> Result<TargetChunks, IoError> {
    Ok(text.parse::<ChunksRequest>()?.fixed_specs()?)
}

impl SetupOptions {
    /// Resuming a store this setup wrote before ([`SetupOptions::resume`]).
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// With these chunks: [`ChunkSpec`]s, or sizes with `-1` for the whole
    /// dimension (`[("time", 24), ("latitude", -1)]`).
    pub fn chunks<S: Into<String>, C: Into<ChunkSpec>>(
        mut self,
        chunks: impl IntoIterator<Item = (S, C)>,
    ) -> Self {
        self.chunks = collect_specs(chunks);
        self
    }

    /// With these chunks, written as text: `"time=24,latitude=-1"`.
    pub fn chunks_str(mut self, text: &str) -> Result<Self, IoError> {
        self.chunks = parse_specs(text)?;
        Ok(self)
    }

    /// With these shards (v3): [`ChunkSpec`]s, or sizes with `-1` for the
    /// whole dimension.
    pub fn shards<S: Into<String>, C: Into<ChunkSpec>>(
        mut self,
        shards: impl IntoIterator<Item = (S, C)>,
    ) -> Self {
        self.shards = Some(collect_specs(shards));
        self
    }

    /// With these shards (v3), written as text: `"time=240,latitude=-1"`.
    pub fn shards_str(mut self, text: &str) -> Result<Self, IoError> {
        self.shards = Some(parse_specs(text)?);
        Ok(self)
    }

    /// In this format.
    pub fn format(mut self, format: ZarrFormat) -> Self {
        self.format = format;
        self
    }

    /// With this encoding for one variable.
    pub fn encoding(mut self, var: impl Into<String>, encoding: Attrs) -> Self {
        self.encoding.insert(var.into(), encoding);
        self
    }
}

/// The size of a regular Zarr chunk (or shard) along a dimension of `size`
/// elements: `n` for [`ChunkSpec::Size`]`(n)`, `size` for
/// [`ChunkSpec::Full`]; explicit sizes only when they make a regular grid
/// (`3,3,1` along 7 is 3).
///
/// ```
/// use xbeam_io::zarr_chunk_size;
/// use xbeam_key::ChunkSpec;
/// assert_eq!(zarr_chunk_size("x", &ChunkSpec::Full, 7)?, 7);
/// assert_eq!(zarr_chunk_size("x", &ChunkSpec::Sizes(vec![3, 3, 1]), 7)?, 3);
/// let err = zarr_chunk_size("x", &ChunkSpec::Sizes(vec![365, 366]), 731).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "Zarr chunks must be regular: expected a size or -1 for dimension 'x', found 365,366"
/// );
/// # Ok::<(), xbeam_io::IoError>(())
/// ```
pub fn zarr_chunk_size(dim: &str, spec: &ChunkSpec, size: u64) -> Result<u64, IoError> {
    regular_size("chunks", dim, spec, size)
}

fn regular_size(what: &str, dim: &str, spec: &ChunkSpec, size: u64) -> Result<u64, IoError> {
    match spec {
        ChunkSpec::Full => Ok(size),
        ChunkSpec::Size(0) => Err(IoError::Invalid(format!(
            "zarr {what} for dimension {} must be positive or -1, found 0",
            repr::quote(dim)
        ))),
        ChunkSpec::Size(c) => Ok(*c),
        ChunkSpec::Sizes(sizes) => match sizes.first() {
            Some(&c)
                if c > 0
                    && ChunkSpec::Size(c).normalize(dim, size).ok().as_ref() == Some(sizes) =>
            {
                Ok(c)
            }
            _ => Err(IoError::Invalid(format!(
                "Zarr {what} must be regular: expected a size or -1 for dimension {}, found {spec}",
                repr::quote(dim)
            ))),
        },
    }
}

fn finalize(
    requested: &TargetChunks,
    sizes: &IndexMap<String, u64>,
    what: &str,
) -> Result<IndexMap<String, u64>, IoError> {
    if let Some(d) = requested.keys().find(|d| !sizes.contains_key(*d)) {
        return Err(IoError::Invalid(format!(
            "zarr {what} name dimension {} which the template does not have: expected one of {}",
            repr::quote(d),
            repr::tuple(sizes.keys())
        )));
    }
    sizes
        .iter()
        .map(|(d, &n)| {
            let c = match requested.get(d) {
                None => n,
                Some(spec) => regular_size(what, d, spec, n)?,
            };
            Ok((d.clone(), c.max(1)))
        })
        .collect()
}

fn default_compressor() -> Value {
    json!({"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0})
}

fn compressors_of(name: &str, encoding: &Attrs) -> Result<Vec<Value>, IoError> {
    let list = match (encoding.get("compressors"), encoding.get("compressor")) {
        (Some(Value::Array(list)), _) => list.clone(),
        (Some(Value::Null), _) | (None, Some(Value::Null)) => Vec::new(),
        (None, Some(c)) => vec![c.clone()],
        (None, None) => vec![default_compressor()],
        (Some(other), _) => {
            return Err(IoError::Invalid(format!(
                "encoding compressors of {name:?} must be a list, found {other}"
            )))
        }
    };
    list.iter().map(meta::check_v2_codec).collect()
}

/// Everything needed to write one array's metadata.
struct ArraySpec {
    name: String,
    dims: Vec<String>,
    shape: Vec<u64>,
    chunks: Vec<u64>,
    shards: Option<Vec<u64>>,
    plan: Plan,
    attrs: Attrs,
    compressors: Vec<Value>,
    separator: Option<String>,
}

impl ArraySpec {
    /// The array's metadata document and (v2) its `.zattrs`.
    fn documents(&self, format: ZarrFormat) -> Result<(Value, Attrs), IoError> {
        let stored = self.plan.stored;
        let mut attrs = self.attrs.clone();
        for (k, v) in &self.plan.cf_attrs {
            attrs.insert(k.clone(), v.clone());
        }
        Ok(match format {
            ZarrFormat::V2 => {
                if self.compressors.len() > 1 {
                    return Err(IoError::Invalid(format!(
                        "variable {:?}: zarr v2 takes one compressor, found {}",
                        self.name,
                        self.compressors.len()
                    )));
                }
                let zarray = json!({
                    "shape": self.shape,
                    "chunks": self.chunks,
                    "dtype": stored.v2_dtype(),
                    "fill_value": self.plan.fill_value,
                    "order": "C",
                    "filters": null,
                    "dimension_separator": self.separator.clone().unwrap_or_else(|| ".".into()),
                    "compressor": self.compressors.first().cloned().unwrap_or(Value::Null),
                    "zarr_format": 2,
                });
                attrs.insert("_ARRAY_DIMENSIONS".into(), json!(self.dims));
                (zarray, attrs)
            }
            ZarrFormat::V3 => {
                let bytes = if stored.itemsize() == 1 && !stored.is_string() {
                    json!({"name": "bytes"})
                } else {
                    json!({"name": "bytes", "configuration": {"endian": "little"}})
                };
                let mut codecs = vec![bytes.clone()];
                for c in &self.compressors {
                    codecs.push(meta::v2_codec_to_v3(c, stored.itemsize())?);
                }
                let (grid, codecs) = match &self.shards {
                    None => (self.chunks.clone(), codecs),
                    Some(shards) => (
                        shards.clone(),
                        vec![json!({"name": "sharding_indexed", "configuration": {
                            "chunk_shape": self.chunks,
                            "codecs": codecs,
                            "index_codecs": [
                                {"name": "bytes", "configuration": {"endian": "little"}},
                                {"name": "crc32c"}
                            ],
                            "index_location": "end",
                        }})],
                    ),
                };
                let separator = self.separator.clone().unwrap_or_else(|| "/".into());
                let zarr_json = json!({
                    "shape": self.shape,
                    "data_type": stored.v3_data_type(),
                    "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": grid}},
                    "chunk_key_encoding": {"name": "default", "configuration": {"separator": separator}},
                    "fill_value": self.plan.fill_value,
                    "codecs": codecs,
                    "attributes": attrs,
                    "dimension_names": self.dims,
                    "zarr_format": 3,
                    "node_type": "array",
                    "storage_transformers": [],
                });
                (zarr_json, Attrs::new())
            }
        })
    }
}

fn is_zarr_store(path: &Path) -> bool {
    path.join("zarr.json").exists()
        || path.join(".zgroup").exists()
        || path.join(".zarray").exists()
}

/// Prepares `path` for a new store: removes an existing Zarr store there;
/// refuses to remove anything else.
fn clear_store_path(path: &Path) -> Result<(), IoError> {
    if !path.exists() {
        return Ok(());
    }
    let empty_dir = path.is_dir()
        && fs::read_dir(path)
            .map_err(|e| IoError::file(path.display(), "cannot list the directory", e))?
            .next()
            .is_none();
    if empty_dir {
        return Ok(());
    }
    if !path.is_dir() || !is_zarr_store(path) {
        return Err(IoError::store(
            path.display(),
            "refusing to overwrite: the path exists and is not a Zarr store",
        ));
    }
    fs::remove_dir_all(path)
        .map_err(|e| IoError::file(path.display(), "cannot remove the existing store", e))
}

/// Sets up a Zarr store for `template`, as xarray-beam's `setup_zarr`
/// does: any existing store at `path` is replaced; all metadata (with
/// consolidated metadata: `.zmetadata` for v2, inline in `zarr.json` for
/// v3) and the coordinates are written; data variables get metadata only,
/// and are written chunk by chunk with [`ZarrSink::write_chunk`].
#[allow(clippy::too_many_lines)] // validate, plan every array, write metadata, write coordinates
pub fn setup_zarr(
    template: &Template,
    path: impl AsRef<Path>,
    options: &SetupOptions,
) -> Result<ZarrSink, IoError> {
    let root = path.as_ref();
    let sizes = template.sizes().clone();
    for (k, e) in &options.encoding {
        if !template.data_vars().contains_key(k) && !template.coords().contains_key(k) {
            return Err(IoError::Invalid(format!(
                "encoding contains key not present in template: {}",
                repr::quote(k)
            )));
        }
        if e.contains_key("chunks") || e.contains_key("shards") {
            return Err(IoError::Invalid(format!(
                "encoding for {} includes 'chunks' or 'shards', which must be specified via zarr_chunks or zarr_shards: {}",
                repr::quote(k),
                Value::Object(e.iter().map(|(a, b)| (a.clone(), b.clone())).collect())
            )));
        }
    }
    let chunks = finalize(&options.chunks, &sizes, "chunks")?;
    let shards = match &options.shards {
        None => None,
        Some(requested) => {
            if options.format == ZarrFormat::V2 {
                return Err(IoError::Invalid(
                    "zarr shards need zarr format 3, found format 2".into(),
                ));
            }
            let mut merged: TargetChunks = chunks
                .iter()
                .map(|(d, &c)| (d.clone(), ChunkSpec::Size(c)))
                .collect();
            for (d, s) in requested {
                merged.insert(d.clone(), s.clone());
            }
            let shards = finalize(&merged, &sizes, "shards")?;
            if shards.iter().any(|(d, &s)| s % chunks[d] != 0) {
                return Err(IoError::Invalid(format!(
                    "shard sizes are not all evenly divisible by chunk sizes: shards={}, chunks={}",
                    repr::dict(shards.iter().map(|(k, v)| (k, *v))),
                    repr::dict(chunks.iter().map(|(k, v)| (k, *v)))
                )));
            }
            Some(shards)
        }
    };

    // which non-index coordinates each data variable refers to
    let non_index: Vec<&String> = template
        .coords()
        .iter()
        .filter(|(n, c)| !(c.dims().len() == 1 && &c.dims()[0] == *n))
        .map(|(n, _)| n)
        .collect();
    let mut referenced: IndexSet<&String> = IndexSet::new();
    let mut specs = Vec::new();
    let merged_encoding = |name: &str, own: &Attrs| -> Attrs {
        let mut e = own.clone();
        for key in ["chunks", "shards", "preferred_chunks", "coordinates"] {
            e.shift_remove(key);
        }
        if let Some(user) = options.encoding.get(name) {
            for (k, v) in user {
                e.insert(k.clone(), v.clone());
            }
        }
        e
    };
    let separator_of = |e: &Attrs| -> Option<String> {
        e.get("dimension_separator")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    for (name, c) in template.coords() {
        let encoding = merged_encoding(name, c.encoding());
        let plan = coding::plan(name, c.dtype(), &encoding, Some(c.data()), options.format)?;
        let shape: Vec<u64> = c.shape().iter().map(|&n| n as u64).collect();
        specs.push(ArraySpec {
            name: name.clone(),
            dims: c.dims().to_vec(),
            chunks: shape.iter().map(|&n| n.max(1)).collect(),
            shape,
            shards: None,
            plan,
            attrs: c.attrs().clone(),
            compressors: compressors_of(name, &encoding)?,
            separator: separator_of(&encoding),
        });
    }
    for (name, v) in template.data_vars() {
        let encoding = merged_encoding(name, &v.encoding);
        let plan = coding::plan(name, v.dtype, &encoding, None, options.format)?;
        let mut attrs = v.attrs.clone();
        let refs: Vec<&String> = non_index
            .iter()
            .copied()
            .filter(|n| {
                template.coords()[*n]
                    .dims()
                    .iter()
                    .all(|d| v.dims.contains(d))
            })
            .collect();
        if !refs.is_empty() {
            attrs.insert(
                "coordinates".into(),
                json!(refs
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")),
            );
            referenced.extend(refs);
        }
        specs.push(ArraySpec {
            name: name.clone(),
            dims: v.dims.clone(),
            shape: v.dims.iter().map(|d| sizes[d]).collect(),
            chunks: v.dims.iter().map(|d| chunks[d]).collect(),
            shards: shards
                .as_ref()
                .filter(|_| !v.dims.is_empty())
                .map(|s| v.dims.iter().map(|d| s[d]).collect()),
            plan,
            attrs,
            compressors: compressors_of(name, &encoding)?,
            separator: separator_of(&encoding),
        });
    }
    let mut group_attrs = template.attrs().clone();
    let unreferenced: Vec<&str> = non_index
        .iter()
        .filter(|n| !referenced.contains(*n))
        .map(|s| s.as_str())
        .collect();
    if !unreferenced.is_empty() {
        group_attrs.insert("coordinates".into(), json!(unreferenced.join(" ")));
    }

    let mut documents = Vec::new();
    for spec in &specs {
        let (doc, attrs) = spec.documents(options.format)?;
        documents.push((spec.name.clone(), doc, attrs));
    }
    if options.resume && is_zarr_store(root) {
        manifest::require(root)?;
        meta::check_group(root, options.format, &group_attrs, &documents)?;
        manifest::resume(root)?;
    } else {
        clear_store_path(root)?;
        fs::create_dir_all(root)
            .map_err(|e| IoError::file(root.display(), "cannot create the directory", e))?;
        // first, so that a store killed at any later point says it is
        // incomplete
        manifest::start(root)?;
        meta::write_group(root, options.format, &group_attrs, &documents)?;
    }

    let store = open_store(root)?;
    let mut writers = IndexMap::new();
    let mut coord_writes = Vec::new();
    for (spec, (name, doc, attrs)) in specs.into_iter().zip(documents) {
        let info = info_from_doc(
            &name,
            &spec.dims,
            doc,
            attrs,
            spec.plan.stored,
            options.format,
        );
        let array = zarrs_array(&store, root, &info)?;
        let writer = Writer {
            array,
            coding: spec.plan.coding,
            stored: spec.plan.stored,
            dims: spec.dims,
        };
        if let Some(c) = template.coords().get(&name) {
            coord_writes.push((writer, c.data().clone()));
        } else {
            writers.insert(name, writer);
        }
    }
    coord_writes
        .par_iter()
        .map(|(w, data)| {
            let ranges: Vec<Range<u64>> = data.shape().iter().map(|&n| 0..n as u64).collect();
            write_region(root, w, &ranges, data)
        })
        .collect::<Result<Vec<()>, IoError>>()?;
    Ok(ZarrSink {
        path: root.to_path_buf(),
        format: options.format,
        template: template.clone(),
        chunks,
        shards,
        writers,
        append_start: None,
    })
}

fn info_from_doc(
    name: &str,
    dims: &[String],
    doc: Value,
    attrs: Attrs,
    stored: Stored,
    format: ZarrFormat,
) -> ArrayInfo {
    let shape = doc["shape"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    ArrayInfo {
        name: name.to_owned(),
        dims: dims.to_vec(),
        shape,
        chunks: Vec::new(),
        shards: None,
        attrs,
        meta: doc,
        stored,
        format,
    }
}
