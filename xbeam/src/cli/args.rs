//! The flags every subcommand shares, and the parsers of flag values.

use clap::Args;
use xbeam::chunk::chunks::TargetChunks;
use xbeam::key::ChunksRequest;
use xbeam::runner::Runner;
use xbeam::transforms::parse_chunks;

/// The smallest `--max-mem` accepted.
const MIN_MEM: u64 = 1 << 20;

/// Flags flattened into every subcommand.
#[derive(Debug, Clone, Args)]
pub(crate) struct Shared {
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(crate) workers: Option<u16>,
    /// Memory budget for chunk data of the whole process, e.g. `256MB`,
    /// `1GiB`.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub(crate) max_mem: u64,
    /// No progress bar and no summary line.
    #[arg(long)]
    pub(crate) quiet: bool,
}

impl Shared {
    /// The engine for these flags: local workers, `--max-mem` as the
    /// process's budget ([`Runner::max_mem`] splits it between source
    /// chunks in flight and groups), and no bars of its own (the CLI draws
    /// them).
    pub(crate) fn runner(&self) -> Runner {
        let workers = self.workers.map_or_else(
            || std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            usize::from,
        );
        // chunk files and variable-length chunks are read within it too
        xbeam_io::set_memory_budget(self.max_mem, workers);
        Runner::local_with_workers(workers)
            .quiet()
            .max_mem(usize::try_from(self.max_mem).unwrap_or(usize::MAX))
    }
}

/// The output flags every writing command takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct WriteArgs {
    /// Replace the Zarr store at the output (only if it holds nothing
    /// else).
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// Finish a run of this same command that was killed or failed: keep
    /// the store at the output (its metadata must be what this run writes)
    /// and write only the chunks it lacks or that differ; the result is
    /// byte-identical to an uninterrupted run.
    #[arg(long, conflicts_with = "overwrite")]
    pub(crate) resume: bool,
    /// Write even when the output's uncompressed size exceeds the free
    /// space on its filesystem (compression may make it fit).
    #[arg(long)]
    pub(crate) ignore_free_space: bool,
}

impl WriteArgs {
    /// The job option these flags give.
    pub(crate) fn mode(&self) -> xbeam::jobs::output::WriteMode {
        xbeam::jobs::output::WriteMode {
            overwrite: self.overwrite,
            resume: self.resume,
            ignore_free_space: self.ignore_free_space,
        }
    }
}

/// Target chunks as `--target-chunks` takes them (`time=-1,latitude=11`,
/// byte sizes such as `100MB`; see [`ChunksRequest`]).
pub(crate) fn parse_request(s: &str) -> Result<ChunksRequest, String> {
    s.parse::<ChunksRequest>().map_err(|e| e.to_string())
}

/// A byte size, as [`parse_bytes`](xbeam::key::parse_bytes) reads chunk
/// sizes: a number (fractions allowed) with an optional unit, `B`,
/// `K`/`KB`/`M`/`MB`/`G`/`GB`/... (powers of 1000) or `KiB`/`MiB`/`GiB`/...
/// (powers of 1024), case-insensitive; from 1 MiB to 1 EB.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let bytes = xbeam::key::parse_bytes(s).map_err(|_| {
        format!(
            "expected a size like 256MB or 1GiB (units B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB), found {s:?}"
        )
    })?;
    if !(MIN_MEM..=1_000_000_000_000_000_000).contains(&bytes) {
        return Err(format!("expected a size from 1MiB to 1EB, found {s:?}"));
    }
    Ok(bytes)
}

/// A finite number > 0.
pub(crate) fn parse_positive(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a number, found {s:?}"))?;
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(format!("expected a finite number > 0, found {s}"))
    }
}

/// Chunks per dimension, as the transforms read them
/// ([`parse_chunks`]): `time=24,latitude=-1` (`-1`: the whole dimension).
/// The jobs check that sizes are positive and regular.
pub(crate) fn parse_chunk_specs(s: &str) -> Result<TargetChunks, String> {
    // a flag names its dimensions: `time` alone is not a byte target
    if !s.trim().is_empty() && !s.contains('=') {
        return Err(format!(
            "expected chunks like time=24,latitude=-1, found {s:?}"
        ));
    }
    parse_chunks(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use xbeam::key::ChunkSpec;

    #[test]
    fn sizes_take_decimal_and_binary_units() {
        assert_eq!(parse_size("256MB"), Ok(256_000_000));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5gb"), Ok(1_500_000_000));
        assert_eq!(parse_size("2000000"), Ok(2_000_000));
        // the same units as chunk sizes in bytes ("100MB", "64k")
        assert_eq!(parse_size("64m"), Ok(64_000_000));
        assert_eq!(parse_size("1.5g"), Ok(1_500_000_000));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        for bad in ["0", "-1GB", "NaNGB", "inf", "12XB", "1KB", ""] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn positive_numbers_are_finite() {
        assert_eq!(parse_positive("0.5"), Ok(0.5));
        for bad in ["0", "-1", "NaN", "inf", "-inf", "x"] {
            assert!(parse_positive(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunk_specs() {
        let m = parse_chunk_specs("time=24, latitude=-1").unwrap();
        assert_eq!(m["time"], ChunkSpec::Size(24));
        assert_eq!(m["latitude"], ChunkSpec::Full);
        for bad in ["time", "time=x", "time=-2", "time=1,time=2", "time=100MB"] {
            assert!(parse_chunk_specs(bad).is_err(), "{bad}");
        }
    }
}
