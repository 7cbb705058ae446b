//! `xbeam ingest`.

use std::path::PathBuf;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use xbeam::error::Error;
use xbeam::io::ZarrFormat;
use xbeam::jobs::ingest::{self, Options};
use xbeam::key::ChunksRequest;

use super::args::{parse_request, Shared, WriteArgs};
use super::progress::Progress;
use super::report;

/// Flags of `xbeam ingest`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The NetCDF files: a glob in quotes (`'data/era5_*.nc'`, sorted by
    /// name), a directory of `.nc` files, or `@LIST` (a file naming one
    /// path per line, in order).
    pattern: String,
    /// The output Zarr store (must be missing or empty, see --overwrite).
    dst: PathBuf,
    /// The dimension to concatenate the files along.
    #[arg(long, default_value = "time")]
    concat_dim: String,
    /// Chunks of the store, e.g. `time=744,latitude=100` (`-1` whole; byte
    /// sizes like `100MB`); the concat dimension defaults to the first
    /// file's length, other dimensions to whole.
    #[arg(long, value_parser = parse_request)]
    target_chunks: Option<ChunksRequest>,
    /// Zarr format of the store, 2 or 3.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
    format: u8,
    /// Add the files that the store at DST (written by `xbeam ingest`)
    /// does not hold yet, along the concat dimension; files already
    /// ingested are skipped, so repeating it changes nothing.
    #[arg(long, conflicts_with_all = ["overwrite", "resume", "ignore_free_space"])]
    append: bool,
    #[command(flatten)]
    write: WriteArgs,
    #[command(flatten)]
    shared: Shared,
}

pub(crate) fn run(a: &Args) -> Result<(), Error> {
    let options = Options {
        pattern: a.pattern.clone(),
        dst: a.dst.clone(),
        concat_dim: a.concat_dim.clone(),
        target: a.target_chunks.clone().unwrap_or_default(),
        format: ZarrFormat::from_number(a.format)?,
        max_mem: a.shared.max_mem,
        append: a.append,
        write: a.write.mode(),
    };
    let target = if a.shared.quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let scan = Arc::new(ProgressBar::with_draw_target(None, target));
    if let Ok(style) = ProgressStyle::with_template("scan {spinner} {pos} files, {per_sec}") {
        scan.set_style(style);
    }
    let progress = Progress::new("read/write", a.shared.quiet);
    let runner = a.shared.runner();
    let bar = Arc::clone(&scan);
    let on_file = move || bar.inc(1);
    let result = ingest::run(&options, &progress.attach(runner), &on_file);
    scan.finish_and_clear();
    progress.finish();
    let done = result?;
    for note in &done.notes {
        eprintln!("note: {}", report::printable(note));
    }
    if a.append && !a.shared.quiet {
        eprintln!(
            "ingest: {} new file(s) appended, {} already in the store skipped",
            done.files, done.skipped
        );
    }
    report::summary("ingest", &done.summary, a.shared.quiet);
    report::resumed(&a.dst, a.write.resume, a.shared.quiet);
    Ok(())
}
