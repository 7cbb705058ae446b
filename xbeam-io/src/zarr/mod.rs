//! Zarr v2 and v3 stores: open and read ([`open_zarr`]), set up and write
//! ([`setup_zarr`], [`ZarrSink`]), check ([`verify`]) and append
//! ([`append_dim`]).

mod cf;
mod meta;

use std::collections::BTreeSet;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::{IndexMap, IndexSet};
use rayon::prelude::*;
use serde_json::{json, Value};
use xbeam_chunk::{
    Array, Attrs, DType, Dataset, Element, Template, VarSchema, Variable, Variables,
};
use xbeam_key::{offsets_to_slices, repr, Key, VarSet};
use zarrs::array::{Array as ZArray, ArrayBytes, ArrayMetadata, ArraySubset, CodecOptions};
use zarrs::filesystem::FilesystemStore;

pub use meta::{ArrayInfo, ZarrFormat};

use self::cf::{Coding, Plan};
use self::meta::{GroupMeta, Stored};
use crate::IoError;

type Store = FilesystemStore;

/// Element ranges per dimension.
type Region = IndexMap<String, Range<u64>>;

fn open_store(path: &Path) -> Result<Arc<Store>, IoError> {
    FilesystemStore::new(path)
        .map(Arc::new)
        .map_err(|e| IoError::store(path.display(), e.to_string()))
}

fn zarrs_array(
    store: &Arc<Store>,
    root: &Path,
    info: &ArrayInfo,
) -> Result<ZArray<Store>, IoError> {
    let path = root.join(&info.name);
    let mut doc = info.meta.clone();
    if doc.get("fill_value").is_none_or(Value::is_null) {
        // zarrs needs a fill value; xarray's v2 arrays often have none
        doc["fill_value"] = match info.stored {
            s if s.is_string() => json!(""),
            Stored::Plain(DType::Bool) => json!(false),
            s if s.is_float() => json!("NaN"),
            _ => json!(0),
        };
    }
    if let Stored::Bytes(n) = info.stored {
        // zarrs has no fixed-width byte strings: the same bytes as raw bits
        match info.format {
            ZarrFormat::V2 => {
                doc["dtype"] = json!(format!("|V{n}"));
                doc["fill_value"] = json!(cf::base64_encode(&vec![0u8; n]));
            }
            ZarrFormat::V3 => {
                doc["data_type"] = json!(format!("r{}", 8 * n));
                doc["fill_value"] = json!(vec![0u8; n]);
            }
        }
    }
    let metadata = match info.format {
        ZarrFormat::V2 => serde_json::from_value(doc).map(ArrayMetadata::V2),
        ZarrFormat::V3 => serde_json::from_value(doc).map(ArrayMetadata::V3),
    }
    .map_err(|e| IoError::store(path.display(), format!("invalid array metadata: {e}")))?;
    ZArray::new_with_metadata(store.clone(), &format!("/{}", info.name), metadata)
        .map_err(|e| IoError::store(path.display(), format!("cannot open array: {e}")))
}

fn write_options() -> CodecOptions {
    CodecOptions::default().with_store_empty_chunks(true)
}

/// One opened array with its CF coding.
struct Opened {
    array: ZArray<Store>,
    coding: Coding,
    info: ArrayInfo,
}

impl Opened {
    /// Reads and decodes `ranges` (one per dimension).
    fn read(&self, root: &Path, ranges: &[Range<u64>]) -> Result<Array, IoError> {
        let shape: Vec<usize> = ranges.iter().map(|r| (r.end - r.start) as usize).collect();
        let path = root.join(&self.info.name);
        let fail = |e: String| IoError::store(path.display(), e);
        let raw = match self.coding.stored {
            Stored::Plain(DType::F32) => self.read_slabs::<f32>(ranges, &shape),
            Stored::Plain(DType::F64) => self.read_slabs::<f64>(ranges, &shape),
            Stored::Plain(DType::I8) => self.read_slabs::<i8>(ranges, &shape),
            Stored::Plain(DType::I16) => self.read_slabs::<i16>(ranges, &shape),
            Stored::Plain(DType::I32) => self.read_slabs::<i32>(ranges, &shape),
            Stored::Plain(DType::I64) => self.read_slabs::<i64>(ranges, &shape),
            Stored::Plain(DType::U8) => self.read_slabs::<u8>(ranges, &shape),
            Stored::Plain(DType::U16) => self.read_slabs::<u16>(ranges, &shape),
            Stored::Plain(DType::U32) => self.read_slabs::<u32>(ranges, &shape),
            Stored::Plain(DType::U64) => self.read_slabs::<u64>(ranges, &shape),
            _ => self.read_whole(ranges, &shape),
        }
        .map_err(|e| match e {
            IoError::Store { message, .. } => fail(message),
            other => fail(other.to_string()),
        })?;
        self.coding.decode(raw).map_err(|e| fail(e.to_string()))
    }

    fn retrieve(&self, ranges: &[Range<u64>]) -> Result<ArrayBytes<'static>, IoError> {
        let subset = ArraySubset::new_with_ranges(ranges);
        self.array
            .retrieve_array_subset(&subset)
            .map_err(|e| IoError::store("", format!("cannot read {ranges:?}: {e}")))
    }

    /// Any type, in one piece.
    fn read_whole(&self, ranges: &[Range<u64>], shape: &[usize]) -> Result<Array, IoError> {
        match self.retrieve(ranges)? {
            ArrayBytes::Fixed(b) => cf::from_bytes(&b, self.coding.stored, shape),
            ArrayBytes::Variable(v) => {
                let offsets: &[usize] = v.offsets();
                cf::from_vlen(v.bytes(), offsets, shape)
            }
            ArrayBytes::Optional(_) => Err(IoError::Invalid(
                "optional data types are not supported".into(),
            )),
        }
    }

    /// Numbers, decoded one row of chunks (along the first dimension) at a
    /// time in parallel, each copied once into its place in the output:
    /// decoding the whole region into one buffer and converting it would
    /// write all of it to fresh memory twice.
    fn read_slabs<T: Element + bytemuck::Pod>(
        &self,
        ranges: &[Range<u64>],
        shape: &[usize],
    ) -> Result<Array, IoError> {
        let n: usize = shape.iter().product();
        if ranges.is_empty() || n == 0 {
            return self.read_whole(ranges, shape);
        }
        let step = self.info.shards.as_ref().unwrap_or(&self.info.chunks)[0].max(1);
        let mut bounds = Vec::new();
        let mut at = ranges[0].start;
        while at < ranges[0].end {
            let next = ((at / step + 1) * step).min(ranges[0].end);
            bounds.push(at..next);
            at = next;
        }
        if bounds.len() < 2 {
            return self.read_whole(ranges, shape);
        }
        let row: usize = shape[1..].iter().product();
        let mut out: Vec<T> = vec![T::zeroed(); n];
        let mut slices = Vec::with_capacity(bounds.len());
        let mut rest: &mut [T] = &mut out;
        for b in &bounds {
            let (head, tail) = rest.split_at_mut((b.end - b.start) as usize * row);
            slices.push(head);
            rest = tail;
        }
        slices
            .into_par_iter()
            .zip(bounds)
            .try_for_each(|(slice, b)| -> Result<(), IoError> {
                let mut sub = ranges.to_vec();
                sub[0] = b;
                match self.retrieve(&sub)? {
                    ArrayBytes::Fixed(bytes) if bytes.len() == std::mem::size_of_val(slice) => {
                        bytemuck::cast_slice_mut::<T, u8>(slice).copy_from_slice(&bytes);
                        Ok(())
                    }
                    _ => Err(IoError::Invalid(format!(
                        "decoded chunk data of {sub:?} does not fit {}",
                        self.coding.stored.numpy_name()
                    ))),
                }
            })?;
        Ok(Array::from_vec(shape.to_vec(), out)?)
    }
}

/// Names of the coordinates of a group: indexes, and everything named in a
/// `coordinates` attribute (xarray's `decode_coords`).
fn coordinate_names(group: &GroupMeta) -> IndexSet<String> {
    let mut names = IndexSet::new();
    let listed = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_str)
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    for name in listed(group.attrs.get("coordinates")) {
        names.insert(name);
    }
    for (name, info) in &group.arrays {
        if info.dims.len() == 1 && &info.dims[0] == name {
            names.insert(name.clone());
        }
        for c in listed(info.attrs.get("coordinates")) {
            names.insert(c);
        }
    }
    names.retain(|n| group.arrays.contains_key(n));
    names
}

/// A Zarr store opened for reading: its [`Template`], its native chunks,
/// and [`read`](ZarrSource::read) for any region.
pub struct ZarrSource {
    path: PathBuf,
    format: ZarrFormat,
    template: Template,
    chunks: IndexMap<String, u64>,
    arrays: IndexMap<String, Opened>,
}

impl std::fmt::Debug for ZarrSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrSource")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("chunks", &self.chunks)
            .finish_non_exhaustive()
    }
}

/// Opens a Zarr v2 or v3 group as xarray would (`xarray.open_zarr` with
/// CF decoding): dimension names from `_ARRAY_DIMENSIONS` /
/// `dimension_names`, fill values masked as NaN, packed integers unpacked,
/// CF times decoded; coordinates are loaded, data variables stay lazy.
///
/// The native chunking comes from the data variables, as in xarray-beam's
/// `open_zarr`: conflicting chunk sizes for a dimension are an error, and
/// sharded arrays report their inner chunks.
pub fn open_zarr(path: impl AsRef<Path>) -> Result<ZarrSource, IoError> {
    let root = path.as_ref();
    let mut group = meta::read_group(root)?;
    let store = open_store(root)?;
    let coord_names = coordinate_names(&group);
    let mut attrs = group.attrs.clone();
    attrs.shift_remove("coordinates");
    group.attrs.clone_from(&attrs);

    let mut sizes: IndexMap<String, u64> = IndexMap::new();
    for info in group.arrays.values() {
        for (d, &n) in info.dims.iter().zip(&info.shape) {
            match sizes.get(d) {
                Some(&m) if m != n => {
                    return Err(IoError::store(
                        root.join(&info.name).display(),
                        format!("dimension {d:?} has size {n} here but {m} in other arrays"),
                    ))
                }
                _ => {
                    sizes.insert(d.clone(), n);
                }
            }
        }
    }

    let mut opened: IndexMap<String, Opened> = IndexMap::new();
    let mut schemas: IndexMap<String, (Attrs, Attrs)> = IndexMap::new();
    for (name, info) in &group.arrays {
        let (coding, var_attrs, encoding) =
            cf::decoding(info).map_err(|e| in_array(root, name, e))?;
        let array = zarrs_array(&store, root, info)?;
        schemas.insert(name.clone(), (var_attrs, encoding));
        opened.insert(
            name.clone(),
            Opened {
                array,
                coding,
                info: info.clone(),
            },
        );
    }

    // coordinates are loaded, in parallel
    let coord_list: Vec<&String> = coord_names.iter().collect();
    let loaded: Vec<(String, Result<Array, IoError>)> = coord_list
        .par_iter()
        .map(|name| {
            let o = &opened[*name];
            let ranges: Vec<Range<u64>> = o.info.shape.iter().map(|&n| 0..n).collect();
            ((*name).clone(), o.read(root, &ranges))
        })
        .collect();
    let mut coords = Variables::new();
    for (name, data) in loaded {
        let (a, e) = &schemas[&name];
        let var = Variable::new(opened[&name].info.dims.clone(), data?)?
            .with_attrs(a.clone())
            .with_encoding(e.clone());
        coords.insert(name.clone(), var);
    }
    let mut data_vars = IndexMap::new();
    let mut chunk_sets: IndexMap<String, BTreeSet<u64>> = IndexMap::new();
    for (name, o) in &opened {
        if coord_names.contains(name) {
            continue;
        }
        let (a, e) = &schemas[name];
        for (d, &c) in o.info.dims.iter().zip(&o.info.chunks) {
            chunk_sets.entry(d.clone()).or_default().insert(c);
        }
        data_vars.insert(
            name.clone(),
            VarSchema {
                dims: o.info.dims.clone(),
                dtype: o.coding.decoded,
                attrs: a.clone(),
                encoding: e.clone(),
            },
        );
    }
    let mut chunks = IndexMap::new();
    for (d, set) in chunk_sets {
        if set.len() > 1 {
            return Err(IoError::store(
                root.display(),
                format!(
                    "inconsistent chunk sizes on Zarr dataset for dimension {}: {}",
                    repr::quote(&d),
                    repr::set(set.iter().map(ToString::to_string)).replace('\'', "")
                ),
            ));
        }
        chunks.insert(d, *set.first().expect("non-empty"));
    }
    let template = Template::new(sizes, data_vars, coords, attrs)?;
    opened.retain(|name, _| !coord_names.contains(name));
    Ok(ZarrSource {
        path: root.to_path_buf(),
        format: group.format,
        template,
        chunks,
        arrays: opened,
    })
}

fn in_array(root: &Path, name: &str, e: IoError) -> IoError {
    match e {
        IoError::Store { .. } => e,
        other => IoError::store(root.join(name).display(), other.to_string()),
    }
}

impl ZarrSource {
    /// The store's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store's Zarr format.
    pub fn format(&self) -> ZarrFormat {
        self.format
    }

    /// The schema of the whole dataset, with coordinates loaded.
    pub fn template(&self) -> &Template {
        &self.template
    }

    /// The native chunk size per dimension (dimensions only in coordinates
    /// have none).
    pub fn chunks(&self) -> &IndexMap<String, u64> {
        &self.chunks
    }

    /// The stored layout of each data variable.
    pub fn array_info(&self, name: &str) -> Option<&ArrayInfo> {
        self.arrays.get(name).map(|o| &o.info)
    }

    /// Reads `region` (element ranges per dimension; dimensions not named
    /// are read whole) of the data variables `vars` (default: all), with
    /// their coordinates. Only the Zarr chunks the region touches are read,
    /// and they are decoded in parallel.
    pub fn read(
        &self,
        region: &IndexMap<String, Range<u64>>,
        vars: Option<&VarSet>,
    ) -> Result<Dataset, IoError> {
        let sizes = self.template.sizes();
        for (d, r) in region {
            let Some(&n) = sizes.get(d) else {
                return Err(IoError::Invalid(format!(
                    "region names dimension {} which {} does not have: expected one of {}",
                    repr::quote(d),
                    self.path.display(),
                    repr::tuple(sizes.keys())
                )));
            };
            if r.start > r.end || r.end > n {
                return Err(IoError::Invalid(format!(
                    "region {}..{} is out of bounds for dimension {} of size {n}",
                    r.start,
                    r.end,
                    repr::quote(d)
                )));
            }
        }
        let names: Vec<&String> = match vars {
            None => self.arrays.keys().collect(),
            Some(set) => {
                for v in set {
                    if !self.arrays.contains_key(v) {
                        return Err(IoError::Invalid(format!(
                            "{} has no data variable {}: expected one of {}",
                            self.path.display(),
                            repr::quote(v),
                            repr::tuple(self.arrays.keys())
                        )));
                    }
                }
                self.arrays.keys().filter(|k| set.contains(*k)).collect()
            }
        };
        let range_of = |d: &String| region.get(d).cloned().unwrap_or(0..sizes[d]);
        let read: Vec<Result<(String, Variable), IoError>> = names
            .par_iter()
            .map(|name| {
                let o = &self.arrays[*name];
                let ranges: Vec<Range<u64>> = o.info.dims.iter().map(range_of).collect();
                let data = o.read(&self.path, &ranges)?;
                let schema = &self.template.data_vars()[*name];
                let var = Variable::new(schema.dims.clone(), data)?
                    .with_attrs(schema.attrs.clone())
                    .with_encoding(schema.encoding.clone());
                Ok(((*name).clone(), var))
            })
            .collect();
        let mut ds = Dataset::new().with_attrs(self.template.attrs().clone());
        let mut used: IndexSet<String> = IndexSet::new();
        for r in read {
            let (name, var) = r?;
            used.extend(var.dims().iter().cloned());
            ds.insert_data_var(name, var)?;
        }
        for (name, c) in self.template.coords() {
            if vars.is_some() && !c.dims().iter().all(|d| used.contains(d)) {
                continue;
            }
            let ranges: IndexMap<String, Range<usize>> = c
                .dims()
                .iter()
                .map(|d| {
                    let r = range_of(d);
                    (d.clone(), r.start as usize..r.end as usize)
                })
                .collect();
            ds.insert_coord(name.clone(), c.isel(&ranges)?)?;
        }
        Ok(ds)
    }
}

/// The dtype NumPy (and so xarray) shows for decoded values of `dtype`:
/// `float32`, `int16`, `datetime64[ns]` for NumPy's calendars, `object` for
/// other calendars and for strings.
///
/// ```
/// use xbeam_chunk::calendar::{Calendar, TimeUnit};
/// use xbeam_chunk::DType;
/// assert_eq!(xbeam_io::numpy_dtype(DType::DateTime(TimeUnit::Hours, Calendar::Standard)), "datetime64[ns]");
/// assert_eq!(xbeam_io::numpy_dtype(DType::DateTime(TimeUnit::Days, Calendar::NoLeap)), "object");
/// ```
pub fn numpy_dtype(dtype: DType) -> String {
    match dtype {
        DType::DateTime(_, c) if c.is_numpy_compatible() => "datetime64[ns]".into(),
        DType::DateTime(..) | DType::String => "object".into(),
        DType::TimeDelta(_) => "timedelta64[ns]".into(),
        other => other.name(),
    }
}

/// Options of [`setup_zarr`]: chunks, shards, format and encoding, as in
/// xarray-beam's `setup_zarr`.
#[derive(Debug, Clone, Default)]
pub struct SetupOptions {
    /// Zarr chunk size per dimension; `-1` or a missing dimension means the
    /// whole dimension.
    pub chunks: IndexMap<String, i64>,
    /// Shard size per dimension (v3 only); unnamed dimensions default to the
    /// chunk size, `-1` to the whole dimension. Chunks written must then be
    /// whole shards.
    pub shards: Option<IndexMap<String, i64>>,
    /// The Zarr format (default v3).
    pub format: ZarrFormat,
    /// Per-variable encoding (xarray's keys: `dtype`, `_FillValue`,
    /// `scale_factor`, `add_offset`, `units`, `calendar`, `compressors`),
    /// merged over each variable's own encoding.
    pub encoding: IndexMap<String, Attrs>,
}

impl SetupOptions {
    /// With these chunk sizes.
    pub fn chunks<S: Into<String>>(mut self, chunks: impl IntoIterator<Item = (S, i64)>) -> Self {
        self.chunks = chunks.into_iter().map(|(k, v)| (k.into(), v)).collect();
        self
    }

    /// With these shard sizes (v3).
    pub fn shards<S: Into<String>>(mut self, shards: impl IntoIterator<Item = (S, i64)>) -> Self {
        self.shards = Some(shards.into_iter().map(|(k, v)| (k.into(), v)).collect());
        self
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

/// One array a sink writes chunks to.
struct Writer {
    array: ZArray<Store>,
    coding: Coding,
    dims: Vec<String>,
}

/// A Zarr store set up for writing chunks ([`setup_zarr`]).
pub struct ZarrSink {
    path: PathBuf,
    format: ZarrFormat,
    template: Template,
    /// Zarr chunk size per template dimension.
    chunks: IndexMap<String, u64>,
    /// Shard size per dimension, if sharded.
    shards: Option<IndexMap<String, u64>>,
    writers: IndexMap<String, Writer>,
    /// Where an append started: writes may begin there even if it is not on
    /// a chunk boundary.
    append_start: Option<(String, u64)>,
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

fn finalize(
    requested: &IndexMap<String, i64>,
    sizes: &IndexMap<String, u64>,
    what: &str,
) -> Result<IndexMap<String, u64>, IoError> {
    for (d, &c) in requested {
        if !sizes.contains_key(d) {
            return Err(IoError::Invalid(format!(
                "zarr {what} name dimension {} which the template does not have: expected one of {}",
                repr::quote(d),
                repr::tuple(sizes.keys())
            )));
        }
        if c == 0 || c < -1 {
            return Err(IoError::Invalid(format!(
                "zarr {what} for dimension {} must be positive or -1, found {c}",
                repr::quote(d)
            )));
        }
    }
    Ok(sizes
        .iter()
        .map(|(d, &n)| {
            let c = match requested.get(d) {
                None | Some(-1) => n,
                Some(&c) => c as u64,
            };
            (d.clone(), c.max(1))
        })
        .collect())
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
        let stored = self.plan.coding.stored;
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
            .map_err(|e| IoError::store(path.display(), e.to_string()))?
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
    fs::remove_dir_all(path).map_err(|e| IoError::store(path.display(), e.to_string()))
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
            let mut merged: IndexMap<String, i64> =
                chunks.iter().map(|(d, &c)| (d.clone(), c as i64)).collect();
            for (d, &s) in requested {
                merged.insert(d.clone(), s);
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
        let plan = cf::plan(name, c.dtype(), &encoding, Some(c.data()), options.format)?;
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
        let plan = cf::plan(name, v.dtype, &encoding, None, options.format)?;
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
    clear_store_path(root)?;
    meta::write_group(root, options.format, &group_attrs, &documents)?;

    let store = open_store(root)?;
    let mut writers = IndexMap::new();
    let mut coord_writes = Vec::new();
    for (spec, (name, doc, attrs)) in specs.into_iter().zip(documents) {
        let info = info_from_doc(
            &name,
            &spec.dims,
            doc,
            attrs,
            spec.plan.coding.stored,
            options.format,
        );
        let array = zarrs_array(&store, root, &info)?;
        let writer = Writer {
            array,
            coding: spec.plan.coding,
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

/// Encodes `values` and writes them at `ranges` of the array.
fn write_region(
    root: &Path,
    w: &Writer,
    ranges: &[Range<u64>],
    values: &Array,
) -> Result<(), IoError> {
    let path = root.join(w.array.path().as_str().trim_start_matches('/'));
    let fail = |e: String| IoError::store(path.display(), e);
    if ranges.iter().any(|r| r.start == r.end) {
        return Ok(());
    }
    let stored = w
        .coding
        .encode(values)
        .map_err(|e| fail(e.to_string()))?
        .to_standard_layout();
    let bytes = cf::to_bytes(&stored, w.coding.stored).map_err(|e| fail(e.to_string()))?;
    let subset = ArraySubset::new_with_ranges(ranges);
    w.array
        .store_array_subset_opt(&subset, ArrayBytes::new_flen(bytes), &write_options())
        .map_err(|e| fail(format!("cannot write {ranges:?}: {e}")))
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
        let region = offsets_to_slices(key.offsets(), &sizes, None)
            .map_err(|e| IoError::Write(e.to_string()))?;
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
            .map_err(|e| {
                IoError::Write(format!(
                    "failed to write chunk corresponding to key={key}: {e}"
                ))
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

/// A chunk that [`verify`] found missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingChunk {
    /// The array (variable) name.
    pub array: String,
    /// The chunk's grid indices (shard indices for sharded arrays).
    pub indices: Vec<u64>,
    /// The store key that does not exist.
    pub key: String,
}

impl std::fmt::Display for MissingChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} (chunk {:?})", self.array, self.key, self.indices)
    }
}

fn chunk_key(info: &ArrayInfo, indices: &[u64]) -> String {
    let joined = |sep: &str| {
        indices
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(sep)
    };
    match info.format {
        ZarrFormat::V2 => {
            if indices.is_empty() {
                return "0".into();
            }
            let sep = info
                .meta
                .get("dimension_separator")
                .and_then(Value::as_str)
                .unwrap_or(".");
            joined(sep)
        }
        ZarrFormat::V3 => {
            let cke = info.meta.get("chunk_key_encoding");
            let name = cke
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("default");
            let sep = cke
                .and_then(|c| c.get("configuration"))
                .and_then(|c| c.get("separator"))
                .and_then(Value::as_str);
            if name == "v2" {
                if indices.is_empty() {
                    "0".into()
                } else {
                    joined(sep.unwrap_or("."))
                }
            } else {
                let sep = sep.unwrap_or("/");
                if indices.is_empty() {
                    "c".into()
                } else {
                    format!("c{sep}{}", joined(sep))
                }
            }
        }
    }
}

/// Lists the chunks of every array that were never written. A missing
/// chunk otherwise reads back silently as fill values. (Stores written by
/// xarray with `write_empty_chunks=False` also omit chunks that are all
/// fill value; xbeam always writes them.)
pub fn verify(path: impl AsRef<Path>) -> Result<Vec<MissingChunk>, IoError> {
    let root = path.as_ref();
    let group = meta::read_group(root)?;
    let mut expected = Vec::new();
    for info in group.arrays.values() {
        let grid = info.shards.as_ref().unwrap_or(&info.chunks);
        let counts: Vec<u64> = info
            .shape
            .iter()
            .zip(grid)
            .map(|(&n, &c)| n.div_ceil(c.max(1)))
            .collect();
        let total: u64 = counts.iter().product();
        for flat in 0..total {
            let mut rem = flat;
            let mut idx = vec![0u64; counts.len()];
            for (i, &c) in counts.iter().enumerate().rev() {
                idx[i] = rem % c;
                rem /= c;
            }
            expected.push((info, idx));
        }
    }
    let mut missing: Vec<MissingChunk> = expected
        .par_iter()
        .filter_map(|(info, idx)| {
            let key = chunk_key(info, idx);
            let file = root.join(&info.name).join(&key);
            (!file.is_file()).then(|| MissingChunk {
                array: info.name.clone(),
                indices: idx.clone(),
                key,
            })
        })
        .collect();
    missing.sort_by(|a, b| (&a.array, &a.indices).cmp(&(&b.array, &b.indices)));
    Ok(missing)
}

/// Appends along `dim`: grows every array with that dimension by the length
/// of `coord` (the new index values, which must continue the existing
/// index: same direction, no overlap), writes the new index values, and
/// returns a sink whose [`write_chunk`](ZarrSink::write_chunk) fills the
/// new region (offsets count from the start of the whole dimension).
pub fn append_dim(path: impl AsRef<Path>, dim: &str, coord: &Array) -> Result<ZarrSink, IoError> {
    let root = path.as_ref();
    let mut group = meta::read_group(root)?;
    let source = open_zarr(root)?;
    let sizes = source.template.sizes().clone();
    let Some(&old) = sizes.get(dim) else {
        return Err(IoError::store(
            root.display(),
            format!(
                "cannot append along {}: the store has no such dimension, expected one of {}",
                repr::quote(dim),
                repr::tuple(sizes.keys())
            ),
        ));
    };
    if coord.ndim() != 1 {
        return Err(IoError::Invalid(format!(
            "expected 1-D coordinate values to append along {}, found {} dimensions",
            repr::quote(dim),
            coord.ndim()
        )));
    }
    let added = coord.len() as u64;
    if let Some(index) = source.template.coords().get(dim) {
        check_continues(dim, index.data(), coord)?;
    }
    let new_size = old + added;
    for info in group.arrays.values_mut() {
        if let Some(axis) = info.dims.iter().position(|d| d == dim) {
            info.shape[axis] = new_size;
            info.meta["shape"] = json!(info.shape);
        }
    }
    let documents: Vec<(String, Value, Attrs)> = group
        .arrays
        .values()
        .map(|info| {
            let mut attrs = info.attrs.clone();
            if info.format == ZarrFormat::V2 {
                attrs.insert("_ARRAY_DIMENSIONS".into(), json!(info.dims));
            }
            (info.name.clone(), info.meta.clone(), attrs)
        })
        .collect();
    meta::write_group(root, group.format, &group.attrs, &documents)?;
    if let Some(index) = source.template.coords().get(dim) {
        let store = open_store(root)?;
        let info = &group.arrays[dim];
        let (coding, _, _) = cf::decoding(info)?;
        let w = Writer {
            array: zarrs_array(&store, root, info)?,
            coding,
            dims: info.dims.clone(),
        };
        let values = match (index.dtype(), coord.dtype()) {
            (DType::DateTime(u, _), DType::DateTime(..)) => cf::retick(coord, u)?,
            _ => coord.clone(),
        };
        let ranges = [Range {
            start: old,
            end: new_size,
        }];
        write_region(root, &w, &ranges, &values)?;
    }
    let mut sink = ZarrSink::open(root)?;
    sink.append_start = Some((dim.to_owned(), old));
    Ok(sink)
}

/// Checks that `new` continues the index `old`: the same direction and no
/// overlap.
fn check_continues(dim: &str, old: &Array, new: &Array) -> Result<(), IoError> {
    if old.dtype() != new.dtype()
        && !(matches!((old.dtype(), new.dtype()), (DType::DateTime(_, a), DType::DateTime(_, b)) if a == b)
            || (old.dtype().is_numeric() && new.dtype().is_numeric()))
    {
        return Err(IoError::Invalid(format!(
            "cannot append along {}: the store's index is {}, the new values are {}",
            repr::quote(dim),
            old.dtype(),
            new.dtype()
        )));
    }
    let as_f64 = |a: &Array| -> Option<Vec<f64>> {
        match a {
            Array::DateTime(..) => {
                let (t, u, _) = a.datetime_ticks().ok()?;
                Some(t.iter().map(|&x| x as f64 * u.nanos() as f64).collect())
            }
            _ => a.to_f64().ok().map(|v| v.iter().copied().collect()),
        }
    };
    let (Some(o), Some(n)) = (as_f64(old), as_f64(new)) else {
        return Ok(());
    };
    let all: Vec<f64> = o.iter().chain(&n).copied().collect();
    let increasing = all.windows(2).all(|w| w[0] < w[1]);
    let decreasing = all.windows(2).all(|w| w[0] > w[1]);
    if !(increasing || decreasing) {
        let last = old
            .format_value(old.len().saturating_sub(1))
            .unwrap_or_default();
        let first = new.format_value(0).unwrap_or_default();
        return Err(IoError::Invalid(format!(
            "cannot append along {}: the new index values must continue the existing ones (strictly monotonic, no overlap), but the store ends at {last} and the new values start at {first}",
            repr::quote(dim)
        )));
    }
    Ok(())
}
