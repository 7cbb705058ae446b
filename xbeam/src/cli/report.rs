//! What the CLI prints besides a job's own output: the one-line summary
//! and errors with their causes.

use std::error::Error as _;

use xbeam::error::Error;
use xbeam::jobs::Summary;

/// `xbeam <job>: in … GB, out … GB, … chunks, … s, … GB/s, peak RSS … MB` on stderr
/// (stdout may carry JSON).
pub(crate) fn summary(job: &str, summary: &Summary, quiet: bool) {
    if !quiet {
        eprintln!("xbeam {job}: {summary}");
    }
}

/// `error: <one sentence>` and a `caused by:` line per source.
pub(crate) fn error(e: &Error) {
    eprintln!("error: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
}
