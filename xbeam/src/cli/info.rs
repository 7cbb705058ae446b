//! `xbeam info`: the store's summary as text (like xarray's repr) or JSON.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{json, Map, Value};
use xbeam::chunk::display::{format_array_flat, human_bytes};
use xbeam::chunk::DType;
use xbeam::error::Error;
use xbeam::io::numpy_dtype;
use xbeam::jobs::info::{self, Options, StoreInfo, VarInfo};

use super::args::Shared;
use super::progress::Progress;
use super::report;

/// Flags of `xbeam info`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The Zarr store.
    path: PathBuf,
    /// Print one JSON object instead.
    #[arg(long)]
    json: bool,
    /// Read all data (on the engine, chunk by chunk) and add count, NaN
    /// count, min, max and mean per variable.
    #[arg(long)]
    stats: bool,
    #[command(flatten)]
    shared: Shared,
}

pub(crate) fn run(a: &Args) -> Result<(), Error> {
    let options = Options {
        path: a.path.clone(),
        stats: a.stats,
    };
    let progress = Progress::new("read", a.shared.quiet);
    let result = info::run(&options, &progress.attach(a.shared.runner()));
    progress.finish();
    let (store, summary) = result?;
    // the text's Status line says it; JSON says it as `"complete":
    // false`, which a reader may not look for, so a warning goes with it
    let incomplete = store.manifest.as_ref().filter(|m| !m.complete);
    if let Some(m) = incomplete.filter(|_| a.json && !a.shared.quiet) {
        eprintln!(
            "warning: {} is incomplete: the job writing it did not finish ({} chunks recorded as written); `xbeam verify` lists what is missing, and running the job again with --resume finishes it",
            report::printable(&store.path),
            m.recorded
        );
    }
    let text = if a.json {
        let json =
            serde_json::to_string_pretty(&to_json(&store)).map_err(|e| Error::Report(e.into()))?;
        json + "\n"
    } else {
        to_text(&store)
    };
    print!("{}", report::printable(&text));
    if a.stats {
        report::summary("info", &summary, a.shared.quiet);
    }
    Ok(())
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

fn attrs_json(attrs: &xbeam::chunk::Attrs) -> Value {
    Value::Object(attrs.iter().map(|(k, x)| (k.clone(), x.clone())).collect())
}

fn var_json(v: &VarInfo) -> Value {
    let mut m = Map::new();
    m.insert("dims".into(), json!(v.dims));
    m.insert("dtype".into(), json!(numpy_dtype(v.dtype)));
    m.insert("chunks".into(), json!(v.chunks));
    m.insert("attrs".into(), attrs_json(&v.attrs));
    if let DType::DateTime(_, c) = v.dtype {
        m.insert("calendar".into(), json!(c.name()));
    }
    if let Some(s) = &v.stats {
        let numeric = !matches!(v.dtype, DType::String);
        let value = |x: f64| {
            if numeric {
                stat_value(v.dtype, x, s.count)
            } else {
                Value::Null
            }
        };
        m.insert(
            "stats".into(),
            json!({
                "count": s.count,
                "nan_count": s.nan_count,
                "min": value(s.min),
                "max": value(s.max),
                "mean": value(s.mean()),
            }),
        );
    }
    Value::Object(m)
}

/// The `--json` form: `{"path", "format", "dims", "nbytes", "complete", "attrs", "coords", "data_vars"}`
/// (`complete` is `null` for a store without an xbeam manifest).
fn to_json(info: &StoreInfo) -> Value {
    let vars = |m: &indexmap::IndexMap<String, VarInfo>| {
        Value::Object(m.iter().map(|(k, v)| (k.clone(), var_json(v))).collect())
    };
    json!({
        "path": info.path,
        "format": info.format,
        "dims": info.dims,
        "nbytes": info.nbytes,
        "complete": info.manifest.as_ref().map(|m| m.complete),
        "attrs": attrs_json(&info.attrs),
        "coords": vars(&info.coords),
        "data_vars": vars(&info.data_vars),
    })
}

fn fmt_stat(dtype: DType, x: f64, count: u64) -> String {
    match stat_value(dtype, x, count) {
        Value::String(s) => s,
        Value::Number(n) => format!("{:.6}", n.as_f64().unwrap_or(f64::NAN)),
        _ => "nan".into(),
    }
}

fn var_lines(out: &mut String, marker: &str, name: &str, v: &VarInfo, width: usize) {
    let chunks = v
        .chunks
        .as_ref()
        .map(|c| {
            let parts: Vec<String> = c.iter().map(u64::to_string).collect();
            format!(" chunks=({})", parts.join(", "))
        })
        .unwrap_or_default();
    let preview = v
        .values
        .as_ref()
        .map(|a| format!(" {}", format_array_flat(a, 60)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  {marker} {name:<width$} ({}) {}{chunks}{preview}",
        v.dims.join(", "),
        numpy_dtype(v.dtype),
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
}

/// The human-readable summary, like xarray's repr.
fn to_text(info: &StoreInfo) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<xbeam.Dataset> {} (zarr v{})  Size: {}",
        info.path,
        info.format,
        human_bytes(usize::try_from(info.nbytes).unwrap_or(usize::MAX))
    );
    match &info.manifest {
        Some(m) if m.complete => {
            let _ = writeln!(
                out,
                "Status:      complete ({} chunks in its xbeam manifest)",
                m.recorded
            );
        }
        Some(m) => {
            let _ = writeln!(
                out,
                "Status:      INCOMPLETE: the job writing it did not finish ({} chunks written)",
                m.recorded
            );
        }
        None => {}
    }
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
    let _ = writeln!(out, "Coordinates:");
    for (name, v) in &info.coords {
        let index = v.dims.len() == 1 && &v.dims[0] == name;
        var_lines(&mut out, if index { "*" } else { " " }, name, v, width);
    }
    let _ = writeln!(out, "Data variables:");
    for (name, v) in &info.data_vars {
        var_lines(&mut out, " ", name, v, width);
    }
    if !info.attrs.is_empty() {
        let _ = writeln!(out, "Attributes:");
        for (k, a) in &info.attrs {
            let _ = writeln!(out, "    {k}: {a}");
        }
    }
    out
}
