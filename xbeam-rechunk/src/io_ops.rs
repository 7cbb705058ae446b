//! How many IO operations (pieces) one rechunk stage makes: the count the
//! Rechunker algorithm minimises when it chooses intermediate chunks.

use crate::chunks::DimChunks;
use crate::error::RechunkError;
use crate::pyrepr;

/// The number of distinct (source chunk, target chunk) pairs along one axis
/// of `n` elements: how many pieces moving from chunks of `s` to chunks of
/// `t` cuts the axis into (Rechunker's `_count_intermediate_chunks`).
pub(crate) fn axis_ops(s: u64, t: u64, n: u64) -> u64 {
    let l = lcm(s, t);
    let per_period = l / s + l / t - 1;
    let (q, r) = (n / l, n % l);
    let extra = if r == 0 {
        0
    } else {
        r.div_ceil(s) + r.div_ceil(t) - 1
    };
    q.saturating_mul(per_period).saturating_add(extra)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The least common multiple, saturating at `u64::MAX` (beyond any axis, so
/// an axis then holds no whole period).
pub(crate) fn lcm(a: u64, b: u64) -> u64 {
    (a / gcd(a, b)).saturating_mul(b)
}

/// Checks that `chunks` has one positive size per dimension of `shape`.
pub(crate) fn check_chunks(
    what: &'static str,
    chunks: &[u64],
    ndim: usize,
) -> Result<(), RechunkError> {
    if chunks.len() != ndim {
        return Err(RechunkError::Length {
            what,
            found: pyrepr::tuple(chunks),
            expected: ndim,
        });
    }
    if chunks.contains(&0) {
        return Err(RechunkError::ZeroChunk {
            what,
            found: pyrepr::tuple(chunks),
        });
    }
    Ok(())
}

/// The number of IO operations of one rechunk stage from `source` to
/// `target` chunks of an array of `shape`: the product over axes of the
/// number of distinct chunk pairs (Rechunker's
/// `calculate_single_stage_io_ops`). Saturates at `u64::MAX`.
///
/// ```
/// use xbeam_rechunk::io_ops;
///
/// // 20 elements from chunks of 5 to chunks of 7:
/// // 0 1 2 3 4|5 6|7 8 9|10 11 12 13|14|15 16 17 18 19 -> 6 pieces
/// assert_eq!(io_ops(&[20], &[5], &[7])?, 6);
/// assert_eq!(io_ops(&[100, 100], &[1, 100], &[100, 1])?, 10_000);
/// # Ok::<(), xbeam_rechunk::RechunkError>(())
/// ```
pub fn io_ops(shape: &[u64], source: &[u64], target: &[u64]) -> Result<u64, RechunkError> {
    check_chunks("source_chunks", source, shape.len())?;
    check_chunks("target_chunks", target, shape.len())?;
    Ok(shape
        .iter()
        .zip(source)
        .zip(target)
        .fold(1u64, |acc, ((&n, &s), &t)| {
            acc.saturating_mul(axis_ops(s, t, n))
        }))
}

/// [`io_ops`] for chunkings that may be irregular: the product over axes of
/// the number of distinct (source chunk, target chunk) index pairs, counted
/// by a sweep over both chunkings' boundaries (a closed form when both are
/// regular). Saturates at `u64::MAX`.
///
/// ```
/// use xbeam_rechunk::{stage_io_ops, DimChunks};
///
/// // Two years of daily data, one chunk per year, to chunks of 100 days:
/// // 8 chunks of 100 days, one of them cut at the year boundary (day 366).
/// let years = [DimChunks::Irregular(vec![366, 365])];
/// assert_eq!(stage_io_ops(&[731], &years, &[DimChunks::Regular(100)])?, 9);
/// // Regular chunkings count as io_ops does.
/// assert_eq!(stage_io_ops(&[20], &[DimChunks::Regular(5)], &[DimChunks::Regular(7)])?, 6);
/// # Ok::<(), xbeam_rechunk::RechunkError>(())
/// ```
pub fn stage_io_ops(
    shape: &[u64],
    source: &[DimChunks],
    target: &[DimChunks],
) -> Result<u64, RechunkError> {
    for (what, chunks) in [("source_chunks", source), ("target_chunks", target)] {
        if chunks.len() != shape.len() {
            return Err(RechunkError::Length {
                what,
                found: crate::plan::chunkings_repr(chunks),
                expected: shape.len(),
            });
        }
        for (i, (c, &n)) in chunks.iter().zip(shape).enumerate() {
            c.validate(&format!("{i} of {what}"), n)?;
        }
    }
    Ok(pieces(shape, source, target))
}

/// [`stage_io_ops`] of chunkings already checked against `shape`.
pub(crate) fn pieces(shape: &[u64], source: &[DimChunks], target: &[DimChunks]) -> u64 {
    shape
        .iter()
        .zip(source)
        .zip(target)
        .fold(1u64, |acc, ((&n, s), t)| acc.saturating_mul(s.pieces(t, n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vectors() {
        // (shape, source chunks, target chunks, expected IO operations)
        type Case<'a> = (&'a [u64], &'a [u64], &'a [u64], u64);
        let cases: &[Case<'_>] = &[
            (&[6], &[1], &[6], 6),
            (&[10], &[1], &[6], 10),
            (&[6], &[2], &[3], 4),
            (&[24], &[2], &[3], 16),
            (&[10], &[4], &[5], 4),
            (&[100], &[4], &[5], 40),
            (&[100, 100], &[1, 100], &[100, 1], 10_000),
            (&[100, 100], &[1, 10], &[10, 1], 10_000),
            (&[100, 100], &[20, 20], &[25, 25], 64),
            (&[50, 50], &[20, 20], &[25, 25], 16),
            (&[100], &[43], &[100], 3),
            (&[100], &[43], &[51], 4),
            (&[100], &[43], &[40], 5),
            (&[100], &[43], &[10], 12),
            (&[100], &[43], &[1], 100),
        ];
        for (shape, s, t, expected) in cases {
            assert_eq!(
                io_ops(shape, s, t).unwrap(),
                *expected,
                "{shape:?} {s:?} -> {t:?}"
            );
            let regular = |c: &[u64]| c.iter().map(|&c| DimChunks::Regular(c)).collect::<Vec<_>>();
            assert_eq!(
                stage_io_ops(shape, &regular(s), &regular(t)).unwrap(),
                *expected
            );
        }
    }

    #[test]
    fn counts_distinct_chunk_pairs_by_brute_force() {
        for n in 1..40u64 {
            for s in 1..12u64 {
                for t in 1..12u64 {
                    let mut pairs: Vec<(u64, u64)> = (0..n).map(|i| (i / s, i / t)).collect();
                    pairs.dedup();
                    assert_eq!(axis_ops(s, t, n), pairs.len() as u64, "n={n} s={s} t={t}");
                }
            }
        }
    }

    #[test]
    fn errors_name_the_argument() {
        assert_eq!(
            io_ops(&[4, 4], &[1], &[1, 1]).unwrap_err().to_string(),
            "source_chunks (1,) must have length 2"
        );
        assert_eq!(
            io_ops(&[4], &[1], &[0]).unwrap_err().to_string(),
            "target_chunks (0,) has a chunk size of 0; chunk sizes must be positive"
        );
        assert_eq!(
            stage_io_ops(
                &[10],
                &[DimChunks::Irregular(vec![4, 4])],
                &[DimChunks::Regular(5)]
            )
            .unwrap_err()
            .to_string(),
            "irregular chunks for dimension 0 of source_chunks add up to 8, not to its size 10"
        );
    }
}
