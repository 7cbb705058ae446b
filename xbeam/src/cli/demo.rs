//! `xbeam demo`: the library tour on a small in-memory dataset (steps
//! 1–7, [`xbeam::demo`]), then the main job on files (step 8): generate an
//! ERA5-like Zarr store of about `--gb` GB, rechunk it pancake → pencil
//! with `xbeam rechunk` under `--max-mem`, and verify the result.

use std::io::Write;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use xbeam::demo::DemoOptions;
use xbeam::error::Error;
use xbeam::jobs::reduce;
use xbeam::jobs::{generate, info, rechunk};
use xbeam::runner::scratch::Scratch;
use xbeam::stats::parse_groupers;

use super::args::{parse_positive, Shared};
use super::progress::{Progress, StageProgress};
use super::report;

/// Flags of `xbeam demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Hours of synthetic hourly data in the in-memory tour (steps 1-7).
    #[arg(long, default_value_t = 96, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    hours: u64,
    /// Hours per input chunk in the tour.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    chunk_hours: u64,
    /// Seed of the synthetic noise.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Size of the store the main job (step 8) rechunks, in GB.
    #[arg(long, default_value_t = 1.0, value_parser = parse_positive)]
    gb: f64,
    /// Directory for the main job's stores (default: a temporary directory,
    /// removed at the end); the stores (`era5_pancakes.zarr`,
    /// `era5_pencils.zarr`) are kept there.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the stores of an earlier demo in --out (only Zarr stores are
    /// ever removed).
    #[arg(long, requires = "out")]
    overwrite: bool,
    #[command(flatten)]
    shared: Shared,
}

pub(crate) fn run(a: &Args) -> Result<(), Error> {
    let options = DemoOptions {
        hours: a.hours as usize,
        chunk_hours: a.chunk_hours,
        seed: a.seed,
    };
    let mut out = std::io::stdout().lock();
    xbeam::demo::run_on(&mut out, &options, &a.shared.runner())?;
    if let Some(dir) = &a.out {
        return main_job(&mut out, a, dir, a.overwrite);
    }
    let temp = Scratch::new("demo", None).map_err(|source| Error::Replace {
        path: std::env::temp_dir(),
        source,
    })?;
    main_job(&mut out, a, temp.path(), false)
}

/// Step 8: generate, rechunk under the budget, verify. Existing stores in
/// `dir` are refused unless `overwrite`.
fn main_job(out: &mut impl Write, a: &Args, dir: &Path, overwrite: bool) -> Result<(), Error> {
    let (src, dst) = (
        dir.join("era5_pancakes.zarr"),
        dir.join("era5_pencils.zarr"),
    );
    let target = "time=-1,latitude=11,longitude=24";
    writeln!(
        out,
        "\n== 8. The main job: an ERA5-like store of {} GB rechunked from pancakes to pencils ({target}) under --max-mem {}",
        a.gb,
        xbeam::key::to_human_size(a.shared.max_mem)
    )?;
    out.flush()?;
    let runner = a.shared.runner();
    let gen = generate::Options {
        gb: a.gb,
        write: write_mode(overwrite),
        seed: a.seed,
        ..generate::Options::new(&src)
    };
    let progress = Progress::new("generate", a.shared.quiet);
    let generated = generate::run(&gen, &progress.attach(runner.clone()));
    progress.finish();
    writeln!(out, "  generate: {}", generated?)?;

    let mut options = rechunk::Options::new(&src, &dst, target.parse()?);
    options.max_mem = a.shared.max_mem;
    options.write = write_mode(overwrite);
    let planned = rechunk::plan(&options, runner.workers())?;
    print_plan(out, &planned)?;
    out.flush()?;
    let progress = StageProgress::new(a.shared.quiet);
    let rechunked = rechunk::run(&options, &progress.attach(runner.clone()));
    progress.finish();
    let summary = rechunked?;
    writeln!(out, "  rechunk:  {summary}")?;

    let ok = verify(out, &src, &dst, &runner)? && climatologies(out, a, dir, overwrite)?;
    if a.out.is_some() {
        writeln!(out, "  stores kept in {}", dir.display())?;
    }
    if !ok {
        return Err(Error::Check(
            "the main job's output differs from its input".into(),
        ));
    }
    report::summary("demo", &summary, a.shared.quiet);
    Ok(())
}

/// Step 9: the month × hour mean climatology of the pancakes and of the
/// pencils, which must be bit-identical (results do not depend on the
/// chunking). Returns whether they are.
fn climatologies(
    out: &mut impl Write,
    a: &Args,
    dir: &Path,
    overwrite: bool,
) -> Result<bool, Error> {
    writeln!(
        out,
        "\n== 9. Climatology: the month × hour mean of the pancakes and of the pencils"
    )?;
    out.flush()?;
    let mut results = Vec::new();
    for name in ["pancakes", "pencils"] {
        let src = dir.join(format!("era5_{name}.zarr"));
        let dst = dir.join(format!("era5_{name}_climatology.zarr"));
        let options = reduce::Options {
            groupby: parse_groupers("time.month,time.hour")?,
            max_mem: a.shared.max_mem,
            write: write_mode(overwrite),
            ..reduce::Options::new(&src, &dst)
        };
        let progress = StageProgress::new(a.shared.quiet);
        let done = reduce::run(&options, &progress.attach(a.shared.runner()));
        progress.finish();
        writeln!(out, "  climatology of the {name}: {}", done?.summary)?;
        let store = xbeam::io::open_zarr(&dst).map_err(|e| Error::Input {
            path: dst.clone(),
            source: e,
        })?;
        let ds = store
            .read(&IndexMap::new(), None)
            .map_err(|e| Error::Input {
                path: dst.clone(),
                source: e,
            })?;
        results.push(ds);
    }
    let same = results[0].identical(&results[1]);
    writeln!(
        out,
        "  the two climatologies are bit-identical (whatever the chunking): {}",
        if same { "yes" } else { "NO" }
    )?;
    Ok(same)
}

/// The stages of the plan, one line each.
fn print_plan(out: &mut impl Write, planned: &rechunk::Planned) -> Result<(), Error> {
    for (i, stage) in planned.plan.stages().iter().enumerate() {
        let chunks = |c: &[xbeam::rechunk::DimChunks]| -> String {
            planned
                .plan
                .dims()
                .iter()
                .zip(c)
                .map(|(d, c)| format!("{d}={c}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let how = if i == 0 && planned.read_directly {
            "read with these chunks"
        } else if stage.is_noop() {
            "nothing to do"
        } else if !stage.needs_split() {
            "consolidate"
        } else if !stage.needs_consolidate() {
            "split"
        } else {
            "split + consolidate"
        };
        writeln!(
            out,
            "  plan, stage {i}: {} -> {} ({how})",
            chunks(&stage.source),
            chunks(&stage.target),
        )?;
    }
    Ok(())
}

/// Checks `dst` against `src`: every chunk written, the same statistics
/// for every variable, and sampled pencils identical to the same regions of
/// the input. Reports on `out`; returns whether all held.
fn verify(
    out: &mut impl Write,
    src: &Path,
    dst: &Path,
    runner: &xbeam::runner::Runner,
) -> Result<bool, Error> {
    // every chunk written, the same statistics as the input, and sampled
    // pencils equal to the same regions of the input
    let missing = xbeam::io::verify(dst)?.problems;
    let stats = |path: &Path| {
        info::run(
            &info::Options {
                path: path.to_path_buf(),
                stats: true,
            },
            runner,
        )
        .map(|(i, _)| i)
    };
    let (a_info, b_info) = (stats(src)?, stats(dst)?);
    let mut same_stats = true;
    for (name, va) in &a_info.data_vars {
        let (Some(sa), Some(sb)) = (
            &va.stats,
            b_info.data_vars.get(name).and_then(|v| v.stats.as_ref()),
        ) else {
            same_stats = false;
            continue;
        };
        same_stats &= sa.count == sb.count
            && sa.nan_count == sb.nan_count
            && sa.min == sb.min
            && sa.max == sb.max
            && (sa.sum - sb.sum).abs() <= 1e-9 * sa.sum.abs().max(1.0);
    }
    let (src_store, dst_store) = (
        xbeam::io::open_zarr(src).map_err(|e| Error::Input {
            path: src.to_path_buf(),
            source: e,
        })?,
        xbeam::io::open_zarr(dst).map_err(|e| Error::Input {
            path: dst.to_path_buf(),
            source: e,
        })?,
    );
    let sizes = dst_store.template().sizes().clone();
    let mut samples = 0;
    for (lat, lon) in [
        (0u64, 0u64),
        (
            sizes["latitude"] / 2 / 11 * 11,
            sizes["longitude"] / 2 / 24 * 24,
        ),
    ] {
        let region: IndexMap<String, std::ops::Range<u64>> = [
            (
                "latitude".to_owned(),
                lat..(lat + 11).min(sizes["latitude"]),
            ),
            (
                "longitude".to_owned(),
                lon..(lon + 24).min(sizes["longitude"]),
            ),
        ]
        .into_iter()
        .collect();
        let a = src_store.read(&region, None).map_err(|e| Error::Input {
            path: src.to_path_buf(),
            source: e,
        })?;
        let b = dst_store.read(&region, None).map_err(|e| Error::Input {
            path: dst.to_path_buf(),
            source: e,
        })?;
        if a.identical(&b) {
            samples += 1;
        }
    }
    let ok = missing.is_empty() && same_stats && samples == 2;
    writeln!(
        out,
        "  verified: {} chunks missing, statistics of every variable {} the input's, {samples} of 2 sampled pencils identical to the input: {}",
        missing.len(),
        if same_stats { "equal to" } else { "DIFFERENT from" },
        if ok { "yes" } else { "no" }
    )?;
    Ok(ok)
}

/// Replacing the demo's stores with `--overwrite`, else refusing them.
fn write_mode(overwrite: bool) -> xbeam::jobs::output::WriteMode {
    xbeam::jobs::output::WriteMode {
        overwrite,
        ..Default::default()
    }
}
