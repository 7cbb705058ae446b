//! [`Erased`]: one element of any type, moved between operators without
//! copying inside a process and serialized (bincode) only on the wire
//! between processes.
//!
//! Inside a process an element is never serialized: when a stream feeds
//! several consumers (or a probe), timely hands each a clone of the batch,
//! so an element's `Arc` may be shared when a consumer takes it; it is then
//! cloned, which is cheap for chunks (array buffers are reference counted).

use std::any::Any;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Data;

type SerFn = fn(&(dyn Any + Send + Sync)) -> Vec<u8>;

/// An element of a `PCollection`, type-erased so every timely stream has
/// one type.
#[derive(Clone)]
pub(crate) enum Erased {
    /// A value in this process.
    Local(Arc<dyn Any + Send + Sync>, SerFn),
    /// Bytes from another process (bincode), decoded by the consumer.
    Wire(Arc<Vec<u8>>),
}

fn ser<T: Data>(value: &(dyn Any + Send + Sync)) -> Vec<u8> {
    let value = value.downcast_ref::<T>().expect("an Erased keeps its type");
    bincode::serialize(value).expect("bincode serializes every serde value")
}

impl Erased {
    pub(crate) fn new<T: Data>(value: T) -> Erased {
        Erased::Local(Arc::new(value), ser::<T>)
    }

    /// The value: moved out when this is its only holder, else cloned.
    pub(crate) fn take<T: Data>(self) -> Result<T, String> {
        match self {
            Erased::Local(any, _) => match any.downcast::<T>() {
                Ok(arc) => Ok(Arc::try_unwrap(arc).unwrap_or_else(|shared| (*shared).clone())),
                Err(_) => Err(format!(
                    "internal error: element is not a {}",
                    std::any::type_name::<T>()
                )),
            },
            Erased::Wire(bytes) => bincode::deserialize(&bytes).map_err(|e| {
                format!(
                    "cannot decode a {} received from another process: {e}",
                    std::any::type_name::<T>()
                )
            }),
        }
    }

    /// Applies `f` to a reference to the value.
    pub(crate) fn with_ref<T: Data, R>(&self, f: impl FnOnce(&T) -> R) -> Result<R, String> {
        match self {
            Erased::Local(any, _) => any.downcast_ref::<T>().map(f).ok_or_else(|| {
                format!(
                    "internal error: element is not a {}",
                    std::any::type_name::<T>()
                )
            }),
            Erased::Wire(bytes) => bincode::deserialize::<T>(bytes)
                .map(|v| f(&v))
                .map_err(|e| e.to_string()),
        }
    }
}

impl Serialize for Erased {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Erased::Local(any, f) => s.serialize_bytes(&f(&**any)),
            Erased::Wire(bytes) => s.serialize_bytes(bytes),
        }
    }
}

impl<'de> Deserialize<'de> for Erased {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Erased, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(d)?;
        Ok(Erased::Wire(Arc::new(bytes.into_vec())))
    }
}

/// A stable 64-bit hash of bytes (FNV-1a), the same in every process.
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // spread the low bits, which pick the worker
    h ^ (h >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_values_move_and_wire_values_decode() {
        let e = Erased::new(vec![1u32, 2, 3]);
        let copy = e.clone();
        assert_eq!(copy.with_ref(|v: &Vec<u32>| v.len()).unwrap(), 3);
        assert_eq!(e.take::<Vec<u32>>().unwrap(), vec![1, 2, 3]);
        // still shared: cloned
        let wire: Erased = bincode::deserialize(&bincode::serialize(&copy).unwrap()).unwrap();
        assert!(matches!(wire, Erased::Wire(_)));
        assert_eq!(wire.take::<Vec<u32>>().unwrap(), vec![1, 2, 3]);
        assert!(copy.take::<String>().unwrap_err().contains("not a"));
    }

    /// Counts how often it is serialized.
    #[derive(Clone, serde::Deserialize)]
    struct Counted(u64);

    static SERIALIZED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    impl Serialize for Counted {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            SERIALIZED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            s.serialize_u64(self.0)
        }
    }

    impl xbeam_size::ByteSize for Counted {
        fn byte_size(&self) -> usize {
            8
        }
    }

    #[test]
    fn a_shared_element_is_cloned_not_serialized() {
        let e = Erased::new(Counted(7));
        let other = e.clone();
        assert_eq!(e.take::<Counted>().unwrap().0, 7);
        assert_eq!(other.take::<Counted>().unwrap().0, 7);
        assert_eq!(SERIALIZED.load(std::sync::atomic::Ordering::SeqCst), 0);
    }
}
