//! Checking that every chunk a store's metadata promises is there and, for
//! a store with a content manifest, holds what was written: [`verify`].

use std::path::Path;

use rayon::prelude::*;
use serde_json::Value;

use super::manifest::{self, ManifestStatus};
use super::meta::{self, ArrayInfo, ZarrFormat};
use crate::IoError;

/// What is wrong with one chunk ([`ChunkProblem`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No file, and the store has no manifest to tell why: never written,
    /// or (for stores written by xarray with `write_empty_chunks=False`)
    /// all fill value.
    Missing,
    /// No file, and the manifest has no record of it: never written.
    NeverWritten,
    /// No file, though the manifest records it as written: removed since.
    Removed,
    /// The file's bytes are not those recorded when it was written.
    Corrupt {
        /// The length recorded.
        expected_len: u64,
        /// The file's length.
        found_len: u64,
    },
}

/// A chunk that [`verify`] found missing or damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkProblem {
    /// The array (variable) name.
    pub array: String,
    /// The chunk's grid indices (shard indices for sharded arrays).
    pub indices: Vec<u64>,
    /// The chunk's store key within the array.
    pub key: String,
    /// What is wrong.
    pub problem: Problem,
}

impl std::fmt::Display for ChunkProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} (chunk {:?}): ",
            self.array, self.key, self.indices
        )?;
        match &self.problem {
            Problem::Missing => write!(f, "missing (never written, or all fill value: the store has no xbeam manifest to tell)"),
            Problem::NeverWritten => write!(f, "never written"),
            Problem::Removed => write!(f, "missing: written, then removed"),
            Problem::Corrupt { expected_len, found_len } if expected_len == found_len => {
                write!(f, "corrupt: {found_len} bytes as written, but not the bytes written (checksum differs)")
            }
            Problem::Corrupt { expected_len, found_len } => {
                write!(f, "corrupt: expected {expected_len} bytes as written, found {found_len}")
            }
        }
    }
}

/// The most chunk problems [`verify`] lists one by one; beyond, they are
/// counted per array ([`Verified::per_array`]).
pub const LISTED_PROBLEMS: usize = 10_000;

/// The most chunks (shards) one array may have for [`verify`] to check it:
/// a store whose metadata claim more (a hostile or damaged shape) is an
/// error, not an enumeration that would never end.
pub const MAX_CHUNKS: u64 = 1 << 30;

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Chunks missing or damaged, by array and indices: the first
    /// [`LISTED_PROBLEMS`] of each array.
    pub problems: Vec<ChunkProblem>,
    /// How many chunks are missing or damaged per array (all of them,
    /// listed or not); arrays without problems are absent.
    pub per_array: std::collections::BTreeMap<String, u64>,
    /// What the store's content manifest says, if it has one.
    pub manifest: Option<ManifestStatus>,
    /// Chunks whose file the manifest does not record (written by another
    /// program, or by a process killed just after writing it); not checked.
    pub unrecorded: u64,
    /// Chunks checked.
    pub checked: u64,
}

impl Verified {
    /// Every chunk is there, and, with a manifest, as written, by a job
    /// that finished.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty() && self.manifest.as_ref().is_none_or(|m| m.complete)
    }

    /// Chunks missing or damaged in all, listed or not.
    pub fn problem_count(&self) -> u64 {
        self.per_array.values().sum()
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

/// The chunks (shards) of `info` per dimension, and in all (`None` beyond
/// [`MAX_CHUNKS`], overflow included).
fn grid_counts(info: &ArrayInfo) -> (Vec<u64>, Option<u64>) {
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
        .filter(|&n| n <= MAX_CHUNKS);
    (counts, total)
}

/// The key of the first chunk (shard) of `info` whose file is not in the
/// store at `root`: a coordinate read whole would get fill values there,
/// which for coordinates is never what was written.
pub(super) fn first_missing(root: &Path, info: &ArrayInfo) -> Option<String> {
    let (counts, total) = grid_counts(info);
    let total = total?;
    (0..total).find_map(|flat| {
        let key = chunk_key(info, &indices_of(flat, &counts));
        let file = root.join(&info.name).join(&key);
        // present as anything (a FIFO, a directory) is left to the read,
        // whose error says what it is
        (!file.exists() && !file.is_symlink()).then(|| format!("{}/{key}", info.name))
    })
}

/// The grid indices of the chunk numbered `flat` in C order of a grid of
/// `counts` chunks per dimension.
fn indices_of(flat: u64, counts: &[u64]) -> Vec<u64> {
    let mut rem = flat;
    let mut idx = vec![0u64; counts.len()];
    for (i, &c) in counts.iter().enumerate().rev() {
        idx[i] = rem % c;
        rem /= c;
    }
    idx
}

/// What is wrong with the chunk at `idx` of `info`, if anything;
/// `Err(())` for a chunk file the manifest does not record.
fn check_chunk(
    root: &Path,
    info: &ArrayInfo,
    recorded: Option<&manifest::Index>,
    idx: &[u64],
) -> Option<Result<ChunkProblem, ()>> {
    let key = chunk_key(info, idx);
    let file = root.join(&info.name).join(&key);
    let exists = file.is_file();
    let problem = |problem| {
        Some(Ok(ChunkProblem {
            array: info.name.clone(),
            indices: idx.to_vec(),
            key: key.clone(),
            problem,
        }))
    };
    let Some(recorded) = recorded else {
        return if exists {
            None
        } else {
            problem(Problem::Missing)
        };
    };
    match (recorded.get(&format!("{}/{key}", info.name)), exists) {
        (None, false) => problem(Problem::NeverWritten),
        (Some(_), false) => problem(Problem::Removed),
        (None, true) => Some(Err(())),
        (Some(want), true) => {
            if want.matches_file(&file) {
                None
            } else {
                let found_len = std::fs::metadata(&file).map_or(0, |m| m.len());
                problem(Problem::Corrupt {
                    expected_len: want.len,
                    found_len,
                })
            }
        }
    }
}

/// Checks every chunk of every array of the store at `path`: that its
/// file exists (a missing chunk otherwise reads back silently as fill
/// values) and, where the store has an xbeam content manifest, that it
/// holds the bytes recorded when it was written (length and CRC-32C), so
/// damage on disk is found and a chunk never written is told from one
/// removed later. xbeam always writes chunks that are all fill value, so
/// in its stores a missing chunk is never a fill-value one.
///
/// ```
/// use xbeam_chunk::{Array, Dataset, Template, Variable};
/// use xbeam_io::{setup_zarr, verify, Problem, SetupOptions};
/// use xbeam_key::Key;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("t.zarr");
/// let ds = Dataset::new()
///     .with_data_var("t", Variable::new(["x"], Array::from_1d(vec![1.0f32, 2.0, 3.0, 4.0]))?)?;
/// let options = SetupOptions::default().chunks([("x", 2)]);
/// let sink = setup_zarr(&Template::from(&ds), &path, &options)?;
/// sink.write_chunk(&Key::new().with_offset("x", 0), &ds.isel([("x", 0..2)])?)?;
/// xbeam_io::sync_store(&path)?;
/// let found = verify(&path)?;
/// assert_eq!(found.problems.len(), 1);
/// assert_eq!(found.problems[0].problem, Problem::NeverWritten);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify(path: impl AsRef<Path>) -> Result<Verified, IoError> {
    let root = path.as_ref();
    let group = meta::read_group(root)?;
    let (manifest, recorded) = manifest::recorded(root)?.unzip();
    let mut problems = Vec::new();
    let mut per_array = std::collections::BTreeMap::new();
    let mut unrecorded = 0u64;
    let mut checked = 0u64;
    for info in group.arrays.values() {
        let (counts, total) = grid_counts(info);
        let total = total
            .ok_or_else(|| {
                IoError::Invalid(format!(
                    "{}: array {:?} of shape {:?} in chunks of {:?} has more chunks than verify checks (at most {MAX_CHUNKS})",
                    root.display(),
                    info.name,
                    info.shape,
                    info.shards.as_ref().unwrap_or(&info.chunks)
                ))
            })?;
        let check =
            |flat: u64| check_chunk(root, info, recorded.as_ref(), &indices_of(flat, &counts));
        // in blocks, so that only the first LISTED_PROBLEMS are kept and
        // chunk indices are made as they are checked, never all at once
        let mut listed = 0usize;
        let mut bad = 0u64;
        let mut start = 0u64;
        while start < total {
            let end = total.min(start + (1 << 16));
            let found: Vec<Result<ChunkProblem, ()>> =
                (start..end).into_par_iter().filter_map(check).collect();
            for f in found {
                match f {
                    Ok(p) => {
                        bad += 1;
                        if listed < LISTED_PROBLEMS {
                            listed += 1;
                            problems.push(p);
                        }
                    }
                    Err(()) => unrecorded += 1,
                }
            }
            start = end;
        }
        checked += total;
        if bad > 0 {
            per_array.insert(info.name.clone(), bad);
        }
    }
    problems.sort_by(|a, b| (&a.array, &a.indices).cmp(&(&b.array, &b.indices)));
    Ok(Verified {
        problems,
        per_array,
        manifest,
        unrecorded,
        checked,
    })
}
