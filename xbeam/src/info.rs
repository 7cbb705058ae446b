//! `xbeam info`: an xarray-like summary of a Zarr store, optionally with
//! statistics of every data variable read in parallel.
//!
//! ```
//! use xbeam::generate::{generate, GenerateOptions};
//! use xbeam::info::{info_json, StoreInfo};
//!
//! let dir = tempfile::tempdir()?;
//! let out = dir.path().join("era5.zarr");
//! generate(&out, &GenerateOptions { ntime: Some(24), nlat: 5, nlon: 8, ..GenerateOptions::default() }, None)?;
//! let info = StoreInfo::open(&out, true, None)?;
//! let json = info_json(&info);
//! assert_eq!(json["dims"]["time"], 24);
//! assert_eq!(json["data_vars"]["temperature"]["dtype"], "float32");
//! assert_eq!(json["data_vars"]["temperature"]["stats"]["count"], 24 * 5 * 8);
//! assert_eq!(json["coords"]["time"]["stats"]["min"], "2020-01-01T00:00:00");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use indexmap::IndexMap;
use rayon::prelude::*;
use serde_json::{json, Map, Value};
use xbeam_chunk::display::{format_array_flat, human_bytes};
use xbeam_chunk::{Array, Attrs, DType, Variable};
pub use xbeam_io::numpy_dtype;
use xbeam_io::{open_zarr, IoError, ZarrSource};

/// Statistics of one variable's decoded values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Valid (not NaN / NaT) values.
    pub count: u64,
    /// NaN or NaT values.
    pub nan_count: u64,
    /// The smallest valid value.
    pub min: f64,
    /// The largest valid value.
    pub max: f64,
    /// Sum of valid values (f64).
    pub sum: f64,
}

impl Stats {
    fn empty() -> Stats {
        Stats {
            count: 0,
            nan_count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
        }
    }

    fn merge(self, o: Stats) -> Stats {
        Stats {
            count: self.count + o.count,
            nan_count: self.nan_count + o.nan_count,
            min: self.min.min(o.min),
            max: self.max.max(o.max),
            sum: self.sum + o.sum,
        }
    }

    /// The mean of valid values (NaN if there are none).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.sum / self.count as f64
        }
    }

    fn of(a: &Array) -> Stats {
        let mut s = Stats::empty();
        let mut add = |x: f64, valid: bool| {
            if valid {
                s.count += 1;
                s.min = s.min.min(x);
                s.max = s.max.max(x);
                s.sum += x;
            } else {
                s.nan_count += 1;
            }
        };
        match a {
            Array::F32(v) => v.iter().for_each(|&x| add(f64::from(x), !x.is_nan())),
            Array::F64(v) => v.iter().for_each(|&x| add(x, !x.is_nan())),
            Array::DateTime(v, ..) | Array::TimeDelta(v, _) => {
                v.iter().for_each(|&x| add(x as f64, x != i64::MIN));
            }
            Array::String(v) => v.iter().for_each(|_| add(0.0, false)),
            other => {
                if let Ok(v) = other.to_f64() {
                    v.iter().for_each(|&x| add(x, true));
                }
            }
        }
        if let Array::String(v) = a {
            s = Stats::empty();
            s.count = v.len() as u64;
        }
        s
    }
}

/// One variable of a store, for display.
#[derive(Debug, Clone)]
pub struct VarInfo {
    /// Dimension names.
    pub dims: Vec<String>,
    /// Decoded dtype.
    pub dtype: DType,
    /// Zarr chunk shape.
    pub chunks: Option<Vec<u64>>,
    /// Attributes (decoded).
    pub attrs: Attrs,
    /// Statistics, when asked for.
    pub stats: Option<Stats>,
    /// Values to show (coordinates).
    pub preview: Option<String>,
}

/// What `xbeam info` reports about a store.
#[derive(Debug, Clone)]
pub struct StoreInfo {
    /// The store's path.
    pub path: String,
    /// 2 or 3.
    pub format: u8,
    /// Dimension sizes.
    pub dims: IndexMap<String, u64>,
    /// Global attributes.
    pub attrs: Attrs,
    /// Coordinates.
    pub coords: IndexMap<String, VarInfo>,
    /// Data variables.
    pub data_vars: IndexMap<String, VarInfo>,
    /// Uncompressed bytes of all variables.
    pub nbytes: u64,
}

fn encoding_chunks(encoding: &Attrs) -> Option<Vec<u64>> {
    encoding
        .get("chunks")?
        .as_array()?
        .iter()
        .map(Value::as_u64)
        .collect()
}

/// Statistics of a data variable, read one native chunk row at a time in
/// parallel (memory: a chunk per thread).
fn variable_stats(
    source: &ZarrSource,
    name: &str,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Stats, IoError> {
    let schema = &source.template().data_vars()[name];
    let sizes = source.template().sizes();
    let Some(first) = schema.dims.first() else {
        let ds = source.read(
            &IndexMap::new(),
            Some(&[name.to_owned()].into_iter().collect()),
        )?;
        return Ok(Stats::of(ds.data_var(name)?.data()));
    };
    let n = sizes[first];
    let step = source.chunks().get(first).copied().unwrap_or(n).max(1);
    let starts: Vec<u64> = (0..n).step_by(step as usize).collect();
    let vars = [name.to_owned()].into_iter().collect();
    starts
        .par_iter()
        .map(|&s| {
            let region: IndexMap<String, Range<u64>> = [(first.clone(), s..(s + step).min(n))]
                .into_iter()
                .collect();
            let ds = source.read(&region, Some(&vars))?;
            let v = ds.data_var(name)?;
            progress(v.nbytes() as u64);
            Ok(Stats::of(v.data()))
        })
        .try_reduce(Stats::empty, |a, b| Ok(a.merge(b)))
}

impl StoreInfo {
    /// Opens a store and describes it; with `stats`, reads every data
    /// variable in parallel (`progress` gets bytes read so far).
    pub fn open(
        path: &Path,
        stats: bool,
        progress: Option<&(dyn Fn(u64, u64) + Sync)>,
    ) -> Result<StoreInfo, IoError> {
        let source = open_zarr(path)?;
        let t = source.template();
        let mut coords = IndexMap::new();
        let mut nbytes = 0u64;
        for (name, c) in t.coords() {
            nbytes += c.nbytes() as u64;
            coords.insert(name.clone(), coord_info(c, stats));
        }
        let total: u64 = t.data_vars().values().map(|v| t.var_nbytes(v) as u64).sum();
        nbytes += total;
        let done = AtomicU64::new(0);
        let report = |b: u64| {
            let d = done.fetch_add(b, Ordering::Relaxed) + b;
            if let Some(p) = progress {
                p(d, total);
            }
        };
        let mut data_vars = IndexMap::new();
        for (name, v) in t.data_vars() {
            let s = if stats {
                Some(variable_stats(&source, name, &report)?)
            } else {
                None
            };
            data_vars.insert(
                name.clone(),
                VarInfo {
                    dims: v.dims.clone(),
                    dtype: v.dtype,
                    chunks: encoding_chunks(&v.encoding),
                    attrs: v.attrs.clone(),
                    stats: s,
                    preview: None,
                },
            );
        }
        Ok(StoreInfo {
            path: path.display().to_string(),
            format: source.format().number(),
            dims: t.sizes().clone(),
            attrs: t.attrs().clone(),
            coords,
            data_vars,
            nbytes,
        })
    }
}

fn coord_info(c: &Variable, stats: bool) -> VarInfo {
    VarInfo {
        dims: c.dims().to_vec(),
        dtype: c.dtype(),
        chunks: encoding_chunks(c.encoding()),
        attrs: c.attrs().clone(),
        stats: stats.then(|| Stats::of(c.data())),
        preview: Some(format_array_flat(c.data(), 60)),
    }
}

fn stat_value(dtype: DType, x: f64, count: u64) -> Value {
    if count == 0 || !x.is_finite() {
        return Value::Null;
    }
    match dtype {
        DType::DateTime(unit, calendar) => {
            json!(calendar.from_ticks(x.round() as i64, unit).to_string())
        }
        _ => json!(x),
    }
}

fn var_json(v: &VarInfo) -> Value {
    let mut m = Map::new();
    m.insert("dims".into(), json!(v.dims));
    m.insert("dtype".into(), json!(numpy_dtype(v.dtype)));
    m.insert("chunks".into(), json!(v.chunks));
    m.insert(
        "attrs".into(),
        Value::Object(
            v.attrs
                .iter()
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect(),
        ),
    );
    if let DType::DateTime(_, c) = v.dtype {
        m.insert("calendar".into(), json!(c.name()));
    }
    if let Some(s) = &v.stats {
        let numeric = !matches!(v.dtype, DType::String);
        m.insert(
            "stats".into(),
            json!({
                "count": s.count,
                "nan_count": s.nan_count,
                "min": if numeric { stat_value(v.dtype, s.min, s.count) } else { Value::Null },
                "max": if numeric { stat_value(v.dtype, s.max, s.count) } else { Value::Null },
                "mean": if numeric { stat_value(v.dtype, s.mean(), s.count) } else { Value::Null },
            }),
        );
    }
    Value::Object(m)
}

/// The `--json` form: `{"format", "dims", "attrs", "coords", "data_vars"}`.
pub fn info_json(info: &StoreInfo) -> Value {
    json!({
        "path": info.path,
        "format": info.format,
        "dims": info.dims,
        "nbytes": info.nbytes,
        "attrs": Value::Object(info.attrs.iter().map(|(k, x)| (k.clone(), x.clone())).collect()),
        "coords": info.coords.iter().map(|(k, v)| (k.clone(), var_json(v))).collect::<Map<_, _>>(),
        "data_vars": info.data_vars.iter().map(|(k, v)| (k.clone(), var_json(v))).collect::<Map<_, _>>(),
    })
}

fn fmt_stat(dtype: DType, x: f64, count: u64) -> String {
    match stat_value(dtype, x, count) {
        Value::String(s) => s,
        Value::Number(n) => format!("{:.6}", n.as_f64().unwrap_or(f64::NAN)),
        _ => "nan".into(),
    }
}

/// The human-readable summary, like xarray's repr.
pub fn info_text(info: &StoreInfo) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<xbeam.Dataset> {} (zarr v{})  Size: {}",
        info.path,
        info.format,
        human_bytes(info.nbytes as usize)
    );
    let dims: Vec<String> = info.dims.iter().map(|(d, n)| format!("{d}: {n}")).collect();
    let _ = writeln!(out, "Dimensions:  ({})", dims.join(", "));
    let width = info
        .coords
        .keys()
        .chain(info.data_vars.keys())
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(8);
    let line = |out: &mut String, marker: &str, name: &str, v: &VarInfo| {
        let chunks = v
            .chunks
            .as_ref()
            .map(|c| {
                let parts: Vec<String> = c.iter().map(u64::to_string).collect();
                format!(" chunks=({})", parts.join(", "))
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {marker} {name:<width$} ({}) {}{chunks}{}",
            v.dims.join(", "),
            numpy_dtype(v.dtype),
            v.preview
                .as_ref()
                .map(|p| format!(" {p}"))
                .unwrap_or_default()
        );
        for (k, a) in &v.attrs {
            let _ = writeln!(out, "      {:<width$}   {k}: {a}", "");
        }
        if let Some(s) = &v.stats {
            let _ = writeln!(
                out,
                "      {:<width$}   count={} nan={} min={} max={} mean={}",
                "",
                s.count,
                s.nan_count,
                fmt_stat(v.dtype, s.min, s.count),
                fmt_stat(v.dtype, s.max, s.count),
                fmt_stat(v.dtype, s.mean(), s.count)
            );
        }
    };
    let _ = writeln!(out, "Coordinates:");
    for (name, v) in &info.coords {
        let marker = if v.dims.len() == 1 && &v.dims[0] == name {
            "*"
        } else {
            " "
        };
        line(&mut out, marker, name, v);
    }
    let _ = writeln!(out, "Data variables:");
    for (name, v) in &info.data_vars {
        line(&mut out, " ", name, v);
    }
    if !info.attrs.is_empty() {
        let _ = writeln!(out, "Attributes:");
        for (k, a) in &info.attrs {
            let _ = writeln!(out, "    {k}: {a}");
        }
    }
    out
}
