//! Growing chunks up to a memory budget (Rechunker's `consolidate_chunks`).

use std::fmt;

use crate::error::RechunkError;
use crate::io_ops::check_chunks;
use crate::pyrepr;

/// How far [`consolidate_chunks`] may grow the chunks of one axis
/// (an entry of Rechunker's `chunk_limits`).
///
/// ```
/// use xbeam_rechunk::ChunkLimit;
/// // Written as Python writes the tuple entries in messages.
/// assert_eq!(ChunkLimit::Keep.to_string(), "None");
/// assert_eq!(ChunkLimit::Whole.to_string(), "-1");
/// assert_eq!(ChunkLimit::At(4).to_string(), "4");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChunkLimit {
    /// The axis is not consolidated (Python's `None`).
    Keep,
    /// Up to the whole axis (Python's `-1`).
    Whole,
    /// Up to this many elements: at least the chunk itself; a limit beyond
    /// the axis means the whole axis.
    At(u64),
}

impl fmt::Display for ChunkLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkLimit::Keep => f.write_str("None"),
            ChunkLimit::Whole => f.write_str("-1"),
            ChunkLimit::At(n) => write!(f, "{n}"),
        }
    }
}

/// Bytes of one chunk: `itemsize` times the product of the chunk sizes
/// (saturating at `u128::MAX`).
///
/// ```
/// assert_eq!(xbeam_rechunk::chunk_mem(&[1, 5, 1800, 3600], 4), 129_600_000);
/// ```
pub fn chunk_mem(chunks: &[u64], itemsize: u64) -> u128 {
    chunks.iter().fold(u128::from(itemsize), |acc, &c| {
        acc.saturating_mul(u128::from(c))
    })
}

/// Grows `chunks` axis by axis, from the last axis to the first, as far as
/// `max_mem` bytes allow (Rechunker's `consolidate_chunks`).
///
/// Each axis first tries its upper bound (the whole axis or its limit); if
/// that chunk would not stay strictly below `max_mem`, it grows by the
/// largest whole multiple of the original chunk that the headroom left
/// before this axis allows. `chunk_limits = None` lets every axis grow to
/// the whole axis. Python computes the headroom as a float; here it is the
/// exact integer quotient, which differs only for budgets beyond 2^53 bytes.
///
/// ```
/// use xbeam_rechunk::{consolidate_chunks, ChunkLimit};
///
/// assert_eq!(consolidate_chunks(&[8, 8], &[1, 2], 4, 64, None)?, vec![2, 8]);
/// let limits = [ChunkLimit::At(8), ChunkLimit::At(4)];
/// assert_eq!(consolidate_chunks(&[8, 8], &[1, 2], 4, 32, Some(&limits))?, vec![2, 4]);
///
/// let err = consolidate_chunks(&[8, 8], &[1, 2], 4, 7, None).unwrap_err();
/// assert_eq!(err.to_string(), "chunk_mem 8 > max_mem 7");
/// # Ok::<(), xbeam_rechunk::RechunkError>(())
/// ```
pub fn consolidate_chunks(
    shape: &[u64],
    chunks: &[u64],
    itemsize: u64,
    max_mem: u64,
    chunk_limits: Option<&[ChunkLimit]>,
) -> Result<Vec<u64>, RechunkError> {
    check_chunks("chunks", chunks, shape.len())?;
    let limits = axis_limits(shape, chunks, chunk_limits)?;

    let chunk_mem0 = chunk_mem(chunks, itemsize);
    let max_mem128 = u128::from(max_mem);
    if chunk_mem0 > max_mem128 {
        return Err(RechunkError::ChunkMem {
            chunk_mem: chunk_mem0,
            max_mem,
        });
    }
    let mut headroom = max_mem128 / chunk_mem0.max(1);
    let mut new = chunks.to_vec();
    for axis in (0..shape.len()).rev() {
        let Some(limit) = limits[axis] else { continue };
        let upper = shape[axis].min(limit);
        new[axis] = upper;
        let mem = chunk_mem(&new, itemsize);
        if max_mem128 > mem {
            headroom = max_mem128 / mem.max(1);
        } else {
            let multiple = u64::try_from(headroom).unwrap_or(u64::MAX);
            new[axis] = chunks[axis].saturating_mul(multiple).min(upper);
            headroom = max_mem128 / chunk_mem(&new, itemsize).max(1);
        }
    }
    Ok(new)
}

/// The upper bound of each axis, `None` for axes not consolidated.
fn axis_limits(
    shape: &[u64],
    chunks: &[u64],
    chunk_limits: Option<&[ChunkLimit]>,
) -> Result<Vec<Option<u64>>, RechunkError> {
    let default: Vec<ChunkLimit> = shape.iter().map(|&n| ChunkLimit::At(n)).collect();
    let limits = chunk_limits.unwrap_or(&default);
    if limits.len() != shape.len() {
        return Err(RechunkError::LimitsLength {
            found: pyrepr::tuple(limits),
            expected: shape.len(),
        });
    }
    let invalid = || RechunkError::InvalidChunkLimits {
        limits: pyrepr::tuple(limits),
    };
    limits
        .iter()
        .zip(shape.iter().zip(chunks))
        .map(|(limit, (&n, &c))| match *limit {
            ChunkLimit::Keep => Ok(None),
            ChunkLimit::Whole => Ok(Some(n)),
            ChunkLimit::At(l) if c <= l && l <= n => Ok(Some(l)),
            ChunkLimit::At(l) if l > n => Ok(Some(n)),
            ChunkLimit::At(_) => Err(invalid()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::ChunkLimit::{At, Keep, Whole};
    use super::*;

    #[test]
    fn reference_vectors() {
        // (itemsize, max_mem, expected) for shape (8, 8), chunks (1, 2)
        for (itemsize, max_mem, expected) in [
            (4, 8, [1, 2]),
            (4, 16, [1, 4]),
            (4, 17, [1, 4]),
            (4, 64, [2, 8]),
            (4, 256, [8, 8]),
            (4, 512, [8, 8]),
            (8, 256, [4, 8]),
        ] {
            assert_eq!(
                consolidate_chunks(&[8, 8], &[1, 2], itemsize, max_mem, None).unwrap(),
                expected,
                "itemsize {itemsize} max_mem {max_mem}"
            );
        }
    }

    #[test]
    fn reference_vectors_with_limits() {
        for (max_mem, limits, expected) in [
            (16, [Keep, Whole], [1, 4]),
            (16, [Whole, Keep], [2, 2]),
            (32, [Keep, Whole], [1, 8]),
            (32, [Keep, At(4)], [1, 4]),
            (32, [At(8), At(4)], [2, 4]),
            (32, [At(8), Keep], [4, 2]),
            (128, [At(10), Keep], [8, 2]),
        ] {
            assert_eq!(
                consolidate_chunks(&[8, 8], &[1, 2], 4, max_mem, Some(&limits)).unwrap(),
                expected,
                "max_mem {max_mem} limits {limits:?}"
            );
        }
    }

    #[test]
    fn reference_errors() {
        assert_eq!(
            consolidate_chunks(&[8, 8], &[1, 2], 4, 7, None)
                .unwrap_err()
                .to_string(),
            "chunk_mem 8 > max_mem 7"
        );
        // Python's (-2, 2) has no Rust spelling; a limit of 0 is as invalid.
        for (limits, text) in [
            ([At(1), At(1)], "Invalid chunk_limits (1, 1)."),
            ([At(0), At(2)], "Invalid chunk_limits (0, 2)."),
        ] {
            assert_eq!(
                consolidate_chunks(&[8, 8], &[1, 2], 4, 8, Some(&limits))
                    .unwrap_err()
                    .to_string(),
                text
            );
        }
        assert_eq!(
            consolidate_chunks(&[8, 8], &[1, 2], 4, 8, Some(&[Keep]))
                .unwrap_err()
                .to_string(),
            "chunk_limits (None,) must have length 2"
        );
    }

    #[test]
    fn reference_vectors_4d() {
        let shape = [1000, 50, 1800, 3600];
        let chunks = [1, 5, 1800, 3600];
        for (max_mem, expected) in [
            (1_000_000_000, [1, 35, 1800, 3600]),
            (3_000_000_000, [2, 50, 1800, 3600]),
        ] {
            let new = consolidate_chunks(&shape, &chunks, 4, max_mem, None).unwrap();
            assert_eq!(new, expected);
            assert!(chunk_mem(&new, 4) <= u128::from(max_mem));
        }
    }
}
