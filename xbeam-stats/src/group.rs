//! Groupers: the labels a time coordinate gives each step (`time.month`,
//! `time.hour`, ...), and the groups several groupers make together.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use xbeam_chunk::calendar::{Calendar, TimeUnit};
use xbeam_chunk::ndarray::Array1;
use xbeam_chunk::{Array, DType, TimeField};

use crate::StatsError;

/// A grouper by a component of a time coordinate, as xarray's
/// `groupby("time.month")`: `<coordinate>.<part>` with part one of `year`,
/// `month`, `day`, `hour`, `dayofyear`, `season`, `week` (ISO weeks, in
/// the calendars that have weekdays).
///
/// ```
/// use xbeam_chunk::TimeField;
/// use xbeam_stats::TimeGrouper;
///
/// let g: TimeGrouper = "time.dayofyear".parse()?;
/// assert_eq!((g.coord.as_str(), g.field, g.name()), ("time", TimeField::DayOfYear, "dayofyear"));
/// assert!("time.fortnight".parse::<TimeGrouper>().unwrap_err().to_string().contains("fortnight"));
/// # Ok::<(), xbeam_stats::StatsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeGrouper {
    /// The name of the 1-D datetime coordinate.
    pub coord: String,
    /// The component it groups by.
    pub field: TimeField,
}

/// The parts a grouper may name, with their names.
const PARTS: [(&str, TimeField); 7] = [
    ("year", TimeField::Year),
    ("month", TimeField::Month),
    ("day", TimeField::Day),
    ("hour", TimeField::Hour),
    ("dayofyear", TimeField::DayOfYear),
    ("season", TimeField::Season),
    ("week", TimeField::Week),
];

impl TimeGrouper {
    /// The part's name, which is also the output dimension's name (as
    /// xarray names it).
    pub fn name(&self) -> &'static str {
        PARTS
            .iter()
            .find(|(_, f)| *f == self.field)
            .map_or("?", |(n, _)| n)
    }
}

impl fmt::Display for TimeGrouper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.coord, self.name())
    }
}

impl FromStr for TimeGrouper {
    type Err = StatsError;

    fn from_str(s: &str) -> Result<TimeGrouper, StatsError> {
        let unknown = || StatsError::UnknownGrouper(s.to_owned());
        let (coord, part) = s.trim().rsplit_once('.').ok_or_else(unknown)?;
        let field = PARTS
            .iter()
            .find(|(n, _)| *n == part)
            .map(|(_, f)| *f)
            .ok_or_else(unknown)?;
        if coord.is_empty() {
            return Err(unknown());
        }
        Ok(TimeGrouper {
            coord: coord.to_owned(),
            field,
        })
    }
}

/// A user function from a 1-D coordinate to one label per step (ints,
/// floats, strings or datetimes), for groups no built-in grouper makes.
///
/// ```
/// use std::sync::Arc;
/// use xbeam_chunk::Array;
/// use xbeam_stats::{Custom, Grouper, Labels};
///
/// // decades of a `year` coordinate
/// let decade = Grouper::Custom(Custom {
///     name: "decade".into(),
///     coord: "year".into(),
///     f: Arc::new(|c: &Array| Ok(c.to_f64().map_err(|e| e.to_string())?.mapv(|y| (y / 10.0).floor() * 10.0).into())),
/// });
/// let (labels, index) = decade.labels(&Array::from_1d(vec![1999i64, 2000, 2011]))?;
/// assert_eq!(labels, Labels::Floats(vec![1990.0, 2000.0, 2010.0]));
/// assert_eq!(index, [Some(0), Some(1), Some(2)]);
/// # Ok::<(), xbeam_stats::StatsError>(())
/// ```
#[derive(Clone)]
pub struct Custom {
    /// The output dimension's name.
    pub name: String,
    /// The 1-D coordinate the function reads.
    pub coord: String,
    /// The function: the whole coordinate in, one label per step out.
    #[allow(clippy::type_complexity)]
    pub f: Arc<dyn Fn(&Array) -> Result<Array, String> + Send + Sync>,
}

impl fmt::Debug for Custom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Custom({:?} of {:?})", self.name, self.coord)
    }
}

/// A way to give each step of one dimension a group.
///
/// Parsed from text, `<coord>.<part>` is a [`TimeGrouper`] and a plain
/// name is the values of that 1-D coordinate (xarray's `groupby("name")`);
/// resampling and user functions are built in code.
///
/// ```
/// use xbeam_stats::Grouper;
///
/// let g: Grouper = "time.season".parse()?;
/// assert_eq!((g.name(), g.coord()), ("season".to_owned(), "time"));
/// let g: Grouper = "ensemble".parse()?;
/// assert_eq!((g.name(), g.coord()), ("ensemble".to_owned(), "ensemble"));
/// assert!("time.fortnight".parse::<Grouper>().is_err());
/// # Ok::<(), xbeam_stats::StatsError>(())
/// ```
#[derive(Debug, Clone)]
pub enum Grouper {
    /// A part of a datetime coordinate (`time.month`).
    Time(TimeGrouper),
    /// The sorted unique values of a 1-D coordinate.
    Coord(String),
    /// Bins of a datetime coordinate (`ds.resample(time="1D")`).
    Resample(Resample),
    /// A user function.
    Custom(Custom),
}

impl Grouper {
    /// The output dimension's name: the part (`month`), the coordinate's
    /// name, or the user's name.
    pub fn name(&self) -> String {
        match self {
            Grouper::Time(g) => g.name().to_owned(),
            Grouper::Coord(c) => c.clone(),
            Grouper::Resample(r) => r.coord.clone(),
            Grouper::Custom(c) => c.name.clone(),
        }
    }

    /// The 1-D coordinate it reads.
    pub fn coord(&self) -> &str {
        match self {
            Grouper::Time(g) => &g.coord,
            Grouper::Coord(c) => c,
            Grouper::Resample(r) => &r.coord,
            Grouper::Custom(c) => &c.coord,
        }
    }

    /// Whether it needs a datetime coordinate.
    pub fn needs_time(&self) -> bool {
        matches!(self, Grouper::Time(_) | Grouper::Resample(_))
    }

    /// The labels of `coord` (the 1-D coordinate this grouper reads), and
    /// each step's position among them (`None`: the step is in no group,
    /// as a NaT or NaN label).
    pub fn labels(&self, coord: &Array) -> Result<(Labels, Vec<Option<usize>>), StatsError> {
        let invalid = |e: String| StatsError::Invalid(format!("grouper {self}: {e}"));
        match self {
            Grouper::Time(g) => {
                let values = coord
                    .time_field(g.field)
                    .map_err(|e| invalid(e.to_string()))?;
                if let Ok(v) = values.as_view::<f64>() {
                    // NaT steps make NaN labels: dropped
                    let ints = v.iter().map(|x| (!x.is_nan()).then_some(*x as i64));
                    return Ok(ints_positions(ints));
                }
                if let Ok(v) = values.as_view::<String>() {
                    let names = v.iter().map(|s| (s != "nan").then(|| s.clone()));
                    return Ok(strings_positions(names));
                }
                values_positions(&values).map_err(invalid)
            }
            Grouper::Coord(_) => values_positions(coord).map_err(invalid),
            Grouper::Resample(r) => r.bins(coord).map_err(invalid),
            Grouper::Custom(c) => {
                let values = (c.f)(coord).map_err(invalid)?;
                if values.len() != coord.len() {
                    return Err(invalid(format!(
                        "the function gave {} labels for {} steps",
                        values.len(),
                        coord.len()
                    )));
                }
                values_positions(&values).map_err(invalid)
            }
        }
    }
}

impl fmt::Display for Grouper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grouper::Time(g) => write!(f, "{g}"),
            Grouper::Coord(c) => write!(f, "{c}"),
            Grouper::Resample(r) => write!(f, "{}={r}", r.coord),
            Grouper::Custom(c) => write!(f, "{}({})", c.name, c.coord),
        }
    }
}

impl FromStr for Grouper {
    type Err = StatsError;

    fn from_str(s: &str) -> Result<Grouper, StatsError> {
        let s = s.trim();
        if s.contains('.') {
            return s.parse().map(Grouper::Time);
        }
        if s.is_empty() {
            return Err(StatsError::UnknownGrouper(s.to_owned()));
        }
        Ok(Grouper::Coord(s.to_owned()))
    }
}

/// Parses a comma-separated list of groupers (`time.month,time.hour`),
/// refusing an empty list and two groupers of the same name.
///
/// ```
/// use xbeam_stats::parse_groupers;
///
/// let g = parse_groupers("time.month,time.hour")?;
/// assert_eq!(g.iter().map(|g| g.name()).collect::<Vec<_>>(), ["month", "hour"]);
/// assert!(parse_groupers("time.hour,time.hour").is_err());
/// # Ok::<(), xbeam_stats::StatsError>(())
/// ```
pub fn parse_groupers(text: &str) -> Result<Vec<Grouper>, StatsError> {
    let mut out: Vec<Grouper> = Vec::new();
    for part in text.split(',') {
        let g: Grouper = part.parse()?;
        if out.iter().any(|o| o.name() == g.name()) {
            return Err(StatsError::Repeated(g.to_string()));
        }
        out.push(g);
    }
    Ok(out)
}

/// The unit of a resampling frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freq {
    /// Minutes (`min`).
    Minute,
    /// Hours (`h`).
    Hour,
    /// Days (`D`).
    Day,
    /// Calendar months, labelled by their first day (`MS`).
    MonthStart,
    /// Calendar years, labelled by their first day (`YS`).
    YearStart,
}

/// Resampling to a coarser time step: bins of `every` × `freq`, closed and
/// labelled on the left, as pandas and xarray's `resample` (fixed steps
/// start at midnight of the first time's day; months and years at the
/// first time's month or year). Every bin from the first time's to the
/// last time's is a group, so empty bins give NaN, as in xarray.
///
/// ```
/// use xbeam_stats::{Freq, Resample};
///
/// let r = Resample::new("time", "6h")?;
/// assert_eq!((r.every, r.freq), (6, Freq::Hour));
/// assert_eq!(Resample::new("time", "MS")?.to_string(), "1MS");
/// assert!(Resample::new("time", "1ME").unwrap_err().to_string().contains("MS"));
/// # Ok::<(), xbeam_stats::StatsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resample {
    /// The 1-D datetime coordinate (and the output dimension's name).
    pub coord: String,
    /// How many units a bin spans.
    pub every: u32,
    /// The unit.
    pub freq: Freq,
}

/// Frequency units and their names (pandas' aliases).
const FREQS: [(&str, Freq); 8] = [
    ("min", Freq::Minute),
    ("T", Freq::Minute),
    ("h", Freq::Hour),
    ("H", Freq::Hour),
    ("D", Freq::Day),
    ("d", Freq::Day),
    ("MS", Freq::MonthStart),
    ("YS", Freq::YearStart),
];

impl Resample {
    /// Parses a frequency like `1D`, `6h`, `30min`, `1MS` or `YS`.
    pub fn new(coord: &str, freq: &str) -> Result<Resample, StatsError> {
        let bad = || {
            StatsError::Invalid(format!(
                "unsupported resampling frequency {freq:?}: expected a count and one of min, h, \
                 D, MS (month start) or YS (year start), e.g. 1D, 6h, 1MS"
            ))
        };
        let text = freq.trim();
        let digits = text.chars().take_while(char::is_ascii_digit).count();
        let every: u32 = if digits == 0 {
            1
        } else {
            text[..digits].parse().map_err(|_| bad())?
        };
        let unit = FREQS
            .iter()
            .find(|(n, _)| *n == &text[digits..])
            .map(|(_, f)| *f)
            .ok_or_else(bad)?;
        if every == 0 {
            return Err(bad());
        }
        Ok(Resample {
            coord: coord.to_owned(),
            every,
            freq: unit,
        })
    }

    /// The bins of a datetime coordinate: their left edges (datetimes) and
    /// each step's bin.
    fn bins(&self, coord: &Array) -> Result<(Labels, Vec<Option<usize>>), String> {
        let (ticks, unit, calendar) = coord.datetime_ticks().map_err(|e| e.to_string())?;
        let valid = ticks.iter().copied().filter(|&t| t != i64::MIN);
        let (Some(first), Some(last)) = (valid.clone().min(), valid.max()) else {
            return Err("the time coordinate has no valid time".into());
        };
        let every = i64::from(self.every);
        let (out_unit, bin_of, label_of): (TimeUnit, Map, Map) = match self.freq {
            Freq::Minute | Freq::Hour | Freq::Day => {
                let secs = match self.freq {
                    Freq::Minute => 60,
                    Freq::Hour => 3600,
                    _ => 86_400,
                };
                let nanos = i128::from(unit.nanos());
                let step = i128::from(every * secs) * 1_000_000_000;
                let day = 86_400 * 1_000_000_000i128;
                // the origin: midnight of the first time's day
                let origin = (i128::from(first) * nanos).div_euclid(day) * day;
                let out_unit = TimeUnit::ALL
                    .iter()
                    .rev()
                    .copied()
                    .find(|u| {
                        let n = i128::from(u.nanos());
                        step % n == 0 && origin % n == 0
                    })
                    .unwrap_or(TimeUnit::Nanoseconds);
                let out = i128::from(out_unit.nanos());
                let bin = move |t: i64| ((i128::from(t) * nanos - origin).div_euclid(step)) as i64;
                let label = move |b: i64| ((origin + i128::from(b) * step) / out) as i64;
                (out_unit, Box::new(bin), Box::new(label))
            }
            Freq::MonthStart | Freq::YearStart => {
                let months = self.freq == Freq::MonthStart;
                let index = move |t: i64| {
                    let d = calendar.from_ticks(t, unit);
                    if months {
                        d.year * 12 + i64::from(d.month) - 1
                    } else {
                        d.year
                    }
                };
                let origin = index(first);
                let bin = move |t: i64| (index(t) - origin).div_euclid(every);
                let label = move |b: i64| {
                    let i = origin + b * every;
                    let (y, m) = if months {
                        (i.div_euclid(12), (i.rem_euclid(12) + 1) as u32)
                    } else {
                        (i, 1)
                    };
                    calendar.days_from_date(y, m, 1).unwrap_or(i64::MIN)
                };
                (TimeUnit::Days, Box::new(bin), Box::new(label))
            }
        };
        let (lo, hi) = (bin_of(first), bin_of(last));
        let labels: Vec<i64> = (lo..=hi).map(&label_of).collect();
        if labels.contains(&i64::MIN) {
            return Err("a bin's start is out of the calendar's range".into());
        }
        let index = ticks
            .iter()
            .map(|&t| (t != i64::MIN).then(|| (bin_of(t) - lo) as usize))
            .collect();
        Ok((
            Labels::Times {
                ticks: labels,
                unit: out_unit,
                calendar,
            },
            index,
        ))
    }
}

/// A map from ticks or bins to bins or ticks.
type Map = Box<dyn Fn(i64) -> i64>;

impl fmt::Display for Resample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.freq {
            Freq::Minute => "min",
            Freq::Hour => "h",
            Freq::Day => "D",
            Freq::MonthStart => "MS",
            Freq::YearStart => "YS",
        };
        write!(f, "{}{unit}", self.every)
    }
}

/// The labels of one grouper: sorted and unique, as xarray's group
/// coordinate holds them.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    /// Integer labels (years, months, hours, ...).
    Ints(Vec<i64>),
    /// Float labels (a float coordinate's values).
    Floats(Vec<f64>),
    /// String labels (seasons).
    Strings(Vec<String>),
    /// Datetimes (resampling bins, a datetime coordinate's values).
    Times {
        /// Ticks since 1970-01-01.
        ticks: Vec<i64>,
        /// Their unit.
        unit: TimeUnit,
        /// Their calendar.
        calendar: Calendar,
    },
}

impl Labels {
    /// How many labels.
    pub fn len(&self) -> usize {
        match self {
            Labels::Ints(v) => v.len(),
            Labels::Floats(v) => v.len(),
            Labels::Strings(v) => v.len(),
            Labels::Times { ticks, .. } => ticks.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The labels as a 1-D array.
    pub fn to_array(&self) -> Array {
        match self {
            Labels::Ints(v) => Array::from_1d(v.clone()),
            Labels::Floats(v) => Array::from_1d(v.clone()),
            Labels::Strings(v) => Array::from_1d(v.clone()),
            Labels::Times {
                ticks,
                unit,
                calendar,
            } => Array::datetime(Array1::from(ticks.clone()).into_dyn(), *unit, *calendar),
        }
    }
}

/// The groups that one or more groupers make of the steps of one
/// dimension: the cartesian product of each grouper's sorted labels (as
/// xarray's multi-key groupby), and each step's group in that product
/// (row-major), or `None` for a step in no group (a NaT, dropped as xarray
/// drops NaN labels).
///
/// ```
/// use xbeam_chunk::calendar::{Calendar, TimeUnit};
/// use xbeam_chunk::{Array, TimeField};
/// use xbeam_stats::{Groups, Labels};
///
/// // 6-hourly steps from 2001-01-31T12 (days since 1970 in hours)
/// let t0 = Calendar::Standard.days_from_date(2001, 1, 31)? * 24 + 12;
/// let time = Array::datetime(xbeam_chunk::ndarray::Array1::from_iter((0..4).map(|i| t0 + 6 * i)).into_dyn(), TimeUnit::Hours, Calendar::Standard);
/// let groups = Groups::new(&time, &[TimeField::Month, TimeField::Hour])?;
/// assert_eq!(groups.labels[0], Labels::Ints(vec![1, 2]));
/// assert_eq!(groups.labels[1], Labels::Ints(vec![0, 6, 12, 18]));
/// assert_eq!(groups.count(), 8);
/// assert_eq!(groups.index, vec![Some(2), Some(3), Some(4), Some(5)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Groups {
    /// Each grouper's labels.
    pub labels: Vec<Labels>,
    /// Each step's group (row-major over the groupers' labels).
    pub index: Vec<Option<usize>>,
}

impl Groups {
    /// The groups of a 1-D datetime array by `fields`; no fields make one
    /// group of every step.
    pub fn new(time: &Array, fields: &[TimeField]) -> Result<Groups, StatsError> {
        let mut parts = Vec::with_capacity(fields.len());
        for &field in fields {
            let g = Grouper::Time(TimeGrouper {
                coord: "time".into(),
                field,
            });
            parts.push(g.labels(time)?);
        }
        Ok(Groups::from_parts(time.len(), parts))
    }

    /// The product of each grouper's labels and step positions (all of
    /// `n` steps); no parts make one group of every step.
    pub fn from_parts(n: usize, parts: Vec<(Labels, Vec<Option<usize>>)>) -> Groups {
        let mut labels = Vec::with_capacity(parts.len());
        let mut index: Vec<Option<usize>> = vec![Some(0); n];
        for (these, positions) in parts {
            let k = these.len();
            for (ix, pos) in index.iter_mut().zip(positions) {
                *ix = match (*ix, pos) {
                    (Some(i), Some(p)) => Some(i * k + p),
                    _ => None,
                };
            }
            labels.push(these);
        }
        Groups { labels, index }
    }

    /// Whether any time step falls in each group: a product of groupers can
    /// hold combinations no step has (January of a series that starts in
    /// November), which xarray fills with NaN.
    ///
    /// ```
    /// use xbeam_stats::{Groups, Labels};
    ///
    /// let g = Groups { labels: vec![Labels::Ints(vec![1, 2]), Labels::Ints(vec![0, 12])], index: vec![Some(0), Some(3)] };
    /// assert_eq!(g.present(), vec![true, false, false, true]);
    /// ```
    pub fn present(&self) -> Vec<bool> {
        let mut present = vec![false; self.count()];
        for &g in self.index.iter().flatten() {
            present[g] = true;
        }
        present
    }

    /// The number of groups (the product of the label counts).
    pub fn count(&self) -> usize {
        self.labels.iter().map(Labels::len).product()
    }
}

/// Sorted unique integer labels and each step's position among them.
fn ints_positions(
    values: impl Iterator<Item = Option<i64>> + Clone,
) -> (Labels, Vec<Option<usize>>) {
    let set: BTreeSet<i64> = values.clone().flatten().collect();
    let sorted: Vec<i64> = set.into_iter().collect();
    let pos = values
        .map(|x| x.and_then(|x| sorted.binary_search(&x).ok()))
        .collect();
    (Labels::Ints(sorted), pos)
}

/// Sorted unique string labels and each step's position among them.
fn strings_positions(
    values: impl Iterator<Item = Option<String>> + Clone,
) -> (Labels, Vec<Option<usize>>) {
    let set: BTreeSet<String> = values.clone().flatten().collect();
    let sorted: Vec<String> = set.into_iter().collect();
    let pos = values
        .map(|x| x.and_then(|x| sorted.binary_search(&x).ok()))
        .collect();
    (Labels::Strings(sorted), pos)
}

/// The labels of any 1-D array of values: integers, floats (NaN in no
/// group), strings or datetimes (NaT in no group).
fn values_positions(values: &Array) -> Result<(Labels, Vec<Option<usize>>), String> {
    let dtype = values.dtype();
    if let Ok((ticks, unit, calendar)) = values.datetime_ticks() {
        let (labels, pos) = ints_positions(ticks.iter().map(|&t| (t != i64::MIN).then_some(t)));
        let Labels::Ints(ticks) = labels else {
            unreachable!("ints_positions gives ints")
        };
        return Ok((
            Labels::Times {
                ticks,
                unit,
                calendar,
            },
            pos,
        ));
    }
    if dtype.is_integer() {
        let ints = values.astype(DType::I64).map_err(|e| e.to_string())?;
        let v = ints.as_view::<i64>().map_err(|e| e.to_string())?;
        return Ok(ints_positions(v.iter().map(|&x| Some(x))));
    }
    if dtype.is_float() {
        let v = values.to_f64().map_err(|e| e.to_string())?;
        let mut sorted: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        sorted.dedup();
        let pos = v
            .iter()
            .map(|x| sorted.binary_search_by(|s| s.total_cmp(x)).ok())
            .collect();
        return Ok((Labels::Floats(sorted), pos));
    }
    let v = values.as_view::<String>().map_err(|_| {
        format!("labels must be integers, floats, strings or datetimes, found {dtype}")
    })?;
    Ok(strings_positions(v.iter().map(|s| Some(s.clone()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xbeam_chunk::calendar::{Calendar, TimeUnit};
    use xbeam_chunk::ndarray::Array1;

    fn monthly(cal: Calendar, months: u32) -> Array {
        let days: Vec<i64> = (0..months)
            .map(|m| {
                cal.days_from_date(2001 + i64::from(m / 12), m % 12 + 1, 15)
                    .unwrap()
            })
            .chain([i64::MIN]) // a NaT at the end
            .collect();
        Array::datetime(Array1::from(days).into_dyn(), TimeUnit::Days, cal)
    }

    #[test]
    fn seasons_sort_as_xarray_and_nat_is_dropped() {
        let g = Groups::new(&monthly(Calendar::Day360, 12), &[TimeField::Season]).unwrap();
        let names = ["DJF", "JJA", "MAM", "SON"].map(String::from).to_vec();
        assert_eq!(g.labels, vec![Labels::Strings(names)]);
        // Jan → DJF (0), Apr → MAM (2), Jul → JJA (1), the NaT → none
        assert_eq!(
            (g.index[0], g.index[3], g.index[6]),
            (Some(0), Some(2), Some(1))
        );
        assert_eq!(g.index[12], None);
    }

    #[test]
    fn multi_groupers_make_the_cartesian_product() {
        let t = monthly(Calendar::NoLeap, 24);
        let g = Groups::new(&t, &[TimeField::Year, TimeField::Month]).unwrap();
        assert_eq!(g.labels[0], Labels::Ints(vec![2001, 2002]));
        assert_eq!(g.count(), 24);
        assert_eq!(g.index[13], Some(13));
        let one = Groups::new(&t, &[]).unwrap();
        assert_eq!((one.count(), one.index[5]), (1, Some(0)));
    }

    #[test]
    fn groupers_parse_and_refuse() {
        assert_eq!(
            "t.hour".parse::<TimeGrouper>().unwrap().to_string(),
            "t.hour"
        );
        for bad in ["month", ".month", "time.weekday", "time.fortnight", ""] {
            assert!(bad.parse::<TimeGrouper>().is_err(), "{bad}");
        }
        assert!(parse_groupers("time.month,time.month").is_err());
        assert!(parse_groupers("time.month,,time.hour").is_err());
        let g = parse_groupers("time.week,ensemble").unwrap();
        assert!(matches!(&g[1], Grouper::Coord(c) if c == "ensemble"));
    }

    fn ticks(labels: &Labels) -> (Vec<i64>, TimeUnit) {
        match labels {
            Labels::Times { ticks, unit, .. } => (ticks.clone(), *unit),
            other => panic!("not times: {other:?}"),
        }
    }

    #[test]
    fn resampling_bins_start_at_midnight_and_keep_empty_bins() {
        // hours 3, 4, 16 of day 0 and hour 2 of day 2 (a NaT between)
        let t = Array::datetime(
            Array1::from(vec![3i64, 4, i64::MIN, 16, 50]).into_dyn(),
            TimeUnit::Hours,
            Calendar::NoLeap,
        );
        let six = Grouper::Resample(Resample::new("time", "6h").unwrap());
        let (labels, index) = six.labels(&t).unwrap();
        // bins from 00:00 of day 0 to 00:00 of day 2, every 6 hours
        assert_eq!(
            ticks(&labels),
            ((0..9).map(|k| k * 6).collect(), TimeUnit::Hours)
        );
        assert_eq!(index, [Some(0), Some(0), None, Some(2), Some(8)]);
        let daily = Grouper::Resample(Resample::new("time", "1D").unwrap());
        let (labels, index) = daily.labels(&t).unwrap();
        assert_eq!(ticks(&labels), (vec![0, 1, 2], TimeUnit::Days));
        assert_eq!(index, [Some(0), Some(0), None, Some(0), Some(2)]);
    }

    #[test]
    fn month_and_year_bins_follow_the_calendar() {
        let t = monthly(Calendar::Day360, 14);
        let (labels, index) = Grouper::Resample(Resample::new("time", "2MS").unwrap())
            .labels(&t)
            .unwrap();
        let (ticks, unit) = ticks(&labels);
        assert_eq!(unit, TimeUnit::Days);
        let first = Calendar::Day360.days_from_date(2001, 1, 1).unwrap();
        assert_eq!(ticks, (0..7).map(|k| first + 60 * k).collect::<Vec<_>>());
        assert_eq!(
            (index[0], index[1], index[2], index[13], index[14]),
            (Some(0), Some(0), Some(1), Some(6), None)
        );
        let (labels, _) = Grouper::Resample(Resample::new("time", "YS").unwrap())
            .labels(&t)
            .unwrap();
        assert_eq!(labels.len(), 2);
        for bad in ["0D", "1ME", "W", "1.5h", ""] {
            assert!(Resample::new("time", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn coordinates_group_by_their_values() {
        let floats = Array::from_1d(vec![2.5f32, f32::NAN, -1.0, 2.5]);
        let (labels, index) = Grouper::Coord("x".into()).labels(&floats).unwrap();
        assert_eq!(labels, Labels::Floats(vec![-1.0, 2.5]));
        assert_eq!(index, [Some(1), None, Some(0), Some(1)]);
        let names = Array::from_1d(vec!["b".to_owned(), "a".to_owned(), "b".to_owned()]);
        let (labels, index) = Grouper::Coord("x".into()).labels(&names).unwrap();
        assert_eq!(labels, Labels::Strings(vec!["a".into(), "b".into()]));
        assert_eq!(index, [Some(1), Some(0), Some(1)]);
        let ints = Array::from_1d(vec![7u16, 3, 7]);
        let (labels, _) = Grouper::Coord("x".into()).labels(&ints).unwrap();
        assert_eq!(labels, Labels::Ints(vec![3, 7]));
        let custom = Grouper::Custom(Custom {
            name: "bad".into(),
            coord: "x".into(),
            f: Arc::new(|_| Ok(Array::from_1d(vec![1i64]))),
        });
        let err = custom.labels(&ints).unwrap_err().to_string();
        assert!(err.contains("1 labels for 3 steps"), "{err}");
    }
}
