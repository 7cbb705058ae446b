//! How one dimension is chunked, regular or irregular, and the boundary
//! arithmetic the planner needs on it.

use std::borrow::Borrow;
use std::fmt;

use xbeam_key::ChunkSpec;

use crate::error::RechunkError;
use crate::pyrepr;

/// The chunking of one dimension, normalized: regular chunks of one size
/// (the last may be smaller), or explicit irregular sizes.
///
/// A `Regular` size larger than its dimension is kept as given (as
/// xarray-beam's `normalize_chunks` keeps it); it means one chunk of the
/// whole dimension.
///
/// ```
/// use xbeam_rechunk::DimChunks;
///
/// // One chunk per calendar year of daily data: irregular.
/// let years = DimChunks::from_sizes(&[366, 365, 365, 365]);
/// assert_eq!(years, DimChunks::Irregular(vec![366, 365, 365, 365]));
/// assert_eq!(years.max_chunk(), 366);
/// assert_eq!(years.count(1461), 4);
///
/// // Equal sizes with a smaller last one are a regular chunking.
/// assert_eq!(DimChunks::from_sizes(&[3, 3, 1]), DimChunks::Regular(3));
/// assert_eq!(DimChunks::Regular(3).count(7), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DimChunks {
    /// Chunks of this many elements; the last one may be smaller.
    Regular(u64),
    /// Explicit chunk sizes, in order; they add up to the dimension's size.
    Irregular(Vec<u64>),
}

impl DimChunks {
    /// The chunking that `sizes` spell out: `Regular` when every size but
    /// the last is the same and the last is no larger, else `Irregular`.
    ///
    /// An empty list is `Regular(0)` (the chunking of an empty dimension).
    ///
    /// ```
    /// use xbeam_rechunk::DimChunks;
    /// assert_eq!(DimChunks::from_sizes(&[10]), DimChunks::Regular(10));
    /// assert_eq!(DimChunks::from_sizes(&[31, 28, 31]), DimChunks::Irregular(vec![31, 28, 31]));
    /// ```
    pub fn from_sizes(sizes: &[u64]) -> DimChunks {
        match sizes {
            [] => DimChunks::Regular(0),
            [first, middle @ .., last] if middle.iter().all(|c| c == first) && last <= first => {
                DimChunks::Regular(*first)
            }
            [single] => DimChunks::Regular(*single),
            _ => DimChunks::Irregular(sizes.to_vec()),
        }
    }

    /// The largest chunk: what one chunk of this dimension costs in memory.
    ///
    /// ```
    /// use xbeam_rechunk::DimChunks;
    /// assert_eq!(DimChunks::Regular(30).max_chunk(), 30);
    /// assert_eq!(DimChunks::Irregular(vec![31, 28, 31]).max_chunk(), 31);
    /// ```
    pub fn max_chunk(&self) -> u64 {
        match self {
            DimChunks::Regular(c) => *c,
            DimChunks::Irregular(sizes) => sizes.iter().copied().max().unwrap_or(0),
        }
    }

    /// Whether the chunks are of one size (the last may be smaller).
    ///
    /// ```
    /// use xbeam_rechunk::DimChunks;
    /// assert!(DimChunks::Regular(4).is_regular());
    /// assert!(!DimChunks::Irregular(vec![2, 3]).is_regular());
    /// ```
    pub fn is_regular(&self) -> bool {
        matches!(self, DimChunks::Regular(_))
    }

    /// How many chunks a dimension of `n` elements has.
    ///
    /// ```
    /// use xbeam_rechunk::DimChunks;
    /// assert_eq!(DimChunks::Regular(4).count(10), 3);
    /// assert_eq!(DimChunks::Regular(40).count(10), 1);
    /// assert_eq!(DimChunks::Irregular(vec![4, 6]).count(10), 2);
    /// ```
    pub fn count(&self, n: u64) -> u64 {
        match self {
            DimChunks::Regular(0) => 0,
            DimChunks::Regular(c) => n.div_ceil(*c),
            DimChunks::Irregular(sizes) => sizes.len() as u64,
        }
    }

    /// The chunk sizes along a dimension of `n` elements.
    ///
    /// ```
    /// use xbeam_rechunk::DimChunks;
    /// assert_eq!(DimChunks::Regular(4).sizes(10), vec![4, 4, 2]);
    /// assert_eq!(DimChunks::Regular(40).sizes(10), vec![10]);
    /// ```
    pub fn sizes(&self, n: u64) -> Vec<u64> {
        match self {
            DimChunks::Regular(0) => Vec::new(),
            DimChunks::Regular(c) => (0..n.div_ceil(*c)).map(|i| (*c).min(n - i * c)).collect(),
            DimChunks::Irregular(sizes) => sizes.clone(),
        }
    }

    /// The number of chunk boundaries strictly inside `(0, n)`.
    pub(crate) fn interior_count(&self, n: u64) -> u64 {
        match self {
            DimChunks::Regular(0) => 0,
            DimChunks::Regular(c) => n.saturating_sub(1) / c,
            DimChunks::Irregular(sizes) => sizes.len().saturating_sub(1) as u64,
        }
    }

    /// How many of this chunking's interior boundaries are also boundaries
    /// of `other`, along a dimension of `n` elements. At least one side is
    /// irregular, so this walks the irregular boundaries (a two-pointer
    /// sweep when both are irregular); a regular side is tested by modulo.
    fn shared_interior(&self, other: &DimChunks, n: u64) -> u64 {
        match (self, other) {
            (DimChunks::Regular(s), DimChunks::Regular(t)) => {
                let l = crate::io_ops::lcm(*s, *t);
                n.saturating_sub(1) / l
            }
            (DimChunks::Regular(c), DimChunks::Irregular(sizes))
            | (DimChunks::Irregular(sizes), DimChunks::Regular(c)) => {
                interior_bounds(sizes).filter(|b| b % c == 0).count() as u64
            }
            (DimChunks::Irregular(a), DimChunks::Irregular(b)) => {
                let (mut a, mut b) = (interior_bounds(a).peekable(), interior_bounds(b).peekable());
                let mut shared = 0;
                while let (Some(&x), Some(&y)) = (a.peek(), b.peek()) {
                    match x.cmp(&y) {
                        std::cmp::Ordering::Less => {
                            a.next();
                        }
                        std::cmp::Ordering::Greater => {
                            b.next();
                        }
                        std::cmp::Ordering::Equal => {
                            shared += 1;
                            a.next();
                            b.next();
                        }
                    }
                }
                shared
            }
        }
    }

    /// The number of pieces moving from `self` to `other` chunks cuts a
    /// dimension of `n` elements into: the distinct (source chunk, target
    /// chunk) index pairs, i.e. one more than the distinct interior
    /// boundaries of both chunkings.
    pub(crate) fn pieces(&self, other: &DimChunks, n: u64) -> u64 {
        match (self, other) {
            (DimChunks::Regular(s), DimChunks::Regular(t)) => crate::io_ops::axis_ops(*s, *t, n),
            _ if n == 0 => 0,
            _ => {
                1 + self.interior_count(n) + other.interior_count(n)
                    - self.shared_interior(other, n)
            }
        }
    }

    /// Whether some interior boundary of `self` is not a boundary of
    /// `other` (along a dimension of `n` elements).
    pub(crate) fn has_cut_outside(&self, other: &DimChunks, n: u64) -> bool {
        self.shared_interior(other, n) < self.interior_count(n)
    }

    /// Checks this chunking against a dimension of `n` elements: sizes are
    /// positive and irregular sizes add up to `n`.
    pub(crate) fn validate(&self, dim: &str, n: u64) -> Result<(), RechunkError> {
        match self {
            DimChunks::Regular(0) if n > 0 => Err(RechunkError::ZeroDimChunk {
                dim: dim.to_owned(),
                found: "0".to_owned(),
            }),
            DimChunks::Regular(_) => Ok(()),
            DimChunks::Irregular(sizes) => {
                if sizes.contains(&0) {
                    return Err(RechunkError::ZeroDimChunk {
                        dim: dim.to_owned(),
                        found: pyrepr::tuple(sizes),
                    });
                }
                let total: u64 = sizes.iter().sum();
                if total == n {
                    Ok(())
                } else {
                    Err(RechunkError::IrregularSum {
                        dim: dim.to_owned(),
                        total,
                        size: n,
                    })
                }
            }
        }
    }

    /// Python's text for this chunking in messages: `5` or `(365, 366)`.
    pub(crate) fn py_repr(&self) -> String {
        match self {
            DimChunks::Regular(c) => c.to_string(),
            DimChunks::Irregular(sizes) => pyrepr::tuple(sizes),
        }
    }
}

/// The cumulative boundaries strictly inside an irregular chunking.
fn interior_bounds(sizes: &[u64]) -> impl Iterator<Item = u64> + '_ {
    sizes[..sizes.len().saturating_sub(1)]
        .iter()
        .scan(0u64, |acc, &c| {
            *acc += c;
            Some(*acc)
        })
}

impl fmt::Display for DimChunks {
    /// `30` for regular chunks; `28..31 (120 chunks)` for irregular ones.
    ///
    /// ```
    /// use xbeam_rechunk::DimChunks;
    /// assert_eq!(DimChunks::Regular(30).to_string(), "30");
    /// assert_eq!(DimChunks::Irregular(vec![31, 28, 31]).to_string(), "28..31 (3 chunks)");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DimChunks::Regular(c) => write!(f, "{c}"),
            DimChunks::Irregular(sizes) => {
                let lo = sizes.iter().min().copied().unwrap_or(0);
                let hi = sizes.iter().max().copied().unwrap_or(0);
                write!(f, "{lo}..{hi} ({} chunks)", sizes.len())
            }
        }
    }
}

impl From<&DimChunks> for ChunkSpec {
    /// The xbeam-key chunk specification of this chunking (what
    /// `SplitChunks` and `ConsolidateChunks` take).
    ///
    /// ```
    /// use xbeam_key::ChunkSpec;
    /// use xbeam_rechunk::DimChunks;
    /// assert_eq!(ChunkSpec::from(&DimChunks::Regular(3)), ChunkSpec::Size(3));
    /// assert_eq!(ChunkSpec::from(&DimChunks::Irregular(vec![2, 5])), ChunkSpec::Sizes(vec![2, 5]));
    /// ```
    fn from(chunks: &DimChunks) -> ChunkSpec {
        match chunks {
            DimChunks::Regular(c) => ChunkSpec::Size(*c),
            DimChunks::Irregular(sizes) => ChunkSpec::Sizes(sizes.clone()),
        }
    }
}

/// One chunk per dimension of `dim_sizes`, in its order, from a request
/// keyed by dimension name (xarray-beam's `rechunk.normalize_chunks`).
///
/// - a dimension missing from `chunks`, or [`ChunkSpec::Full`] (`-1`), is
///   one chunk of the whole dimension;
/// - [`ChunkSpec::Size`] is kept as given, even when larger than the
///   dimension (not clamped);
/// - [`ChunkSpec::Sizes`] with one distinct value is that value (as in
///   xarray-beam, whatever the tuple adds up to). Any other tuple is an
///   irregular chunking, which must add up to the dimension's size (equal
///   sizes with a smaller last one become regular). xarray-beam rejects
///   these ("chunks for dimension x are not constant"); xbeam plans them,
///   see the crate docs on irregular chunks.
///
/// Every key of `chunks` must be a dimension of `dim_sizes`.
///
/// ```
/// use xbeam_key::ChunkSpec;
/// use xbeam_rechunk::{normalize_chunks, DimChunks};
///
/// let sizes = [("x", 30), ("y", 20)];
/// let chunks = [("x", ChunkSpec::Sizes(vec![3, 3])), ("y", ChunkSpec::Full)];
/// assert_eq!(
///     normalize_chunks(sizes, chunks)?,
///     vec![DimChunks::Regular(3), DimChunks::Regular(20)],
/// );
///
/// let err = normalize_chunks([("y", 10)], [("x", ChunkSpec::Size(10))]).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "all dimensions used in chunks must also have an indicated size: \
///      chunks={'x': 10} vs dim_sizes={'y': 10}",
/// );
/// # Ok::<(), xbeam_rechunk::RechunkError>(())
/// ```
pub fn normalize_chunks<K1, N, K2, C>(
    dim_sizes: impl IntoIterator<Item = (K1, N)>,
    chunks: impl IntoIterator<Item = (K2, C)>,
) -> Result<Vec<DimChunks>, RechunkError>
where
    K1: AsRef<str>,
    N: Borrow<u64>,
    K2: AsRef<str>,
    C: Borrow<ChunkSpec>,
{
    let dim_sizes = named(dim_sizes);
    let chunks = named(chunks);
    if chunks
        .iter()
        .any(|(k, _)| !dim_sizes.iter().any(|(d, _)| d == k))
    {
        return Err(RechunkError::UnknownDims {
            chunks: pyrepr::spec_dict(&chunks),
            dim_sizes: xbeam_key::repr::dict(dim_sizes.iter().map(|(k, v)| (k, v))),
        });
    }
    dim_sizes
        .iter()
        .map(|(dim, size)| match chunks.iter().find(|(k, _)| k == dim) {
            None => Ok(DimChunks::Regular(*size)),
            Some((_, spec)) => from_spec(dim, *size, spec),
        })
        .collect()
}

/// The chunking a [`ChunkSpec`] asks for along `dim` of `size` elements.
fn from_spec(dim: &str, size: u64, spec: &ChunkSpec) -> Result<DimChunks, RechunkError> {
    match spec {
        ChunkSpec::Full => Ok(DimChunks::Regular(size)),
        ChunkSpec::Size(c) => Ok(DimChunks::Regular(*c)),
        ChunkSpec::Sizes(sizes) if !sizes.is_empty() && sizes.iter().all(|c| *c == sizes[0]) => {
            Ok(DimChunks::Regular(sizes[0]))
        }
        ChunkSpec::Sizes(sizes) => {
            let chunks = DimChunks::Irregular(sizes.clone());
            chunks.validate(dim, size)?;
            Ok(DimChunks::from_sizes(sizes))
        }
    }
}

/// Collects `(name, value)` pairs with owned names and values.
pub(crate) fn named<K: AsRef<str>, V: Borrow<T>, T: Clone>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> Vec<(String, T)> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.as_ref().to_owned(), v.borrow().clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_normalize_chunks() {
        let sizes = [("x", 30), ("y", 20)];
        let regular = [("x", ChunkSpec::Size(3)), ("y", ChunkSpec::Size(4))];
        assert_eq!(
            normalize_chunks(sizes, regular).unwrap(),
            vec![DimChunks::Regular(3), DimChunks::Regular(4)]
        );
        let tuples = [
            ("x", ChunkSpec::Sizes(vec![3, 3])),
            ("y", ChunkSpec::Sizes(vec![4; 5])),
        ];
        assert_eq!(
            normalize_chunks(sizes, tuples).unwrap(),
            vec![DimChunks::Regular(3), DimChunks::Regular(4)]
        );
        let whole = [("x", ChunkSpec::Size(3)), ("y", ChunkSpec::Full)];
        assert_eq!(
            normalize_chunks(sizes, whole).unwrap(),
            vec![DimChunks::Regular(3), DimChunks::Regular(20)]
        );
        assert_eq!(
            normalize_chunks([("x", 9)], [("x", ChunkSpec::Size(5))]).unwrap(),
            vec![DimChunks::Regular(5)]
        );
        // Missing dims are whole; values larger than the dim are kept.
        assert_eq!(
            normalize_chunks([("x", 10), ("y", 4)], [("x", ChunkSpec::Size(100))]).unwrap(),
            vec![DimChunks::Regular(100), DimChunks::Regular(4)]
        );
    }

    #[test]
    fn tuples_that_are_not_constant_are_irregular_chunks() {
        // xarray-beam: "chunks for dimension x are not constant: {3, 4}".
        assert_eq!(
            normalize_chunks([("x", 7)], [("x", ChunkSpec::Sizes(vec![3, 4]))]).unwrap(),
            vec![DimChunks::Irregular(vec![3, 4])]
        );
        assert_eq!(
            normalize_chunks([("x", 7)], [("x", ChunkSpec::Sizes(vec![3, 3, 1]))]).unwrap(),
            vec![DimChunks::Regular(3)]
        );
        assert_eq!(
            normalize_chunks([("x", 9)], [("x", ChunkSpec::Sizes(vec![3, 4]))])
                .unwrap_err()
                .to_string(),
            "irregular chunks for dimension x add up to 7, not to its size 9"
        );
    }

    #[test]
    fn unknown_dims_are_named_in_python_dicts() {
        let err = normalize_chunks(
            [("y", 10)],
            [("x", ChunkSpec::Sizes(vec![3, 4])), ("y", ChunkSpec::Full)],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "all dimensions used in chunks must also have an indicated size: \
             chunks={'x': (3, 4), 'y': -1} vs dim_sizes={'y': 10}"
        );
    }

    #[test]
    fn pieces_match_a_brute_force_count() {
        let n = 37;
        let cases = [
            DimChunks::Regular(5),
            DimChunks::Regular(7),
            DimChunks::Regular(50),
            DimChunks::Irregular(vec![10, 5, 22]),
            DimChunks::Irregular(vec![1; 37]),
            DimChunks::Irregular(vec![7, 7, 7, 7, 7, 2]),
        ];
        for a in &cases {
            for b in &cases {
                let (sa, sb) = (a.sizes(n), b.sizes(n));
                let index = |sizes: &[u64], i: u64| {
                    let mut acc = 0;
                    sizes.iter().position(|c| {
                        acc += c;
                        i < acc
                    })
                };
                let mut pairs: Vec<_> = (0..n).map(|i| (index(&sa, i), index(&sb, i))).collect();
                pairs.dedup();
                assert_eq!(a.pieces(b, n), pairs.len() as u64, "{a:?} {b:?}");
            }
        }
    }
}
