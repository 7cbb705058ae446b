//! The `xbeam` command line: one file per subcommand (parse and print
//! only; the work is in `xbeam::jobs`), shared flags in [`args`], progress
//! bars from the engine's metrics in [`progress`], summaries and errors in
//! [`report`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod args;
mod copy;
mod demo;
mod generate;
mod info;
mod ingest;
mod progress;
mod rechunk;
mod reduce;
mod report;
mod verify;

/// Chunked, parallel pipelines over labeled N-dimensional arrays (Zarr,
/// NetCDF, the xarray data model).
#[derive(Debug, Parser)]
#[command(
    name = "xbeam",
    version,
    about,
    long_about = None,
    after_help = "Exit codes: 0 success, 1 other error, 2 usage (a bad flag or value, or an output \
                  path xbeam refuses to touch), 3 input data error, 4 output error, 5 engine error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the demo: split an ERA5-like dataset into keyed chunks, rechunk
    /// it in memory, then from a Zarr store on the engine into another Zarr
    /// store, and check every round trip.
    Demo(demo::Args),
    /// Write a synthetic ERA5-like dataset (hourly time from 2020-01-01,
    /// latitude, longitude, optional level; float32 temperature and
    /// geopotential) to a Zarr store, on the engine.
    Generate(generate::Args),
    /// Describe a Zarr store like xarray's repr: dimensions, coordinates,
    /// variables with dtype, chunks and attributes.
    Info(info::Args),
    /// Ingest many NetCDF files (classic or NetCDF-4) into one Zarr store,
    /// concatenated along a dimension and merged across variables, as
    /// `xr.open_mfdataset(sorted(files), combine="nested",
    /// concat_dim="time").to_zarr(...)`; each file is decoded with its own
    /// time units and packing, and what had to be reconciled is said.
    Ingest(ingest::Args),
    /// Copy a Zarr store, re-encoding it or converting it between v2 and
    /// v3, optionally with other chunks (dividing the input's or multiples
    /// of them) or shards.
    Copy(copy::Args),
    /// Rechunk a Zarr store into another with the Rechunker multi-stage
    /// plan, under a memory budget for the whole process (--max-mem);
    /// --dry-run prints the plan.
    Rechunk(rechunk::Args),
    /// Statistics grouped by parts of a time coordinate or by a 1-D
    /// coordinate's values, as xarray's
    /// `ds.groupby(["time.month", "time.hour"]).mean()`, in one pass over
    /// the store as it is chunked; results do not depend on the chunking
    /// or the number of workers. `--window W` gives WeatherBench 2's
    /// smoothed day-of-year climatology.
    Climatology(reduce::ClimatologyArgs),
    /// Statistics over dimensions, as xarray's `ds.mean(dim=[...])`,
    /// optionally weighted (`--weights latitude=cos`).
    Stats(reduce::StatsArgs),
    /// Statistics over bins of a coarser time step, as xarray's
    /// `ds.resample(time="1D").mean()`.
    Resample(reduce::ResampleArgs),
    /// Moving-window statistics along a dimension, as xarray's
    /// `ds.rolling(time=24).mean()`: each chunk is read with a halo of its
    /// neighbours, so no rechunk is needed.
    Rolling(reduce::RollingArgs),
    /// Check that every chunk a Zarr store's metadata promises exists; a
    /// missing chunk (a write that was stopped, a lost file) otherwise
    /// reads back as fill values. Lists what is missing and exits with 3.
    /// (zarr-python leaves out chunks that are all fill value unless
    /// `write_empty_chunks=True`; xbeam writes every chunk.)
    Verify(verify::Args),
}

/// Parses the command line, runs the subcommand, prints an error with its
/// causes, and returns the exit code.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    on_interrupt();
    let result = match &cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Info(a) => info::run(a),
        Command::Ingest(a) => ingest::run(a),
        Command::Copy(a) => copy::run(a),
        Command::Rechunk(a) => rechunk::run(a),
        Command::Climatology(a) => reduce::climatology(a),
        Command::Stats(a) => reduce::stats(a),
        Command::Resample(a) => reduce::resample(a),
        Command::Rolling(a) => reduce::rolling(a),
        Command::Verify(a) => verify::run(a),
    };
    if STOPPING.load(std::sync::atomic::Ordering::SeqCst) {
        // the run failed because its scratch directories were removed
        // under it: the signal handler exits with the signal's code
        loop {
            std::thread::park();
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report::error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// Set when a signal stops the run, before its scratch directories go.
static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// On SIGINT or SIGTERM: removes the run's scratch directories (spill
/// files, a pencil pass, the demo's stores), says so, and exits with
/// 128 + the signal's number, as a shell does.
#[cfg(unix)]
fn on_interrupt() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use std::io::Write as _;
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
            let removed = xbeam::runner::scratch::remove_all();
            let name = if signal == SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            let plural = if removed == 1 { "y" } else { "ies" };
            // not eprintln!: it panics when stderr is gone (a killed pipe),
            // and this thread must reach exit
            let _ = writeln!(
                std::io::stderr(),
                "\nxbeam: stopped by {name}; removed {removed} scratch director{plural}"
            );
            std::process::exit(128 + signal);
        }
    });
}

#[cfg(not(unix))]
fn on_interrupt() {}
