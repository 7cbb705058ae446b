//! WeatherBench 2's window over the day of the year, streamed: the
//! smoothed result of each day is made from two running sums as the days
//! go by, so memory holds two days' accumulators instead of a whole
//! year's (see [`WindowStream`]).

use xbeam_chunk::ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::{Need, Partial, Stat, StatsError, Value};

/// One running sum's accumulators, per (group, element), flat.
#[derive(Debug, Clone)]
struct Acc {
    /// Weight totals (integers: the weights are).
    n: Vec<f64>,
    sum: Option<Vec<f64>>,
    /// Weighted sums of values less the element's shift, and of their squares.
    s1: Option<Vec<f64>>,
    s2: Option<Vec<f64>>,
    /// Weighted counts of NaN (`skipna=false`).
    nan: Option<Vec<f64>>,
}

impl Acc {
    fn new(need: Need, len: usize) -> Acc {
        Acc {
            n: vec![0.0; len],
            nan: need.propagate_nan.then(|| vec![0.0; len]),
            ..Acc::without_counts(need, len)
        }
    }

    /// Sums and moments only: no weight totals nor NaN counts (empty, see
    /// [`DaySums`]).
    fn without_counts(need: Need, len: usize) -> Acc {
        let f = |on: bool| on.then(|| vec![0.0; len]);
        Acc {
            n: Vec::new(),
            sum: f(need.sum),
            s1: f(need.moments),
            s2: f(need.moments),
            nan: None,
        }
    }

    /// Makes the `len` weight totals and NaN counts (if `need` has them)
    /// of sums made [`without_counts`](Acc::without_counts), zero.
    fn add_counts_of(&mut self, need: Need, len: usize) {
        self.n = vec![0.0; len];
        self.nan = need.propagate_nan.then(|| vec![0.0; len]);
    }

    /// The accumulators, in a fixed order.
    fn parts(&self) -> impl Iterator<Item = &Vec<f64>> {
        std::iter::once(&self.n).chain(
            [&self.sum, &self.s1, &self.s2, &self.nan]
                .into_iter()
                .flatten(),
        )
    }

    /// [`parts`](Acc::parts), to change.
    fn parts_mut(&mut self) -> impl Iterator<Item = &mut Vec<f64>> {
        std::iter::once(&mut self.n).chain(
            [&mut self.sum, &mut self.s1, &mut self.s2, &mut self.nan]
                .into_iter()
                .flatten(),
        )
    }

    /// Adds `weight ×` the accumulators of `other` (made with the same
    /// need) at `range`.
    fn merge(&mut self, range: std::ops::Range<usize>, other: &Acc, weight: f64) {
        if let (Some(s), Some(o)) = (&mut self.sum, &other.sum) {
            // weight totals and sums in one pass (what means need)
            let (n, on) = (&mut self.n[range.clone()], &other.n[range.clone()]);
            for (((n, s), &on), &o) in n
                .iter_mut()
                .zip(s[range.clone()].iter_mut())
                .zip(on)
                .zip(&o[range.clone()])
            {
                *n += weight * on;
                *s += weight * o;
            }
            for (a, b) in self.parts_mut().zip(other.parts()).skip(2) {
                add_scaled(&mut a[range.clone()], &b[range.clone()], weight);
            }
            return;
        }
        for (a, b) in self.parts_mut().zip(other.parts()) {
            add_scaled(&mut a[range.clone()], &b[range.clone()], weight);
        }
    }

    /// The sums and moments of [`add`](Acc::add) alone (not the weight
    /// totals nor the NaN counts); returns whether a value was NaN (an
    /// infinite one may count too, which only costs the caller
    /// per-element totals).
    fn add_values<T: Value>(
        &mut self,
        range: std::ops::Range<usize>,
        x: &[T],
        shift: &mut [f64],
        weight: f64,
    ) -> bool {
        let mut bad = false;
        if let Some(s) = &mut self.sum {
            let mut nan = 0u8;
            for (s, x) in s[range.clone()].iter_mut().zip(x) {
                let v = x.value();
                nan |= u8::from(v.is_nan());
                *s += if v.is_nan() { 0.0 } else { weight * v };
            }
            bad = nan != 0;
        }
        let moments = self.add_moments(range, x, shift, weight);
        match moments {
            Some(nan) => bad || nan,
            None if self.sum.is_some() => bad,
            None => x.iter().any(|x| x.value().is_nan()),
        }
    }

    /// The moments of [`add`](Acc::add); whether a value was NaN, or
    /// `None` without moments.
    fn add_moments<T: Value>(
        &mut self,
        range: std::ops::Range<usize>,
        x: &[T],
        shift: &mut [f64],
        weight: f64,
    ) -> Option<bool> {
        let (Some(a), Some(b)) = (&mut self.s1, &mut self.s2) else {
            return None;
        };
        let mut bad = 0u8;
        let (a, b) = (&mut a[range.clone()], &mut b[range]);
        for (((a, b), c), x) in a.iter_mut().zip(b.iter_mut()).zip(shift.iter_mut()).zip(x) {
            let v = x.value();
            if c.is_nan() {
                *c = v;
            }
            let e = v - *c;
            let ok = !e.is_nan();
            bad |= u8::from(!ok);
            *a += if ok { weight * e } else { 0.0 };
            *b += if ok { weight * e * e } else { 0.0 };
        }
        Some(bad != 0)
    }

    /// The weight totals and NaN counts of [`add`](Acc::add) alone.
    fn add_counts<T: Value>(&mut self, range: std::ops::Range<usize>, x: &[T], weight: f64) {
        for (n, x) in self.n[range.clone()].iter_mut().zip(x) {
            *n += if x.value().is_nan() { 0.0 } else { weight };
        }
        self.add_nan_counts(range, x, weight);
    }

    /// The NaN counts of [`add`](Acc::add), if kept.
    fn add_nan_counts<T: Value>(&mut self, range: std::ops::Range<usize>, x: &[T], weight: f64) {
        if let Some(m) = &mut self.nan {
            for (m, x) in m[range].iter_mut().zip(x) {
                *m += if x.value().is_nan() { weight } else { 0.0 };
            }
        }
    }

    /// Adds `weight ×` the values `x` at `range` (NaN: missing), the
    /// moments less each element's `shift`, which the element's first
    /// valid value sets (`shift` is empty without moments). Without
    /// branches, a pass per accumulator (weight totals and sums in one).
    fn add<T: Value>(
        &mut self,
        range: std::ops::Range<usize>,
        x: &[T],
        shift: &mut [f64],
        weight: f64,
    ) {
        if let Some(s) = &mut self.sum {
            let n = &mut self.n[range.clone()];
            for ((n, s), x) in n.iter_mut().zip(s[range.clone()].iter_mut()).zip(x) {
                let v = x.value();
                let ok = !v.is_nan();
                *n += if ok { weight } else { 0.0 };
                *s += if ok { weight * v } else { 0.0 };
            }
            self.add_nan_counts(range.clone(), x, weight);
        } else {
            self.add_counts(range.clone(), x, weight);
        }
        self.add_moments(range, x, shift, weight);
    }
}

/// One day's steps summed, each in its group (every year's steps that
/// fall on the day), so that a [`WindowStream`] takes the day in one pass
/// however many years there are, where [`add`](WindowStream::add) and
/// [`step`](WindowStream::step) take it a step at a time: see
/// [`WindowStream::gather`] and [`Work::StepSums`]. Over `y` years of data a
/// day is then read once into its sums and those are used about three
/// times, instead of reading every step three times; the sums take
/// [`DaySums::bytes_per_element`] bytes per (group, element)
/// against `y` values per (group, element) for the steps themselves.
///
/// A group none of whose steps had a NaN keeps one count for its
/// elements instead of a weight total each (and no NaN counts): their
/// sums alone are then read as the stream takes them, which halves what a
/// mean reads.
#[derive(Debug, Clone)]
pub struct DaySums {
    acc: Acc,
    /// What the stream that made it keeps.
    need: Need,
    /// Elements per group.
    size: usize,
    /// Per group: the steps gathered, while none had a NaN.
    count: Vec<f64>,
    /// Per group: whether a step had a NaN (the weight totals and NaN
    /// counts are then per element, in `acc`, made at the first NaN: until
    /// then they take no memory).
    sparse: Vec<bool>,
}

impl DaySums {
    /// Zeroes the sums, to gather another day into the same memory.
    pub fn clear(&mut self) {
        let Acc {
            n,
            sum,
            s1,
            s2,
            nan,
        } = &mut self.acc;
        for a in [sum, s1, s2].into_iter().flatten() {
            a.fill(0.0);
        }
        for (g, sparse) in self.sparse.iter_mut().enumerate() {
            if std::mem::take(sparse) {
                let r = g * self.size..(g + 1) * self.size;
                n[r.clone()].fill(0.0);
                if let Some(m) = nan {
                    m[r].fill(0.0);
                }
            }
        }
        self.count.fill(0.0);
    }

    /// Adds `weight ×` the sums at `range` (of `group`) to `acc`.
    fn merge_into(&self, acc: &mut Acc, group: usize, range: std::ops::Range<usize>, weight: f64) {
        if self.sparse[group] {
            // the counts made at the first NaN line up with the stream's
            debug_assert!(
                self.acc.n.len() == acc.n.len() && self.acc.nan.is_some() == acc.nan.is_some(),
                "a day's sums without the stream's counts"
            );
            acc.merge(range, &self.acc, weight);
            return;
        }
        // every element's weight total is the count; no NaN counts
        let c = weight * self.count[group];
        match (&mut acc.sum, &self.acc.sum) {
            (Some(s), Some(o)) => {
                let n = &mut acc.n[range.clone()];
                for ((n, s), &o) in n
                    .iter_mut()
                    .zip(s[range.clone()].iter_mut())
                    .zip(&o[range.clone()])
                {
                    *n += c;
                    *s += weight * o;
                }
            }
            _ => {
                for n in &mut acc.n[range.clone()] {
                    *n += c;
                }
            }
        }
        for (a, b) in [(&mut acc.s1, &self.acc.s1), (&mut acc.s2, &self.acc.s2)] {
            if let (Some(a), Some(b)) = (a, b) {
                add_scaled(&mut a[range.clone()], &b[range.clone()], weight);
            }
        }
    }

    /// Bytes a day's sums hold at most per (group, element) for `need`
    /// (a weight total and a NaN count only once a step had a NaN).
    pub fn bytes_per_element(need: Need) -> usize {
        8 * (1
            + usize::from(need.sum)
            + 2 * usize::from(need.moments)
            + usize::from(need.propagate_nan))
    }
}

/// WeatherBench 2's smoothing over the day of the year (the same result
/// as [`Partial::window`], to rounding), streamed day by day.
///
/// The days are the positions along a circular axis of `period` days; a
/// day's values `x(d)` are every step of every year that falls on day `d`,
/// each in its group (the hour of the day, say). The smoothed day is the weighted merge
/// `T(d) = Σ_{|j|<h} (h - |j|) · x(d + j)` (`h = width / 2`, days taken
/// around the period, as WeatherBench 2 wraps within each year). It moves
/// on by `T(d + 1) = T(d) + D(d)`, where `D(d) = F(d) - G(d)` is the sum
/// of the `h` days after `d` less that of `d` and the `h - 1` before, and
/// `D(d + 1) = D(d) + x(d + h + 1) - 2·x(d + 1) + x(d + 1 - h)`. So
/// each day's values are needed about three times (as the day enters the
/// window, at its centre, and as it leaves) and the stream holds two days'
/// accumulators, whatever the width. [`moves`](WindowStream::moves) says
/// what to do in order, for a caller that reads the days itself;
/// [`run`](WindowStream::run) does it all with a callback. A day of many
/// steps (the same day of many years) can instead be
/// [`gather`](WindowStream::gather)ed once into its [`DaySums`], which
/// [`add_sums`](WindowStream::add_sums) and [`Work::StepSums`] take in
/// place of its steps.
///
/// The weights are integers until the end, so weight totals (and NaN
/// counts) are exact; moments are sums of values less each element's
/// first valid value, so little is lost to cancellation. Rounding left in
/// the running sums is cleared only when a weight total is back to zero,
/// so a zero that comes from values (a variance of one valid value, a
/// mean of zeros among non-zero days) may come out as about 1e-16 of the
/// values' size (of their squares for variances; the standard deviation
/// then about 1e-8). An infinite value makes its element NaN from the day
/// it enters the window on (as it does in [`Partial::window`]). The arithmetic depends only on the days'
/// values in the order given, so results do not depend on chunking or
/// workers.
///
/// ```
/// use xbeam_chunk::ndarray::arr1;
/// use xbeam_stats::{Need, Stat, WindowStream};
///
/// // 5 days, one value each; width 5 → weights 0.5, 1, 0.5 on days d-1, d, d+1
/// let x = [1.0f64, 2.0, 3.0, 4.0, 5.0];
/// let mut stream = WindowStream::new(Need::of(&[Stat::Mean], true), 1, &[1], 5, 5)?;
/// let mut means = Vec::new();
/// stream.run(
///     &[0, 1, 2, 3, 4],
///     |day, steps| {
///         steps.push((0, arr1(&[x[day]]).into_dyn()));
///         Ok::<(), xbeam_stats::StatsError>(())
///     },
///     |_, day| {
///         let mut mean = [0.0];
///         day.write(Stat::Mean, 0, &mut mean);
///         means.push(mean[0]);
///         Ok(())
///     },
/// )?;
/// assert_eq!(means[1], (0.5 * 1.0 + 2.0 + 0.5 * 3.0) / 2.0);
/// assert_eq!(means[0], (0.5 * 5.0 + 1.0 + 0.5 * 2.0) / 2.0); // wraps
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct WindowStream {
    need: Need,
    h: usize,
    period: usize,
    groups: usize,
    elements: Vec<usize>,
    /// Elements per group.
    size: usize,
    triangle: Acc,
    delta: Acc,
    /// Each (group, element)'s shift: its first valid value (NaN before).
    shift: Vec<f64>,
}

/// A smoothed day, as [`WindowStream::smoothed`] gives it.
pub struct Smoothed<'a> {
    stream: &'a WindowStream,
}

impl Smoothed<'_> {
    /// Writes `stat` of `group` (one value per element) to `out`: the
    /// weighted mean, sum, var or std (ddof 0), NaN without weight (0 for
    /// sums, as xarray's); counts are the weight totals (`Σ (h - |j|) / h`
    /// over valid values).
    ///
    /// # Panics
    /// If `stat` is min or max, needs what the stream was not made with,
    /// or `out` is not the size of the elements.
    pub fn write(&self, stat: Stat, group: usize, out: &mut [f64]) {
        self.write_range(stat, group, 0..self.stream.size, out);
    }

    /// [`write`](Smoothed::write) of the elements `elements` of `group`.
    ///
    /// # Panics
    /// As [`write`](Smoothed::write), or if `out` is not the size of
    /// `elements`.
    pub fn write_range(
        &self,
        stat: Stat,
        group: usize,
        elements: std::ops::Range<usize>,
        out: &mut [f64],
    ) {
        let s = self.stream;
        assert!(
            elements.end <= s.size,
            "elements {elements:?} of {}",
            s.size
        );
        assert_eq!(out.len(), elements.len(), "the elements written");
        let range = group * s.size + elements.start..group * s.size + elements.end;
        let t = &s.triangle;
        let h = s.h as f64;
        let n = &t.n[range.clone()];
        fn part(a: Option<&Vec<f64>>, range: std::ops::Range<usize>, stat: Stat) -> &[f64] {
            &a.unwrap_or_else(|| panic!("the stream was made without what {stat} needs"))[range]
        }
        match stat {
            Stat::Count => {
                for (o, &w) in out.iter_mut().zip(n) {
                    *o = w / h;
                }
            }
            Stat::Sum => {
                for ((o, &w), &x) in
                    out.iter_mut()
                        .zip(n)
                        .zip(part(t.sum.as_ref(), range.clone(), stat))
                {
                    *o = if w > 0.0 { x / h } else { 0.0 };
                }
            }
            Stat::Mean => {
                for ((o, &w), &x) in
                    out.iter_mut()
                        .zip(n)
                        .zip(part(t.sum.as_ref(), range.clone(), stat))
                {
                    *o = if w > 0.0 { x / w } else { f64::NAN };
                }
            }
            Stat::Var | Stat::Std => {
                let (s1, s2) = (
                    part(t.s1.as_ref(), range.clone(), stat),
                    part(t.s2.as_ref(), range.clone(), stat),
                );
                for (((o, &w), &a), &q) in out.iter_mut().zip(n).zip(s1).zip(s2) {
                    let v = if w > 0.0 {
                        (q - a * a / w).max(0.0) / w
                    } else {
                        f64::NAN
                    };
                    *o = if stat == Stat::Std { v.sqrt() } else { v };
                }
            }
            Stat::Min | Stat::Max => panic!("a window gives no {stat}"),
        }
        if let (Some(m), true) = (&t.nan, stat != Stat::Count) {
            for (o, &m) in out.iter_mut().zip(&m[range]) {
                if m > 0.5 {
                    *o = f64::NAN;
                }
            }
        }
    }

    /// The smoothed day as a [`Partial`] of shape `[groups, elements...]`
    /// (weights `(h - |j|) / h`), whose [`finalize`](Partial::finalize)
    /// gives what [`write`](Smoothed::write) does.
    pub fn partial(&self) -> Partial {
        let s = self.stream;
        let mut shape = vec![s.groups];
        shape.extend_from_slice(&s.elements);
        let h = s.h as f64;
        let t = &s.triangle;
        let array =
            |v: Vec<f64>| ArrayD::from_shape_vec(IxDyn(&shape), v).expect("the stream's shape");
        let n = array(t.n.iter().map(|n| n / h).collect());
        // no weight: nothing added, whatever running sums left over
        let sum = t.sum.as_ref().map(|s| {
            array(
                s.iter()
                    .zip(&t.n)
                    .map(|(s, &w)| if w > 0.0 { s / h } else { 0.0 })
                    .collect(),
            )
        });
        let (mean, m2) = match (&t.s1, &t.s2) {
            (Some(s1), Some(s2)) => {
                let mut mean = Vec::with_capacity(s1.len());
                let mut m2 = Vec::with_capacity(s1.len());
                for (((&a, &q), &w), &c) in s1.iter().zip(s2).zip(&t.n).zip(&s.shift) {
                    if w > 0.0 {
                        mean.push(c + a / w);
                        m2.push(((q - a * a / w) / h).max(0.0));
                    } else {
                        mean.push(0.0);
                        m2.push(0.0);
                    }
                }
                (Some(array(mean)), Some(array(m2)))
            }
            _ => (None, None),
        };
        let nan = t.nan.as_ref().map(|m| {
            ArrayD::from_shape_vec(IxDyn(&shape), m.iter().map(|&m| m > 0.5).collect())
                .expect("the stream's shape")
        });
        Partial::from_parts(s.need, n, sum, (mean, m2), nan)
    }
}

impl WindowStream {
    /// A stream of `groups` groups of `elements` (a shape) per day, over a
    /// circular axis of `period` days, with the triangle of `width` days
    /// (odd, at least 3; WeatherBench 2 uses 61). Min and max are not
    /// available (the weights are in the totals), nor are other weights.
    ///
    /// # Errors
    /// A width that is even or below 3, an empty period, or statistics the
    /// window cannot give.
    pub fn new(
        need: Need,
        groups: usize,
        elements: &[usize],
        period: usize,
        width: usize,
    ) -> Result<WindowStream, StatsError> {
        if width < 3 || width % 2 == 0 {
            return Err(StatsError::Invalid(format!(
                "a window must be an odd number of steps, at least 3: found {width}"
            )));
        }
        if period == 0 || groups == 0 {
            return Err(StatsError::Invalid(format!(
                "a window needs days and groups: found a period of {period} and {groups} groups"
            )));
        }
        if need.min || need.max {
            return Err(StatsError::Invalid(
                "a window smooths means, sums, variances and standard deviations only".into(),
            ));
        }
        let size: usize = elements.iter().product();
        let len = groups * size;
        Ok(WindowStream {
            need,
            h: width / 2,
            period,
            groups,
            elements: elements.to_vec(),
            size,
            triangle: Acc::new(need, len),
            delta: Acc::new(need, len),
            shift: if need.moments {
                vec![f64::NAN; len]
            } else {
                Vec::new()
            },
        })
    }

    /// Bytes a stream holds per (group, element) for `need`: two running
    /// sums and the shift.
    pub fn bytes_per_element(need: Need) -> usize {
        2 * DaySums::bytes_per_element(need) + 8 * usize::from(need.moments)
    }

    /// What to do, in order, to smooth the days `days` (0-based
    /// positions in the period, increasing): add the days around the first
    /// one, then for each later day step on with three days, emitting
    /// each of `days` on the way.
    ///
    /// # Errors
    /// Days that do not increase within the period.
    pub fn moves(&self, days: &[usize]) -> Result<Vec<Move>, StatsError> {
        if days.windows(2).any(|w| w[0] >= w[1]) || days.last().is_some_and(|&d| d >= self.period) {
            return Err(StatsError::Invalid(format!(
                "window days must increase within a period of {}: found {days:?}",
                self.period
            )));
        }
        let (Some(&first), Some(&last)) = (days.first(), days.last()) else {
            return Ok(Vec::new());
        };
        let (h, p) = (self.h as i64, self.period as i64);
        let day = |s: usize, j: i64| (s as i64 + j).rem_euclid(p) as usize;
        let mut moves = Vec::with_capacity(2 * self.h + 2 * (last - first + 1));
        // T and D of the first day, from the days around it
        for j in -(h - 1)..=h {
            moves.push(Move::Add {
                day: day(first, j),
                triangle: (j.abs() < h).then(|| (h - j.abs()) as f64),
                delta: if j >= 1 { 1.0 } else { -1.0 },
            });
        }
        let mut next = 0;
        for s in first..=last {
            if s > first {
                moves.push(Move::Step([
                    (day(s, h), 1.0),
                    (day(s, 0), -2.0),
                    (day(s, -h), 1.0),
                ]));
            }
            if days[next] == s {
                moves.push(Move::Emit(next));
                next += 1;
            }
        }
        Ok(moves)
    }

    /// Adds one step's `values` (the shape of the stream's elements) of
    /// `group` with weight `triangle` to `T` (if any) and `delta` to `D`
    /// (a [`Move::Add`]).
    ///
    /// # Panics
    /// If `group` is out of range or the values' shape is not the
    /// elements' (a caller's bug).
    pub fn add<T: Value>(
        &mut self,
        (triangle, delta): (Option<f64>, f64),
        group: usize,
        values: &ArrayViewD<'_, T>,
    ) {
        let range = self.range(group, values);
        let x = contiguous(values);
        let shift = shifts(&mut self.shift, self.need, range.clone());
        if let Some(w) = triangle {
            self.triangle.add(range.clone(), &x, shift, w);
        }
        self.delta.add(range, &x, shift, delta);
    }

    /// Empty sums of one day, for [`gather`](WindowStream::gather).
    pub fn day_sums(&self) -> DaySums {
        DaySums {
            // weight totals and NaN counts per element from the first NaN
            // on (see gather)
            acc: Acc::without_counts(self.need, self.groups * self.size),
            need: self.need,
            size: self.size,
            count: vec![0.0; self.groups],
            sparse: vec![false; self.groups],
        }
    }

    /// Adds one step's `values` of `group` to the day's `sums` (with
    /// weight 1). A day's sums then stand for its steps in
    /// [`add_sums`](WindowStream::add_sums) and [`Work::StepSums`]: the
    /// result is what adding or stepping with the steps themselves gives,
    /// to rounding, provided each day is gathered before the stream first
    /// uses it. An element's shift (for moments) is its first valid value
    /// in the order days are gathered and stepped, so gathering in an order
    /// that depends on the data alone (as the [`moves`](WindowStream::moves)
    /// do) keeps the results deterministic; gathering a day again later
    /// gives the same sums.
    ///
    /// # Panics
    /// As [`add`](WindowStream::add), or if `sums` is of another stream's
    /// shape or statistics.
    pub fn gather<T: Value>(
        &mut self,
        sums: &mut DaySums,
        group: usize,
        values: &ArrayViewD<'_, T>,
    ) {
        let range = self.range(group, values);
        self.check(sums);
        let x = contiguous(values);
        let shift = shifts(&mut self.shift, self.need, range.clone());
        let nan = sums.acc.add_values(range.clone(), &x, shift, 1.0);
        if nan && !sums.sparse[group] {
            if sums.acc.n.is_empty() {
                sums.acc.add_counts_of(self.need, self.groups * self.size);
            }
            // weight totals per element from now on
            sums.acc.n[range.clone()].fill(sums.count[group]);
            sums.sparse[group] = true;
        }
        if sums.sparse[group] {
            sums.acc.add_counts(range, &x, 1.0);
        } else {
            sums.count[group] += 1.0;
        }
    }

    /// Checks that `sums` are of this stream's shape and statistics.
    fn check(&self, sums: &DaySums) {
        assert!(
            sums.count.len() == self.groups && sums.size == self.size && sums.need == self.need,
            "a day's sums of another stream"
        );
    }

    /// [`add`](WindowStream::add) of a whole day's [`gather`]ed sums (a
    /// [`Move::Add`]).
    ///
    /// # Panics
    /// If `sums` are of another stream's shape or statistics.
    ///
    /// [`gather`]: WindowStream::gather
    pub fn add_sums(&mut self, (triangle, delta): (Option<f64>, f64), sums: &DaySums) {
        self.check(sums);
        for g in 0..self.groups {
            let range = g * self.size..(g + 1) * self.size;
            if let Some(w) = triangle {
                sums.merge_into(&mut self.triangle, g, range.clone(), w);
            }
            sums.merge_into(&mut self.delta, g, range, delta);
        }
    }

    /// The elements of `group`, checking `values` fit them.
    fn range<T>(&self, group: usize, values: &ArrayViewD<'_, T>) -> std::ops::Range<usize> {
        assert!(group < self.groups, "group {group} of {}", self.groups);
        assert_eq!(values.shape(), self.elements.as_slice(), "a step's shape");
        group * self.size..(group + 1) * self.size
    }

    /// Steps on a day (a [`Move::Step`]): `T += D`, then `D` takes the
    /// `parts`, each a group, a weight and one step's values (of the days
    /// the move names, with their weights), in one pass over the
    /// accumulators. Sums whose weight total is back to zero are set to
    /// zero, so that what was added and taken away again leaves no
    /// rounding behind.
    ///
    /// # Panics
    /// As [`add`](WindowStream::add).
    pub fn step<T: Value>(&mut self, parts: &[(usize, f64, ArrayViewD<'_, T>)]) {
        self.apply(&[Work::Step(parts.to_vec())], |_, _, _, _| {});
    }

    /// Does several days' work (steps and emits, in order) a block of
    /// elements at a time, so that each block's accumulators stay in the
    /// processor's cache from one day to the next: `emit(k, day, group,
    /// elements)` is called for each block of each group of each
    /// [`Work::Emit`], and should [`write`](Smoothed::write_range) those
    /// elements only (the other elements are on other days then, so
    /// [`Smoothed::partial`] mixes days there). The result is the same as
    /// stepping and emitting one day at a time.
    ///
    /// # Panics
    /// As [`add`](WindowStream::add), or [`add_sums`](WindowStream::add_sums) for
    /// a [`Work::StepSums`]'s sums.
    pub fn apply<T: Value>(
        &mut self,
        work: &[Work<'_, T>],
        mut emit: impl FnMut(usize, &Smoothed<'_>, usize, std::ops::Range<usize>),
    ) {
        type Rows<'a, T> = Vec<Vec<(f64, std::borrow::Cow<'a, [T]>)>>;
        let mut rows: Vec<Option<Rows<'_, T>>> = Vec::with_capacity(work.len());
        for w in work {
            let (Work::Step(parts) | Work::StepSums(parts, _)) = w else {
                rows.push(None);
                continue;
            };
            if let Work::StepSums(_, sums) = w {
                for (_, s) in sums {
                    self.check(s);
                }
            }
            let mut by_group: Rows<'_, T> = vec![Vec::new(); self.groups];
            for (g, w, v) in parts {
                self.range(*g, v);
                let x = contiguous(v);
                by_group[*g].push((*w, x));
            }
            rows.push(Some(by_group));
        }
        let fused = self.need.sum && !self.need.moments && !self.need.propagate_nan;
        let mut xs: Vec<(f64, &[T])> = Vec::new();
        for g in 0..self.groups {
            for b0 in (0..self.size).step_by(BLOCK) {
                let b = b0..(b0 + BLOCK).min(self.size);
                let range = g * self.size + b.start..g * self.size + b.end;
                for (w, r) in work.iter().zip(&rows) {
                    match (w, r) {
                        (Work::Emit(k), _) => emit(*k, &Smoothed { stream: self }, g, b.clone()),
                        (Work::Step(_) | Work::StepSums(..), Some(r)) => {
                            xs.clear();
                            xs.extend(r[g].iter().map(|(w, x)| (*w, &x[b.clone()])));
                            if fused {
                                self.step_sums(range.clone(), &xs);
                            } else {
                                self.step_general(range.clone(), &xs);
                            }
                            if let Work::StepSums(_, sums) = w {
                                for &(w, sums) in sums {
                                    sums.merge_into(&mut self.delta, g, range.clone(), w);
                                }
                            }
                        }
                        (Work::Step(_) | Work::StepSums(..), None) => {
                            unreachable!("rows of every step")
                        }
                    }
                }
            }
        }
    }

    /// [`step`](WindowStream::step) of one group with every accumulator
    /// the stream has.
    fn step_general<T: Value>(&mut self, range: std::ops::Range<usize>, xs: &[(f64, &[T])]) {
        self.advance(range.clone());
        // D takes each step
        let shift = shifts(&mut self.shift, self.need, range.clone());
        for &(w, x) in xs {
            self.delta.add(range.clone(), x, shift, w);
        }
    }

    /// `T += D` at `range`, a pass per accumulator (the block stays in
    /// cache), sums set to zero where the weight total is back to zero.
    fn advance(&mut self, r: std::ops::Range<usize>) {
        let (t, d) = (&mut self.triangle, &self.delta);
        // T += D, a pass per accumulator (the block stays in cache)
        let tn = &mut t.n[r.clone()];
        for (t, &d) in tn.iter_mut().zip(&d.n[r.clone()]) {
            *t += d;
        }
        for (t, d) in [(&mut t.sum, &d.sum), (&mut t.s1, &d.s1), (&mut t.s2, &d.s2)] {
            if let (Some(t), Some(d)) = (t, d) {
                for ((t, &d), &n) in t[r.clone()].iter_mut().zip(&d[r.clone()]).zip(tn.iter()) {
                    *t = if n == 0.0 { 0.0 } else { *t + d };
                }
            }
        }
        if let (Some(t), Some(d)) = (&mut t.nan, &d.nan) {
            for (t, &d) in t[r.clone()].iter_mut().zip(&d[r]) {
                *t += d;
            }
        }
    }

    /// [`step`](WindowStream::step) of one group for weight totals and
    /// sums only.
    fn step_sums<T: Value>(&mut self, range: std::ops::Range<usize>, xs: &[(f64, &[T])]) {
        let (t, d) = (&mut self.triangle, &mut self.delta);
        let (Some(ts), Some(ds)) = (&mut t.sum, &mut d.sum) else {
            return;
        };
        let (tn, ts) = (&mut t.n[range.clone()], &mut ts[range.clone()]);
        let (dn, ds) = (&mut d.n[range.clone()], &mut ds[range]);
        for (((tn, ts), &dn), &ds) in tn.iter_mut().zip(ts.iter_mut()).zip(&*dn).zip(&*ds) {
            *tn += dn;
            *ts = if *tn == 0.0 { 0.0 } else { *ts + ds };
        }
        // a pass per step (the block stays in cache), without branches
        for &(w, x) in xs {
            for ((dn, ds), x) in dn.iter_mut().zip(ds.iter_mut()).zip(x) {
                let v = x.value();
                let ok = !v.is_nan();
                *dn += if ok { w } else { 0.0 };
                *ds += if ok { w * v } else { 0.0 };
            }
        }
    }

    /// The current smoothed day (a [`Move::Emit`]).
    pub fn smoothed(&self) -> Smoothed<'_> {
        Smoothed { stream: self }
    }

    /// Runs every [`moves`](WindowStream::moves) of `days`: `feed(day,
    /// steps)` pushes the day's steps (group and values, every step of
    /// every year that falls on it) to `steps`, and is called about three
    /// times a day; `emit(k, day)` gets the smoothed `days[k]`, in order.
    ///
    /// # Errors
    /// As [`moves`](WindowStream::moves), and the first error of `feed`
    /// or `emit`.
    pub fn run<E: From<StatsError>>(
        &mut self,
        days: &[usize],
        mut feed: impl FnMut(usize, &mut Vec<(usize, ArrayD<f64>)>) -> Result<(), E>,
        mut emit: impl FnMut(usize, &Smoothed<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut steps = Vec::new();
        for m in self.moves(days)? {
            match m {
                Move::Add {
                    day,
                    triangle,
                    delta,
                } => {
                    steps.clear();
                    feed(day, &mut steps)?;
                    for (g, v) in &steps {
                        self.add((triangle, delta), *g, &v.view());
                    }
                }
                Move::Step(three) => {
                    let mut owned = Vec::new();
                    for (day, w) in three {
                        steps.clear();
                        feed(day, &mut steps)?;
                        owned.extend(steps.drain(..).map(|(g, v)| (g, w, v)));
                    }
                    let parts: Vec<(usize, f64, ArrayViewD<'_, f64>)> =
                        owned.iter().map(|(g, w, v)| (*g, *w, v.view())).collect();
                    self.step(&parts);
                }
                Move::Emit(k) => emit(k, &self.smoothed())?,
            }
        }
        Ok(())
    }
}

/// One thing to do to smooth a run of days (see [`WindowStream::moves`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Move {
    /// Add every step of `day` with [`WindowStream::add`], with these
    /// weights on `T` (if any) and `D`.
    Add {
        /// The day (0-based in the period).
        day: usize,
        /// The weight on the smoothed day `T`, if any.
        triangle: Option<f64>,
        /// The weight on its change `D`.
        delta: f64,
    },
    /// [`WindowStream::step`] with every step of the three days, each
    /// with its weight (entering the window, its centre, leaving it).
    Step([(usize, f64); 3]),
    /// The smoothed day is `days[k]`: see [`WindowStream::smoothed`].
    Emit(usize),
}

/// The shifts of the elements at `range` (none without moments).
fn shifts(shift: &mut [f64], need: Need, range: std::ops::Range<usize>) -> &mut [f64] {
    if need.moments {
        &mut shift[range]
    } else {
        &mut []
    }
}

/// `a += weight × b`, element by element.
fn add_scaled(a: &mut [f64], b: &[f64], weight: f64) {
    for (a, &b) in a.iter_mut().zip(b) {
        *a += weight * b;
    }
}

/// A step's values as one slice (copied when they are not contiguous).
fn contiguous<'a, T: Copy>(values: &'a ArrayViewD<'_, T>) -> std::borrow::Cow<'a, [T]> {
    match values.as_slice() {
        Some(x) => std::borrow::Cow::Borrowed(x),
        None => std::borrow::Cow::Owned(values.iter().copied().collect()),
    }
}

/// One day's work for [`WindowStream::apply`].
#[derive(Debug, Clone)]
pub enum Work<'a, T> {
    /// [`WindowStream::step`] with these parts.
    Step(Vec<(usize, f64, ArrayViewD<'a, T>)>),
    /// [`WindowStream::step`] with these parts, and then these days'
    /// [`gather`]ed sums, each with its weight (for days of several steps
    /// per group: a day of one step is cheaper as parts).
    ///
    /// [`gather`]: WindowStream::gather
    StepSums(
        Vec<(usize, f64, ArrayViewD<'a, T>)>,
        Vec<(f64, &'a DaySums)>,
    ),
    /// Hand out the smoothed `days[k]`.
    Emit(usize),
}

/// Elements a block of [`WindowStream::apply`] holds: with weight totals
/// and sums, the running sums of a block take 64 kB.
const BLOCK: usize = 2048;

/// Checks that `a` and `b` agree to `rtol` (relative to values of at
/// least 1: a variance of 0 may come out as 1e-14 after rounding), and are
/// NaN at the same places (for tests).
#[cfg(test)]
fn close(a: &ArrayD<f64>, b: &ArrayD<f64>, rtol: f64) -> bool {
    a.shape() == b.shape()
        && xbeam_chunk::ndarray::Zip::from(a).and(b).all(|&x, &y| {
            (x.is_nan() && y.is_nan()) || (x - y).abs() <= rtol * x.abs().max(y.abs()).max(1.0)
        })
}

#[cfg(test)]
mod tests {
    use xbeam_chunk::ndarray::{Array2, Axis};

    use super::*;
    use crate::{Fold, Stat};

    /// Values of `groups × days × elements`, some NaN, around `base`.
    fn data(groups: usize, days: usize, elements: usize, base: f64) -> Vec<Array2<f64>> {
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..days)
            .map(|_| {
                Array2::from_shape_fn((groups, elements), |_| {
                    let x = next();
                    if x < 0.05 {
                        f64::NAN
                    } else {
                        base + 10.0 * next()
                    }
                })
            })
            .collect()
    }

    /// The stream against the batch window over the same days.
    fn compare(days: &[usize], period: usize, width: usize, skipna: bool) {
        // with moments, and sums alone (which step in one pass)
        compare_stats(
            days,
            (period, width, skipna),
            &[Stat::Mean, Stat::Sum, Stat::Var, Stat::Std],
        );
        compare_stats(days, (period, width, skipna), &[Stat::Mean, Stat::Sum]);
    }

    fn compare_stats(
        days: &[usize],
        (period, width, skipna): (usize, usize, bool),
        stats: &[Stat],
    ) {
        let need = Need::of(stats, skipna);
        let (groups, elements) = (3, 5);
        let values = data(groups, days.len(), elements, 5.0e4);
        // batch: groups are [1, days, groups] (the window's outer × len × inner)
        let mut fold = Fold::new(need, days.len() * groups, &[elements]);
        for (k, day) in values.iter().enumerate() {
            for (g, row) in day.axis_iter(Axis(0)).enumerate() {
                fold.add(k * groups + g, &[0], &row.into_dyn());
            }
        }
        let batch = fold.into_partial().window(1, days, period, width).unwrap();
        let mut stream = WindowStream::new(need, groups, &[elements], period, width).unwrap();
        let mut out = Vec::new();
        stream
            .run::<StatsError>(
                days,
                |d, steps| {
                    if let Ok(k) = days.binary_search(&d) {
                        for (g, row) in values[k].axis_iter(Axis(0)).enumerate() {
                            steps.push((g, row.to_owned().into_dyn()));
                        }
                    }
                    Ok(())
                },
                |k, day| {
                    // what write gives is what the partial finalizes to
                    let p = day.partial();
                    for &stat in stats {
                        let want = p.finalize(stat, 0);
                        for g in 0..groups {
                            let mut got = vec![0.0; elements];
                            day.write(stat, g, &mut got);
                            let want = want.index_axis(Axis(0), g).to_owned().into_dyn();
                            let got = ArrayD::from_shape_vec(IxDyn(&[elements]), got).unwrap();
                            assert!(close(&got, &want, 1e-12), "{stat}: {got} vs {want}");
                        }
                    }
                    out.push((k, p));
                    Ok(())
                },
            )
            .unwrap();
        assert_eq!(out.len(), days.len());
        for &stat in stats {
            let whole = batch.finalize(stat, 0);
            for (k, p) in &out {
                let want = whole
                    .view()
                    .into_shape_with_order((days.len(), groups * elements))
                    .unwrap()
                    .index_axis(Axis(0), *k)
                    .to_owned()
                    .into_dyn();
                let got = p
                    .finalize(stat, 0)
                    .into_shape_with_order(IxDyn(&[groups * elements]))
                    .unwrap();
                // a zero variance may come out as 1e-14 (of values near 1),
                // its square root as 1e-7
                let rtol = if stat == Stat::Std { 1e-6 } else { 1e-9 };
                assert!(close(&got, &want, rtol), "{stat} day {k}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn streams_match_the_batch_window() {
        let all: Vec<usize> = (0..40).collect();
        compare(&all, 40, 7, true);
        compare(&all, 40, 7, false);
        // a year with gaps, and days near both ends (the wrap)
        let sparse = [0, 1, 2, 5, 9, 30, 200, 359, 363, 364, 365];
        compare(&sparse, 366, 61, true);
        compare(&sparse, 366, 61, false);
        // a window wider than the period wraps more than once
        compare(&[0, 1, 2, 3, 4], 5, 9, true);
    }

    #[test]
    fn results_depend_only_on_the_values_and_their_order() {
        // the same values fed twice give the same bits
        let days: Vec<usize> = (0..20).collect();
        let values = data(2, 20, 4, 300.0);
        let run = || {
            let need = Need::of(&[Stat::Mean, Stat::Std], true);
            let mut stream = WindowStream::new(need, 2, &[4], 20, 5).unwrap();
            let mut out = Vec::new();
            stream
                .run::<StatsError>(
                    &days,
                    |d, steps| {
                        for (g, row) in values[d].axis_iter(Axis(0)).enumerate() {
                            steps.push((g, row.to_owned().into_dyn()));
                        }
                        Ok(())
                    },
                    |_, day| {
                        let mut std = vec![0.0; 8];
                        day.write(Stat::Std, 0, &mut std[..4]);
                        day.write(Stat::Std, 1, &mut std[4..]);
                        out.push(std);
                        Ok(())
                    },
                )
                .unwrap();
            out
        };
        let (a, b) = (run(), run());
        assert!(a
            .iter()
            .zip(&b)
            .all(|(a, b)| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())));
    }

    /// Smooths `days` of `period` with a stream of `stats` fed each day's
    /// steps (`years` per group, of `values`), or (`sums` is `Some(again)`)
    /// their gathered sums, kept or gathered `again` at every use (moves
    /// done a few at a time, as a job does); the writes of every stat,
    /// group and day.
    fn smooth_years(
        (days, period, width): (&[usize], usize, usize),
        (stats, skipna): (&[Stat], bool),
        (groups, years, values): (usize, usize, &[Array2<f64>]),
        sums: Option<bool>,
    ) -> Vec<f64> {
        let need = Need::of(stats, skipna);
        let elements = values[0].ncols();
        let mut stream = WindowStream::new(need, groups, &[elements], period, width).unwrap();
        // day d's steps: rows (year, group) of values[k] for days[k] == d
        let steps = |d: usize| -> Vec<(usize, ArrayViewD<'_, f64>)> {
            days.binary_search(&d).map_or(Vec::new(), |k| {
                (0..years * groups)
                    .map(|r| (r % groups, values[k].row(r).into_dyn()))
                    .collect()
            })
        };
        let mut out = Vec::new();
        let mut write = |day: &Smoothed<'_>| {
            for &stat in stats {
                for g in 0..groups {
                    let mut got = vec![0.0; elements];
                    day.write(stat, g, &mut got);
                    out.extend(got);
                }
            }
        };
        let moves = stream.moves(days).unwrap();
        let Some(again) = sums else {
            for m in moves {
                match m {
                    Move::Add {
                        day,
                        triangle,
                        delta,
                    } => {
                        for (g, v) in steps(day) {
                            stream.add((triangle, delta), g, &v);
                        }
                    }
                    Move::Step(three) => {
                        let parts: Vec<_> = three
                            .iter()
                            .flat_map(|&(d, w)| steps(d).into_iter().map(move |(g, v)| (g, w, v)))
                            .collect();
                        stream.step(&parts);
                    }
                    Move::Emit(_) => write(&stream.smoothed()),
                }
            }
            return out;
        };
        smooth_sums(
            &mut stream,
            (&moves, again),
            &steps,
            (stats, groups, elements),
        )
    }

    /// [`smooth_years`]'s run with gathered sums.
    fn smooth_sums<'a>(
        stream: &mut WindowStream,
        (moves, again): (&[Move], bool),
        steps: &dyn Fn(usize) -> Vec<(usize, ArrayViewD<'a, f64>)>,
        (stats, groups, elements): (&[Stat], usize, usize),
    ) -> Vec<f64> {
        let mut out = Vec::new();
        let mut kept: std::collections::HashMap<usize, DaySums> = std::collections::HashMap::new();
        let gather = |stream: &mut WindowStream,
                      kept: &mut std::collections::HashMap<usize, DaySums>,
                      d: usize| {
            kept.entry(d).or_insert_with(|| {
                let mut s = stream.day_sums();
                for (g, v) in steps(d) {
                    stream.gather(&mut s, g, &v);
                }
                s
            });
        };
        let mut at = 0;
        while at < moves.len() {
            if let Move::Add {
                day,
                triangle,
                delta,
            } = moves[at]
            {
                gather(stream, &mut kept, day);
                stream.add_sums((triangle, delta), &kept[&day]);
                if again {
                    kept.clear();
                }
                at += 1;
                continue;
            }
            // three moves at a time, so batches mix steps and emits
            let end = (at + 3).min(moves.len());
            for m in &moves[at..end] {
                if let Move::Step(three) = m {
                    for (d, _) in three {
                        gather(stream, &mut kept, *d);
                    }
                }
            }
            let work: Vec<Work<'_, f64>> = moves[at..end]
                .iter()
                .map(|m| match *m {
                    Move::Step(three) => Work::StepSums(
                        Vec::new(),
                        three.iter().map(|(d, w)| (*w, &kept[d])).collect(),
                    ),
                    Move::Emit(k) => Work::Emit(k),
                    Move::Add { .. } => unreachable!("adds come first"),
                })
                .collect();
            let mut emitted: Vec<Vec<f64>> = Vec::new();
            let mut ks: Vec<usize> = Vec::new();
            stream.apply(&work, |k, day, g, elems| {
                let i = ks.iter().position(|&x| x == k).unwrap_or_else(|| {
                    ks.push(k);
                    emitted.push(vec![0.0; stats.len() * groups * elements]);
                    ks.len() - 1
                });
                for (si, &stat) in stats.iter().enumerate() {
                    let at = (si * groups + g) * elements;
                    day.write_range(
                        stat,
                        g,
                        elems.clone(),
                        &mut emitted[i][at + elems.start..at + elems.end],
                    );
                }
            });
            for e in emitted {
                out.extend(e);
            }
            if again {
                kept.clear();
            }
            at = end;
        }
        out
    }

    #[test]
    fn gathered_day_sums_give_what_the_steps_give() {
        let (groups, years, elements) = (2, 3, 5);
        for (days, period, width) in [
            ((0..30).collect::<Vec<usize>>(), 30, 7),
            (vec![0, 1, 2, 5, 9, 30, 200, 359, 363, 364, 365], 366, 61),
            ((0..5).collect(), 5, 9),
        ] {
            let some_nan = data(years * groups, days.len(), elements, 2.0e3);
            // without NaN, a day's sums keep one count per group; with NaN
            // in group 1 only, group 0 still does
            let no_nan: Vec<Array2<f64>> = some_nan
                .iter()
                .map(|d| d.mapv(|x| if x.is_nan() { 2.0e3 } else { x }))
                .collect();
            let one_group: Vec<Array2<f64>> = some_nan
                .iter()
                .zip(&no_nan)
                .map(|(a, b)| {
                    Array2::from_shape_fn(a.dim(), |(r, e)| {
                        if r % groups == 1 {
                            a[(r, e)]
                        } else {
                            b[(r, e)]
                        }
                    })
                })
                .collect();
            for (values, skipna) in [
                (&some_nan, true),
                (&some_nan, false),
                (&no_nan, true),
                (&no_nan, false),
                (&one_group, true),
                (&one_group, false),
            ] {
                for stats in [
                    &[Stat::Mean, Stat::Sum, Stat::Count][..],
                    &[Stat::Mean, Stat::Var, Stat::Std],
                ] {
                    let case = (stats, skipna);
                    let data = (groups, years, &values[..]);
                    let steps = smooth_years((&days, period, width), case, data, None);
                    let sums = smooth_years((&days, period, width), case, data, Some(false));
                    // a day gathered again at each use: the same bits
                    let again = smooth_years((&days, period, width), case, data, Some(true));
                    assert!(
                        sums.iter()
                            .zip(&again)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{stats:?} skipna={skipna}: gathered again"
                    );
                    assert_eq!(steps.len(), days.len() * stats.len() * groups * elements);
                    let at =
                        |v: &[f64]| ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap();
                    // std: a zero variance may come out as 1e-14, its root 1e-7
                    let rtol = if stats.contains(&Stat::Std) {
                        1e-6
                    } else {
                        1e-12
                    };
                    assert!(
                        close(&at(&sums), &at(&steps), rtol),
                        "{stats:?} skipna={skipna} period {period}"
                    );
                    assert!(steps.iter().any(|x| !x.is_nan()), "some values");
                }
            }
        }
    }

    #[test]
    fn bad_widths_and_days_are_refused() {
        let need = Need::of(&[Stat::Mean], true);
        assert!(WindowStream::new(need, 1, &[1], 10, 4)
            .unwrap_err()
            .to_string()
            .contains("odd"));
        let mut s = WindowStream::new(need, 1, &[1], 10, 3).unwrap();
        let err = s
            .run::<StatsError>(&[3, 2], |_, _| Ok(()), |_, _| Ok(()))
            .unwrap_err();
        assert!(err.to_string().contains("must increase"), "{err}");
        let min = Need::of(&[Stat::Min], true);
        assert!(WindowStream::new(min, 1, &[1], 10, 3).is_err());
    }
}
