//! Fill values as Zarr JSON spells them: hex bits, base64 of little-endian
//! floats (xarray's v3 `_FillValue`), besides plain numbers.

use serde_json::Value;

use crate::cf::attr_f64;

/// A number in Zarr JSON (a fill value or a number attribute): what
/// [`attr_f64`] reads, hex bits (`"0x7fc00000"`), or base64 of the
/// little-endian float (xarray's v3 `_FillValue`).
pub(crate) fn json_f64(v: &Value) -> Option<f64> {
    if let Some(x) = attr_f64(v) {
        return Some(x);
    }
    let text = v.as_str()?;
    if let Some(hex) = text.strip_prefix("0x") {
        let bits = u64::from_str_radix(hex, 16).ok()?;
        return Some(if hex.len() <= 8 {
            f64::from(f32::from_bits(bits as u32))
        } else {
            f64::from_bits(bits)
        });
    }
    let bytes = base64_decode(text)?;
    match bytes.len() {
        8 => Some(f64::from_le_bytes(bytes.try_into().ok()?)),
        4 => Some(f64::from(f32::from_le_bytes(bytes.try_into().ok()?))),
        _ => None,
    }
}

/// A float as xarray writes `_FillValue` into v3 attributes: base64 of the
/// little-endian float64.
pub(crate) fn base64_f64(x: f64) -> Value {
    Value::String(base64_encode(&x.to_le_bytes()))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as Python's `base64.standard_b64encode`.
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

/// The bytes of standard base64 text; `None` if it is not base64.
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

#[cfg(test)]
mod tests {
    use serde_json::json;

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
    fn fill_values_in_every_spelling() {
        assert_eq!(json_f64(&json!(-9999)), Some(-9999.0));
        assert_eq!(json_f64(&json!("-Infinity")), Some(f64::NEG_INFINITY));
        assert!(json_f64(&json!("0x7fc00000")).unwrap().is_nan());
        assert_eq!(json_f64(&json!("0x3ff0000000000000")), Some(1.0));
        assert_eq!(json_f64(&json!("not a number")), None);
        assert_eq!(json_f64(&json!([1])), None);
    }
}
