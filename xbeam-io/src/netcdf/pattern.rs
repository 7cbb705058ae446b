//! Which files an ingest reads: [`expand_pattern`].

use std::path::{Path, PathBuf};

use crate::IoError;

/// The files a pattern names, sorted by path (as xarray users pass
/// `sorted(glob(...))` to `open_mfdataset`):
///
/// - a glob (`data/era5_*.nc`, `data/*/t2m_*.nc`, `**` for any depth);
/// - a directory: every `*.nc` / `*.nc4` / `*.cdf` file in it;
/// - `@list.txt`: the files listed in it, one per line, in that order
///   (blank lines and lines starting with `#` skipped; relative paths are
///   relative to the list's directory).
///
/// Errors when nothing matches, naming the pattern.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// for name in ["b.nc", "a.nc", "notes.txt"] {
///     std::fs::write(dir.path().join(name), b"")?;
/// }
/// let files = xbeam_io::expand_pattern(&format!("{}/*.nc", dir.path().display()))?;
/// assert_eq!(files, [dir.path().join("a.nc"), dir.path().join("b.nc")]);
/// assert!(xbeam_io::expand_pattern(&format!("{}/*.grib", dir.path().display())).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn expand_pattern(pattern: &str) -> Result<Vec<PathBuf>, IoError> {
    if let Some(list) = pattern.strip_prefix('@') {
        let list = Path::new(list);
        let text = std::fs::read_to_string(list)
            .map_err(|e| IoError::file(list.display(), "cannot read the file list", e))?;
        let base = list.parent().unwrap_or(Path::new("."));
        let files: Vec<PathBuf> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| base.join(l))
            .collect();
        if files.is_empty() {
            return Err(IoError::store(
                list.display(),
                "the file list names no files: expected one path per line",
            ));
        }
        return Ok(files);
    }
    let path = Path::new(pattern);
    let mut files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)
            .map_err(|e| IoError::file(path.display(), "cannot list", e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .is_some_and(|x| matches!(x.to_str(), Some("nc" | "nc4" | "cdf")))
            })
            .collect()
    } else {
        glob::glob(pattern)
            .map_err(|e| IoError::Invalid(format!("{pattern:?} is not a valid glob pattern: {e}")))?
            .filter_map(Result::ok)
            .filter(|p| !p.is_dir())
            .collect()
    };
    if files.is_empty() {
        return Err(IoError::Invalid(format!(
            "no files match {pattern:?}: expected a glob such as 'data/*.nc', a directory of .nc files, or @LIST"
        )));
    }
    files.sort();
    Ok(files)
}
