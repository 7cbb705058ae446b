//! Per-element accumulators: [`Fold`] adds values in the order they come
//! (one step of a fold dimension at a time), [`Partial`] merges elements
//! along other dimensions (with weights) in a fixed order and gives each
//! statistic.
//!
//! Results do not depend on how the data was chunked or on how many
//! workers ran: each element's values are folded in the order of the fold
//! dimension (time), and merges along other dimensions go in index order,
//! so the same arithmetic happens in the same order whatever the chunks.

use xbeam_chunk::ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis, IxDyn, Slice, Zip};

use crate::{Stat, StatsError};

/// A numeric element type that can be folded (accumulated in `f64`).
pub trait Value: Copy + Send + Sync + 'static {
    /// The value as `f64`.
    fn value(self) -> f64;
}

macro_rules! impl_value {
    ($($t:ty),*) => {$(
        impl Value for $t {
            #[inline]
            #[allow(clippy::cast_lossless, clippy::cast_precision_loss)]
            fn value(self) -> f64 {
                self as f64
            }
        }
    )*};
}
impl_value!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

/// Which accumulators a set of statistics needs (a set of flags).
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Need {
    /// Sums (sum, mean).
    pub sum: bool,
    /// Shifted moments (var, std).
    pub moments: bool,
    /// Minimum.
    pub min: bool,
    /// Maximum.
    pub max: bool,
    /// Whether a NaN anywhere makes the result NaN (`skipna=false`).
    pub propagate_nan: bool,
}

impl Need {
    /// The accumulators `stats` need; `skipna` as xarray's (default true).
    pub fn of(stats: &[Stat], skipna: bool) -> Need {
        let has = |s: Stat| stats.contains(&s);
        Need {
            sum: has(Stat::Sum) || has(Stat::Mean),
            moments: has(Stat::Var) || has(Stat::Std),
            min: has(Stat::Min),
            max: has(Stat::Max),
            propagate_nan: !skipna,
        }
    }

    /// Bytes a [`Fold`] holds per (group, element).
    pub fn fold_bytes(&self) -> usize {
        4 + 8 * usize::from(self.sum)
            + 24 * usize::from(self.moments)
            + 8 * (usize::from(self.min) + usize::from(self.max))
            + usize::from(self.propagate_nan)
    }

    /// Bytes a [`Partial`] holds per (group, element), unweighted (a
    /// weighted merge adds 8 for weight totals).
    pub fn partial_bytes(&self) -> usize {
        8 + 8 * usize::from(self.sum)
            + 16 * usize::from(self.moments)
            + 8 * (usize::from(self.min) + usize::from(self.max))
            + usize::from(self.propagate_nan)
    }
}

/// Accumulators of shape `[groups, elements...]`: each [`add`](Fold::add)
/// folds one step's values into one group, element by element, in `f64`.
/// Variance uses shifted sums (the shift is each element's first valid
/// value), which is exact in order and needs no division per value.
///
/// ```
/// use xbeam_chunk::ndarray::{arr1, ArrayD};
/// use xbeam_stats::{Fold, Need, Stat};
///
/// let stats = [Stat::Mean, Stat::Std, Stat::Count];
/// let mut fold = Fold::new(Need::of(&stats, true), 1, &[2]);
/// for step in [[1.0f32, f32::NAN], [2.0, 5.0], [3.0, 7.0]] {
///     fold.add(0, &[0], &arr1(&step).into_dyn().view());
/// }
/// let p = fold.into_partial();
/// assert_eq!(p.finalize(Stat::Mean, 0).into_raw_vec_and_offset().0, vec![2.0, 6.0]);
/// assert_eq!(p.finalize(Stat::Count, 0).into_raw_vec_and_offset().0, vec![3.0, 2.0]);
/// assert_eq!(p.finalize(Stat::Std, 0)[[0, 1]], 1.0);
/// ```
#[derive(Debug, Clone)]
pub struct Fold {
    need: Need,
    count: ArrayD<u32>,
    sum: Option<ArrayD<f64>>,
    shift: Option<ArrayD<f64>>,
    s1: Option<ArrayD<f64>>,
    s2: Option<ArrayD<f64>>,
    min: Option<ArrayD<f64>>,
    max: Option<ArrayD<f64>>,
    nan: Option<ArrayD<bool>>,
}

/// A view of `a` at `group`, over the box `origin .. origin + shape`.
fn region<'a, A>(
    a: &'a mut ArrayD<A>,
    group: usize,
    origin: &[usize],
    shape: &[usize],
) -> ArrayViewMutD<'a, A> {
    let mut v = a.index_axis_mut(Axis(0), group);
    v.slice_each_axis_inplace(|ax| {
        let i = ax.axis.index();
        Slice::from(origin[i]..origin[i] + shape[i])
    });
    v
}

impl Fold {
    /// Empty accumulators for `groups` groups of `elements` (a shape).
    pub fn new(need: Need, groups: usize, elements: &[usize]) -> Fold {
        let mut shape = vec![groups];
        shape.extend_from_slice(elements);
        let dim = IxDyn(&shape);
        let f = |on: bool, v: f64| on.then(|| ArrayD::from_elem(dim.clone(), v));
        Fold {
            need,
            count: ArrayD::zeros(dim.clone()),
            sum: f(need.sum, 0.0),
            shift: f(need.moments, 0.0),
            s1: f(need.moments, 0.0),
            s2: f(need.moments, 0.0),
            min: f(need.min, f64::INFINITY),
            max: f(need.max, f64::NEG_INFINITY),
            nan: need
                .propagate_nan
                .then(|| ArrayD::from_elem(dim.clone(), false)),
        }
    }

    /// The shape `[groups, elements...]`.
    pub fn shape(&self) -> &[usize] {
        self.count.shape()
    }

    /// Folds one step's `values` into `group`, at the box of elements that
    /// starts at `origin` (values' shape is the box's).
    ///
    /// # Panics
    /// If the box is outside the accumulators (a caller's bug).
    pub fn add<T: Value>(&mut self, group: usize, origin: &[usize], values: &ArrayViewD<'_, T>) {
        let shape = values.shape().to_vec();
        if let (Some(k), Some(s1), Some(s2)) = (&mut self.shift, &mut self.s1, &mut self.s2) {
            Zip::from(region(k, group, origin, &shape))
                .and(region(s1, group, origin, &shape))
                .and(region(s2, group, origin, &shape))
                .and(region(&mut self.count, group, origin, &shape))
                .and(values)
                .for_each(|k, s1, s2, c, &x| {
                    let x = x.value();
                    if !x.is_nan() {
                        if *c == 0 {
                            *k = x;
                        }
                        let d = x - *k;
                        *s1 += d;
                        *s2 += d * d;
                    }
                });
        }
        if let Some(m) = &mut self.min {
            Zip::from(region(m, group, origin, &shape))
                .and(values)
                .for_each(|m, &x| *m = m.min(x.value()));
        }
        if let Some(m) = &mut self.max {
            Zip::from(region(m, group, origin, &shape))
                .and(values)
                .for_each(|m, &x| *m = m.max(x.value()));
        }
        if let Some(n) = &mut self.nan {
            Zip::from(region(n, group, origin, &shape))
                .and(values)
                .for_each(|n, &x| *n |= x.value().is_nan());
        }
        let count = region(&mut self.count, group, origin, &shape);
        match &mut self.sum {
            Some(s) => Zip::from(count)
                .and(region(s, group, origin, &shape))
                .and(values)
                .for_each(|c, s, &x| {
                    let x = x.value();
                    let ok = !x.is_nan();
                    *c += u32::from(ok);
                    *s += if ok { x } else { 0.0 };
                }),
            None => Zip::from(count)
                .and(values)
                .for_each(|c, &x| *c += u32::from(!x.value().is_nan())),
        }
    }

    /// The accumulators as mergeable moments.
    pub fn into_partial(self) -> Partial {
        let n = self.count.mapv(f64::from);
        let (mean, m2) =
            match (self.shift, self.s1, self.s2) {
                (Some(k), Some(s1), Some(s2)) => {
                    let mut mean = k;
                    let mut m2 = s2;
                    Zip::from(&mut mean).and(&mut m2).and(&s1).and(&n).for_each(
                        |k, s2, &s1, &n| {
                            if n > 0.0 {
                                *k += s1 / n;
                                *s2 = (*s2 - s1 * s1 / n).max(0.0);
                            } else {
                                (*k, *s2) = (0.0, 0.0);
                            }
                        },
                    );
                    (Some(mean), Some(m2))
                }
                _ => (None, None),
            };
        Partial {
            need: self.need,
            w: None,
            n,
            sum: self.sum,
            mean,
            m2,
            min: self.min,
            max: self.max,
            nan: self.nan,
        }
    }
}

/// Mergeable per-element moments: counts, weight totals, weighted sums,
/// weighted means and squared deviations (Chan's merge), min and max.
#[derive(Debug, Clone)]
pub struct Partial {
    need: Need,
    n: ArrayD<f64>,
    /// Weight totals; `None` while unweighted (they are then `n`).
    w: Option<ArrayD<f64>>,
    sum: Option<ArrayD<f64>>,
    mean: Option<ArrayD<f64>>,
    m2: Option<ArrayD<f64>>,
    min: Option<ArrayD<f64>>,
    max: Option<ArrayD<f64>>,
    nan: Option<ArrayD<bool>>,
}

impl Partial {
    /// A partial from its unweighted parts (counts, or weight totals
    /// folded into them), for [`WindowStream`](crate::WindowStream).
    pub(crate) fn from_parts(
        need: Need,
        n: ArrayD<f64>,
        sum: Option<ArrayD<f64>>,
        (mean, m2): (Option<ArrayD<f64>>, Option<ArrayD<f64>>),
        nan: Option<ArrayD<bool>>,
    ) -> Partial {
        Partial {
            need,
            n,
            w: None,
            sum,
            mean,
            m2,
            min: None,
            max: None,
            nan,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        self.n.shape()
    }

    /// Merges every element along `axis` into one, in index order, each
    /// weighted by `weights[i]` (as xarray's `weighted(w)`: sums and means
    /// are `Σ w·x` and `Σ w·x / Σ w` over valid values).
    ///
    /// ```
    /// use xbeam_chunk::ndarray::arr2;
    /// use xbeam_stats::{Fold, Need, Stat};
    ///
    /// let mut fold = Fold::new(Need::of(&[Stat::Mean], true), 1, &[2]);
    /// fold.add(0, &[0], &arr2(&[[1.0f64, 3.0]]).into_dyn().index_axis(xbeam_chunk::ndarray::Axis(0), 0));
    /// let p = fold.into_partial().reduce_axis(1, Some(&[1.0, 3.0]))?;
    /// assert_eq!(p.finalize(Stat::Mean, 0)[[0]], 2.5);
    /// # Ok::<(), xbeam_stats::StatsError>(())
    /// ```
    pub fn reduce_axis(self, axis: usize, weights: Option<&[f64]>) -> Result<Partial, StatsError> {
        let len = self.n.shape().get(axis).copied().ok_or_else(|| {
            StatsError::Invalid(format!(
                "axis {axis} is out of range for {:?}",
                self.shape()
            ))
        })?;
        if let Some(w) = weights {
            if w.len() != len {
                return Err(StatsError::Invalid(format!(
                    "{} weights for an axis of length {len}",
                    w.len()
                )));
            }
        }
        let mut out_shape = self.n.shape().to_vec();
        out_shape.remove(axis);
        let dim = IxDyn(&out_shape);
        let f = |on: bool, v: f64| on.then(|| ArrayD::from_elem(dim.clone(), v));
        let mut out = Partial {
            need: self.need,
            n: ArrayD::zeros(dim.clone()),
            w: (weights.is_some() || self.w.is_some()).then(|| ArrayD::zeros(dim.clone())),
            sum: f(self.need.sum, 0.0),
            mean: f(self.need.moments, 0.0),
            m2: f(self.need.moments, 0.0),
            min: f(self.need.min, f64::INFINITY),
            max: f(self.need.max, f64::NEG_INFINITY),
            nan: self
                .need
                .propagate_nan
                .then(|| ArrayD::from_elem(dim.clone(), false)),
        };
        for i in 0..len {
            let weight = weights.map_or(1.0, |w| w[i]);
            out.merge_from(&self, axis, i, weight);
        }
        Ok(out)
    }

    /// Merges slice `i` along `axis` of `b`, weighted, into `self`.
    fn merge_from(&mut self, b: &Partial, axis: usize, i: usize, weight: f64) {
        let at = |a: &ArrayD<f64>| a.index_axis(Axis(axis), i).to_owned();
        let bn = b.n.index_axis(Axis(axis), i);
        let bw = b.w.as_ref().unwrap_or(&b.n).index_axis(Axis(axis), i);
        // unweighted, the weight totals are the counts: merged with them
        let wa = match &mut self.w {
            Some(w) => {
                self.n += &bn;
                w
            }
            None => &mut self.n,
        };
        if let (Some(m), Some(q), Some(bm), Some(bq)) =
            (&mut self.mean, &mut self.m2, &b.mean, &b.m2)
        {
            let (bm, bq) = (at(bm), at(bq));
            Zip::from(wa)
                .and(m)
                .and(q)
                .and(&bw)
                .and(&bm)
                .and(&bq)
                .for_each(|wa, ma, qa, &wb, &mb, &qb| {
                    let wb = wb * weight;
                    if wb == 0.0 {
                        return;
                    }
                    let w = *wa + wb;
                    if *wa == 0.0 {
                        (*ma, *qa) = (mb, qb * weight);
                    } else {
                        let d = mb - *ma;
                        *ma += d * wb / w;
                        *qa += qb * weight + d * d * *wa * wb / w;
                    }
                    *wa = w;
                });
        } else {
            Zip::from(wa)
                .and(&bw)
                .for_each(|wa, &wb| *wa += wb * weight);
        }
        if let (Some(s), Some(bs)) = (&mut self.sum, &b.sum) {
            Zip::from(s)
                .and(bs.index_axis(Axis(axis), i))
                .for_each(|s, &x| *s += x * weight);
        }
        if let (Some(m), Some(bm)) = (&mut self.min, &b.min) {
            Zip::from(m)
                .and(bm.index_axis(Axis(axis), i))
                .for_each(|m, &x| *m = m.min(x));
        }
        if let (Some(m), Some(bm)) = (&mut self.max, &b.max) {
            Zip::from(m)
                .and(bm.index_axis(Axis(axis), i))
                .for_each(|m, &x| *m = m.max(x));
        }
        if let (Some(n), Some(bn)) = (&mut self.nan, &b.nan) {
            Zip::from(n)
                .and(bn.index_axis(Axis(axis), i))
                .for_each(|n, &x| *n |= x);
        }
    }

    /// WeatherBench 2's smoothing over the day of year: each group becomes
    /// the weighted merge of its neighbours along one axis of the groups,
    /// with the triangular weights `1 - |j| / h` for offsets `|j| ≤ h`
    /// (`h = width / 2`; `width` odd, WeatherBench 2 uses 61), wrapping
    /// around the axis (the year's end). The groups (axis 0) are read as
    /// `[outer, days.len(), inner]`, smoothed along the middle axis, whose
    /// entries are the days `days` (0-based, increasing) of a circular
    /// axis of `period` days (absent days hold nothing). Means, sums, variances
    /// and standard deviations become the weighted ones (as xarray's
    /// `weighted(w).mean(...)` and `.std(...)`, ddof 0): weights are in
    /// the totals, so counts, min and max are not available afterwards.
    ///
    /// A triangle is two boxes of `h` days in a row, so this costs `O(len)`
    /// per element whatever the width; moments are merged as sums shifted
    /// by each element's overall mean, so nothing is lost to cancellation.
    /// It needs every day's accumulators at once; [`WindowStream`](crate::WindowStream)
    /// gives the same (to rounding) from two days' accumulators, and is
    /// what `xbeam climatology --window` runs; this is its reference.
    ///
    /// ```
    /// use xbeam_chunk::ndarray::arr1;
    /// use xbeam_stats::{Fold, Need, Stat};
    ///
    /// // 5 days, one value each; width 5 → weights 0.5, 1, 0.5 on days d-1, d, d+1
    /// let mut fold = Fold::new(Need::of(&[Stat::Mean], true), 5, &[1]);
    /// for (day, x) in [1.0f64, 2.0, 3.0, 4.0, 5.0].iter().enumerate() {
    ///     fold.add(day, &[0], &arr1(&[*x]).into_dyn().view());
    /// }
    /// let smooth = fold.into_partial().window(1, &[0, 1, 2, 3, 4], 5, 5)?;
    /// let mean = smooth.finalize(Stat::Mean, 0);
    /// assert_eq!(mean[[1, 0]], (0.5 * 1.0 + 2.0 + 0.5 * 3.0) / 2.0);
    /// assert_eq!(mean[[0, 0]], (0.5 * 5.0 + 1.0 + 0.5 * 2.0) / 2.0); // wraps
    /// # Ok::<(), xbeam_stats::StatsError>(())
    /// ```
    pub fn window(
        mut self,
        outer: usize,
        days: &[usize],
        period: usize,
        width: usize,
    ) -> Result<Partial, StatsError> {
        let len = days.len();
        if days.windows(2).any(|w| w[0] >= w[1]) || days.last().is_some_and(|&d| d >= period) {
            return Err(StatsError::Invalid(format!(
                "window days must increase within a period of {period}: found {days:?}"
            )));
        }
        let shape = self.n.shape().to_vec();
        let groups = shape.first().copied().unwrap_or(0);
        if width < 3 || width % 2 == 0 {
            return Err(StatsError::Invalid(format!(
                "a window must be an odd number of steps, at least 3: found {width}"
            )));
        }
        if outer == 0 || len == 0 || groups % (outer * len) != 0 {
            return Err(StatsError::Invalid(format!(
                "{groups} groups cannot be read as {outer} × {len} × inner"
            )));
        }
        if self.need.min || self.need.max || self.w.is_some() {
            return Err(StatsError::Invalid(
                "a window smooths means, sums, variances and standard deviations only".into(),
            ));
        }
        let inner = groups / (outer * len) * shape[1..].iter().product::<usize>();
        let h = width / 2;
        let dims = [outer, len, inner];
        // shift the moments by each element's overall mean
        let shift = self.shift_moments(dims);
        let mut arrays: Vec<&mut ArrayD<f64>> = vec![&mut self.n];
        arrays.extend(self.sum.as_mut());
        arrays.extend(self.mean.as_mut());
        arrays.extend(self.m2.as_mut());
        let mut box_ = Triangle::new(days, period, inner.min(TRIANGLE_BLOCK), h);
        for a in arrays {
            let a = a.as_slice_mut().expect("standard layout");
            for o in 0..outer {
                let rows = &mut a[o * len * inner..(o + 1) * len * inner];
                for i0 in (0..inner).step_by(TRIANGLE_BLOCK) {
                    box_.apply(rows, days, inner, i0..(i0 + TRIANGLE_BLOCK).min(inner));
                }
            }
        }
        if let Some(nan) = &mut self.nan {
            let mut n3 = nan
                .view_mut()
                .into_shape_with_order(IxDyn(&[outer, len, inner]))
                .expect("standard layout");
            let mut had = vec![false; period];
            for mut lane in n3.lanes_mut(Axis(1)) {
                had.fill(false);
                for (&d, &x) in days.iter().zip(lane.iter()) {
                    had[d] = x;
                }
                for (&d, x) in days.iter().zip(lane.iter_mut()) {
                    // the non-zero weights: offsets -(h-1) ..= h-1
                    *x = (0..2 * h - 1).any(|k| had[(d + period * h + k + 1 - h) % period]);
                }
            }
        }
        if let Some(c) = shift {
            self.unshift_moments(dims, &c);
        }
        Ok(self)
    }

    /// Turns means and squared deviations into sums shifted by each
    /// element's overall mean (returned): `n·(mean - c)` and
    /// `m2 + n·(mean - c)²`, which add up linearly.
    fn shift_moments(&mut self, dims: [usize; 3]) -> Option<Vec<f64>> {
        let inner = dims[2];
        let (n3, mut m3, mut q3) = moment_views(&self.n, &mut self.mean, &mut self.m2, dims)?;
        let mut c = vec![0.0f64; inner];
        let mut total = vec![0.0f64; inner];
        for ((&n, &m), i) in n3.iter().zip(m3.iter()).zip((0..inner).cycle()) {
            c[i] += n * m;
            total[i] += n;
        }
        for (c, t) in c.iter_mut().zip(&total) {
            *c = if *t > 0.0 { *c / t } else { 0.0 };
        }
        for ((m, q), (&n, i)) in m3
            .iter_mut()
            .zip(q3.iter_mut())
            .zip(n3.iter().zip((0..inner).cycle()))
        {
            let d = *m - c[i];
            *m = n * d;
            *q += n * d * d;
        }
        Some(c)
    }

    /// The inverse of [`shift_moments`](Self::shift_moments), with the
    /// weight totals now in `n`.
    fn unshift_moments(&mut self, dims: [usize; 3], c: &[f64]) {
        let inner = dims[2];
        let Some((n3, mut m3, mut q3)) = moment_views(&self.n, &mut self.mean, &mut self.m2, dims)
        else {
            return;
        };
        for ((m, q), (&w, i)) in m3
            .iter_mut()
            .zip(q3.iter_mut())
            .zip(n3.iter().zip((0..inner).cycle()))
        {
            if w > 0.0 {
                let a = *m;
                *m = c[i] + a / w;
                *q = (*q - a * a / w).max(0.0);
            } else {
                (*m, *q) = (0.0, 0.0);
            }
        }
    }

    /// The statistic of every element, as `f64` (NaN where there is no
    /// valid value, except counts and sums, which are 0 there as in
    /// xarray). `ddof` applies to var and std.
    ///
    /// # Panics
    /// If `stat` needs an accumulator this partial was not made with (see
    /// [`Need::of`]).
    pub fn finalize(&self, stat: Stat, ddof: u64) -> ArrayD<f64> {
        let need = |a: &Option<ArrayD<f64>>| -> ArrayD<f64> {
            a.clone()
                .unwrap_or_else(|| panic!("the partial was made without what {stat} needs"))
        };
        #[allow(clippy::cast_precision_loss)]
        let ddof = ddof as f64;
        let weights = self.w.as_ref().unwrap_or(&self.n);
        let mut out = match stat {
            Stat::Count => self.n.clone(),
            Stat::Sum => need(&self.sum),
            Stat::Mean => {
                let mut s = need(&self.sum);
                Zip::from(&mut s)
                    .and(weights)
                    .for_each(|s, &w| *s = if w > 0.0 { *s / w } else { f64::NAN });
                s
            }
            Stat::Var | Stat::Std => {
                let mut q = need(&self.m2);
                Zip::from(&mut q).and(weights).for_each(|q, &w| {
                    *q = if w > ddof { *q / (w - ddof) } else { f64::NAN };
                    if stat == Stat::Std {
                        *q = q.sqrt();
                    }
                });
                q
            }
            Stat::Min | Stat::Max => {
                let mut m = need(if stat == Stat::Min {
                    &self.min
                } else {
                    &self.max
                });
                Zip::from(&mut m)
                    .and(&self.n)
                    .for_each(|m, &n| *m = if n > 0.0 { *m } else { f64::NAN });
                m
            }
        };
        if let (Some(nan), true) = (&self.nan, stat != Stat::Count) {
            Zip::from(&mut out).and(nan).for_each(|o, &n| {
                if n {
                    *o = f64::NAN;
                }
            });
        }
        out
    }
}

/// Counts, means and squared deviations as 3-D views (`None` without
/// moments).
#[allow(clippy::type_complexity)]
fn moment_views<'a>(
    n: &'a ArrayD<f64>,
    mean: &'a mut Option<ArrayD<f64>>,
    m2: &'a mut Option<ArrayD<f64>>,
    dims: [usize; 3],
) -> Option<(
    ArrayViewD<'a, f64>,
    ArrayViewMutD<'a, f64>,
    ArrayViewMutD<'a, f64>,
)> {
    let (Some(mean), Some(m2)) = (mean, m2) else {
        return None;
    };
    let n3 = n
        .view()
        .into_shape_with_order(IxDyn(&dims))
        .expect("standard layout");
    Some((n3, as3(mean, dims), as3(m2, dims)))
}

/// `a` (in standard layout) as a 3-D view.
fn as3(a: &mut ArrayD<f64>, shape: [usize; 3]) -> ArrayViewMutD<'_, f64> {
    a.view_mut()
        .into_shape_with_order(IxDyn(&shape))
        .expect("standard layout")
}

/// Elements smoothed together by [`Triangle::apply`]: rows of this many
/// values keep its scratch small and its loops vectorized.
const TRIANGLE_BLOCK: usize = 256;

/// The circular convolution with the triangle `(h - |j|) / h` (`|j| < h`)
/// over a period, as two running box sums of `h` days, computed on whole
/// rows of elements at a time.
struct Triangle {
    h: usize,
    /// The input, dense over the period (absent days zero).
    x: Vec<f64>,
    /// The first box sums.
    b: Vec<f64>,
    /// The running sum.
    run: Vec<f64>,
    period: usize,
    /// Each day's neighbours (their positions among the days) and weights,
    /// when summing them is less work than running sums over the period
    /// (the choice depends only on the days, never on the data's chunking).
    pairs: Option<Vec<Vec<(usize, f64)>>>,
}

impl Triangle {
    /// For `days` (increasing) of a `period`, rows of up to `width`
    /// elements, and triangles of half-width `h`.
    fn new(days: &[usize], period: usize, width: usize, h: usize) -> Triangle {
        let weights = triangle_weights(period, h);
        let pairs: Vec<Vec<(usize, f64)>> = days
            .iter()
            .map(|&d| {
                days.iter()
                    .enumerate()
                    .map(|(m, &e)| (m, weights[(e + period - d) % period]))
                    .filter(|&(_, wt)| wt > 0.0)
                    .collect()
            })
            .collect();
        let direct = pairs.iter().map(Vec::len).sum::<usize>() < 6 * period;
        Triangle {
            h,
            x: vec![0.0; period * width],
            b: vec![0.0; period * width],
            run: vec![0.0; width],
            period,
            pairs: direct.then_some(pairs),
        }
    }

    /// Smooths elements `cols` of `rows` (`[days.len(), stride]`, row k
    /// holding day `days[k]`, the days given to [`Triangle::new`]) in
    /// place: by summing each day's neighbours, or by running sums over
    /// the whole period.
    fn apply(
        &mut self,
        rows: &mut [f64],
        days: &[usize],
        stride: usize,
        cols: std::ops::Range<usize>,
    ) {
        let (w, p, h) = (cols.len(), self.period, self.h);
        if let Some(pairs) = &self.pairs {
            let x = &mut self.x[..days.len() * w];
            for k in 0..days.len() {
                x[k * w..(k + 1) * w]
                    .copy_from_slice(&rows[k * stride + cols.start..k * stride + cols.end]);
            }
            for (k, near) in pairs.iter().enumerate() {
                let out = &mut rows[k * stride + cols.start..k * stride + cols.end];
                out.fill(0.0);
                for &(m, wt) in near {
                    add(out, &x[m * w..(m + 1) * w], wt);
                }
            }
            return;
        }
        let (x, b, run) = (
            &mut self.x[..p * w],
            &mut self.b[..p * w],
            &mut self.run[..w],
        );
        x.fill(0.0);
        for (k, &d) in days.iter().enumerate() {
            x[d * w..(d + 1) * w]
                .copy_from_slice(&rows[k * stride + cols.start..k * stride + cols.end]);
        }
        let row = |d: usize| -> std::ops::Range<usize> { (d % p) * w..(d % p) * w + w };
        // box 1: b[d] = Σ_{k<h} x[d + k]
        run.fill(0.0);
        for k in 0..h {
            add(run, &x[row(k)], 1.0);
        }
        for d in 0..p {
            if d > 0 {
                add(run, &x[row(d - 1 + h)], 1.0);
                add(run, &x[row(d - 1)], -1.0);
            }
            b[d * w..(d + 1) * w].copy_from_slice(run);
        }
        // box 2: t[d] = Σ_{k<h} b[d - k], kept at the days present
        run.fill(0.0);
        for k in 0..h {
            add(run, &b[row(p * h - k)], 1.0);
        }
        let mut next = days.iter().enumerate().peekable();
        for d in 0..p {
            if d > 0 {
                add(run, &b[row(d)], 1.0);
                add(run, &b[row(d + p * h - h)], -1.0);
            }
            if let Some((k, _)) = next.next_if(|(_, &day)| day == d) {
                let out = &mut rows[k * stride + cols.start..k * stride + cols.end];
                for (o, &r) in out.iter_mut().zip(run.iter()) {
                    *o = r / h as f64;
                }
            }
        }
    }
}

/// The weight of each circular offset of a period `p` under the triangle
/// of half-width `h` (offsets that wrap more than once around a short
/// period add up).
pub(crate) fn triangle_weights(p: usize, h: usize) -> Vec<f64> {
    let mut w = vec![0.0; p];
    for j in 0..2 * h - 1 {
        let off = j as i64 - (h as i64 - 1);
        w[off.rem_euclid(p as i64) as usize] += (h as i64 - off.abs()) as f64 / h as f64;
    }
    w
}

/// `acc += sign · x`, element by element.
fn add(acc: &mut [f64], x: &[f64], sign: f64) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a += sign * v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xbeam_chunk::ndarray::{Array1, Array2};

    /// 40 steps × 6 elements, NaN in some places, grouped in 3 by step % 3.
    fn data() -> Array2<f32> {
        Array2::from_shape_fn((40, 6), |(t, e)| {
            if (t * 7 + e) % 11 == 0 {
                f32::NAN
            } else {
                280.0 + ((t * 31 + e * 17) % 23) as f32 * 0.37 - e as f32
            }
        })
    }

    fn fold_all(stats: &[Stat], skipna: bool) -> Partial {
        let x = data();
        let mut fold = Fold::new(Need::of(stats, skipna), 3, &[6]);
        for (t, row) in x.outer_iter().enumerate() {
            // two boxes per step, to check boxes land where they say
            fold.add(
                t % 3,
                &[0],
                &row.slice_axis(Axis(0), Slice::from(..4)).into_dyn(),
            );
            fold.add(
                t % 3,
                &[4],
                &row.slice_axis(Axis(0), Slice::from(4..)).into_dyn(),
            );
        }
        fold.into_partial()
    }

    fn naive(g: usize, e: usize) -> Vec<f64> {
        let x = data();
        (0..40)
            .filter(|t| t % 3 == g)
            .map(|t| f64::from(x[[t, e]]))
            .filter(|v| !v.is_nan())
            .collect()
    }

    #[test]
    fn windows_match_a_naive_weighted_computation() {
        // groups: 2 (outer) × 7 days; step t falls in group (t % 2, t % 7)
        let x = data();
        for width in [3usize, 5, 9, 17] {
            let h = (width / 2) as f64;
            let stats = [Stat::Mean, Stat::Std, Stat::Sum];
            let mut fold = Fold::new(Need::of(&stats, true), 14, &[6]);
            for (t, row) in x.outer_iter().enumerate() {
                fold.add((t % 2) * 7 + t % 7, &[0], &row.into_dyn());
            }
            let p = fold
                .into_partial()
                .window(2, &[0, 1, 2, 3, 4, 5, 6], 7, width)
                .unwrap();
            let (mean, std, sum) = (
                p.finalize(Stat::Mean, 0),
                p.finalize(Stat::Std, 0),
                p.finalize(Stat::Sum, 0),
            );
            for (o, d, e) in
                (0..2).flat_map(|o| (0..7).flat_map(move |d| (0..6).map(move |e| (o, d, e))))
            {
                // (weight, value) of every value in the window
                let mut wx = Vec::new();
                for t in 0..40 {
                    let off = ((t % 7) as i64 - d as i64 + 7 + 3) % 7 - 3; // in -3..=3
                    let w = (1.0 - (off.abs() as f64) / h).max(0.0);
                    let v = f64::from(x[[t, e]]);
                    // offsets wrap: with a width over 7 days, every offset
                    // j ≡ off (mod 7) of the triangle adds its weight
                    let w: f64 = if width > 7 {
                        (-(width as i64)..=width as i64)
                            .filter(|j| (j - off).rem_euclid(7) == 0)
                            .map(|j| (1.0 - (j.abs() as f64) / h).max(0.0))
                            .sum()
                    } else {
                        w
                    };
                    if t % 2 == o && !v.is_nan() && w > 0.0 {
                        wx.push((w, v));
                    }
                }
                let tw: f64 = wx.iter().map(|p| p.0).sum();
                let m = wx.iter().map(|p| p.0 * p.1).sum::<f64>() / tw;
                let var = wx.iter().map(|p| p.0 * (p.1 - m).powi(2)).sum::<f64>() / tw;
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
                let g = o * 7 + d;
                assert!(
                    close(mean[[g, e]], m),
                    "width {width} mean {g} {e}: {} vs {m}",
                    mean[[g, e]]
                );
                assert!(close(std[[g, e]], var.sqrt()), "width {width} std {g} {e}");
                assert!(close(sum[[g, e]], m * tw), "width {width} sum {g} {e}");
            }
        }
        let p = fold_all(&[Stat::Mean], true);
        assert!(p.clone().window(1, &[0, 1, 2], 3, 4).is_err());
        assert!(p.clone().window(2, &[0, 1, 2], 3, 5).is_err());
        assert!(p.clone().window(1, &[0, 2, 1], 3, 5).is_err());
        assert!(fold_all(&[Stat::Max], true)
            .window(1, &[0, 1, 2], 3, 5)
            .is_err());
        // absent days hold nothing: days 0, 2, 5 of 9 equal a dense run
        // whose other days are empty
        let sparse = fold_all(&[Stat::Mean, Stat::Var], true)
            .window(1, &[0, 2, 5], 9, 7)
            .unwrap();
        let mut dense = Fold::new(Need::of(&[Stat::Mean, Stat::Var], true), 9, &[6]);
        for (t, row) in data().outer_iter().enumerate() {
            dense.add([0, 2, 5][t % 3], &[0], &row.into_dyn());
        }
        let dense = dense
            .into_partial()
            .window(1, &(0..9).collect::<Vec<_>>(), 9, 7)
            .unwrap();
        for (i, d) in [0, 2, 5].into_iter().enumerate() {
            for stat in [Stat::Mean, Stat::Var] {
                let (a, b) = (sparse.finalize(stat, 0), dense.finalize(stat, 0));
                for e in 0..6 {
                    assert!((a[[i, e]] - b[[d, e]]).abs() < 1e-9, "{stat} day {d}");
                }
            }
        }
    }

    #[test]
    fn every_statistic_matches_a_naive_computation() {
        let p = fold_all(&Stat::ALL, true);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        for stat in Stat::ALL {
            let out = p.finalize(stat, 1);
            for g in 0..3 {
                for e in 0..6 {
                    let v = naive(g, e);
                    let n = v.len() as f64;
                    let mean = v.iter().sum::<f64>() / n;
                    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
                    let want = match stat {
                        Stat::Count => n,
                        Stat::Sum => v.iter().sum(),
                        Stat::Mean => mean,
                        Stat::Var => var,
                        Stat::Std => var.sqrt(),
                        Stat::Min => v.iter().copied().fold(f64::INFINITY, f64::min),
                        Stat::Max => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    };
                    assert!(
                        close(out[[g, e]], want),
                        "{stat} g{g} e{e}: {} vs {want}",
                        out[[g, e]]
                    );
                }
            }
        }
    }

    #[test]
    fn weighted_merges_match_the_weighted_formulas() {
        let p = fold_all(&[Stat::Mean, Stat::Var, Stat::Sum], true);
        let w = [1.0, 0.5, 2.0, 0.25, 1.5, 3.0];
        let r = p.reduce_axis(1, Some(&w)).unwrap();
        assert_eq!(r.shape(), &[3]);
        for g in 0..3 {
            let pairs: Vec<(f64, f64)> = (0..6)
                .flat_map(|e| naive(g, e).into_iter().map(move |x| (x, w[e])))
                .collect();
            let sw: f64 = pairs.iter().map(|p| p.1).sum();
            let mean = pairs.iter().map(|(x, w)| x * w).sum::<f64>() / sw;
            let var = pairs
                .iter()
                .map(|(x, w)| w * (x - mean).powi(2))
                .sum::<f64>()
                / sw;
            let sum: f64 = pairs.iter().map(|(x, w)| x * w).sum();
            assert!((r.finalize(Stat::Mean, 0)[[g]] - mean).abs() < 1e-9);
            assert!((r.finalize(Stat::Var, 0)[[g]] - var).abs() < 1e-9);
            assert!((r.finalize(Stat::Sum, 0)[[g]] - sum).abs() < 1e-6);
        }
    }

    #[test]
    fn merging_is_the_same_whatever_the_fold_split_elementwise() {
        // folding elements in separate folds and in one gives identical bits
        let x = data();
        let stats = [Stat::Mean, Stat::Std, Stat::Min];
        let mut one = Fold::new(Need::of(&stats, true), 1, &[6]);
        let mut halves = [
            Fold::new(Need::of(&stats, true), 1, &[3]),
            Fold::new(Need::of(&stats, true), 1, &[3]),
        ];
        for row in x.outer_iter() {
            one.add(0, &[0], &row.into_dyn());
            halves[0].add(
                0,
                &[0],
                &row.slice_axis(Axis(0), Slice::from(..3)).into_dyn(),
            );
            halves[1].add(
                0,
                &[0],
                &row.slice_axis(Axis(0), Slice::from(3..)).into_dyn(),
            );
        }
        let one = one.into_partial();
        let [a, b] = halves.map(Fold::into_partial);
        for stat in stats {
            let whole = one.finalize(stat, 0);
            let (pa, pb) = (a.finalize(stat, 0), b.finalize(stat, 0));
            for e in 0..6 {
                let part = if e < 3 { pa[[0, e]] } else { pb[[0, e - 3]] };
                assert_eq!(whole[[0, e]].to_bits(), part.to_bits());
            }
        }
    }

    #[test]
    fn skipna_false_makes_any_nan_a_nan_but_counts_stay() {
        let p = fold_all(&[Stat::Mean, Stat::Max, Stat::Count], false);
        let x = data();
        for e in 0..6 {
            let has_nan = (0..40).any(|t| t % 3 == 0 && x[[t, e]].is_nan());
            assert_eq!(p.finalize(Stat::Mean, 0)[[0, e]].is_nan(), has_nan);
            assert_eq!(p.finalize(Stat::Max, 0)[[0, e]].is_nan(), has_nan);
            assert!(!p.finalize(Stat::Count, 0)[[0, e]].is_nan());
        }
    }

    #[test]
    fn empty_groups_give_nan_and_zero_counts_and_sums() {
        let mut fold = Fold::new(Need::of(&Stat::ALL, true), 2, &[1]);
        fold.add(0, &[0], &Array1::from(vec![f64::NAN]).into_dyn().view());
        let p = fold.into_partial();
        for g in 0..2 {
            assert_eq!(p.finalize(Stat::Count, 0)[[g, 0]], 0.0);
            assert_eq!(p.finalize(Stat::Sum, 0)[[g, 0]], 0.0);
            for s in [Stat::Mean, Stat::Var, Stat::Std, Stat::Min, Stat::Max] {
                assert!(p.finalize(s, 0)[[g, 0]].is_nan(), "{s}");
            }
        }
        assert!(p.clone().reduce_axis(5, None).is_err());
        assert!(p.reduce_axis(1, Some(&[1.0, 2.0])).is_err());
    }
}
