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

/// The `q`-quantile of values with weights, as xarray's
/// `weighted(...).quantile(q)` with its default `method="linear"`
/// (Akinshin's weighted form of numpy's linear quantile): the weights are
/// normalized, Kish's effective sample size `n = (Σw)² / Σw²` takes the
/// place of the count, and the quantile is the values' weighted average
/// over the cumulative weights from `(h - 1) / n` to `h / n`, where
/// `h = (n - 1) q + 1`. `sorted` holds `(value, weight)` pairs sorted by
/// value, every weight positive and no value NaN; none gives NaN. With
/// equal weights it is [`quantile_sorted`].
///
/// ```
/// use xbeam_stats::{quantile_sorted, weighted_quantile_sorted};
///
/// let x = [1.0, 2.0, 3.0, 4.0];
/// let even: Vec<(f64, f64)> = x.iter().map(|&v| (v, 0.5)).collect();
/// assert!((weighted_quantile_sorted(&even, 0.3) - quantile_sorted(&x, 0.3)).abs() < 1e-12);
/// // a heavy value pulls the median towards it
/// let heavy = [(1.0, 1.0), (2.0, 1.0), (3.0, 4.0)];
/// assert!(weighted_quantile_sorted(&heavy, 0.5) > 2.0);
/// assert!(weighted_quantile_sorted(&[], 0.5).is_nan());
/// ```
pub fn weighted_quantile_sorted(sorted: &[(f64, f64)], q: f64) -> f64 {
    let (sum, squares) = sorted
        .iter()
        .fold((0.0, 0.0), |(s, s2), &(_, w)| (s + w, s2 + w * w));
    let mut cum = Vec::with_capacity(sorted.len());
    cumulate(sorted.iter().map(|p| p.1), sum, &mut cum);
    quantile_at(&cum, |i| sorted[i].0, (sum, squares), q)
}

/// The normalized cumulative weights (`cum[i]`: the weights up to and
/// including value `i`, over their `sum`), as xarray sums them.
fn cumulate(weights: impl ExactSizeIterator<Item = f64>, sum: f64, cum: &mut Vec<f64>) {
    // sized first: no push (and no spill of the running sum) in the loop
    cum.clear();
    cum.resize(weights.len(), 0.0);
    let mut c = 0.0;
    for (slot, w) in cum.iter_mut().zip(weights) {
        c += w / sum;
        *slot = c;
    }
}

/// [`weighted_quantile_sorted`] from the cumulative weights `cum` of
/// values `x(i)` in value order, given the weights' sum and sum of squares.
/// Values whose cumulative weights lie below `(h - 1) / n` or past the
/// first above `h / n` add nothing (exactly 0), so the sum starts and ends
/// there; unless a value is infinite (an end of the sorted values), when
/// every term is summed, as xarray does, and `inf × 0` makes it NaN.
fn quantile_at(cum: &[f64], x: impl Fn(usize) -> f64, (sum, squares): (f64, f64), q: f64) -> f64 {
    if sum <= 0.0 || cum.is_empty() {
        return f64::NAN;
    }
    let finite = x(0).is_finite() && x(cum.len() - 1).is_finite();
    let n = sum * sum / squares;
    let h = (n - 1.0) * q + 1.0;
    let (lo, hi) = ((h - 1.0) / n, h / n);
    let v = |c: f64| lo.max(hi.min(c)) * n - h + 1.0;
    let first = if finite {
        cum.partition_point(|&c| c <= lo)
    } else {
        0
    };
    let mut before = v(if first == 0 { 0.0 } else { cum[first - 1] });
    let mut out = 0.0;
    for (i, &c) in cum.iter().enumerate().skip(first) {
        let after = v(c);
        out += x(i) * (after - before);
        before = after;
        if c > hi && finite {
            break;
        }
    }
    out
}

/// WeatherBench 2's window over the days of the year, for
/// [`Values::window_quantiles`]: groups laid out `[outer, days, inner]`
/// (hour × day of year), each day merging the days around it, wrapping
/// around the year's end, with triangular weights `(h - |j|) / h` for
/// `|j| < h = width / 2` (the weights' scale does not change a quantile).
#[derive(Debug, Clone)]
pub struct DayWindow {
    /// Groups before the day axis.
    pub outer: usize,
    /// Groups after the day axis.
    pub inner: usize,
    /// Each day label's day of the year, from 0.
    pub days: Vec<usize>,
    /// The days of the year the window wraps around (366, 365 or 360).
    pub period: usize,
    /// The window's width in days (odd).
    pub width: usize,
}

impl DayWindow {
    /// The day labels the window of day label `at` takes, with their
    /// weights (positive), from each circular offset's weight `weights`
    /// (see [`triangle_weights`](crate::fold::triangle_weights)).
    fn sources(&self, at: usize, weights: &[f64]) -> Vec<(usize, f64)> {
        let p = self.period as i64;
        let centre = self.days[at] as i64;
        self.days
            .iter()
            .enumerate()
            .filter_map(|(j, &d)| {
                let w = weights[(d as i64 - centre).rem_euclid(p) as usize];
                (w > 0.0).then_some((j, w))
            })
            .collect()
    }
}

/// Each element's position among the kept axes (row-major over them) and
/// the kept shape.
fn kept_map(elements: &[usize], keep: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let kept_shape: Vec<usize> = keep.iter().map(|&a| elements[a]).collect();
    let mut kmap = Vec::with_capacity(elements.iter().product());
    for ix in xbeam_chunk::ndarray::indices(IxDyn(elements)) {
        let mut k = 0;
        for &a in keep {
            k = k * elements[a] + ix[a];
        }
        kmap.push(k);
    }
    (kmap, kept_shape)
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
        let (kmap, kept_shape) = kept_map(&self.elements, keep);
        let nkept: usize = kept_shape.iter().product();
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

    /// WeatherBench 2's windowed quantiles (`compute_hourly_stat` with
    /// `x.weighted(window).quantile(q, dim=["window", "year"])`): for each
    /// group, the values of the groups of the days its `window` takes,
    /// each weighted by its day's weight, and over the element axes not in
    /// `keep`; see [`weighted_quantile_sorted`]. Shape `[groups, q, kept
    /// axes...]`; NaN values are skipped (`skipna`) or make the result
    /// NaN; no values give NaN.
    ///
    /// # Panics
    /// If the groups are not `window.outer × window.days × window.inner`.
    ///
    /// ```
    /// use xbeam_chunk::ndarray::arr1;
    /// use xbeam_stats::{weighted_quantile_sorted, DayWindow, Values};
    ///
    /// // 3 days of one step each, over 1 element; a 5-day window (h = 2)
    /// // gives the neighbours weight 1/2
    /// let mut v = Values::new(&[1, 1, 1], &[1]);
    /// for (day, x) in [1.0f64, 2.0, 10.0].iter().enumerate() {
    ///     v.add(day, 0, &[0], &arr1(&[*x]).into_dyn().view());
    /// }
    /// let w = DayWindow { outer: 1, inner: 1, days: vec![0, 1, 2], period: 365, width: 5 };
    /// let q = v.window_quantiles(&[0.5], &[0], true, &w);
    /// let all = [(1.0, 0.5), (2.0, 1.0), (10.0, 0.5)];
    /// assert_eq!(q[[1, 0, 0]], weighted_quantile_sorted(&all, 0.5));
    /// // day 0 takes days 0 and 1 only (the year's last day has no value)
    /// let first = [(1.0, 1.0), (2.0, 0.5)];
    /// assert_eq!(q[[0, 0, 0]], weighted_quantile_sorted(&first, 0.5));
    /// ```
    pub fn window_quantiles(
        &self,
        q: &[f64],
        keep: &[usize],
        skipna: bool,
        window: &DayWindow,
    ) -> ArrayD<f64> {
        let ndays = window.days.len();
        assert_eq!(
            window.outer * ndays * window.inner,
            self.groups.len(),
            "the window's groups"
        );
        let n: usize = self.elements.iter().product();
        let (kmap, kept_shape) = kept_map(&self.elements, keep);
        let nkept: usize = kept_shape.iter().product();
        // the elements merged into each kept position
        let mut members = vec![Vec::new(); nkept];
        for (e, &k) in kmap.iter().enumerate() {
            members[k].push(e);
        }
        let mut shape = vec![self.groups.len(), q.len()];
        shape.extend_from_slice(&kept_shape);
        let mut out = ArrayD::from_elem(IxDyn(&shape), f64::NAN);
        let flat = out.as_slice_mut().expect("standard layout");
        let weights = crate::fold::triangle_weights(window.period, window.width / 2);
        let sources: Vec<Vec<(usize, f64)>> =
            (0..ndays).map(|d| window.sources(d, &weights)).collect();
        let mut slide = Slide::new(ndays);
        for o in 0..window.outer {
            for i in 0..window.inner {
                let groups: Vec<&[f64]> = (0..ndays)
                    .map(|d| self.groups[(o * ndays + d) * window.inner + i].as_slice())
                    .collect();
                for (k, members) in members.iter().enumerate() {
                    slide.load(&groups, n, members);
                    for (d, from) in sources.iter().enumerate() {
                        let (sums, saw_nan) = slide.move_to(from);
                        let g = (o * ndays + d) * window.inner + i;
                        let nan = !skipna && saw_nan;
                        if !nan {
                            slide.cumulate(sums.0);
                        }
                        for (l, &level) in q.iter().enumerate() {
                            flat[(g * q.len() + l) * nkept + k] = if nan {
                                f64::NAN
                            } else {
                                slide.quantile(sums, level)
                            };
                        }
                    }
                }
            }
        }
        out
    }
}

/// One hour and kept element's values, day by day (each day's sorted),
/// and the window's values in order as it slides from day to day: a day
/// leaving is filtered out and a day entering merged in, so a step costs
/// the window's length rather than a sort of it.
struct Slide {
    /// Every day's values, sorted within a day: day `d`'s are
    /// `values[start[d]..start[d + 1]]`.
    values: Vec<f64>,
    start: Vec<usize>,
    /// Whether day `d` saw a NaN, and its values counted.
    nan: Vec<bool>,
    count: Vec<f64>,
    /// Each day's weight in the current window (0: not in it).
    weight: Vec<f64>,
    /// The days of the current window.
    taken: Vec<(usize, f64)>,
    /// The window's values in order, with their day.
    window: Vec<(f64, u32)>,
    merged: Vec<(f64, u32)>,
    entering: Vec<(f64, u32)>,
    /// The window's cumulative weights (see [`cumulate`]).
    cum: Vec<f64>,
}

impl Slide {
    fn new(ndays: usize) -> Slide {
        Slide {
            values: Vec::new(),
            start: Vec::with_capacity(ndays + 1),
            nan: Vec::with_capacity(ndays),
            count: Vec::with_capacity(ndays),
            weight: vec![0.0; ndays],
            taken: Vec::new(),
            window: Vec::new(),
            merged: Vec::new(),
            entering: Vec::new(),
            cum: Vec::new(),
        }
    }

    /// Loads the values of `members` (elements, each `n` apart per slot)
    /// from each day's group, and empties the window.
    fn load(&mut self, groups: &[&[f64]], n: usize, members: &[usize]) {
        self.values.clear();
        self.start.clear();
        self.nan.clear();
        self.count.clear();
        for group in groups {
            let from = self.values.len();
            self.start.push(from);
            let mut nan = false;
            for slot in group.chunks_exact(n) {
                for &e in members {
                    let x = slot[e];
                    if x.is_nan() {
                        nan = true;
                    } else {
                        self.values.push(x);
                    }
                }
            }
            self.values[from..].sort_unstable_by(f64::total_cmp);
            self.nan.push(nan);
            #[allow(clippy::cast_precision_loss)]
            self.count.push((self.values.len() - from) as f64);
        }
        self.start.push(self.values.len());
        for &(d, _) in &self.taken {
            self.weight[d] = 0.0;
        }
        self.taken.clear();
        self.window.clear();
    }

    /// Moves the window to the days `to` (with their weights); returns the
    /// weights' sum and sum of squares over its values, and whether any
    /// of its days saw a NaN.
    fn move_to(&mut self, to: &[(usize, f64)]) -> ((f64, f64), bool) {
        let entered = |d: usize, weight: &[f64]| weight[d] == 0.0;
        self.entering.clear();
        for &(d, _) in to {
            if entered(d, &self.weight) {
                let days = &self.values[self.start[d]..self.start[d + 1]];
                #[allow(clippy::cast_possible_truncation)]
                self.entering.extend(days.iter().map(|&x| (x, d as u32)));
            }
        }
        for &(d, _) in &self.taken {
            self.weight[d] = 0.0;
        }
        for &(d, w) in to {
            self.weight[d] = w;
        }
        self.taken.clear();
        self.taken.extend_from_slice(to);
        let weight = &self.weight;
        self.window.retain(|&(_, d)| weight[d as usize] > 0.0);
        if !self.entering.is_empty() {
            self.entering.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
            self.merged.clear();
            let (mut a, mut b) = (
                self.window.iter().peekable(),
                self.entering.iter().peekable(),
            );
            while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
                if x.0.total_cmp(&y.0).is_le() {
                    self.merged.push(*a.next().expect("peeked"));
                } else {
                    self.merged.push(*b.next().expect("peeked"));
                }
            }
            self.merged.extend(a);
            self.merged.extend(b);
            std::mem::swap(&mut self.window, &mut self.merged);
        }
        self.sums(to)
    }

    /// The weights' sum and sum of squares over the values of days `to`,
    /// and whether any of them saw a NaN. Kept out of line: inlined, its
    /// running sums were spilled to the stack.
    #[inline(never)]
    fn sums(&self, to: &[(usize, f64)]) -> ((f64, f64), bool) {
        let (mut sum, mut squares, mut nan) = (0.0, 0.0, false);
        for &(d, w) in to {
            let count = self.count[d];
            sum += count * w;
            squares += count * w * w;
            nan |= self.nan[d];
        }
        ((sum, squares), nan)
    }

    /// The window's cumulative weights in value order, over `sum`.
    fn cumulate(&mut self, sum: f64) {
        let weight = &self.weight;
        let weights = self.window.iter().map(|&(_, d)| weight[d as usize]);
        cumulate(weights, sum, &mut self.cum);
    }

    /// The window's `q`-quantile (after [`Slide::cumulate`]).
    fn quantile(&self, sums: (f64, f64), q: f64) -> f64 {
        quantile_at(&self.cum, |i| self.window[i].0, sums, q)
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
    fn weighted_quantiles_match_xarray() {
        // xr.DataArray(x).weighted(xr.DataArray(w)).quantile(q) (xarray
        // 2026.9): the lowest level is not the smallest value
        let x = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let w = [0.5, 1.0, 2.0, 0.25, 1.0, 3.0, 0.75, 1.5];
        let mut pairs: Vec<(f64, f64)> = x.into_iter().zip(w).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let want = [
            1.310_344_827_586_206_9,
            2.182_758_620_689_655,
            3.75,
            5.0,
            9.0,
            9.0,
        ];
        for (q, w) in [0.0, 0.1, 0.25, 0.5, 0.9, 1.0].into_iter().zip(want) {
            let got = weighted_quantile_sorted(&pairs, q);
            assert!((got - w).abs() < 1e-12, "q {q}: {got} vs {w}");
        }
        // one value, any weight
        assert_eq!(weighted_quantile_sorted(&[(7.0, 0.3)], 0.9), 7.0);
    }

    /// xarray's `_weighted_quantile_1d` term by term: every value's term
    /// summed, none skipped.
    fn every_term(sorted: &[(f64, f64)], q: f64) -> f64 {
        let (sum, squares) = sorted
            .iter()
            .fold((0.0, 0.0), |(s, s2), &(_, w)| (s + w, s2 + w * w));
        let n = sum * sum / squares;
        let h = (n - 1.0) * q + 1.0;
        let v = |c: f64| ((h - 1.0) / n).max((h / n).min(c)) * n - h + 1.0;
        let (mut c, mut before, mut out) = (0.0, v(0.0), 0.0);
        for &(x, w) in sorted {
            c += w / sum;
            let after = v(c);
            out += x * (after - before);
            before = after;
        }
        out
    }

    #[test]
    fn skipping_the_terms_outside_the_quantile_changes_no_bit() {
        // ties, equal weights (cumulative weights landing on the bounds),
        // uneven ones, and the levels' ends
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as f64 / f64::from(1u32 << 31)
        };
        for case in 0..200 {
            let n = 1 + case % 23;
            let mut pairs: Vec<(f64, f64)> = (0..n)
                .map(|_| {
                    let x = (next() * 8.0).floor() - 3.0;
                    let w = if case % 3 == 0 { 0.25 } else { 0.05 + next() };
                    (x, w)
                })
                .collect();
            pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
            for q in [
                0.0,
                1e-9,
                0.1,
                0.25,
                0.5,
                0.75,
                0.9,
                1.0 - 1e-9,
                1.0,
                next(),
            ] {
                let (got, want) = (weighted_quantile_sorted(&pairs, q), every_term(&pairs, q));
                assert_eq!(got.to_bits(), want.to_bits(), "{pairs:?} q {q}");
            }
        }
        // an infinite value past the quantile's terms, or before them:
        // NaN, as xarray (inf × 0 in a term it sums)
        let high = [(1.0, 1.0), (2.0, 1.0), (3.0, 1.0), (f64::INFINITY, 0.5)];
        let low = [(f64::NEG_INFINITY, 0.5), (1.0, 1.0), (2.0, 1.0), (3.0, 1.0)];
        for (pairs, q) in [(&high, 0.3), (&low, 0.8)] {
            assert!(every_term(pairs, q).is_nan());
            assert!(
                weighted_quantile_sorted(pairs, q).is_nan(),
                "{pairs:?} q {q}"
            );
        }
    }

    #[test]
    fn window_quantiles_take_the_days_around_wrapping_at_the_years_end() {
        // 2 hours × 6 days (of a 6-day year) × 1, 2 steps a group, 2
        // elements of which the second is merged; a 5-day window (h = 2):
        // each day takes itself (weight 1) and its two neighbours (1/2)
        let (hours, ndays) = (2, 6);
        let x =
            |h: usize, d: usize, s: usize, e: usize| ((h * 31 + d * 7 + s * 5 + e * 3) % 17) as f64;
        let mut v = Values::new(&vec![2; hours * ndays], &[2]);
        for h in 0..hours {
            for d in 0..ndays {
                for s in 0..2 {
                    let step = xbeam_chunk::ndarray::arr1(&[x(h, d, s, 0), x(h, d, s, 1)]);
                    v.add(h * ndays + d, s, &[0], &step.into_dyn().view());
                }
            }
        }
        let window = DayWindow {
            outer: hours,
            inner: 1,
            days: (0..ndays).collect(),
            period: ndays,
            width: 5,
        };
        let q = [0.2, 0.5];
        let got = v.window_quantiles(&q, &[], true, &window);
        assert_eq!(got.shape(), &[hours * ndays, 2]);
        for h in 0..hours {
            for d in 0..ndays {
                let mut pairs = Vec::new();
                for (j, w) in [(d + ndays - 1, 0.5), (d, 1.0), (d + 1, 0.5)] {
                    for s in 0..2 {
                        for e in 0..2 {
                            pairs.push((x(h, j % ndays, s, e), w));
                        }
                    }
                }
                pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
                for (l, &level) in q.iter().enumerate() {
                    let want = weighted_quantile_sorted(&pairs, level);
                    assert_eq!(got[[h * ndays + d, l]], want, "hour {h} day {d} q {level}");
                }
            }
        }
        // a NaN in day 0 of hour 0: skipped, or NaN where the window takes it
        v.add(
            0,
            0,
            &[0],
            &xbeam_chunk::ndarray::arr1(&[f64::NAN, 1.0])
                .into_dyn()
                .view(),
        );
        let skip = v.window_quantiles(&q, &[0], true, &window);
        let keep = v.window_quantiles(&q, &[0], false, &window);
        assert!(skip[[0, 0, 0]].is_finite());
        for d in 0..ndays {
            let takes_day0 = d == 0 || d == 1 || d == ndays - 1;
            assert_eq!(keep[[d, 0, 0]].is_nan(), takes_day0, "day {d}");
            assert!(keep[[d, 0, 1]].is_finite());
        }
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
