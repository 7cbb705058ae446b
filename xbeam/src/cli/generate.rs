//! `xbeam generate`.

use std::path::PathBuf;

use xbeam::error::Error;
use xbeam::io::ZarrFormat;
use xbeam::jobs::generate::{self, Options};

use xbeam::chunk::chunks::TargetChunks;

use super::args::{parse_chunk_specs, parse_positive, Shared, WriteArgs};
use super::progress::Progress;
use super::report;

/// Flags of `xbeam generate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Uncompressed size of the data variables, in GB (1e9 bytes).
    #[arg(long, default_value_t = 1.0, value_parser = parse_positive)]
    gb: f64,
    /// The Zarr store to write (must be missing or empty, see --overwrite).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    write: WriteArgs,
    /// Zarr format, 2 or 3.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    format: u8,
    /// Chunk sizes, e.g. `time=24` (other dimensions are whole).
    #[arg(long, default_value = "time=24", value_parser = parse_chunk_specs)]
    chunks: TargetChunks,
    /// Pressure levels (0: no level dimension).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=generate::MAX_POINTS))]
    levels: u64,
    /// Latitude points.
    #[arg(long, default_value_t = 121, value_parser = clap::value_parser!(u64).range(1..=generate::MAX_POINTS))]
    nlat: u64,
    /// Longitude points.
    #[arg(long, default_value_t = 240, value_parser = clap::value_parser!(u64).range(1..=generate::MAX_POINTS))]
    nlon: u64,
    /// Hours from one time step to the next (6: 6-hourly, as WeatherBench
    /// 2's climatologies take).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=generate::MAX_HOURS))]
    step_hours: u64,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    shared: Shared,
}

pub(crate) fn run(a: &Args) -> Result<(), Error> {
    let options = Options {
        out: a.out.clone(),
        write: a.write.mode(),
        gb: a.gb,
        ntime: None,
        hours: a.step_hours,
        nlat: a.nlat,
        nlon: a.nlon,
        levels: a.levels,
        chunks: a.chunks.clone(),
        format: ZarrFormat::from_number(a.format)?,
        seed: a.seed,
    };
    let ntime = options.dataset()?.ntime;
    let progress = Progress::new("generate", a.shared.quiet);
    let result = generate::run(&options, &progress.attach(a.shared.runner()));
    progress.finish();
    let summary = result?;
    println!(
        "wrote {} ({ntime} time steps, {:.3} GB uncompressed)",
        a.out.display(),
        summary.bytes_out as f64 / 1e9,
    );
    report::summary("generate", &summary, a.shared.quiet);
    report::resumed(&a.out, a.write.resume, a.shared.quiet);
    Ok(())
}
