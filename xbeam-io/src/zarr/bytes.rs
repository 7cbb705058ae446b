//! Stored values as the bytes zarrs encodes and decodes: numbers as
//! little-endian bytes, NumPy's fixed-width `<U` / `|S` strings, and
//! variable-length strings.

use std::borrow::Cow;

use xbeam_chunk::{codec, Array, ChunkError, DType};

use super::meta::Stored;
use crate::IoError;

/// Stored bytes (little-endian) of stored values, for zarrs: numbers,
/// bools and datetime ticks through [`codec`] (borrowed from the array
/// when it is a contiguous buffer, else copied row by row); strings in
/// NumPy's fixed widths.
pub(crate) fn to_bytes(values: &Array, stored: Stored) -> Result<Cow<'_, [u8]>, IoError> {
    match stored {
        // datetimes and timedeltas are stored as their int64 ticks
        Stored::Plain(DType::I64)
            if matches!(values, Array::DateTime(..) | Array::TimeDelta(..)) =>
        {
            Ok(codec::to_le_bytes(values)?)
        }
        Stored::Plain(d) if d.is_numeric() => {
            if values.dtype() != d {
                return Err(ChunkError::WrongType {
                    expected: d.name(),
                    found: values.dtype().name(),
                }
                .into());
            }
            Ok(codec::to_le_bytes(values)?)
        }
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
        Stored::Plain(d) if d.is_numeric() => Ok(codec::from_le_bytes(d, shape, bytes)?),
        Stored::Utf32(w) => {
            let strings = bytes
                .chunks(4 * w.max(1))
                .take(n)
                .enumerate()
                .map(|(i, item)| {
                    item.chunks(4)
                        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                        .take_while(|&c| c != 0)
                        .map(|c| {
                            char::from_u32(c).ok_or_else(|| {
                                IoError::Invalid(format!(
                                    "string value {i} holds {c:#x}, which is not a Unicode character"
                                ))
                            })
                        })
                        .collect::<Result<String, IoError>>()
                })
                .collect::<Result<Vec<String>, IoError>>()?;
            Ok(Array::from_vec(shape.to_vec(), strings)?)
        }
        Stored::Bytes(w) => {
            let strings = bytes
                .chunks(w.max(1))
                .take(n)
                .enumerate()
                .map(|(i, item)| {
                    let end = item.iter().position(|&b| b == 0).unwrap_or(item.len());
                    utf8(i, &item[..end])
                })
                .collect::<Result<Vec<String>, IoError>>()?;
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
        .enumerate()
        .map(|(i, w)| {
            let item = bytes.get(w[0]..w[1]).ok_or_else(|| {
                IoError::Invalid(format!(
                    "string value {i} lies at bytes {}..{} of {}: the chunk's offsets are damaged",
                    w[0],
                    w[1],
                    bytes.len()
                ))
            })?;
            utf8(i, item)
        })
        .collect::<Result<Vec<String>, IoError>>()?;
    Ok(Array::from_vec(shape.to_vec(), strings)?)
}

/// String value `i` from its bytes, which must be UTF-8: replacing what is
/// not would change the data without saying so.
fn utf8(i: usize, item: &[u8]) -> Result<String, IoError> {
    std::str::from_utf8(item).map(str::to_owned).map_err(|e| {
        let at = e.valid_up_to();
        IoError::Invalid(format!(
            "string value {i} is not valid UTF-8 (byte {at} of {} is {:#04x}): expected text",
            item.len(),
            item[at]
        ))
    })
}
