//! The `xbeam` CLI's jobs as library entry points: each module has an
//! `Options` and `run(&Options, &Runner)`, runs on the engine (so it
//! honours the runner's workers, memory budget and, later, cluster), and
//! returns a [`Summary`]. Jobs never draw progress: give the runner an
//! [`on_progress`](crate::runner::Runner::on_progress) callback for that.
//!
//! ```
//! use xbeam::io::ZarrFormat;
//! use xbeam::jobs::{copy, generate};
//! use xbeam::runner::Runner;
//!
//! let dir = tempfile::tempdir()?;
//! let (src, dst) = (dir.path().join("a.zarr"), dir.path().join("b.zarr"));
//! let runner = Runner::local_with_workers(2).quiet();
//! generate::run(&generate::Options { ntime: Some(48), nlat: 5, nlon: 8, ..generate::Options::new(&src) }, &runner)?;
//! let summary = copy::run(&copy::Options { format: Some(ZarrFormat::V3), ..copy::Options::new(&src, &dst) }, &runner)?;
//! assert_eq!(summary.bytes_in, 2 * 48 * 5 * 8 * 4);
//! assert_eq!(summary.bytes_out, summary.bytes_in);
//! # Ok::<(), xbeam::error::Error>(())
//! ```

use std::fmt;
use std::time::Duration;

pub mod copy;
pub mod generate;
pub mod info;
pub mod ingest;
pub mod output;
pub mod rechunk;
pub mod reduce;
pub mod rolling;

/// What a job did: bytes in and out (uncompressed data), chunks, wall time
/// and the process's peak resident memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Uncompressed bytes of data read.
    pub bytes_in: u64,
    /// Uncompressed bytes of data written.
    pub bytes_out: u64,
    /// Chunks (engine elements) processed.
    pub chunks: u64,
    /// Wall time of the job.
    pub wall: Duration,
    /// Peak resident set size of the process, where known.
    pub peak_rss: Option<u64>,
}

impl Summary {
    /// A summary of a job that started at `started`, with the peak RSS
    /// read now.
    pub(crate) fn finish(
        started: std::time::Instant,
        bytes_in: u64,
        bytes_out: u64,
        chunks: u64,
    ) -> Summary {
        Summary {
            bytes_in,
            bytes_out,
            chunks,
            wall: started.elapsed(),
            peak_rss: peak_rss(),
        }
    }

    /// Throughput in GB/s (1e9 bytes) of the larger of bytes in and out.
    pub fn gb_per_s(&self) -> f64 {
        self.bytes_in.max(self.bytes_out) as f64 / 1e9 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// One line: `in 1.00 GB, out 1.00 GB, 718 chunks, 0.71 s, 1.41 GB/s, peak RSS 52 MB`.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gb = |b: u64| b as f64 / 1e9;
        write!(
            f,
            "in {:.2} GB, out {:.2} GB, {} chunks, {:.2} s, {:.2} GB/s, peak RSS ",
            gb(self.bytes_in),
            gb(self.bytes_out),
            self.chunks,
            self.wall.as_secs_f64(),
            self.gb_per_s()
        )?;
        match self.peak_rss {
            Some(b) => write!(f, "{:.0} MB", b as f64 / 1e6),
            None => f.write_str("n/a"),
        }
    }
}

/// The peak resident set size of this process (`VmHWM` in
/// `/proc/self/status`), or `None` where that is unavailable.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_one_line_with_every_figure() {
        let s = Summary {
            bytes_in: 2_000_000_000,
            bytes_out: 1_000_000_000,
            chunks: 718,
            wall: Duration::from_millis(500),
            peak_rss: None,
        };
        assert_eq!(
            s.to_string(),
            "in 2.00 GB, out 1.00 GB, 718 chunks, 0.50 s, 4.00 GB/s, peak RSS n/a"
        );
        let s = Summary {
            peak_rss: Some(52_000_000),
            ..s
        };
        assert!(s.to_string().ends_with("peak RSS 52 MB"));
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss().is_some_and(|b| b > 1 << 20));
        }
    }
}
