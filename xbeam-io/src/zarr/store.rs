//! The filesystem store every xbeam array reads and writes through, and
//! [`sync_store`], which makes a finished store durable.
//!
//! It is zarrs' `FilesystemStore` but for how chunks are written:
//!
//! - **No `fsync` per chunk.** zarrs calls `fsync` after every chunk file
//!   it writes; on this project's machines that turned a 1 GB write of
//!   1 MB files from 0.6 s into 5.2 s. xarray, zarr-python and dask do not
//!   `fsync` at all. xbeam flushes the whole store once, with
//!   [`sync_store`], after a job's last chunk and before it reports
//!   success: a finished job is as durable as before, and a write-back
//!   error still fails it.
//! - **Chunks from 256 KiB up are written with `O_DIRECT`**, past the page
//!   cache, through each thread's reused 1 MiB aligned buffer. A job
//!   rarely reads its output back (a statistic's pencil pass does, from
//!   disk), and caching it costs fresh memory for every page — on a
//!   virtual machine that hands free memory back to its host (this
//!   project's do), that was most of a large rechunk's time (4 GB store,
//!   pancake → pencil at `--max-mem 256MB`: 8.4 s buffered, 5.8 s direct;
//!   1 GB: 2.8 → 1.9 s with both changes). It also leaves other programs'
//!   cache alone. Where the filesystem refuses `O_DIRECT` (`EINVAL`: tmpfs
//!   before Linux 6.6, some FUSE filesystems) chunks are written buffered
//!   from then on; `XBEAM_DIRECT_IO=0` turns it off (for a network
//!   filesystem where every direct write is a round trip).
//!
//! What the flush does not cover: `syncfs` reports write-back errors from
//! Linux 5.8 on; it flushes the filesystem of the store's root only (not
//! arrays symlinked elsewhere); on a cluster, the engine's flush runs in
//! one process (call [`sync_store`] in each after the run when their
//! writes go to different machines' disks).
//!
//! A chunk is written to `<key>.<pid>.<n>.xbeam-partial` and renamed when whole, so
//! a process killed while writing leaves the chunk absent (which
//! [`verify`](super::verify()) finds), never short. A chunk whose bytes
//! were later damaged on disk is not found: that needs a content manifest,
//! which is not built yet.

use std::fs;
use std::path::Path;

use zarrs::filesystem::FilesystemStore;
use zarrs::storage::byte_range::{ByteRange, ByteRangeIterator};
use zarrs::storage::{
    Bytes, ListableStorageTraits, MaybeBytesIterator, OffsetBytesIterator, ReadableStorageTraits,
    StorageError, StoreKey, StoreKeys, StoreKeysPrefixes, StorePrefix, WritableStorageTraits,
};

use super::manifest::{self, Entry, Ledger};
use crate::IoError;

/// A local directory as a Zarr store (see the module docs).
#[derive(Debug)]
pub(crate) struct Store {
    inner: FilesystemStore,
    root: std::path::PathBuf,
    /// The store's content manifest, if it has one: every chunk written is
    /// recorded there. Looked up at the first write, so that opening a
    /// store to read it registers nothing.
    ledger: std::sync::OnceLock<Option<std::sync::Arc<Ledger>>>,
}

/// What a path that is not a regular file is, for messages.
pub(crate) fn file_kind(meta: &fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

impl Store {
    /// The store rooted at `path`.
    pub(crate) fn new(path: &Path) -> Result<Store, IoError> {
        FilesystemStore::new(path)
            .map(|inner| Store {
                inner,
                root: path.to_path_buf(),
                ledger: std::sync::OnceLock::new(),
            })
            .map_err(|e| IoError::zarr(path.display(), "cannot open the store", e))
    }
}

impl ReadableStorageTraits for Store {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        // a FIFO would block the read forever, a device never end: a chunk
        // is a regular file or nothing
        let path = self.inner.key_to_fspath(key);
        let Ok(meta) = fs::metadata(&path) else {
            return self.inner.get_partial_many(key, byte_ranges);
        };
        if !meta.is_file() {
            return Err(StorageError::Other(format!(
                "{}: expected a chunk file, found {}",
                path.display(),
                file_kind(&meta)
            )));
        }
        let limit = super::bounded::read_limits().0;
        if meta.len() <= limit {
            return self.inner.get_partial_many(key, byte_ranges);
        }
        // a file this large is read only in parts that fit (a shard's
        // chunks), never whole
        let ranges: Vec<_> = byte_ranges.collect();
        let wanted = ranges.iter().fold(0u64, |n, r| {
            let len = match *r {
                ByteRange::FromStart(offset, None) => meta.len().saturating_sub(offset),
                ByteRange::FromStart(_, Some(len)) | ByteRange::Suffix(len) => len,
            };
            n.saturating_add(len)
        });
        if wanted > limit {
            return Err(StorageError::Other(format!(
                "{}: expected to read at most {limit} bytes (the memory budget) of a chunk file, found a read of {wanted} bytes of its {} (a corrupt chunk, or raise --max-mem)",
                path.display(),
                meta.len()
            )));
        }
        self.inner
            .get_partial_many(key, Box::new(ranges.into_iter()))
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size_key(key)
    }

    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

impl ListableStorageTraits for Store {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        self.inner.list()
    }

    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.inner.list_prefix(prefix)
    }

    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.inner.list_dir(prefix)
    }

    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.inner.size_prefix(prefix)
    }
}

impl WritableStorageTraits for Store {
    /// Writes the whole value to `<key>.<pid>.<n>.xbeam-partial`, then renames it to
    /// the key's file, so that a chunk file is whole or absent, never
    /// short (a killed write leaves only the partial file, which readers
    /// ignore and `verify` reports as the chunk missing). Written with
    /// `O_DIRECT` from [`DIRECT_MIN`] bytes up and without waiting for the
    /// disk (the inner store's file-handle cache is off, so no cached
    /// handle can go stale).
    fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        let path = self.inner.key_to_fspath(key);
        if let Some(parent) = path.parent() {
            if !parent.is_dir() {
                fs::create_dir_all(parent)?;
            }
        }
        // named for this write: two chunks of a dataset may both hold a
        // variable without their split dimension and write its chunk at
        // once (the same bytes), each through its own file
        let ledger = self.ledger.get_or_init(|| Ledger::of(&self.root));
        let entry = ledger.as_ref().map(|_| Entry::of(&value));
        if let (Some(ledger), Some(e)) = (ledger, &entry) {
            if ledger.already(key.as_str(), e, &path) {
                return Ok(());
            }
        }
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key_name = key.as_str().rsplit('/').next().unwrap_or_default();
        let partial = path.with_file_name(partial_name(key_name, std::process::id(), n));
        let written = (|| {
            if !(value.len() >= DIRECT_MIN && direct_io() && write_direct(&partial, &value)?) {
                fs::write(&partial, &value)?;
            }
            fs::rename(&partial, &path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&partial);
        }
        written?;
        if let (Some(ledger), Some(e)) = (ledger, entry) {
            ledger.record(key.as_str(), e)?;
        }
        Ok(())
    }

    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator<'_>,
    ) -> Result<(), StorageError> {
        self.inner.set_partial_many(key, offset_values)
    }

    fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.inner.erase(key)
    }

    fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.inner.erase_prefix(prefix)
    }

    fn supports_set_partial(&self) -> bool {
        self.inner.supports_set_partial()
    }
}

/// The end of a chunk file's name while it is being written:
/// `<key>.<pid>.<n>.xbeam-partial`, renamed to the key's name once whole.
pub const PARTIAL_SUFFIX: &str = ".xbeam-partial";

/// The partial file name of write `n` by process `pid` of a chunk whose
/// file is named `key`.
fn partial_name(key: &str, pid: u32, n: u64) -> String {
    format!("{key}.{pid}.{n}{PARTIAL_SUFFIX}")
}

/// The chunk file name a partial file `name` was being written for
/// (`0.0.0.4711.3.xbeam-partial` → `0.0.0`), or `None` when `name` is not
/// a partial file's.
///
/// ```
/// assert_eq!(xbeam_io::partial_of("0.0.0.4711.3.xbeam-partial"), Some("0.0.0"));
/// assert_eq!(xbeam_io::partial_of("1.xbeam-partial"), None);
/// assert_eq!(xbeam_io::partial_of("0.0.0"), None);
/// ```
pub fn partial_of(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(PARTIAL_SUFFIX)?;
    let mut parts = stem.rsplitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(n), Some(pid), Some(key)) if digits(n) && digits(pid) => Some(key),
        _ => None,
    }
}

/// Whether `s` is a non-empty run of ASCII digits (a pid or a counter in
/// the names of partial and manifest log files).
pub(crate) fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Chunk writes started by this process, numbering their partial files.
static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Values from this size on are written with `O_DIRECT`.
const DIRECT_MIN: usize = 256 << 10;
/// The alignment `O_DIRECT` needs (the largest logical block size).
const ALIGN: usize = 4096;
/// Bytes copied into the aligned buffer per write.
const PIECE: usize = 1 << 20;

/// Whether chunks may be written with `O_DIRECT`: not when
/// `XBEAM_DIRECT_IO=0` says so, nor once a filesystem refused it (then
/// every later chunk would pay a failed attempt).
fn direct_io() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    !REFUSED.load(std::sync::atomic::Ordering::Relaxed)
        && *ON.get_or_init(|| std::env::var("XBEAM_DIRECT_IO").map_or(true, |v| v.trim() != "0"))
}

/// Set when a filesystem refused `O_DIRECT`.
static REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

thread_local! {
    /// Each writing thread's aligned buffer, made once.
    static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Writes `value` to `path` with `O_DIRECT`, through a page-aligned buffer
/// of one [`PIECE`] (each piece padded to the alignment, the file then cut
/// to the value's length; safe code cannot ask the allocator for
/// alignment, so the buffer is over-allocated and offset). Returns
/// `false`, for the caller to write the file buffered, where the
/// filesystem refuses `O_DIRECT` (`EINVAL`, when opening or writing).
#[cfg(target_os = "linux")]
fn write_direct(path: &Path, value: &[u8]) -> std::io::Result<bool> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let refused = |e: &std::io::Error| {
        let no = e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error());
        if no {
            REFUSED.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        no
    };
    let flags = rustix::fs::OFlags::DIRECT.bits();
    let mut file = match fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(flags.cast_signed())
        .open(path)
    {
        Ok(f) => f,
        Err(e) if refused(&e) => return Ok(false),
        Err(e) => return Err(e),
    };
    BUFFER.with_borrow_mut(|buf| {
        if buf.len() < PIECE + ALIGN {
            buf.resize(PIECE + ALIGN, 0);
        }
        let at = buf.as_ptr().align_offset(ALIGN);
        let aligned = &mut buf[at..at + PIECE];
        for piece in value.chunks(PIECE) {
            let n = piece.len().next_multiple_of(ALIGN);
            aligned[..piece.len()].copy_from_slice(piece);
            aligned[piece.len()..n].fill(0);
            match file.write_all(&aligned[..n]) {
                Err(e) if refused(&e) => return Ok(false),
                other => other?,
            }
        }
        file.set_len(value.len() as u64)?;
        Ok(true)
    })
}

#[cfg(not(target_os = "linux"))]
fn write_direct(_path: &Path, _value: &[u8]) -> std::io::Result<bool> {
    Ok(false)
}

/// Bytes available to this user on the filesystem that holds `path` (or,
/// where `path` does not exist yet, its nearest existing ancestor); `None`
/// where the platform cannot tell.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let free = xbeam_io::free_space(dir.path().join("not/yet/there.zarr"))?;
/// assert!(free.is_none_or(|n| n > 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn free_space(path: impl AsRef<Path>) -> Result<Option<u64>, IoError> {
    let path = path.as_ref();
    let absolute = std::path::absolute(path)
        .map_err(|e| IoError::file(path.display(), "cannot resolve the path", e))?;
    let mut at = absolute.as_path();
    while !at.exists() {
        match at.parent() {
            Some(p) => at = p,
            None => return Ok(None),
        }
    }
    available(at)
        .map_err(|e| IoError::file(at.display(), "cannot read the filesystem's free space", e))
}

#[cfg(target_os = "linux")]
fn available(path: &Path) -> std::io::Result<Option<u64>> {
    let v = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    Ok(Some(v.f_bavail.saturating_mul(v.f_frsize)))
}

#[cfg(not(target_os = "linux"))]
fn available(_path: &Path) -> std::io::Result<Option<u64>> {
    Ok(None)
}

/// Makes everything written to the store at `path` durable: one `syncfs`
/// of its filesystem on Linux (every file's `fsync` elsewhere). Every
/// xbeam job that writes a store calls it after its last chunk and before
/// it reports success; call it yourself after writing with
/// [`ZarrSink::write_chunk`](super::ZarrSink::write_chunk) directly. A
/// write-back error (a full or failing disk) is returned here. A store
/// with a content manifest then has it committed: the chunks recorded
/// since are folded in and it says the store is complete.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// xbeam_io::sync_store(dir.path())?;
/// assert!(xbeam_io::sync_store(dir.path().join("missing")).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn sync_store(path: impl AsRef<Path>) -> Result<(), IoError> {
    let path = path.as_ref();
    let fail =
        |e: std::io::Error| IoError::file(path.display(), "cannot flush the store to disk", e);
    let dir = fs::File::open(path).map_err(fail)?;
    sync_fs(path, &dir).map_err(fail)?;
    manifest::commit(path)
}

#[cfg(target_os = "linux")]
fn sync_fs(_path: &Path, dir: &fs::File) -> std::io::Result<()> {
    rustix::fs::syncfs(dir).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn sync_fs(path: &Path, dir: &fs::File) -> std::io::Result<()> {
    for entry in fs::read_dir(path)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_fs(&entry.path(), &fs::File::open(entry.path())?)?;
        } else {
            fs::File::open(entry.path())?.sync_all()?;
        }
    }
    dir.sync_all()
}
