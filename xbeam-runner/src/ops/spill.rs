//! [`Groups`]: the values of a group-by-key, held in memory up to a byte
//! budget and spilled to sorted run files beyond it, then merged.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::metrics::Counters;
use crate::pipeline::Data;
use crate::RunError;

static RUN_ID: AtomicU64 = AtomicU64::new(0);

/// Why spilling failed: what was being done, and the IO error when there
/// was one (kept as the run error's source, so a full disk says so).
#[derive(Debug)]
pub(crate) struct SpillFailure {
    message: String,
    io: Option<std::io::Error>,
}

impl SpillFailure {
    fn io(message: String, e: std::io::Error) -> SpillFailure {
        SpillFailure {
            message,
            io: Some(e),
        }
    }

    /// A spilled group's key, deserialized.
    pub(crate) fn decode_key<K: Data>(bytes: &[u8]) -> Result<K, SpillFailure> {
        bincode::deserialize(bytes)
            .map_err(|e| SpillFailure::bincode("cannot read back a spilled key".into(), *e))
    }

    /// A (de)serialization failure: its IO error, or its own message.
    fn bincode(message: String, e: bincode::ErrorKind) -> SpillFailure {
        match e {
            bincode::ErrorKind::Io(io) => SpillFailure::io(message, io),
            other => SpillFailure {
                message: format!("{message}: {other}"),
                io: None,
            },
        }
    }

    /// The run error of the transform `name`.
    pub(crate) fn into_run_error(self, name: &str) -> RunError {
        RunError::Spill {
            message: format!("{name}: {}", self.message),
            io: self.io.map(Arc::new),
        }
    }
}

/// One group: the key's bytes and its values.
type Group<V> = (Vec<u8>, Vec<V>);

/// Groups keyed by the key's serialized bytes.
pub(crate) struct Groups<V> {
    mem: BTreeMap<Vec<u8>, Vec<V>>,
    bytes: usize,
    budget: usize,
    dir: PathBuf,
    runs: Vec<PathBuf>,
    /// Values per key already spilled (tracked when asked: when counts are
    /// expected, or a fold needs [`Groups::holds`]).
    spilled: HashMap<Vec<u8>, usize>,
    track: bool,
    counters: Arc<Counters>,
    merge: Option<Merge<V>>,
}

/// One sorted run: records `(key bytes, values)` in key order. The merge
/// reads a record's key first and its values only when that key's group is
/// handed out, so it holds one group at a time however many runs there are
/// (reading every run's next record at once held most of what was spilled
/// when groups were as large as the budget).
struct Run {
    reader: BufReader<File>,
    left: u64,
}

impl Run {
    /// The next record's key (its values come next in the file).
    fn next_key(&mut self) -> Result<Option<Vec<u8>>, SpillFailure> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        bincode::deserialize_from(&mut self.reader)
            .map(Some)
            .map_err(|e| SpillFailure::bincode("cannot read back a spill file".into(), *e))
    }

    /// The values of the record whose key was read last.
    fn values<V: Data>(&mut self) -> Result<Vec<V>, SpillFailure> {
        bincode::deserialize_from(&mut self.reader)
            .map_err(|e| SpillFailure::bincode("cannot read back a spill file".into(), *e))
    }
}

impl<V: Data> Groups<V> {
    pub(crate) fn new(
        budget: usize,
        dir: PathBuf,
        counters: Arc<Counters>,
        track: bool,
    ) -> Groups<V> {
        Groups {
            track,
            mem: BTreeMap::new(),
            bytes: 0,
            budget,
            dir,
            runs: Vec::new(),
            spilled: HashMap::new(),
            counters,
            merge: None,
        }
    }

    /// Whether values of the key `key` are held or were spilled (spilled
    /// keys are known only when tracked).
    pub(crate) fn holds(&self, key: &[u8]) -> bool {
        self.mem.contains_key(key) || self.spilled.contains_key(key)
    }

    /// The bytes held in memory.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Changes the budget (what is folded beside the groups takes its
    /// share); the next value added beyond it spills.
    pub(crate) fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
    }

    /// Adds a value; returns the whole group when `expect` says it is
    /// complete (and none of it was spilled).
    pub(crate) fn add(
        &mut self,
        key: Vec<u8>,
        value: V,
        expect: Option<usize>,
    ) -> Result<Option<Vec<V>>, SpillFailure> {
        let size = value.byte_size() + key.len();
        if let Some(n) = expect {
            let on_disk = self.spilled.get(&key).copied().unwrap_or(0);
            let held = self.mem.get(&key).map_or(0, Vec::len);
            if on_disk == 0 && held + 1 >= n {
                let mut values = self.mem.remove(&key).unwrap_or_default();
                self.bytes -= values
                    .iter()
                    .map(|v| v.byte_size() + key.len())
                    .sum::<usize>();
                values.push(value);
                return Ok(Some(values));
            }
        }
        self.bytes += size;
        self.mem.entry(key).or_default().push(value);
        if self.bytes > self.budget {
            self.spill()?;
        }
        Ok(None)
    }

    fn spill(&mut self) -> Result<(), SpillFailure> {
        let id = RUN_ID.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("run-{id}.bin"));
        let file = File::create(&path)
            .map_err(|e| SpillFailure::io(format!("cannot create {}", path.display()), e))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let count = self.mem.len() as u64;
        let cannot_write = || format!("cannot write {}", path.display());
        bincode::serialize_into(&mut w, &count)
            .map_err(|e| SpillFailure::bincode(cannot_write(), *e))?;
        for (k, vs) in std::mem::take(&mut self.mem) {
            if self.track {
                *self.spilled.entry(k.clone()).or_default() += vs.len();
            }
            bincode::serialize_into(&mut w, &(k, vs))
                .map_err(|e| SpillFailure::bincode(cannot_write(), *e))?;
        }
        w.flush().map_err(|e| SpillFailure::io(cannot_write(), e))?;
        let written = w.get_ref().metadata().map_or(0, |m| m.len());
        self.counters
            .spilled_bytes
            .fetch_add(written, Ordering::Relaxed);
        self.bytes = 0;
        self.runs.push(path);
        Ok(())
    }

    /// Starts handing out every group in key order ([`Groups::next_group`]),
    /// merging spilled runs with what is in memory; memory then holds one
    /// group (and one record per run) at a time.
    pub(crate) fn start_merge(&mut self) -> Result<(), SpillFailure> {
        let mem = std::mem::take(&mut self.mem);
        self.bytes = 0;
        // one read buffer per run, all of them within an eighth of the
        // budget (a small budget makes many runs: 200 buffers of 1 MiB
        // were most of a 64 MB job's memory); records larger than the
        // buffer are read straight into their values
        let buffer = (self.budget / 8 / self.runs.len().max(1)).clamp(16 << 10, 1 << 20);
        let mut runs = Vec::new();
        for path in std::mem::take(&mut self.runs) {
            let file = File::open(&path)
                .map_err(|e| SpillFailure::io(format!("cannot open {}", path.display()), e))?;
            let mut reader = BufReader::with_capacity(buffer, file);
            let left: u64 = bincode::deserialize_from(&mut reader).map_err(|e| {
                SpillFailure::bincode(format!("cannot read {}", path.display()), *e)
            })?;
            runs.push(Run { reader, left });
            // the file stays readable through the open handle
            let _ = std::fs::remove_file(&path);
        }
        let mut heap = BinaryHeap::new();
        for (i, run) in runs.iter_mut().enumerate() {
            if let Some(k) = run.next_key()? {
                heap.push(Reverse((k, i)));
            }
        }
        self.merge = Some(Merge {
            runs,
            heap,
            mem: mem.into_iter().peekable(),
        });
        Ok(())
    }

    /// The next group of the merge, or `None` when all were handed out.
    pub(crate) fn next_group(&mut self) -> Result<Option<Group<V>>, SpillFailure> {
        let Some(m) = self.merge.as_mut() else {
            return Ok(None);
        };
        let disk_key = m.heap.peek().map(|Reverse((k, _))| k.clone());
        let mem_key = m.mem.peek().map(|(k, _)| k.clone());
        let key = match (disk_key, mem_key) {
            (None, None) => {
                self.merge = None;
                return Ok(None);
            }
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (Some(a), Some(b)) => a.min(b),
        };
        let mut values = Vec::new();
        while m.heap.peek().is_some_and(|Reverse((k, _))| *k == key) {
            let Some(Reverse((_, i))) = m.heap.pop() else {
                break;
            };
            values.extend(m.runs[i].values::<V>()?);
            if let Some(k) = m.runs[i].next_key()? {
                m.heap.push(Reverse((k, i)));
            }
        }
        if m.mem.peek().is_some_and(|(k, _)| *k == key) {
            if let Some((_, vs)) = m.mem.next() {
                values.extend(vs);
            }
        }
        Ok(Some((key, values)))
    }
}

/// The state of a merge in progress.
struct Merge<V> {
    runs: Vec<Run>,
    /// The next key of every run that has one, smallest first.
    heap: BinaryHeap<Reverse<(Vec<u8>, usize)>>,
    mem: std::iter::Peekable<std::collections::btree_map::IntoIter<Vec<u8>, Vec<V>>>,
}
