//! Per-dtype dispatch, written once: [`dispatch!`](crate::dispatch) runs
//! one generic body for whichever element type a [`DType`](crate::DType) or
//! an [`Array`](crate::Array) holds (like arrow's
//! `downcast_primitive_array!`), so no function repeats an 11-arm `match`.

/// Runs one body per element type, chosen by a [`DType`](crate::DType) or by
/// the variant of an [`Array`](crate::Array). The body is compiled once per
/// element type, so it may call generic functions.
///
/// Four forms:
///
/// - `dispatch!(dtype: d, T => body, Pattern => other, ...)`: for the ten
///   numeric dtypes (`int8` … `uint64`, `float32`, `float64`) `T` is a type
///   alias of the Rust element type; every other dtype must be covered by
///   the trailing arms (bool, datetime, timedelta, string).
/// - `dispatch!(primitive: array, a => body, Pattern => other, ...)`: `a` is
///   the buffer (`&ArrayData<T>`) of a numeric array, datetimes and
///   timedeltas included (their buffers are `i64` ticks); bool and string
///   arrays go to the trailing arms.
/// - `dispatch!(array: array, a => body)`: every variant, strings included.
/// - `dispatch!(map: array, a => body)`: every variant; `body` yields a new
///   buffer of the same element type, re-wrapped in the same variant
///   (datetimes keep their unit and calendar).
///
/// ```
/// use xbeam_chunk::{dispatch, Array, DType};
///
/// // A value of each numeric dtype, written once.
/// fn empty(dtype: DType) -> Option<Array> {
///     dispatch!(dtype: dtype, T => Some(Array::from_1d(Vec::<T>::new())), _ => None)
/// }
/// assert_eq!(empty(DType::U16).unwrap().dtype(), DType::U16);
/// assert!(empty(DType::String).is_none());
///
/// // The size in bytes of a numeric array's elements, or None.
/// fn item_bytes(array: &Array) -> Option<usize> {
///     dispatch!(primitive: array, a => Some(std::mem::size_of_val(&a[[0]])), _ => None)
/// }
/// assert_eq!(item_bytes(&Array::from_1d(vec![1.5f32])), Some(4));
///
/// // Any array, strings included.
/// let strings = Array::from_1d(vec!["a".to_string(), "b".to_string()]);
/// assert_eq!(dispatch!(array: &strings, a => a.len()), 2);
/// let copy = dispatch!(map: &strings, a => a.map(Clone::clone).into_shared());
/// assert_eq!(copy, strings);
/// ```
#[macro_export]
macro_rules! dispatch {
    (dtype: $dtype:expr, $T:ident => $body:expr $(, $pat:pat => $other:expr)* $(,)?) => {
        match $dtype {
            $crate::DType::I8 => { type $T = i8; $body }
            $crate::DType::I16 => { type $T = i16; $body }
            $crate::DType::I32 => { type $T = i32; $body }
            $crate::DType::I64 => { type $T = i64; $body }
            $crate::DType::U8 => { type $T = u8; $body }
            $crate::DType::U16 => { type $T = u16; $body }
            $crate::DType::U32 => { type $T = u32; $body }
            $crate::DType::U64 => { type $T = u64; $body }
            $crate::DType::F32 => { type $T = f32; $body }
            $crate::DType::F64 => { type $T = f64; $body }
            $($pat => $other,)*
        }
    };
    (primitive: $arr:expr, $a:ident => $body:expr $(, $pat:pat => $other:expr)* $(,)?) => {
        match $arr {
            $crate::Array::I8($a) => $body,
            $crate::Array::I16($a) => $body,
            $crate::Array::I32($a) => $body,
            $crate::Array::I64($a)
            | $crate::Array::DateTime($a, ..)
            | $crate::Array::TimeDelta($a, _) => $body,
            $crate::Array::U8($a) => $body,
            $crate::Array::U16($a) => $body,
            $crate::Array::U32($a) => $body,
            $crate::Array::U64($a) => $body,
            $crate::Array::F32($a) => $body,
            $crate::Array::F64($a) => $body,
            $($pat => $other,)*
        }
    };
    (array: $arr:expr, $a:ident => $body:expr $(,)?) => {
        match $arr {
            $crate::Array::Bool($a) => $body,
            $crate::Array::I8($a) => $body,
            $crate::Array::I16($a) => $body,
            $crate::Array::I32($a) => $body,
            $crate::Array::I64($a)
            | $crate::Array::DateTime($a, ..)
            | $crate::Array::TimeDelta($a, _) => $body,
            $crate::Array::U8($a) => $body,
            $crate::Array::U16($a) => $body,
            $crate::Array::U32($a) => $body,
            $crate::Array::U64($a) => $body,
            $crate::Array::F32($a) => $body,
            $crate::Array::F64($a) => $body,
            $crate::Array::String($a) => $body,
            // See the `map` form.
            #[allow(unreachable_patterns)]
            _ => unreachable!("dispatch! covers every Array variant"),
        }
    };
    (map: $arr:expr, $a:ident => $body:expr $(,)?) => {
        match $arr {
            $crate::Array::Bool($a) => $crate::Array::Bool($body),
            $crate::Array::I8($a) => $crate::Array::I8($body),
            $crate::Array::I16($a) => $crate::Array::I16($body),
            $crate::Array::I32($a) => $crate::Array::I32($body),
            $crate::Array::I64($a) => $crate::Array::I64($body),
            $crate::Array::U8($a) => $crate::Array::U8($body),
            $crate::Array::U16($a) => $crate::Array::U16($body),
            $crate::Array::U32($a) => $crate::Array::U32($body),
            $crate::Array::U64($a) => $crate::Array::U64($body),
            $crate::Array::F32($a) => $crate::Array::F32($body),
            $crate::Array::F64($a) => $crate::Array::F64($body),
            $crate::Array::DateTime($a, u, c) => $crate::Array::DateTime($body, *u, *c),
            $crate::Array::TimeDelta($a, u) => $crate::Array::TimeDelta($body, *u),
            $crate::Array::String($a) => $crate::Array::String($body),
            // `Array` is non-exhaustive, so callers in other crates need an
            // arm for variants they cannot see; this version has none.
            #[allow(unreachable_patterns)]
            _ => unreachable!("dispatch! covers every Array variant"),
        }
    };
}
