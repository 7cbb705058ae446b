//! CF decoding and encoding of Zarr arrays, as xarray does it: fill values
//! become NaN, `scale_factor` / `add_offset` unpack integers, `units` with
//! `since` make datetimes; and back.

use std::borrow::Cow;

use ndarray::ArrayD;
use serde_json::{json, Value};
use xbeam_chunk::calendar::{Calendar, CfUnits, TimeUnit};
use xbeam_chunk::{Array, Attrs, DType, Element};

use super::meta::{ArrayInfo, Stored, ZarrFormat};
use crate::{decode_cf_time, encode_cf_time, IoError};

/// Keys moved from attributes into the encoding when decoding.
const CODING_KEYS: [&str; 5] = [
    "_FillValue",
    "missing_value",
    "scale_factor",
    "add_offset",
    "coordinates",
];

/// How one array's stored values map to decoded values.
#[derive(Debug, Clone)]
pub(crate) struct Coding {
    pub(crate) stored: Stored,
    /// `_FillValue` used as a mask (numeric types).
    pub(crate) fill: Option<f64>,
    /// `missing_value` used as a mask.
    pub(crate) missing: Option<f64>,
    pub(crate) scale: Option<f64>,
    pub(crate) offset: Option<f64>,
    /// CF time units and calendar.
    pub(crate) time: Option<(String, Calendar)>,
    /// The decoded dtype (datetimes: the units' own tick unit until data
    /// says otherwise).
    pub(crate) decoded: DType,
}

/// A JSON number, or xarray's spellings of non-finite floats; v3 float fill
/// values may be base64 of the little-endian bytes.
pub(crate) fn json_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => match s.as_str() {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            other => {
                if let Some(hex) = other.strip_prefix("0x") {
                    let bits = u64::from_str_radix(hex, 16).ok()?;
                    return Some(if hex.len() <= 8 {
                        f64::from(f32::from_bits(bits as u32))
                    } else {
                        f64::from_bits(bits)
                    });
                }
                let bytes = base64_decode(other)?;
                match bytes.len() {
                    8 => Some(f64::from_le_bytes(bytes.try_into().ok()?)),
                    4 => Some(f64::from(f32::from_le_bytes(bytes.try_into().ok()?))),
                    _ => None,
                }
            }
        },
        _ => None,
    }
}

/// A float as xarray writes `_FillValue` into v3 attributes: base64 of the
/// little-endian float64.
pub(crate) fn base64_f64(x: f64) -> Value {
    Value::String(base64_encode(&x.to_le_bytes()))
}

/// A float as JSON: a number, or `"NaN"` / `"Infinity"` / `"-Infinity"`.
pub(crate) fn f64_json(x: f64) -> Value {
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

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The dtype a masked integer is promoted to (NumPy's `maybe_promote`).
fn promoted(stored: Stored) -> DType {
    match stored {
        Stored::Plain(d) if d.itemsize() <= 2 || d == DType::F32 => DType::F32,
        _ => DType::F64,
    }
}

/// The dtype of stored values in memory, before CF decoding.
pub(crate) fn plain_dtype(stored: Stored) -> DType {
    match stored {
        Stored::Plain(d) => d,
        Stored::Utf32(_) | Stored::Bytes(_) | Stored::VString => DType::String,
    }
}

/// The stored type for a dtype (datetimes as int64 counts, strings as
/// variable-length until their width is known).
pub(crate) fn stored_for(dtype: DType) -> Option<Stored> {
    Some(match dtype {
        DType::DateTime(..) | DType::TimeDelta(_) => Stored::Plain(DType::I64),
        DType::String => Stored::VString,
        d if d.is_numeric() => Stored::Plain(d),
        _ => return None,
    })
}

/// Works out how to decode an array, and splits its attributes into
/// decoded attributes and encoding.
pub(crate) fn decoding(info: &ArrayInfo) -> Result<(Coding, Attrs, Attrs), IoError> {
    let path = &info.name;
    let mut attrs = info.attrs.clone();
    let mut encoding = Attrs::new();
    for key in CODING_KEYS {
        if let Some(v) = attrs.shift_remove(key) {
            encoding.insert(key.to_owned(), v);
        }
    }
    let stored = info.stored;
    let number = |encoding: &Attrs, key: &str| -> Result<Option<f64>, IoError> {
        match encoding.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => json_f64(v).map(Some).ok_or_else(|| {
                IoError::store(path, format!("expected a number for {key}, found {v}"))
            }),
        }
    };
    let mut fill = number(&encoding, "_FillValue")?;
    if fill.is_none() && info.format == ZarrFormat::V2 && !stored.is_string() {
        // xarray uses a v2 array's fill_value as its _FillValue
        let fv = info.fill_value();
        if !fv.is_null() {
            fill = json_f64(fv);
            if let Some(f) = fill {
                encoding.insert("_FillValue".into(), f64_json(f));
            }
        }
    }
    if stored.is_string() || stored == Stored::Plain(DType::Bool) {
        fill = None;
    }
    let missing = number(&encoding, "missing_value")?;
    let scale = number(&encoding, "scale_factor")?;
    let offset = number(&encoding, "add_offset")?;
    let mut time = None;
    let units = attrs
        .get("units")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut decoded = plain_dtype(stored);
    if let Some(units) = units.filter(|u| u.contains(" since ")) {
        if stored.is_integer() || stored.is_float() {
            let cal_name = attrs
                .get("calendar")
                .and_then(Value::as_str)
                .unwrap_or("standard")
                .to_owned();
            let calendar = Calendar::parse(&cal_name)?;
            let cf = CfUnits::parse(&units, calendar)?;
            attrs.shift_remove("units");
            encoding.insert("units".into(), json!(units));
            if attrs.shift_remove("calendar").is_some() {
                encoding.insert("calendar".into(), json!(cal_name));
            }
            decoded = DType::DateTime(cf.unit, calendar);
            time = Some((units, calendar));
        }
    }
    if time.is_none() {
        if scale.is_some() || offset.is_some() {
            decoded = DType::F64;
        } else if (fill.is_some() || missing.is_some()) && !stored.is_float() {
            decoded = promoted(stored);
        }
    }
    encoding.insert("dtype".into(), json!(stored.numpy_name()));
    encoding.insert("chunks".into(), json!(info.chunks));
    if let Some(shards) = &info.shards {
        encoding.insert("shards".into(), json!(shards));
    }
    encoding.insert("compressors".into(), Value::Array(info.compressors()));
    if let Some(sep) = chunk_separator(info) {
        encoding.insert("dimension_separator".into(), json!(sep));
    }
    Ok((
        Coding {
            stored,
            fill,
            missing,
            scale,
            offset,
            time,
            decoded,
        },
        attrs,
        encoding,
    ))
}

fn chunk_separator(info: &ArrayInfo) -> Option<String> {
    match info.format {
        ZarrFormat::V2 => info
            .meta
            .get("dimension_separator")
            .and_then(Value::as_str)
            .map(str::to_owned),
        ZarrFormat::V3 => {
            let cke = info.meta.get("chunk_key_encoding")?;
            let sep = cke.get("configuration")?.get("separator")?.as_str()?;
            let default = if cke.get("name")?.as_str()? == "v2" {
                "."
            } else {
                "/"
            };
            (sep != default).then(|| sep.to_owned())
        }
    }
}

impl Coding {
    /// Decodes stored values.
    pub(crate) fn decode(&self, raw: Array) -> Result<Array, IoError> {
        if let Some((units, calendar)) = &self.time {
            let times = decode_cf_time(&raw, units, Some(calendar.name()), self.fill)?;
            return match self.decoded {
                DType::DateTime(unit, _) => retick(&times, unit),
                _ => Ok(times),
            };
        }
        if self.decoded == raw.dtype()
            && self.fill.is_none_or(f64::is_nan)
            && self.missing.is_none()
        {
            return Ok(raw);
        }
        let fill = self.fill;
        let missing = self.missing;
        let scale = self.scale.unwrap_or(1.0);
        let offset = self.offset.unwrap_or(0.0);
        let unpack = self.scale.is_some() || self.offset.is_some();
        let f = move |x: f64| {
            if Some(x) == fill || Some(x) == missing {
                f64::NAN
            } else if unpack {
                x * scale + offset
            } else {
                x
            }
        };
        match self.decoded {
            DType::F32 => Ok(Array::from(raw.to_f64()?.mapv(|x| f(x) as f32))),
            DType::F64 => Ok(Array::from(raw.to_f64()?.mapv(f))),
            other => Err(IoError::Invalid(format!(
                "cannot decode {} values into {other}",
                raw.dtype()
            ))),
        }
    }

    /// Encodes values of the decoded dtype into stored values.
    pub(crate) fn encode(&self, values: &Array) -> Result<Array, IoError> {
        if let Some((units, _)) = &self.time {
            let nat = self.fill.map(|f| f as i64);
            let encoded = encode_cf_time(values, units, nat)?;
            return cast(&encoded, self.stored);
        }
        if self.stored.is_string() {
            return Ok(values.clone());
        }
        let fill = self.fill;
        let scale = self.scale.unwrap_or(1.0);
        let offset = self.offset.unwrap_or(0.0);
        let pack = self.scale.is_some() || self.offset.is_some();
        let int_target = !self.stored.is_float();
        if !pack && values.dtype() == plain_dtype(self.stored) {
            return Ok(values.clone());
        }
        let floats = values.to_f64()?;
        if int_target && fill.is_none() && floats.iter().any(|x| x.is_nan()) {
            return Err(IoError::Invalid(format!(
                "cannot store NaN as {} without a _FillValue in the encoding",
                self.stored.numpy_name()
            )));
        }
        let packed = floats.mapv(|x| {
            if x.is_nan() {
                fill.unwrap_or(f64::NAN)
            } else if pack {
                let y = (x - offset) / scale;
                if int_target {
                    y.round()
                } else {
                    y
                }
            } else if int_target {
                x.round()
            } else {
                x
            }
        });
        cast(&Array::from(packed), self.stored)
    }
}

/// Converts numbers to a stored numeric type.
fn cast(values: &Array, stored: Stored) -> Result<Array, IoError> {
    Ok(values.astype(plain_dtype(stored))?)
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

/// Encoding for a variable being written: the coding plus the attributes
/// and fill value its metadata carries.
pub(crate) struct Plan {
    pub(crate) coding: Coding,
    /// CF attributes to add to the stored attributes.
    pub(crate) cf_attrs: Attrs,
    /// The zarr `fill_value`.
    pub(crate) fill_value: Value,
}

/// Plans how to store a variable of `dtype` with `encoding` (xarray's
/// encoding keys: `dtype`, `_FillValue`, `scale_factor`, `add_offset`,
/// `units`, `calendar`, `missing_value`); `data` is the variable's values
/// when known (coordinates), to infer time units and string widths.
#[allow(clippy::too_many_lines)] // one decision per encoding key, in order
pub(crate) fn plan(
    name: &str,
    dtype: DType,
    encoding: &Attrs,
    data: Option<&Array>,
    format: ZarrFormat,
) -> Result<Plan, IoError> {
    let bad = |msg: String| IoError::Invalid(format!("variable {name:?}: {msg}"));
    let number = |key: &str| -> Result<Option<f64>, IoError> {
        match encoding.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => json_f64(v)
                .map(Some)
                .ok_or_else(|| bad(format!("expected a number for encoding {key}, found {v}"))),
        }
    };
    let requested = match encoding.get("dtype") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            Stored::from_numpy_name(s)
                .ok_or_else(|| bad(format!("unsupported encoding dtype {s:?}")))?,
        ),
        Some(other) => return Err(bad(format!("expected a dtype name, found {other}"))),
    };
    let mut cf_attrs = Attrs::new();
    let mut fill = number("_FillValue")?;
    let scale = number("scale_factor")?;
    let offset = number("add_offset")?;
    let missing = number("missing_value")?;
    let mut time = None;
    let stored = match dtype {
        DType::DateTime(_, calendar) => {
            let units = match encoding.get("units").and_then(Value::as_str) {
                Some(u) => u.to_owned(),
                None => match data {
                    Some(d) => infer_time_units(d)?,
                    None => "nanoseconds since 1970-01-01".to_owned(),
                },
            };
            CfUnits::parse(&units, calendar)?;
            cf_attrs.insert("units".into(), json!(units));
            cf_attrs.insert("calendar".into(), json!(calendar.name()));
            time = Some((units, calendar));
            requested.unwrap_or(Stored::Plain(DType::I64))
        }
        DType::String => match requested {
            Some(s) if s.is_string() && s != Stored::VString => s,
            _ => {
                let width = data
                    .and_then(|d| d.as_view::<String>().ok())
                    .map_or(1, |v| {
                        v.iter().map(|s| s.chars().count()).max().unwrap_or(1)
                    })
                    .max(1);
                Stored::Utf32(width)
            }
        },
        DType::TimeDelta(_) => {
            return Err(bad(
                "timedelta variables cannot be written to Zarr yet".into()
            ))
        }
        other => requested
            .or_else(|| stored_for(other))
            .ok_or_else(|| bad(format!("cannot store dtype {other}")))?,
    };
    if stored.is_float() && fill.is_none() && dtype.is_float() {
        fill = Some(f64::NAN);
    }
    if let Some(s) = scale {
        cf_attrs.insert("scale_factor".into(), json!(s));
    }
    if let Some(o) = offset {
        cf_attrs.insert("add_offset".into(), json!(o));
    }
    if let Some(m) = missing {
        cf_attrs.insert("missing_value".into(), f64_json(m));
    }
    if format == ZarrFormat::V3 {
        if let Some(f) = fill {
            let v = if stored.is_float() {
                base64_f64(f)
            } else {
                f64_json(f)
            };
            cf_attrs.insert("_FillValue".into(), v);
        }
    }
    let fill_value = match (format, stored) {
        (_, s) if s.is_float() => f64_json(fill.unwrap_or(f64::NAN)),
        (ZarrFormat::V2, s) if s.is_string() => Value::Null,
        (ZarrFormat::V2, _) => fill.map_or(Value::Null, f64_json),
        (ZarrFormat::V3, Stored::Plain(DType::Bool)) => json!(false),
        (ZarrFormat::V3, s) if s.is_string() => json!(""),
        (ZarrFormat::V3, _) => json!(0),
    };
    let decoded = dtype;
    Ok(Plan {
        coding: Coding {
            stored,
            fill: if stored.is_string() || stored == Stored::Plain(DType::Bool) {
                None
            } else {
                fill
            },
            missing,
            scale,
            offset,
            time,
            decoded,
        },
        cf_attrs,
        fill_value,
    })
}

/// Stored bytes (native little-endian) of stored values, for zarrs:
/// borrowed from the array when it is a contiguous buffer of numbers.
pub(crate) fn to_bytes(values: &Array, stored: Stored) -> Result<Cow<'_, [u8]>, IoError> {
    fn view_bytes<'a, T: bytemuck::Pod>(view: &ndarray::ArrayViewD<'a, T>) -> Cow<'a, [u8]> {
        if let Some(slice) = view.to_slice() {
            Cow::Borrowed(bytemuck::cast_slice(slice))
        } else {
            let owned: Vec<T> = view.iter().copied().collect();
            Cow::Owned(bytemuck::cast_slice(&owned).to_vec())
        }
    }
    fn pod<T: Element + bytemuck::Pod>(a: &Array) -> Result<Cow<'_, [u8]>, IoError> {
        Ok(view_bytes(&a.as_view::<T>()?))
    }
    match stored {
        Stored::Plain(DType::Bool) => Ok(Cow::Owned(
            values
                .as_view::<bool>()?
                .iter()
                .map(|&b| u8::from(b))
                .collect(),
        )),
        Stored::Plain(DType::I8) => pod::<i8>(values),
        Stored::Plain(DType::I16) => pod::<i16>(values),
        Stored::Plain(DType::I32) => pod::<i32>(values),
        Stored::Plain(DType::I64) => match values {
            Array::DateTime(..) | Array::TimeDelta(..) => {
                let (ticks, ..) = values.datetime_ticks()?;
                Ok(view_bytes(&ticks))
            }
            _ => pod::<i64>(values),
        },
        Stored::Plain(DType::U8) => pod::<u8>(values),
        Stored::Plain(DType::U16) => pod::<u16>(values),
        Stored::Plain(DType::U32) => pod::<u32>(values),
        Stored::Plain(DType::U64) => pod::<u64>(values),
        Stored::Plain(DType::F32) => pod::<f32>(values),
        Stored::Plain(DType::F64) => pod::<f64>(values),
        Stored::Utf32(n) => {
            let view = values.as_view::<String>()?;
            let mut out = Vec::with_capacity(view.len() * 4 * n);
            for s in &view {
                let chars: Vec<char> = s.chars().collect();
                if chars.len() > n {
                    return Err(IoError::Invalid(format!(
                        "string {s:?} is longer than the stored width of {n} characters"
                    )));
                }
                for i in 0..n {
                    let c = chars.get(i).map_or(0, |&c| c as u32);
                    out.extend_from_slice(&c.to_le_bytes());
                }
            }
            Ok(Cow::Owned(out))
        }
        Stored::Bytes(n) => {
            let view = values.as_view::<String>()?;
            let mut out = Vec::with_capacity(view.len() * n);
            for s in &view {
                let b = s.as_bytes();
                if b.len() > n {
                    return Err(IoError::Invalid(format!(
                        "string {s:?} is longer than the stored width of {n} bytes"
                    )));
                }
                out.extend_from_slice(b);
                out.resize(out.len() + n - b.len(), 0);
            }
            Ok(Cow::Owned(out))
        }
        Stored::VString => Err(IoError::Invalid(
            "variable-length strings are written as fixed-width <U strings".into(),
        )),
        Stored::Plain(d) => Err(IoError::Invalid(format!("cannot store {d} values"))),
    }
}

/// Stored values from decoded bytes.
pub(crate) fn from_bytes(bytes: &[u8], stored: Stored, shape: &[usize]) -> Result<Array, IoError> {
    fn pod<T: Element + bytemuck::Pod>(bytes: &[u8], shape: &[usize]) -> Result<Array, IoError> {
        let v: Vec<T> = bytemuck::pod_collect_to_vec(bytes);
        Ok(Array::from_vec(shape.to_vec(), v)?)
    }
    let n: usize = shape.iter().product();
    if stored != Stored::VString && bytes.len() != n * stored.itemsize() {
        return Err(IoError::Invalid(format!(
            "decoded {} bytes for {n} elements of {}: expected {}",
            bytes.len(),
            stored.numpy_name(),
            n * stored.itemsize()
        )));
    }
    match stored {
        Stored::Plain(DType::Bool) => Ok(Array::from_vec(
            shape.to_vec(),
            bytes.iter().map(|&b| b != 0).collect::<Vec<bool>>(),
        )?),
        Stored::Plain(DType::I8) => pod::<i8>(bytes, shape),
        Stored::Plain(DType::I16) => pod::<i16>(bytes, shape),
        Stored::Plain(DType::I32) => pod::<i32>(bytes, shape),
        Stored::Plain(DType::I64) => pod::<i64>(bytes, shape),
        Stored::Plain(DType::U8) => pod::<u8>(bytes, shape),
        Stored::Plain(DType::U16) => pod::<u16>(bytes, shape),
        Stored::Plain(DType::U32) => pod::<u32>(bytes, shape),
        Stored::Plain(DType::U64) => pod::<u64>(bytes, shape),
        Stored::Plain(DType::F32) => pod::<f32>(bytes, shape),
        Stored::Plain(DType::F64) => pod::<f64>(bytes, shape),
        Stored::Utf32(w) => {
            let strings = bytes
                .chunks(4 * w.max(1))
                .take(n)
                .map(|item| {
                    item.chunks(4)
                        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                        .take_while(|&c| c != 0)
                        .map(|c| char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER))
                        .collect::<String>()
                })
                .collect::<Vec<String>>();
            Ok(Array::from_vec(shape.to_vec(), strings)?)
        }
        Stored::Bytes(w) => {
            let strings = bytes
                .chunks(w.max(1))
                .take(n)
                .map(|item| {
                    let end = item.iter().position(|&b| b == 0).unwrap_or(item.len());
                    String::from_utf8_lossy(&item[..end]).into_owned()
                })
                .collect::<Vec<String>>();
            Ok(Array::from_vec(shape.to_vec(), strings)?)
        }
        Stored::VString => Err(IoError::Invalid(
            "variable-length strings come with offsets".into(),
        )),
        Stored::Plain(d) => Err(IoError::Invalid(format!("cannot read {d} values"))),
    }
}

/// Stored values from variable-length bytes and offsets.
pub(crate) fn from_vlen(
    bytes: &[u8],
    offsets: &[usize],
    shape: &[usize],
) -> Result<Array, IoError> {
    let strings = offsets
        .windows(2)
        .map(|w| String::from_utf8_lossy(&bytes[w[0]..w[1]]).into_owned())
        .collect::<Vec<String>>();
    Ok(Array::from_vec(shape.to_vec(), strings)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_like_python() {
        // xarray's NaN _FillValue in v3 attributes
        assert_eq!(base64_f64(f64::NAN), json!("AAAAAAAA+H8="));
        assert!(json_f64(&json!("AAAAAAAA+H8=")).unwrap().is_nan());
        assert_eq!(json_f64(&base64_f64(-9999.5)), Some(-9999.5));
        for n in 0..10u8 {
            let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64_decode(&base64_encode(&bytes)).unwrap(), bytes);
        }
    }

    #[test]
    fn packing_round_trips_with_nan_as_fill() {
        let mut enc = Attrs::new();
        enc.insert("dtype".into(), json!("int16"));
        enc.insert("scale_factor".into(), json!(0.01));
        enc.insert("add_offset".into(), json!(15.0));
        enc.insert("_FillValue".into(), json!(-32768));
        let p = plan("packed", DType::F64, &enc, None, ZarrFormat::V2).unwrap();
        assert_eq!(p.fill_value, json!(-32768));
        let x = Array::from_1d(vec![15.0, f64::NAN, 14.99, 16.5]);
        let s = p.coding.encode(&x).unwrap();
        assert_eq!(
            s.as_view::<i16>()
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec![0, -32768, -1, 150]
        );
        let back = p.coding.decode(s).unwrap();
        assert!(back.allclose(&x, 0.0, 1e-9));
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
}
