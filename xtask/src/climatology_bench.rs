//! `cargo xtask bench climatology`: the month × hour mean climatology,
//! timed as users run it, side by side in one run on the 1 GB and 4 GB
//! stores: `xbeam climatology` (CLI, 2 workers, best of 3), xarray + dask
//! (`../shared/bench/dask_climatology.py`, 2 threads) and xarray-beam
//! (`../shared/bench/xbeam_climatology.py`, `DirectRunner`, 2 processes),
//! each once; xbeam's output is compared with xarray + dask's in xarray.
//! Peak RSS from `/usr/bin/time -v`. Writes
//! `target/bench-data/climatology-bench.json` with the ratios and the
//! issue's targets (≥ 1.5 GB/s, ≥ 6× xarray + dask, ≥ 25× xarray-beam,
//! peak RSS the same at 1 GB and 4 GB, and WeatherBench 2's windowed hour ×
//! day-of-year climatology, `--window 61`, within 1.5× the time of the
//! month × hour one). Two more xbeam rows, once each: monthly quantiles from
//! sketches (`--quantiles 0.1,0.5,0.9 --sketch`), and the hour-of-day mean,
//! whose peak RSS is the one compared across stores: it has the same 24
//! groups in both (the 1 GB store covers 6 months and the 4 GB store 12,
//! so the month × hour fold holds twice as many groups there). On the
//! store of many years, also the window's weighted quantiles
//! (`--window 61 --quantiles 0.1,0.5,0.9`, once).
//!
//! Two more stores by default: `1gb_years`, 1 GB of 7 years of hourly data
//! on a 32 × 64 grid, and `30y_6h`, WeatherBench 2's own shape (30 years
//! of 6-hourly data on its 64 × 32 grid, 0.72 GB, as its
//! `1990-2019_6h_64x32` climatology). The 1 GB and 4 GB stores hold half a
//! year and two, so the windowed job's float64 output (a value per hour of
//! every day of the year present) is twice the input there, where over the
//! decades users smooth (WeatherBench 2 takes 1990–2019) it is a small part
//! of it; these stores show the window's own cost. Their peak RSS is left
//! out of the comparison across sizes (another grid).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use super::rechunk_bench::{
    baseline_dir, build, clear, compare_in_python, ensure_store, json_line, loadavg, measure, opt,
    print_rows, shared_bench, store_bytes, Limits, Options, Row, Store,
};

const XBEAM: &str = "xbeam climatology (CLI)";
const WINDOW: &str = "xbeam --window 61 (hour×doy)";
const SKETCH: &str = "xbeam month quantiles, --sketch";
const HOURLY: &str = "xbeam hour mean (RSS check)";
const WINDOW_Q: &str = "xbeam --window 61 quantiles";
const DASK: &str = "xarray + dask";
const BEAM: &str = "xarray-beam";
const REPEAT: usize = 3;
/// The store of many years (see the module's doc).
const YEARS: &str = "1gb_years";
/// WeatherBench 2's shape (see the module's doc).
const WB2: &str = "30y_6h";

/// Seconds and peak RSS from `xbeam climatology: in …, 1.05 s, …, peak RSS 313 MB`.
fn summary(stderr: &str) -> (Option<f64>, Option<f64>) {
    let Some(line) = stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("xbeam climatology: "))
    else {
        return (None, None);
    };
    let field = |suffix: &str, prefix: &str| {
        line.split(", ").find_map(|p| {
            p.strip_prefix(prefix)
                .and_then(|p| p.strip_suffix(suffix))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
    };
    (
        field(" s", ""),
        field(" MB", "peak RSS ").map(|mb| mb * 1e6),
    )
}

/// `xbeam climatology` with `groupby` (and more flags), best of `repeat`.
fn xbeam_row(
    (tool, groupby, repeat): (&'static str, &[&str], usize),
    xbeam: &Path,
    (src, dst): (&Path, &Path),
    scratch: &Path,
) -> Row {
    let mut row = Row {
        tool,
        ..Row::default()
    };
    for _ in 0..repeat {
        let mut cmd = Command::new(xbeam);
        cmd.arg("climatology")
            .arg(src)
            .arg(dst)
            .arg("--groupby")
            .args(groupby)
            .args(["--workers", "2", "--overwrite"]);
        match measure(&cmd, scratch, None) {
            Ok(run) => {
                let (own, _) = summary(&run.stderr);
                row.add(&run, own);
            }
            Err(e) => return Row::failed(tool, e),
        }
    }
    row
}

/// The month × hour climatology (best of 3, into `xbeam.zarr`), the
/// windowed one (best of 3 too: the two are compared), the sketched
/// quantiles and the hourly mean (once each); on the store of many years
/// also the window's weighted quantiles (once: every window is sorted, so
/// it takes half a minute there and longer on the others, whose anchors
/// have no such job).
fn xbeam_rows(xbeam: &Path, src: &Path, scratch: &Path, years: bool) -> Vec<Row> {
    let plain = (XBEAM, &["time.month,time.hour"][..], REPEAT);
    let others: [(&'static str, &[&str], usize); 3] = [
        (
            WINDOW,
            &["time.hour,time.dayofyear", "--window", "61"],
            REPEAT,
        ),
        (
            SKETCH,
            &["time.month", "--quantiles", "0.1,0.5,0.9", "--sketch"],
            1,
        ),
        (HOURLY, &["time.hour"], 1),
    ];
    let mut rows = vec![xbeam_row(
        plain,
        xbeam,
        (src, &scratch.join("xbeam.zarr")),
        scratch,
    )];
    let quantiles: (&'static str, &[&str], usize) = (
        WINDOW_Q,
        &[
            "time.hour,time.dayofyear",
            "--window",
            "61",
            "--quantiles",
            "0.1,0.5,0.9",
        ],
        1,
    );
    for job in others.into_iter().chain(years.then_some(quantiles)) {
        let dst = scratch.join("once.zarr");
        rows.push(xbeam_row(job, xbeam, (src, &dst), scratch));
        let _ = clear(&dst);
    }
    rows
}

fn python_row(
    tool: &'static str,
    python: Option<&PathBuf>,
    shared: Option<&PathBuf>,
    (script, args): (&str, &[&str]),
    (src, dst): (&Path, &Path),
    scratch: &Path,
    limits: Limits,
) -> Row {
    let (Some(python), Some(shared)) = (python, shared) else {
        return Row::failed(
            tool,
            "skipped: ../shared/bench or its virtualenv is missing (shared/bench/setup_venvs.sh)"
                .into(),
        );
    };
    let mut cmd = Command::new(python);
    cmd.arg(shared.join(script))
        .args(args)
        .arg("--input")
        .arg(src)
        .arg("--output")
        .arg(dst);
    match measure(&cmd, scratch, Some(limits)) {
        Ok(run) => {
            let own = json_line(&run.stdout, "RESULT ").and_then(|v| v["seconds"].as_f64());
            let mut row = Row {
                tool,
                ..Row::default()
            };
            row.add(&run, own);
            row
        }
        Err(e) => Row::failed(tool, format!("skipped: {e}")),
    }
}

/// Compares xbeam's climatology (argv 2) with xarray + dask's (argv 1):
/// the same variables, dims, dtypes and values (rtol 1e-5); xbeam's CF
/// `climatology_bounds` coordinate, which xarray does not make, aside.
const COMPARE: &str = r#"
import sys, xarray as xr
want = xr.open_zarr(sys.argv[1]).load()
got = xr.open_zarr(sys.argv[2]).load().drop_vars("climatology_bounds", errors="ignore")
assert set(got.data_vars) == set(want.data_vars), (list(got.data_vars), list(want.data_vars))
for v in want.data_vars:
    a, b = got[v].transpose(*want[v].dims), want[v]
    assert a.dtype == b.dtype, (v, a.dtype, b.dtype)
    xr.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
print("equal")
"#;

/// xbeam's output against xarray + dask's, in xarray.
fn check(python: Option<&PathBuf>, shared: Option<&PathBuf>, ours: &Path, dask: &Path) -> String {
    let (Some(python), Some(_)) = (python, shared) else {
        return "not checked (no virtualenv)".into();
    };
    if !dask.exists() {
        return "not checked (xarray + dask did not finish)".into();
    }
    compare_in_python(
        python,
        COMPARE,
        (dask, ours),
        "equal to xarray + dask's (rtol 1e-5)",
        "xarray + dask's",
    )
}

fn table(store: &Store, bytes: f64, rows: &[Row], equal: &str) -> Value {
    let ours = rows.iter().find(|r| r.tool == XBEAM).and_then(Row::ok);
    eprintln!(
        "\n{} store ({:.2} GB of data), month × hour mean; xbeam's output {equal}",
        store.name,
        bytes / 1e9
    );
    let out = print_rows(rows, bytes / 1e9, ours);
    json!({ "store": store.name, "data_gb": bytes / 1e9, "xbeam_output": equal, "rows": out })
}

fn targets(results: &[(&Store, f64, Vec<Row>)]) -> Vec<Value> {
    let mut out = Vec::new();
    let seconds = |rows: &[Row], tool: &str| rows.iter().find(|r| r.tool == tool).and_then(Row::ok);
    let mut rss = Vec::new();
    for (store, bytes, rows) in results {
        let ours = seconds(rows, XBEAM);
        let gbps = ours.map(|s| bytes / 1e9 / s);
        let vs = |tool: &str| seconds(rows, tool).zip(ours).map(|(b, a)| b / a);
        for (what, value, bar) in [
            ("GB/s of input", gbps, 1.5),
            ("× faster than xarray + dask", vs(DASK), 6.0),
            ("× faster than xarray-beam", vs(BEAM), 25.0),
        ] {
            let met = value.map(|v| v >= bar);
            eprintln!(
                "target {} store: {what} ≥ {bar}: {} ({})",
                store.name,
                opt(value, 1.0, 2),
                met.map_or("not measured", |m| if m { "met" } else { "MISSED" })
            );
            out.push(json!({"store": store.name, "target": what, "bar": bar, "value": value, "met": met}));
        }
        if let Some(r) = rows.iter().find(|r| r.tool == HOURLY).and_then(|r| r.rss) {
            if store.name != YEARS && store.name != WB2 {
                rss.push((store.name, r));
            }
        }
        let slower = seconds(rows, WINDOW).zip(ours).map(|(w, a)| w / a);
        let met = slower.map(|s| s <= 1.5);
        eprintln!(
            "target {} store: windowed hour × dayofyear within 1.5× month × hour: {}× ({})",
            store.name,
            opt(slower, 1.0, 2),
            met.map_or("not measured", |m| if m { "met" } else { "MISSED" })
        );
        out.push(json!({"store": store.name, "target": "windowed time / month × hour time", "bar": 1.5, "value": slower, "met": met}));
    }
    if rss.len() > 1 {
        let (lo, hi) = rss
            .iter()
            .fold((f64::MAX, 0f64), |(a, b), (_, r)| (a.min(*r), b.max(*r)));
        // "the same": within 15% (allocator noise), whatever the input size
        let met = hi <= lo * 1.15;
        eprintln!(
            "target: peak RSS independent of input size (hour mean, 24 groups in each store): {} ({})",
            rss.iter()
                .map(|(n, r)| format!("{n} {:.0} MB", r / 1e6))
                .collect::<Vec<_>>()
                .join(", "),
            if met { "met" } else { "MISSED" }
        );
        out.push(json!({"target": "peak RSS of the hour mean the same at every size (±15%)", "met": met}));
    }
    out
}

pub(crate) fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let mut args = args.to_vec();
    if !args.iter().any(|a| a == "--stores") {
        args.extend(["--stores".into(), format!("1gb,4gb,{YEARS},{WB2}")]);
    }
    if !args.iter().any(|a| a == "--xarray-beam") {
        args.extend(["--xarray-beam".into(), format!("1gb,4gb,{YEARS},{WB2}")]);
    }
    let opts = Options::parse(&args)?;
    let data = root.join("target/bench-data");
    let scratch = data.join("climatology-bench");
    std::fs::create_dir_all(&scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    let xbeam = build(
        root,
        &scratch,
        "bench: build the xbeam CLI (release)",
        &["--bin", "xbeam"],
        "xbeam",
    )?;
    let base = baseline_dir();
    let python = base
        .map(|b| b.join("venv/bin/python"))
        .filter(|p| p.is_file());
    let shared = shared_bench(root);
    let limits = Limits {
        timeout: opts.timeout,
        rss: opts.rss_limit,
    };
    let started = loadavg();
    let mut results = Vec::new();
    let mut json_stores = Vec::new();
    for store in &opts.stores {
        let src = ensure_store(&xbeam, &data, store)?;
        let (bytes, _) = store_bytes(&src)?;
        let (ours, dask) = (scratch.join("xbeam.zarr"), scratch.join("dask.zarr"));
        let mut rows = xbeam_rows(&xbeam, &src, &scratch, store.name == YEARS);
        let job = ("dask_climatology.py", &["--threads", "2"][..]);
        rows.push(python_row(
            DASK,
            python.as_ref(),
            shared.as_ref(),
            job,
            (&src, &dask),
            &scratch,
            limits,
        ));
        let equal = check(python.as_ref(), shared.as_ref(), &ours, &dask);
        if opts.xarray_beam.contains(&store.name) {
            let job = (
                "xbeam_climatology.py",
                &[
                    "--direct-num-workers",
                    "2",
                    "--direct-running-mode",
                    "multi_processing",
                ][..],
            );
            let out = scratch.join("beam.zarr");
            rows.push(python_row(
                BEAM,
                python.as_ref(),
                shared.as_ref(),
                job,
                (&src, &out),
                &scratch,
                limits,
            ));
        }
        json_stores.push(table(store, bytes, &rows, &equal));
        for d in ["xbeam.zarr", "once.zarr", "dask.zarr", "beam.zarr"] {
            let _ = clear(&scratch.join(d));
        }
        results.push((*store, bytes, rows));
    }
    let verdicts = targets(&results);
    let report = json!({
        "job": "climatology --groupby time.month,time.hour (mean); --groupby time.hour,time.dayofyear --window 61; --groupby time.month --quantiles 0.1,0.5,0.9 --sketch; --groupby time.hour; on 1gb_years --window 61 --quantiles 0.1,0.5,0.9; 2 workers",
        "load_average_start": started,
        "load_average_end": loadavg(),
        "stores": json_stores,
        "targets": verdicts,
    });
    let path = data.join("climatology-bench.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&path, text + "\n")
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("\nwritten: {}", path.display());
    let failed = results.iter().any(|(_, _, rows)| {
        rows.iter()
            .any(|r| [XBEAM, WINDOW, SKETCH, HOURLY].contains(&r.tool) && r.problem.is_some())
    });
    if failed {
        Err("xbeam climatology failed: see the tables above".into())
    } else {
        Ok(())
    }
}
