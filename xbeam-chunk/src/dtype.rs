//! [`DType`] and the [`Element`] trait that ties Rust types to it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::array::{Array, ArrayData};
use crate::calendar::{Calendar, TimeUnit};

/// The element type of an [`Array`](crate::Array).
///
/// Datetimes are `i64` ticks of `unit` since 1970-01-01 in `calendar`;
/// `i64::MIN` is NaT (not a time), as in NumPy.
///
/// ```
/// use xbeam_chunk::{calendar::{Calendar, TimeUnit}, DType};
/// assert_eq!(DType::F32.to_string(), "float32");
/// assert_eq!(DType::DateTime(TimeUnit::Nanoseconds, Calendar::ProlepticGregorian).to_string(), "datetime64[ns]");
/// assert_eq!(DType::DateTime(TimeUnit::Hours, Calendar::NoLeap).to_string(), "datetime[h, noleap]");
/// assert_eq!(DType::F64.itemsize(), 8);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DType {
    /// `bool`
    Bool,
    /// `i8`
    I8,
    /// `i16`
    I16,
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `u64`
    U64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// Calendar-aware datetime: i64 ticks of a unit since 1970-01-01.
    DateTime(TimeUnit, Calendar),
    /// Time differences: i64 ticks of a unit.
    TimeDelta(TimeUnit),
    /// Variable-length strings (for coordinates and labels).
    String,
}

impl DType {
    /// Bytes per element as stored (strings count as 16, NumPy's `<U4`).
    pub fn itemsize(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 | DType::DateTime(..) | DType::TimeDelta(_) => 8,
            DType::String => 16,
        }
    }

    /// Whether this is `f32` or `f64` (the types that hold NaN).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// Whether this is a signed or unsigned integer type.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            DType::I8
                | DType::I16
                | DType::I32
                | DType::I64
                | DType::U8
                | DType::U16
                | DType::U32
                | DType::U64
        )
    }

    /// Whether values convert to `f64` (bool, integers, floats).
    pub fn is_numeric(self) -> bool {
        self == DType::Bool || self.is_integer() || self.is_float()
    }

    /// The NumPy name (`float32`, `int16`, `datetime64[ns]`); strings are
    /// `str` (reprs show NumPy's `<U{n}` with the longest length);
    /// non-standard calendars print their unit and calendar, since NumPy has
    /// no such type.
    pub fn name(self) -> String {
        match self {
            DType::Bool => "bool".into(),
            DType::I8 => "int8".into(),
            DType::I16 => "int16".into(),
            DType::I32 => "int32".into(),
            DType::I64 => "int64".into(),
            DType::U8 => "uint8".into(),
            DType::U16 => "uint16".into(),
            DType::U32 => "uint32".into(),
            DType::U64 => "uint64".into(),
            DType::F32 => "float32".into(),
            DType::F64 => "float64".into(),
            DType::DateTime(unit, cal) if cal.is_numpy_compatible() => {
                format!("datetime64[{}]", unit.numpy_code())
            }
            DType::DateTime(unit, cal) => {
                format!("datetime[{}, {}]", unit.numpy_code(), cal.name())
            }
            DType::TimeDelta(unit) => format!("timedelta64[{}]", unit.numpy_code()),
            DType::String => "str".into(),
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A Rust type that can be the element of an [`Array`](crate::Array).
///
/// Implemented once per type by a macro; generic code over arrays is written
/// against this trait, not per type.
pub trait Element: Clone + PartialEq + PartialOrd + Send + Sync + fmt::Debug + 'static {
    /// The dtype of plain arrays of this type (datetimes use `i64` with their
    /// own dtype).
    const DTYPE: DType;
    /// The buffer of `array` if it stores elements of this type (datetime and
    /// timedelta arrays store `i64` ticks).
    fn raw(array: &Array) -> Option<&ArrayData<Self>>;
    /// Wraps a buffer as a plain array of this type.
    fn wrap(data: ArrayData<Self>) -> Array;
    /// The missing value (NaN, or NaT for `i64` ticks), if the type has one.
    fn missing() -> Option<Self> {
        None
    }
    /// The value as `f64`, for numeric types.
    fn to_f64(&self) -> Option<f64>;
    /// A value from `f64` (rounded toward zero and saturated for integers).
    fn from_f64(v: f64) -> Option<Self>;
    /// Whether this value is missing: NaN for floats, NaT for datetimes.
    fn is_missing(&self) -> bool {
        false
    }
}

/// `Element` for a number type stored in its own variant; floats also name
/// their missing value (NaN).
macro_rules! number_element {
    ($($t:ty => $d:ident $(, missing = $missing:expr)?);* $(;)?) => {$(
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            fn raw(array: &Array) -> Option<&ArrayData<Self>> {
                match array {
                    Array::$d(a) => Some(a),
                    _ => None,
                }
            }
            fn wrap(data: ArrayData<Self>) -> Array {
                Array::$d(data)
            }
            fn to_f64(&self) -> Option<f64> {
                #[allow(clippy::cast_lossless)]
                Some(*self as f64)
            }
            fn from_f64(v: f64) -> Option<Self> {
                Some(v as $t)
            }
            $(
                fn missing() -> Option<Self> {
                    Some($missing)
                }
                fn is_missing(&self) -> bool {
                    self.is_nan()
                }
            )?
        }
    )*};
}
number_element!(
    i8 => I8; i16 => I16; i32 => I32; u8 => U8; u16 => U16; u32 => U32; u64 => U64;
    f32 => F32, missing = f32::NAN;
    f64 => F64, missing = f64::NAN;
);

impl Element for i64 {
    const DTYPE: DType = DType::I64;
    fn raw(array: &Array) -> Option<&ArrayData<Self>> {
        match array {
            Array::I64(a) | Array::DateTime(a, ..) | Array::TimeDelta(a, _) => Some(a),
            _ => None,
        }
    }
    fn wrap(data: ArrayData<Self>) -> Array {
        Array::I64(data)
    }
    fn missing() -> Option<Self> {
        Some(i64::MIN)
    }
    fn to_f64(&self) -> Option<f64> {
        Some(*self as f64)
    }
    fn from_f64(v: f64) -> Option<Self> {
        Some(v as i64)
    }
    /// `i64::MIN` is NaT when the array holds datetimes; plain `i64` arrays
    /// never call this.
    fn is_missing(&self) -> bool {
        *self == i64::MIN
    }
}

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    fn raw(array: &Array) -> Option<&ArrayData<Self>> {
        match array {
            Array::Bool(a) => Some(a),
            _ => None,
        }
    }
    fn wrap(data: ArrayData<Self>) -> Array {
        Array::Bool(data)
    }
    fn to_f64(&self) -> Option<f64> {
        Some(f64::from(u8::from(*self)))
    }
    fn from_f64(v: f64) -> Option<Self> {
        Some(v != 0.0)
    }
}

impl Element for String {
    const DTYPE: DType = DType::String;
    fn raw(array: &Array) -> Option<&ArrayData<Self>> {
        match array {
            Array::String(a) => Some(a),
            _ => None,
        }
    }
    fn wrap(data: ArrayData<Self>) -> Array {
        Array::String(data)
    }
    fn to_f64(&self) -> Option<f64> {
        None
    }
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
}
