//! Stored values as the bytes zarrs encodes and decodes: numbers as
//! little-endian bytes, NumPy's fixed-width `<U` / `|S` strings, and
//! variable-length strings.

use std::borrow::Cow;

use xbeam_chunk::{Array, DType, Element};

use super::meta::Stored;
use crate::IoError;

/// Stored bytes (native little-endian) of stored values, for zarrs:
/// borrowed from the array when it is a contiguous buffer of numbers.
pub(crate) fn to_bytes(values: &Array, stored: Stored) -> Result<Cow<'_, [u8]>, IoError> {
    fn view_bytes<'a, T: bytemuck::Pod>(view: &ndarray::ArrayViewD<'a, T>) -> Cow<'a, [u8]> {
        if let Some(slice) = view.to_slice() {
            Cow::Borrowed(bytemuck::cast_slice(slice))
        } else {
            let owned: Vec<T> = view.iter().copied().collect();
            Cow::Owned(bytemuck::cast_slice(&owned).to_vec())
        }
    }
    fn pod<T: Element + bytemuck::Pod>(a: &Array) -> Result<Cow<'_, [u8]>, IoError> {
        Ok(view_bytes(&a.as_view::<T>()?))
    }
    match stored {
        Stored::Plain(DType::Bool) => Ok(Cow::Owned(
            values
                .as_view::<bool>()?
                .iter()
                .map(|&b| u8::from(b))
                .collect(),
        )),
        Stored::Plain(DType::I8) => pod::<i8>(values),
        Stored::Plain(DType::I16) => pod::<i16>(values),
        Stored::Plain(DType::I32) => pod::<i32>(values),
        Stored::Plain(DType::I64) => match values {
            Array::DateTime(..) | Array::TimeDelta(..) => {
                let (ticks, ..) = values.datetime_ticks()?;
                Ok(view_bytes(&ticks))
            }
            _ => pod::<i64>(values),
        },
        Stored::Plain(DType::U8) => pod::<u8>(values),
        Stored::Plain(DType::U16) => pod::<u16>(values),
        Stored::Plain(DType::U32) => pod::<u32>(values),
        Stored::Plain(DType::U64) => pod::<u64>(values),
        Stored::Plain(DType::F32) => pod::<f32>(values),
        Stored::Plain(DType::F64) => pod::<f64>(values),
        Stored::Utf32(n) => {
            let view = values.as_view::<String>()?;
            let mut out = Vec::with_capacity(view.len() * 4 * n);
            for s in &view {
                let chars: Vec<char> = s.chars().collect();
                if chars.len() > n {
                    return Err(IoError::Invalid(format!(
                        "string {s:?} is longer than the stored width of {n} characters"
                    )));
                }
                for i in 0..n {
                    let c = chars.get(i).map_or(0, |&c| c as u32);
                    out.extend_from_slice(&c.to_le_bytes());
                }
            }
            Ok(Cow::Owned(out))
        }
        Stored::Bytes(n) => {
            let view = values.as_view::<String>()?;
            let mut out = Vec::with_capacity(view.len() * n);
            for s in &view {
                let b = s.as_bytes();
                if b.len() > n {
                    return Err(IoError::Invalid(format!(
                        "string {s:?} is longer than the stored width of {n} bytes"
                    )));
                }
                out.extend_from_slice(b);
                out.resize(out.len() + n - b.len(), 0);
            }
            Ok(Cow::Owned(out))
        }
        Stored::VString => Err(IoError::Invalid(
            "variable-length strings are written as fixed-width <U strings".into(),
        )),
        Stored::Plain(d) => Err(IoError::Invalid(format!("cannot store {d} values"))),
    }
}

/// Stored values from decoded bytes.
pub(crate) fn from_bytes(bytes: &[u8], stored: Stored, shape: &[usize]) -> Result<Array, IoError> {
    fn pod<T: Element + bytemuck::Pod>(bytes: &[u8], shape: &[usize]) -> Result<Array, IoError> {
        let mut v: Vec<T> = xbeam_chunk::codec::reusable_zeroed(bytes.len() / std::mem::size_of::<T>());
        bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(bytes);
        Ok(Array::from_vec(shape.to_vec(), v)?)
    }
    let n: usize = shape.iter().product();
    if stored != Stored::VString && bytes.len() != n * stored.itemsize() {
        return Err(IoError::Invalid(format!(
            "decoded {} bytes for {n} elements of {}: expected {}",
            bytes.len(),
            stored.numpy_name(),
            n * stored.itemsize()
        )));
    }
    match stored {
        Stored::Plain(DType::Bool) => Ok(Array::from_vec(
            shape.to_vec(),
            bytes.iter().map(|&b| b != 0).collect::<Vec<bool>>(),
        )?),
        Stored::Plain(DType::I8) => pod::<i8>(bytes, shape),
        Stored::Plain(DType::I16) => pod::<i16>(bytes, shape),
        Stored::Plain(DType::I32) => pod::<i32>(bytes, shape),
        Stored::Plain(DType::I64) => pod::<i64>(bytes, shape),
        Stored::Plain(DType::U8) => pod::<u8>(bytes, shape),
        Stored::Plain(DType::U16) => pod::<u16>(bytes, shape),
        Stored::Plain(DType::U32) => pod::<u32>(bytes, shape),
        Stored::Plain(DType::U64) => pod::<u64>(bytes, shape),
        Stored::Plain(DType::F32) => pod::<f32>(bytes, shape),
        Stored::Plain(DType::F64) => pod::<f64>(bytes, shape),
        Stored::Utf32(w) => {
            let strings = bytes
                .chunks(4 * w.max(1))
                .take(n)
                .map(|item| {
                    item.chunks(4)
                        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                        .take_while(|&c| c != 0)
                        .map(|c| char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER))
                        .collect::<String>()
                })
                .collect::<Vec<String>>();
            Ok(Array::from_vec(shape.to_vec(), strings)?)
        }
        Stored::Bytes(w) => {
            let strings = bytes
                .chunks(w.max(1))
                .take(n)
                .map(|item| {
                    let end = item.iter().position(|&b| b == 0).unwrap_or(item.len());
                    String::from_utf8_lossy(&item[..end]).into_owned()
                })
                .collect::<Vec<String>>();
            Ok(Array::from_vec(shape.to_vec(), strings)?)
        }
        Stored::VString => Err(IoError::Invalid(
            "variable-length strings come with offsets".into(),
        )),
        Stored::Plain(d) => Err(IoError::Invalid(format!("cannot read {d} values"))),
    }
}

/// Stored values from variable-length bytes and offsets.
pub(crate) fn from_vlen(
    bytes: &[u8],
    offsets: &[usize],
    shape: &[usize],
) -> Result<Array, IoError> {
    let strings = offsets
        .windows(2)
        .map(|w| String::from_utf8_lossy(&bytes[w[0]..w[1]]).into_owned())
        .collect::<Vec<String>>();
    Ok(Array::from_vec(shape.to_vec(), strings)?)
}
