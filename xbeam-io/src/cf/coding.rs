//! How stored values map to decoded ones under the CF conventions, as
//! xarray codes them: `_FillValue` / `missing_value` masked as NaN,
//! `scale_factor` / `add_offset` packing, `units = "<unit> since <date>"`
//! times; the same for every format.

use serde_json::{json, Value};
use xbeam_chunk::calendar::{Calendar, CfUnits, TimeUnit};
use xbeam_chunk::{Array, Attrs, DType};

use super::{f64_attr, infer_time_units, retick, retick_nearest};
use crate::{decode_cf_time, encode_cf_time, encode_cf_time_float, IoError};

/// Reads a number attribute as a format spells it (JSON numbers, and e.g.
/// base64 floats in Zarr v3).
pub(crate) type ReadNumber = fn(&Value) -> Option<f64>;

/// Keys moved from attributes into the encoding when decoding
/// (`_Encoding`: the character set of a char array, which xarray decodes
/// to strings with it and does not keep as an attribute).
const CODING_KEYS: [&str; 6] = [
    "_FillValue",
    "missing_value",
    "scale_factor",
    "add_offset",
    "coordinates",
    "_Encoding",
];

/// How one variable's stored values map to decoded values.
#[derive(Debug, Clone)]
pub(crate) struct Coding {
    /// The dtype of stored values in memory (strings of any width:
    /// [`DType::String`]).
    pub(crate) stored: DType,
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

/// The dtype a masked integer is promoted to (NumPy's `maybe_promote`).
fn promoted(stored: DType) -> DType {
    match stored {
        d if d != DType::String && (d.itemsize() <= 2 || d == DType::F32) => DType::F32,
        _ => DType::F64,
    }
}

/// Whether values of `stored` are never masked.
fn unmaskable(stored: DType) -> bool {
    matches!(stored, DType::String | DType::Bool)
}

/// Works out how to decode a variable stored as `stored` with `attrs`, and
/// splits its attributes into decoded attributes and encoding (xarray's
/// `decode_cf_variable`). `format_fill` is the format's own fill value,
/// used as `_FillValue` when the attributes have none (Zarr v2's
/// `fill_value`); `number` reads number attributes; errors name `path`.
pub(crate) fn decoding(
    path: &str,
    stored: DType,
    attrs: &Attrs,
    format_fill: Option<f64>,
    number: ReadNumber,
) -> Result<(Coding, Attrs, Attrs), IoError> {
    let mut attrs = attrs.clone();
    let mut encoding = Attrs::new();
    for key in CODING_KEYS {
        if let Some(v) = attrs.shift_remove(key) {
            encoding.insert(key.to_owned(), v);
        }
    }
    let read = |encoding: &Attrs, key: &str| -> Result<Option<f64>, IoError> {
        match encoding.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => number(v).map(Some).ok_or_else(|| {
                IoError::store(path, format!("expected a number for {key}, found {v}"))
            }),
        }
    };
    let mut fill = read(&encoding, "_FillValue")?;
    if fill.is_none() {
        fill = format_fill;
        if let Some(f) = fill {
            encoding.insert("_FillValue".into(), f64_attr(f));
        }
    }
    if unmaskable(stored) {
        fill = None;
    }
    let missing = read(&encoding, "missing_value")?;
    let scale = read(&encoding, "scale_factor")?;
    let offset = read(&encoding, "add_offset")?;
    let mut time = None;
    let units = attrs
        .get("units")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut decoded = stored;
    if let Some(units) = units.filter(|u| u.contains(" since ")) {
        if stored.is_integer() || stored.is_float() {
            let cal_name = match attrs.get("calendar") {
                None | Some(Value::Null) => "standard".to_owned(),
                Some(Value::String(c)) => c.clone(),
                Some(other) => {
                    return Err(IoError::store(
                        path,
                        format!("expected a string for calendar, found {other}"),
                    ))
                }
            };
            let calendar = Calendar::parse(&cal_name)?;
            let cf = CfUnits::parse(&units, calendar)?;
            attrs.shift_remove("units");
            encoding.insert("units".into(), json!(units));
            if attrs.shift_remove("calendar").is_some() {
                encoding.insert("calendar".into(), json!(cal_name));
            }
            // float counts (and packed ones) carry fractions of the unit:
            // 0.25 days is 6 hours. They decode to microseconds, whatever
            // the unit, which no float64 offset is finer than in practice
            // (2^-52 of 10^5 days is 2 us) and which spans +-292,000 years
            decoded = if stored.is_float() || scale.is_some() || offset.is_some() {
                DType::DateTime(TimeUnit::Microseconds, calendar)
            } else {
                DType::DateTime(cf.unit, calendar)
            };
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
    let coding = Coding {
        stored,
        fill,
        missing,
        scale,
        offset,
        time,
        decoded,
    };
    Ok((coding, attrs, encoding))
}

/// The CF side of storing a variable: its coding, and the CF attributes
/// to store with it.
#[derive(Debug)]
pub(crate) struct Encoding {
    pub(crate) coding: Coding,
    /// CF attributes (`units`, `calendar`, `scale_factor`, `add_offset`,
    /// `missing_value`), in that order.
    pub(crate) attrs: Attrs,
    /// The fill value asked for (or NaN for floats), before masking rules
    /// drop it for strings and bools.
    pub(crate) fill: Option<f64>,
}

/// Plans how to store variable `name` of `dtype` as `stored` with
/// `encoding` (xarray's keys: `_FillValue`, `scale_factor`, `add_offset`,
/// `units`, `calendar`, `missing_value`); `data` is the variable's values
/// when known (coordinates), to infer time units; `number` reads number
/// attributes.
pub(crate) fn encoding(
    name: &str,
    dtype: DType,
    stored: DType,
    encoding: &Attrs,
    data: Option<&Array>,
    number: ReadNumber,
) -> Result<Encoding, IoError> {
    let bad = |msg: String| IoError::Invalid(format!("variable {name:?}: {msg}"));
    let read = |key: &str| -> Result<Option<f64>, IoError> {
        match encoding.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => number(v)
                .map(Some)
                .ok_or_else(|| bad(format!("expected a number for encoding {key}, found {v}"))),
        }
    };
    let mut attrs = Attrs::new();
    let mut fill = read("_FillValue")?;
    let scale = read("scale_factor")?;
    let offset = read("add_offset")?;
    let missing = read("missing_value")?;
    let mut time = None;
    if let DType::DateTime(_, calendar) = dtype {
        let units = match encoding.get("units").and_then(Value::as_str) {
            Some(u) => u.to_owned(),
            None => match data {
                Some(d) => infer_time_units(d)?,
                None => "nanoseconds since 1970-01-01".to_owned(),
            },
        };
        CfUnits::parse(&units, calendar)?;
        attrs.insert("units".into(), json!(units));
        attrs.insert("calendar".into(), json!(calendar.name()));
        time = Some((units, calendar));
    }
    if stored.is_float() && fill.is_none() && dtype.is_float() {
        fill = Some(f64::NAN);
    }
    if let Some(s) = scale {
        attrs.insert("scale_factor".into(), json!(s));
    }
    if let Some(o) = offset {
        attrs.insert("add_offset".into(), json!(o));
    }
    if let Some(m) = missing {
        attrs.insert("missing_value".into(), f64_attr(m));
    }
    Ok(Encoding {
        coding: Coding {
            stored,
            fill: if unmaskable(stored) { None } else { fill },
            missing,
            scale,
            offset,
            time,
            decoded: dtype,
        },
        attrs,
        fill,
    })
}

impl Coding {
    /// Decodes stored values.
    pub(crate) fn decode(&self, raw: Array) -> Result<Array, IoError> {
        if let Some((units, calendar)) = &self.time {
            let times = decode_cf_time(&raw, units, Some(calendar.name()), self.fill)?;
            return match self.decoded {
                // every chunk in the template's unit (a chunk left finer
                // was read as the coarser unit's ticks: dates 10^15 years
                // off); float times round to it
                DType::DateTime(unit, _) if self.stored.is_float() => retick_nearest(&times, unit),
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
            if self.stored.is_float() {
                // fractions of the unit, as xarray writes them (NaT: the
                // fill value, NaN unless the encoding says otherwise)
                let encoded = encode_cf_time_float(values, units, self.fill)?;
                return cast(&encoded, self.stored);
            }
            let nat = self.fill.map(|f| f as i64);
            let encoded = encode_cf_time(values, units, nat)?;
            return cast(&encoded, self.stored);
        }
        if self.stored == DType::String {
            return Ok(values.clone());
        }
        let fill = self.fill;
        let scale = self.scale.unwrap_or(1.0);
        let offset = self.offset.unwrap_or(0.0);
        let pack = self.scale.is_some() || self.offset.is_some();
        let int_target = !self.stored.is_float();
        if !pack && values.dtype() == self.stored {
            return Ok(values.clone());
        }
        let floats = values.to_f64()?;
        if int_target && fill.is_none() && floats.iter().any(|x| x.is_nan()) {
            return Err(IoError::Invalid(format!(
                "cannot store NaN as {} without a _FillValue in the encoding",
                self.stored.name()
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
fn cast(values: &Array, stored: DType) -> Result<Array, IoError> {
    Ok(values.astype(stored)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cf::attr_f64;

    fn attrs(entries: &[(&str, Value)]) -> Attrs {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn masked_integers_decode_to_floats_and_attributes_move_to_encoding() {
        let stored = attrs(&[("_FillValue", json!(-1)), ("long_name", json!("count"))]);
        let (coding, decoded, encoding) =
            decoding("v", DType::I16, &stored, None, attr_f64).unwrap();
        assert_eq!(
            coding.decoded,
            DType::F32,
            "int16 with a mask promotes to float32"
        );
        assert_eq!(decoded.keys().collect::<Vec<_>>(), ["long_name"]);
        assert_eq!(encoding["_FillValue"], json!(-1));
        let values = coding.decode(Array::from_1d(vec![3i16, -1])).unwrap();
        let values = values.as_view::<f32>().unwrap();
        assert_eq!(values[[0]], 3.0);
        assert!(values[[1]].is_nan());
        let (wide, ..) = decoding("v", DType::I32, &stored, None, attr_f64).unwrap();
        assert_eq!(wide.decoded, DType::F64);
    }

    #[test]
    fn the_format_fill_is_used_only_without_a_fill_attribute() {
        let (coding, _, encoding) =
            decoding("v", DType::F32, &Attrs::new(), Some(-9999.0), attr_f64).unwrap();
        assert_eq!(coding.fill, Some(-9999.0));
        assert_eq!(encoding["_FillValue"], json!(-9999));
        let own = attrs(&[("_FillValue", json!("NaN"))]);
        let (coding, ..) = decoding("v", DType::F32, &own, Some(-9999.0), attr_f64).unwrap();
        assert!(coding.fill.unwrap().is_nan());
        let (strings, ..) =
            decoding("v", DType::String, &Attrs::new(), Some(0.0), attr_f64).unwrap();
        assert_eq!(strings.fill, None, "strings are never masked");
    }

    #[test]
    fn times_decode_and_bad_numbers_name_the_variable() {
        let stored = attrs(&[
            ("units", json!("hours since 2000-01-01")),
            ("calendar", json!("noleap")),
        ]);
        let (coding, decoded, encoding) =
            decoding("time", DType::I64, &stored, None, attr_f64).unwrap();
        assert!(decoded.is_empty());
        assert_eq!(encoding["calendar"], json!("noleap"));
        let times = coding.decode(Array::from_1d(vec![0i64, 30])).unwrap();
        assert_eq!(times.format_value(1).unwrap(), "2000-01-02T06:00:00");
        let back = coding.encode(&times).unwrap();
        assert_eq!(back.as_view::<i64>().unwrap().as_slice().unwrap(), &[0, 30]);

        let bad = attrs(&[("scale_factor", json!("big"))]);
        let err = decoding("t2m", DType::I16, &bad, None, attr_f64).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t2m: expected a number for scale_factor, found \"big\""
        );
    }

    #[test]
    fn encoding_fills_floats_with_nan_and_writes_cf_attributes() {
        let requested = attrs(&[
            ("scale_factor", json!(0.5)),
            ("missing_value", json!("NaN")),
        ]);
        let e = encoding("v", DType::F64, DType::F32, &requested, None, attr_f64).unwrap();
        assert!(e.fill.unwrap().is_nan());
        assert_eq!(
            e.attrs.keys().collect::<Vec<_>>(),
            ["scale_factor", "missing_value"]
        );
        assert_eq!(e.attrs["missing_value"], json!("NaN"));
        let err = encoding(
            "v",
            DType::F64,
            DType::F32,
            &attrs(&[("add_offset", json!([]))]),
            None,
            attr_f64,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "variable \"v\": expected a number for encoding add_offset, found []"
        );
    }
}
