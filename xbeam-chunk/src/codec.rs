//! One array ↔ bytes codec: the buffer of a numeric, bool, datetime or
//! timedelta [`Array`] as raw little-endian bytes in row-major (C) order,
//! and back.
//!
//! The process-to-process wire format and the Zarr sinks share it. A
//! contiguous array is borrowed as it is; a strided view (a spatial split
//! of a larger chunk, a transpose) is copied **row by row**: each
//! contiguous run along the last axis is one `memcpy`, never element by
//! element through ndarray's iterator. Bools are one byte, `0` or `1`
//! (any non-zero byte decodes as `true`); datetimes and timedeltas are their
//! `i64` ticks (the unit and calendar live in the [`DType`]). Strings have
//! no fixed-size encoding and are refused.
//!
//! ```
//! use xbeam_chunk::{codec, Array, DType};
//!
//! let a = Array::from_vec(vec![2, 3], (0..6i16).collect())?;
//! // The second column pair of every row: a strided view.
//! let view = a.slice_axis(1, 1..3)?;
//! let bytes = codec::to_le_bytes(&view)?;
//! assert_eq!(&bytes[..], &[1, 0, 2, 0, 4, 0, 5, 0]);
//! let back = codec::from_le_bytes(DType::I16, &[2, 2], &bytes)?;
//! assert!(back.equals(&view));
//!
//! // Or into a buffer the caller owns, e.g. a Zarr chunk being assembled.
//! let mut out = vec![0u8; codec::encoded_len(&view)?];
//! codec::write_le_bytes(&view, &mut out)?;
//! assert_eq!(out, bytes.into_owned());
//! # Ok::<(), xbeam_chunk::ChunkError>(())
//! ```

use std::borrow::Cow;

use bytemuck::{NoUninit, Pod};
use ndarray::{ArrayD, ArrayViewD, Ix2, IxDyn};

use crate::error::{bail, ensure};
use crate::{Array, ChunkError, DType};

/// How many bytes the encoding of `array` takes: one item per element.
///
/// ```
/// let a = xbeam_chunk::Array::from_1d(vec![1.0f64, 2.0]);
/// assert_eq!(xbeam_chunk::codec::encoded_len(&a)?, 16);
/// # Ok::<(), xbeam_chunk::ChunkError>(())
/// ```
pub fn encoded_len(array: &Array) -> Result<usize, ChunkError> {
    check_encodable(array.dtype())?;
    Ok(array.len() * array.dtype().itemsize())
}

/// The little-endian bytes of `array` in row-major order: borrowed when the
/// buffer already is contiguous and row-major (on a little-endian machine),
/// else copied row by row.
///
/// ```
/// let a = xbeam_chunk::Array::from_1d(vec![1u16, 256]);
/// let bytes = xbeam_chunk::codec::to_le_bytes(&a)?;
/// assert!(matches!(bytes, std::borrow::Cow::Borrowed(_)));
/// assert_eq!(&bytes[..], &[1, 0, 0, 1]);
/// # Ok::<(), xbeam_chunk::ChunkError>(())
/// ```
pub fn to_le_bytes(array: &Array) -> Result<Cow<'_, [u8]>, ChunkError> {
    if cfg!(target_endian = "little") {
        let borrowed = crate::dispatch!(primitive: array,
            a => a.as_slice().map(bytemuck::cast_slice::<_, u8>),
            Array::Bool(a) => a.as_slice().map(bytemuck::cast_slice::<_, u8>),
            _ => None,
        );
        if let Some(bytes) = borrowed {
            return Ok(Cow::Borrowed(bytes));
        }
    }
    let mut out = Vec::new();
    extend_le_bytes(array, &mut out)?;
    Ok(Cow::Owned(out))
}

/// Appends the little-endian bytes of `array` (row-major) to `out`.
///
/// ```
/// let a = xbeam_chunk::Array::from_1d(vec![true, false]);
/// let mut out = vec![9u8];
/// xbeam_chunk::codec::extend_le_bytes(&a, &mut out)?;
/// assert_eq!(out, [9, 1, 0]);
/// # Ok::<(), xbeam_chunk::ChunkError>(())
/// ```
pub fn extend_le_bytes(array: &Array, out: &mut Vec<u8>) -> Result<(), ChunkError> {
    out.reserve(encoded_len(array)?);
    crate::dispatch!(primitive: array,
        a => extend_view(a.view(), out),
        Array::Bool(a) => extend_view(a.view(), out),
        _ => unreachable!("encoded_len refused strings"),
    );
    Ok(())
}

/// Writes the little-endian bytes of `array` (row-major) into `out`, which
/// must be exactly [`encoded_len`] bytes long.
///
/// ```
/// let a = xbeam_chunk::Array::from_1d(vec![1i32, -1]);
/// let mut out = [0u8; 8];
/// xbeam_chunk::codec::write_le_bytes(&a, &mut out)?;
/// assert_eq!(out, [1, 0, 0, 0, 255, 255, 255, 255]);
/// let err = xbeam_chunk::codec::write_le_bytes(&a, &mut [0u8; 3]).unwrap_err();
/// assert_eq!(err.to_string(), "expected a buffer of 8 bytes for an array of int32 of shape [2], found 3 bytes");
/// # Ok::<(), xbeam_chunk::ChunkError>(())
/// ```
pub fn write_le_bytes(array: &Array, out: &mut [u8]) -> Result<(), ChunkError> {
    let len = encoded_len(array)?;
    ensure!(
        out.len() == len,
        Shape,
        "expected a buffer of {len} bytes for an array of {} of shape {:?}, found {} bytes",
        array.dtype(),
        array.shape(),
        out.len()
    );
    crate::dispatch!(primitive: array,
        a => write_view(a.view(), out),
        Array::Bool(a) => write_view(a.view(), out),
        _ => unreachable!("encoded_len refused strings"),
    );
    Ok(())
}

/// The array of `dtype` and `shape` whose little-endian row-major bytes
/// are `bytes` (the inverse of [`to_le_bytes`]).
///
/// ```
/// use xbeam_chunk::{codec, DType};
/// let a = codec::from_le_bytes(DType::U16, &[2], &[1, 0, 0, 1])?;
/// assert_eq!(a.as_view::<u16>()?.as_slice().unwrap(), &[1, 256]);
/// let err = codec::from_le_bytes(DType::U16, &[3], &[1, 0]).unwrap_err();
/// assert_eq!(err.to_string(), "expected 6 bytes for an array of uint16 of shape [3], found 2");
/// # Ok::<(), xbeam_chunk::ChunkError>(())
/// ```
pub fn from_le_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<Array, ChunkError> {
    check_encodable(dtype)?;
    let n = shape
        .iter()
        .try_fold(1usize, |n, &s| n.checked_mul(s))
        .and_then(|n| n.checked_mul(dtype.itemsize()));
    ensure!(
        n == Some(bytes.len()),
        Shape,
        "expected {} bytes for an array of {dtype} of shape {shape:?}, found {}",
        n.map_or_else(|| "more than usize::MAX".to_owned(), |n| n.to_string()),
        bytes.len()
    );
    let shape = IxDyn(shape);
    Ok(crate::dispatch!(dtype: dtype,
        T => Array::from(decode::<T>(shape, bytes)),
        DType::Bool => Array::from(decode::<u8>(shape, bytes).mapv(|b| b != 0)),
        DType::DateTime(unit, calendar) => Array::datetime(decode(shape, bytes), unit, calendar),
        DType::TimeDelta(unit) => Array::timedelta(decode(shape, bytes), unit),
        _ => unreachable!("check_encodable refused other dtypes"),
    ))
}

/// Calls `f` with the elements of `view` in row-major order, as few
/// contiguous slices as the layout allows: the whole buffer when it is
/// contiguous, else one slice per row of the last axis (single elements
/// only when the last axis itself is strided).
pub(crate) fn for_each_run<T>(view: ArrayViewD<'_, T>, f: &mut impl FnMut(&[T])) {
    if let Some(s) = view.as_slice() {
        f(s);
        return;
    }
    match view.ndim() {
        0 | 1 => view.iter().for_each(|x| f(std::slice::from_ref(x))),
        2 => {
            let view = view.into_dimensionality::<Ix2>().expect("ndim is 2");
            for row in view.rows() {
                match row.as_slice() {
                    Some(s) => f(s),
                    None => row.iter().for_each(|x| f(std::slice::from_ref(x))),
                }
            }
        }
        _ => {
            for sub in view.outer_iter() {
                for_each_run(sub, f);
            }
        }
    }
}

fn check_encodable(dtype: DType) -> Result<(), ChunkError> {
    if dtype == DType::String {
        bail!(
            Invalid,
            "expected an array with a fixed-size dtype to encode as bytes, found {dtype}"
        );
    }
    Ok(())
}

/// Appends `view` to `out` run by run (no zero-filling first).
fn extend_view<T: NoUninit>(view: ArrayViewD<'_, T>, out: &mut Vec<u8>) {
    for_each_run(view, &mut |run: &[T]| {
        let start = out.len();
        out.extend_from_slice(bytemuck::cast_slice(run));
        if cfg!(target_endian = "big") {
            out[start..]
                .chunks_exact_mut(std::mem::size_of::<T>())
                .for_each(<[u8]>::reverse);
        }
    });
}

/// Copies `view` into `out` (exactly its size) run by run.
fn write_view<T: NoUninit>(view: ArrayViewD<'_, T>, out: &mut [u8]) {
    let mut pos = 0;
    for_each_run(view, &mut |run: &[T]| {
        let bytes: &[u8] = bytemuck::cast_slice(run);
        let dst = &mut out[pos..pos + bytes.len()];
        dst.copy_from_slice(bytes);
        if cfg!(target_endian = "big") {
            dst.chunks_exact_mut(std::mem::size_of::<T>())
                .for_each(<[u8]>::reverse);
        }
        pos += bytes.len();
    });
}

/// The values of a little-endian buffer whose length the caller checked.
/// `n` zeroed values in memory the allocator had free (`malloc` and a
/// memset), not fresh pages (`calloc`, what `vec![0; n]` asks for): jemalloc
/// serves large zeroed allocations from pages it has returned to the OS, and
/// faulting those in again costs more than the copy (about 1 s per GB on
/// this kind of VM).
pub fn reusable_zeroed<T: Pod>(n: usize) -> Vec<T> {
    let mut values = Vec::with_capacity(n);
    values.resize(n, T::zeroed());
    values
}

fn decode<T: Pod>(shape: IxDyn, bytes: &[u8]) -> ArrayD<T> {
    // one pass when the bytes are aligned for `T` (decoded buffers are):
    // no zeroing before the copy
    let mut values: Vec<T> = if let Ok(typed) = bytemuck::try_cast_slice::<u8, T>(bytes) {
        let mut v = Vec::with_capacity(typed.len());
        v.extend_from_slice(typed);
        v
    } else {
        let mut v = reusable_zeroed(bytes.len() / std::mem::size_of::<T>());
        bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(bytes);
        v
    };
    if cfg!(target_endian = "big") {
        bytemuck::cast_slice_mut::<T, u8>(&mut values)
            .chunks_exact_mut(std::mem::size_of::<T>())
            .for_each(<[u8]>::reverse);
    }
    ArrayD::from_shape_vec(shape, values).expect("the caller checked the length")
}
