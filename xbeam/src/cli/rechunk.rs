//! `xbeam rechunk`.

use std::path::PathBuf;

use xbeam::error::Error;
use xbeam::io::ZarrFormat;
use xbeam::jobs::rechunk::{self, Options};
use xbeam::key::ChunksRequest;

use xbeam::chunk::chunks::TargetChunks;

use super::args::{parse_chunk_specs, parse_request, Shared, WriteArgs};
use super::progress::StageProgress;
use super::report;

/// Flags of `xbeam rechunk`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The input Zarr store.
    src: PathBuf,
    /// The output Zarr store (must be missing or empty, see --overwrite).
    dst: PathBuf,
    /// Target chunks, e.g. `time=-1,latitude=11,longitude=24` (`-1`: the
    /// whole dimension; dimensions not named keep the input's chunks).
    #[arg(long, value_parser = parse_request)]
    target_chunks: ChunksRequest,
    /// Zarr format of the output, 2 or 3 (default: the input's).
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=3))]
    format: Option<u8>,
    /// Shard sizes (Zarr v3), multiples of the target chunks, e.g.
    /// `latitude=121`.
    #[arg(long, value_parser = parse_chunk_specs)]
    shards: Option<TargetChunks>,
    /// Write every data variable with its dimensions in this order, e.g.
    /// `latitude,longitude,time` (as xarray's `ds.transpose`; dimensions
    /// not named follow in their input order).
    #[arg(long, value_delimiter = ',')]
    transpose: Option<Vec<String>>,
    #[command(flatten)]
    write: WriteArgs,
    /// Print the plan (stages, chunks, bytes moved, memory) and write
    /// nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    shared: Shared,
}

pub(crate) fn run(a: &Args) -> Result<(), Error> {
    let options = Options {
        src: a.src.clone(),
        dst: a.dst.clone(),
        target: a.target_chunks.clone(),
        max_mem: a.shared.max_mem,
        format: a.format.map(ZarrFormat::from_number).transpose()?,
        shards: a.shards.clone(),
        write: a.write.mode(),
        transpose: a.transpose.clone(),
    };
    let runner = a.shared.runner();
    if a.dry_run {
        let planned = rechunk::plan(&options, runner.workers())?;
        let fewer = if planned.workers < runner.workers() {
            format!(" (of {}: larger chunks would not fit)", runner.workers())
        } else {
            String::new()
        };
        println!(
            "rechunk {} -> {} with --max-mem {} on {} worker(s){fewer}: {} per chunk",
            a.src.display(),
            a.dst.display(),
            xbeam::key::to_human_size(a.shared.max_mem),
            planned.workers,
            xbeam::key::to_human_size(planned.chunk_max_mem)
        );
        println!("{}", planned.plan);
        if planned.read_directly {
            println!(
                "note: stage 0 runs as a read of the input with its target chunks (multiples of the input's), not through a shuffle"
            );
        }
        return Ok(());
    }
    let progress = StageProgress::new(a.shared.quiet);
    let result = rechunk::run(&options, &progress.attach(runner));
    progress.finish();
    report::summary("rechunk", &result?, a.shared.quiet);
    report::resumed(&a.dst, a.write.resume, a.shared.quiet);
    Ok(())
}
