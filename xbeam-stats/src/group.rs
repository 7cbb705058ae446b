//! Groupers: the labels a time coordinate gives each step (`time.month`,
//! `time.hour`, ...), and the groups several groupers make together.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use xbeam_chunk::{Array, TimeField};

use crate::StatsError;

/// A grouper by a component of a time coordinate, as xarray's
/// `groupby("time.month")`: `<coordinate>.<part>` with part one of `year`,
/// `month`, `day`, `hour`, `dayofyear`, `season`.
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
const PARTS: [(&str, TimeField); 6] = [
    ("year", TimeField::Year),
    ("month", TimeField::Month),
    ("day", TimeField::Day),
    ("hour", TimeField::Hour),
    ("dayofyear", TimeField::DayOfYear),
    ("season", TimeField::Season),
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

/// Parses a comma-separated list of groupers (`time.month,time.hour`),
/// refusing an empty list and two groupers with the same part.
///
/// ```
/// use xbeam_stats::parse_groupers;
///
/// let g = parse_groupers("time.month,time.hour")?;
/// assert_eq!(g.iter().map(|g| g.name()).collect::<Vec<_>>(), ["month", "hour"]);
/// assert!(parse_groupers("time.hour,time.hour").is_err());
/// # Ok::<(), xbeam_stats::StatsError>(())
/// ```
pub fn parse_groupers(text: &str) -> Result<Vec<TimeGrouper>, StatsError> {
    let mut out: Vec<TimeGrouper> = Vec::new();
    for part in text.split(',') {
        let g: TimeGrouper = part.parse()?;
        if out.iter().any(|o| o.field == g.field) {
            return Err(StatsError::Repeated(g.to_string()));
        }
        out.push(g);
    }
    Ok(out)
}

/// The labels of one grouper: sorted and unique, as xarray's group
/// coordinate holds them.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    /// Integer labels (years, months, hours, ...).
    Ints(Vec<i64>),
    /// String labels (seasons).
    Strings(Vec<String>),
}

impl Labels {
    /// How many labels.
    pub fn len(&self) -> usize {
        match self {
            Labels::Ints(v) => v.len(),
            Labels::Strings(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The labels as a 1-D array (`int64` or strings).
    pub fn to_array(&self) -> Array {
        match self {
            Labels::Ints(v) => Array::from_1d(v.clone()),
            Labels::Strings(v) => Array::from_1d(v.clone()),
        }
    }
}

/// The groups that one or more groupers make of the steps of a time
/// coordinate: the cartesian product of each grouper's sorted labels (as
/// xarray's multi-key groupby), and each step's group in that product
/// (row-major), or `None` for a NaT step (dropped, as xarray drops NaN
/// labels).
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
        let n = time.len();
        let mut labels = Vec::with_capacity(fields.len());
        let mut index: Vec<Option<usize>> = vec![Some(0); n];
        for &field in fields {
            let values = time
                .time_field(field)
                .map_err(|e| StatsError::Invalid(e.to_string()))?;
            let (these, positions) = label_positions(&values)?;
            let k = these.len();
            for (ix, pos) in index.iter_mut().zip(positions) {
                *ix = match (*ix, pos) {
                    (Some(i), Some(p)) => Some(i * k + p),
                    _ => None,
                };
            }
            labels.push(these);
        }
        Ok(Groups { labels, index })
    }

    /// Whether any step falls in each group: a product of groupers can
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

/// Sorted unique labels of one field, and each step's position among them.
fn label_positions(values: &Array) -> Result<(Labels, Vec<Option<usize>>), StatsError> {
    if let Ok(v) = values.as_view::<i64>() {
        let set: BTreeSet<i64> = v.iter().copied().collect();
        let sorted: Vec<i64> = set.into_iter().collect();
        let pos = v.iter().map(|x| sorted.binary_search(x).ok()).collect();
        return Ok((Labels::Ints(sorted), pos));
    }
    if let Ok(v) = values.as_view::<f64>() {
        // NaT steps make NaN labels: dropped
        let set: BTreeSet<i64> = v
            .iter()
            .filter(|x| !x.is_nan())
            .map(|&x| x as i64)
            .collect();
        let sorted: Vec<i64> = set.into_iter().collect();
        let pos = v
            .iter()
            .map(|&x| {
                (!x.is_nan())
                    .then(|| sorted.binary_search(&(x as i64)).ok())
                    .flatten()
            })
            .collect();
        return Ok((Labels::Ints(sorted), pos));
    }
    let v = values
        .as_view::<String>()
        .map_err(|e| StatsError::Invalid(e.to_string()))?;
    let set: BTreeSet<&String> = v.iter().filter(|s| *s != "nan").collect();
    let sorted: Vec<String> = set.into_iter().cloned().collect();
    let pos = v.iter().map(|x| sorted.binary_search(x).ok()).collect();
    Ok((Labels::Strings(sorted), pos))
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
        for bad in ["month", ".month", "time.week", "time.fortnight", ""] {
            assert!(bad.parse::<TimeGrouper>().is_err(), "{bad}");
        }
        assert!(parse_groupers("time.month,time.month").is_err());
    }
}
