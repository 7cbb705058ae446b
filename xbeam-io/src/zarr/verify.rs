//! Listing chunks that were never written: [`verify`].

use std::path::Path;

use rayon::prelude::*;
use serde_json::Value;

use super::meta::{self, ArrayInfo, ZarrFormat};
use crate::IoError;

/// A chunk that [`verify`] found missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingChunk {
    /// The array (variable) name.
    pub array: String,
    /// The chunk's grid indices (shard indices for sharded arrays).
    pub indices: Vec<u64>,
    /// The store key that does not exist.
    pub key: String,
}

impl std::fmt::Display for MissingChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} (chunk {:?})", self.array, self.key, self.indices)
    }
}

fn chunk_key(info: &ArrayInfo, indices: &[u64]) -> String {
    let joined = |sep: &str| {
        indices
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(sep)
    };
    match info.format {
        ZarrFormat::V2 => {
            if indices.is_empty() {
                return "0".into();
            }
            let sep = info
                .meta
                .get("dimension_separator")
                .and_then(Value::as_str)
                .unwrap_or(".");
            joined(sep)
        }
        ZarrFormat::V3 => {
            let cke = info.meta.get("chunk_key_encoding");
            let name = cke
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("default");
            let sep = cke
                .and_then(|c| c.get("configuration"))
                .and_then(|c| c.get("separator"))
                .and_then(Value::as_str);
            if name == "v2" {
                if indices.is_empty() {
                    "0".into()
                } else {
                    joined(sep.unwrap_or("."))
                }
            } else {
                let sep = sep.unwrap_or("/");
                if indices.is_empty() {
                    "c".into()
                } else {
                    format!("c{sep}{}", joined(sep))
                }
            }
        }
    }
}

/// Lists the chunks of every array that were never written. A missing
/// chunk otherwise reads back silently as fill values. (Stores written by
/// xarray with `write_empty_chunks=False` also omit chunks that are all
/// fill value; xbeam always writes them.)
pub fn verify(path: impl AsRef<Path>) -> Result<Vec<MissingChunk>, IoError> {
    let root = path.as_ref();
    let group = meta::read_group(root)?;
    let mut missing = Vec::new();
    for info in group.arrays.values() {
        let grid = info.shards.as_ref().unwrap_or(&info.chunks);
        let counts: Vec<u64> = info
            .shape
            .iter()
            .zip(grid)
            .map(|(&n, &c)| n.div_ceil(c.max(1)))
            .collect();
        let total = counts
            .iter()
            .try_fold(1u64, |a, &c| a.checked_mul(c))
            .ok_or_else(|| {
                IoError::Invalid(format!(
                    "{}: array {:?} of shape {:?} has more chunks than can be counted",
                    root.display(),
                    info.name,
                    info.shape
                ))
            })?;
        // chunk indices are made as they are checked, never all at once
        let mut found: Vec<MissingChunk> = (0..total)
            .into_par_iter()
            .filter_map(|flat| {
                let mut rem = flat;
                let mut idx = vec![0u64; counts.len()];
                for (i, &c) in counts.iter().enumerate().rev() {
                    idx[i] = rem % c;
                    rem /= c;
                }
                let key = chunk_key(info, &idx);
                let file = root.join(&info.name).join(&key);
                (!file.is_file()).then(|| MissingChunk {
                    array: info.name.clone(),
                    indices: idx,
                    key,
                })
            })
            .collect();
        missing.append(&mut found);
    }
    missing.sort_by(|a, b| (&a.array, &a.indices).cmp(&(&b.array, &b.indices)));
    Ok(missing)
}
