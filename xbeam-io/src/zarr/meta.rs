//! Zarr group and array metadata: reading v2 (`.zgroup`, `.zattrs`,
//! `.zarray`, `.zmetadata`) and v3 (`zarr.json`, inline consolidated
//! metadata), and writing them the way zarr-python and xarray do.

use std::fs;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{json, Map, Value};
use xbeam_chunk::{Attrs, DType};
use xbeam_key::repr;

use crate::IoError;

/// The Zarr format version of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ZarrFormat {
    /// Zarr v2 (`.zarray`, `.zattrs`, `.zmetadata`).
    V2,
    /// Zarr v3 (`zarr.json`); the default for new stores, as in zarr-python 3.
    #[default]
    V3,
}

impl ZarrFormat {
    /// The format from its number, 2 or 3.
    pub fn from_number(n: u8) -> Result<ZarrFormat, IoError> {
        match n {
            2 => Ok(ZarrFormat::V2),
            3 => Ok(ZarrFormat::V3),
            _ => Err(IoError::Invalid(format!(
                "expected zarr format 2 or 3, found {n}"
            ))),
        }
    }

    /// 2 or 3.
    pub fn number(self) -> u8 {
        match self {
            ZarrFormat::V2 => 2,
            ZarrFormat::V3 => 3,
        }
    }
}

/// How elements are stored in a Zarr array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Bool, integers and floats: the same element type in memory.
    Plain(DType),
    /// NumPy `<U{n}`: n UTF-32 code points.
    Utf32(usize),
    /// NumPy `|S{n}`: n bytes.
    Bytes(usize),
    /// Variable-length UTF-8 strings (v2 `|O` + vlen-utf8, v3 `string`).
    VString,
}

/// The plain types with NumPy's one-letter-and-size codes.
const PLAIN: [(DType, &str); 11] = [
    (DType::Bool, "b1"),
    (DType::I8, "i1"),
    (DType::I16, "i2"),
    (DType::I32, "i4"),
    (DType::I64, "i8"),
    (DType::U8, "u1"),
    (DType::U16, "u2"),
    (DType::U32, "u4"),
    (DType::U64, "u8"),
    (DType::F32, "f4"),
    (DType::F64, "f8"),
];

impl Stored {
    pub(crate) fn itemsize(self) -> usize {
        match self {
            Stored::Plain(d) => d.itemsize(),
            Stored::Utf32(n) => 4 * n,
            Stored::Bytes(n) => n,
            Stored::VString => 16,
        }
    }

    pub(crate) fn is_float(self) -> bool {
        matches!(self, Stored::Plain(d) if d.is_float())
    }

    pub(crate) fn is_string(self) -> bool {
        !matches!(self, Stored::Plain(_))
    }

    /// NumPy's name (`int16`, `<U3`, `object`).
    pub(crate) fn numpy_name(self) -> String {
        match self {
            Stored::Plain(d) => d.name(),
            Stored::Utf32(n) => format!("<U{n}"),
            Stored::Bytes(n) => format!("|S{n}"),
            Stored::VString => "object".into(),
        }
    }

    /// From a NumPy name as used in encodings (`int16`, `<i2`, `<U3`).
    /// Byte order is zarrs' business: `>f4` is a float32 like `<f4`.
    pub(crate) fn from_numpy_name(name: &str) -> Option<Stored> {
        let plain = name.trim_start_matches(['<', '>', '|', '=']);
        if let Some((d, _)) = PLAIN
            .iter()
            .find(|(d, code)| plain == *code || plain == d.name())
        {
            return Some(Stored::Plain(*d));
        }
        if matches!(plain, "object" | "O" | "str") {
            Some(Stored::VString)
        } else if let Some(n) = plain.strip_prefix('U') {
            Some(Stored::Utf32(n.parse().ok()?))
        } else if let Some(n) = plain.strip_prefix('S') {
            Some(Stored::Bytes(n.parse().ok()?))
        } else {
            None
        }
    }

    /// The v2 `dtype` field.
    pub(crate) fn v2_dtype(self) -> String {
        match self {
            Stored::Plain(d) => {
                let code = PLAIN.iter().find(|(p, _)| *p == d).map_or("", |(_, c)| c);
                let order = if d.itemsize() == 1 { '|' } else { '<' };
                format!("{order}{code}")
            }
            Stored::Utf32(n) => format!("<U{n}"),
            Stored::Bytes(n) => format!("|S{n}"),
            Stored::VString => "|O".into(),
        }
    }

    /// The v3 `data_type` field.
    pub(crate) fn v3_data_type(self) -> Value {
        match self {
            Stored::Plain(d) => json!(d.name()),
            Stored::Utf32(n) => json!({
                "name": "fixed_length_utf32",
                "configuration": {"length_bytes": 4 * n}
            }),
            Stored::Bytes(n) => json!({
                "name": "null_terminated_bytes",
                "configuration": {"length_bytes": n}
            }),
            Stored::VString => json!("string"),
        }
    }

    fn from_v2(dtype: &Value) -> Option<Stored> {
        Stored::from_numpy_name(dtype.as_str()?)
    }

    fn from_v3(data_type: &Value) -> Option<Stored> {
        match data_type {
            Value::String(s) => match s.as_str() {
                "string" => Some(Stored::VString),
                s => Stored::from_numpy_name(s),
            },
            Value::Object(o) => {
                let name = o.get("name")?.as_str()?;
                let n = o
                    .get("configuration")
                    .and_then(|c| c.get("length_bytes"))
                    .and_then(Value::as_u64)? as usize;
                match name {
                    "fixed_length_utf32" => Some(Stored::Utf32(n / 4)),
                    "null_terminated_bytes" | "fixed_length_bytes" => Some(Stored::Bytes(n)),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// What a store says about one array.
#[derive(Debug, Clone)]
pub struct ArrayInfo {
    /// The array's name (its path in the group).
    pub name: String,
    /// Dimension names.
    pub dims: Vec<String>,
    /// Shape.
    pub shape: Vec<u64>,
    /// Chunk shape: the inner chunks of a sharded array.
    pub chunks: Vec<u64>,
    /// Shard shape, for sharded v3 arrays.
    pub shards: Option<Vec<u64>>,
    /// Attributes as stored (CF attributes included, dimension names not).
    pub attrs: Attrs,
    /// The array's metadata document (`.zarray` or `zarr.json`).
    pub(crate) meta: Value,
    pub(crate) stored: Stored,
    pub(crate) format: ZarrFormat,
}

impl ArrayInfo {
    /// The zarr fill value as stored (v2 `fill_value`, v3 `fill_value`).
    pub(crate) fn fill_value(&self) -> &Value {
        self.meta.get("fill_value").unwrap_or(&Value::Null)
    }

    /// The compressor / codecs, in numcodecs' v2 JSON form
    /// (`{"id": "blosc", ...}`), for the encoding.
    pub(crate) fn compressors(&self) -> Vec<Value> {
        match self.format {
            ZarrFormat::V2 => match self.meta.get("compressor") {
                Some(c) if !c.is_null() => vec![c.clone()],
                _ => Vec::new(),
            },
            ZarrFormat::V3 => {
                let codecs = self.meta.get("codecs").and_then(Value::as_array);
                let mut codecs: Vec<Value> = codecs.cloned().unwrap_or_default();
                // the inner codecs of a shard
                if let Some(inner) = codecs.iter().find_map(|c| {
                    (c.get("name")? == "sharding_indexed")
                        .then(|| c.get("configuration")?.get("codecs")?.as_array().cloned())
                        .flatten()
                }) {
                    codecs = inner;
                }
                codecs.iter().filter_map(v3_codec_to_v2).collect()
            }
        }
    }
}

/// A v3 bytes-to-bytes codec as numcodecs' JSON; `None` for array codecs.
fn v3_codec_to_v2(codec: &Value) -> Option<Value> {
    let name = codec.get("name")?.as_str()?;
    let conf = codec.get("configuration").cloned().unwrap_or(json!({}));
    match name {
        "blosc" => {
            let shuffle = match conf.get("shuffle").and_then(Value::as_str) {
                Some("shuffle") => 1,
                Some("bitshuffle") => 2,
                _ => 0,
            };
            Some(json!({
                "id": "blosc",
                "cname": conf.get("cname").cloned().unwrap_or(json!("lz4")),
                "clevel": conf.get("clevel").cloned().unwrap_or(json!(5)),
                "shuffle": shuffle,
                "blocksize": conf.get("blocksize").cloned().unwrap_or(json!(0)),
            }))
        }
        "zstd" => {
            Some(json!({"id": "zstd", "level": conf.get("level").cloned().unwrap_or(json!(0))}))
        }
        "gzip" => {
            Some(json!({"id": "gzip", "level": conf.get("level").cloned().unwrap_or(json!(5))}))
        }
        _ => None,
    }
}

/// A numcodecs compressor as a v3 codec; zlib becomes gzip (v3 has no zlib).
pub(crate) fn v2_codec_to_v3(codec: &Value, itemsize: usize) -> Result<Value, IoError> {
    let id = codec.get("id").and_then(Value::as_str).unwrap_or("");
    let level = |default: i64| {
        codec
            .get("level")
            .and_then(Value::as_i64)
            .unwrap_or(default)
    };
    Ok(match id {
        "blosc" => {
            let shuffle = match codec.get("shuffle").and_then(Value::as_i64) {
                Some(1) => "shuffle",
                Some(2) => "bitshuffle",
                _ => "noshuffle",
            };
            json!({"name": "blosc", "configuration": {
                "typesize": itemsize,
                "cname": codec.get("cname").cloned().unwrap_or(json!("lz4")),
                "clevel": codec.get("clevel").cloned().unwrap_or(json!(5)),
                "shuffle": shuffle,
                "blocksize": codec.get("blocksize").cloned().unwrap_or(json!(0)),
            }})
        }
        "zstd" => json!({"name": "zstd", "configuration": {"level": level(0), "checksum": false}}),
        "gzip" | "zlib" => json!({"name": "gzip", "configuration": {"level": level(5)}}),
        other => return Err(unsupported_codec(other)),
    })
}

/// Checks that a numcodecs compressor is one xbeam writes.
pub(crate) fn check_v2_codec(codec: &Value) -> Result<Value, IoError> {
    let id = codec.get("id").and_then(Value::as_str).unwrap_or("");
    match id {
        "blosc" | "zstd" | "gzip" | "zlib" => Ok(codec.clone()),
        other => Err(unsupported_codec(other)),
    }
}

fn unsupported_codec(id: &str) -> IoError {
    IoError::Invalid(format!(
        "unsupported compressor {id:?}: expected one of blosc, zstd, gzip, zlib"
    ))
}

/// A group: its attributes and arrays, in store order.
#[derive(Debug, Clone)]
pub(crate) struct GroupMeta {
    pub(crate) format: ZarrFormat,
    pub(crate) attrs: Attrs,
    pub(crate) arrays: IndexMap<String, ArrayInfo>,
}

/// The largest metadata document read (consolidated metadata of a large
/// hierarchy is a few MB).
const MAX_METADATA_BYTES: u64 = 256 << 20;

fn read_json(path: &Path) -> Result<Option<Value>, IoError> {
    // a FIFO would block the read forever and /dev/zero never end: a
    // metadata document is a regular file of bounded size, or absent
    match fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            return Err(IoError::store(
                path.display(),
                format!(
                    "expected a metadata file, found {}",
                    super::store::file_kind(&m)
                ),
            ))
        }
        Ok(m) if m.len() > MAX_METADATA_BYTES => {
            return Err(IoError::store(
                path.display(),
                format!(
                    "expected a metadata document of at most {} MiB, found {} bytes",
                    MAX_METADATA_BYTES >> 20,
                    m.len()
                ),
            ))
        }
        _ => {}
    }
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| IoError::json(path.display(), "invalid JSON", e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IoError::file(path.display(), "cannot read the file", e)),
    }
}

fn attrs_of(value: Option<&Value>) -> Attrs {
    match value {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => Attrs::new(),
    }
}

/// Reads a group's metadata, from consolidated metadata when present.
pub(crate) fn read_group(root: &Path) -> Result<GroupMeta, IoError> {
    if !root.exists() {
        return Err(IoError::store(root.display(), "no such file or directory"));
    }
    if !root.is_dir() {
        return Err(IoError::store(
            root.display(),
            "not a Zarr store: expected a directory",
        ));
    }
    if let Some(group) = read_json(&root.join("zarr.json"))? {
        return read_v3(root, &group);
    }
    if let Some(cons) = read_json(&root.join(".zmetadata"))? {
        return read_v2_consolidated(root, &cons);
    }
    if read_json(&root.join(".zgroup"))?.is_some() {
        return read_v2_listed(root);
    }
    Err(IoError::store(
        root.display(),
        "not a Zarr group: expected zarr.json (v3) or .zgroup (v2), found neither",
    ))
}

fn sorted_children(root: &Path) -> Result<Vec<(String, PathBuf)>, IoError> {
    let mut out = Vec::new();
    let list = |e| IoError::file(root.display(), "cannot list the directory", e);
    let entries = fs::read_dir(root).map_err(list)?;
    for entry in entries {
        let entry = entry.map_err(list)?;
        if entry.path().is_dir() {
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            ));
        }
    }
    out.sort();
    Ok(out)
}

fn read_v2_listed(root: &Path) -> Result<GroupMeta, IoError> {
    let attrs = attrs_of(read_json(&root.join(".zattrs"))?.as_ref());
    let mut arrays = IndexMap::new();
    for (name, dir) in sorted_children(root)? {
        let Some(zarray) = read_json(&dir.join(".zarray"))? else {
            // attributes and no node: its .zarray was lost, and the array
            // would silently not be there
            if dir.join(".zattrs").exists() && !dir.join(".zgroup").exists() {
                return Err(IoError::store(
                    dir.display(),
                    "the directory has .zattrs but neither .zarray nor .zgroup: expected a Zarr array or group",
                ));
            }
            continue;
        };
        let zattrs = read_json(&dir.join(".zattrs"))?;
        arrays.insert(
            name.clone(),
            v2_array(root, &name, zarray, zattrs.as_ref())?,
        );
    }
    Ok(GroupMeta {
        format: ZarrFormat::V2,
        attrs,
        arrays,
    })
}

fn read_v2_consolidated(root: &Path, cons: &Value) -> Result<GroupMeta, IoError> {
    let bad = || {
        IoError::store(
            root.join(".zmetadata").display(),
            "invalid consolidated metadata: expected an object with \"metadata\"",
        )
    };
    let meta = cons
        .get("metadata")
        .and_then(Value::as_object)
        .ok_or_else(bad)?;
    let attrs = attrs_of(meta.get(".zattrs"));
    // attributes of a node the consolidated metadata do not describe: an
    // entry lost, and the array would silently not be there
    if let Some(orphan) = meta
        .keys()
        .filter_map(|k| k.strip_suffix("/.zattrs"))
        .find(|n| {
            !meta.contains_key(&format!("{n}/.zarray"))
                && !meta.contains_key(&format!("{n}/.zgroup"))
        })
    {
        return Err(IoError::store(
            root.join(".zmetadata").display(),
            format!(
                "invalid consolidated metadata: {} has attributes but neither .zarray nor .zgroup",
                repr::quote(orphan)
            ),
        ));
    }
    let mut names: Vec<&str> = meta
        .keys()
        .filter_map(|k| k.strip_suffix("/.zarray"))
        .filter(|k| !k.contains('/'))
        .collect();
    names.sort_unstable();
    let mut arrays = IndexMap::new();
    for name in names {
        let zarray = meta[&format!("{name}/.zarray")].clone();
        let zattrs = meta.get(&format!("{name}/.zattrs"));
        arrays.insert(name.to_owned(), v2_array(root, name, zarray, zattrs)?);
    }
    Ok(GroupMeta {
        format: ZarrFormat::V2,
        attrs,
        arrays,
    })
}

fn as_u64_vec(v: Option<&Value>) -> Option<Vec<u64>> {
    v?.as_array()?.iter().map(Value::as_u64).collect()
}

/// `field` of `doc` as a list of non-negative integers, or an error saying
/// what was found.
fn sizes_of(path: &Path, doc: &Value, file: &str, field: &str) -> Result<Vec<u64>, IoError> {
    as_u64_vec(doc.get(field)).ok_or_else(|| {
        IoError::store(
            path.display(),
            format!(
                "invalid {file}: expected {field:?} as a list of non-negative integers, found {}",
                shorten(&doc.get(field).unwrap_or(&Value::Null).to_string())
            ),
        )
    })
}

fn v2_array(
    root: &Path,
    name: &str,
    zarray: Value,
    zattrs: Option<&Value>,
) -> Result<ArrayInfo, IoError> {
    let path = root.join(name);
    let shape = sizes_of(&path, &zarray, ".zarray", "shape")?;
    let chunks = sizes_of(&path, &zarray, ".zarray", "chunks")?;
    let stored = zarray
        .get("dtype")
        .and_then(Stored::from_v2)
        .ok_or_else(|| {
            IoError::store(
                path.display(),
                format!(
                    "unsupported data type {}: expected a bool, integer, float or string type",
                    zarray.get("dtype").unwrap_or(&Value::Null)
                ),
            )
        })?;
    let mut attrs = attrs_of(zattrs);
    let dims = match attrs.shift_remove("_ARRAY_DIMENSIONS") {
        None => {
            return Err(IoError::store(
                path.display(),
                "array has no dimension names: expected an _ARRAY_DIMENSIONS attribute (as xarray writes)",
            ))
        }
        Some(names) => names
            .as_array()
            .and_then(|a| a.iter().map(|n| n.as_str().map(str::to_owned)).collect::<Option<Vec<String>>>())
            .ok_or_else(|| {
                IoError::store(
                    path.display(),
                    format!("expected _ARRAY_DIMENSIONS as a list of names, found {}", shorten(&names.to_string())),
                )
            })?,
    };
    let info = ArrayInfo {
        name: name.to_owned(),
        dims,
        shape,
        chunks,
        shards: None,
        attrs,
        meta: zarray,
        stored,
        format: ZarrFormat::V2,
    };
    check_array(&path, &info)?;
    Ok(info)
}

fn check_array(path: &Path, info: &ArrayInfo) -> Result<(), IoError> {
    if info.dims.len() != info.shape.len() || info.chunks.len() != info.shape.len() {
        return Err(IoError::store(
            path.display(),
            format!(
                "array has {} dimension names and {} chunk sizes for shape {:?}: expected one per dimension",
                info.dims.len(),
                info.chunks.len(),
                info.shape
            ),
        ));
    }
    if info.chunks.contains(&0) && !info.shape.contains(&0) {
        return Err(IoError::store(
            path.display(),
            format!("invalid chunk shape {:?}", info.chunks),
        ));
    }
    Ok(())
}

/// The fields of Zarr v3 group and array metadata that xbeam reads.
const V3_GROUP_FIELDS: [&str; 4] = [
    "zarr_format",
    "node_type",
    "attributes",
    "consolidated_metadata",
];
const V3_ARRAY_FIELDS: [&str; 11] = [
    "zarr_format",
    "node_type",
    "shape",
    "data_type",
    "chunk_grid",
    "chunk_key_encoding",
    "fill_value",
    "codecs",
    "attributes",
    "dimension_names",
    "storage_transformers",
];

/// The Zarr v3 rule for extensions: a field an implementation does not
/// know must say `"must_understand": false`, or the node must not be read
/// (ignoring it could give wrong values). Storage transformers, which
/// xbeam does not implement, are refused too.
fn check_extensions(path: &Path, meta: &Value, known: &[&str]) -> Result<(), IoError> {
    let Some(fields) = meta.as_object() else {
        return Ok(());
    };
    for (key, value) in fields {
        if known.contains(&key.as_str()) {
            continue;
        }
        if value.get("must_understand").and_then(Value::as_bool) != Some(false) {
            return Err(IoError::store(
                path.display(),
                format!(
                    "zarr.json has the extension {key:?}, which xbeam does not implement: expected it to say \"must_understand\": false, as the Zarr v3 spec requires of extensions a reader may ignore"
                ),
            ));
        }
    }
    if let Some(t) = fields.get("storage_transformers").and_then(Value::as_array) {
        if !t.is_empty() {
            return Err(IoError::store(
                path.display(),
                format!(
                    "zarr.json asks for storage transformers {}, which xbeam does not implement: expected none",
                    Value::Array(t.clone())
                ),
            ));
        }
    }
    Ok(())
}

/// `text`, cut to 120 characters for a message.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(120) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

fn read_v3(root: &Path, group: &Value) -> Result<GroupMeta, IoError> {
    let path = root.join("zarr.json");
    check_extensions(&path, group, &V3_GROUP_FIELDS)?;
    if group.get("node_type").and_then(Value::as_str) != Some("group") {
        return Err(IoError::store(
            path.display(),
            format!(
                "expected a group, found node_type {}",
                group.get("node_type").unwrap_or(&Value::Null)
            ),
        ));
    }
    if group.get("zarr_format").and_then(Value::as_u64) != Some(3) {
        return Err(IoError::store(
            path.display(),
            format!(
                "expected \"zarr_format\": 3 in zarr.json, found {}",
                group.get("zarr_format").unwrap_or(&Value::Null)
            ),
        ));
    }
    let attrs = attrs_of(group.get("attributes"));
    let mut arrays = IndexMap::new();
    let consolidated = match group
        .get("consolidated_metadata")
        .filter(|c| !c.is_null())
        .map(|c| c.get("metadata"))
    {
        None => None,
        Some(Some(Value::Object(m))) => Some(m),
        Some(other) => {
            return Err(IoError::store(
                path.display(),
                format!(
                    "invalid consolidated metadata: expected an object of nodes in \"metadata\", found {}",
                    other.unwrap_or(&Value::Null)
                ),
            ))
        }
    };
    let mut entries: Vec<(String, Value)> = if let Some(meta) = consolidated {
        meta.iter()
            .filter(|(k, _)| !k.contains('/'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    } else {
        let mut out = Vec::new();
        for (name, dir) in sorted_children(root)? {
            if let Some(meta) = read_json(&dir.join("zarr.json"))? {
                out.push((name, meta));
            }
        }
        out
    };
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, meta) in entries {
        let node = meta.get("node_type").and_then(Value::as_str);
        // a group has no shape; an entry that is neither, or a group with
        // an array's fields, is a damaged entry, not a node to skip
        if node != Some("array") && (node != Some("group") || meta.get("shape").is_some()) {
            return Err(IoError::store(
                root.join(&name).display(),
                format!(
                    "invalid metadata entry: expected an array, or a group without a shape, found {}",
                    shorten(&meta.to_string())
                ),
            ));
        }
        if node != Some("array") {
            continue;
        }
        arrays.insert(name.clone(), v3_array(root, &name, meta)?);
    }
    Ok(GroupMeta {
        format: ZarrFormat::V3,
        attrs,
        arrays,
    })
}

fn v3_array(root: &Path, name: &str, meta: Value) -> Result<ArrayInfo, IoError> {
    let path = root.join(name);
    let shape = sizes_of(&path, &meta, "zarr.json", "shape")?;
    let grid = meta
        .get("chunk_grid")
        .and_then(|g| g.get("configuration"))
        .and_then(|c| c.get("chunk_shape"));
    let grid_chunks = as_u64_vec(grid).ok_or_else(|| {
        IoError::store(
            path.display(),
            "unsupported chunk grid: expected a regular grid with a chunk_shape",
        )
    })?;
    let sharding = meta.get("codecs").and_then(Value::as_array).and_then(|cs| {
        cs.iter()
            .find(|c| c.get("name").and_then(Value::as_str) == Some("sharding_indexed"))
    });
    let (chunks, shards) = match sharding {
        Some(s) => {
            let inner = as_u64_vec(s.get("configuration").and_then(|c| c.get("chunk_shape")))
                .ok_or_else(|| {
                    IoError::store(path.display(), "sharding codec has no chunk_shape")
                })?;
            (inner, Some(grid_chunks))
        }
        None => (grid_chunks, None),
    };
    let stored = meta
        .get("data_type")
        .and_then(Stored::from_v3)
        .ok_or_else(|| {
            IoError::store(
                path.display(),
                format!(
                    "unsupported data type {}: expected a bool, integer, float or string type",
                    meta.get("data_type").unwrap_or(&Value::Null)
                ),
            )
        })?;
    let dims = meta
        .get("dimension_names")
        .and_then(Value::as_array)
        .and_then(|names| {
            names
                .iter()
                .map(|n| n.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
        })
        .or_else(|| shape.is_empty().then(Vec::new))
        .ok_or_else(|| {
            IoError::store(
                path.display(),
                "array has no dimension names: expected \"dimension_names\" in zarr.json (as xarray writes)",
            )
        })?;
    // after the fields it must have, so that a missing one is named first
    check_extensions(&path.join("zarr.json"), &meta, &V3_ARRAY_FIELDS)?;
    let mut attrs = attrs_of(meta.get("attributes"));
    attrs.shift_remove("_ARRAY_DIMENSIONS");
    let info = ArrayInfo {
        name: name.to_owned(),
        dims,
        shape,
        chunks,
        shards,
        attrs,
        meta,
        stored,
        format: ZarrFormat::V3,
    };
    check_array(&path, &info)?;
    Ok(info)
}

fn write_json(path: &Path, value: &Value) -> Result<(), IoError> {
    let text = serde_json::to_string_pretty(value).expect("JSON values always serialize");
    fs::write(path, text).map_err(|e| IoError::file(path.display(), "cannot write the file", e))
}

fn attrs_json(attrs: &Attrs) -> Value {
    Value::Object(
        attrs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Map<_, _>>(),
    )
}

/// A group's metadata documents (and consolidated metadata) for the
/// arrays given as `(name, array metadata, attributes)`, with their paths.
fn group_documents(
    root: &Path,
    format: ZarrFormat,
    attrs: &Attrs,
    arrays: &[(String, Value, Attrs)],
) -> Vec<(PathBuf, Value)> {
    let mut docs = Vec::new();
    match format {
        ZarrFormat::V2 => {
            let mut cons = Map::new();
            cons.insert(".zattrs".into(), attrs_json(attrs));
            cons.insert(".zgroup".into(), json!({"zarr_format": 2}));
            docs.push((root.join(".zgroup"), json!({"zarr_format": 2})));
            docs.push((root.join(".zattrs"), attrs_json(attrs)));
            for (name, zarray, zattrs) in arrays {
                let dir = root.join(name);
                docs.push((dir.join(".zarray"), zarray.clone()));
                docs.push((dir.join(".zattrs"), attrs_json(zattrs)));
                cons.insert(format!("{name}/.zarray"), zarray.clone());
                cons.insert(format!("{name}/.zattrs"), attrs_json(zattrs));
            }
            docs.push((
                root.join(".zmetadata"),
                json!({"metadata": cons, "zarr_consolidated_format": 1}),
            ));
        }
        ZarrFormat::V3 => {
            let mut cons = Map::new();
            for (name, meta, _) in arrays {
                docs.push((root.join(name).join("zarr.json"), meta.clone()));
                cons.insert(name.clone(), meta.clone());
            }
            let group = json!({
                "attributes": attrs_json(attrs),
                "zarr_format": 3,
                "consolidated_metadata": {
                    "kind": "inline",
                    "must_understand": false,
                    "metadata": cons,
                },
                "node_type": "group",
            });
            docs.push((root.join("zarr.json"), group));
        }
    }
    docs
}

/// Writes a group's metadata documents (and consolidated metadata) for the
/// arrays given as `(name, array metadata, attributes)`.
pub(crate) fn write_group(
    root: &Path,
    format: ZarrFormat,
    attrs: &Attrs,
    arrays: &[(String, Value, Attrs)],
) -> Result<(), IoError> {
    fs::create_dir_all(root)
        .map_err(|e| IoError::file(root.display(), "cannot create the directory", e))?;
    for (name, _, _) in arrays {
        let dir = root.join(name);
        fs::create_dir_all(&dir)
            .map_err(|e| IoError::file(dir.display(), "cannot create the directory", e))?;
    }
    for (path, doc) in group_documents(root, format, attrs, arrays) {
        write_json(&path, &doc)?;
    }
    Ok(())
}

/// Checks that the store at `root` holds exactly the metadata documents
/// [`write_group`] would write (a job resumed with other options or on
/// another input would otherwise mix two stores). The error names the
/// first document that differs.
pub(crate) fn check_group(
    root: &Path,
    format: ZarrFormat,
    attrs: &Attrs,
    arrays: &[(String, Value, Attrs)],
) -> Result<(), IoError> {
    for (path, doc) in group_documents(root, format, attrs, arrays) {
        // read as every metadata document is: no FIFO, device or giant
        let found = read_json(&path).ok().flatten();
        let what = match found {
            None => "is missing or not JSON",
            Some(v) if v != doc => "differs from the one this job writes",
            Some(_) => continue,
        };
        return Err(IoError::store(
            path.display(),
            format!("cannot resume: this metadata document {what} (the store was set up by another job, on other input or with other options; pass --overwrite to replace it)"),
        ));
    }
    Ok(())
}
