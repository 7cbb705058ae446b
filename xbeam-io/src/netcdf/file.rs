//! One NetCDF file as xbeam sees it: its dimensions, variables and
//! attributes (as JSON, like Zarr's), and raw reads of a region of one
//! variable, before any CF decoding. Reading is the pure-Rust
//! `netcdf-reader` crate's: classic CDF-1/2/5 and NetCDF-4 (HDF5).

use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    /// Where the values lie in the file when they are one contiguous,
    /// uncompressed run (found by [`probe`]): then regions are read
    /// straight into their buffer.
    pub(crate) direct: Option<Direct>,
    /// The HDF5 chunk shape of a chunked NetCDF-4 variable: regions are
    /// read a row of chunks at a time, so that no buffer the size of the
    /// region is made and copied but the one the values end in.
    pub(crate) chunks: Option<Vec<u64>>,
}

/// A variable stored as one contiguous run of uncompressed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Direct {
    /// The byte offset of the first value in the file.
    pub(crate) offset: u64,
    /// Values are big-endian (classic files), else little-endian.
    pub(crate) big_endian: bool,
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
    Ok(open_recorded(path)?.0)
}

/// Opens a file as [`open_file`] does, through a [`Recorder`] of the byte
/// ranges it reads.
pub(crate) fn open_recorded(path: &Path) -> Result<(NcFile, Arc<Recorder>), IoError> {
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
        filter_registry: Some(filters()),
        ..netcdf_reader::NcOpenOptions::default()
    };
    let recorder = Arc::new(Recorder {
        inner: storage,
        log: Mutex::new(None),
    });
    let file = NcFile::from_storage_with_options(recorder.clone(), options)
        .map_err(|e| nc_error(path, "cannot open as NetCDF", &e))?;
    Ok((file, recorder))
}

/// HDF5's filters as `netcdf-reader` has them, but the shuffle filter
/// undone in one sequential pass ([`unshuffle`]; the built-in one writes
/// each byte plane across the whole chunk, with a bounds check per byte,
/// and took 13% of a NetCDF-4 ingest).
fn filters() -> hdf5_reader::FilterRegistry {
    let mut registry = hdf5_reader::FilterRegistry::new();
    registry.register(
        hdf5_reader::filters::FILTER_SHUFFLE,
        Box::new(|_, data: &[u8], size: usize| Ok(unshuffle(data, size))),
    );
    registry
}

/// Undoes HDF5's shuffle filter: `data` holds byte 0 of every element, then
/// byte 1 of every element, and so on; trailing bytes that make no whole
/// element are kept as they are.
pub(crate) fn unshuffle(data: &[u8], size: usize) -> Vec<u8> {
    let n = data.len().checked_div(size).unwrap_or(0);
    if size <= 1 || n == 0 {
        return data.to_vec();
    }
    let mut out = vec![0u8; data.len()];
    let whole = n * size;
    match size {
        2 => {
            let (a, b) = data[..whole].split_at(n);
            for ((o, &x), &y) in out.chunks_exact_mut(2).zip(a).zip(b) {
                o.copy_from_slice(&[x, y]);
            }
        }
        4 => {
            let (a, rest) = data[..whole].split_at(n);
            let (b, rest) = rest.split_at(n);
            let (c, d) = rest.split_at(n);
            for ((((o, &w), &x), &y), &z) in out.chunks_exact_mut(4).zip(a).zip(b).zip(c).zip(d) {
                o.copy_from_slice(&[w, x, y, z]);
            }
        }
        _ => {
            let planes: Vec<&[u8]> = data[..whole].chunks_exact(n).collect();
            for (i, o) in out[..whole].chunks_exact_mut(size).enumerate() {
                for (k, b) in o.iter_mut().enumerate() {
                    *b = planes[k][i];
                }
            }
        }
    }
    out[whole..].copy_from_slice(&data[whole..]);
    out
}

/// A file's storage that can record the byte ranges read from it, so that
/// [`probe`] learns where a variable's values lie.
pub(crate) struct Recorder {
    inner: netcdf_reader::FileStorage,
    log: Mutex<Option<Vec<(u64, usize)>>>,
}

impl netcdf_reader::Storage for Recorder {
    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn read_range(
        &self,
        offset: u64,
        len: usize,
    ) -> hdf5_reader::error::Result<netcdf_reader::StorageBuffer> {
        if let Some(log) = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_mut()
        {
            log.push((offset, len));
        }
        self.inner.read_range(offset, len)
    }
}

impl Recorder {
    /// Runs `f`, returning the byte ranges it read.
    fn recording<T>(&self, f: impl FnOnce() -> T) -> (T, Vec<(u64, usize)>) {
        let lock = || {
            self.log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        *lock() = Some(Vec::new());
        let out = f();
        let log = lock().take().unwrap_or_default();
        (out, log)
    }
}

/// The HDF5 chunk shapes of the chunked variables of a NetCDF-4 file,
/// read through the same storage.
pub(crate) fn hdf5_chunks(file: &NcFile, recorder: &Arc<Recorder>) -> IndexMap<String, Vec<u64>> {
    let mut out = IndexMap::new();
    if file.as_classic().is_some() {
        return out;
    }
    let Ok(h5) = hdf5_reader::Hdf5File::from_storage(recorder.clone()) else {
        return out;
    };
    let Ok(vars) = file.variables() else {
        return out;
    };
    for v in vars {
        if let Some(dims) = h5.dataset(v.name()).ok().and_then(|d| d.chunks()) {
            out.insert(
                v.name().to_owned(),
                dims.iter().map(|&c| u64::from(c)).collect(),
            );
        }
    }
    out
}

/// The values of a numeric array in memory order, as bytes.
pub(crate) fn array_bytes(a: &Array) -> Option<&[u8]> {
    macro_rules! bytes {
        ($t:ty) => {
            bytemuck::cast_slice(a.as_view::<$t>().ok()?.to_slice()?)
        };
    }
    Some(match a.dtype() {
        DType::I8 => bytes!(i8),
        DType::U8 => bytes!(u8),
        DType::I16 => bytes!(i16),
        DType::U16 => bytes!(u16),
        DType::I32 => bytes!(i32),
        DType::U32 => bytes!(u32),
        DType::I64 => bytes!(i64),
        DType::U64 => bytes!(u64),
        DType::F32 => bytes!(f32),
        DType::F64 => bytes!(f64),
        _ => return None,
    })
}

/// Finds whether `var` is one contiguous run of uncompressed values, and
/// where: its first, middle and last values are read through
/// `netcdf-reader` while `recorder` notes the byte ranges read, and the run
/// is accepted only when they lie their flat index times the item size
/// apart and the file's bytes there are those values (which also tells
/// their byte order; values that read the same in both orders decide
/// nothing, and a NetCDF-4 file is then read through `netcdf-reader`). Anything else
/// (chunked, compressed, record variables) reads through `netcdf-reader`.
pub(crate) fn probe(
    path: &Path,
    file: &NcFile,
    recorder: &Recorder,
    var: &NcVar,
) -> Option<Direct> {
    let Kind::Number(dtype) = var.kind else {
        return None;
    };
    let itemsize = dtype.itemsize();
    let n: u64 = var.shape.iter().product();
    if n < 2 || var.shape.is_empty() {
        return None;
    }
    let raw = std::fs::File::open(path).ok()?;
    // the first, a middle and the last value, by flat index
    let unravel = |mut flat: u64| -> Vec<u64> {
        let mut index = vec![0; var.shape.len()];
        for (d, &size) in var.shape.iter().enumerate().rev() {
            index[d] = flat % size;
            flat /= size;
        }
        index
    };
    let mut found = Vec::new();
    for flat in [0, n / 2, n - 1] {
        let ranges: Vec<Range<u64>> = unravel(flat).iter().map(|&i| i..i + 1).collect();
        let (value, log) = recorder.recording(|| read_raw(path, file, var, &ranges));
        let value = array_bytes(&value.ok()?)?.to_vec();
        let &(offset, _) = log.iter().rev().find(|(_, len)| *len == itemsize)?;
        let mut bytes = vec![0u8; itemsize];
        raw.read_exact_at(&mut bytes, offset).ok()?;
        found.push((flat, offset, value, bytes));
    }
    let first = found[0].1;
    if found
        .iter()
        .any(|(flat, offset, ..)| offset.checked_sub(first) != Some(flat * itemsize as u64))
    {
        return None;
    }
    let swapped = |b: &[u8]| b.iter().rev().copied().collect::<Vec<u8>>();
    let native_big = cfg!(target_endian = "big");
    let same = found.iter().all(|(_, _, v, b)| v == b);
    let reversed = found.iter().all(|(_, _, v, b)| *v == swapped(b));
    let big_endian = match (same, reversed) {
        // values that read the same both ways (zeros, symmetric bytes):
        // classic files are big-endian; a NetCDF-4 file may be either, so
        // it is read through netcdf-reader
        (true, true) if file.as_classic().is_some() => true,
        (true, true) | (false, false) => return None,
        (true, false) => native_big,
        (false, true) => !native_big,
    };
    Some(Direct {
        offset: first,
        big_endian,
    })
}

/// Reads `ranges` of a variable stored as one contiguous run into `out`
/// (the region's values in C order, as bytes), with one `pread` per
/// contiguous stretch, swapping byte order where the file's differs.
pub(crate) fn read_direct_into(
    path: &Path,
    raw: &std::fs::File,
    var: &NcVar,
    direct: Direct,
    ranges: &[Range<u64>],
    out: &mut [u8],
) -> Result<(), IoError> {
    let Kind::Number(dtype) = var.kind else {
        return Err(IoError::Invalid("direct reads are for numbers".into()));
    };
    let itemsize = dtype.itemsize() as u64;
    let nd = var.shape.len();
    // the last dimension not read whole: runs span it and all after it
    let j = (0..nd)
        .rev()
        .find(|&d| ranges[d].start != 0 || ranges[d].end != var.shape[d])
        .unwrap_or(0);
    let mut strides = vec![1u64; nd];
    for d in (0..nd.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * var.shape[d + 1];
    }
    let run = (ranges[j].end - ranges[j].start) * strides[j] * itemsize;
    let mut index: Vec<u64> = ranges[..j].iter().map(|r| r.start).collect();
    let mut at = 0usize;
    if ranges.iter().any(|r| r.start >= r.end) {
        return Ok(());
    }
    loop {
        let element: u64 = index.iter().zip(&strides).map(|(i, s)| i * s).sum::<u64>()
            + ranges[j].start * strides[j];
        let len = run as usize;
        let dst = out.get_mut(at..at + len).ok_or_else(|| {
            IoError::Invalid(format!("region of {} does not fit its buffer", var.name))
        })?;
        raw.read_exact_at(dst, direct.offset + element * itemsize)
            .map_err(|e| {
                IoError::file(
                    path.display(),
                    format!("cannot read variable {}", repr::quote(&var.name)),
                    e,
                )
            })?;
        at += len;
        // the next outer index, in C order
        let mut d = j;
        loop {
            if d == 0 {
                if direct.big_endian != cfg!(target_endian = "big") && itemsize > 1 {
                    out[..at]
                        .chunks_exact_mut(itemsize as usize)
                        .for_each(<[u8]>::reverse);
                }
                return Ok(());
            }
            d -= 1;
            index[d] += 1;
            if index[d] < ranges[d].end {
                break;
            }
            index[d] = ranges[d].start;
        }
    }
}

/// A zeroed buffer for `n` values of `dtype`, as bytes to read into, and
/// the array it becomes.
pub(crate) fn direct_buffer(dtype: DType, n: usize) -> Option<DirectBuffer> {
    Some(match dtype {
        DType::I8 => DirectBuffer::I8(vec![0; n]),
        DType::U8 => DirectBuffer::U8(vec![0; n]),
        DType::I16 => DirectBuffer::I16(vec![0; n]),
        DType::U16 => DirectBuffer::U16(vec![0; n]),
        DType::I32 => DirectBuffer::I32(vec![0; n]),
        DType::U32 => DirectBuffer::U32(vec![0; n]),
        DType::I64 => DirectBuffer::I64(vec![0; n]),
        DType::U64 => DirectBuffer::U64(vec![0; n]),
        DType::F32 => DirectBuffer::F32(vec![0.0; n]),
        DType::F64 => DirectBuffer::F64(vec![0.0; n]),
        _ => return None,
    })
}

/// Values being read straight from files.
pub(crate) enum DirectBuffer {
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl DirectBuffer {
    /// The values as bytes.
    pub(crate) fn bytes(&mut self) -> &mut [u8] {
        match self {
            DirectBuffer::I8(v) => bytemuck::cast_slice_mut(v),
            DirectBuffer::U8(v) => v,
            DirectBuffer::I16(v) => bytemuck::cast_slice_mut(v),
            DirectBuffer::U16(v) => bytemuck::cast_slice_mut(v),
            DirectBuffer::I32(v) => bytemuck::cast_slice_mut(v),
            DirectBuffer::U32(v) => bytemuck::cast_slice_mut(v),
            DirectBuffer::I64(v) => bytemuck::cast_slice_mut(v),
            DirectBuffer::U64(v) => bytemuck::cast_slice_mut(v),
            DirectBuffer::F32(v) => bytemuck::cast_slice_mut(v),
            DirectBuffer::F64(v) => bytemuck::cast_slice_mut(v),
        }
    }

    /// The array of `shape`.
    pub(crate) fn into_array(self, shape: Vec<usize>) -> Result<Array, IoError> {
        let a = match self {
            DirectBuffer::I8(v) => Array::from_vec(shape, v),
            DirectBuffer::U8(v) => Array::from_vec(shape, v),
            DirectBuffer::I16(v) => Array::from_vec(shape, v),
            DirectBuffer::U16(v) => Array::from_vec(shape, v),
            DirectBuffer::I32(v) => Array::from_vec(shape, v),
            DirectBuffer::U32(v) => Array::from_vec(shape, v),
            DirectBuffer::I64(v) => Array::from_vec(shape, v),
            DirectBuffer::U64(v) => Array::from_vec(shape, v),
            DirectBuffer::F32(v) => Array::from_vec(shape, v),
            DirectBuffer::F64(v) => Array::from_vec(shape, v),
        };
        a.map_err(|e| IoError::Invalid(e.to_string()))
    }
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
        direct: None,
        chunks: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shuffle(data: &[u8], size: usize) -> Vec<u8> {
        let n = data.len() / size;
        let mut out = data.to_vec();
        for i in 0..n {
            for k in 0..size {
                out[k * n + i] = data[i * size + k];
            }
        }
        out
    }

    #[test]
    fn unshuffle_undoes_hdf5_shuffle_for_every_element_size() {
        let data: Vec<u8> = (0..203u32).map(|i| (i * 37 % 251) as u8).collect();
        for size in [1, 2, 3, 4, 8, 16] {
            let shuffled = shuffle(&data, size);
            assert_eq!(unshuffle(&shuffled, size), data, "element size {size}");
        }
        assert!(unshuffle(&[], 4).is_empty());
        assert_eq!(unshuffle(&[1, 2, 3], 4), vec![1, 2, 3]);
    }

    fn fixture(set: &str, file: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/netcdf")
            .join(set)
            .join(file)
    }

    #[test]
    fn contiguous_values_are_found_and_chunked_ones_are_not() {
        for (set, file, big_endian) in [
            ("contig", "a.nc", false),
            ("classic_fixed", "a.nc", true),
            ("classic_fixed", "b.nc", true),
        ] {
            let path = fixture(set, file);
            let (nc, recorder) = open_recorded(&path).unwrap();
            let meta = read_meta(&path, &nc).unwrap();
            let var = &meta.vars["t"];
            let direct = probe(&path, &nc, &recorder, var)
                .unwrap_or_else(|| panic!("{set}/{file}: t is one contiguous run"));
            assert_eq!(direct.big_endian, big_endian, "{set}/{file}");
            // a region read straight from the file equals netcdf-reader's
            let ranges = [1..4, 1..3, 0..4];
            let mut buf = direct_buffer(DType::F32, 3 * 2 * 4).unwrap();
            let raw = std::fs::File::open(&path).unwrap();
            read_direct_into(&path, &raw, var, direct, &ranges, buf.bytes()).unwrap();
            let ours = buf.into_array(vec![3, 2, 4]).unwrap();
            let theirs = read_raw(&path, &nc, var, &ranges).unwrap();
            assert!(ours.equals(&theirs), "{set}/{file}");
        }
        // record variables are interleaved: read through netcdf-reader
        let path = fixture("classic", "a.nc");
        let (nc, recorder) = open_recorded(&path).unwrap();
        let meta = read_meta(&path, &nc).unwrap();
        assert!(probe(&path, &nc, &recorder, &meta.vars["t"]).is_none());
        let path = fixture("nc4", "a.nc");
        let (nc, recorder) = open_recorded(&path).unwrap();
        let meta = read_meta(&path, &nc).unwrap();
        assert!(probe(&path, &nc, &recorder, &meta.vars["t"]).is_none());
        assert_eq!(hdf5_chunks(&nc, &recorder)["t"], vec![2, 3, 4]);
    }
}
