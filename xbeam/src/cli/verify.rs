//! `xbeam verify`: every chunk a store's metadata promises is there.

use std::collections::BTreeMap;
use std::path::PathBuf;

use xbeam::error::Error;

/// Chunks listed one per line before the rest are only counted.
const LISTED: usize = 20;

/// Flags of `xbeam verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The Zarr store.
    path: PathBuf,
}

/// Prints `STORE: complete: …`, or the missing chunks (the first
/// [`LISTED`] by key, then a count per array) and fails with
/// [`Error::Incomplete`].
pub(crate) fn run(a: &Args) -> Result<(), Error> {
    let input = |source| Error::Input {
        path: a.path.clone(),
        source,
    };
    // first, so that a lost coordinate chunk is listed too (opening the
    // store reads the coordinates)
    let missing = xbeam::io::verify(&a.path).map_err(input)?;
    if missing.is_empty() {
        let source = xbeam::io::open_zarr(&a.path).map_err(input)?;
        let t = source.template();
        println!(
            "{}: complete: every chunk of its {} data variables and {} coordinates is present",
            a.path.display(),
            t.data_vars().len(),
            t.coords().len()
        );
        return Ok(());
    }
    println!("{}: missing chunks:", a.path.display());
    for m in missing.iter().take(LISTED) {
        println!("  {}", super::report::printable(&m.to_string()));
    }
    if missing.len() > LISTED {
        let mut per_array: BTreeMap<&str, usize> = BTreeMap::new();
        for m in &missing {
            *per_array.entry(m.array.as_str()).or_default() += 1;
        }
        let counts: Vec<String> = per_array.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        println!(
            "  ... and {} more; missing per variable: {}",
            missing.len() - LISTED,
            super::report::printable(&counts.join(", "))
        );
    }
    Err(Error::Incomplete {
        path: a.path.clone(),
        missing: missing.len(),
    })
}
