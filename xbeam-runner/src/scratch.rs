//! Scratch directories (the engine's spill files, a statistic's pencil
//! pass, the demo's stores) that never outlive their run.
//!
//! A [`Scratch`] is removed when dropped, as a `tempfile::TempDir` is —
//! also when its job fails. Two more ways out are covered:
//!
//! - **SIGINT / SIGTERM**: a program's signal handler calls
//!   [`remove_all`], which removes every scratch directory still alive
//!   (the `xbeam` command line does, then exits with 130 or 143).
//! - **SIGKILL, a power cut**: nothing runs, so the next [`Scratch`] made
//!   in the same parent directory removes those of processes that are gone.
//!   A scratch directory is named `xbeam-<kind>-<pid>-<random>` (kind
//!   `spill`, `pencils` or `demo`, six random characters); only names of
//!   exactly that form whose process no longer exists are touched (on
//!   Linux, where `/proc` says which processes exist; elsewhere none are).
//!   `/proc` knows this machine's processes in this pid namespace only: do
//!   not share a spill directory between machines or containers (a run
//!   there could take another's live directory for stale; that run would
//!   then fail with a spill error, not lose data silently).
//!
//! ```
//! use xbeam_runner::scratch::Scratch;
//!
//! let parent = tempfile::tempdir()?;
//! // what a killed process left behind (no process has pid 4194305)
//! let stale = parent.path().join("xbeam-spill-4194305-abc123");
//! std::fs::create_dir(&stale)?;
//! let mine = Scratch::new("spill", Some(parent.path()))?;
//! assert!(mine.path().starts_with(parent.path()));
//! assert_eq!(stale.exists(), !cfg!(target_os = "linux"));
//! let path = mine.path().to_path_buf();
//! drop(mine);
//! assert!(!path.exists());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The scratch directories alive in this process, and whether
/// [`remove_all`] has run (then no new one is made).
static ALIVE: Mutex<(Vec<PathBuf>, bool)> = Mutex::new((Vec::new(), false));

/// What a scratch directory may hold: the names [`Scratch::new`] is given.
const KINDS: [&str; 3] = ["spill", "pencils", "demo"];

/// A scratch directory, removed when dropped (see the module docs).
#[derive(Debug)]
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// Makes `xbeam-<kind>-<pid>-<random>` in `parent` (default: the
    /// system's temporary directory, `$TMPDIR`), after removing the
    /// scratch directories there of processes that no longer exist.
    /// `kind` names what it holds: `spill`, `pencils` or `demo`. Fails
    /// once [`remove_all`] has run (the process is stopping).
    pub fn new(kind: &str, parent: Option<&Path>) -> std::io::Result<Scratch> {
        if !KINDS.contains(&kind) {
            return Err(std::io::Error::other(format!(
                "unknown scratch kind {kind:?}: expected one of {KINDS:?}"
            )));
        }
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        remove_stale(&parent);
        // made under the lock, so that remove_all sees it or it is not made
        let mut alive = lock();
        if alive.1 {
            return Err(std::io::Error::other("the process is stopping"));
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("xbeam-{kind}-{}-", std::process::id()))
            .rand_bytes(RANDOM)
            .tempdir_in(&parent)?;
        alive.0.push(dir.path().to_path_buf());
        Ok(Scratch { dir })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        lock().0.retain(|p| p != self.dir.path());
    }
}

/// Random characters at the end of a scratch directory's name.
const RANDOM: usize = 6;

fn lock() -> std::sync::MutexGuard<'static, (Vec<PathBuf>, bool)> {
    ALIVE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes every scratch directory alive in this process, for a signal
/// handler about to exit; returns how many there were. The run's workers
/// may still be writing into them, so a directory that gained a file while
/// it was being removed is removed again (a few times); other errors are
/// ignored: the process is ending, and the next run removes what is left.
pub fn remove_all() -> usize {
    let mut alive = lock();
    alive.1 = true;
    let dirs = std::mem::take(&mut alive.0);
    for dir in &dirs {
        for _ in 0..20 {
            if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    dirs.len()
}

/// The pid in a scratch directory's name `xbeam-<kind>-<pid>-<random>`.
fn owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("xbeam-")?;
    let (kind, rest) = rest.split_once('-')?;
    let (pid, random) = rest.split_once('-')?;
    let random_ok = random.len() == RANDOM && random.chars().all(|c| c.is_ascii_alphanumeric());
    let pid_ok = !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit());
    (KINDS.contains(&kind) && random_ok && pid_ok)
        .then(|| pid.parse().ok())
        .flatten()
}

/// Removes the scratch directories in `parent` whose process is gone.
fn remove_stale(parent: &Path) {
    if !cfg!(target_os = "linux") || !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner) else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_the_scratch_form_have_an_owner() {
        assert_eq!(owner("xbeam-spill-123-Ab9xYz"), Some(123));
        assert_eq!(owner("xbeam-pencils-7-q1w2e3"), Some(7));
        for name in [
            "xbeam-output-2024-final1",
            "xbeam-pencils-7-q",
            "xbeam-spill-+12-abcdef",
            "xbeam-spill-123",
            "xbeam-spill-x12-abc",
            "xbeam-Spill-12-abc",
            "xbeam--12-abc",
            "xbeam-spill-12-a.b",
            "xbeam-spill-12-",
            "notes-spill-12-abc",
            "xbeam-spill-12-abc-def",
        ] {
            assert_eq!(owner(name), None, "{name}");
        }
    }

    #[test]
    fn stale_directories_of_gone_processes_are_removed_and_nothing_else() {
        let parent = tempfile::tempdir().unwrap();
        let p = parent.path();
        let me = std::process::id();
        let stale = p.join("xbeam-spill-4194305-abc123");
        let live = p.join(format!("xbeam-spill-{me}-abc123"));
        let foreign = p.join("xbeam-results-4194305");
        let file = p.join("xbeam-spill-4194305-file");
        for d in [&stale, &live, &foreign] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("run-0.bin"), b"x").unwrap();
        }
        std::fs::write(&file, b"keep").unwrap();
        let scratch = Scratch::new("spill", Some(p)).unwrap();
        assert_eq!(!stale.exists(), cfg!(target_os = "linux"));
        assert!(live.join("run-0.bin").exists());
        assert!(foreign.join("run-0.bin").exists());
        assert_eq!(std::fs::read(&file).unwrap(), b"keep");
        let made = scratch.path().to_path_buf();
        assert!(made.is_dir());
        assert!(lock().0.contains(&made));
        drop(scratch);
        assert!(!made.exists());
        assert!(!lock().0.contains(&made));
        assert!(Scratch::new("results", Some(p)).is_err());
    }
}
