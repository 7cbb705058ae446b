//! CF time coding: numbers with `units = "<unit> since <date>"` and a
//! `calendar` become calendar-aware datetimes, and back.

use ndarray::ArrayD;
use xbeam_chunk::calendar::{Calendar, CalendarError, CfUnits, TimeUnit};
use xbeam_chunk::{Array, DType};

use crate::IoError;

/// Tick units tried when decoding, coarsest first after the units' own.
const FINER: [TimeUnit; 4] = [
    TimeUnit::Seconds,
    TimeUnit::Milliseconds,
    TimeUnit::Microseconds,
    TimeUnit::Nanoseconds,
];

/// Decodes CF time values (integers or floats counting `units` since a
/// reference date, in `calendar`, default `standard`) into a datetime array.
/// NaN and values equal to `fill_value` become NaT.
///
/// Ticks are in the units' own unit when every value is a whole number of
/// it; else integers use the coarsest finer unit that is exact, and floats
/// are rounded to the nearest nanosecond as xarray does (microsecond,
/// millisecond or second when nanoseconds since 1970 would overflow, as
/// they do before 1678 or after 2262).
pub fn decode_cf_time(
    values: &Array,
    units: &str,
    calendar: Option<&str>,
    fill_value: Option<f64>,
) -> Result<Array, IoError> {
    let calendar = Calendar::parse(calendar.unwrap_or("standard"))?;
    let cf = CfUnits::parse(units, calendar)?;
    let dtype = values.dtype();
    if !(dtype.is_integer() || dtype.is_float()) {
        return Err(IoError::Invalid(format!(
            "expected integer or float time values with units {units:?}, found {dtype}"
        )));
    }
    let numbers = if dtype.is_integer() {
        Numbers::Ints(integers(values)?)
    } else {
        Numbers::Floats(values.to_f64()?.into_iter().collect())
    };
    let is_fill = |x: f64| x.is_nan() || Some(x) == fill_value;
    let decode_at = |tick: TimeUnit, exactly: bool| -> Result<Vec<i64>, CalendarError> {
        match &numbers {
            Numbers::Ints(ints) => ints
                .iter()
                .map(|&i| {
                    if is_fill(i as f64) {
                        Ok(i64::MIN)
                    } else {
                        cf.decode_i64(i, tick)
                    }
                })
                .collect(),
            Numbers::Floats(floats) => floats
                .iter()
                .map(|&x| match x {
                    x if is_fill(x) => Ok(i64::MIN),
                    x if exactly => cf.decode_f64(x, tick),
                    x => cf.decode_f64_nearest(x, tick),
                })
                .collect(),
        }
    };
    // Integers: the units' own unit, else the coarsest finer one that is
    // exact. Floats: the units' own unit if exact, else rounded at the finest
    // tick that does not overflow.
    let finer = FINER
        .into_iter()
        .filter(|u| *u < cf.unit)
        .map(|u| (u, true));
    let rounded = FINER.into_iter().rev().map(|u| (u, false));
    let candidates: Vec<(TimeUnit, bool)> = if matches!(numbers, Numbers::Ints(_)) {
        std::iter::once((cf.unit, true)).chain(finer).collect()
    } else {
        std::iter::once((cf.unit, true)).chain(rounded).collect()
    };
    let mut first_error = None;
    for (tick, exactly) in candidates {
        match decode_at(tick, exactly) {
            Ok(ticks) => {
                let ticks = ndarray::ArrayD::from_shape_vec(values.shape(), ticks)
                    .expect("one tick per value");
                return Ok(Array::datetime(ticks, tick, calendar));
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.expect("at least one unit was tried").into())
}

/// Time values in the form they are decoded from.
enum Numbers {
    Ints(Vec<i64>),
    Floats(Vec<f64>),
}

/// Integer time values as `i64`, exactly: 64-bit values are read directly
/// (a detour through `f64` would round them above 2^53).
fn integers(values: &Array) -> Result<Vec<i64>, IoError> {
    match values.dtype() {
        DType::I64 => Ok(values.as_view::<i64>()?.iter().copied().collect()),
        DType::U64 => values
            .as_view::<u64>()?
            .iter()
            .map(|&v| {
                i64::try_from(v)
                    .map_err(|_| IoError::Invalid(format!("time value {v} does not fit in int64")))
            })
            .collect(),
        // 32 bits and narrower are exact in f64
        _ => Ok(values.to_f64()?.iter().map(|&v| v as i64).collect()),
    }
}

/// Encodes a datetime array as int64 counts of `units` since its reference
/// date, in the array's calendar. NaT becomes `nat_fill`, or is an error
/// when none is given; a time that is not a whole number of units is an
/// error (choose finer units).
pub fn encode_cf_time(times: &Array, units: &str, nat_fill: Option<i64>) -> Result<Array, IoError> {
    let (ticks, unit, calendar) = times.datetime_ticks()?;
    let cf = CfUnits::parse(units, calendar)?;
    let encoded = ticks
        .iter()
        .map(|&t| match (t, nat_fill) {
            (i64::MIN, Some(fill)) => Ok(fill),
            (i64::MIN, None) => Err(IoError::Invalid(format!(
                "cannot encode NaT with units {units:?}: give a fill value"
            ))),
            (t, _) => Ok(cf.encode_i64(t, unit)?),
        })
        .collect::<Result<Vec<i64>, IoError>>()?;
    Ok(Array::from(
        ndarray::ArrayD::from_shape_vec(ticks.shape(), encoded).expect("one value per tick"),
    ))
}

/// Encodes datetimes as float counts of CF `units` (a `0.25` for 6 hours
/// of `days since …`), as xarray does for a float on-disk dtype; NaT
/// becomes `nat_fill` (NaN when `None`).
///
/// ```
/// use xbeam_chunk::calendar::{Calendar, TimeUnit};
/// use xbeam_chunk::Array;
///
/// let t = Array::datetime(ndarray::arr1(&[0, 6, i64::MIN]).into_dyn(), TimeUnit::Hours, Calendar::Standard);
/// let days = xbeam_io::encode_cf_time_float(&t, "days since 1970-01-01", None)?;
/// let v = days.to_f64()?;
/// assert_eq!((v[0], v[1]), (0.0, 0.25));
/// assert!(v[2].is_nan());
/// let filled = xbeam_io::encode_cf_time_float(&t, "days since 1970-01-01", Some(-1.0))?;
/// assert_eq!(filled.to_f64()?[2], -1.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_cf_time_float(
    times: &Array,
    units: &str,
    nat_fill: Option<f64>,
) -> Result<Array, IoError> {
    let (ticks, unit, calendar) = times.datetime_ticks()?;
    let cf = CfUnits::parse(units, calendar)?;
    let encoded = ticks
        .iter()
        .map(|&t| match t {
            i64::MIN => Ok(nat_fill.unwrap_or(f64::NAN)),
            t => Ok(cf.encode_f64(t, unit)?),
        })
        .collect::<Result<Vec<f64>, IoError>>()?;
    Ok(Array::from(
        ndarray::ArrayD::from_shape_vec(ticks.shape(), encoded).expect("one value per tick"),
    ))
}

/// Re-expresses datetimes in another tick unit (exactly).
pub(crate) fn retick(times: &Array, unit: TimeUnit) -> Result<Array, IoError> {
    let (ticks, from, calendar) = times.datetime_ticks()?;
    if from == unit {
        return Ok(times.clone());
    }
    let (fa, fb) = (from.nanos(), unit.nanos());
    let mut out = Vec::with_capacity(ticks.len());
    for &t in &ticks {
        if t == i64::MIN {
            out.push(t);
        } else if fa >= fb {
            let ratio = fa / fb;
            out.push(t.checked_mul(ratio).ok_or_else(|| {
                IoError::Invalid(format!(
                    "datetime {t} {} does not fit in {}",
                    from.name(),
                    unit.name()
                ))
            })?);
        } else {
            let ratio = fb / fa;
            if t % ratio != 0 {
                return Ok(times.clone());
            }
            out.push(t / ratio);
        }
    }
    let arr = ArrayD::from_shape_vec(ticks.shape(), out).expect("same shape");
    Ok(Array::datetime(arr, unit, calendar))
}

/// Re-expresses datetimes in another tick unit, rounding to the nearest
/// tick (half away from zero) when the unit is coarser.
pub(crate) fn retick_nearest(times: &Array, unit: TimeUnit) -> Result<Array, IoError> {
    let (ticks, from, calendar) = times.datetime_ticks()?;
    if from.nanos() >= unit.nanos() {
        return retick(times, unit);
    }
    let ratio = unit.nanos() / from.nanos();
    let half = ratio / 2;
    let out: Vec<i64> = ticks
        .iter()
        .map(|&t| match t {
            i64::MIN => t,
            t if t >= 0 => t.saturating_add(half) / ratio,
            t => -((-t).saturating_add(half) / ratio),
        })
        .collect();
    let arr = ArrayD::from_shape_vec(ticks.shape(), out).expect("same shape");
    Ok(Array::datetime(arr, unit, calendar))
}

/// The coarsest CF units that encode every time exactly, since the first
/// time, as xarray chooses them.
pub(crate) fn infer_time_units(times: &Array) -> Result<String, IoError> {
    let (ticks, unit, calendar) = times.datetime_ticks()?;
    let valid: Vec<i64> = ticks.iter().copied().filter(|&t| t != i64::MIN).collect();
    let first = valid.first().copied().unwrap_or(0);
    let candidates = [
        TimeUnit::Days,
        TimeUnit::Hours,
        TimeUnit::Minutes,
        TimeUnit::Seconds,
        TimeUnit::Milliseconds,
        TimeUnit::Microseconds,
        TimeUnit::Nanoseconds,
    ];
    let tick_nanos = i128::from(unit.nanos());
    let chosen = candidates
        .into_iter()
        .find(|c| {
            let step = i128::from(c.nanos());
            valid
                .iter()
                .all(|&t| (i128::from(t - first) * tick_nanos) % step == 0)
        })
        .unwrap_or(TimeUnit::Nanoseconds);
    let reference = calendar.from_ticks(first, unit);
    let cf = CfUnits {
        unit: chosen,
        reference,
        calendar,
    };
    // xarray writes "hours since 2000-01-01 06:00:00"
    Ok(cf.format().replacen('T', " ", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_offsets_and_fill_values() {
        let days = Array::from_1d(vec![0.0f64, 0.25, f64::NAN, -9999.0]);
        let t = decode_cf_time(
            &days,
            "days since 1850-01-01",
            Some("360_day"),
            Some(-9999.0),
        )
        .unwrap();
        assert_eq!(
            t.dtype(),
            DType::DateTime(TimeUnit::Nanoseconds, Calendar::Day360),
            "fractional float days are rounded to nanoseconds, as xarray does"
        );
        assert_eq!(t.format_value(1).unwrap(), "1850-01-01T06:00:00");
        assert_eq!(t.format_value(2).unwrap(), "NaT");
        assert_eq!(t.format_value(3).unwrap(), "NaT");
        let err = encode_cf_time(&t, "hours since 1850-01-01", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot encode NaT with units \"hours since 1850-01-01\": give a fill value"
        );
        let err = encode_cf_time(&t, "days since 1850-01-01", Some(-1)).unwrap_err();
        assert!(
            err.to_string().contains("is not a whole number of days"),
            "{err}"
        );
        let hours = encode_cf_time(&t, "hours since 1850-01-01", Some(-1)).unwrap();
        assert_eq!(
            hours
                .as_view::<i64>()
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec![0, 6, -1, -1]
        );
    }

    #[test]
    fn standard_calendar_crosses_the_gregorian_reform() {
        let days = Array::from_1d(vec![0i32, 1]);
        let t = decode_cf_time(&days, "days since 1582-10-04", None, None).unwrap();
        assert_eq!(t.format_value(1).unwrap(), "1582-10-15");
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let strings = Array::from_1d(vec!["x".to_string()]);
        assert_eq!(
            decode_cf_time(&strings, "days since 2000-01-01", None, None)
                .unwrap_err()
                .to_string(),
            "expected integer or float time values with units \"days since 2000-01-01\", found str"
        );
        assert!(decode_cf_time(
            &Array::from_1d(vec![1i64]),
            "fortnights since 2000-01-01",
            None,
            None
        )
        .is_err());
        assert!(decode_cf_time(
            &Array::from_1d(vec![1i64]),
            "days since 2000-01-01",
            Some("martian"),
            None
        )
        .is_err());
        let t = decode_cf_time(
            &Array::from_1d(vec![30i64]),
            "minutes since 2000-01-01",
            None,
            None,
        )
        .unwrap();
        let err = encode_cf_time(&t, "hours since 2000-01-01", None).unwrap_err();
        assert!(err.to_string().contains("not"), "{err}");
    }

    #[test]
    fn float_times_round_like_xarray_and_fall_back_before_1678() {
        // not a whole microsecond: rounded, not refused
        let hours = Array::from_1d(vec![1_042_097.998_888_888_7_f64]);
        let t = decode_cf_time(&hours, "hours since 1850-01-01", None, None).unwrap();
        assert_eq!(
            t.dtype(),
            DType::DateTime(TimeUnit::Nanoseconds, Calendar::Standard)
        );
        assert_eq!(
            t.format_value(0).unwrap(),
            "1968-11-18T17:59:55.999999484",
            "as xarray's datetime64[ns]"
        );
        // year 1000 does not fit nanoseconds since 1970: microseconds instead
        let half = Array::from_1d(vec![0.5f64]);
        let old = decode_cf_time(&half, "days since 1000-01-01", Some("julian"), None).unwrap();
        assert_eq!(
            old.dtype(),
            DType::DateTime(TimeUnit::Microseconds, Calendar::Julian)
        );
        assert_eq!(old.format_value(0).unwrap(), "1000-01-01T12:00:00");
        // whole floats keep the units' own unit
        let whole = Array::from_1d(vec![1.0f32, 2.0]);
        let days = decode_cf_time(&whole, "days since 2000-01-01", None, None).unwrap();
        assert_eq!(
            days.dtype(),
            DType::DateTime(TimeUnit::Days, Calendar::Standard)
        );
    }

    #[test]
    fn time_units_are_inferred_coarsest_first() {
        let t = Array::datetime(
            ndarray::arr1(&[0i64, 6, 12]).into_dyn(),
            TimeUnit::Hours,
            Calendar::ProlepticGregorian,
        );
        assert_eq!(infer_time_units(&t).unwrap(), "hours since 1970-01-01");
    }

    #[test]
    fn large_integer_times_are_exact() {
        let ns = Array::from_1d(vec![1_700_000_000_123_456_789i64]);
        let t = decode_cf_time(&ns, "nanoseconds since 1970-01-01", None, None).unwrap();
        assert_eq!(
            t.datetime_ticks().unwrap().0[[0]],
            1_700_000_000_123_456_789
        );
        let too_big = Array::from_1d(vec![u64::MAX]);
        let err = decode_cf_time(&too_big, "seconds since 1970-01-01", None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "time value 18446744073709551615 does not fit in int64"
        );
    }
}
