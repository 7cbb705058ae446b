//! `xbeam verify`: every chunk a store's metadata promises is there and,
//! where xbeam wrote the store, holds the bytes it wrote.

use std::path::PathBuf;

use xbeam::error::Error;

/// Chunks listed one per line before the rest are only counted.
const LISTED: usize = 20;

/// Flags of `xbeam verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The Zarr store.
    path: PathBuf,
    /// Memory budget, e.g. `256MB`: the manifest's index of chunks (24
    /// bytes a chunk) may take half of it.
    #[arg(long, default_value = "1GiB", value_parser = super::args::parse_size)]
    max_mem: u64,
}

/// Prints `STORE: complete: …`, or the chunks missing or damaged (the first
/// [`LISTED`] by key, then a count per array), and fails with
/// [`Error::Incomplete`] when any is, or when the job that wrote the store
/// did not finish.
pub(crate) fn run(a: &Args) -> Result<(), Error> {
    let input = |source| Error::Input {
        path: a.path.clone(),
        source,
    };
    xbeam::io::set_memory_budget(a.max_mem, rayon::current_num_threads());
    // first, so that a lost coordinate chunk is listed too (opening the
    // store reads the coordinates)
    let found = xbeam::io::verify(&a.path).map_err(input)?;
    let shown = a.path.display().to_string();
    let path = super::report::printable(&shown);
    let checked = match &found.manifest {
        Some(_) => "present and as written (length and CRC-32C in its xbeam manifest)",
        None => "present (the store has no xbeam manifest, so its contents are not checked)",
    };
    if found.unrecorded > 0 {
        eprintln!(
            "note: {} chunk file(s) are not in the store's xbeam manifest (written by another program?); their contents were not checked",
            found.unrecorded
        );
    }
    let unfinished = found.manifest.as_ref().is_some_and(|m| !m.complete);
    if found.problems.is_empty() {
        if unfinished {
            println!("{path}: every chunk is {checked}, but the job writing the store did not finish (killed, failed or still running)");
            return Err(Error::Incomplete {
                path: a.path.clone(),
                reason: "the job writing it did not finish; run it again with --resume".into(),
            });
        }
        let source = xbeam::io::open_zarr(&a.path).map_err(input)?;
        let t = source.template();
        println!(
            "{path}: complete: every chunk of its {} data variables and {} coordinates is {checked}",
            t.data_vars().len(),
            t.coords().len()
        );
        return Ok(());
    }
    println!("{path}: chunks missing or damaged:");
    for m in found.problems.iter().take(LISTED) {
        println!("  {}", super::report::printable(&m.to_string()));
    }
    let n = found.problem_count();
    if n > LISTED as u64 {
        let counts: Vec<String> = found
            .per_array
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        println!(
            "  ... and {} more; missing or damaged per variable: {}",
            n - LISTED as u64,
            super::report::printable(&counts.join(", "))
        );
    }
    let mut reason = format!(
        "{n} chunk{} missing or damaged",
        if n == 1 { " is" } else { "s are" }
    );
    if unfinished {
        reason.push_str(" (the job writing it did not finish; run it again with --resume)");
    }
    Err(Error::Incomplete {
        path: a.path.clone(),
        reason,
    })
}
