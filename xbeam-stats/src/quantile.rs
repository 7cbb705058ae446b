//! Exact quantiles: every value of each group is kept (in `f64`) and the
//! quantiles are read off the sorted values with linear interpolation, as
//! numpy's and xarray's default (`method="linear"`).

use xbeam_chunk::ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn, Slice, Zip};

use crate::{StatsError, Value};

/// The `q`-quantile (`0 ≤ q ≤ 1`) of sorted values by linear
/// interpolation between the two nearest ranks (numpy's `linear`), NaN
/// for no values.
///
/// ```
/// use xbeam_stats::quantile_sorted;
///
/// assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
/// assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0, 4.0], 0.1), 1.3);
/// assert!(quantile_sorted(&[], 0.5).is_nan());
/// ```
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return f64::NAN;
    };
    #[allow(clippy::cast_precision_loss)]
    let h = last as f64 * q;
    let lo = h.floor();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = (lo as usize).min(last);
    let t = h - lo;
    let (a, b) = (sorted[i], sorted[(i + 1).min(last)]);
    // numpy's _lerp: from the nearer end, so q = 1 gives the largest value
    if t >= 0.5 {
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
    }
}

/// Checks quantile levels: each in `[0, 1]`, none repeated.
///
/// ```
/// use xbeam_stats::check_quantiles;
///
/// assert!(check_quantiles(&[0.1, 0.5, 0.9]).is_ok());
/// assert!(check_quantiles(&[1.5]).is_err());
/// assert!(check_quantiles(&[0.5, 0.5]).is_err());
/// ```
pub fn check_quantiles(q: &[f64]) -> Result<(), StatsError> {
    for (i, &x) in q.iter().enumerate() {
        if !(0.0..=1.0).contains(&x) {
            return Err(StatsError::Invalid(format!(
                "quantile {x} is out of range: expected a number from 0 to 1"
            )));
        }
        if q[..i].contains(&x) {
            return Err(StatsError::Repeated(format!("quantile {x}")));
        }
    }
    Ok(())
}

/// Every value of each (group, step slot, element), NaN until written: the
/// exact way to quantiles, at the memory cost of the values themselves.
///
/// ```
/// use xbeam_chunk::ndarray::arr1;
/// use xbeam_stats::Values;
///
/// // one group of 4 steps over 2 elements
/// let mut v = Values::new(&[4], &[2]);
/// for (slot, step) in [[1.0f32, 10.0], [2.0, f32::NAN], [3.0, 30.0], [4.0, 40.0]].iter().enumerate() {
///     v.add(0, slot, &[0], &arr1(step).into_dyn().view());
/// }
/// let q = v.quantiles(&[0.5], &[0], true);
/// assert_eq!(q.shape(), &[1, 1, 2]);
/// assert_eq!((q[[0, 0, 0]], q[[0, 0, 1]]), (2.5, 30.0));
/// ```
#[derive(Debug, Clone)]
pub struct Values {
    /// Per group: `slots × elements` values.
    groups: Vec<Vec<f64>>,
    elements: Vec<usize>,
}

impl Values {
    /// Room for `slots[g]` steps of group `g`, each of `elements` (a
    /// shape) values.
    pub fn new(slots: &[usize], elements: &[usize]) -> Values {
        let n: usize = elements.iter().product();
        Values {
            groups: slots.iter().map(|&s| vec![f64::NAN; s * n]).collect(),
            elements: elements.to_vec(),
        }
    }

    /// Bytes held for `slots` steps of `elements` values in all.
    pub fn bytes(slots: usize, elements: usize) -> usize {
        slots * elements * 8
    }

    /// Writes one step's `values` (a box of elements starting at
    /// `origin`) into slot `slot` of `group`.
    ///
    /// # Panics
    /// If the group, slot or box is outside what [`Values::new`] made room
    /// for (a caller's bug).
    pub fn add<T: Value>(
        &mut self,
        group: usize,
        slot: usize,
        origin: &[usize],
        values: &ArrayViewD<'_, T>,
    ) {
        let n: usize = self.elements.iter().product();
        let row = &mut self.groups[group][slot * n..(slot + 1) * n];
        let mut all = ArrayViewMutD::from_shape(IxDyn(&self.elements), row).expect("slot shape");
        all.slice_each_axis_inplace(|ax| {
            let i = ax.axis.index();
            Slice::from(origin[i]..origin[i] + values.shape()[i])
        });
        Zip::from(all).and(values).for_each(|o, &x| *o = x.value());
    }

    /// The quantiles `q` of every group over its steps and over the element
    /// axes not in `keep` (an increasing list of element axes): shape
    /// `[groups, q, kept axes...]`. NaN values are skipped (`skipna`), or
    /// make the result NaN; no values give NaN.
    pub fn quantiles(&self, q: &[f64], keep: &[usize], skipna: bool) -> ArrayD<f64> {
        let kept_shape: Vec<usize> = keep.iter().map(|&a| self.elements[a]).collect();
        let nkept: usize = kept_shape.iter().product();
        // each element's kept position (row-major over the kept axes)
        let mut kmap = Vec::with_capacity(self.elements.iter().product());
        for ix in xbeam_chunk::ndarray::indices(IxDyn(&self.elements)) {
            let mut k = 0;
            for &a in keep {
                k = k * self.elements[a] + ix[a];
            }
            kmap.push(k);
        }
        let mut shape = vec![self.groups.len(), q.len()];
        shape.extend_from_slice(&kept_shape);
        let mut out = ArrayD::from_elem(IxDyn(&shape), f64::NAN);
        let flat = out.as_slice_mut().expect("standard layout");
        let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); nkept];
        let mut nan = vec![false; nkept];
        for (g, values) in self.groups.iter().enumerate() {
            buckets.iter_mut().for_each(Vec::clear);
            nan.fill(false);
            for (x, &k) in values.iter().zip(kmap.iter().cycle()) {
                if x.is_nan() {
                    nan[k] = true;
                } else {
                    buckets[k].push(*x);
                }
            }
            for (k, bucket) in buckets.iter_mut().enumerate() {
                bucket.sort_unstable_by(f64::total_cmp);
                for (j, &level) in q.iter().enumerate() {
                    flat[(g * q.len() + j) * nkept + k] = if !skipna && nan[k] {
                        f64::NAN
                    } else {
                        quantile_sorted(bucket, level)
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
    use xbeam_chunk::ndarray::Array2;

    #[test]
    fn linear_quantiles_match_numpy() {
        // np.quantile([3, 1, 4, 1, 5, 9, 2, 6], [0, .25, .5, .9, 1])
        let mut x = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        x.sort_by(f64::total_cmp);
        let want = [1.0, 1.75, 3.5, 6.899_999_999_999_999_5, 9.0];
        for (q, w) in [0.0, 0.25, 0.5, 0.9, 1.0].into_iter().zip(want) {
            assert!((quantile_sorted(&x, q) - w).abs() < 1e-12, "q {q}");
        }
        assert_eq!(quantile_sorted(&[7.0], 0.3), 7.0);
    }

    #[test]
    fn groups_merge_steps_and_unkept_axes_in_any_box_order() {
        // 2 groups; 3 steps each; elements [2 (merged), 3 (kept)]
        let x = Array2::from_shape_fn((6, 6), |(t, e)| ((t * 7 + e * 5) % 11) as f64);
        let mut a = Values::new(&[3, 3], &[2, 3]);
        let mut b = a.clone();
        for t in 0..6 {
            let step = x.row(t).into_shape_with_order((2, 3)).unwrap().into_dyn();
            a.add(t % 2, t / 2, &[0, 0], &step.view());
            // the same step in two boxes, the second first
            b.add(
                t % 2,
                t / 2,
                &[1, 0],
                &step.slice_axis(xbeam_chunk::ndarray::Axis(0), Slice::from(1..2)),
            );
            b.add(
                t % 2,
                t / 2,
                &[0, 0],
                &step.slice_axis(xbeam_chunk::ndarray::Axis(0), Slice::from(0..1)),
            );
        }
        let (qa, qb) = (
            a.quantiles(&[0.3, 0.5], &[1], true),
            b.quantiles(&[0.3, 0.5], &[1], true),
        );
        assert_eq!(qa, qb);
        assert_eq!(qa.shape(), &[2, 2, 3]);
        for g in 0..2 {
            for k in 0..3 {
                let mut v: Vec<f64> = (0..6)
                    .filter(|t| t % 2 == g)
                    .flat_map(|t| [x[[t, k]], x[[t, 3 + k]]])
                    .collect();
                v.sort_by(f64::total_cmp);
                assert_eq!(qa[[g, 1, k]], quantile_sorted(&v, 0.5));
            }
        }
    }

    #[test]
    fn nan_is_skipped_or_kept_and_empty_is_nan() {
        let mut v = Values::new(&[2, 0], &[1]);
        v.add(
            0,
            0,
            &[0],
            &xbeam_chunk::ndarray::arr1(&[f64::NAN]).into_dyn().view(),
        );
        v.add(
            0,
            1,
            &[0],
            &xbeam_chunk::ndarray::arr1(&[2.0]).into_dyn().view(),
        );
        let skip = v.quantiles(&[0.5], &[0], true);
        assert_eq!(skip[[0, 0, 0]], 2.0);
        assert!(skip[[1, 0, 0]].is_nan());
        assert!(v.quantiles(&[0.5], &[0], false)[[0, 0, 0]].is_nan());
    }
}
