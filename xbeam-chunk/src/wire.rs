//! The serde form of arrays and attributes, for shipping chunks between
//! processes.
//!
//! An array is `(dtype, shape, payload)` where the payload of numeric and
//! datetime arrays is its buffer as raw little-endian bytes in row-major
//! order, written in one piece (not element by element); strings are a list.
//! Attributes are JSON values, which non-self-describing formats such as
//! bincode cannot carry as such, so they travel as one JSON string.

use std::borrow::Cow;

use ndarray::{ArrayD, IxDyn};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::array::ArrayData;
use crate::{Array, Attrs, DType, Element};

#[derive(Serialize)]
enum PayloadRef<'a> {
    Bytes(#[serde(with = "serde_bytes")] Cow<'a, [u8]>),
    Strings(Vec<&'a str>),
}

#[derive(Deserialize)]
enum Payload {
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    Strings(Vec<String>),
}

#[derive(Serialize)]
struct ArrayRef<'a> {
    dtype: DType,
    shape: Vec<u64>,
    payload: PayloadRef<'a>,
}

#[derive(Deserialize)]
struct ArrayOwned {
    dtype: DType,
    shape: Vec<u64>,
    payload: Payload,
}

/// Element types whose buffers travel as raw bytes.
trait Pod: Element + bytemuck::Pod {}
impl<T: Element + bytemuck::Pod> Pod for T {}

fn le_bytes<T: bytemuck::Pod>(a: &ArrayData<T>) -> Cow<'_, [u8]> {
    let mut bytes: Cow<'_, [u8]> = match a.as_slice() {
        Some(s) => Cow::Borrowed(bytemuck::cast_slice(s)),
        None => Cow::Owned(bytemuck::cast_slice(&a.iter().copied().collect::<Vec<T>>()).to_vec()),
    };
    if cfg!(target_endian = "big") {
        let size = std::mem::size_of::<T>();
        bytes
            .to_mut()
            .chunks_exact_mut(size)
            .for_each(<[u8]>::reverse);
    }
    bytes
}

fn from_le_bytes<T: bytemuck::Pod>(shape: &[usize], bytes: &[u8]) -> Result<ArrayD<T>, String> {
    let size = std::mem::size_of::<T>();
    let n: usize = shape.iter().product();
    if bytes.len() != n * size {
        return Err(format!(
            "expected {} bytes for shape {shape:?}, found {}",
            n * size,
            bytes.len()
        ));
    }
    let mut owned;
    let bytes = if cfg!(target_endian = "big") {
        owned = bytes.to_vec();
        owned.chunks_exact_mut(size).for_each(<[u8]>::reverse);
        &owned[..]
    } else {
        bytes
    };
    let values: Vec<T> = bytemuck::pod_collect_to_vec(bytes);
    ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|e| e.to_string())
}

impl Serialize for Array {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let shape = self.shape().iter().map(|&n| n as u64).collect();
        let payload = match self {
            Array::String(a) => PayloadRef::Strings(a.iter().map(String::as_str).collect()),
            Array::Bool(a) => {
                PayloadRef::Bytes(Cow::Owned(a.iter().map(|&b| u8::from(b)).collect()))
            }
            Array::I8(a) => PayloadRef::Bytes(le_bytes(a)),
            Array::I16(a) => PayloadRef::Bytes(le_bytes(a)),
            Array::I32(a) => PayloadRef::Bytes(le_bytes(a)),
            Array::I64(a) | Array::DateTime(a, ..) | Array::TimeDelta(a, _) => {
                PayloadRef::Bytes(le_bytes(a))
            }
            Array::U8(a) => PayloadRef::Bytes(le_bytes(a)),
            Array::U16(a) => PayloadRef::Bytes(le_bytes(a)),
            Array::U32(a) => PayloadRef::Bytes(le_bytes(a)),
            Array::U64(a) => PayloadRef::Bytes(le_bytes(a)),
            Array::F32(a) => PayloadRef::Bytes(le_bytes(a)),
            Array::F64(a) => PayloadRef::Bytes(le_bytes(a)),
        };
        ArrayRef {
            dtype: self.dtype(),
            shape,
            payload,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Array {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Array, D::Error> {
        let ArrayOwned {
            dtype,
            shape,
            payload,
        } = ArrayOwned::deserialize(deserializer)?;
        let shape: Vec<usize> = shape
            .into_iter()
            .map(usize::try_from)
            .collect::<Result<_, _>>()
            .map_err(D::Error::custom)?;
        let bytes = match payload {
            Payload::Strings(values) if dtype == DType::String => {
                return Array::from_vec(shape, values).map_err(D::Error::custom)
            }
            Payload::Bytes(bytes) if dtype != DType::String => bytes,
            _ => {
                return Err(D::Error::custom(format!(
                    "array payload does not match dtype {dtype}"
                )))
            }
        };
        fn pod<T: Pod, E: serde::de::Error>(shape: &[usize], bytes: &[u8]) -> Result<ArrayD<T>, E> {
            from_le_bytes(shape, bytes).map_err(E::custom)
        }
        Ok(match dtype {
            DType::Bool => Array::from(pod::<u8, D::Error>(&shape, &bytes)?.mapv(|b| b != 0)),
            DType::I8 => Array::from(pod::<i8, D::Error>(&shape, &bytes)?),
            DType::I16 => Array::from(pod::<i16, D::Error>(&shape, &bytes)?),
            DType::I32 => Array::from(pod::<i32, D::Error>(&shape, &bytes)?),
            DType::I64 => Array::from(pod::<i64, D::Error>(&shape, &bytes)?),
            DType::U8 => Array::from(pod::<u8, D::Error>(&shape, &bytes)?),
            DType::U16 => Array::from(pod::<u16, D::Error>(&shape, &bytes)?),
            DType::U32 => Array::from(pod::<u32, D::Error>(&shape, &bytes)?),
            DType::U64 => Array::from(pod::<u64, D::Error>(&shape, &bytes)?),
            DType::F32 => Array::from(pod::<f32, D::Error>(&shape, &bytes)?),
            DType::F64 => Array::from(pod::<f64, D::Error>(&shape, &bytes)?),
            DType::DateTime(u, c) => Array::datetime(pod::<i64, D::Error>(&shape, &bytes)?, u, c),
            DType::TimeDelta(u) => Array::timedelta(pod::<i64, D::Error>(&shape, &bytes)?, u),
            DType::String => unreachable!("strings returned above"),
        })
    }
}

/// Serde for [`Attrs`] as one JSON string (see the module docs).
pub(crate) mod attrs_json {
    use super::{Attrs, Deserialize, Deserializer, Serializer};
    use serde::de::Error as _;
    use serde::ser::Error as _;

    pub(crate) fn serialize<S: Serializer>(attrs: &Attrs, s: S) -> Result<S::Ok, S::Error> {
        if attrs.is_empty() {
            return s.serialize_str("");
        }
        s.serialize_str(&serde_json::to_string(attrs).map_err(S::Error::custom)?)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Attrs, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(Attrs::new());
        }
        serde_json::from_str(&text).map_err(D::Error::custom)
    }
}
