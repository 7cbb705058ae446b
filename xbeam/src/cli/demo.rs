//! `xbeam demo`.

use xbeam::demo::DemoOptions;
use xbeam::error::Error;

use super::args::Shared;

/// Flags of `xbeam demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Hours of synthetic hourly data.
    #[arg(long, default_value_t = 96, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    hours: u64,
    /// Hours per input chunk.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    chunk_hours: u64,
    /// Seed of the synthetic noise.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    shared: Shared,
}

pub(crate) fn run(a: &Args) -> Result<(), Error> {
    let options = DemoOptions {
        hours: a.hours as usize,
        chunk_hours: a.chunk_hours,
        seed: a.seed,
    };
    xbeam::demo::run_on(&mut std::io::stdout().lock(), &options, &a.shared.runner())
}
