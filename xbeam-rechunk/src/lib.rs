//! Rechunker multi-stage rechunking plans for xbeam: pure planning
//! functions, no IO.
//!
//! Today this crate holds the IO-operation count that the Rechunker
//! algorithm minimises when it chooses intermediate chunks; the planner
//! itself (`consolidate_chunks`, stage chunks, the multi-stage plan) lands
//! with the rechunking issue.
//!
//! ```
//! use xbeam_rechunk::io_ops;
//!
//! // Pancake (1 x 100) to pencil (100 x 1) chunks of a 100 x 100 array
//! // touches every element's chunk pair: 10 000 reads-and-writes.
//! assert_eq!(io_ops(&[100, 100], &[1, 100], &[100, 1])?, 10_000);
//! assert_eq!(io_ops(&[100, 100], &[20, 20], &[25, 25])?, 64);
//! # Ok::<(), xbeam_rechunk::RechunkError>(())
//! ```

/// Errors of rechunk planning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RechunkError {
    /// Shapes and chunks have different numbers of dimensions.
    #[error("{what} {found:?} must have length {expected}")]
    Length {
        /// Which argument (`source_chunks`, `target_chunks`).
        what: &'static str,
        /// The argument.
        found: Vec<u64>,
        /// The number of dimensions of the shape.
        expected: usize,
    },
    /// A chunk size of zero.
    #[error("{what} {found:?} has a chunk size of 0; chunk sizes must be positive")]
    ZeroChunk {
        /// Which argument.
        what: &'static str,
        /// The argument.
        found: Vec<u64>,
    },
}

/// The number of distinct (source chunk, target chunk) pairs along one axis
/// of `n` elements: how many pieces moving from chunks of `s` to chunks of
/// `t` cuts the axis into.
fn axis_ops(s: u64, t: u64, n: u64) -> u64 {
    let l = lcm(s, t);
    let per_period = l / s + l / t - 1;
    let (q, r) = (n / l, n % l);
    let extra = if r == 0 {
        0
    } else {
        r.div_ceil(s) + r.div_ceil(t) - 1
    };
    q * per_period + extra
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn lcm(a: u64, b: u64) -> u64 {
    a / gcd(a, b) * b
}

/// The number of IO operations of one rechunk stage from `source` to
/// `target` chunks of an array of `shape`: the product over axes of the
/// number of distinct chunk pairs (Rechunker's `calculate_single_stage_io_ops`).
pub fn io_ops(shape: &[u64], source: &[u64], target: &[u64]) -> Result<u64, RechunkError> {
    for (what, chunks) in [("source_chunks", source), ("target_chunks", target)] {
        if chunks.len() != shape.len() {
            return Err(RechunkError::Length {
                what,
                found: chunks.to_vec(),
                expected: shape.len(),
            });
        }
        if chunks.contains(&0) {
            return Err(RechunkError::ZeroChunk {
                what,
                found: chunks.to_vec(),
            });
        }
    }
    Ok(shape
        .iter()
        .zip(source)
        .zip(target)
        .map(|((&n, &s), &t)| axis_ops(s, t, n))
        .product())
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
            "source_chunks [1] must have length 2"
        );
        assert_eq!(
            io_ops(&[4], &[1], &[0]).unwrap_err().to_string(),
            "target_chunks [0] has a chunk size of 0; chunk sizes must be positive"
        );
    }
}
