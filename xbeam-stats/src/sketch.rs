//! [`Sketch`]: a mergeable quantile sketch with a relative-accuracy bound
//! (DDSketch, Masson, Rim and Lee, VLDB 2019), for quantiles over more
//! values than a memory budget holds.
//!
//! Values are counted in logarithmic buckets, `m` per octave: with `|x| =
//! 2^e·(1 + u)` (`0 ≤ u < 1`, the float's exponent and mantissa), bucket
//! `i` holds the values with `i - 1 < m·(e + u) ≤ i` (DDSketch's linearly
//! interpolated mapping: no logarithm is computed). A bucket's bounds
//! `lo < hi` then have `hi/lo ≤ 1 + 1/m`, and `m = ⌈(1 - α) / 2α⌉` makes
//! that at most `(1 + α) / (1 - α)`, so the bucket's representative `2·lo·hi
//! / (lo + hi)` is within a relative `α` of every value in it. Counts are integers, so merging two sketches is exact
//! and the result of any number of merges, in any order, is the same
//! sketch: quantiles from a sketch do not depend on the chunking or on
//! the number of workers (a KLL or t-digest sketch cannot promise that).
//!
//! **The bound.** For `q` in `[0, 1]` and `n` valid values, let
//! `r = q·(n-1)`; numpy's linear quantile is `x_⌊r⌋ + (r-⌊r⌋)·(x_⌈r⌉ -
//! x_⌊r⌋)` over the sorted values. [`Sketch::quantile`] interpolates in the
//! same way between the representatives of the buckets holding the values
//! of ranks `⌊r⌋` and `⌈r⌉` exactly, so where those two values have the
//! same sign its error is at most `α·max(|x_⌊r⌋|, |x_⌈r⌉|)`: within a
//! relative `α` of the exact quantile. The rank is exact (the bucket of the
//! value at rank `r` is found, not a value of a nearby rank); the error is
//! in the value only. Values with `|x|` below [`MIN_INDEXABLE`] count as 0.
//!
//! Memory is one count per bucket between the smallest and largest
//! magnitude seen: `m·log2(max/min)` buckets, about 68 for air
//! temperatures of 200–320 K at `α = 0.005` (`m = 100`), and about 330 per
//! decade of magnitude at that `α`, whatever the number of values.
//!
//! ```
//! use xbeam_stats::Sketch;
//!
//! let mut a = Sketch::new(0.01)?;
//! let mut b = Sketch::new(0.01)?;
//! (1..=500).for_each(|i| a.add(i as f64));
//! (501..=1000).for_each(|i| b.add(i as f64));
//! a.merge(&b)?;
//! assert_eq!(a.count(), 1000);
//! let median = a.quantile(0.5);
//! assert!((median - 500.5).abs() <= 0.01 * 501.0, "{median}");
//! # Ok::<(), xbeam_stats::StatsError>(())
//! ```

use serde::{Deserialize, Serialize};
use xbeam_chunk::ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};

use xbeam_key::unravel;

use crate::{StatsError, Value};

/// Magnitudes below this are counted as zero (their logarithm would leave
/// the bucket indices' range).
pub const MIN_INDEXABLE: f64 = 1e-300;

/// Counts of consecutive buckets from `offset`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Store {
    offset: i32,
    counts: Vec<u64>,
}

impl Store {
    fn add(&mut self, i: i32, n: u64) {
        if self.counts.is_empty() {
            self.offset = i;
            self.counts.push(0);
        } else if i < self.offset {
            let grow = (self.offset - i) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = i;
        } else if (i - self.offset) as usize >= self.counts.len() {
            self.counts.resize((i - self.offset) as usize + 1, 0);
        }
        self.counts[(i - self.offset) as usize] += n;
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn merge(&mut self, other: &Store) {
        for (k, &n) in other.counts.iter().enumerate() {
            if n > 0 {
                self.add(other.offset + k as i32, n);
            }
        }
    }

    /// The bucket holding the value of rank `rank` (from 0) counting from
    /// the smallest index (`ascending`) or the largest.
    fn bucket(&self, rank: u64, ascending: bool) -> i32 {
        let mut seen = 0;
        let n = self.counts.len();
        for k in 0..n {
            let j = if ascending { k } else { n - 1 - k };
            seen += self.counts[j];
            if seen > rank {
                return self.offset + j as i32;
            }
        }
        self.offset + n.saturating_sub(1) as i32
    }
}

/// A quantile sketch of relative accuracy `α` (see the module docs): NaN
/// is skipped, merges are exact, and memory grows with the logarithm of
/// the values' range, not their number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sketch {
    alpha: f64,
    /// Buckets per octave.
    m: f64,
    positive: Store,
    negative: Store,
    zeros: u64,
}

impl Sketch {
    /// An empty sketch of relative accuracy `alpha` (1e-6 ≤ `alpha` < 1;
    /// 0.005 keeps quantiles within 0.5%).
    ///
    /// # Errors
    /// When `alpha` is not in [1e-6, 1).
    pub fn new(alpha: f64) -> Result<Sketch, StatsError> {
        if !(1e-6..1.0).contains(&alpha) {
            return Err(StatsError::Invalid(format!(
                "a sketch's relative accuracy must be at least 1e-6 and below 1: found {alpha}"
            )));
        }
        Ok(Sketch {
            alpha,
            m: ((1.0 - alpha) / (2.0 * alpha)).ceil().max(1.0),
            positive: Store::default(),
            negative: Store::default(),
            zeros: 0,
        })
    }

    /// The relative accuracy.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The bucket of a normal, finite, positive `magnitude`.
    fn index(&self, magnitude: f64) -> i32 {
        let bits = magnitude.to_bits();
        #[allow(clippy::cast_possible_wrap)]
        let e = ((bits >> 52) & 0x7ff) as i64 - 1023;
        #[allow(clippy::cast_precision_loss)]
        let u = (bits & ((1 << 52) - 1)) as f64 / (1u64 << 52) as f64;
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let i = ((e as f64 + u) * self.m).ceil() as i32;
        i
    }

    /// The magnitude where `m·(e + u)` is `y`.
    fn bound(&self, y: f64) -> f64 {
        let g = y / self.m;
        let e = g.floor();
        #[allow(clippy::cast_possible_truncation)]
        let p = 2f64.powi(e as i32);
        p * (1.0 + (g - e))
    }

    /// The representative of bucket `i`.
    fn value(&self, i: i32) -> f64 {
        let (lo, hi) = (self.bound(f64::from(i - 1)), self.bound(f64::from(i)));
        2.0 * lo * hi / (lo + hi)
    }

    /// Counts `x` (NaN is skipped; infinities count at the largest finite
    /// magnitude's bucket).
    pub fn add(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        let m = x.abs().min(f64::MAX);
        if m < MIN_INDEXABLE {
            self.zeros += 1;
        } else if x > 0.0 {
            let i = self.index(m);
            self.positive.add(i, 1);
        } else {
            let i = self.index(m);
            self.negative.add(i, 1);
        }
    }

    /// Adds every count of `other`, exactly.
    ///
    /// # Errors
    /// When the sketches have different accuracies.
    pub fn merge(&mut self, other: &Sketch) -> Result<(), StatsError> {
        if self.alpha.to_bits() != other.alpha.to_bits() {
            return Err(StatsError::Invalid(format!(
                "cannot merge sketches of accuracies {} and {}",
                self.alpha, other.alpha
            )));
        }
        self.positive.merge(&other.positive);
        self.negative.merge(&other.negative);
        self.zeros += other.zeros;
        Ok(())
    }

    /// Valid values counted.
    pub fn count(&self) -> u64 {
        self.positive.total() + self.negative.total() + self.zeros
    }

    /// The representative of the value of rank `rank` (from 0).
    fn at_rank(&self, rank: u64) -> f64 {
        let neg = self.negative.total();
        if rank < neg {
            // negatives ascend from the largest magnitude
            return -self.value(self.negative.bucket(rank, false));
        }
        let rank = rank - neg;
        if rank < self.zeros {
            return 0.0;
        }
        self.value(self.positive.bucket(rank - self.zeros, true))
    }

    /// The `q` quantile (linear interpolation between ranks, as numpy's
    /// default), NaN when no value was counted or `q` is not in [0, 1].
    pub fn quantile(&self, q: f64) -> f64 {
        let n = self.count();
        if n == 0 || !(0.0..=1.0).contains(&q) {
            return f64::NAN;
        }
        #[allow(clippy::cast_precision_loss)]
        let r = q * (n - 1) as f64;
        let (lo, hi) = (r.floor(), r.ceil());
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (a, b) = (self.at_rank(lo as u64), self.at_rank(hi as u64));
        if lo == hi {
            a
        } else {
            a + (r - lo) * (b - a)
        }
    }

    /// Bytes held (for memory budgets).
    pub fn byte_size(&self) -> usize {
        std::mem::size_of::<Sketch>()
            + 8 * (self.positive.counts.capacity() + self.negative.counts.capacity())
    }
}

/// Bytes [`Sketches`] plans for each sketch: the struct and 64 buckets
/// (a range of 1.56× in magnitude at `α = 0.005`, more than most fields
/// span at one element; wider ranges grow past it).
pub const SKETCH_BYTES: usize = 96 + 64 * 8;

/// A [`Sketch`] per (group, element): the one-pass counterpart of
/// [`Values`](crate::Values), with the same boxes and the same pooling of
/// unkept axes.
///
/// ```
/// use xbeam_chunk::ndarray::arr1;
/// use xbeam_stats::Sketches;
///
/// let mut s = Sketches::new(0.01, 1, &[2])?;
/// for t in 1..=100 {
///     s.add(0, &[0], &arr1(&[t as f64, f64::NAN]).into_dyn().view());
/// }
/// let q = s.quantiles(&[0.5], &[0], true); // [group, level, element]
/// assert!((q[[0, 0, 0]] - 50.5).abs() <= 0.01 * 51.0);
/// assert!(q[[0, 0, 1]].is_nan()); // no valid value
/// assert!(s.quantiles(&[0.5], &[0], false)[[0, 0, 1]].is_nan());
/// # Ok::<(), xbeam_stats::StatsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Sketches {
    groups: Vec<Vec<Sketch>>,
    /// Whether a NaN was seen, per (group, element).
    nan: Vec<Vec<bool>>,
    elements: Vec<usize>,
}

impl Sketches {
    /// Empty sketches of accuracy `alpha` for `groups` groups of
    /// `elements` (a shape).
    ///
    /// # Errors
    /// When `alpha` is not between 0 and 1.
    pub fn new(alpha: f64, groups: usize, elements: &[usize]) -> Result<Sketches, StatsError> {
        let empty = Sketch::new(alpha)?;
        let n: usize = elements.iter().product();
        Ok(Sketches {
            groups: (0..groups).map(|_| vec![empty.clone(); n]).collect(),
            nan: (0..groups).map(|_| vec![false; n]).collect(),
            elements: elements.to_vec(),
        })
    }

    /// Adds `values` to `group`, at the box of elements that starts at
    /// `origin` (values' shape is the box's).
    ///
    /// # Panics
    /// If the box is outside the elements (a caller's bug).
    pub fn add<T: Value>(&mut self, group: usize, origin: &[usize], values: &ArrayViewD<'_, T>) {
        let mut strides = vec![1usize; self.elements.len()];
        for a in (0..self.elements.len().saturating_sub(1)).rev() {
            strides[a] = strides[a + 1] * self.elements[a + 1];
        }
        let (sketches, nan) = (&mut self.groups[group], &mut self.nan[group]);
        let mut put = |at: usize, x: f64| {
            if x.is_nan() {
                nan[at] = true;
            } else {
                sketches[at].add(x);
            }
        };
        let Some(last) = self.elements.len().checked_sub(1) else {
            if let Some(&x) = values.iter().next() {
                put(0, x.value());
            }
            return;
        };
        // row by row along the last axis: rows come in row-major order of
        // the other axes
        let outer = &values.shape()[..last];
        for (r, lane) in values.lanes(Axis(last)).into_iter().enumerate() {
            let ix = unravel(r, outer);
            let base: usize = (0..last)
                .map(|a| (origin[a] + ix[a]) * strides[a])
                .sum::<usize>()
                + origin[last];
            for (j, &x) in lane.iter().enumerate() {
                put(base + j, x.value());
            }
        }
    }

    /// The quantiles at `q` of each group, pooling every axis but `keep`
    /// (axes of the elements, in order): `[groups, q.len(), kept...]`, NaN
    /// where no value is valid (or, without `skipna`, any is NaN).
    pub fn quantiles(&self, q: &[f64], keep: &[usize], skipna: bool) -> ArrayD<f64> {
        let kept_shape: Vec<usize> = keep.iter().map(|&a| self.elements[a]).collect();
        let nkept: usize = kept_shape.iter().product();
        let mut kmap = Vec::with_capacity(self.elements.iter().product());
        for ix in xbeam_chunk::ndarray::indices(IxDyn(&self.elements)) {
            kmap.push(keep.iter().fold(0, |k, &a| k * self.elements[a] + ix[a]));
        }
        let mut shape = vec![self.groups.len(), q.len()];
        shape.extend_from_slice(&kept_shape);
        let mut out = ArrayD::from_elem(IxDyn(&shape), f64::NAN);
        let flat = out.as_slice_mut().expect("standard layout");
        for (g, (sketches, nan)) in self.groups.iter().zip(&self.nan).enumerate() {
            let Some(first) = sketches.first() else {
                continue;
            };
            let empty = Sketch::new(first.alpha()).expect("a valid accuracy");
            let mut pooled = vec![empty; nkept];
            let mut any_nan = vec![false; nkept];
            // pooled in element order: exact merges make the order moot
            for ((s, &n), &k) in sketches.iter().zip(nan).zip(&kmap) {
                pooled[k].merge(s).expect("one accuracy");
                any_nan[k] |= n;
            }
            for (k, s) in pooled.iter().enumerate() {
                for (j, &level) in q.iter().enumerate() {
                    flat[(g * q.len() + j) * nkept + k] = if !skipna && any_nan[k] {
                        f64::NAN
                    } else {
                        s.quantile(level)
                    };
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantile_sorted;
    use proptest::prelude::*;

    fn exact(values: &[f64], q: f64) -> f64 {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        v.sort_by(f64::total_cmp);
        quantile_sorted(&v, q)
    }

    proptest! {
        /// The bound of the module docs, on values of one sign spanning
        /// many magnitudes, split at random between two merged sketches.
        #[test]
        fn quantiles_are_within_alpha_of_numpys(
            values in prop::collection::vec(1e-3f64..1e6, 1..400),
            split in 0usize..400,
            q in 0.0f64..=1.0,
            negate: bool,
        ) {
            let values: Vec<f64> = values.iter().map(|&x| if negate { -x } else { x }).collect();
            let alpha = 0.01;
            let (mut a, mut b) = (Sketch::new(alpha).unwrap(), Sketch::new(alpha).unwrap());
            let k = split.min(values.len());
            values[..k].iter().for_each(|&x| a.add(x));
            values[k..].iter().for_each(|&x| b.add(x));
            a.merge(&b).unwrap();
            let want = exact(&values, q);
            let got = a.quantile(q);
            // the two neighbouring values bound the interpolated one
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let r = q * (values.len() - 1) as f64;
            let scale = sorted[r.floor() as usize].abs().max(sorted[r.ceil() as usize].abs());
            prop_assert!((got - want).abs() <= alpha * scale * (1.0 + 1e-9), "{got} vs {want}");
        }

        /// Merging in any order gives the same sketch, bit for bit.
        #[test]
        fn merges_do_not_depend_on_order(
            values in prop::collection::vec(-1e3f64..1e3, 0..200),
            cuts in prop::collection::vec(0usize..200, 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(values.len())).collect();
            cuts.push(0);
            cuts.push(values.len());
            cuts.sort_unstable();
            let parts: Vec<Sketch> = cuts.windows(2).map(|w| {
                let mut s = Sketch::new(0.005).unwrap();
                values[w[0]..w[1]].iter().for_each(|&x| s.add(x));
                s
            }).collect();
            let mut forward = Sketch::new(0.005).unwrap();
            for p in &parts {
                forward.merge(p).unwrap();
            }
            let mut backward = Sketch::new(0.005).unwrap();
            parts.iter().rev().for_each(|p| backward.merge(p).unwrap());
            let mut whole = Sketch::new(0.005).unwrap();
            for &x in &values {
                whole.add(x);
            }
            for q in [0.0, 0.1, 0.5, 0.9, 1.0] {
                prop_assert_eq!(forward.quantile(q).to_bits(), backward.quantile(q).to_bits());
                prop_assert_eq!(forward.quantile(q).to_bits(), whole.quantile(q).to_bits());
            }
        }
    }

    #[test]
    fn nan_zero_signs_and_bad_input() {
        let mut s = Sketch::new(0.01).unwrap();
        for x in [f64::NAN, -2.0, 0.0, 3.0, 1e-320] {
            s.add(x);
        }
        assert_eq!(s.count(), 4);
        assert!((s.quantile(0.0) + 2.0).abs() <= 0.02);
        assert_eq!(s.quantile(1.0 / 3.0), 0.0);
        assert!((s.quantile(1.0) - 3.0).abs() <= 0.03);
        assert!(s.quantile(1.5).is_nan());
        assert!(Sketch::new(0.01).unwrap().quantile(0.5).is_nan());
        assert!(Sketch::new(0.0).is_err());
        assert!(Sketch::new(1.0).is_err());
        let err = s.merge(&Sketch::new(0.02).unwrap()).unwrap_err();
        assert!(err.to_string().contains("accuracies"), "{err}");
    }
}
