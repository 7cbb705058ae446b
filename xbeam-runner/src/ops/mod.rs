//! The operators every transform is built from, one file per kind.

pub(crate) mod combine;
pub(crate) mod elementwise;
pub(crate) mod group;
pub(crate) mod route;
mod spill;

use crate::erased::{stable_hash, Erased};
use crate::pipeline::Data;

/// A key's bytes: groups compare keys by them, and their hash picks the
/// worker, the same in every process.
pub(crate) fn key_bytes<K: Data>(k: &K) -> Vec<u8> {
    bincode::serialize(k).expect("bincode serializes every serde value")
}

pub(crate) fn by_key<K: Data, V: Data>() -> impl FnMut(&Erased) -> u64 + 'static {
    |e: &Erased| {
        e.with_ref(|kv: &(K, V)| stable_hash(&key_bytes(&kv.0)))
            .unwrap_or(0)
    }
}
