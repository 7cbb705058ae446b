//! Chunk-grid arithmetic: chunk specifications, offsets, slices and the keys
//! of every chunk in a grid.

use std::ops::Range;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::repr;
use crate::{Key, KeyError, Offsets};

/// The most chunks one dimension may have (2^32): far beyond any real grid,
/// and a guard against a corrupt size asking for an impossible allocation.
pub const MAX_CHUNKS_PER_DIM: u64 = 1 << 32;

/// How one dimension is chunked, as a user writes it.
///
/// ```
/// use xbeam_key::ChunkSpec;
/// assert_eq!(ChunkSpec::Size(3).normalize("x", 10).unwrap(), vec![3, 3, 3, 1]);
/// assert_eq!(ChunkSpec::Full.normalize("x", 10).unwrap(), vec![10]);
/// assert_eq!(ChunkSpec::Sizes(vec![365, 366]).normalize("time", 731).unwrap(), vec![365, 366]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChunkSpec {
    /// The whole dimension in one chunk (xarray-beam's `-1`).
    Full,
    /// Chunks of this many elements; the last may be smaller.
    Size(u64),
    /// Explicit, possibly irregular sizes (e.g. one chunk per calendar year).
    Sizes(Vec<u64>),
}

impl From<u64> for ChunkSpec {
    fn from(n: u64) -> ChunkSpec {
        ChunkSpec::Size(n)
    }
}

impl From<Vec<u64>> for ChunkSpec {
    fn from(v: Vec<u64>) -> ChunkSpec {
        ChunkSpec::Sizes(v)
    }
}

impl From<i64> for ChunkSpec {
    /// `-1` (any negative number) is the whole dimension, as in xarray-beam.
    fn from(n: i64) -> ChunkSpec {
        u64::try_from(n).map_or(ChunkSpec::Full, ChunkSpec::Size)
    }
}

impl From<i32> for ChunkSpec {
    /// `-1` (any negative number) is the whole dimension, as in xarray-beam.
    fn from(n: i32) -> ChunkSpec {
        ChunkSpec::from(i64::from(n))
    }
}

impl ChunkSpec {
    /// The chunk sizes along a dimension of `size` elements.
    ///
    /// `Size(c)` gives `size / c` chunks of `c` and a smaller last one
    /// (`c > size` gives one chunk); explicit sizes must add up to `size`.
    pub fn normalize(&self, dim: &str, size: u64) -> Result<Vec<u64>, KeyError> {
        match self {
            ChunkSpec::Full => Ok(vec![size]),
            ChunkSpec::Size(0) if size > 0 => Err(KeyError::ZeroChunk {
                dim: dim.to_owned(),
            }),
            ChunkSpec::Size(0) => Ok(vec![0]),
            ChunkSpec::Size(c) => {
                if size / c >= MAX_CHUNKS_PER_DIM {
                    return Err(KeyError::TooManyChunks {
                        dim: repr::quote(dim),
                        size,
                        chunk: *c,
                        limit: MAX_CHUNKS_PER_DIM,
                    });
                }
                let mut out = vec![*c; (size / c) as usize];
                if size % c != 0 {
                    out.push(size % c);
                }
                Ok(out)
            }
            ChunkSpec::Sizes(sizes) => {
                let total: u64 = sizes.iter().sum();
                if total != size {
                    return Err(KeyError::ChunkSumMismatch {
                        dim: dim.to_owned(),
                        total,
                        size,
                    });
                }
                if size > 0 && sizes.contains(&0) {
                    return Err(KeyError::ZeroChunk {
                        dim: dim.to_owned(),
                    });
                }
                Ok(sizes.clone())
            }
        }
    }

    /// The largest chunk boundary at or before `offset`: where the chunk
    /// holding `offset` starts (how `ConsolidateChunks` re-keys).
    ///
    /// ```
    /// use xbeam_key::ChunkSpec;
    /// assert_eq!(ChunkSpec::Size(10).round_down(25), 20);
    /// assert_eq!(ChunkSpec::Full.round_down(25), 0);
    /// assert_eq!(ChunkSpec::Sizes(vec![365, 366, 365]).round_down(700), 365);
    /// ```
    pub fn round_down(&self, offset: u64) -> u64 {
        match self {
            ChunkSpec::Full | ChunkSpec::Size(0) => 0,
            ChunkSpec::Size(c) => offset / c * c,
            ChunkSpec::Sizes(sizes) => chunk_offsets(sizes)
                .into_iter()
                .take_while(|&b| b <= offset)
                .last()
                .unwrap_or(0),
        }
    }

    /// The ranges `[start, stop)` that cut `start..stop` at this spec's chunk
    /// boundaries, measured in absolute offsets (xarray-beam's
    /// `_split_chunk_bounds`, extended to irregular sizes).
    ///
    /// ```
    /// use xbeam_key::ChunkSpec;
    /// assert_eq!(ChunkSpec::Size(3).split_bounds(0, 10), vec![(0, 3), (3, 6), (6, 9), (9, 10)]);
    /// assert_eq!(ChunkSpec::Size(3).split_bounds(5, 10), vec![(5, 6), (6, 9), (9, 10)]);
    /// assert_eq!(ChunkSpec::Size(12).split_bounds(10, 20), vec![(10, 12), (12, 20)]);
    /// assert_eq!(ChunkSpec::Sizes(vec![2, 5, 3]).split_bounds(1, 9), vec![(1, 2), (2, 7), (7, 9)]);
    /// ```
    pub fn split_bounds(&self, start: u64, stop: u64) -> Vec<(u64, u64)> {
        if stop <= start {
            return vec![(start, stop)];
        }
        let mut cuts: Vec<u64> = match self {
            ChunkSpec::Full | ChunkSpec::Size(0) => Vec::new(),
            ChunkSpec::Size(c) => (start / c + 1..=(stop - 1) / c).map(|i| i * c).collect(),
            ChunkSpec::Sizes(sizes) => chunk_offsets(sizes)
                .into_iter()
                .filter(|&b| b > start && b < stop)
                .collect(),
        };
        cuts.insert(0, start);
        cuts.push(stop);
        cuts.windows(2).map(|w| (w[0], w[1])).collect()
    }
}

/// The offset of each chunk: the exclusive cumulative sum of `sizes`.
///
/// ```
/// assert_eq!(xbeam_key::chunk_offsets(&[3, 3, 1]), vec![0, 3, 6]);
/// ```
pub fn chunk_offsets(sizes: &[u64]) -> Vec<u64> {
    sizes
        .iter()
        .scan(0u64, |acc, &s| {
            let here = *acc;
            *acc += s;
            Some(here)
        })
        .collect()
}

/// Row-major strides of `shape` in elements: how far one step along each
/// axis moves in the flattened array.
///
/// ```
/// assert_eq!(xbeam_key::row_major_strides(&[2, 3, 4]), vec![12, 4, 1]);
/// ```
pub fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    (0..shape.len())
        .map(|a| shape[a + 1..].iter().product())
        .collect()
}

/// The per-axis indices of position `flat` in a row-major array of `shape`
/// (the last axis varies fastest).
///
/// ```
/// assert_eq!(xbeam_key::unravel(4, &[2, 3]), vec![1, 1]);
/// assert_eq!(xbeam_key::unravel(0, &[]), Vec::<usize>::new());
/// ```
pub fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (axis, &n) in shape.iter().enumerate().rev() {
        if n > 0 {
            index[axis] = flat % n;
            flat /= n;
        }
    }
    index
}

/// The index of the chunk starting at `offset`, or `None` when `offset` is not
/// a chunk boundary.
///
/// ```
/// assert_eq!(xbeam_key::offset_to_index(&[0, 3, 6], 6), Some(2));
/// assert_eq!(xbeam_key::offset_to_index(&[0, 3, 6], 4), None);
/// ```
pub fn offset_to_index(offsets: &[u64], offset: u64) -> Option<usize> {
    offsets.binary_search(&offset).ok()
}

/// Slices into a chunk for every dimension in `sizes`: `offset - base` to
/// `offset - base + size` (a dimension without an offset starts at 0). Every
/// offset must have a size.
///
/// ```
/// use indexmap::IndexMap;
/// use xbeam_key::{offsets_to_slices, Key};
///
/// let key = Key::from_offsets([("x", 0), ("y", 10)]);
/// let sizes: IndexMap<String, u64> =
///     [("x".to_string(), 5), ("y".to_string(), 10), ("extra_key".to_string(), 100)].into();
/// let s = offsets_to_slices(key.offsets(), &sizes, None).unwrap();
/// assert_eq!((s["x"].clone(), s["y"].clone(), s["extra_key"].clone()), (0..5, 10..20, 0..100));
/// ```
pub fn offsets_to_slices(
    offsets: &Offsets,
    sizes: &IndexMap<String, u64>,
    base: Option<&Offsets>,
) -> Result<IndexMap<String, Range<u64>>, KeyError> {
    if offsets.keys().any(|k| !sizes.contains_key(k)) {
        return Err(KeyError::OffsetsWithoutSizes {
            offsets: repr::dict(offsets.iter()),
            sizes: repr::dict(sizes.iter()),
        });
    }
    sizes
        .iter()
        .map(|(dim, &size)| {
            let offset = offsets.get(dim).copied().unwrap_or(0);
            let b = base.and_then(|b| b.get(dim)).copied().unwrap_or(0);
            let start = offset
                .checked_sub(b)
                .ok_or_else(|| KeyError::OffsetBeforeBase {
                    dim: repr::quote(dim),
                    offset,
                    base: b,
                })?;
            Ok((dim.clone(), start..start + size))
        })
        .collect()
}

/// The chunk sizes of every dimension of a (virtual) dataset, in dimension
/// order: which chunks exist and where they start.
///
/// ```
/// use xbeam_key::{ChunkGrid, ChunkSpec, Key};
///
/// let grid = ChunkGrid::new([("x", 5), ("y", 4)], [("x", ChunkSpec::Size(3))]).unwrap();
/// let keys: Vec<String> = grid.keys().map(|k| k.to_string()).collect();
/// assert_eq!(keys, ["Key(offsets={'x': 0, 'y': 0})", "Key(offsets={'x': 3, 'y': 0})"]);
/// assert_eq!(grid.chunk_size("x", 3).unwrap(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkGrid {
    chunks: IndexMap<String, Vec<u64>>,
}

impl ChunkGrid {
    /// The grid of a dataset with the given dimension sizes chunked by
    /// `chunks`; dimensions without a spec are one chunk. A spec for a
    /// dimension the dataset lacks is an error.
    pub fn new<D: Into<String>, C: AsRef<str>>(
        sizes: impl IntoIterator<Item = (D, u64)>,
        chunks: impl IntoIterator<Item = (C, ChunkSpec)>,
    ) -> Result<ChunkGrid, KeyError> {
        let sizes: Vec<(String, u64)> = sizes.into_iter().map(|(d, s)| (d.into(), s)).collect();
        let mut specs: IndexMap<String, ChunkSpec> = IndexMap::new();
        for (dim, spec) in chunks {
            let dim = dim.as_ref();
            if !sizes.iter().any(|(d, _)| d == dim) {
                return Err(KeyError::UnknownChunkDim {
                    dim: repr::quote(dim),
                });
            }
            specs.insert(dim.to_owned(), spec);
        }
        let chunks = sizes
            .into_iter()
            .map(|(dim, size)| {
                let sizes = specs
                    .get(&dim)
                    .unwrap_or(&ChunkSpec::Full)
                    .normalize(&dim, size)?;
                Ok((dim, sizes))
            })
            .collect::<Result<_, KeyError>>()?;
        Ok(ChunkGrid { chunks })
    }

    /// A grid from explicit chunk sizes per dimension.
    pub fn from_chunk_sizes<D: Into<String>>(
        chunks: impl IntoIterator<Item = (D, Vec<u64>)>,
    ) -> ChunkGrid {
        ChunkGrid {
            chunks: chunks.into_iter().map(|(d, c)| (d.into(), c)).collect(),
        }
    }

    /// The dimensions, in order.
    pub fn dims(&self) -> impl Iterator<Item = &str> {
        self.chunks.keys().map(String::as_str)
    }

    /// The chunk sizes along every dimension.
    pub fn chunks(&self) -> &IndexMap<String, Vec<u64>> {
        &self.chunks
    }

    /// The chunk sizes along `dim`.
    pub fn chunk_sizes(&self, dim: &str) -> Result<&[u64], KeyError> {
        self.chunks
            .get(dim)
            .map(Vec::as_slice)
            .ok_or_else(|| self.unknown(dim))
    }

    /// The size of `dim` (the sum of its chunks).
    pub fn dim_size(&self, dim: &str) -> Result<u64, KeyError> {
        Ok(self.chunk_sizes(dim)?.iter().sum())
    }

    /// The offsets at which chunks start along `dim`.
    pub fn offsets(&self, dim: &str) -> Result<Vec<u64>, KeyError> {
        Ok(chunk_offsets(self.chunk_sizes(dim)?))
    }

    /// The index of the chunk starting at `offset` along `dim`; an offset
    /// between boundaries is an error that lists the boundaries.
    pub fn chunk_index(&self, dim: &str, offset: u64) -> Result<usize, KeyError> {
        let offsets = self.offsets(dim)?;
        offset_to_index(&offsets, offset).ok_or_else(|| KeyError::OffsetNotOnGrid {
            dim: repr::quote(dim),
            offset,
            expected: abbreviate(&offsets),
        })
    }

    /// The size of the chunk starting at `offset` along `dim`.
    pub fn chunk_size(&self, dim: &str, offset: u64) -> Result<u64, KeyError> {
        let i = self.chunk_index(dim, offset)?;
        Ok(self.chunk_sizes(dim)?[i])
    }

    /// How many chunks the grid has: the product of chunk counts.
    pub fn task_count(&self) -> u64 {
        self.chunks.values().map(|c| c.len() as u64).product()
    }

    /// How many chunks there are when each variable is split out and keyed
    /// only over its own dimensions (xarray-beam's `split_vars=True`).
    pub fn task_count_split<V, S>(&self, vars: &[(V, Vec<S>)]) -> Result<u64, KeyError>
    where
        S: AsRef<str>,
    {
        vars.iter()
            .map(|(_, dims)| {
                dims.iter()
                    .map(|d| Ok(self.chunk_sizes(d.as_ref())?.len() as u64))
                    .product::<Result<u64, KeyError>>()
            })
            .sum()
    }

    /// Every key of the grid in C order (last dimension fastest), with an
    /// offset for every dimension and `vars = None`.
    pub fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        let dims: Vec<&str> = self.dims().collect();
        self.keys_over(dims, None)
    }

    /// The keys of each variable split out: for each `(name, dims)`, the keys
    /// over that variable's dimensions only, with `vars = {name}`.
    pub fn keys_for_vars<'a, V, S>(
        &'a self,
        vars: &'a [(V, Vec<S>)],
    ) -> Result<impl Iterator<Item = Key> + 'a, KeyError>
    where
        V: AsRef<str>,
        S: AsRef<str>,
    {
        for (_, dims) in vars {
            for d in dims {
                self.chunk_sizes(d.as_ref())?;
            }
        }
        Ok(vars.iter().flat_map(move |(name, dims)| {
            let dims: Vec<&str> = dims.iter().map(AsRef::as_ref).collect();
            self.keys_over(dims, Some(name.as_ref()))
        }))
    }

    fn keys_over<'a>(
        &'a self,
        dims: Vec<&'a str>,
        var: Option<&'a str>,
    ) -> impl Iterator<Item = Key> + 'a {
        let offsets: Vec<Vec<u64>> = dims
            .iter()
            .map(|d| chunk_offsets(&self.chunks[*d]))
            .collect();
        let lens: Vec<usize> = offsets.iter().map(Vec::len).collect();
        (0..lens.iter().product()).map(move |flat| {
            let idx = unravel(flat, &lens);
            let key_offsets = dims
                .iter()
                .enumerate()
                .map(|(j, d)| (*d, offsets[j][idx[j]]));
            Key::from_parts(key_offsets, var.map(|v| [v]))
        })
    }

    fn unknown(&self, dim: &str) -> KeyError {
        KeyError::UnknownGridDim {
            dim: repr::quote(dim),
            dims: repr::tuple(self.dims()),
        }
    }
}

fn abbreviate(offsets: &[u64]) -> String {
    const SHOW: usize = 8;
    let shown: Vec<String> = offsets.iter().take(SHOW).map(u64::to_string).collect();
    if offsets.len() > SHOW {
        format!("[{}, ... ({} in all)]", shown.join(", "), offsets.len())
    } else {
        format!("[{}]", shown.join(", "))
    }
}
