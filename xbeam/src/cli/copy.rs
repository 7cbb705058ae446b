//! `xbeam copy`.

use std::path::PathBuf;

use xbeam::error::Error;
use xbeam::io::ZarrFormat;
use xbeam::jobs::copy::{self, Codec, Options};

use xbeam::chunk::chunks::TargetChunks;

use super::args::{parse_chunk_specs, Shared, WriteArgs};
use super::progress::Progress;
use super::report;

/// Flags of `xbeam copy`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The input Zarr store.
    src: PathBuf,
    /// The output Zarr store (must be missing or empty, see --overwrite).
    dst: PathBuf,
    /// Zarr format of the output, 2 or 3 (default: the input's).
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=3))]
    format: Option<u8>,
    /// Compressor of the output (default: each variable's own).
    #[arg(long, value_parser = ["lz4", "zstd", "gzip", "zlib", "blosc-zstd", "none"])]
    codec: Option<String>,
    /// Compression level (default: the codec's; blosc and gzip 0-9, zstd 1-22).
    #[arg(long, requires = "codec", allow_negative_numbers = true)]
    clevel: Option<i64>,
    /// Output chunk sizes, e.g. `time=48` (others keep the input's); each
    /// must divide the input's chunk or be a multiple of it.
    #[arg(long, value_parser = parse_chunk_specs)]
    chunks: Option<TargetChunks>,
    /// Shard sizes (Zarr v3), e.g. `time=240`.
    #[arg(long, value_parser = parse_chunk_specs)]
    shards: Option<TargetChunks>,
    #[command(flatten)]
    write: WriteArgs,
    #[command(flatten)]
    shared: Shared,
}

pub(crate) fn run(a: &Args) -> Result<(), Error> {
    let options = Options {
        src: a.src.clone(),
        dst: a.dst.clone(),
        write: a.write.mode(),
        format: a.format.map(ZarrFormat::from_number).transpose()?,
        codec: a.codec.as_deref().map(str::parse::<Codec>).transpose()?,
        clevel: a.clevel,
        chunks: a.chunks.clone().unwrap_or_default(),
        shards: a.shards.clone(),
    };
    let progress = Progress::new("copy", a.shared.quiet);
    let result = copy::run(&options, &progress.attach(a.shared.runner()));
    progress.finish();
    report::summary("copy", &result?, a.shared.quiet);
    report::resumed(&a.dst, a.write.resume, a.shared.quiet);
    Ok(())
}
