//! Chunks as users write them: `time=24,latitude=-1`, `365,366`,
//! `...=10`, `100MB`.
//!
//! A [`ChunkSpec`] is a fixed chunking of one dimension (a size, the whole
//! dimension, or explicit sizes) and is all a chunk grid needs. What a user
//! *asks for* can also be a byte budget (`"100MB"`, resolved against a
//! dataset's dtypes and sizes by xbeam-chunk's `normalize_chunks`) or
//! `auto` (parsed only so that `normalize_chunks` can refuse it with
//! xarray-beam's message): that is a [`ChunkRequest`], kept apart from
//! [`ChunkSpec`] so that grid arithmetic never meets a size it cannot use. A
//! [`ChunksRequest`] is a whole request: one value for every dimension
//! (`"100MB"`, like xarray-beam's `chunks='100MB'`) or values per dimension
//! with an optional default for the others (xarray-beam's `...` key).
//!
//! ```
//! use xbeam_key::{ChunkRequest, ChunkSpec, ChunksRequest};
//!
//! let request: ChunksRequest = "time=24,latitude=-1,...=10".parse()?;
//! let ChunksRequest::PerDim { dims, rest } = &request else { unreachable!() };
//! assert_eq!(dims["time"], ChunkRequest::Spec(ChunkSpec::Size(24)));
//! assert_eq!(dims["latitude"], ChunkRequest::Spec(ChunkSpec::Full));
//! assert_eq!(rest, &Some(ChunkRequest::Spec(ChunkSpec::Size(10))));
//!
//! // Irregular sizes continue after a comma; byte targets take a unit.
//! let years: ChunksRequest = "time=365,366,365,latitude=-1".parse()?;
//! assert_eq!(years.to_string(), "time=365,366,365,latitude=-1");
//! assert_eq!("64KiB".parse::<ChunksRequest>()?, ChunksRequest::All(ChunkRequest::Bytes(65536)));
//!
//! let err = "time=24,x".parse::<ChunksRequest>().unwrap_err();
//! assert_eq!(err.to_string(), "expected chunks like time=24,latitude=-1, found \"x\"");
//! # Ok::<(), xbeam_key::KeyError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::{repr, ChunkSpec, KeyError};

/// What the parser says a request looks like when it does not parse.
const CHUNKS_EXAMPLE: &str = "chunks like time=24,latitude=-1";
const VALUE_EXAMPLE: &str =
    "a chunk size like 24, -1 (the whole dimension), 365,366 (explicit sizes) or 100MB";

/// One dimension's chunking as a user asks for it, before it is resolved
/// against a dataset.
///
/// ```
/// use xbeam_key::{ChunkRequest, ChunkSpec};
/// assert_eq!("24".parse::<ChunkRequest>()?, ChunkRequest::Spec(ChunkSpec::Size(24)));
/// assert_eq!("-1".parse::<ChunkRequest>()?, ChunkRequest::Spec(ChunkSpec::Full));
/// assert_eq!("365, 366".parse::<ChunkRequest>()?, ChunkRequest::Spec(ChunkSpec::Sizes(vec![365, 366])));
/// assert_eq!("100MB".parse::<ChunkRequest>()?, ChunkRequest::Bytes(100_000_000));
/// assert_eq!("auto".parse::<ChunkRequest>()?, ChunkRequest::Auto);
/// assert_eq!(ChunkRequest::Bytes(65536).to_string(), "64KiB");
/// # Ok::<(), xbeam_key::KeyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ChunkRequest {
    /// A fixed chunking.
    Spec(ChunkSpec),
    /// Chunks of about this many bytes (Dask's byte targets): sizes are
    /// chosen by `normalize_chunks` from the dataset's dtypes and sizes.
    Bytes(u64),
    /// Dask's `auto`, which xarray-beam refuses: parsed so that
    /// `normalize_chunks` can say so with xarray-beam's message.
    Auto,
}

impl From<ChunkSpec> for ChunkRequest {
    fn from(spec: ChunkSpec) -> ChunkRequest {
        ChunkRequest::Spec(spec)
    }
}

impl From<i64> for ChunkRequest {
    /// A size, or the whole dimension for `-1` (any negative number).
    fn from(n: i64) -> ChunkRequest {
        ChunkRequest::Spec(ChunkSpec::from(n))
    }
}

impl FromStr for ChunkRequest {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<ChunkRequest, KeyError> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("auto") {
            return Ok(ChunkRequest::Auto);
        }
        if t == "-1" {
            return Ok(ChunkRequest::Spec(ChunkSpec::Full));
        }
        if t.contains(',') {
            return t
                .split(',')
                .map(|part| part.trim().parse::<u64>())
                .collect::<Result<Vec<u64>, _>>()
                .map(|sizes| ChunkRequest::Spec(ChunkSpec::Sizes(sizes)))
                .map_err(|_| parse_error(VALUE_EXAMPLE, t));
        }
        if let Ok(n) = t.parse::<u64>() {
            return Ok(ChunkRequest::Spec(ChunkSpec::Size(n)));
        }
        // A byte target needs its unit: a bare number is a chunk size.
        if t.chars().last().is_some_and(char::is_alphabetic) {
            return parse_bytes(t).map(ChunkRequest::Bytes);
        }
        Err(parse_error(VALUE_EXAMPLE, t))
    }
}

impl FromStr for ChunkSpec {
    type Err = KeyError;

    /// `24`, `-1` (the whole dimension) or `365,366` (explicit sizes).
    ///
    /// ```
    /// use xbeam_key::ChunkSpec;
    /// assert_eq!("365,366".parse::<ChunkSpec>()?, ChunkSpec::Sizes(vec![365, 366]));
    /// let err = "100MB".parse::<ChunkSpec>().unwrap_err();
    /// assert_eq!(err.to_string(), "expected a chunk size like 24, -1 (the whole dimension) or 365,366 (explicit sizes), found \"100MB\"");
    /// # Ok::<(), xbeam_key::KeyError>(())
    /// ```
    fn from_str(text: &str) -> Result<ChunkSpec, KeyError> {
        match text.parse::<ChunkRequest>() {
            Ok(ChunkRequest::Spec(spec)) => Ok(spec),
            _ => Err(parse_error(
                "a chunk size like 24, -1 (the whole dimension) or 365,366 (explicit sizes)",
                text.trim(),
            )),
        }
    }
}

impl fmt::Display for ChunkSpec {
    /// The text [`ChunkSpec::from_str`] reads: `24`, `-1`, `365,366`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkSpec::Full => f.write_str("-1"),
            ChunkSpec::Size(n) => write!(f, "{n}"),
            ChunkSpec::Sizes(sizes) => {
                let parts: Vec<String> = sizes.iter().map(u64::to_string).collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

impl fmt::Display for ChunkRequest {
    /// The text [`ChunkRequest::from_str`] reads; byte targets in the
    /// largest unit that writes them exactly (`100MB`, `64KiB`, `1234B`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkRequest::Spec(spec) => spec.fmt(f),
            ChunkRequest::Bytes(n) => f.write_str(&exact_bytes(*n)),
            ChunkRequest::Auto => f.write_str("auto"),
        }
    }
}

impl ChunkRequest {
    /// The value as xarray-beam's messages print it (Python's `repr`):
    /// `24`, `-1`, `(365, 366)`, `'100MB'`, `'auto'`.
    ///
    /// ```
    /// use xbeam_key::{ChunkRequest, ChunkSpec};
    /// assert_eq!(ChunkRequest::Spec(ChunkSpec::Sizes(vec![365, 366])).py_repr(), "(365, 366)");
    /// assert_eq!(ChunkRequest::Bytes(100_000_000).py_repr(), "'100MB'");
    /// ```
    pub fn py_repr(&self) -> String {
        match self {
            ChunkRequest::Spec(ChunkSpec::Sizes(sizes)) => int_tuple(sizes),
            ChunkRequest::Spec(spec) => spec.to_string(),
            other => repr::quote(&other.to_string()),
        }
    }
}

/// A whole chunks request, as a user writes it.
///
/// Parsed from text ([`FromStr`]):
/// - `time=24,latitude=-1`: per dimension; a dimension left out keeps its
///   default (see xbeam-chunk's `normalize_chunks`);
/// - `time=365,366,365`: explicit, irregular sizes continue after commas;
/// - `...=10`: the value for every dimension not named (xarray-beam's
///   `...` key);
/// - `100MB`, `-1`, `24` alone: one value for every dimension;
/// - byte targets like Dask's `parse_bytes`: case-insensitive, spaces
///   ignored, `b`, `k`/`kB` = 1000, `m`/`MB`, `g`, `t`, `p`, and
///   `ki`/`KiB` = 1024, `Mi`, `Gi`, `Ti`, `Pi`; a decimal prefix is allowed
///   (`1.5GB`).
///
/// ```
/// use xbeam_key::{ChunkRequest, ChunkSpec, ChunksRequest};
/// let r: ChunksRequest = "time=-1,...=292000B".parse()?;
/// assert_eq!(r.py_repr(), "{'time': -1, Ellipsis: '292kB'}");
/// let fixed: ChunksRequest = "x=3, y=4".parse()?;
/// assert_eq!(fixed.fixed_specs()?["y"], ChunkSpec::Size(4));
/// assert!(r.fixed_specs().is_err());
/// # Ok::<(), xbeam_key::KeyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ChunksRequest {
    /// One value for every dimension (xarray-beam's `chunks='100MB'` or
    /// `chunks=-1`).
    All(ChunkRequest),
    /// Values per dimension (xarray-beam's mapping).
    PerDim {
        /// The dimensions named, in the order given.
        dims: IndexMap<String, ChunkRequest>,
        /// The value for every other dimension (the `...` key).
        rest: Option<ChunkRequest>,
    },
}

impl Default for ChunksRequest {
    /// `{}`: every dimension keeps its default.
    fn default() -> ChunksRequest {
        ChunksRequest::PerDim {
            dims: IndexMap::new(),
            rest: None,
        }
    }
}

impl<S: Into<String>, R: Into<ChunkRequest>> FromIterator<(S, R)> for ChunksRequest {
    fn from_iter<I: IntoIterator<Item = (S, R)>>(iter: I) -> ChunksRequest {
        ChunksRequest::PerDim {
            dims: iter
                .into_iter()
                .map(|(d, r)| (d.into(), r.into()))
                .collect(),
            rest: None,
        }
    }
}

impl From<IndexMap<String, ChunkSpec>> for ChunksRequest {
    fn from(specs: IndexMap<String, ChunkSpec>) -> ChunksRequest {
        specs.into_iter().collect()
    }
}

impl From<ChunkRequest> for ChunksRequest {
    fn from(all: ChunkRequest) -> ChunksRequest {
        ChunksRequest::All(all)
    }
}

impl ChunksRequest {
    /// The same request with `rest` for every dimension not named (the
    /// `...` key); a request for all dimensions becomes per dimension.
    ///
    /// ```
    /// use xbeam_key::{ChunkRequest, ChunksRequest};
    /// let r = ChunksRequest::from_iter([("x", 10)]).with_rest(ChunkRequest::from(20));
    /// assert_eq!(r.to_string(), "x=10,...=20");
    /// ```
    #[must_use]
    pub fn with_rest(self, rest: ChunkRequest) -> ChunksRequest {
        let dims = match self {
            ChunksRequest::All(_) => IndexMap::new(),
            ChunksRequest::PerDim { dims, .. } => dims,
        };
        ChunksRequest::PerDim {
            dims,
            rest: Some(rest),
        }
    }

    /// The fixed chunk specs per dimension, when the request is nothing
    /// more (no byte targets, `auto`, `...` or value for all dimensions,
    /// which need a dataset to resolve).
    pub fn fixed_specs(&self) -> Result<IndexMap<String, ChunkSpec>, KeyError> {
        let not_fixed = || KeyError::NotFixed {
            found: format!("{:?}", self.to_string()),
        };
        match self {
            ChunksRequest::PerDim { dims, rest: None } => dims
                .iter()
                .map(|(d, r)| match r {
                    ChunkRequest::Spec(s) => Ok((d.clone(), s.clone())),
                    _ => Err(not_fixed()),
                })
                .collect(),
            _ => Err(not_fixed()),
        }
    }

    /// The request as xarray-beam's messages print it (Python's `repr`):
    /// `'100MB'` or `{'time': 24, Ellipsis: 10}`.
    pub fn py_repr(&self) -> String {
        match self {
            ChunksRequest::All(r) => r.py_repr(),
            ChunksRequest::PerDim { dims, rest } => {
                let mut entries: Vec<String> = dims
                    .iter()
                    .map(|(d, r)| format!("{}: {}", repr::quote(d), r.py_repr()))
                    .collect();
                if let Some(r) = rest {
                    entries.push(format!("Ellipsis: {}", r.py_repr()));
                }
                format!("{{{}}}", entries.join(", "))
            }
        }
    }
}

impl FromStr for ChunksRequest {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<ChunksRequest, KeyError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(ChunksRequest::default());
        }
        if !text.contains('=') {
            return text.parse().map(ChunksRequest::All);
        }
        let mut dims: IndexMap<String, ChunkRequest> = IndexMap::new();
        let mut rest = None;
        // The entry that a bare number continues (`time=365,366`): a
        // dimension, or `None` for the `...` entry.
        let mut last: Option<Option<String>> = None;
        for token in text.split(',').map(str::trim) {
            let Some((name, value)) = token.split_once('=') else {
                let target = match &last {
                    Some(Some(d)) => dims.get_mut(d),
                    Some(None) => rest.as_mut(),
                    None => None,
                };
                match (target, token.parse::<u64>()) {
                    (Some(ChunkRequest::Spec(spec)), Ok(n)) => match spec {
                        ChunkSpec::Size(first) => *spec = ChunkSpec::Sizes(vec![*first, n]),
                        ChunkSpec::Sizes(sizes) => sizes.push(n),
                        ChunkSpec::Full => return Err(parse_error(CHUNKS_EXAMPLE, token)),
                    },
                    _ => return Err(parse_error(CHUNKS_EXAMPLE, token)),
                }
                continue;
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(parse_error(CHUNKS_EXAMPLE, token));
            }
            let value: ChunkRequest = value.parse().map_err(|_| {
                parse_error(
                    &format!("{VALUE_EXAMPLE} for {}", dim_name(name)),
                    value.trim(),
                )
            })?;
            if name == "..." {
                if rest.replace(value).is_some() {
                    return Err(twice(name));
                }
                last = Some(None);
            } else {
                if dims.insert(name.to_owned(), value).is_some() {
                    return Err(twice(name));
                }
                last = Some(Some(name.to_owned()));
            }
        }
        Ok(ChunksRequest::PerDim { dims, rest })
    }
}

impl fmt::Display for ChunksRequest {
    /// The text [`ChunksRequest::from_str`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunksRequest::All(r) => r.fmt(f),
            ChunksRequest::PerDim { dims, rest } => {
                let mut entries: Vec<String> =
                    dims.iter().map(|(d, r)| format!("{d}={r}")).collect();
                if let Some(r) = rest {
                    entries.push(format!("...={r}"));
                }
                f.write_str(&entries.join(","))
            }
        }
    }
}

/// Bytes from text such as `100MB`, `64 KiB` or `1.5g`, exactly as Dask's
/// `parse_bytes`: case-insensitive, spaces ignored; `b`, `k`/`kB` = 1000,
/// `m`/`MB`, `g`/`GB`, `t`/`TB`, `p`/`PB`, and `ki`/`KiB` = 1024, `Mi`,
/// `Gi`, `Ti`, `Pi`; no unit means bytes, no number means one unit; a
/// fractional result is truncated.
///
/// ```
/// use xbeam_key::parse_bytes;
/// assert_eq!(parse_bytes("100MB")?, 100_000_000);
/// assert_eq!(parse_bytes("64 kib")?, 65_536);
/// assert_eq!(parse_bytes("1.5g")?, 1_500_000_000);
/// assert_eq!(parse_bytes("MB")?, 1_000_000);
/// assert_eq!(parse_bytes("292000")?, 292_000);
/// let err = parse_bytes("5 apples").unwrap_err();
/// assert_eq!(err.to_string(), "expected a byte unit (B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB), found \"apples\" in \"5 apples\"");
/// # Ok::<(), xbeam_key::KeyError>(())
/// ```
pub fn parse_bytes(text: &str) -> Result<u64, KeyError> {
    let mut s: String = text.chars().filter(|c| *c != ' ').collect();
    if !s.chars().any(|c| c.is_ascii_digit()) {
        s.insert(0, '1');
    }
    let split = s
        .char_indices()
        .rev()
        .find(|(_, c)| !c.is_alphabetic())
        .map_or(0, |(i, c)| i + c.len_utf8());
    let (number, unit) = s.split_at(split);
    let n: f64 = number.parse().map_err(|_| KeyError::Parse {
        expected: "a number of bytes like 100MB or 64KiB".into(),
        found: format!("{number:?} in {text:?}"),
    })?;
    let multiplier = byte_unit(&unit.to_lowercase()).ok_or_else(|| KeyError::Parse {
        expected: "a byte unit (B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB)".into(),
        found: format!("{unit:?} in {text:?}"),
    })?;
    let bytes = n * multiplier;
    // `u64::MAX as f64` rounds up to 2^64, which is already out of range.
    #[allow(clippy::cast_precision_loss)]
    let limit = u64::MAX as f64;
    if !(0.0..limit).contains(&bytes) {
        return Err(KeyError::Parse {
            expected: "a number of bytes between 0 and 2^64".into(),
            found: format!("{text:?}"),
        });
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(bytes as u64)
}

/// A byte count as xarray-beam's `_to_human_size` writes it: decimal units
/// `B` to `EB`; under 1000 bytes the exact count, else one decimal below 10
/// and none from 10 up.
///
/// ```
/// use xbeam_key::to_human_size;
/// assert_eq!(to_human_size(0u64), "0B");
/// assert_eq!(to_human_size(1000u64), "1.0kB");
/// assert_eq!(to_human_size(9996u64), "10kB");
/// assert_eq!(to_human_size(10u128.pow(22)), "10000EB");
/// ```
pub fn to_human_size(bytes: impl Into<u128>) -> String {
    let n = bytes.into();
    if n < 1000 {
        return format!("{n}B");
    }
    let (x, unit) = scaled(n);
    if (x * 100.0).round() / 100.0 < 10.0 {
        format!("{x:.1}{}", UNITS[unit])
    } else {
        format!("{x:.0}{}", UNITS[unit])
    }
}

/// Like [`to_human_size`], rounded up to the digits shown, so the text
/// never names less than `bytes` (for "give --max-mem X or more").
///
/// ```
/// use xbeam_key::to_human_size_up;
/// assert_eq!(to_human_size_up(1_150_000_000u64), "1.2GB");
/// assert_eq!(to_human_size_up(1_200_000_000u64), "1.2GB");
/// assert_eq!(to_human_size_up(999_600_000u64), "1.0GB");
/// assert_eq!(to_human_size_up(12_300_000u64), "13MB");
/// assert_eq!(to_human_size_up(512u64), "512B");
/// ```
pub fn to_human_size_up(bytes: impl Into<u128>) -> String {
    let n = bytes.into();
    if n < 1000 {
        return format!("{n}B");
    }
    let (x, unit) = scaled(n);
    let scale = if x < 10.0 { 10.0 } else { 1.0 };
    let up = (x * scale - 1e-9).ceil() / scale;
    if up >= 1000.0 && unit + 1 < UNITS.len() {
        format!("1.0{}", UNITS[unit + 1])
    } else if scale > 1.0 {
        format!("{up:.1}{}", UNITS[unit])
    } else {
        format!("{up:.0}{}", UNITS[unit])
    }
}

/// Decimal byte units.
const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];

/// `n` bytes as a number below 1000 of one of [`UNITS`] (its index).
fn scaled(n: u128) -> (f64, usize) {
    #[allow(clippy::cast_precision_loss)]
    let mut x = n as f64;
    let mut unit = 0;
    while x >= 1000.0 && unit + 1 < UNITS.len() {
        x /= 1000.0;
        unit += 1;
    }
    (x, unit)
}

fn byte_unit(unit: &str) -> Option<f64> {
    let decimal = |k: i32| 1000f64.powi(k);
    let binary = |k: i32| 1024f64.powi(k);
    Some(match unit {
        "" | "b" => 1.0,
        "k" | "kb" => decimal(1),
        "m" | "mb" => decimal(2),
        "g" | "gb" => decimal(3),
        "t" | "tb" => decimal(4),
        "p" | "pb" => decimal(5),
        "ki" | "kib" => binary(1),
        "mi" | "mib" => binary(2),
        "gi" | "gib" => binary(3),
        "ti" | "tib" => binary(4),
        "pi" | "pib" => binary(5),
        _ => return None,
    })
}

/// `n` in the largest unit that writes it exactly, decimal before binary.
fn exact_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 10] = [
        ("PB", 1_000_000_000_000_000),
        ("TB", 1_000_000_000_000),
        ("GB", 1_000_000_000),
        ("MB", 1_000_000),
        ("kB", 1_000),
        ("PiB", 1 << 50),
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    UNITS
        .iter()
        .find(|(_, m)| n > 0 && n % m == 0)
        .map_or_else(|| format!("{n}B"), |(u, m)| format!("{}{u}", n / m))
}

/// Integers written as a Python tuple: `(365, 366)`, `(365,)`.
fn int_tuple(values: &[u64]) -> String {
    let items: Vec<String> = values.iter().map(u64::to_string).collect();
    match items.len() {
        1 => format!("({},)", items[0]),
        _ => format!("({})", items.join(", ")),
    }
}

fn dim_name(name: &str) -> String {
    if name == "..." {
        "the other dimensions (...)".to_owned()
    } else {
        format!("dimension {name:?}")
    }
}

fn twice(name: &str) -> KeyError {
    KeyError::Parse {
        expected: format!("{} once in {CHUNKS_EXAMPLE}", dim_name(name)),
        found: format!("{name:?} twice"),
    }
}

fn parse_error(expected: &str, found: &str) -> KeyError {
    KeyError::Parse {
        expected: expected.to_owned(),
        found: format!("{found:?}"),
    }
}
