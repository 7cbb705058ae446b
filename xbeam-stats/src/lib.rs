//! Mergeable statistics accumulators and groupers for xbeam, pure and
//! engine-free.
//!
//! - [`Stat`]: the statistics (count, sum, mean, var, std, min, max) and the
//!   dtypes xarray gives them.
//! - [`Grouper`] and [`Groups`]: parts of a time coordinate ([`TimeGrouper`]:
//!   `time.month`, `time.hour`, ... in every CF calendar), a 1-D
//!   coordinate's values, resampling bins ([`Resample`]: `1D`, `6h`, `1MS`)
//!   and user functions ([`Custom`]), and the groups several make together.
//! - [`Fold`] and [`Partial`]: per-element accumulators in `f64`. A fold
//!   adds values one step of the fold dimension at a time; a partial merges
//!   along other dimensions, with weights, in index order. The arithmetic
//!   depends only on the data, never on its chunking or on how many workers
//!   ran, so results are bit-identical across both. [`Partial::window`]
//!   smooths groups over the day of the year as WeatherBench 2 does (the
//!   reference), and [`WindowStream`] gives the same streamed day by day,
//!   holding two days of accumulators instead of a year's.
//! - [`Values`]: exact quantiles (every value kept, linear interpolation
//!   as numpy's default).
//! - [`Sketch`]: quantiles within a relative accuracy in one pass over any
//!   number of values, with exact (order-free) merges.
//! - [`Moments`]: a scalar Welford/Chan accumulator.
//!
//! ```
//! use xbeam_stats::Moments;
//!
//! let mut a = Moments::default();
//! let mut b = Moments::default();
//! [1.0, 2.0, f64::NAN].iter().for_each(|&x| a.add(x)); // NaN is skipped
//! [3.0, 4.0].iter().for_each(|&x| b.add(x));
//! a.merge(&b);
//! assert_eq!(a.count(), 4);
//! assert_eq!(a.mean(), 2.5);
//! assert!((a.variance(1) - 5.0 / 3.0).abs() < 1e-12);
//! ```

mod fold;
mod group;
mod quantile;
mod sketch;
mod stat;
mod window;

pub use fold::{Fold, Need, Partial, Value};
pub use group::{parse_groupers, Custom, Freq, Grouper, Groups, Labels, Resample, TimeGrouper};
pub use quantile::{check_quantiles, quantile_sorted, weighted_quantile_sorted, DayWindow, Values};
pub use sketch::{Sketch, Sketches, MIN_INDEXABLE, SKETCH_BYTES};
pub use stat::{parse_stats, Stat};
pub use window::{DaySums, Move, Smoothed, WindowStream, Work};

/// Errors of statistics: what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// A statistic name that is not known.
    #[error("unknown statistic {0:?}: expected mean, sum, std, var, min, max or count")]
    UnknownStat(String),
    /// A grouper that is not known.
    #[error(
        "unknown grouper {0:?}: expected <time coordinate>.<part> with part year, month, day, \
         hour, dayofyear, season or week (e.g. time.month), or the name of a 1-D coordinate"
    )]
    UnknownGrouper(String),
    /// The same statistic or grouper named twice.
    #[error("{0} is named twice")]
    Repeated(String),
    /// Inputs that do not fit together.
    #[error("{0}")]
    Invalid(String),
}

/// Count, mean and the sum of squared deviations of a stream of values,
/// accumulated in `f64`; NaN values are skipped (xarray's `skipna=True`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    count: u64,
    mean: f64,
    m2: f64,
}

impl Moments {
    /// Adds one value (NaN is skipped), by Welford's update.
    pub fn add(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Merges another accumulator into this one (Chan et al.'s parallel
    /// update), as if its values had been added here.
    pub fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let n = (self.count + other.count) as f64;
        let delta = other.mean - self.mean;
        self.m2 += other.m2 + delta * delta * self.count as f64 * other.count as f64 / n;
        self.mean += delta * other.count as f64 / n;
        self.count += other.count;
    }

    /// How many values were added (NaN not counted).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The mean, or NaN when no value was added (as xarray's all-NaN mean).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.mean
        }
    }

    /// The variance with `ddof` delta degrees of freedom (0: population, as
    /// xarray's default; 1: sample); NaN when `count <= ddof`.
    pub fn variance(&self, ddof: u64) -> f64 {
        if self.count <= ddof {
            f64::NAN
        } else {
            self.m2 / (self.count - ddof) as f64
        }
    }

    /// The standard deviation with `ddof` delta degrees of freedom.
    pub fn std(&self, ddof: u64) -> f64 {
        self.variance(ddof).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(values: &[f64]) -> (f64, f64) {
        let v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        (mean, var)
    }

    #[test]
    fn merge_in_any_split_matches_one_pass() {
        let values: Vec<f64> = (0..1000)
            .map(|i| f64::from((i * 7919) % 1013) * 0.37 + 280.0)
            .collect();
        let (mean, var) = naive(&values);
        for split in [0, 1, 17, 500, 999, 1000] {
            let (mut a, mut b) = (Moments::default(), Moments::default());
            values[..split].iter().for_each(|&x| a.add(x));
            values[split..].iter().for_each(|&x| b.add(x));
            b.merge(&a);
            assert_eq!(b.count(), 1000);
            assert!((b.mean() - mean).abs() < 1e-9, "split {split}");
            assert!((b.variance(0) - var).abs() < 1e-9, "split {split}");
        }
    }

    #[test]
    fn empty_and_all_nan_give_nan() {
        let mut m = Moments::default();
        m.add(f64::NAN);
        assert_eq!(m.count(), 0);
        assert!(m.mean().is_nan() && m.variance(0).is_nan());
        m.add(3.0);
        assert_eq!(m.variance(0), 0.0);
        assert!(m.variance(1).is_nan());
    }

    #[test]
    fn large_offsets_stay_accurate() {
        // the naive sum-of-squares formula loses everything here
        let mut m = Moments::default();
        for x in [1e9 + 4.0, 1e9 + 7.0, 1e9 + 13.0, 1e9 + 16.0] {
            m.add(x);
        }
        assert!((m.variance(1) - 30.0).abs() < 1e-6);
    }
}
