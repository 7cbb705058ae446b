//! The `xbeam` command-line tool.

use std::process::ExitCode;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

/// Chunked, parallel pipelines over labeled N-dimensional arrays (Zarr,
/// NetCDF, the xarray data model).
#[derive(Debug, Parser)]
#[command(name = "xbeam", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the demo: split an ERA5-like dataset into keyed chunks, rechunk
    /// it in memory, then from a Zarr store on the engine into another Zarr
    /// store, and check every round trip.
    Demo {
        /// Hours of synthetic hourly data.
        #[arg(long, default_value_t = 96, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        hours: u64,
        /// Hours per input chunk.
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..))]
        chunk_hours: u64,
        /// Seed of the synthetic noise.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Write a synthetic ERA5-like dataset (hourly time from 2020-01-01,
    /// latitude, longitude, optional level; float32 temperature and
    /// geopotential) to a Zarr store, in parallel.
    Generate {
        /// Uncompressed size of the data variables, in GB (1e9 bytes).
        #[arg(long, default_value_t = 1.0)]
        gb: f64,
        /// The Zarr store to write (an existing store there is replaced).
        #[arg(long)]
        out: PathBuf,
        /// Zarr format, 2 or 3.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
        format: u8,
        /// Chunk sizes, e.g. `time=24` (other dimensions are whole).
        #[arg(long, default_value = "time=24")]
        chunks: String,
        /// Pressure levels (0: no level dimension).
        #[arg(long, default_value_t = 0)]
        levels: u64,
        /// Latitude points.
        #[arg(long, default_value_t = 121)]
        nlat: u64,
        /// Longitude points.
        #[arg(long, default_value_t = 240)]
        nlon: u64,
        /// Seed of the noise.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Describe a Zarr store like xarray's repr: dimensions, coordinates,
    /// variables with dtype, chunks and attributes.
    Info {
        /// The Zarr store.
        path: PathBuf,
        /// Print one JSON object instead.
        #[arg(long)]
        json: bool,
        /// Read all data (in parallel) and add count, NaN count, min, max
        /// and mean per variable.
        #[arg(long)]
        stats: bool,
    },
}

fn parse_chunks(s: &str) -> Result<Vec<(String, i64)>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                format!("expected chunks like time=24,latitude=-1, found {part:?}")
            })?;
            let n: i64 = v
                .trim()
                .parse()
                .map_err(|_| format!("expected an integer chunk size for {k:?}, found {v:?}"))?;
            Ok((k.trim().to_owned(), n))
        })
        .collect()
}

fn bar(len: u64, what: &str, bytes: bool) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let template = if bytes {
        "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{msg} [{bar:40}] {pos}/{len} eta {eta}"
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_owned());
    pb
}

fn generate(
    gb: f64,
    out: &Path,
    format: u8,
    chunks: &str,
    sizes: (u64, u64, u64),
    seed: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let (levels, nlat, nlon) = sizes;
    let options = xbeam::generate::GenerateOptions {
        gb,
        chunks: parse_chunks(chunks)?,
        format: xbeam::io::ZarrFormat::from_number(format)?,
        levels,
        nlat,
        nlon,
        seed,
        ..Default::default()
    };
    let start = std::time::Instant::now();
    let pb = bar(0, "generate", false);
    let progress = |done: u64, total: u64| {
        pb.set_length(total);
        pb.set_position(done);
    };
    let summary = xbeam::generate::generate(out, &options, Some(&progress))?;
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "wrote {} ({} time steps, {:.3} GB uncompressed) in {secs:.1} s, {:.0} MB/s",
        out.display(),
        summary.ntime,
        summary.nbytes as f64 / 1e9,
        summary.nbytes as f64 / 1e6 / secs
    );
    Ok(())
}

fn info(path: &Path, json: bool, stats: bool) -> Result<(), Box<dyn std::error::Error>> {
    let pb = bar(0, "read", true);
    let progress = |done: u64, total: u64| {
        pb.set_length(total);
        pb.set_position(done);
    };
    let info = xbeam::info::StoreInfo::open(path, stats, Some(&progress))?;
    pb.finish_and_clear();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&xbeam::info::info_json(&info))?
        );
    } else {
        print!("{}", xbeam::info::info_text(&info));
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<(), Box<dyn std::error::Error>> = match cli.command {
        Command::Demo {
            hours,
            chunk_hours,
            seed,
        } => {
            let options = xbeam::demo::DemoOptions {
                hours: hours as usize,
                chunk_hours,
                seed,
            };
            xbeam::demo::run(&mut std::io::stdout().lock(), &options).map_err(Into::into)
        }
        Command::Generate {
            gb,
            out,
            format,
            chunks,
            levels,
            nlat,
            nlon,
            seed,
        } => generate(gb, &out, format, &chunks, (levels, nlat, nlon), seed),
        Command::Info { path, json, stats } => info(&path, json, stats),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
