//! Components of datetime arrays, as xarray's `.dt` accessor: what
//! climatology groupers key on.

use ndarray::ArrayD;

use crate::calendar::DateTime;
use crate::{Array, ChunkError};

/// A component of a datetime ([`Array::time_field`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeField {
    /// The year.
    Year,
    /// The month, 1 to 12.
    Month,
    /// The day of the month, from 1.
    Day,
    /// The hour, 0 to 23.
    Hour,
    /// The minute, 0 to 59.
    Minute,
    /// The second, 0 to 59.
    Second,
    /// The day of the year, from 1 (calendar-aware: 360 in a 360-day year).
    DayOfYear,
    /// The meteorological season: `DJF`, `MAM`, `JJA` or `SON` (strings).
    Season,
    /// The ISO 8601 week of the year, 1 to 53 (weeks start on Monday; week
    /// 1 holds the year's first Thursday), as pandas' `isocalendar().week`.
    /// Only calendars that have weekdays as numpy's do (`standard`,
    /// `proleptic_gregorian`) have it; others are an error.
    Week,
}

impl Array {
    /// One component of every datetime, in the array's calendar.
    ///
    /// Numeric fields are `int64`, or `float64` with NaN where the time is
    /// NaT (as xarray); seasons are strings (`"nan"` for NaT).
    ///
    /// ```
    /// use xbeam_chunk::calendar::{Calendar, TimeUnit};
    /// use xbeam_chunk::{Array, TimeField};
    ///
    /// // days 58 and 59 of 2001 in a 360-day calendar: Feb 29 and Feb 30
    /// let start = Calendar::Day360.days_from_date(2001, 1, 1)?;
    /// let t = Array::datetime(ndarray::arr1(&[start + 58, start + 59]).into_dyn(), TimeUnit::Days, Calendar::Day360);
    /// assert_eq!(t.time_field(TimeField::Day)?.as_view::<i64>()?.as_slice().unwrap(), &[29, 30]);
    /// assert_eq!(t.time_field(TimeField::Season)?.format_value(0).unwrap(), "'DJF'");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn time_field(&self, field: TimeField) -> Result<Array, ChunkError> {
        let (ticks, unit, calendar) = self.datetime_ticks()?;
        if field == TimeField::Week && !calendar.is_numpy_compatible() {
            return Err(ChunkError::Invalid(format!(
                "the week of the year needs a standard or proleptic_gregorian calendar, \
                 found {calendar} (as xarray, which has no week for cftime dates)"
            )));
        }
        let dates = ticks.map(|&t| (t != i64::MIN).then(|| calendar.from_ticks(t, unit)));
        if field == TimeField::Season {
            return Ok(Array::from(dates.map(|d| {
                d.map_or_else(|| "nan".to_owned(), |d| d.season().to_owned())
            })));
        }
        let value = |d: &DateTime| -> Result<i64, ChunkError> {
            Ok(match field {
                TimeField::Year => d.year,
                TimeField::Month => i64::from(d.month),
                TimeField::Day => i64::from(d.day),
                TimeField::Hour => i64::from(d.hour),
                TimeField::Minute => i64::from(d.minute),
                TimeField::Second => i64::from(d.second),
                TimeField::DayOfYear => i64::from(d.dayofyear(calendar)?),
                TimeField::Week => iso_week(d, calendar)?,
                TimeField::Season => unreachable!("handled above"),
            })
        };
        let mut values = Vec::with_capacity(dates.len());
        for d in &dates {
            values.push(d.as_ref().map(value).transpose()?);
        }
        let shape = dates.raw_dim();
        if values.iter().all(Option::is_some) {
            let ints: Vec<i64> = values.into_iter().flatten().collect();
            return Ok(Array::from(
                ArrayD::from_shape_vec(shape, ints).expect("one value per time"),
            ));
        }
        let floats = values
            .into_iter()
            .map(|v| v.map_or(f64::NAN, |v| v as f64))
            .collect();
        Ok(Array::from(
            ArrayD::from_shape_vec(shape, floats).expect("one value per time"),
        ))
    }
}

/// The ISO 8601 week of `d` (a date of a calendar with real weekdays).
fn iso_week(d: &DateTime, calendar: crate::calendar::Calendar) -> Result<i64, ChunkError> {
    let days = calendar.days_from_date(d.year, d.month, d.day)?;
    // 1970-01-01 was a Thursday: Monday is 1, Sunday 7
    let weekday = (days + 3).rem_euclid(7) + 1;
    let doy = i64::from(d.dayofyear(calendar)?);
    let week = (doy - weekday + 10).div_euclid(7);
    let weeks_in = |year: i64| -> Result<i64, ChunkError> {
        // a year has 53 weeks when it starts on a Thursday, or on a
        // Wednesday in a leap year
        let jan1 = (calendar.days_from_date(year, 1, 1)? + 3).rem_euclid(7) + 1;
        Ok(if jan1 == 4 || (jan1 == 3 && calendar.is_leap_year(year)) {
            53
        } else {
            52
        })
    };
    Ok(if week < 1 {
        weeks_in(d.year - 1)?
    } else if week > weeks_in(d.year)? {
        1
    } else {
        week
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{Calendar, TimeUnit};

    fn ints(field: Result<Array, ChunkError>) -> Vec<i64> {
        field
            .unwrap()
            .as_view::<i64>()
            .unwrap()
            .iter()
            .copied()
            .collect()
    }

    fn hours(cal: Calendar, start: DateTime, n: i64) -> Array {
        let t0 = cal.to_ticks(&start, TimeUnit::Hours).unwrap();
        Array::datetime(
            ndarray::Array1::from_iter((0..n).map(|h| t0 + h)).into_dyn(),
            TimeUnit::Hours,
            cal,
        )
    }

    #[test]
    fn fields_follow_the_calendar() {
        let noleap = hours(
            Calendar::NoLeap,
            DateTime::new(2000, 2, 28).with_time(23, 0, 0, 0),
            2,
        );
        assert_eq!(ints(noleap.time_field(TimeField::Month)), &[2, 3]);
        assert_eq!(ints(noleap.time_field(TimeField::DayOfYear)), &[59, 60]);
        let greg = hours(
            Calendar::Standard,
            DateTime::new(2000, 2, 28).with_time(23, 0, 0, 0),
            2,
        );
        assert_eq!(ints(greg.time_field(TimeField::Day)), &[28, 29]);
        assert_eq!(ints(greg.time_field(TimeField::Hour)), &[23, 0]);
        assert_eq!(ints(greg.time_field(TimeField::Year)), &[2000, 2000]);
    }

    #[test]
    fn iso_weeks_match_python_isocalendar() {
        // (date, week) pairs from Python's date.isocalendar()
        let cases = [
            ((2005, 1, 1), 53),
            ((2005, 1, 3), 1),
            ((2008, 12, 29), 1),
            ((2009, 12, 31), 53),
            ((2010, 1, 3), 53),
            ((2010, 1, 4), 1),
            ((2020, 12, 31), 53),
            ((2021, 6, 15), 24),
        ];
        for ((y, m, d), week) in cases {
            let t = hours(Calendar::ProlepticGregorian, DateTime::new(y, m, d), 1);
            assert_eq!(ints(t.time_field(TimeField::Week)), &[week], "{y}-{m}-{d}");
        }
        let noleap = hours(Calendar::NoLeap, DateTime::new(2001, 1, 1), 1);
        let err = noleap.time_field(TimeField::Week).unwrap_err().to_string();
        assert!(err.contains("noleap"), "{err}");
    }

    #[test]
    fn nat_gives_nan_and_non_datetimes_are_an_error() {
        let t = Array::datetime(
            ndarray::arr1(&[0i64, i64::MIN]).into_dyn(),
            TimeUnit::Hours,
            Calendar::AllLeap,
        );
        let months = t.time_field(TimeField::Month).unwrap();
        let m = months.as_view::<f64>().unwrap();
        assert_eq!(m[[0]], 1.0);
        assert!(m[[1]].is_nan());
        assert_eq!(
            t.time_field(TimeField::Season)
                .unwrap()
                .format_value(1)
                .unwrap(),
            "'nan'"
        );
        let err = Array::from_1d(vec![1i64])
            .time_field(TimeField::Year)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected an array of datetime, found int64"
        );
    }
}
