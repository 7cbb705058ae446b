//! A Zarr array's CF coding: the format-independent coding of [`crate::cf`]
//! plus what Zarr adds: its stored types, its `fill_value`, xarray's v3
//! `_FillValue` attribute and the encoding keys that describe the array
//! (`dtype`, `chunks`, `shards`, `compressors`, `dimension_separator`).

use serde_json::{json, Value};
use xbeam_chunk::{Array, Attrs, DType};

use super::fill::{base64_f64, json_f64};
use super::meta::{ArrayInfo, Stored, ZarrFormat};
use crate::cf::coding::{self, Coding};
use crate::cf::f64_attr;
use crate::IoError;

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
    let stored = info.stored;
    // xarray uses a v2 array's fill_value as its _FillValue
    let format_fill = (info.format == ZarrFormat::V2 && !stored.is_string())
        .then(|| json_f64(info.fill_value()))
        .flatten();
    let (coding, attrs, mut encoding) = coding::decoding(
        &info.name,
        plain_dtype(stored),
        &info.attrs,
        format_fill,
        json_f64,
    )?;
    encoding.insert("dtype".into(), json!(stored.numpy_name()));
    encoding.insert("chunks".into(), json!(info.chunks));
    if let Some(shards) = &info.shards {
        encoding.insert("shards".into(), json!(shards));
    }
    encoding.insert("compressors".into(), Value::Array(info.compressors()));
    if let Some(sep) = chunk_separator(info) {
        encoding.insert("dimension_separator".into(), json!(sep));
    }
    Ok((coding, attrs, encoding))
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

/// How to store a variable: its coding, its stored type, and what its
/// metadata carries.
pub(crate) struct Plan {
    pub(crate) coding: Coding,
    /// How elements are stored.
    pub(crate) stored: Stored,
    /// CF attributes to add to the stored attributes.
    pub(crate) cf_attrs: Attrs,
    /// The zarr `fill_value`.
    pub(crate) fill_value: Value,
}

/// Plans how to store a variable of `dtype` with `encoding` (xarray's
/// encoding keys: `dtype`, `_FillValue`, `scale_factor`, `add_offset`,
/// `units`, `calendar`, `missing_value`); `data` is the variable's values
/// when known (coordinates), to infer time units and string widths.
pub(crate) fn plan(
    name: &str,
    dtype: DType,
    encoding: &Attrs,
    data: Option<&Array>,
    format: ZarrFormat,
) -> Result<Plan, IoError> {
    let bad = |msg: String| IoError::Invalid(format!("variable {name:?}: {msg}"));
    let requested = match encoding.get("dtype") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            Stored::from_numpy_name(s)
                .ok_or_else(|| bad(format!("unsupported encoding dtype {s:?}")))?,
        ),
        Some(other) => return Err(bad(format!("expected a dtype name, found {other}"))),
    };
    let stored = match dtype {
        DType::DateTime(..) => requested.unwrap_or(Stored::Plain(DType::I64)),
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
    let cf = coding::encoding(name, dtype, plain_dtype(stored), encoding, data, json_f64)?;
    let mut cf_attrs = cf.attrs;
    if format == ZarrFormat::V3 {
        if let Some(f) = cf.fill {
            let v = if stored.is_float() {
                base64_f64(f)
            } else {
                f64_attr(f)
            };
            cf_attrs.insert("_FillValue".into(), v);
        }
    }
    let fill_value = match (format, stored) {
        (_, s) if s.is_float() => f64_attr(cf.fill.unwrap_or(f64::NAN)),
        (ZarrFormat::V2, s) if s.is_string() => Value::Null,
        (ZarrFormat::V2, _) => cf.fill.map_or(Value::Null, f64_attr),
        (ZarrFormat::V3, Stored::Plain(DType::Bool)) => json!(false),
        (ZarrFormat::V3, s) if s.is_string() => json!(""),
        (ZarrFormat::V3, _) => json!(0),
    };
    Ok(Plan {
        coding: cf.coding,
        stored,
        cf_attrs,
        fill_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_with_nan_as_fill() {
        let mut enc = Attrs::new();
        enc.insert("dtype".into(), json!("int16"));
        enc.insert("scale_factor".into(), json!(0.01));
        enc.insert("add_offset".into(), json!(15.0));
        enc.insert("_FillValue".into(), json!(-32768));
        let p = plan("packed", DType::F64, &enc, None, ZarrFormat::V2).unwrap();
        assert_eq!(p.fill_value, json!(-32768));
        assert_eq!(p.stored, Stored::Plain(DType::I16));
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
    fn v3_float_fill_values_are_base64_attributes() {
        let p = plan("t", DType::F32, &Attrs::new(), None, ZarrFormat::V3).unwrap();
        assert_eq!(p.cf_attrs["_FillValue"], json!("AAAAAAAA+H8="));
        assert_eq!(p.fill_value, json!("NaN"));
        let strings = plan("s", DType::String, &Attrs::new(), None, ZarrFormat::V3).unwrap();
        assert_eq!(strings.stored, Stored::Utf32(1));
        assert!(strings.coding.fill.is_none());
    }
}
