//! CF-convention calendars for climate data (the calendars of `cftime`).
//!
//! Every calendar counts days from its own `1970-01-01`, which is day 0. The supported calendars
//! are `standard` (alias `gregorian`: Julian before 1582-10-15, Gregorian from then on),
//! `proleptic_gregorian`, `noleap` (`365_day`), `all_leap` (`366_day`), `360_day` and `julian`.
//! Years use astronomical numbering: year 0 exists and is a leap year in the Julian and Gregorian
//! rules.
//!
//! All conversions are O(1): dates are decomposed with 400-year, 4-year or one-year cycle
//! arithmetic, and tick conversions use checked arithmetic that reports overflow as an error.
//!
//! ```
//! use xbeam_chunk::calendar::{Calendar, CfUnits, DateTime, TimeUnit};
//!
//! let units = CfUnits::parse("days since 2000-01-01", Calendar::NoLeap)?;
//! let ticks = units.decode_i64(59, TimeUnit::Days)?;
//! assert_eq!(Calendar::NoLeap.from_ticks(ticks, TimeUnit::Days), DateTime::new(2000, 3, 1));
//! # Ok::<(), xbeam_chunk::calendar::CalendarError>(())
//! ```

use std::fmt;
use std::str::FromStr;

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
const NANOS_PER_DAY: i64 = SECONDS_PER_DAY * NANOS_PER_SECOND;
/// The year whose January 1st is day 0 in every calendar.
const EPOCH_YEAR: i64 = 1970;
/// 1582-10-15, the first Gregorian day of the standard calendar, in days since 1970-01-01.
const GREGORIAN_START: i64 = -141_427;
/// Day number in the standard calendar minus the day number of the same day in the `julian`
/// calendar's own count (Julian 1970-01-01 is Gregorian 1970-01-14).
const JULIAN_TO_STANDARD: i64 = 13;

/// Errors from parsing and converting CF calendar dates and times.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CalendarError {
    /// The calendar name is not one of the supported CF calendars.
    UnknownCalendar {
        /// The name as given (whitespace trimmed).
        name: String,
    },
    /// A month number outside `1..=12`.
    InvalidMonth {
        /// The month number given.
        month: u32,
    },
    /// A year-month-day triple that does not exist in the calendar.
    InvalidDate {
        /// The calendar the date was checked against.
        calendar: Calendar,
        /// Year of the date.
        year: i64,
        /// Month of the date.
        month: u32,
        /// Day of the date.
        day: u32,
        /// Why the date does not exist.
        reason: String,
    },
    /// A time of day with a field out of range.
    InvalidTime {
        /// Hour given.
        hour: u32,
        /// Minute given.
        minute: u32,
        /// Second given.
        second: u32,
        /// Nanosecond given.
        nanosecond: u32,
    },
    /// A date-time string that could not be parsed.
    InvalidDateString {
        /// The string given (whitespace trimmed).
        input: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A date-time string with a non-zero UTC offset (only UTC is supported).
    NonZeroTimezone {
        /// The whole date-time string.
        input: String,
        /// The offset part of it.
        offset: String,
    },
    /// A time unit name that is not recognised.
    UnknownTimeUnit {
        /// The unit as given.
        unit: String,
    },
    /// A recognised unit that CF time decoding does not support (months, years).
    UnsupportedTimeUnit {
        /// The unit as given.
        unit: String,
    },
    /// CF time units that are not of the form `<unit> since <date>`.
    InvalidUnits {
        /// The units string as given (whitespace trimmed).
        units: String,
    },
    /// A value that is not a whole number of the requested unit.
    NotRepresentable {
        /// Description of the value.
        value: String,
        /// The unit it should have been a whole number of.
        target: String,
    },
    /// A result that does not fit in a signed 64-bit integer.
    Overflow {
        /// Description of the quantity that overflowed.
        what: String,
    },
    /// A NaN or infinite floating-point time value.
    NonFiniteValue {
        /// The value, formatted.
        value: String,
    },
}

impl fmt::Display for CalendarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownCalendar { name } => write!(
                f,
                "unknown calendar {name:?}: expected one of standard, gregorian, \
                 proleptic_gregorian, noleap, 365_day, all_leap, 366_day, 360_day, julian"
            ),
            Self::InvalidMonth { month } => {
                write!(
                    f,
                    "invalid month {month}: expected a month number from 1 to 12"
                )
            }
            Self::InvalidDate {
                calendar,
                year,
                month,
                day,
                reason,
            } => write!(
                f,
                "invalid date {} in calendar {calendar}: {reason}",
                DateDisplay(*year, *month, *day)
            ),
            Self::InvalidTime {
                hour,
                minute,
                second,
                nanosecond,
            } => write!(
                f,
                "invalid time of day {hour:02}:{minute:02}:{second:02}.{nanosecond:09}: expected \
                 hour 0-23, minute 0-59, second 0-59 and nanosecond 0-999999999"
            ),
            Self::InvalidDateString { input, reason } => {
                write!(f, "cannot parse date-time {input:?}: {reason}")
            }
            Self::NonZeroTimezone { input, offset } => write!(
                f,
                "unsupported time zone offset {offset:?} in {input:?}: expected a zero UTC offset \
                 (Z, UTC, +00:00) or none"
            ),
            Self::UnknownTimeUnit { unit } => write!(
                f,
                "unknown time unit {unit:?}: expected one of nanoseconds, microseconds, \
                 milliseconds, seconds, minutes, hours, days (or ns, us, ms, s, min, h, d)"
            ),
            Self::UnsupportedTimeUnit { unit } => write!(
                f,
                "unsupported time unit {unit:?}: months and years have no fixed length in CF \
                 time units; expected days or a finer unit"
            ),
            Self::InvalidUnits { units } => write!(
                f,
                "cannot parse CF time units {units:?}: expected \"<unit> since <date>\""
            ),
            Self::NotRepresentable { value, target } => {
                write!(f, "{value} is not a whole number of {target}")
            }
            Self::Overflow { what } => write!(f, "{what} does not fit in a signed 64-bit integer"),
            Self::NonFiniteValue { value } => write!(
                f,
                "cannot decode time value {value}: expected a finite number \
                 (missing values must be handled before decoding)"
            ),
        }
    }
}

impl std::error::Error for CalendarError {}

/// Formats a date as `YYYY-MM-DD` (years zero-padded to 4 digits, negative years `-0100`).
struct DateDisplay(i64, u32, u32);

impl fmt::Display for DateDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(
            f,
            "{sign}{:04}-{:02}-{:02}",
            self.0.unsigned_abs(),
            self.1,
            self.2
        )
    }
}

/// Converts a value that the caller guarantees to lie in `0..=u32::MAX` (a month, day, hour...).
fn small<T: TryInto<u32>>(value: T) -> u32 {
    value.try_into().unwrap_or(u32::MAX)
}

fn overflow(what: String) -> CalendarError {
    CalendarError::Overflow { what }
}

/// CF calendars.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Calendar {
    /// `standard` / `gregorian`: Julian calendar before 1582-10-15, Gregorian from then on
    /// (1582-10-04 is followed by 1582-10-15).
    Standard,
    /// `proleptic_gregorian`: the Gregorian calendar extended to all years (as numpy uses).
    ProlepticGregorian,
    /// `noleap` / `365_day`: February always has 28 days.
    NoLeap,
    /// `all_leap` / `366_day`: February always has 29 days.
    AllLeap,
    /// `360_day`: twelve months of 30 days.
    Day360,
    /// `julian`: a leap year every 4 years.
    Julian,
}

impl Calendar {
    /// All calendars, in declaration order.
    pub const ALL: [Calendar; 6] = [
        Calendar::Standard,
        Calendar::ProlepticGregorian,
        Calendar::NoLeap,
        Calendar::AllLeap,
        Calendar::Day360,
        Calendar::Julian,
    ];

    /// Parses a CF calendar name, case-insensitively and ignoring surrounding whitespace.
    ///
    /// Aliases: `gregorian` is `standard`, `365_day` is `noleap`, `366_day` is `all_leap`.
    ///
    /// # Errors
    ///
    /// [`CalendarError::UnknownCalendar`] for any other name.
    ///
    /// ```
    /// use xbeam_chunk::calendar::Calendar;
    ///
    /// assert_eq!(Calendar::parse(" Gregorian ")?, Calendar::Standard);
    /// assert_eq!(Calendar::parse("365_day")?, Calendar::NoLeap);
    /// assert!(Calendar::parse("foo").is_err());
    /// # Ok::<(), xbeam_chunk::calendar::CalendarError>(())
    /// ```
    pub fn parse(name: &str) -> Result<Calendar, CalendarError> {
        let trimmed = name.trim();
        match trimmed.to_ascii_lowercase().as_str() {
            "standard" | "gregorian" => Ok(Calendar::Standard),
            "proleptic_gregorian" => Ok(Calendar::ProlepticGregorian),
            "noleap" | "365_day" => Ok(Calendar::NoLeap),
            "all_leap" | "366_day" => Ok(Calendar::AllLeap),
            "360_day" => Ok(Calendar::Day360),
            "julian" => Ok(Calendar::Julian),
            _ => Err(CalendarError::UnknownCalendar {
                name: trimmed.to_string(),
            }),
        }
    }

    /// The canonical CF name of the calendar.
    ///
    /// ```
    /// use xbeam_chunk::calendar::Calendar;
    ///
    /// assert_eq!(Calendar::Day360.name(), "360_day");
    /// assert_eq!(Calendar::Standard.to_string(), "standard");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Calendar::Standard => "standard",
            Calendar::ProlepticGregorian => "proleptic_gregorian",
            Calendar::NoLeap => "noleap",
            Calendar::AllLeap => "all_leap",
            Calendar::Day360 => "360_day",
            Calendar::Julian => "julian",
        }
    }

    /// Whether `year` is a leap year (February has 29 days).
    ///
    /// The standard calendar uses the Julian rule before 1582 and the Gregorian rule from 1582
    /// on (1582 is not a leap year in either). The `360_day` calendar has no leap years.
    ///
    /// ```
    /// use xbeam_chunk::calendar::Calendar;
    ///
    /// assert!(Calendar::Standard.is_leap_year(1500));
    /// assert!(!Calendar::ProlepticGregorian.is_leap_year(1500));
    /// assert!(Calendar::Julian.is_leap_year(-4));
    /// ```
    pub fn is_leap_year(self, year: i64) -> bool {
        let julian = year.rem_euclid(4) == 0;
        let gregorian = julian && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0);
        match self {
            Calendar::Standard => {
                if year < 1582 {
                    julian
                } else {
                    gregorian
                }
            }
            Calendar::ProlepticGregorian => gregorian,
            Calendar::Julian => julian,
            Calendar::AllLeap => true,
            Calendar::NoLeap | Calendar::Day360 => false,
        }
    }

    /// Number of days in a month (1-based month number).
    ///
    /// For the standard calendar, October 1582 has 21 days (the 5th to the 14th do not exist),
    /// although its days are numbered up to 31.
    ///
    /// # Errors
    ///
    /// [`CalendarError::InvalidMonth`] if `month` is not in `1..=12`.
    ///
    /// ```
    /// use xbeam_chunk::calendar::Calendar;
    ///
    /// assert_eq!(Calendar::NoLeap.days_in_month(2000, 2)?, 28);
    /// assert_eq!(Calendar::Day360.days_in_month(2000, 1)?, 30);
    /// assert_eq!(Calendar::Standard.days_in_month(1582, 10)?, 21);
    /// # Ok::<(), xbeam_chunk::calendar::CalendarError>(())
    /// ```
    pub fn days_in_month(self, year: i64, month: u32) -> Result<u32, CalendarError> {
        if !(1..=12).contains(&month) {
            return Err(CalendarError::InvalidMonth { month });
        }
        if self == Calendar::Standard && year == 1582 && month == 10 {
            return Ok(21);
        }
        Ok(self.last_day(year, month))
    }

    /// Number of days in a year (355 for 1582 in the standard calendar).
    ///
    /// ```
    /// use xbeam_chunk::calendar::Calendar;
    ///
    /// assert_eq!(Calendar::Standard.days_in_year(1582), 355);
    /// assert_eq!(Calendar::AllLeap.days_in_year(2001), 366);
    /// assert_eq!(Calendar::Day360.days_in_year(2000), 360);
    /// ```
    pub fn days_in_year(self, year: i64) -> i64 {
        match self {
            Calendar::Day360 => 360,
            Calendar::Standard if year == 1582 => 355,
            _ if self.is_leap_year(year) => 366,
            _ => 365,
        }
    }

    /// Whether dates of this calendar map directly onto numpy `datetime64` (which uses the
    /// proleptic Gregorian calendar): true for `standard` and `proleptic_gregorian`. For
    /// `standard`, this holds for dates from 1582-10-15 on.
    pub fn is_numpy_compatible(self) -> bool {
        matches!(self, Calendar::Standard | Calendar::ProlepticGregorian)
    }

    /// Days since 1970-01-01 of this calendar (its own 1970-01-01 is day 0).
    ///
    /// # Errors
    ///
    /// [`CalendarError::InvalidDate`] if the date does not exist in the calendar (including
    /// 1582-10-05 to 1582-10-14 in the standard calendar), [`CalendarError::Overflow`] if the
    /// day number does not fit in an `i64`.
    ///
    /// ```
    /// use xbeam_chunk::calendar::Calendar;
    ///
    /// assert_eq!(Calendar::ProlepticGregorian.days_from_date(2000, 1, 1)?, 10957);
    /// assert_eq!(Calendar::Day360.days_from_date(2000, 1, 1)?, 10800);
    /// assert_eq!(Calendar::Standard.days_from_date(1582, 10, 4)?, -141_428);
    /// assert_eq!(Calendar::Standard.days_from_date(1582, 10, 15)?, -141_427);
    /// assert!(Calendar::Standard.days_from_date(1582, 10, 10).is_err());
    /// # Ok::<(), xbeam_chunk::calendar::CalendarError>(())
    /// ```
    pub fn days_from_date(self, year: i64, month: u32, day: u32) -> Result<i64, CalendarError> {
        self.check_date(year, month, day)?;
        let (rules, offset) = if self == Calendar::Standard && (year, month, day) < (1582, 10, 15) {
            (Calendar::Julian, JULIAN_TO_STANDARD)
        } else {
            (self, 0)
        };
        let days = rules.year_start(i128::from(year))
            + i128::from(rules.days_before_month(year, month))
            + i128::from(day)
            - 1
            + i128::from(offset);
        i64::try_from(days).map_err(|_| {
            overflow(format!(
                "the day number of {} in calendar {self}",
                DateDisplay(year, month, day)
            ))
        })
    }

    /// The date `(year, month, day)` of a day number since 1970-01-01; the inverse of
    /// [`Calendar::days_from_date`]. Works for every `i64` in O(1).
    ///
    /// ```
    /// use xbeam_chunk::calendar::Calendar;
    ///
    /// assert_eq!(Calendar::Standard.date_from_days(-141_428), (1582, 10, 4));
    /// assert_eq!(Calendar::Standard.date_from_days(-141_427), (1582, 10, 15));
    /// assert_eq!(Calendar::Day360.date_from_days(-1), (1969, 12, 30));
    /// ```
    pub fn date_from_days(self, days: i64) -> (i64, u32, u32) {
        match self {
            Calendar::Standard if days < GREGORIAN_START => {
                Calendar::Julian.decompose(days, -JULIAN_TO_STANDARD)
            }
            _ => self.decompose(days, 0),
        }
    }

    /// Checks that a date-time exists in this calendar.
    ///
    /// # Errors
    ///
    /// [`CalendarError::InvalidDate`] for a date that does not exist,
    /// [`CalendarError::InvalidTime`] for a time of day out of range.
    pub fn validate(self, dt: &DateTime) -> Result<(), CalendarError> {
        self.check_date(dt.year, dt.month, dt.day)?;
        check_time(dt)
    }

    /// Ticks of `unit` since 1970-01-01T00:00:00 of this calendar.
    ///
    /// # Errors
    ///
    /// [`CalendarError::InvalidDate`] / [`CalendarError::InvalidTime`] for an invalid date-time,
    /// [`CalendarError::NotRepresentable`] if `dt` is not a whole number of `unit` (e.g. 00:30
    /// in hours), [`CalendarError::Overflow`] if the count does not fit in an `i64`.
    ///
    /// ```
    /// use xbeam_chunk::calendar::{Calendar, DateTime, TimeUnit};
    ///
    /// let dt = DateTime::new(1970, 1, 2).with_time(6, 0, 0, 0);
    /// assert_eq!(Calendar::Standard.to_ticks(&dt, TimeUnit::Hours)?, 30);
    /// assert!(Calendar::Standard.to_ticks(&dt, TimeUnit::Days).is_err());
    /// # Ok::<(), xbeam_chunk::calendar::CalendarError>(())
    /// ```
    pub fn to_ticks(self, dt: &DateTime, unit: TimeUnit) -> Result<i64, CalendarError> {
        let nanos = self.instant_nanos(dt)?;
        nanos_to_ticks(nanos, unit, || format!("{dt} (calendar {self})"))
    }

    /// The date-time `ticks` of `unit` after 1970-01-01T00:00:00 of this calendar. Negative
    /// ticks count backwards (floor division).
    ///
    /// ```
    /// use xbeam_chunk::calendar::{Calendar, DateTime, TimeUnit};
    ///
    /// let dt = Calendar::Standard.from_ticks(-1, TimeUnit::Hours);
    /// assert_eq!(dt, DateTime::new(1969, 12, 31).with_time(23, 0, 0, 0));
    /// ```
    pub fn from_ticks(self, ticks: i64, unit: TimeUnit) -> DateTime {
        let per_day = NANOS_PER_DAY / unit.nanos();
        let days = ticks.div_euclid(per_day);
        let nanos_of_day = ticks.rem_euclid(per_day) * unit.nanos();
        let (year, month, day) = self.date_from_days(days);
        let seconds = nanos_of_day / NANOS_PER_SECOND;
        DateTime {
            year,
            month,
            day,
            hour: small(seconds / 3600),
            minute: small(seconds / 60 % 60),
            second: small(seconds % 60),
            nanosecond: small(nanos_of_day % NANOS_PER_SECOND),
        }
    }

    /// Nanoseconds since 1970-01-01T00:00:00 of this calendar (validated, never overflows).
    fn instant_nanos(self, dt: &DateTime) -> Result<i128, CalendarError> {
        check_time(dt)?;
        let days = self.days_from_date(dt.year, dt.month, dt.day)?;
        let seconds = i64::from(dt.hour) * 3600 + i64::from(dt.minute) * 60 + i64::from(dt.second);
        Ok(i128::from(days) * i128::from(NANOS_PER_DAY)
            + i128::from(seconds * NANOS_PER_SECOND + i64::from(dt.nanosecond)))
    }

    /// The largest day number of a month (month in `1..=12`), ignoring the 1582 gap.
    fn last_day(self, year: i64, month: u32) -> u32 {
        match (self, month) {
            (Calendar::Day360, _) | (_, 4 | 6 | 9 | 11) => 30,
            (_, 2) if self.is_leap_year(year) => 29,
            (_, 2) => 28,
            _ => 31,
        }
    }

    /// Days in the months of `year` before `month` (ignoring the 1582 gap).
    fn days_before_month(self, year: i64, month: u32) -> u32 {
        (1..month).map(|m| self.last_day(year, m)).sum()
    }

    /// Days from 1970-01-01 to January 1st of `year` under this calendar's proleptic rules
    /// (`Standard` is treated as proleptic Gregorian here).
    fn year_start(self, year: i128) -> i128 {
        self.days_since_year_one(year) - self.days_since_year_one(i128::from(EPOCH_YEAR))
    }

    /// Days from January 1st of year 1 to January 1st of `year` (floor arithmetic, so year 0
    /// and negative years follow the same leap rules).
    fn days_since_year_one(self, year: i128) -> i128 {
        let y = year - 1;
        match self {
            Calendar::Standard | Calendar::ProlepticGregorian => {
                365 * y + y.div_euclid(4) - y.div_euclid(100) + y.div_euclid(400)
            }
            Calendar::Julian => 365 * y + y.div_euclid(4),
            Calendar::NoLeap => 365 * y,
            Calendar::AllLeap => 366 * y,
            Calendar::Day360 => 360 * y,
        }
    }

    /// The repeating cycle of the proleptic rules: (days, years).
    fn cycle(self) -> (i64, i64) {
        match self {
            Calendar::Standard | Calendar::ProlepticGregorian => (146_097, 400),
            Calendar::Julian => (1461, 4),
            Calendar::NoLeap => (365, 1),
            Calendar::AllLeap => (366, 1),
            Calendar::Day360 => (360, 1),
        }
    }

    /// The proleptic date of day `days + shift` (`shift` small), without overflow for any
    /// `days`: whole cycles are split off first, then the year within the cycle is estimated
    /// from the mean year length and corrected by at most a step or two.
    fn decompose(self, days: i64, shift: i64) -> (i64, u32, u32) {
        let (cycle_days, cycle_years) = self.cycle();
        let cycles = days.div_euclid(cycle_days);
        let within = days.rem_euclid(cycle_days) + shift;
        let rest = i128::from(within);
        let start = |y: i64| self.year_start(i128::from(EPOCH_YEAR + y));
        let mut y = (within * cycle_years).div_euclid(cycle_days);
        while start(y) > rest {
            y -= 1;
        }
        while start(y + 1) <= rest {
            y += 1;
        }
        let year = EPOCH_YEAR + cycles * cycle_years + y;
        let mut day_of_year = rest - start(y);
        let mut month = 1;
        while month < 12 {
            let len = i128::from(self.last_day(year, month));
            if day_of_year < len {
                break;
            }
            day_of_year -= len;
            month += 1;
        }
        (year, month, small(day_of_year + 1))
    }

    fn check_date(self, year: i64, month: u32, day: u32) -> Result<(), CalendarError> {
        let invalid = |reason: String| CalendarError::InvalidDate {
            calendar: self,
            year,
            month,
            day,
            reason,
        };
        if !(1..=12).contains(&month) {
            return Err(invalid(format!(
                "month {month} is out of range (expected 1 to 12)"
            )));
        }
        let last = self.last_day(year, month);
        if day == 0 || day > last {
            return Err(invalid(format!(
                "day {day} is out of range for month {month} ({last} days)"
            )));
        }
        if self == Calendar::Standard && year == 1582 && month == 10 && (5..=14).contains(&day) {
            return Err(invalid(
                "1582-10-05 to 1582-10-14 do not exist (1582-10-04 is followed by 1582-10-15)"
                    .to_string(),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Calendar {
    type Err = CalendarError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Calendar::parse(s)
    }
}

fn check_time(dt: &DateTime) -> Result<(), CalendarError> {
    if dt.hour > 23
        || dt.minute > 59
        || dt.second > 59
        || i64::from(dt.nanosecond) >= NANOS_PER_SECOND
    {
        return Err(CalendarError::InvalidTime {
            hour: dt.hour,
            minute: dt.minute,
            second: dt.second,
            nanosecond: dt.nanosecond,
        });
    }
    Ok(())
}

/// The nearest multiple of `unit` to an instant in nanoseconds (halves round up).
fn nearest_tick(nanos: i128, unit: TimeUnit) -> i128 {
    let tick = i128::from(unit.nanos());
    let below = nanos.rem_euclid(tick);
    if below * 2 >= tick {
        nanos - below + tick
    } else {
        nanos - below
    }
}

/// Converts a nanosecond count to a whole number of `unit`, or explains why it cannot.
fn nanos_to_ticks(
    nanos: i128,
    unit: TimeUnit,
    describe: impl FnOnce() -> String,
) -> Result<i64, CalendarError> {
    let unit_nanos = i128::from(unit.nanos());
    if nanos.rem_euclid(unit_nanos) != 0 {
        return Err(CalendarError::NotRepresentable {
            value: describe(),
            target: unit.name().to_string(),
        });
    }
    i64::try_from(nanos / unit_nanos).map_err(|_| {
        overflow(format!(
            "the number of {} since 1970-01-01 for {}",
            unit.name(),
            describe()
        ))
    })
}

/// Time units, finest to coarsest.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum TimeUnit {
    /// 10⁻⁹ seconds.
    Nanoseconds,
    /// 10⁻⁶ seconds.
    Microseconds,
    /// 10⁻³ seconds.
    Milliseconds,
    /// Seconds.
    Seconds,
    /// 60 seconds.
    Minutes,
    /// 3600 seconds.
    Hours,
    /// 86400 seconds (CF days have no leap seconds).
    Days,
}

impl TimeUnit {
    /// All units, finest to coarsest.
    pub const ALL: [TimeUnit; 7] = [
        TimeUnit::Nanoseconds,
        TimeUnit::Microseconds,
        TimeUnit::Milliseconds,
        TimeUnit::Seconds,
        TimeUnit::Minutes,
        TimeUnit::Hours,
        TimeUnit::Days,
    ];

    /// Length of the unit in nanoseconds.
    ///
    /// ```
    /// use xbeam_chunk::calendar::TimeUnit;
    ///
    /// assert_eq!(TimeUnit::Hours.nanos(), 3_600_000_000_000);
    /// ```
    pub fn nanos(self) -> i64 {
        match self {
            TimeUnit::Nanoseconds => 1,
            TimeUnit::Microseconds => 1_000,
            TimeUnit::Milliseconds => 1_000_000,
            TimeUnit::Seconds => NANOS_PER_SECOND,
            TimeUnit::Minutes => 60 * NANOS_PER_SECOND,
            TimeUnit::Hours => 3600 * NANOS_PER_SECOND,
            TimeUnit::Days => NANOS_PER_DAY,
        }
    }

    /// Parses a CF/udunits unit spelling, case-insensitively: `nanoseconds`/`ns`,
    /// `microseconds`/`us`/`µs`, `milliseconds`/`ms`/`msec`, `seconds`/`second`/`sec`/`secs`/`s`,
    /// `minutes`/`minute`/`min`/`mins`, `hours`/`hour`/`hr`/`hrs`/`h`, `days`/`day`/`d`.
    ///
    /// # Errors
    ///
    /// [`CalendarError::UnsupportedTimeUnit`] for months and years (no fixed length in CF),
    /// [`CalendarError::UnknownTimeUnit`] for anything else.
    ///
    /// ```
    /// use xbeam_chunk::calendar::TimeUnit;
    ///
    /// assert_eq!(TimeUnit::parse("Hours")?, TimeUnit::Hours);
    /// assert_eq!(TimeUnit::parse("msec")?, TimeUnit::Milliseconds);
    /// assert!(TimeUnit::parse("months").is_err());
    /// # Ok::<(), xbeam_chunk::calendar::CalendarError>(())
    /// ```
    pub fn parse(s: &str) -> Result<TimeUnit, CalendarError> {
        let unit = s.trim();
        match unit.to_lowercase().as_str() {
            "nanoseconds" | "nanosecond" | "ns" | "nsec" | "nsecs" => Ok(TimeUnit::Nanoseconds),
            "microseconds" | "microsecond" | "us" | "µs" | "μs" | "usec" | "usecs" => {
                Ok(TimeUnit::Microseconds)
            }
            "milliseconds" | "millisecond" | "ms" | "msec" | "msecs" => Ok(TimeUnit::Milliseconds),
            "seconds" | "second" | "sec" | "secs" | "s" => Ok(TimeUnit::Seconds),
            "minutes" | "minute" | "min" | "mins" => Ok(TimeUnit::Minutes),
            "hours" | "hour" | "hr" | "hrs" | "h" => Ok(TimeUnit::Hours),
            "days" | "day" | "d" => Ok(TimeUnit::Days),
            "months" | "month" | "mon" | "years" | "year" | "yr" | "yrs" | "common_years"
            | "common_year" => Err(CalendarError::UnsupportedTimeUnit {
                unit: unit.to_string(),
            }),
            _ => Err(CalendarError::UnknownTimeUnit {
                unit: unit.to_string(),
            }),
        }
    }

    /// The CF spelling: `nanoseconds`, `microseconds`, ..., `days`.
    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Nanoseconds => "nanoseconds",
            TimeUnit::Microseconds => "microseconds",
            TimeUnit::Milliseconds => "milliseconds",
            TimeUnit::Seconds => "seconds",
            TimeUnit::Minutes => "minutes",
            TimeUnit::Hours => "hours",
            TimeUnit::Days => "days",
        }
    }

    /// The numpy `datetime64` unit code: `ns`, `us`, `ms`, `s`, `m`, `h`, `D`.
    ///
    /// ```
    /// use xbeam_chunk::calendar::TimeUnit;
    ///
    /// assert_eq!(TimeUnit::Days.numpy_code(), "D");
    /// ```
    pub fn numpy_code(self) -> &'static str {
        match self {
            TimeUnit::Nanoseconds => "ns",
            TimeUnit::Microseconds => "us",
            TimeUnit::Milliseconds => "ms",
            TimeUnit::Seconds => "s",
            TimeUnit::Minutes => "m",
            TimeUnit::Hours => "h",
            TimeUnit::Days => "D",
        }
    }
}

impl fmt::Display for TimeUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TimeUnit {
    type Err = CalendarError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TimeUnit::parse(s)
    }
}

/// A broken-down date-time in some calendar (calendar-agnostic fields; check them with
/// [`Calendar::validate`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct DateTime {
    /// Astronomical year (year 0 exists, -1 is 2 BC).
    pub year: i64,
    /// Month, 1 to 12.
    pub month: u32,
    /// Day of the month, from 1.
    pub day: u32,
    /// Hour, 0 to 23.
    pub hour: u32,
    /// Minute, 0 to 59.
    pub minute: u32,
    /// Second, 0 to 59.
    pub second: u32,
    /// Nanosecond within the second, 0 to 999 999 999.
    pub nanosecond: u32,
}

impl DateTime {
    /// Midnight at the start of the given date (not validated).
    ///
    /// ```
    /// use xbeam_chunk::calendar::DateTime;
    ///
    /// assert_eq!(DateTime::new(2000, 1, 2).to_string(), "2000-01-02T00:00:00");
    /// ```
    pub fn new(year: i64, month: u32, day: u32) -> DateTime {
        DateTime {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
            nanosecond: 0,
        }
    }

    /// The same date at the given time of day (not validated).
    ///
    /// ```
    /// use xbeam_chunk::calendar::DateTime;
    ///
    /// let dt = DateTime::new(2000, 1, 2).with_time(12, 30, 0, 500_000_000);
    /// assert_eq!(dt.to_string(), "2000-01-02T12:30:00.5");
    /// ```
    pub fn with_time(self, hour: u32, minute: u32, second: u32, nanosecond: u32) -> DateTime {
        DateTime {
            hour,
            minute,
            second,
            nanosecond,
            ..self
        }
    }

    /// Parses ISO-like and CF date-times: `1970-01-01`, `1970-1-1`, `1900-01-01 00:00:00`,
    /// `1900-01-01T00:00:00`, `1900-01-01 00:00:0.0`, `2000-01-01 12:00:00.5`, `-0100-01-01`,
    /// `1900-01-01 06:30`. A trailing zero UTC offset (`Z`, `UTC`, `+00:00`, ` 0:00`) is
    /// accepted.
    ///
    /// Field ranges are checked (month 1-12, day 1-31, hour 0-23, minute and second 0-59), but
    /// not the calendar: use [`Calendar::validate`] for that.
    ///
    /// # Errors
    ///
    /// [`CalendarError::InvalidDateString`] if the text cannot be parsed,
    /// [`CalendarError::NonZeroTimezone`] for a non-zero UTC offset.
    ///
    /// ```
    /// use xbeam_chunk::calendar::DateTime;
    ///
    /// let dt = DateTime::parse("1850-1-1 6:0:0.25 UTC")?;
    /// assert_eq!(dt, DateTime::new(1850, 1, 1).with_time(6, 0, 0, 250_000_000));
    /// assert_eq!(DateTime::parse("-0100-03-01")?.year, -100);
    /// assert!(DateTime::parse("2000-01-01T00:00:00+01:00").is_err());
    /// # Ok::<(), xbeam_chunk::calendar::CalendarError>(())
    /// ```
    pub fn parse(s: &str) -> Result<DateTime, CalendarError> {
        let input = s.trim();
        let err = |reason: String| CalendarError::InvalidDateString {
            input: input.to_string(),
            reason,
        };
        let (negative, body) = match input.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, input.strip_prefix('+').unwrap_or(input)),
        };
        let date_len = body
            .find(|c: char| !(c.is_ascii_digit() || c == '-'))
            .unwrap_or(body.len());
        let (date, rest) = body.split_at(date_len);
        let mut fields = date.split('-');
        let (Some(y), Some(m), Some(d), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(err("expected a date of the form YYYY-MM-DD".to_string()));
        };
        let year = digits(y)
            .and_then(|v| i64::try_from(v).ok())
            .ok_or_else(|| err(format!("invalid year {y:?}: expected digits")))?;
        let year = if negative { -year } else { year };
        let month = digits(m)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| (1..=12).contains(v))
            .ok_or_else(|| err(format!("invalid month {m:?}: expected 1 to 12")))?;
        let day = digits(d)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| (1..=31).contains(v))
            .ok_or_else(|| err(format!("invalid day {d:?}: expected 1 to 31")))?;
        let mut dt = DateTime::new(year, month, day);

        let rest = rest.strip_prefix(['T', 't']).unwrap_or(rest).trim_start();
        let (time, zone) = if rest.starts_with(|c: char| c.is_ascii_digit()) {
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
                .unwrap_or(rest.len());
            rest.split_at(end)
        } else {
            ("", rest)
        };
        if !time.is_empty() {
            parse_time(time, &mut dt).map_err(err)?;
        }
        check_zone(input, zone)?;
        Ok(dt)
    }

    /// Day of the year, from 1 (the 1582 gap of the standard calendar is skipped, so
    /// 1582-10-15 is day 278 there).
    ///
    /// # Errors
    ///
    /// [`CalendarError::InvalidDate`] if the date does not exist in `calendar`.
    ///
    /// ```
    /// use xbeam_chunk::calendar::{Calendar, DateTime};
    ///
    /// let dt = DateTime::new(2000, 3, 1);
    /// assert_eq!(dt.dayofyear(Calendar::NoLeap)?, 60);
    /// assert_eq!(dt.dayofyear(Calendar::ProlepticGregorian)?, 61);
    /// # Ok::<(), xbeam_chunk::calendar::CalendarError>(())
    /// ```
    pub fn dayofyear(&self, calendar: Calendar) -> Result<u32, CalendarError> {
        let day = calendar.days_from_date(self.year, self.month, self.day)?;
        let first = calendar.days_from_date(self.year, 1, 1)?;
        Ok(small(day - first + 1))
    }

    /// The meteorological season of the month: `DJF`, `MAM`, `JJA` or `SON`
    /// (see [`season_of_month`]).
    pub fn season(&self) -> &'static str {
        season_of_month(self.month)
    }

    /// Whether the time of day is 00:00:00 exactly.
    pub fn is_midnight(&self) -> bool {
        self.hour == 0 && self.minute == 0 && self.second == 0 && self.nanosecond == 0
    }
}

/// Parses the digits of a number (no sign); `None` if empty or not all ASCII digits.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `H:M`, `H:M:S` or `H:M:S.fraction` into `dt`.
fn parse_time(time: &str, dt: &mut DateTime) -> Result<(), String> {
    let mut parts = time.split(':');
    let (Some(h), Some(m), s, None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "invalid time {time:?}: expected HH:MM or HH:MM:SS[.fraction]"
        ));
    };
    let field = |text: &str, name: &str, max: u32| {
        digits(text)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v <= max)
            .ok_or_else(|| format!("invalid {name} {text:?}: expected 0 to {max}"))
    };
    dt.hour = field(h, "hour", 23)?;
    dt.minute = field(m, "minute", 59)?;
    if let Some(s) = s {
        let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
        dt.second = field(whole, "second", 59)?;
        if s.contains('.') {
            let (kept, dropped) = fraction.split_at(fraction.len().min(9));
            if kept.is_empty()
                || !fraction.bytes().all(|b| b.is_ascii_digit())
                || dropped.bytes().any(|b| b != b'0')
            {
                return Err(format!(
                    "invalid fractional seconds {fraction:?}: expected 1 to 9 digits"
                ));
            }
            dt.nanosecond = format!("{kept:0<9}")
                .parse()
                .map_err(|_| "invalid fraction")?;
        }
    }
    Ok(())
}

/// Accepts an empty string or a zero UTC offset (`Z`, `UTC`, `GMT`, `+00:00`, `0:00`, `+0000`).
fn check_zone(input: &str, zone: &str) -> Result<(), CalendarError> {
    let zone = zone.trim();
    if zone.is_empty()
        || ["z", "utc", "gmt"]
            .iter()
            .any(|name| zone.eq_ignore_ascii_case(name))
    {
        return Ok(());
    }
    let unsigned = zone.strip_prefix(['+', '-']).unwrap_or(zone);
    let (h, m) = match unsigned.split_once(':') {
        Some(parts) => parts,
        None if unsigned.len() == 4 && unsigned.bytes().all(|b| b.is_ascii_digit()) => {
            unsigned.split_at(2)
        }
        None => (unsigned, "0"),
    };
    let well_formed = (1..=2).contains(&h.len()) && (1..=2).contains(&m.len());
    match (digits(h), digits(m)) {
        (Some(0), Some(0)) if well_formed => Ok(()),
        (Some(_), Some(_)) if well_formed => Err(CalendarError::NonZeroTimezone {
            input: input.to_string(),
            offset: zone.to_string(),
        }),
        _ => Err(CalendarError::InvalidDateString {
            input: input.to_string(),
            reason: format!(
                "unexpected text {zone:?} after the date-time: expected nothing or a zero UTC \
                 offset (Z, UTC, +00:00)"
            ),
        }),
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}T{:02}:{:02}:{:02}",
            DateDisplay(self.year, self.month, self.day),
            self.hour,
            self.minute,
            self.second
        )?;
        if self.nanosecond != 0 {
            let fraction = format!("{:09}", self.nanosecond);
            write!(f, ".{}", fraction.trim_end_matches('0'))?;
        }
        Ok(())
    }
}

impl FromStr for DateTime {
    type Err = CalendarError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DateTime::parse(s)
    }
}

/// The meteorological season of a month number: `DJF` (December to February), `MAM`, `JJA`
/// or `SON`. Month numbers outside `1..=12` are taken modulo 12 (so 0 is December).
///
/// ```
/// use xbeam_chunk::calendar::season_of_month;
///
/// assert_eq!(season_of_month(12), "DJF");
/// assert_eq!(season_of_month(7), "JJA");
/// ```
pub fn season_of_month(month: u32) -> &'static str {
    match month % 12 {
        0..=2 => "DJF",
        3..=5 => "MAM",
        6..=8 => "JJA",
        _ => "SON",
    }
}

/// Parsed CF time units: `<unit> since <reference date>`, in a calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CfUnits {
    /// The unit of the encoded values.
    pub unit: TimeUnit,
    /// The date-time that the value 0 stands for.
    pub reference: DateTime,
    /// The calendar of the reference date (and of the decoded ticks).
    pub calendar: Calendar,
}

impl CfUnits {
    /// Parses CF time units such as `hours since 1900-01-01`, `days since 1850-1-1 0:0:0` or
    /// `seconds since 1970-01-01T00:00:00Z`; the reference date must exist in `calendar`.
    ///
    /// # Errors
    ///
    /// [`CalendarError::InvalidUnits`] if the text is not `<unit> since <date>`,
    /// [`CalendarError::UnsupportedTimeUnit`] for `months since` / `years since` (ambiguous in
    /// CF), [`CalendarError::UnknownTimeUnit`] for an unknown unit, and the errors of
    /// [`DateTime::parse`] and [`Calendar::validate`] for the reference date.
    ///
    /// ```
    /// use xbeam_chunk::calendar::{Calendar, CfUnits, DateTime, TimeUnit};
    ///
    /// let units = CfUnits::parse("Hours since 1900-01-01 06:00:00", Calendar::Standard)?;
    /// assert_eq!(units.unit, TimeUnit::Hours);
    /// assert_eq!(units.reference, DateTime::new(1900, 1, 1).with_time(6, 0, 0, 0));
    /// assert!(CfUnits::parse("months since 2000-01-01", Calendar::Standard).is_err());
    /// # Ok::<(), xbeam_chunk::calendar::CalendarError>(())
    /// ```
    pub fn parse(units: &str, calendar: Calendar) -> Result<CfUnits, CalendarError> {
        let trimmed = units.trim();
        let invalid = || CalendarError::InvalidUnits {
            units: trimmed.to_string(),
        };
        let (unit, rest) = trimmed
            .split_once(char::is_whitespace)
            .ok_or_else(invalid)?;
        let (since, date) = rest
            .trim_start()
            .split_once(char::is_whitespace)
            .ok_or_else(invalid)?;
        if !since.eq_ignore_ascii_case("since") || date.trim().is_empty() {
            return Err(invalid());
        }
        let unit = TimeUnit::parse(unit)?;
        let reference = DateTime::parse(date)?;
        calendar.validate(&reference)?;
        Ok(CfUnits {
            unit,
            reference,
            calendar,
        })
    }

    /// Formats the units as xarray writes them: `hours since 1900-01-01` when the reference is
    /// at midnight, else `hours since 1900-01-01T06:00:00`.
    ///
    /// ```
    /// use xbeam_chunk::calendar::{Calendar, CfUnits};
    ///
    /// let units = CfUnits::parse("days since 1850-1-1 0:0:0", Calendar::NoLeap)?;
    /// assert_eq!(units.format(), "days since 1850-01-01");
    /// # Ok::<(), xbeam_chunk::calendar::CalendarError>(())
    /// ```
    pub fn format(&self) -> String {
        self.to_string()
    }

    /// Decodes an integer count of `self.unit` since the reference into ticks of `tick_unit`
    /// since 1970-01-01 of the same calendar.
    ///
    /// # Errors
    ///
    /// [`CalendarError::NotRepresentable`] if the instant is not a whole number of `tick_unit`,
    /// [`CalendarError::Overflow`] if the result does not fit in an `i64`, and the errors of
    /// [`Calendar::validate`] if the reference was built invalid by hand.
    ///
    /// ```
    /// use xbeam_chunk::calendar::{Calendar, CfUnits, TimeUnit};
    ///
    /// let units = CfUnits::parse("hours since 1970-01-02", Calendar::Standard)?;
    /// assert_eq!(units.decode_i64(1, TimeUnit::Seconds)?, 90_000);
    /// assert!(units.decode_i64(1, TimeUnit::Days).is_err());
    /// # Ok::<(), xbeam_chunk::calendar::CalendarError>(())
    /// ```
    pub fn decode_i64(&self, value: i64, tick_unit: TimeUnit) -> Result<i64, CalendarError> {
        let reference = self.calendar.instant_nanos(&self.reference)?;
        let nanos = reference + i128::from(value) * i128::from(self.unit.nanos());
        nanos_to_ticks(nanos, tick_unit, || format!("{value} {self}"))
    }

    /// Decodes a float count of `self.unit` since the reference (CF allows float offsets) into
    /// ticks of `tick_unit`. The exact value of the float times the unit is rounded to the
    /// nearest nanosecond; the result must then be a whole number of `tick_unit`, up to one unit
    /// in the last place of `value` (so `1000.1 days` is 2:24 after 1000 days even though
    /// `1000.1` is not exact in binary, while `0.1 days` in hours is an error). Integral floats
    /// decode exactly like [`CfUnits::decode_i64`].
    ///
    /// # Errors
    ///
    /// [`CalendarError::NonFiniteValue`] for NaN or infinities (handle missing values first),
    /// [`CalendarError::NotRepresentable`] and [`CalendarError::Overflow`] as for
    /// [`CfUnits::decode_i64`].
    ///
    /// ```
    /// use xbeam_chunk::calendar::{Calendar, CfUnits, TimeUnit};
    ///
    /// let units = CfUnits::parse("hours since 1970-01-01", Calendar::Standard)?;
    /// assert_eq!(units.decode_f64(1.5, TimeUnit::Minutes)?, 90);
    /// assert!(units.decode_f64(f64::NAN, TimeUnit::Minutes).is_err());
    /// # Ok::<(), xbeam_chunk::calendar::CalendarError>(())
    /// ```
    pub fn decode_f64(&self, value: f64, tick_unit: TimeUnit) -> Result<i64, CalendarError> {
        let (nanos, tolerance) = self.offset_nanos(value)?;
        let nearest = nearest_tick(nanos, tick_unit);
        if (nanos - nearest).abs() > tolerance {
            return Err(CalendarError::NotRepresentable {
                value: format!("{value} {self}"),
                target: tick_unit.name().to_string(),
            });
        }
        nanos_to_ticks(nearest, tick_unit, || format!("{value} {self}"))
    }

    /// Decodes a float count of `self.unit` since the reference into the nearest tick of
    /// `tick_unit` since 1970-01-01, as xarray (nanoseconds) and cftime (microseconds) round
    /// float times: `1042097.9988888887 hours` is not a whole microsecond, but its nearest
    /// one is what the file means.
    ///
    /// # Errors
    ///
    /// [`CalendarError::NonFiniteValue`] for NaN or infinite values, and
    /// [`CalendarError::Overflow`] if the instant does not fit in `tick_unit` ticks.
    ///
    /// ```
    /// use xbeam_chunk::calendar::{Calendar, CfUnits, TimeUnit};
    ///
    /// let units = CfUnits::parse("hours since 1970-01-01", Calendar::Standard)?;
    /// // 0.01 hours is 36 seconds: not a whole minute, so the exact form refuses it
    /// assert!(units.decode_f64(0.01, TimeUnit::Minutes).is_err());
    /// assert_eq!(units.decode_f64_nearest(0.01, TimeUnit::Minutes)?, 1);
    /// # Ok::<(), xbeam_chunk::calendar::CalendarError>(())
    /// ```
    pub fn decode_f64_nearest(
        &self,
        value: f64,
        tick_unit: TimeUnit,
    ) -> Result<i64, CalendarError> {
        let (nanos, _) = self.offset_nanos(value)?;
        nanos_to_ticks(nearest_tick(nanos, tick_unit), tick_unit, || {
            format!("{value} {self}")
        })
    }

    /// The instant of a float value in nanoseconds since 1970-01-01 (rounded once, from the
    /// float's exact binary value), and one unit in the last place of `value` in nanoseconds.
    fn offset_nanos(&self, value: f64) -> Result<(i128, i128), CalendarError> {
        if !value.is_finite() {
            return Err(CalendarError::NonFiniteValue {
                value: value.to_string(),
            });
        }
        let reference = self.calendar.instant_nanos(&self.reference)?;
        let too_big = || overflow(format!("{value} {self} in nanoseconds"));
        // |value| = mantissa * 2^exponent exactly, so the offset in nanoseconds is computed
        // exactly and rounded once; the tolerance is one unit in the last place of `value`.
        let (negative, mantissa, exponent) = float_parts(value);
        let unit = i128::from(self.unit.nanos());
        let scaled = mantissa * unit; // < 2^53 * 2^47
        let power = |e: i64| u32::try_from(e).ok().and_then(|e| 2_i128.checked_pow(e));
        let (magnitude, tolerance) = if exponent >= 0 {
            let factor = power(exponent).ok_or_else(too_big)?;
            let magnitude = scaled.checked_mul(factor).ok_or_else(too_big)?;
            (magnitude, unit.saturating_mul(factor))
        } else {
            match power(-exponent) {
                Some(divisor) => ((scaled + divisor / 2) / divisor, unit / divisor),
                None => (0, 0),
            }
        };
        Ok((
            reference + if negative { -magnitude } else { magnitude },
            tolerance,
        ))
    }

    /// Encodes ticks of `tick_unit` since 1970-01-01 (of `self.calendar`) as a float count
    /// of `self.unit` since the reference, as xarray encodes times into a float dtype:
    /// `6 hours` after the reference is `0.25 days`. The whole part is exact; the
    /// fraction is the nearest float.
    ///
    /// # Errors
    ///
    /// The errors of [`Calendar::validate`] if the reference was built invalid by hand.
    ///
    /// ```
    /// use xbeam_chunk::calendar::{Calendar, CfUnits, TimeUnit};
    ///
    /// let units = CfUnits::parse("days since 1970-01-02", Calendar::Standard)?;
    /// assert_eq!(units.encode_f64(30, TimeUnit::Hours)?, 0.25);
    /// assert_eq!(units.encode_f64(0, TimeUnit::Hours)?, -1.0);
    /// # Ok::<(), xbeam_chunk::calendar::CalendarError>(())
    /// ```
    pub fn encode_f64(&self, ticks: i64, tick_unit: TimeUnit) -> Result<f64, CalendarError> {
        let reference = self.calendar.instant_nanos(&self.reference)?;
        let offset = i128::from(ticks) * i128::from(tick_unit.nanos()) - reference;
        let unit = i128::from(self.unit.nanos());
        let (whole, rest) = (offset.div_euclid(unit), offset.rem_euclid(unit));
        Ok(whole as f64 + rest as f64 / unit as f64)
    }

    /// Encodes ticks of `tick_unit` since 1970-01-01 (of `self.calendar`) as an integer count
    /// of `self.unit` since the reference.
    ///
    /// # Errors
    ///
    /// [`CalendarError::NotRepresentable`] if the instant is not a whole number of `self.unit`
    /// after the reference, [`CalendarError::Overflow`] if the count does not fit in an `i64`,
    /// and the errors of [`Calendar::validate`] if the reference was built invalid by hand.
    ///
    /// ```
    /// use xbeam_chunk::calendar::{Calendar, CfUnits, TimeUnit};
    ///
    /// let units = CfUnits::parse("days since 1970-01-01", Calendar::Day360)?;
    /// assert_eq!(units.encode_i64(48, TimeUnit::Hours)?, 2);
    /// assert!(units.encode_i64(1, TimeUnit::Hours).is_err());
    /// # Ok::<(), xbeam_chunk::calendar::CalendarError>(())
    /// ```
    pub fn encode_i64(&self, ticks: i64, tick_unit: TimeUnit) -> Result<i64, CalendarError> {
        let reference = self.calendar.instant_nanos(&self.reference)?;
        let offset = i128::from(ticks) * i128::from(tick_unit.nanos()) - reference;
        let unit = i128::from(self.unit.nanos());
        let describe = || {
            format!(
                "{ticks} {tick_unit} since 1970-01-01 (calendar {})",
                self.calendar
            )
        };
        if offset.rem_euclid(unit) != 0 {
            return Err(CalendarError::NotRepresentable {
                value: describe(),
                target: self.to_string(),
            });
        }
        i64::try_from(offset / unit)
            .map_err(|_| overflow(format!("the value in {self} for {}", describe())))
    }
}

impl fmt::Display for CfUnits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.reference;
        if r.is_midnight() {
            write!(
                f,
                "{} since {}",
                self.unit,
                DateDisplay(r.year, r.month, r.day)
            )
        } else {
            write!(f, "{} since {r}", self.unit)
        }
    }
}

/// Splits a finite float into `(negative, mantissa, exponent)` with
/// `|value| = mantissa * 2^exponent` exactly.
fn float_parts(value: f64) -> (bool, i128, i64) {
    let bits = value.to_bits();
    let biased = i64::try_from((bits >> 52) & 0x7ff).unwrap_or(0);
    let fraction = i128::from(bits & ((1 << 52) - 1));
    let (mantissa, exponent) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | 1 << 52, biased - 1075)
    };
    (bits >> 63 == 1, mantissa, exponent)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small deterministic PRNG for property tests.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        /// Uniform-ish integer in `lo..=hi`.
        fn range(&mut self, lo: i64, hi: i64) -> i64 {
            let span = u64::try_from(i128::from(hi) - i128::from(lo) + 1).unwrap();
            lo + i64::try_from(self.next() % span).unwrap()
        }

        fn range_u32(&mut self, lo: u32, hi: u32) -> u32 {
            u32::try_from(self.range(i64::from(lo), i64::from(hi))).unwrap()
        }
    }

    const CASES: usize = 20_000;

    /// Independent month-length table for the reference walk.
    fn ref_month_len(cal: Calendar, y: i64, m: u32) -> u32 {
        let julian_leap = y % 4 == 0;
        let greg_leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let leap = match cal {
            Calendar::Standard => {
                if y < 1582 {
                    julian_leap
                } else {
                    greg_leap
                }
            }
            Calendar::ProlepticGregorian => greg_leap,
            Calendar::Julian => julian_leap,
            Calendar::AllLeap => true,
            Calendar::NoLeap | Calendar::Day360 => false,
        };
        if cal == Calendar::Day360 {
            return 30;
        }
        [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ][usize::try_from(m - 1).unwrap()]
    }

    fn succ(cal: Calendar, (y, m, d): (i64, u32, u32)) -> (i64, u32, u32) {
        if cal == Calendar::Standard && (y, m, d) == (1582, 10, 4) {
            (1582, 10, 15)
        } else if d < ref_month_len(cal, y, m) {
            (y, m, d + 1)
        } else if m < 12 {
            (y, m + 1, 1)
        } else {
            (y + 1, 1, 1)
        }
    }

    fn pred(cal: Calendar, (y, m, d): (i64, u32, u32)) -> (i64, u32, u32) {
        if cal == Calendar::Standard && (y, m, d) == (1582, 10, 15) {
            (1582, 10, 4)
        } else if d > 1 {
            (y, m, d - 1)
        } else if m > 1 {
            (y, m - 1, ref_month_len(cal, y, m - 1))
        } else {
            (y - 1, 12, 31.min(ref_month_len(cal, y - 1, 12)))
        }
    }

    #[test]
    fn parse_calendar_names() {
        let cases = [
            ("standard", Calendar::Standard),
            ("Gregorian", Calendar::Standard),
            (" proleptic_gregorian\n", Calendar::ProlepticGregorian),
            ("noleap", Calendar::NoLeap),
            ("365_DAY", Calendar::NoLeap),
            ("all_leap", Calendar::AllLeap),
            ("366_day", Calendar::AllLeap),
            ("360_day", Calendar::Day360),
            ("JULIAN", Calendar::Julian),
        ];
        for (name, cal) in cases {
            assert_eq!(Calendar::parse(name), Ok(cal), "{name}");
            assert_eq!(name.parse::<Calendar>(), Ok(cal));
        }
        for cal in Calendar::ALL {
            assert_eq!(Calendar::parse(cal.name()), Ok(cal));
            assert_eq!(cal.to_string(), cal.name());
        }
        let err = Calendar::parse("foo").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown calendar \"foo\": expected one of standard, gregorian, proleptic_gregorian, \
             noleap, 365_day, all_leap, 366_day, 360_day, julian"
        );
        assert!(Calendar::parse("none").is_err());
        assert!(Calendar::Standard.is_numpy_compatible());
        assert!(Calendar::ProlepticGregorian.is_numpy_compatible());
        assert!(!Calendar::NoLeap.is_numpy_compatible());
        assert!(!Calendar::Julian.is_numpy_compatible());
    }

    #[test]
    fn leap_years() {
        use Calendar::*;
        assert!(Standard.is_leap_year(1500));
        assert!(!ProlepticGregorian.is_leap_year(1500));
        assert!(!Standard.is_leap_year(1582));
        assert!(!Standard.is_leap_year(1700));
        assert!(Standard.is_leap_year(1600));
        assert!(Standard.is_leap_year(2000));
        assert!(Julian.is_leap_year(1900));
        assert!(!ProlepticGregorian.is_leap_year(1900));
        for cal in [Standard, ProlepticGregorian, Julian] {
            assert!(cal.is_leap_year(0));
            assert!(cal.is_leap_year(-4));
            assert!(!cal.is_leap_year(-1));
        }
        assert!(!ProlepticGregorian.is_leap_year(-100));
        assert!(ProlepticGregorian.is_leap_year(-400));
        assert!(AllLeap.is_leap_year(2001));
        assert!(!NoLeap.is_leap_year(2000));
        assert!(!Day360.is_leap_year(2000));
    }

    #[test]
    fn month_and_year_lengths() {
        use Calendar::*;
        assert_eq!(NoLeap.days_in_month(2000, 2), Ok(28));
        assert_eq!(AllLeap.days_in_month(2001, 2), Ok(29));
        assert_eq!(Day360.days_in_month(2001, 2), Ok(30));
        assert_eq!(Day360.days_in_month(2001, 1), Ok(30));
        assert_eq!(ProlepticGregorian.days_in_month(1900, 2), Ok(28));
        assert_eq!(Julian.days_in_month(1900, 2), Ok(29));
        assert_eq!(Standard.days_in_month(1582, 10), Ok(21));
        assert_eq!(ProlepticGregorian.days_in_month(1582, 10), Ok(31));
        assert_eq!(
            Standard.days_in_month(2000, 13),
            Err(CalendarError::InvalidMonth { month: 13 })
        );
        assert!(Standard.days_in_month(2000, 0).is_err());
        assert_eq!(
            Standard.days_in_month(2000, 0).unwrap_err().to_string(),
            "invalid month 0: expected a month number from 1 to 12"
        );
        assert_eq!(Standard.days_in_year(1582), 355);
        assert_eq!(Standard.days_in_year(1500), 366);
        assert_eq!(ProlepticGregorian.days_in_year(1500), 365);
        assert_eq!(Day360.days_in_year(2000), 360);
        assert_eq!(NoLeap.days_in_year(2000), 365);
        assert_eq!(AllLeap.days_in_year(1999), 366);
    }

    #[test]
    fn known_day_numbers() {
        use Calendar::*;
        for cal in Calendar::ALL {
            assert_eq!(cal.days_from_date(1970, 1, 1), Ok(0), "{cal}");
            assert_eq!(cal.date_from_days(0), (1970, 1, 1), "{cal}");
        }
        assert_eq!(ProlepticGregorian.days_from_date(2000, 1, 1), Ok(10957));
        assert_eq!(Standard.days_from_date(2000, 1, 1), Ok(10957));
        assert_eq!(NoLeap.days_from_date(2000, 1, 1), Ok(30 * 365));
        assert_eq!(AllLeap.days_from_date(2000, 1, 1), Ok(30 * 366));
        assert_eq!(Day360.days_from_date(2000, 1, 1), Ok(30 * 360));
        assert_eq!(Standard.days_from_date(1582, 10, 15), Ok(-141_427));
        assert_eq!(
            ProlepticGregorian.days_from_date(1582, 10, 15),
            Ok(-141_427)
        );
        assert_eq!(Standard.days_from_date(1582, 10, 4), Ok(-141_428));
        assert_eq!(
            ProlepticGregorian.days_from_date(1582, 10, 14),
            Ok(-141_428)
        );
        assert_eq!(Standard.days_from_date(1, 1, 1), Ok(-719_164));
        assert_eq!(ProlepticGregorian.days_from_date(1, 1, 1), Ok(-719_162));
        // Julian 1970-01-01 is Gregorian 1970-01-14.
        assert_eq!(
            Julian.days_from_date(1582, 10, 4).unwrap() + JULIAN_TO_STANDARD,
            Standard.days_from_date(1582, 10, 4).unwrap()
        );
        assert_eq!(Julian.days_from_date(1, 1, 1).unwrap() + 13, -719_164);
        assert_eq!(ProlepticGregorian.days_from_date(1970, 1, 14), Ok(13));
        assert_eq!(Standard.date_from_days(-141_428), (1582, 10, 4));
        assert_eq!(Standard.date_from_days(-141_427), (1582, 10, 15));
        assert_eq!(Standard.date_from_days(-719_164), (1, 1, 1));
        assert_eq!(ProlepticGregorian.date_from_days(-719_162), (1, 1, 1));
        assert_eq!(ProlepticGregorian.date_from_days(-719_528), (0, 1, 1));
        assert_eq!(ProlepticGregorian.date_from_days(10957 + 59), (2000, 2, 29));
        assert_eq!(Day360.date_from_days(359), (1970, 12, 30));
        assert_eq!(Day360.date_from_days(360), (1971, 1, 1));
        assert_eq!(NoLeap.date_from_days(-1), (1969, 12, 31));
        assert_eq!(GREGORIAN_START, -141_427);
    }

    #[test]
    fn invalid_dates() {
        use Calendar::*;
        let err = NoLeap.days_from_date(2021, 2, 29).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid date 2021-02-29 in calendar noleap: day 29 is out of range for month 2 \
             (28 days)"
        );
        assert!(NoLeap.days_from_date(2000, 2, 29).is_err());
        assert!(AllLeap.days_from_date(2001, 2, 29).is_ok());
        assert!(Day360.days_from_date(2001, 2, 30).is_ok());
        assert!(Day360.days_from_date(2001, 1, 31).is_err());
        assert!(Standard.days_from_date(2001, 13, 1).is_err());
        assert!(Standard.days_from_date(2001, 1, 0).is_err());
        assert!(Standard.days_from_date(1900, 2, 29).is_err());
        assert!(Julian.days_from_date(1900, 2, 29).is_ok());
        assert!(Standard.days_from_date(1500, 2, 29).is_ok());
        for day in 5..=14 {
            let err = Standard.days_from_date(1582, 10, day).unwrap_err();
            assert!(matches!(err, CalendarError::InvalidDate { day: d, .. } if d == day));
            assert!(ProlepticGregorian.days_from_date(1582, 10, day).is_ok());
            assert!(Julian.days_from_date(1582, 10, day).is_ok());
        }
        assert_eq!(
            Standard
                .days_from_date(1582, 10, 10)
                .unwrap_err()
                .to_string(),
            "invalid date 1582-10-10 in calendar standard: 1582-10-05 to 1582-10-14 do not exist \
             (1582-10-04 is followed by 1582-10-15)"
        );
        assert_eq!(
            Standard.days_from_date(-5, 13, 1).unwrap_err().to_string(),
            "invalid date -0005-13-01 in calendar standard: month 13 is out of range (expected \
             1 to 12)"
        );
        assert!(matches!(
            Standard.days_from_date(i64::MAX, 1, 1),
            Err(CalendarError::Overflow { .. })
        ));
        assert!(matches!(
            Day360.days_from_date(i64::MIN, 1, 1),
            Err(CalendarError::Overflow { .. })
        ));
    }

    #[test]
    fn day_of_year_and_season() {
        use Calendar::*;
        let d = DateTime::new(2000, 3, 1);
        assert_eq!(d.dayofyear(NoLeap), Ok(60));
        assert_eq!(d.dayofyear(ProlepticGregorian), Ok(61));
        assert_eq!(d.dayofyear(AllLeap), Ok(61));
        assert_eq!(d.dayofyear(Day360), Ok(61));
        assert_eq!(DateTime::new(2000, 12, 30).dayofyear(Day360), Ok(360));
        assert_eq!(
            DateTime::new(2000, 12, 31).dayofyear(ProlepticGregorian),
            Ok(366)
        );
        assert_eq!(DateTime::new(1582, 10, 4).dayofyear(Standard), Ok(277));
        assert_eq!(DateTime::new(1582, 10, 15).dayofyear(Standard), Ok(278));
        assert_eq!(DateTime::new(1582, 12, 31).dayofyear(Standard), Ok(355));
        assert!(DateTime::new(1582, 10, 5).dayofyear(Standard).is_err());
        assert!(DateTime::new(2001, 2, 29).dayofyear(Standard).is_err());
        let seasons = [
            "DJF", "DJF", "MAM", "MAM", "MAM", "JJA", "JJA", "JJA", "SON", "SON", "SON",
        ];
        for (m, s) in (1..=11).zip(seasons) {
            assert_eq!(season_of_month(m), s, "{m}");
            assert_eq!(DateTime::new(2000, m, 1).season(), s);
        }
        assert_eq!(season_of_month(12), "DJF");
    }

    #[test]
    fn time_units() {
        let cases = [
            (
                TimeUnit::Nanoseconds,
                &["nanoseconds", "ns", "NS", "nanosecond"][..],
                1,
                "ns",
            ),
            (
                TimeUnit::Microseconds,
                &["microseconds", "us", "µs", "μs", "usec"][..],
                1_000,
                "us",
            ),
            (
                TimeUnit::Milliseconds,
                &["milliseconds", "ms", "msec"][..],
                1_000_000,
                "ms",
            ),
            (
                TimeUnit::Seconds,
                &["seconds", "second", "sec", "secs", "s", "Seconds"][..],
                1_000_000_000,
                "s",
            ),
            (
                TimeUnit::Minutes,
                &["minutes", "minute", "min", "mins"][..],
                60_000_000_000,
                "m",
            ),
            (
                TimeUnit::Hours,
                &["hours", "hour", "hr", "hrs", "h", "HOURS"][..],
                3_600_000_000_000,
                "h",
            ),
            (
                TimeUnit::Days,
                &["days", "day", "d", "D", " Days "][..],
                86_400_000_000_000,
                "D",
            ),
        ];
        for (unit, names, nanos, code) in cases {
            for name in names {
                assert_eq!(TimeUnit::parse(name), Ok(unit), "{name}");
            }
            assert_eq!(TimeUnit::parse(unit.name()), Ok(unit));
            assert_eq!(unit.nanos(), nanos);
            assert_eq!(unit.numpy_code(), code);
            assert_eq!(unit.to_string(), unit.name());
            assert_eq!(unit.name().parse::<TimeUnit>(), Ok(unit));
        }
        assert_eq!(TimeUnit::ALL.len(), 7);
        assert!(TimeUnit::ALL
            .windows(2)
            .all(|w| w[0] < w[1] && w[0].nanos() < w[1].nanos()));
        assert!(matches!(
            TimeUnit::parse("months"),
            Err(CalendarError::UnsupportedTimeUnit { .. })
        ));
        assert!(matches!(
            TimeUnit::parse("years"),
            Err(CalendarError::UnsupportedTimeUnit { .. })
        ));
        let err = TimeUnit::parse("fortnights").unwrap_err();
        assert!(matches!(err, CalendarError::UnknownTimeUnit { .. }));
        assert!(err
            .to_string()
            .starts_with("unknown time unit \"fortnights\": expected"));
    }

    #[test]
    fn parse_date_times() {
        let ok = [
            ("1970-01-01", DateTime::new(1970, 1, 1)),
            ("1970-1-1", DateTime::new(1970, 1, 1)),
            ("1900-01-01 00:00:00", DateTime::new(1900, 1, 1)),
            ("1900-01-01T00:00:00", DateTime::new(1900, 1, 1)),
            ("1900-01-01 00:00:0.0", DateTime::new(1900, 1, 1)),
            (
                "2000-01-01 12:00:00.5",
                DateTime::new(2000, 1, 1).with_time(12, 0, 0, 500_000_000),
            ),
            (
                "2000-01-01 12:00:00.000000001",
                DateTime::new(2000, 1, 1).with_time(12, 0, 0, 1),
            ),
            (
                "2000-01-01 12:00:00.1000000000",
                DateTime::new(2000, 1, 1).with_time(12, 0, 0, 100_000_000),
            ),
            ("0001-01-01", DateTime::new(1, 1, 1)),
            ("-0100-01-01", DateTime::new(-100, 1, 1)),
            ("+2000-01-01", DateTime::new(2000, 1, 1)),
            ("1850-1-1 0:0:0", DateTime::new(1850, 1, 1)),
            (
                "1850-1-1 6:30",
                DateTime::new(1850, 1, 1).with_time(6, 30, 0, 0),
            ),
            ("1970-01-01T00:00:00Z", DateTime::new(1970, 1, 1)),
            ("1970-01-01T00:00:00.000Z", DateTime::new(1970, 1, 1)),
            ("1970-01-01 00:00:00 UTC", DateTime::new(1970, 1, 1)),
            ("1970-01-01 00:00:00 +00:00", DateTime::new(1970, 1, 1)),
            ("1970-01-01T00:00:00+00:00", DateTime::new(1970, 1, 1)),
            ("1970-01-01T00:00:00-0000", DateTime::new(1970, 1, 1)),
            ("1970-01-01 00:00:00 0:00", DateTime::new(1970, 1, 1)),
            ("1970-01-01 UTC", DateTime::new(1970, 1, 1)),
            ("1970-01-01Z", DateTime::new(1970, 1, 1)),
            (
                "  1970-01-01t01:02:03  ",
                DateTime::new(1970, 1, 1).with_time(1, 2, 3, 0),
            ),
            ("12345-06-07", DateTime::new(12345, 6, 7)),
        ];
        for (text, expected) in ok {
            assert_eq!(DateTime::parse(text), Ok(expected), "{text}");
            assert_eq!(text.parse::<DateTime>(), Ok(expected));
        }
        let bad = [
            "",
            "1970",
            "1970-01",
            "1970-13-01",
            "1970-00-01",
            "1970-01-32",
            "1970-01-00",
            "1970-01-01-01",
            "x970-01-01",
            "1970-01-01 24:00:00",
            "1970-01-01 00:60:00",
            "1970-01-01 00:00:60",
            "1970-01-01 00",
            "1970-01-01 00:00:00.",
            "1970-01-01 00:00.5",
            "1970-01-01 00:00:00.1234567891",
            "1970-01-01 00:00:00 foo",
            "1970-01-01 1:2:3:4",
            "--1970-01-01",
            "99999999999999999999-01-01",
            "1970-01-01 00:00:00 +0:000",
            "1970-01-01 00:00:00 +٣٣٣",
        ];
        for text in bad {
            assert!(
                matches!(
                    DateTime::parse(text),
                    Err(CalendarError::InvalidDateString { .. })
                ),
                "{text}: {:?}",
                DateTime::parse(text)
            );
        }
        for text in [
            "2000-01-01T00:00:00+01:00",
            "2000-01-01 00:00:00 -5",
            "2000-01-01 +0530",
        ] {
            let err = DateTime::parse(text).unwrap_err();
            assert!(
                matches!(err, CalendarError::NonZeroTimezone { .. }),
                "{text}"
            );
        }
        assert_eq!(
            DateTime::parse("2000-01-01T00:00:00+01:00")
                .unwrap_err()
                .to_string(),
            "unsupported time zone offset \"+01:00\" in \"2000-01-01T00:00:00+01:00\": expected a \
             zero UTC offset (Z, UTC, +00:00) or none"
        );
    }

    #[test]
    fn display_date_times() {
        assert_eq!(DateTime::new(2020, 1, 1).to_string(), "2020-01-01T00:00:00");
        assert_eq!(DateTime::new(5, 1, 1).to_string(), "0005-01-01T00:00:00");
        assert_eq!(
            DateTime::new(-100, 1, 1).to_string(),
            "-0100-01-01T00:00:00"
        );
        assert_eq!(
            DateTime::new(12345, 1, 1).to_string(),
            "12345-01-01T00:00:00"
        );
        assert_eq!(
            DateTime::new(2000, 1, 1)
                .with_time(12, 3, 4, 500_000_000)
                .to_string(),
            "2000-01-01T12:03:04.5"
        );
        assert_eq!(
            DateTime::new(2000, 1, 1)
                .with_time(0, 0, 0, 1_000)
                .to_string(),
            "2000-01-01T00:00:00.000001"
        );
        assert_eq!(
            DateTime::new(i64::MIN, 1, 1).to_string(),
            "-9223372036854775808-01-01T00:00:00"
        );
        assert!(DateTime::new(2000, 1, 1).is_midnight());
        assert!(!DateTime::new(2000, 1, 1)
            .with_time(0, 0, 0, 1)
            .is_midnight());
    }

    #[test]
    fn ticks() {
        use Calendar::*;
        let dt = Standard.from_ticks(-1, TimeUnit::Hours);
        assert_eq!(dt, DateTime::new(1969, 12, 31).with_time(23, 0, 0, 0));
        assert_eq!(
            Standard.from_ticks(-1, TimeUnit::Nanoseconds).nanosecond,
            999_999_999
        );
        assert_eq!(Standard.to_ticks(&dt, TimeUnit::Hours), Ok(-1));
        assert_eq!(Standard.to_ticks(&dt, TimeUnit::Minutes), Ok(-60));
        let half = DateTime::new(1970, 1, 1).with_time(0, 30, 0, 0);
        let err = Standard.to_ticks(&half, TimeUnit::Hours).unwrap_err();
        assert_eq!(
            err.to_string(),
            "1970-01-01T00:30:00 (calendar standard) is not a whole number of hours"
        );
        assert_eq!(Standard.to_ticks(&half, TimeUnit::Minutes), Ok(30));
        let dt = DateTime::new(2000, 1, 1);
        assert_eq!(NoLeap.to_ticks(&dt, TimeUnit::Days), Ok(10950));
        assert_eq!(
            ProlepticGregorian.to_ticks(&dt, TimeUnit::Seconds),
            Ok(10957 * 86_400)
        );
        assert_eq!(
            Standard.to_ticks(&DateTime::new(2262, 4, 12), TimeUnit::Nanoseconds),
            Err(CalendarError::Overflow {
                what: "the number of nanoseconds since 1970-01-01 for 2262-04-12T00:00:00 \
                       (calendar standard)"
                    .to_string()
            })
        );
        assert!(Standard
            .to_ticks(&DateTime::new(2262, 4, 11), TimeUnit::Nanoseconds)
            .is_ok());
        let bad_time = DateTime::new(2000, 1, 1).with_time(24, 0, 0, 0);
        assert!(matches!(
            Standard.to_ticks(&bad_time, TimeUnit::Hours),
            Err(CalendarError::InvalidTime { .. })
        ));
        assert!(Standard
            .to_ticks(
                &DateTime::new(2000, 1, 1).with_time(0, 0, 0, 1_000_000_000),
                TimeUnit::Days
            )
            .is_err());
        assert!(Standard
            .to_ticks(&DateTime::new(1582, 10, 10), TimeUnit::Days)
            .is_err());
        assert_eq!(
            Standard.to_ticks(&DateTime::new(1582, 10, 4), TimeUnit::Days),
            Ok(-141_428)
        );
        assert_eq!(
            Day360.from_ticks(360 * 24, TimeUnit::Hours),
            DateTime::new(1971, 1, 1)
        );
        // Extremes do not panic.
        for cal in Calendar::ALL {
            for unit in TimeUnit::ALL {
                for t in [i64::MIN, i64::MAX, 0, -1] {
                    let dt = cal.from_ticks(t, unit);
                    assert_eq!(cal.to_ticks(&dt, unit), Ok(t), "{cal} {unit} {t}");
                }
            }
        }
    }

    #[test]
    fn cf_units() {
        use Calendar::*;
        let u = CfUnits::parse("hours since 1900-01-01", Standard).unwrap();
        assert_eq!(u.unit, TimeUnit::Hours);
        assert_eq!(u.reference, DateTime::new(1900, 1, 1));
        assert_eq!(u.calendar, Standard);
        assert_eq!(u.format(), "hours since 1900-01-01");
        let u = CfUnits::parse("  days  since  1850-1-1 0:0:0 ", NoLeap).unwrap();
        assert_eq!(u.format(), "days since 1850-01-01");
        let u = CfUnits::parse("seconds since 1970-01-01T00:00:00Z", Julian).unwrap();
        assert_eq!(u.reference, DateTime::new(1970, 1, 1));
        let u = CfUnits::parse("Hours SINCE 1900-01-01 06:00:00", Standard).unwrap();
        assert_eq!(u.format(), "hours since 1900-01-01T06:00:00");
        assert_eq!(CfUnits::parse(&u.format(), Standard), Ok(u));
        let u = CfUnits::parse("days since -0100-01-01", Day360).unwrap();
        assert_eq!(u.format(), "days since -0100-01-01");

        let err = CfUnits::parse("hours after 1900", Standard).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot parse CF time units \"hours after 1900\": expected \"<unit> since <date>\""
        );
        for bad in [
            "hours",
            "hours since",
            "hours since ",
            "",
            "since 1900-01-01",
        ] {
            assert!(
                matches!(
                    CfUnits::parse(bad, Standard),
                    Err(CalendarError::InvalidUnits { .. })
                ),
                "{bad}"
            );
        }
        for bad in ["months since 2000-01-01", "years since 2000-01-01"] {
            let err = CfUnits::parse(bad, Standard).unwrap_err();
            assert!(
                matches!(err, CalendarError::UnsupportedTimeUnit { .. }),
                "{bad}"
            );
            assert!(err
                .to_string()
                .contains("months and years have no fixed length"));
        }
        assert!(matches!(
            CfUnits::parse("fortnights since 2000-01-01", Standard),
            Err(CalendarError::UnknownTimeUnit { .. })
        ));
        assert!(matches!(
            CfUnits::parse("days since 2001-02-29", NoLeap),
            Err(CalendarError::InvalidDate { .. })
        ));
        assert!(CfUnits::parse("days since 2000-02-30", Day360).is_ok());
        assert!(matches!(
            CfUnits::parse("days since 1582-10-10", Standard),
            Err(CalendarError::InvalidDate { .. })
        ));
        assert!(matches!(
            CfUnits::parse("days since 2000-01-01 00:00:00 +03:00", Standard),
            Err(CalendarError::NonZeroTimezone { .. })
        ));
    }

    #[test]
    fn cf_decode_encode() {
        use Calendar::*;
        let u = CfUnits::parse("hours since 1970-01-02", Standard).unwrap();
        assert_eq!(u.decode_i64(1, TimeUnit::Seconds), Ok(90_000));
        assert_eq!(u.decode_i64(-24, TimeUnit::Days), Ok(0));
        assert!(matches!(
            u.decode_i64(1, TimeUnit::Days),
            Err(CalendarError::NotRepresentable { .. })
        ));
        assert_eq!(
            u.decode_i64(1, TimeUnit::Days).unwrap_err().to_string(),
            "1 hours since 1970-01-02 is not a whole number of days"
        );
        assert!(matches!(
            u.decode_i64(i64::MAX, TimeUnit::Nanoseconds),
            Err(CalendarError::Overflow { .. })
        ));
        assert_eq!(u.encode_i64(90_000, TimeUnit::Seconds), Ok(1));
        assert_eq!(u.encode_i64(0, TimeUnit::Days), Ok(-24));
        assert_eq!(
            u.encode_i64(1, TimeUnit::Seconds).unwrap_err().to_string(),
            "1 seconds since 1970-01-01 (calendar standard) is not a whole number of hours \
             since 1970-01-02"
        );
        let days = CfUnits::parse("days since 1970-01-01", Standard).unwrap();
        assert!(matches!(
            days.encode_i64(i64::MAX, TimeUnit::Days).map(|_| ()),
            Ok(())
        ));
        let ns = CfUnits::parse("nanoseconds since 1970-01-01", Standard).unwrap();
        assert!(matches!(
            ns.encode_i64(i64::MAX, TimeUnit::Days),
            Err(CalendarError::Overflow { .. })
        ));

        let noleap = CfUnits::parse("days since 2000-01-01", NoLeap).unwrap();
        assert_eq!(noleap.decode_i64(59, TimeUnit::Days), Ok(10950 + 59));
        assert_eq!(
            NoLeap.from_ticks(
                noleap.decode_i64(59, TimeUnit::Days).unwrap(),
                TimeUnit::Days
            ),
            DateTime::new(2000, 3, 1)
        );
    }

    #[test]
    fn cf_decode_float() {
        use Calendar::*;
        let days = CfUnits::parse("days since 1970-01-01", Standard).unwrap();
        let h = CfUnits::parse("hours since 1970-01-01", Standard).unwrap();
        assert_eq!(h.decode_f64(1.5, TimeUnit::Minutes), Ok(90));
        assert_eq!(h.decode_f64(-1.5, TimeUnit::Minutes), Ok(-90));
        assert_eq!(h.decode_f64(2.0, TimeUnit::Hours), Ok(2));
        assert_eq!(h.decode_f64(1.0 / 3.0, TimeUnit::Minutes), Ok(20));
        assert_eq!(days.decode_f64(0.1, TimeUnit::Minutes), Ok(144));
        assert!(matches!(
            days.decode_f64(0.1, TimeUnit::Hours),
            Err(CalendarError::NotRepresentable { .. })
        ));
        assert!(matches!(
            h.decode_f64(1.000_000_1, TimeUnit::Hours),
            Err(CalendarError::NotRepresentable { .. })
        ));
        assert_eq!(
            days.decode_f64(36_500.5, TimeUnit::Hours),
            Ok(36_500 * 24 + 12)
        );
        assert_eq!(
            days.decode_f64(1000.1, TimeUnit::Seconds),
            Ok(1000 * 86_400 + 8_640)
        );
        assert_eq!(
            days.decode_f64(-1000.1, TimeUnit::Seconds),
            Ok(-1000 * 86_400 - 8_640)
        );
        assert_eq!(days.decode_f64(-0.0, TimeUnit::Nanoseconds), Ok(0));
        assert_eq!(days.decode_f64(1e-300, TimeUnit::Nanoseconds), Ok(0));
        assert_eq!(
            days.decode_f64(f64::MIN_POSITIVE / 4.0, TimeUnit::Days),
            Ok(0)
        );
        assert_eq!(h.decode_f64(0.5 / 3.6e12, TimeUnit::Nanoseconds), Ok(1));
        assert_eq!(h.decode_f64(-0.5 / 3.6e12, TimeUnit::Nanoseconds), Ok(-1));
        assert!(days.decode_f64(1_000.100_000_1, TimeUnit::Seconds).is_err());
        assert_eq!(
            days.decode_f64(1e15, TimeUnit::Days),
            Ok(1_000_000_000_000_000)
        );
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(
                h.decode_f64(v, TimeUnit::Hours),
                Err(CalendarError::NonFiniteValue { .. })
            ));
        }
        assert!(h
            .decode_f64(f64::NAN, TimeUnit::Hours)
            .unwrap_err()
            .to_string()
            .contains("NaN"));
        assert!(matches!(
            h.decode_f64(1e300, TimeUnit::Days),
            Err(CalendarError::Overflow { .. })
        ));
        assert!(matches!(
            h.decode_f64(1e30, TimeUnit::Days),
            Err(CalendarError::Overflow { .. })
        ));
        // A hand-built invalid reference is reported, not trusted.
        let broken = CfUnits {
            unit: TimeUnit::Days,
            reference: DateTime::new(2001, 2, 29),
            calendar: NoLeap,
        };
        assert!(broken.decode_i64(0, TimeUnit::Days).is_err());
        assert!(broken.decode_f64(0.0, TimeUnit::Days).is_err());
        assert!(broken.encode_i64(0, TimeUnit::Days).is_err());
    }

    #[test]
    fn error_traits() {
        fn is_error<E: std::error::Error + Clone + Eq>(_: &E) {}
        let e = CalendarError::InvalidMonth { month: 0 };
        is_error(&e);
        let boxed: Box<dyn std::error::Error> = Box::new(e.clone());
        assert_eq!(boxed.to_string(), e.to_string());
    }

    /// Walks day by day from 1970-01-01 with an independent successor/predecessor rule.
    #[test]
    fn reference_walk() {
        for cal in Calendar::ALL {
            let mut date = (1970, 1, 1);
            for day in 0..300_000 {
                assert_eq!(cal.date_from_days(day), date, "{cal} {day}");
                assert_eq!(
                    cal.days_from_date(date.0, date.1, date.2),
                    Ok(day),
                    "{cal} {date:?}"
                );
                date = succ(cal, date);
            }
            let mut date = (1970, 1, 1);
            for day in (-1_200_000..=0).rev() {
                assert_eq!(cal.date_from_days(day), date, "{cal} {day}");
                assert_eq!(
                    cal.days_from_date(date.0, date.1, date.2),
                    Ok(day),
                    "{cal} {date:?}"
                );
                date = pred(cal, date);
            }
        }
    }

    fn random_day(rng: &mut XorShift) -> i64 {
        match rng.next() % 8 {
            0 => rng.range(GREGORIAN_START - 5_000, GREGORIAN_START + 5_000),
            1 => i64::from_ne_bytes(rng.next().to_ne_bytes()),
            2 => rng.range(-1_000_000, 1_000_000),
            _ => rng.range(-200_000_000, 200_000_000),
        }
    }

    #[test]
    fn prop_days_round_trip_and_successor() {
        for cal in Calendar::ALL {
            let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (cal as u64 + 1));
            for _ in 0..CASES {
                let day = random_day(&mut rng);
                let (y, m, d) = cal.date_from_days(day);
                assert!(
                    (1..=12).contains(&m) && d >= 1 && d <= cal.last_day(y, m),
                    "{cal} {day}"
                );
                assert_eq!(cal.days_from_date(y, m, d), Ok(day), "{cal} {day}");
                if day < i64::MAX {
                    let expected = succ(cal, (y, m, d));
                    assert_eq!(cal.date_from_days(day + 1), expected, "{cal} {day}");
                }
            }
        }
    }

    #[test]
    fn prop_year_lengths() {
        for cal in Calendar::ALL {
            let mut rng = XorShift(0x1234_5678_9ABC_DEF1 ^ (cal as u64 + 7));
            for i in 0..CASES {
                let year = if i % 4 == 0 {
                    rng.range(1500, 1700)
                } else {
                    rng.range(-600_000, 600_000)
                };
                let start = cal.days_from_date(year, 1, 1).unwrap();
                let next = cal.days_from_date(year + 1, 1, 1).unwrap();
                assert_eq!(next - start, cal.days_in_year(year), "{cal} {year}");
                let months: i64 = (1..=12)
                    .map(|m| i64::from(cal.days_in_month(year, m).unwrap()))
                    .sum();
                assert_eq!(months, cal.days_in_year(year), "{cal} {year}");
                let dec31 = cal
                    .days_from_date(year, 12, cal.last_day(year, 12))
                    .unwrap();
                assert_eq!(dec31 + 1, next);
                let doy = DateTime::new(year, 12, cal.last_day(year, 12))
                    .dayofyear(cal)
                    .unwrap();
                assert_eq!(i64::from(doy), cal.days_in_year(year));
            }
        }
    }

    /// A valid date-time that is a whole number of `unit`, within half the `i64` range of
    /// `range_unit` (and 200 million days).
    fn random_datetime(
        rng: &mut XorShift,
        cal: Calendar,
        range_unit: TimeUnit,
        unit: TimeUnit,
    ) -> DateTime {
        let limit = (i64::MAX / (NANOS_PER_DAY / range_unit.nanos()) / 2).min(200_000_000);
        let (year, month, day) = cal.date_from_days(rng.range(-limit, limit));
        let dt = DateTime::new(year, month, day).with_time(
            rng.range_u32(0, 23),
            rng.range_u32(0, 59),
            rng.range_u32(0, 59),
            rng.range_u32(0, 999_999_999),
        );
        // Truncate to the unit so the instant is representable.
        let nanos = cal.instant_nanos(&dt).unwrap();
        let unit_nanos = i128::from(unit.nanos());
        let ticks = i64::try_from(nanos.div_euclid(unit_nanos)).unwrap();
        cal.from_ticks(ticks, unit)
    }

    #[test]
    fn prop_ticks_round_trip() {
        for cal in Calendar::ALL {
            let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D ^ (cal as u64 + 3));
            for i in 0..CASES {
                let unit = TimeUnit::ALL[i % 7];
                let dt = random_datetime(&mut rng, cal, unit, unit);
                assert!(cal.validate(&dt).is_ok(), "{cal} {dt}");
                let ticks = cal.to_ticks(&dt, unit).unwrap();
                assert_eq!(cal.from_ticks(ticks, unit), dt, "{cal} {unit}");
                // Every finer unit represents it too, with the scaled count.
                for finer in TimeUnit::ALL.into_iter().filter(|u| *u < unit) {
                    let scale = unit.nanos() / finer.nanos();
                    if let Some(expected) = ticks.checked_mul(scale) {
                        assert_eq!(cal.to_ticks(&dt, finer), Ok(expected), "{cal} {dt} {finer}");
                    }
                }
                // Display/parse round trip.
                assert_eq!(DateTime::parse(&dt.to_string()), Ok(dt), "{dt}");
                // Random ticks round trip too.
                let t = rng.range(-(1 << 62), 1 << 62);
                assert_eq!(cal.to_ticks(&cal.from_ticks(t, unit), unit), Ok(t));
            }
        }
    }

    #[test]
    fn prop_cf_round_trip() {
        for cal in Calendar::ALL {
            let mut rng = XorShift(0x0BAD_5EED_1234_4321 ^ (cal as u64 + 11));
            for i in 0..CASES {
                let unit = TimeUnit::ALL[i % 7];
                let index = usize::try_from(rng.range(0, 6)).unwrap();
                let tick_unit = TimeUnit::ALL[index].min(unit);
                let reference = random_datetime(&mut rng, cal, tick_unit, unit);
                let units = CfUnits::parse(&format!("{unit} since {reference}"), cal).unwrap();
                assert_eq!(units.reference, reference);
                assert_eq!(CfUnits::parse(&units.format(), cal), Ok(units));
                let scale = unit.nanos() / tick_unit.nanos();
                let limit = (i64::MAX / 4 / scale).min(1_000_000);
                let value = rng.range(-limit, limit);
                let ticks = units.decode_i64(value, tick_unit).unwrap();
                assert_eq!(
                    units.encode_i64(ticks, tick_unit),
                    Ok(value),
                    "{units} {value}"
                );
                #[allow(clippy::cast_precision_loss)]
                let float = value as f64;
                assert_eq!(
                    units.decode_f64(float, tick_unit),
                    Ok(ticks),
                    "{units} {value}"
                );
                let dt = cal.from_ticks(ticks, tick_unit);
                let expected = units.reference;
                let back = cal.to_ticks(&expected, tick_unit).unwrap() + value * scale;
                assert_eq!(cal.to_ticks(&dt, tick_unit), Ok(back));
            }
        }
    }
}
