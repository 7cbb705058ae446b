//! One NetCDF file as xbeam sees it: its dimensions, variables and
//! attributes (as JSON, like Zarr's), and raw reads of a region of one
//! variable, before any CF decoding. Reading is the pure-Rust
//! `netcdf-reader` crate's: classic CDF-1/2/5 and NetCDF-4 (HDF5).

use std::ops::Range;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use netcdf_reader::{NcAttrValue, NcFile, NcSliceInfo, NcSliceInfoElem, NcType, NcVariable};
use serde_json::{json, Value};
use xbeam_chunk::{Array, Attrs, DType, Element};
use xbeam_key::repr;

use crate::cf::f64_attr;
use crate::IoError;

/// How a variable's elements are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Numbers of this dtype.
    Number(DType),
    /// `char` arrays whose last dimension is the string length: read as
    /// strings (xarray's `concat_characters`), that dimension dropped.
    Chars,
    /// NetCDF-4 variable-length strings.
    Strings,
}

/// One variable of a file.
#[derive(Debug, Clone)]
pub(crate) struct NcVar {
    pub(crate) name: String,
    /// Dimensions as xarray shows them (a `char` array's string-length
    /// dimension left out).
    pub(crate) dims: Vec<String>,
    pub(crate) shape: Vec<u64>,
    pub(crate) kind: Kind,
    /// Attributes as stored, `_FillValue` and packing included.
    pub(crate) attrs: Attrs,
    /// The stored types of number attributes (NetCDF keeps float32 and
    /// float64 apart, and xarray's unpacked dtype depends on it).
    pub(crate) attr_types: IndexMap<String, DType>,
}

impl NcVar {
    /// The dtype of the stored values in memory.
    pub(crate) fn stored(&self) -> DType {
        match self.kind {
            Kind::Number(d) => d,
            Kind::Chars | Kind::Strings => DType::String,
        }
    }
}

/// A file's schema.
#[derive(Debug, Clone)]
pub(crate) struct NcMeta {
    pub(crate) path: PathBuf,
    /// Dimension sizes, in the file's order.
    pub(crate) dims: IndexMap<String, u64>,
    pub(crate) vars: IndexMap<String, NcVar>,
    /// Global attributes.
    pub(crate) attrs: Attrs,
}

/// A NetCDF error said as one sentence about `path`.
pub(crate) fn nc_error(path: &Path, what: &str, e: &netcdf_reader::Error) -> IoError {
    IoError::store(path.display(), format!("{what}: {e}"))
}

/// Opens a NetCDF file (classic or NetCDF-4) for reading, by positional
/// reads (`pread`), never a memory map: pages a map has touched count in
/// the process's RSS, which `--max-mem` bounds, and a file truncated under
/// a map kills the process. Decoded HDF5 chunks are not cached (a region
/// is read once; a cache per open file would hold up to 64 MiB each,
/// outside the budget). FIFOs, devices and directories are refused before
/// they are opened.
pub(crate) fn open_file(path: &Path) -> Result<NcFile, IoError> {
    let meta =
        std::fs::metadata(path).map_err(|e| IoError::file(path.display(), "cannot read", e))?;
    if !meta.is_file() {
        return Err(IoError::store(
            path.display(),
            "expected a NetCDF file, found a directory or special file",
        ));
    }
    let storage = netcdf_reader::FileStorage::open(path)
        .map_err(|e| IoError::store(path.display(), format!("cannot open: {e}")))?;
    let options = netcdf_reader::NcOpenOptions {
        chunk_cache_bytes: 0,
        ..netcdf_reader::NcOpenOptions::default()
    };
    NcFile::from_storage_with_options(std::sync::Arc::new(storage), options)
        .map_err(|e| nc_error(path, "cannot open as NetCDF", &e))
}

fn dtype_of(t: &NcType) -> Option<Kind> {
    Some(Kind::Number(match t {
        NcType::Byte => DType::I8,
        NcType::UByte => DType::U8,
        NcType::Short => DType::I16,
        NcType::UShort => DType::U16,
        NcType::Int => DType::I32,
        NcType::UInt => DType::U32,
        NcType::Int64 => DType::I64,
        NcType::UInt64 => DType::U64,
        NcType::Float => DType::F32,
        NcType::Double => DType::F64,
        NcType::Char => return Some(Kind::Chars),
        NcType::String => return Some(Kind::Strings),
        _ => return None,
    }))
}

/// An attribute as JSON (one number or string for a single value, a list
/// otherwise; non-finite floats as xarray spells them), with the stored
/// type of numbers.
fn attr_json(v: &NcAttrValue) -> (Value, Option<DType>) {
    fn list<T: Copy>(v: &[T], f: impl Fn(T) -> Value) -> Value {
        match v {
            [one] => f(*one),
            many => Value::Array(many.iter().map(|x| f(*x)).collect()),
        }
    }
    let float = |x: f64| {
        if x.is_finite() {
            json!(x)
        } else {
            f64_attr(x)
        }
    };
    match v {
        NcAttrValue::Bytes(v) => (list(v, |x| json!(x)), Some(DType::I8)),
        NcAttrValue::UBytes(v) => (list(v, |x| json!(x)), Some(DType::U8)),
        NcAttrValue::Shorts(v) => (list(v, |x| json!(x)), Some(DType::I16)),
        NcAttrValue::UShorts(v) => (list(v, |x| json!(x)), Some(DType::U16)),
        NcAttrValue::Ints(v) => (list(v, |x| json!(x)), Some(DType::I32)),
        NcAttrValue::UInts(v) => (list(v, |x| json!(x)), Some(DType::U32)),
        NcAttrValue::Int64s(v) => (list(v, |x| json!(x)), Some(DType::I64)),
        NcAttrValue::UInt64s(v) => (list(v, |x| json!(x)), Some(DType::U64)),
        NcAttrValue::Floats(v) => (list(v, |x| float(f64::from(x))), Some(DType::F32)),
        NcAttrValue::Doubles(v) => (list(v, float), Some(DType::F64)),
        NcAttrValue::Chars(s) => (json!(s), None),
        NcAttrValue::Strings(v) => match v.as_slice() {
            [one] => (json!(one), None),
            many => (json!(many), None),
        },
        NcAttrValue::UserDefined { values, .. } => (json!(format!("{values:?}")), None),
    }
}

fn attrs_of(
    list: &[netcdf_reader::NcAttribute],
    types: Option<&mut IndexMap<String, DType>>,
) -> Attrs {
    let mut attrs = Attrs::new();
    let mut seen = IndexMap::new();
    for a in list {
        let (v, t) = attr_json(&a.value);
        attrs.insert(a.name.clone(), v);
        if let Some(t) = t {
            seen.insert(a.name.clone(), t);
        }
    }
    if let Some(types) = types {
        *types = seen;
    }
    attrs
}

fn var_of(path: &Path, v: &NcVariable) -> Result<NcVar, IoError> {
    let kind = dtype_of(v.dtype()).ok_or_else(|| {
        IoError::store(
            path.display(),
            format!(
                "variable {} has NetCDF type {:?}, which xbeam cannot read: expected a number, char or string type",
                repr::quote(v.name()),
                v.dtype()
            ),
        )
    })?;
    let mut dims: Vec<String> = v.dimensions().iter().map(|d| d.name.clone()).collect();
    let mut shape = v.shape();
    if kind == Kind::Chars && !dims.is_empty() {
        dims.pop();
        shape.pop();
    }
    let mut attr_types = IndexMap::new();
    let attrs = attrs_of(v.attributes(), Some(&mut attr_types));
    if attrs.get("_Unsigned").and_then(Value::as_str) == Some("true") {
        return Err(IoError::store(
            path.display(),
            format!(
                "variable {} is marked _Unsigned, which xbeam cannot decode yet: expected signed or unsigned NetCDF types",
                repr::quote(v.name())
            ),
        ));
    }
    Ok(NcVar {
        name: v.name().to_owned(),
        dims,
        shape,
        kind,
        attrs,
        attr_types,
    })
}

/// Reads the schema of an open file: the root group's dimensions,
/// variables and attributes (NetCDF-4 subgroups are not read).
pub(crate) fn read_meta(path: &Path, file: &NcFile) -> Result<NcMeta, IoError> {
    let err = |e: netcdf_reader::Error| nc_error(path, "cannot read the NetCDF header", &e);
    let dims = file
        .dimensions()
        .map_err(err)?
        .iter()
        .map(|d| (d.name.clone(), d.size))
        .collect();
    let mut vars = IndexMap::new();
    for v in file.variables().map_err(err)? {
        vars.insert(v.name().to_owned(), var_of(path, v)?);
    }
    let attrs = attrs_of(file.global_attributes().map_err(err)?, None);
    Ok(NcMeta {
        path: path.to_path_buf(),
        dims,
        vars,
        attrs,
    })
}

fn slice<T>(
    path: &Path,
    file: &NcFile,
    var: &NcVar,
    ranges: &[Range<u64>],
) -> Result<Array, IoError>
where
    T: netcdf_reader::NcReadable + Element + Copy,
{
    let whole = ranges
        .iter()
        .zip(&var.shape)
        .all(|(r, &n)| r.start == 0 && r.end == n);
    let read = if whole {
        file.read_variable::<T>(&var.name)
    } else {
        let selections = ranges
            .iter()
            .map(|r| NcSliceInfoElem::Slice {
                start: r.start,
                end: r.end,
                step: 1,
            })
            .collect();
        file.read_variable_slice::<T>(&var.name, &NcSliceInfo { selections })
    }
    .map_err(|e| {
        nc_error(
            path,
            &format!("cannot read variable {}", repr::quote(&var.name)),
            &e,
        )
    })?;
    let shape: Vec<usize> = ranges.iter().map(|r| (r.end - r.start) as usize).collect();
    let values: Vec<T> = if read.is_standard_layout() {
        let (v, offset) = read.into_raw_vec_and_offset();
        match offset {
            Some(0) | None => v,
            Some(o) => v[o..].to_vec(),
        }
    } else {
        read.iter().copied().collect()
    };
    Array::from_vec(shape, values).map_err(|e| IoError::store(path.display(), e.to_string()))
}

/// Reads `ranges` (one per dimension of `var`, as xarray shows them) of a
/// variable's stored values.
pub(crate) fn read_raw(
    path: &Path,
    file: &NcFile,
    var: &NcVar,
    ranges: &[Range<u64>],
) -> Result<Array, IoError> {
    match var.kind {
        Kind::Number(d) => match d {
            DType::I8 => slice::<i8>(path, file, var, ranges),
            DType::U8 => slice::<u8>(path, file, var, ranges),
            DType::I16 => slice::<i16>(path, file, var, ranges),
            DType::U16 => slice::<u16>(path, file, var, ranges),
            DType::I32 => slice::<i32>(path, file, var, ranges),
            DType::U32 => slice::<u32>(path, file, var, ranges),
            DType::I64 => slice::<i64>(path, file, var, ranges),
            DType::U64 => slice::<u64>(path, file, var, ranges),
            DType::F32 => slice::<f32>(path, file, var, ranges),
            _ => slice::<f64>(path, file, var, ranges),
        },
        Kind::Chars | Kind::Strings => {
            let strings = file.read_variable_as_strings(&var.name).map_err(|e| {
                nc_error(
                    path,
                    &format!("cannot read variable {}", repr::quote(&var.name)),
                    &e,
                )
            })?;
            let shape: Vec<usize> = var.shape.iter().map(|&n| n as usize).collect();
            let all = Array::from_vec(shape, strings)
                .map_err(|e| IoError::store(path.display(), e.to_string()))?;
            let mut out = all;
            for (axis, r) in ranges.iter().enumerate() {
                out = out
                    .slice_axis(axis, r.start as usize..r.end as usize)
                    .map_err(|e| IoError::store(path.display(), e.to_string()))?;
            }
            Ok(out)
        }
    }
}
