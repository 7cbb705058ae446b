//! The CF conventions, shared by every format (Zarr today, NetCDF next):
//! masking and packing ([`coding`]), CF time coding ([`time`]), and how
//! numbers and decoded dtypes are written.

pub(crate) mod coding;
mod time;

use serde_json::{json, Value};
use xbeam_chunk::DType;

pub use time::{decode_cf_time, encode_cf_time, encode_cf_time_float};
pub(crate) use time::{infer_time_units, retick, retick_nearest};

/// A number attribute: a JSON number or bool, or xarray's spellings of
/// non-finite floats (`"NaN"`, `"Infinity"`, `"-Infinity"`, and NumPy's
/// `"nan"`, `"inf"`, `"-inf"`).
pub(crate) fn attr_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => match s.as_str() {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// A float as an attribute: a number (an integer when it is whole), or
/// `"NaN"` / `"Infinity"` / `"-Infinity"`, which JSON has no numbers for.
pub(crate) fn f64_attr(x: f64) -> Value {
    if x.is_nan() {
        json!("NaN")
    } else if x == f64::INFINITY {
        json!("Infinity")
    } else if x == f64::NEG_INFINITY {
        json!("-Infinity")
    } else if x.fract() == 0.0 && x.abs() < 9.0e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// The dtype NumPy (and so xarray) shows for decoded values of `dtype`:
/// `float32`, `int16`, `datetime64[ns]` for NumPy's calendars, `object` for
/// other calendars and for strings.
///
/// ```
/// use xbeam_chunk::calendar::{Calendar, TimeUnit};
/// use xbeam_chunk::DType;
/// assert_eq!(xbeam_io::numpy_dtype(DType::DateTime(TimeUnit::Hours, Calendar::Standard)), "datetime64[ns]");
/// assert_eq!(xbeam_io::numpy_dtype(DType::DateTime(TimeUnit::Days, Calendar::NoLeap)), "object");
/// ```
pub fn numpy_dtype(dtype: DType) -> String {
    match dtype {
        DType::DateTime(_, c) if c.is_numpy_compatible() => "datetime64[ns]".into(),
        DType::DateTime(..) | DType::String => "object".into(),
        DType::TimeDelta(_) => "timedelta64[ns]".into(),
        other => other.name(),
    }
}
