//! The content manifest of a store xbeam writes: which chunks were
//! written, with their length and CRC-32C, and whether the job that wrote
//! them finished.
//!
//! - [`MANIFEST`] (`.xbeam-manifest` at the store's root) is set up with
//!   the store, saying `writing`, before any metadata. xarray and
//!   zarr-python ignore it.
//! - Each process that writes chunks appends one line per chunk, after the
//!   chunk file is whole, to its own log `.xbeam-manifest.<time>.<pid><n>.log`
//!   (written through to the kernel at once, so a killed process loses at
//!   most the line of the chunk it was writing).
//! - [`sync_store`](super::sync_store), which every job calls after its
//!   last chunk, folds the logs into the manifest, says `complete`, and
//!   replaces the file atomically (write, `fsync`, rename).
//!
//! A store whose manifest says `writing`, or that has logs, is incomplete:
//! [`manifest_status`] says so, and `xbeam info` with it. [`verify`](super::verify())
//! checks every recorded chunk's length and checksum, and tells a chunk
//! that was never written from one that was written and then removed.
//! A job run with `resume` ([`SetupOptions::resume`](super::SetupOptions::resume))
//! skips writing the chunks whose file already holds exactly the bytes it
//! would write.
//!
//! Lines are `<crc32c as 8 hex digits> <length> <key as a JSON string>`;
//! the manifest's first line is a JSON object
//! `{"xbeam_manifest": 1, "status": "writing" | "complete"}`, its entries
//! sorted by key.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::IoError;

/// The manifest's file name at the store's root.
pub const MANIFEST: &str = ".xbeam-manifest";

/// A chunk as recorded: its file's length and CRC-32C.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) len: u64,
    pub(crate) crc: u32,
}

impl Entry {
    pub(crate) fn of(bytes: &[u8]) -> Entry {
        Entry {
            len: bytes.len() as u64,
            crc: crc32c::crc32c(bytes),
        }
    }

    /// Whether the file at `path` holds the bytes this entry records: its
    /// length first, so that a file of another length is not read.
    pub(crate) fn matches_file(&self, path: &Path) -> bool {
        fs::metadata(path).is_ok_and(|m| m.len() == self.len)
            && Entry::of_file(path).as_ref() == Some(self)
    }

    /// The entry of the file at `path`, `None` if it cannot be read.
    /// Read in pieces, so a file of any length takes 256 kB.
    pub(crate) fn of_file(path: &Path) -> Option<Entry> {
        use std::io::Read;
        let meta = fs::metadata(path).ok()?;
        if !meta.is_file() {
            return None;
        }
        let mut file = fs::File::open(path).ok()?;
        let mut buf = vec![0u8; 256 << 10];
        let (mut crc, mut len) = (0u32, 0u64);
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    crc = crc32c::crc32c_append(crc, &buf[..n]);
                    len += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        Some(Entry { len, crc })
    }
}

/// Recorded chunks, compactly: each key's 64-bit hash with its entry,
/// sorted by hash (24 bytes a chunk, where a map of keys took about 100).
/// Two keys of one hash would share an entry: a resumed run then still
/// compares the file on disk with the bytes it would write, and `verify`
/// would call one of them corrupt, with odds of about 10^-6 for 10^7
/// chunks.
#[derive(Debug, Default)]
pub(crate) struct Index {
    items: Vec<(u64, Entry)>,
}

fn key_hash(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same in every process
    let mut h = std::hash::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// Sorts `v` by `key`, keeping of equal keys the last pushed.
fn sort_keep_last<T, K: Ord + ?Sized>(v: &mut Vec<T>, key: impl Fn(&T) -> &K) {
    v.sort_by(|a, b| key(a).cmp(key(b)));
    v.reverse();
    v.dedup_by(|a, b| key(a) == key(b));
    v.reverse();
}

impl Index {
    /// The entry recorded for `key`.
    pub(crate) fn get(&self, key: &str) -> Option<Entry> {
        let h = key_hash(key);
        self.items
            .binary_search_by_key(&h, |x| x.0)
            .ok()
            .map(|i| self.items[i].1)
    }
}

/// The most entries an [`Index`] holds: half the memory budget.
fn max_index_entries() -> usize {
    let half = super::bounded::read_limits().0 / 2;
    usize::try_from(half / std::mem::size_of::<(u64, Entry)>() as u64).unwrap_or(usize::MAX)
}

/// What a store's manifest says ([`manifest_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestStatus {
    /// Whether the job that wrote the store finished: the manifest says
    /// `complete` and no process's log is left unfolded.
    pub complete: bool,
    /// Chunks recorded as written (manifest and logs). Exact where the
    /// records fit half the memory budget's index; beyond it, the lines
    /// counted (a chunk a log records again counts twice; a complete
    /// store has no logs, so its count is exact).
    pub recorded: usize,
}

/// What the manifest of the store at `path` says, or `None` when the store
/// has none (it was not written by xbeam, or by a version before
/// manifests).
///
/// ```
/// let dir = tempfile::tempdir()?;
/// assert_eq!(xbeam_io::manifest_status(dir.path())?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn manifest_status(path: impl AsRef<Path>) -> Result<Option<ManifestStatus>, IoError> {
    let root = path.as_ref();
    let Some(lines) = recorded_lines(root)? else {
        return Ok(None);
    };
    if lines.saturating_sub(1) <= max_index_entries() as u64 {
        return Ok(indexed(root, lines)?.map(|(status, _)| status));
    }
    // too many to index within the budget: counted, not told apart (a key
    // a log records again counts twice; a complete store has no logs)
    let mut n = 0usize;
    let mut count = |_: String, _: Entry| {
        n += 1;
        Ok(())
    };
    let Some(complete) = read_manifest(root, &mut count)? else {
        return Ok(None);
    };
    let logs = read_logs(root, &mut count)?;
    Ok(Some(ManifestStatus {
        complete: complete && logs.is_empty(),
        recorded: n,
    }))
}

/// The lines of the manifest and logs of the store at `root` (the
/// manifest's header included), counted without parsing them; `None`
/// without a manifest.
fn recorded_lines(root: &Path) -> Result<Option<u64>, IoError> {
    use std::io::Read;
    let manifest = root.join(MANIFEST);
    if !manifest.is_file() {
        // a manifest that is not a file is refused by `read_manifest`
        return Ok(manifest.exists().then_some(0));
    }
    let mut total = 0u64;
    let mut buf = vec![0u8; 256 << 10];
    for path in std::iter::once(manifest).chain(log_paths(root)?) {
        let fail = |e: std::io::Error| IoError::file(path.display(), "cannot read the file", e);
        let meta = fs::metadata(&path).map_err(fail)?;
        require_file(&path, &meta, "an xbeam manifest or log file")?;
        let mut file = fs::File::open(&path).map_err(fail)?;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(fail(e)),
            };
            #[allow(clippy::naive_bytecount)] // vectorized by the compiler; no new crate
            let lines = buf[..n].iter().filter(|&&b| b == b'\n').count();
            total += lines as u64;
        }
    }
    Ok(Some(total))
}

/// What the manifest of the store at `root` says, and its entries with the
/// logs' lines (a later line for the same key wins), read once; `None`
/// without a manifest.
pub(crate) fn recorded(root: &Path) -> Result<Option<(ManifestStatus, Index)>, IoError> {
    // counted first, so that the index is allocated once, at its size
    match recorded_lines(root)? {
        Some(lines) => indexed(root, lines),
        None => Ok(None),
    }
}

/// [`recorded`], given the `lines` [`recorded_lines`] counted.
fn indexed(root: &Path, lines: u64) -> Result<Option<(ManifestStatus, Index)>, IoError> {
    let limit = max_index_entries();
    let too_many = |lines: u64| {
        IoError::store(
            root.display(),
            format!("the xbeam manifest and logs hold {lines} lines, more than the {limit} chunks half the memory budget indexes (24 bytes a chunk); raise --max-mem"),
        )
    };
    // (the manifest's header is not a record)
    let lines = lines.saturating_sub(1);
    if lines > limit as u64 {
        return Err(too_many(lines));
    }
    let mut items = Vec::with_capacity(usize::try_from(lines).unwrap_or(limit));
    let mut push = |key: String, e: Entry| {
        // (the files may have grown since they were counted)
        if items.len() >= limit {
            return Err(too_many(limit as u64 + 1));
        }
        items.push((key_hash(&key), e));
        Ok(())
    };
    let Some(complete) = read_manifest(root, &mut push)? else {
        return Ok(None);
    };
    let logs = read_logs(root, &mut push)?;
    sort_keep_last(&mut items, |x| &x.0);
    let status = ManifestStatus {
        complete: complete && logs.is_empty(),
        recorded: items.len(),
    };
    Ok(Some((status, Index { items })))
}

/// What [`read_manifest`] and [`read_logs`] call with each entry.
type Push<'a> = dyn FnMut(String, Entry) -> Result<(), IoError> + 'a;

fn bad(path: &Path, line: usize, what: &str) -> IoError {
    IoError::store(
        path.display(),
        format!("line {line} of the xbeam manifest is not {what}"),
    )
}

fn parse_line(path: &Path, n: usize, line: &str) -> Result<(String, Entry), IoError> {
    let mut parts = line.splitn(3, ' ');
    let (Some(crc), Some(len), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad(path, n, "'<crc32c> <length> <key>'"));
    };
    let crc = u32::from_str_radix(crc, 16).map_err(|_| bad(path, n, "a hex CRC-32C"))?;
    let len = len.parse().map_err(|_| bad(path, n, "a length"))?;
    let key: String = serde_json::from_str(key).map_err(|_| bad(path, n, "a JSON key"))?;
    Ok((key, Entry { len, crc }))
}

fn format_line(key: &str, e: Entry) -> String {
    let key = serde_json::to_string(key).expect("strings always serialize");
    format!("{:08x} {} {key}\n", e.crc, e.len)
}

/// Reads the manifest, calling `push` with each entry as it is read:
/// whether it says complete, `None` without one.
fn read_manifest(root: &Path, push: &mut Push<'_>) -> Result<Option<bool>, IoError> {
    let path = root.join(MANIFEST);
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(IoError::file(path.display(), "cannot read the file", e)),
    };
    require_file(&path, &meta, "the xbeam manifest file")?;
    let mut complete = None;
    for_each_line(&path, |n, line| {
        if n == 1 {
            let head: Option<serde_json::Value> = serde_json::from_str(line).ok();
            let head = head.ok_or_else(|| bad(&path, 1, "a JSON header"))?;
            complete = match head.get("status").and_then(serde_json::Value::as_str) {
                Some("complete") => Some(true),
                Some("writing") => Some(false),
                _ => {
                    return Err(bad(
                        &path,
                        1,
                        r#"a header with "status": "writing" or "complete""#,
                    ))
                }
            };
        } else {
            let (k, e) = parse_line(&path, n, line)?;
            push(k, e)?;
        }
        Ok(())
    })?;
    let complete = complete.ok_or_else(|| bad(&path, 1, "a JSON header"))?;
    Ok(Some(complete))
}

/// Fails unless `meta` (of `path`) is a regular file (a FIFO would block a
/// read forever, a device never end) of at most [`MAX_FILE`] bytes.
fn require_file(path: &Path, meta: &fs::Metadata, what: &str) -> Result<(), IoError> {
    if !meta.is_file() {
        return Err(IoError::store(
            path.display(),
            format!("expected {what}, found {}", super::store::file_kind(meta)),
        ));
    }
    if meta.len() > MAX_FILE {
        return Err(too_big(path, meta.len()));
    }
    Ok(())
}

/// The largest manifest or log read (about 15 million chunks).
const MAX_FILE: u64 = 1 << 30;

fn too_big(path: &Path, len: u64) -> IoError {
    IoError::store(
        path.display(),
        format!("expected an xbeam manifest file of at most 1 GiB, found {len} bytes"),
    )
}

/// Calls `f` with each whole line of the file at `path` and its number
/// (from 1), as it is read (a last line without its newline, which a
/// killed writer leaves, is dropped).
fn for_each_line(
    path: &Path,
    mut f: impl FnMut(usize, &str) -> Result<(), IoError>,
) -> Result<(), IoError> {
    use std::io::BufRead;
    let fail = |e: std::io::Error| IoError::file(path.display(), "cannot read the file", e);
    let file = fs::File::open(path).map_err(fail)?;
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    for n in 1.. {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(fail)?;
        if read == 0 || line.last() != Some(&b'\n') {
            break;
        }
        line.pop();
        f(n, &String::from_utf8_lossy(&line))?;
    }
    Ok(())
}

/// Whether `name` is the name of a file of the content manifest at a
/// store's root: [`MANIFEST`], a process's log
/// (`.xbeam-manifest.<time>.<pid><n>.log`), a sorted run of a fold
/// (`.xbeam-manifest.<pid>.<n>.run`) or a manifest being replaced
/// (`.xbeam-manifest.<pid>.tmp`).
///
/// ```
/// assert!(xbeam_io::is_manifest_file(".xbeam-manifest"));
/// assert!(xbeam_io::is_manifest_file(".xbeam-manifest.4711.0.log"));
/// assert!(xbeam_io::is_manifest_file(".xbeam-manifest.4711.3.run"));
/// assert!(!xbeam_io::is_manifest_file("notes.txt"));
/// ```
pub fn is_manifest_file(name: &str) -> bool {
    use super::store::digits;
    name == MANIFEST
        || is_log(name)
        || numbered(name, ".run")
        || name
            .strip_prefix(MANIFEST)
            .and_then(|r| r.strip_prefix('.'))
            .and_then(|r| r.strip_suffix(".tmp"))
            .is_some_and(digits)
}

/// Whether `name` is a log file's name: `.xbeam-manifest.<digits>.<digits>.log`.
pub(crate) fn is_log(name: &str) -> bool {
    numbered(name, ".log")
}

/// Whether `name` is `.xbeam-manifest.<digits>.<digits><suffix>`.
fn numbered(name: &str, suffix: &str) -> bool {
    name.strip_prefix(MANIFEST)
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_suffix(suffix))
        .is_some_and(|mid| {
            let mut p = mid.split('.');
            let digits = |s: Option<&str>| s.is_some_and(super::store::digits);
            digits(p.next()) && digits(p.next()) && p.next().is_none()
        })
}

/// The logs at `root`, calling `push` with their lines in name order
/// (the order they were started, see [`new_log`]). A
/// killed process may have left a last line cut short: it is dropped (its
/// chunk counts as not recorded, and is written again on resume).
fn read_logs(root: &Path, push: &mut Push<'_>) -> Result<Vec<PathBuf>, IoError> {
    let logs = log_paths(root)?;
    for log in &logs {
        let meta = fs::metadata(log)
            .map_err(|e| IoError::file(log.display(), "cannot read the file", e))?;
        require_file(log, &meta, "an xbeam manifest log file")?;
        for_each_line(log, |n, line| {
            let (k, e) = parse_line(log, n, line)?;
            push(k, e)
        })?;
    }
    Ok(logs)
}

/// The files at `root` whose names `keep` accepts, in name order.
fn files_named(root: &Path, keep: fn(&str) -> bool) -> Result<Vec<PathBuf>, IoError> {
    let list = fs::read_dir(root)
        .map_err(|e| IoError::file(root.display(), "cannot list the directory", e))?;
    let mut paths: Vec<PathBuf> = list
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(keep))
        .map(|e| e.path())
        .collect();
    paths.sort();
    Ok(paths)
}

/// The logs at `root`, in name order.
fn log_paths(root: &Path) -> Result<Vec<PathBuf>, IoError> {
    let mut logs = files_named(root, is_log)?;
    // logs of earlier versions (`<pid>.<n>`, whose first number is never
    // 20 digits) were started before any of this one's (`<time>.<pid><n>`)
    logs.sort_by_key(|p| (first_number(p).unwrap_or_default().len() == 20, p.clone()));
    Ok(logs)
}

/// Writes the manifest atomically: a temporary file, `fsync`, rename,
/// `fsync` of the directory. `entries` come sorted by key, each once.
fn write_manifest(
    root: &Path,
    complete: bool,
    entries: impl Iterator<Item = Result<(String, Entry), IoError>>,
) -> Result<(), IoError> {
    let path = root.join(MANIFEST);
    let tmp = root.join(format!("{MANIFEST}.{}.tmp", std::process::id()));
    let fail =
        |e: std::io::Error| IoError::file(path.display(), "cannot write the xbeam manifest", e);
    let status = if complete { "complete" } else { "writing" };
    let written = (|| {
        let mut f = std::io::BufWriter::new(fs::File::create(&tmp).map_err(fail)?);
        writeln!(f, "{{\"xbeam_manifest\": 1, \"status\": \"{status}\"}}").map_err(fail)?;
        for entry in entries {
            let (k, e) = entry?;
            f.write_all(format_line(&k, e).as_bytes()).map_err(fail)?;
        }
        let f = f.into_inner().map_err(|e| fail(e.into_error()))?;
        f.sync_all().map_err(fail)?;
        fs::rename(&tmp, &path).map_err(fail)?;
        fs::File::open(root)
            .and_then(|d| d.sync_all())
            .map_err(fail)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Entries sorted in memory before a fold spills them to a run file
/// (about 25 MB of them).
const RUN_ENTRIES: usize = 1 << 18;

/// Folds the logs into the manifest, which then says `complete` or
/// `writing`, and removes the logs. Memory stays bounded whatever the
/// number of chunks: entries are sorted in runs of [`RUN_ENTRIES`],
/// spilled beside the manifest when there are more, and merged.
fn fold(root: &Path, complete: bool) -> Result<(), IoError> {
    fold_in_runs(root, complete, RUN_ENTRIES)
}

fn fold_in_runs(root: &Path, complete: bool, run_entries: usize) -> Result<(), IoError> {
    // runs a killed fold left (one process folds a store at a time)
    for stale in files_named(root, |n| numbered(n, ".run"))? {
        if run_of_live_process(&stale) {
            continue;
        }
        fs::remove_file(&stale)
            .map_err(|e| IoError::file(stale.display(), "cannot remove the file", e))?;
    }
    let mut runs = Runs::default();
    let mut batch: Vec<(String, Entry)> = Vec::new();
    let result = (|| {
        let mut push = |k: String, e: Entry| {
            batch.push((k, e));
            if batch.len() >= run_entries {
                runs.spill(root, &mut batch)?;
            }
            Ok(())
        };
        let Some(_) = read_manifest(root, &mut push)? else {
            return Ok(());
        };
        let logs = read_logs(root, &mut push)?;
        if runs.paths.is_empty() {
            sort_keep_last(&mut batch, |x| x.0.as_str());
            write_manifest(root, complete, batch.drain(..).map(Ok))?;
        } else {
            runs.spill(root, &mut batch)?;
            write_manifest(root, complete, Merge::new(&runs.paths)?)?;
        }
        for log in logs {
            fs::remove_file(&log)
                .map_err(|e| IoError::file(log.display(), "cannot remove the log", e))?;
        }
        Ok(())
    })();
    for run in &runs.paths {
        let _ = fs::remove_file(run);
    }
    result
}

/// The first number in the name of the manifest file at `path`
/// (`.xbeam-manifest.<this>.…`).
fn first_number(path: &Path) -> Option<&str> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix(MANIFEST))
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.split('.').next())
}

/// Whether the run file at `path` (`.xbeam-manifest.<pid>.<n>.run`) may
/// be in use: its process is this one or alive on this machine (on a
/// cluster, another process may be folding the same store). Where that
/// cannot be told, only other processes' runs count as stale.
fn run_of_live_process(path: &Path) -> bool {
    let pid = first_number(path).and_then(|p| p.parse::<u32>().ok());
    match pid {
        Some(p) if p == std::process::id() => false,
        Some(p) if cfg!(target_os = "linux") => Path::new("/proc").join(p.to_string()).exists(),
        _ => false,
    }
}

/// The sorted run files of a fold, oldest first.
#[derive(Default)]
struct Runs {
    paths: Vec<PathBuf>,
}

impl Runs {
    /// Sorts `batch` (the last of a key kept), writes it to a new run file
    /// (`.xbeam-manifest.<pid>.<n>.run`) and empties it.
    fn spill(&mut self, root: &Path, batch: &mut Vec<(String, Entry)>) -> Result<(), IoError> {
        sort_keep_last(batch, |x| x.0.as_str());
        let n = LOGS.fetch_add(1, Ordering::Relaxed);
        let path = root.join(format!("{MANIFEST}.{}.{n}.run", std::process::id()));
        self.paths.push(path.clone());
        let fail = |e: std::io::Error| IoError::file(path.display(), "cannot write the file", e);
        let mut f = std::io::BufWriter::new(fs::File::create(&path).map_err(fail)?);
        for (k, e) in batch.drain(..) {
            f.write_all(format_line(&k, e).as_bytes()).map_err(fail)?;
        }
        f.flush().map_err(fail)
    }
}

/// The merge of sorted run files: each key once, from the newest run that
/// has it.
struct Merge {
    readers: Vec<(PathBuf, std::io::BufReader<fs::File>, usize)>,
    /// Each run's next entry.
    heads: Vec<Option<Entry>>,
    /// The runs' next keys, smallest first (the newest run first among
    /// equal keys).
    heap: std::collections::BinaryHeap<std::cmp::Reverse<(String, std::cmp::Reverse<usize>)>>,
}

impl Merge {
    fn new(paths: &[PathBuf]) -> Result<Merge, IoError> {
        let mut m = Merge {
            readers: Vec::new(),
            heads: vec![None; paths.len()],
            heap: std::collections::BinaryHeap::new(),
        };
        for (i, path) in paths.iter().enumerate() {
            let file = fs::File::open(path)
                .map_err(|e| IoError::file(path.display(), "cannot read the file", e))?;
            m.readers
                .push((path.clone(), std::io::BufReader::new(file), 0));
            m.advance(i)?;
        }
        Ok(m)
    }

    /// Reads run `i`'s next entry onto the heap.
    fn advance(&mut self, i: usize) -> Result<(), IoError> {
        use std::io::BufRead;
        let (path, reader, n) = &mut self.readers[i];
        let mut line = String::new();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| IoError::file(path.display(), "cannot read the file", e))?;
        if read == 0 {
            return Ok(());
        }
        *n += 1;
        let (k, e) = parse_line(path, *n, line.trim_end_matches('\n'))?;
        self.heads[i] = Some(e);
        self.heap.push(std::cmp::Reverse((k, std::cmp::Reverse(i))));
        Ok(())
    }

    fn next_entry(&mut self) -> Result<Option<(String, Entry)>, IoError> {
        let Some(std::cmp::Reverse((key, std::cmp::Reverse(i)))) = self.heap.pop() else {
            return Ok(None);
        };
        let entry = self.heads[i].take().expect("a run on the heap has a head");
        self.advance(i)?;
        // older runs' entries for the same key are dropped
        while let Some(std::cmp::Reverse((k, std::cmp::Reverse(j)))) = self.heap.peek() {
            if *k != key {
                break;
            }
            let j = *j;
            self.heap.pop();
            self.heads[j] = None;
            self.advance(j)?;
        }
        Ok(Some((key, entry)))
    }
}

impl Iterator for Merge {
    type Item = Result<(String, Entry), IoError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

/// One process's record of the chunks it writes to one store.
#[derive(Debug)]
pub(crate) struct Ledger {
    root: PathBuf,
    log: Mutex<Option<fs::File>>,
    /// When resuming: what was recorded before this run.
    prior: Mutex<Option<Index>>,
    /// Chunks a resumed run found already written.
    skipped: AtomicU64,
}

/// Log files opened by this process, numbering them.
static LOGS: AtomicU64 = AtomicU64::new(0);

fn ledgers() -> &'static Mutex<HashMap<PathBuf, Arc<Ledger>>> {
    static L: OnceLock<Mutex<HashMap<PathBuf, Arc<Ledger>>>> = OnceLock::new();
    L.get_or_init(Mutex::default)
}

fn registry_key(root: &Path) -> PathBuf {
    fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf())
}

impl Ledger {
    fn new(root: &Path, prior: Option<Index>) -> Ledger {
        Ledger {
            root: root.to_path_buf(),
            log: Mutex::new(None),
            prior: Mutex::new(prior),
            skipped: AtomicU64::new(0),
        }
    }

    /// The ledger of the store at `root`: the one this process set up, or
    /// a new one when the store has a manifest; `None` for a store without.
    pub(crate) fn of(root: &Path) -> Option<Arc<Ledger>> {
        let key = registry_key(root);
        let mut all = ledgers()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(l) = all.get(&key) {
            return Some(l.clone());
        }
        if !root.join(MANIFEST).is_file() {
            return None;
        }
        let l = Arc::new(Ledger::new(root, None));
        all.insert(key, l.clone());
        Some(l)
    }

    /// Whether a resumed run may skip writing `value` at `key`: it was
    /// recorded with these bytes, and the file at `path` holds them.
    pub(crate) fn already(&self, key: &str, value: &Entry, path: &Path) -> bool {
        // copied out, so that the file is read without holding the lock
        // (every writing thread asks)
        let recorded = self
            .prior
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .and_then(|p| p.get(key));
        let done = recorded.as_ref() == Some(value) && value.matches_file(path);
        if done {
            self.skipped.fetch_add(1, Ordering::Relaxed);
        }
        done
    }

    /// Appends `key`'s line to this process's log (opened on first use).
    pub(crate) fn record(&self, key: &str, entry: Entry) -> std::io::Result<()> {
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if log.is_none() {
            *log = Some(new_log(&self.root)?);
        }
        let file = log.as_mut().expect("opened above");
        file.write_all(format_line(key, entry).as_bytes())
    }
}

/// A new log file of this process at `root`, never one that exists:
/// `.xbeam-manifest.<time>.<pid><n>.log`, the time (microseconds since
/// 1970, 20 digits) first, so that logs sort in the order they were
/// started and a later run's record of a chunk wins over an earlier one's
/// when both are folded at once; the pid and a counter make the name
/// unique, and a name taken (processes of one pid on machines sharing the
/// filesystem) moves the counter on.
fn new_log(root: &Path) -> std::io::Result<fs::File> {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    loop {
        let n = LOGS.fetch_add(1, Ordering::Relaxed);
        let name = format!("{MANIFEST}.{micros:020}.{}{n:06}.log", std::process::id());
        match fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(root.join(name))
        {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            other => return other,
        }
    }
}

/// Starts the manifest of a new store at `root` (which exists and is
/// empty but for what the caller cleared): it says `writing`.
pub(crate) fn start(root: &Path) -> Result<(), IoError> {
    write_manifest(root, false, std::iter::empty())?;
    let l = Arc::new(Ledger::new(root, None));
    ledgers()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(registry_key(root), l);
    Ok(())
}

/// Fails unless the store at `root` has a manifest (can be resumed).
pub(crate) fn require(root: &Path) -> Result<(), IoError> {
    if read_manifest(root, &mut |_, _| Ok(()))?.is_none() {
        return Err(IoError::store(
            root.display(),
            format!("cannot resume: the store has no {MANIFEST} (only a store that xbeam set up can be resumed; pass --overwrite to replace it)"),
        ));
    }
    Ok(())
}

/// Prepares to resume writing the store at `root`, whose manifest the
/// caller has [`require`]d: folds what earlier runs recorded (the manifest
/// then says `writing`), removes chunk files that a killed write left
/// partial, and registers a ledger that lets writes of the same bytes be
/// skipped.
pub(crate) fn resume(root: &Path) -> Result<(), IoError> {
    fold(root, false)?;
    remove_partials(root)?;
    let prior = recorded(root)?.map(|(_, index)| index);
    let l = Arc::new(Ledger::new(root, prior));
    ledgers()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(registry_key(root), l);
    Ok(())
}

fn remove_partials(dir: &Path) -> Result<(), IoError> {
    let list = fs::read_dir(dir)
        .map_err(|e| IoError::file(dir.display(), "cannot list the directory", e))?;
    for entry in list.filter_map(Result::ok) {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            remove_partials(&path)?;
        } else if kind.is_file()
            && entry
                .file_name()
                .to_str()
                .is_some_and(|n| super::partial_of(n).is_some())
        {
            fs::remove_file(&path).map_err(|e| {
                IoError::file(path.display(), "cannot remove the partial chunk file", e)
            })?;
        }
    }
    Ok(())
}

fn skipped_counts() -> &'static Mutex<HashMap<PathBuf, u64>> {
    static S: OnceLock<Mutex<HashMap<PathBuf, u64>>> = OnceLock::new();
    S.get_or_init(Mutex::default)
}

/// How many chunk writes the last resumed run on the store at `path`
/// skipped because the chunk's file already held the same bytes (counted
/// when [`sync_store`](super::sync_store) commits it; read once).
///
/// ```
/// let dir = tempfile::tempdir()?;
/// assert_eq!(xbeam_io::skipped_on_resume(dir.path()), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn skipped_on_resume(path: impl AsRef<Path>) -> u64 {
    skipped_counts()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&registry_key(path.as_ref()))
        .unwrap_or(0)
}

/// Commits the manifest of the store at `root`, if it has one: the logs
/// are folded in and it says `complete`. Called by
/// [`sync_store`](super::sync_store) after the flush.
pub(crate) fn commit(root: &Path) -> Result<(), IoError> {
    let ledger = ledgers()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&registry_key(root));
    let mut skipped: u64 = 0;
    if let Some(l) = &ledger {
        // later writes through this ledger start a new log
        *l.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        *l.prior
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        skipped = l.skipped.swap(0, Ordering::Relaxed);
    }
    if skipped > 0 {
        *skipped_counts()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(registry_key(root))
            .or_default() += skipped;
    }
    if root.join(MANIFEST).is_file() {
        fold(root, true)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_are_recognised() {
        assert!(is_log(".xbeam-manifest.12.0.log"));
        assert!(!is_log(".xbeam-manifest.12.log"));
        assert!(!is_log(".xbeam-manifest.a.0.log"));
        assert!(!is_log(".xbeam-manifest"));
    }

    #[test]
    fn logs_sort_in_the_order_they_were_started() {
        let dir = tempfile::tempdir().unwrap();
        let mut started = Vec::new();
        for _ in 0..3 {
            drop(new_log(dir.path()).unwrap());
            let mut now: Vec<PathBuf> = log_paths(dir.path()).unwrap();
            now.retain(|p| !started.contains(p));
            assert_eq!(now.len(), 1, "{now:?}");
            started.push(now.remove(0));
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(log_paths(dir.path()).unwrap(), started);
        // a log of an earlier version (`<pid>.<n>`) was started before all
        let old = dir.path().join(".xbeam-manifest.98765.0.log");
        fs::write(&old, "").unwrap();
        let mut want = vec![old];
        want.extend(started);
        assert_eq!(log_paths(dir.path()).unwrap(), want);
    }

    #[test]
    fn lines_round_trip_any_key() {
        let e = Entry::of(b"hello");
        let key = "odd name/with \"quotes\"\nand newline/c/0";
        let line = format_line(key, e);
        assert_eq!(line.matches('\n').count(), 1);
        let (k, back) = parse_line(Path::new("m"), 1, line.trim_end()).unwrap();
        assert_eq!((k.as_str(), back), (key, e));
    }

    #[test]
    fn a_cut_last_log_line_is_dropped_and_commit_folds() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_manifest(root, false, std::iter::empty()).unwrap();
        let a = format_line("t/c/0", Entry::of(b"a"));
        let b = format_line("t/c/1", Entry::of(b"b"));
        fs::write(
            root.join(".xbeam-manifest.7.0.log"),
            format!("{a}{}", &b[..5]),
        )
        .unwrap();
        let s = manifest_status(root).unwrap().unwrap();
        assert_eq!(
            s,
            ManifestStatus {
                complete: false,
                recorded: 1
            }
        );
        commit(root).unwrap();
        let s = manifest_status(root).unwrap().unwrap();
        assert_eq!(
            s,
            ManifestStatus {
                complete: true,
                recorded: 1
            }
        );
        assert!(!root.join(".xbeam-manifest.7.0.log").exists());
        assert_eq!(
            recorded(root).unwrap().unwrap().1.get("t/c/0"),
            Some(Entry::of(b"a"))
        );
    }

    #[test]
    fn a_fold_in_runs_keeps_each_keys_last_entry_sorted() {
        // entries spread over the manifest and three logs, several keys
        // written again by later logs; folded in runs of 3 entries (many
        // run files merged) and in one run, the manifests are the same
        let fold_with = |run_entries: usize| {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            let old = (0..10).map(|i| Ok((format!("v/c/{i}"), Entry::of(b"old"))));
            write_manifest(root, false, old).unwrap();
            let mut expected = std::collections::BTreeMap::new();
            for i in 0..10 {
                expected.insert(format!("v/c/{i}"), Entry::of(b"old"));
            }
            for (log, keys) in [(0, 5..17), (1, 8..12), (2, 15..30)] {
                let mut text = String::new();
                for i in keys.rev() {
                    let e = Entry::of(format!("{log}-{i}").as_bytes());
                    text.push_str(&format_line(&format!("v/c/{i}"), e));
                    expected.insert(format!("v/c/{i}"), e);
                }
                fs::write(root.join(format!(".xbeam-manifest.9.{log}.log")), text).unwrap();
            }
            fold_in_runs(root, true, run_entries).unwrap();
            let names: Vec<String> = fs::read_dir(root)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            assert_eq!(names, vec![MANIFEST.to_owned()], "logs and runs removed");
            let (status, index) = recorded(root).unwrap().unwrap();
            assert_eq!(status.recorded, expected.len());
            assert!(status.complete);
            for (k, e) in &expected {
                assert_eq!(index.get(k), Some(*e), "{k}");
            }
            assert_eq!(index.get("v/c/30"), None);
            let text = fs::read_to_string(root.join(MANIFEST)).unwrap();
            let keys: Vec<String> = text
                .lines()
                .skip(1)
                .map(|l| parse_line(root, 0, l).unwrap().0)
                .collect();
            let sorted: Vec<String> = expected.keys().cloned().collect();
            assert_eq!(keys, sorted);
            text
        };
        assert_eq!(fold_with(3), fold_with(RUN_ENTRIES));
    }

    #[test]
    fn a_failed_fold_leaves_no_runs_and_stale_runs_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_manifest(root, false, std::iter::empty()).unwrap();
        let run_names = || -> Vec<String> {
            fs::read_dir(root)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| numbered(n, ".run"))
                .collect()
        };
        // a run a killed fold left
        fs::write(root.join(".xbeam-manifest.3999999999.9.run"), "junk\n").unwrap();
        let mut text = String::new();
        for i in 0..10 {
            text.push_str(&format_line(&format!("v/c/{i}"), Entry::of(b"x")));
        }
        text.push_str("not a line\n");
        fs::write(root.join(".xbeam-manifest.7.0.log"), text).unwrap();
        let e = fold_in_runs(root, true, 3).unwrap_err().to_string();
        assert!(e.contains("line 11"), "{e}");
        assert_eq!(run_names(), Vec::<String>::new());
        // the log kept, the manifest as it was
        assert!(root.join(".xbeam-manifest.7.0.log").exists());
        assert!(!manifest_status(root).is_ok_and(|s| s.is_some_and(|s| s.complete)));
    }

    #[test]
    fn a_bad_manifest_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(MANIFEST),
            "{\"status\": \"complete\"}\nzz 1 \"k\"\n",
        )
        .unwrap();
        let e = manifest_status(dir.path()).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("CRC-32C"), "{e}");
    }
}
