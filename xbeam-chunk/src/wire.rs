//! The serde form of arrays and attributes, for shipping chunks between
//! processes.
//!
//! An array is `(dtype, shape, payload)` where the payload of numeric and
//! datetime arrays is its buffer as raw little-endian bytes in row-major
//! order ([`codec`]: borrowed when contiguous, else copied row by row);
//! strings are a list.
//! Attributes are JSON values, which non-self-describing formats such as
//! bincode cannot carry as such, so they travel as one JSON string.

use std::borrow::Cow;

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{codec, Array, Attrs, DType};

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

impl Serialize for Array {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let shape = self.shape().iter().map(|&n| n as u64).collect();
        let payload = match self {
            Array::String(a) => PayloadRef::Strings(a.iter().map(String::as_str).collect()),
            other => PayloadRef::Bytes(codec::to_le_bytes(other).map_err(S::Error::custom)?),
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
        codec::from_le_bytes(dtype, &shape, &bytes).map_err(D::Error::custom)
    }
}

/// Serde for [`Attrs`] as one JSON string (see the module docs); works for
/// `Attrs` and for the shared `Arc<Attrs>` that variables and datasets hold.
pub(crate) mod attrs_json {
    use super::{Attrs, Deserialize, Deserializer, Serializer};
    use serde::de::Error as _;
    use serde::ser::Error as _;

    pub(crate) fn serialize<A, S>(attrs: &A, s: S) -> Result<S::Ok, S::Error>
    where
        A: std::borrow::Borrow<Attrs>,
        S: Serializer,
    {
        let attrs: &Attrs = attrs.borrow();
        if attrs.is_empty() {
            return s.serialize_str("");
        }
        s.serialize_str(&serde_json::to_string(attrs).map_err(S::Error::custom)?)
    }

    pub(crate) fn deserialize<'de, A, D>(d: D) -> Result<A, D::Error>
    where
        A: From<Attrs>,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(A::from(Attrs::new()));
        }
        serde_json::from_str::<Attrs>(&text)
            .map(A::from)
            .map_err(D::Error::custom)
    }
}

/// Deserializes [`attrs_json`] text into the shared `Arc<Attrs>` of variables
/// and datasets, reusing the `Arc` of a recently seen identical JSON text
/// (the chunks of one dataset all carry the same attributes and encodings,
/// and a spilled group reads back thousands of them): a string comparison
/// instead of parsing and allocating a map per chunk.
pub(crate) mod shared_attrs_json {
    use std::cell::RefCell;
    use std::sync::Arc;

    use super::{Attrs, Deserialize, Deserializer};
    use serde::de::Error as _;

    /// How many distinct attribute texts each thread remembers.
    const REMEMBERED: usize = 32;

    thread_local! {
        static RECENT: RefCell<Vec<(String, Arc<Attrs>)>> = const { RefCell::new(Vec::new()) };
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<Attrs>, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(Arc::default());
        }
        let known = RECENT.with(|r| {
            r.borrow()
                .iter()
                .find(|(t, _)| *t == text)
                .map(|(_, a)| a.clone())
        });
        if let Some(attrs) = known {
            return Ok(attrs);
        }
        let attrs: Arc<Attrs> = Arc::new(serde_json::from_str(&text).map_err(D::Error::custom)?);
        RECENT.with(|r| {
            let mut r = r.borrow_mut();
            if r.len() == REMEMBERED {
                r.remove(0);
            }
            r.push((text, attrs.clone()));
        });
        Ok(attrs)
    }
}
