//! The `xbeam` command-line tool.

use std::process::ExitCode;

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
    /// Run an in-memory demo: split an ERA5-like dataset into keyed chunks,
    /// rechunk it, consolidate it back and check the round trip.
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
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
            xbeam::demo::run(&mut std::io::stdout().lock(), &options)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
