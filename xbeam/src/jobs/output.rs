//! Output safety for every writing job: nothing the user did not ask to
//! delete is ever deleted.
//!
//! [`prepare`] refuses an output path that is `/`, the current directory
//! or one of its ancestors, the input store, an ancestor of it or a path
//! inside it; it refuses a non-empty directory unless asked to overwrite,
//! and even then removes only a Zarr store (`.zgroup`, `.zarray` or
//! `zarr.json` at its root) that holds nothing but its hierarchy: metadata
//! files, child groups and arrays, and chunk keys. Anything else is named
//! in the error and left alone.
//!
//! ```
//! use xbeam::jobs::output::{prepare, WriteMode};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("notes.txt"), "keep me")?;
//! let err = prepare(dir.path(), None, WriteMode::overwrite(), 0).unwrap_err();
//! assert!(err.to_string().contains("not a Zarr store"), "{err}");
//! assert!(dir.path().join("notes.txt").exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::Error;

/// Metadata documents of Zarr v2 and v3 nodes.
const METADATA: [&str; 7] = [
    ".zgroup",
    ".zarray",
    ".zattrs",
    ".zmetadata",
    "zarr.json",
    super::ingest::RECORD,
    xbeam_io::MANIFEST,
];

/// What a writing job does with an existing output, and whether it checks
/// the free space first: every writing job's options hold one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteMode {
    /// Replace a Zarr store at the output (see [`prepare`]).
    pub overwrite: bool,
    /// Resume a run that was killed or failed on the store at the output:
    /// chunks already written with the same bytes are kept, not written
    /// again (see [`SetupOptions::resume`](xbeam_io::SetupOptions::resume)).
    pub resume: bool,
    /// Write even when the output's uncompressed size exceeds the free
    /// space of its filesystem (see [`check_free_space`]).
    pub ignore_free_space: bool,
}

impl WriteMode {
    /// Replacing a Zarr store at the output.
    pub fn overwrite() -> WriteMode {
        WriteMode {
            overwrite: true,
            ..WriteMode::default()
        }
    }
}

/// Checks that `dst` may be written (see the module docs) and, with
/// `mode.overwrite`, removes the Zarr store there; with `mode.resume`,
/// keeps a store that xbeam set up there (it has an xbeam manifest), for
/// the job to finish. Then checks that `planned` bytes (the output's
/// uncompressed size) fit ([`check_free_space`]; not when resuming a store
/// that is there). `src` is the job's input store, if any.
pub fn prepare(dst: &Path, src: Option<&Path>, mode: WriteMode, planned: u64) -> Result<(), Error> {
    if mode.resume && mode.overwrite {
        return Err(Error::Usage(
            "--resume keeps the store at the output and --overwrite replaces it: pass one of them"
                .into(),
        ));
    }
    let kept = clear(dst, src, mode)?;
    let ignore = mode.ignore_free_space || kept;
    check_free_space(dst, planned, ignore)
}

/// [`prepare`] but for the free space: returns whether a store is kept
/// there to resume.
fn clear(dst: &Path, src: Option<&Path>, mode: WriteMode) -> Result<bool, Error> {
    let WriteMode {
        overwrite, resume, ..
    } = mode;
    let refuse = |reason: &str| Error::Refused {
        path: dst.to_path_buf(),
        reason: reason.to_owned(),
    };
    let replace = |source| Error::Replace {
        path: dst.to_path_buf(),
        source,
    };
    let target = resolve(dst).map_err(replace)?;
    if target.parent().is_none() {
        return Err(refuse("it is the root directory"));
    }
    let cwd = std::env::current_dir()
        .and_then(fs::canonicalize)
        .map_err(replace)?;
    if cwd.starts_with(&target) {
        return Err(refuse(
            "it is the current directory or one of its ancestors",
        ));
    }
    if let Some(src) = src {
        let src = resolve(src).map_err(replace)?;
        if src.starts_with(&target) {
            return Err(refuse("it is the input store or one of its ancestors"));
        }
        if target.starts_with(&src) {
            return Err(refuse("it lies inside the input store"));
        }
    }
    let meta = match fs::symlink_metadata(dst) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(replace(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(refuse("it is a symbolic link"));
    }
    if !meta.is_dir() {
        return Err(refuse("it exists and is not a directory"));
    }
    if fs::read_dir(dst).map_err(replace)?.next().is_none() {
        return Ok(false);
    }
    if resume {
        if !dst.join(xbeam_io::MANIFEST).is_file() {
            return Err(refuse(&format!(
                "--resume needs a store that xbeam set up, and it has no {} (pass --overwrite to replace it)",
                xbeam_io::MANIFEST
            )));
        }
        return Ok(true);
    }
    if !overwrite {
        return Err(refuse(
            "it is not empty (pass --overwrite to replace the Zarr store there, or --resume to finish the job that wrote it)",
        ));
    }
    if !is_node(dst) {
        return Err(refuse(
            "it is not a Zarr store (no .zgroup, .zarray or zarr.json at its root)",
        ));
    }
    if let Some(foreign) = foreign_entry(dst).map_err(replace)? {
        return Err(refuse(&format!(
            "it holds {}, which is not part of the Zarr store",
            foreign.display()
        )));
    }
    fs::remove_dir_all(dst).map_err(replace)?;
    Ok(false)
}

/// Refuses a job whose shuffles may spill `scratch` bytes (a rechunk
/// passes its input's size: its shuffles spill what does not fit their
/// half of the budget, which can be nearly all of it) where its spill
/// files go, `spill` or the system's temporary directory (`$TMPDIR`), when
/// that filesystem lacks the room; when the output `dst` is on the same
/// filesystem, its `planned` bytes count too. Called after [`prepare`];
/// skipped with `ignore` (`--ignore-free-space`).
///
/// ```
/// use xbeam::jobs::output::check_scratch_space;
///
/// let dir = tempfile::tempdir()?;
/// let dst = dir.path().join("out.zarr");
/// check_scratch_space(Some(dir.path()), 1 << 20, &dst, 1 << 20, false)?;
/// let err = check_scratch_space(Some(dir.path()), u64::MAX / 2, &dst, 1, false).unwrap_err();
/// assert!(err.to_string().contains("may spill up to"), "{err}");
/// check_scratch_space(Some(dir.path()), u64::MAX / 2, &dst, 1, true)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_scratch_space(
    spill: Option<&Path>,
    scratch: u64,
    dst: &Path,
    planned: u64,
    ignore: bool,
) -> Result<(), Error> {
    if ignore {
        return Ok(());
    }
    let dir = spill.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let free = xbeam_io::free_space(&dir).map_err(|source| Error::Output {
        path: dir.clone(),
        source,
    })?;
    let Some(free) = free else {
        return Ok(());
    };
    let shared = same_filesystem(&dir, dst);
    let need = scratch.saturating_add(if shared { planned } else { 0 });
    if need <= free {
        return Ok(());
    }
    let size =
        |n: u64| crate::chunk::display::human_bytes(usize::try_from(n).unwrap_or(usize::MAX));
    let beside = if shared {
        format!(
            ", besides the {} output on the same filesystem,",
            size(planned)
        )
    } else {
        String::new()
    };
    Err(Error::Refused {
        path: dir.clone(),
        reason: format!(
            "the job may spill up to {} (its input's size) to this directory{beside} and its filesystem has {} free (raise --max-mem, point $TMPDIR at a larger disk, or pass --ignore-free-space)",
            size(scratch),
            size(free)
        ),
    })
}

/// Whether `a` and `b` (or their nearest existing ancestors) are on one
/// filesystem; `false` where the platform cannot tell.
fn same_filesystem(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let dev = |p: &Path| {
            let p = std::path::absolute(p).ok()?;
            p.ancestors()
                .find_map(|at| fs::metadata(at).ok())
                .map(|m| m.dev())
        };
        matches!((dev(a), dev(b)), (Some(x), Some(y)) if x == y)
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

/// Refuses a job whose output, `planned` bytes uncompressed, exceeds the
/// free space of the filesystem `dst` would be written to, before anything
/// is written (a 10 TB write should not start on a disk with 71 GB free,
/// fill it and fail hours later). Compression usually makes a store
/// smaller than its uncompressed size, so this can refuse a job that would
/// fit: `ignore` (`--ignore-free-space`, or a resumed store, part of whose
/// output is there already) skips the check. [`prepare`] calls it.
///
/// ```
/// use xbeam::jobs::output::check_free_space;
///
/// let dir = tempfile::tempdir()?;
/// check_free_space(dir.path(), 1 << 20, false)?;
/// let err = check_free_space(dir.path(), u64::MAX, false).unwrap_err();
/// assert!(err.to_string().contains("--ignore-free-space"), "{err}");
/// check_free_space(dir.path(), u64::MAX, true)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_free_space(dst: &Path, planned: u64, ignore: bool) -> Result<(), Error> {
    if ignore {
        return Ok(());
    }
    let free = xbeam_io::free_space(dst).map_err(|source| Error::Output {
        path: dst.to_path_buf(),
        source,
    })?;
    match free {
        Some(free) if planned > free => {
            let size = |n: u64| {
                crate::chunk::display::human_bytes(usize::try_from(n).unwrap_or(usize::MAX))
            };
            Err(Error::Refused {
                path: dst.to_path_buf(),
                reason: format!(
                    "the output is {} uncompressed and its filesystem has {} free (pass --ignore-free-space to write anyway, if compression will make it fit)",
                    size(planned),
                    size(free)
                ),
            })
        }
        _ => Ok(()),
    }
}

/// The absolute path with symbolic links and `..` resolved as far as it
/// exists, the rest appended.
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        let (Some(name), Some(parent)) = (existing.file_name(), existing.parent()) else {
            break;
        };
        rest.push(name);
        existing = parent;
    }
    let mut out = fs::canonicalize(existing)?;
    for name in rest.into_iter().rev() {
        out.push(name);
    }
    // a `..` after a missing directory
    if out.components().any(|c| c == Component::ParentDir) {
        return Err(std::io::Error::other(
            "the path has '..' after a missing directory",
        ));
    }
    Ok(out)
}

fn is_node(dir: &Path) -> bool {
    [".zgroup", ".zarray", "zarr.json"]
        .iter()
        .any(|m| dir.join(m).is_file())
}

fn is_array(dir: &Path) -> bool {
    if dir.join(".zarray").is_file() {
        return true;
    }
    fs::read(dir.join("zarr.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v["node_type"] == "array")
}

fn is_index(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit())
}

/// A chunk key file name: `0.1.2` (v2), `c`, `c.0.1` (v3 with '.'), or a
/// single index (the last level of a '/'-separated key).
fn is_chunk_file(name: &str) -> bool {
    let indices = match name.strip_prefix('c') {
        Some("") => return true, // the chunk of a 0-d v3 array
        Some(rest) => match rest.strip_prefix('.') {
            Some(s) => s,
            None => return false,
        },
        None => name,
    };
    indices.split('.').all(is_index)
}

/// A chunk file's key name, also when a killed write left it partial
/// (`<key>.<pid>.<n>.xbeam-partial`, e.g. `0.0.0.4711.3.xbeam-partial`).
fn written(name: &str) -> &str {
    xbeam_io::partial_of(name).unwrap_or(name)
}

/// The first entry under the node `dir` that is not metadata, a child
/// node or (in an array) a chunk key.
fn foreign_entry(dir: &Path) -> std::io::Result<Option<PathBuf>> {
    let array = is_array(dir);
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Ok(Some(path));
        };
        let kind = entry.file_type()?;
        let belongs = if kind.is_file() {
            METADATA.contains(&name)
                || xbeam_io::is_manifest_file(name)
                || (array && is_chunk_file(written(name)))
        } else if kind.is_dir() {
            if is_node(&path) {
                if let Some(f) = foreign_entry(&path)? {
                    return Ok(Some(f));
                }
                true
            } else if array && (is_index(name) || name == "c") {
                if let Some(f) = foreign_in_chunk_dir(&path)? {
                    return Ok(Some(f));
                }
                true
            } else {
                false
            }
        } else {
            false // symbolic links, FIFOs, devices
        };
        if !belongs {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// The first entry under a chunk-key directory (`c/`, `0/`) whose name is
/// not an index.
fn foreign_in_chunk_dir(dir: &Path) -> std::io::Result<Option<PathBuf>> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        let ok_name = entry
            .file_name()
            .to_str()
            .is_some_and(|n| is_index(if kind.is_file() { written(n) } else { n }));
        if !ok_name || !(kind.is_file() || kind.is_dir()) {
            return Ok(Some(path));
        }
        if kind.is_dir() {
            if let Some(f) = foreign_in_chunk_dir(&path)? {
                return Ok(Some(f));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(root: &Path) {
        fs::create_dir_all(root.join("t/c/0/0")).unwrap();
        fs::write(root.join("zarr.json"), r#"{"node_type":"group"}"#).unwrap();
        fs::write(root.join("t/zarr.json"), r#"{"node_type":"array"}"#).unwrap();
        fs::write(root.join("t/c/0/0/1"), "x").unwrap();
        fs::create_dir_all(root.join("v2")).unwrap();
        fs::write(root.join("v2/.zarray"), "{}").unwrap();
        fs::write(root.join("v2/0.0.1"), "x").unwrap();
    }

    #[test]
    fn a_clean_store_is_replaced_only_with_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s.zarr");
        store(&root);
        let err = prepare(&root, None, WriteMode::default(), 0).unwrap_err();
        assert!(err.to_string().contains("is not empty"), "{err}");
        prepare(&root, None, WriteMode::overwrite(), 0).unwrap();
        assert!(!root.exists());
        // a missing or empty directory is fine either way
        prepare(&root, None, WriteMode::default(), 0).unwrap();
        fs::create_dir(&root).unwrap();
        prepare(&root, None, WriteMode::default(), 0).unwrap();
        assert!(root.exists());
    }

    #[test]
    fn anything_foreign_is_named_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s.zarr");
        for foreign in ["notes.txt", "t/c/0/readme", "v2/.hidden", "t/c/0/0/x1"] {
            store(&root);
            fs::write(root.join(foreign), "mine").unwrap();
            let err = prepare(&root, None, WriteMode::overwrite(), 0).unwrap_err();
            assert!(err.to_string().contains(foreign), "{foreign}: {err}");
            assert!(root.join(foreign).exists());
            fs::remove_file(root.join(foreign)).unwrap();
        }
        // a group may not hold chunk keys
        fs::write(root.join("0.0"), "x").unwrap();
        assert!(prepare(&root, None, WriteMode::overwrite(), 0).is_err());
        fs::remove_file(root.join("0.0")).unwrap();
        // nor partial chunk files, nor partial files of what is no chunk key
        for foreign in [
            "0.0.1.2.xbeam-partial",
            "t/c/0/0/x1.1.2.xbeam-partial",
            "t/c/0/0/1.xbeam-partial",
            "v2/a.b.1.2.xbeam-partial",
        ] {
            fs::write(root.join(foreign), "mine").unwrap();
            let err = prepare(&root, None, WriteMode::overwrite(), 0).unwrap_err();
            assert!(err.to_string().contains(foreign), "{foreign}: {err}");
            fs::remove_file(root.join(foreign)).unwrap();
        }
    }

    #[test]
    fn partial_chunk_files_of_a_killed_write_belong_to_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s.zarr");
        store(&root);
        fs::write(root.join("t/c/0/0/2.4711.3.xbeam-partial"), "half").unwrap();
        fs::write(root.join("v2/0.0.2.4711.0.xbeam-partial"), "half").unwrap();
        prepare(&root, None, WriteMode::overwrite(), 0).unwrap();
        assert!(!root.exists());
    }

    #[test]
    fn the_input_and_the_working_directory_are_never_targets() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("in.zarr");
        store(&src);
        for (dst, why) in [
            (src.clone(), "input store"),
            (dir.path().to_path_buf(), "input store"),
            (src.join("t"), "inside the input store"),
            (PathBuf::from("."), "current directory"),
            (PathBuf::from("/"), "root directory"),
        ] {
            let err = prepare(&dst, Some(&src), WriteMode::overwrite(), 0).unwrap_err();
            assert!(err.to_string().contains(why), "{}: {err}", dst.display());
        }
        assert!(src.join("t/c/0/0/1").exists());
    }

    #[test]
    fn chunk_key_names() {
        for ok in ["0", "0.1.2", "c", "c.0.12"] {
            assert!(is_chunk_file(ok), "{ok}");
        }
        for bad in ["", "a", "0..1", "c.", "c0", ".0", "0.x"] {
            assert!(!is_chunk_file(bad), "{bad}");
        }
    }
}
