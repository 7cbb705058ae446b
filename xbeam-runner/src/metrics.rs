//! Per-transform counters: elements, bytes, busy time; progress snapshots.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;

/// Live counters of one transform (shared by the workers of a process).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) elements: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) busy_ns: AtomicU64,
    /// Elements expected in all, when known (sources), for this process.
    pub(crate) total: AtomicU64,
    pub(crate) spilled_bytes: AtomicU64,
}

impl Counters {
    pub(crate) fn add(&self, elements: u64, bytes: u64, busy: Duration) {
        self.elements.fetch_add(elements, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.busy_ns
            .fetch_add(busy.as_nanos() as u64, Ordering::Relaxed);
    }
}

/// The counters of one transform, as read after (or during) a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransformMetrics {
    /// Elements the transform produced (consumed, for sinks).
    pub elements: u64,
    /// Their bytes ([`ByteSize`](crate::ByteSize)).
    pub bytes: u64,
    /// Time spent in user code and the transform's own work.
    pub busy: Duration,
    /// Elements expected in all, when known (sources); 0 otherwise.
    pub total: u64,
    /// Bytes written to spill files (group-by-key).
    pub spilled_bytes: u64,
}

/// Counters of every transform, by name, in pipeline order. In a cluster
/// each process reports its own workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Per-transform counters.
    pub transforms: IndexMap<String, TransformMetrics>,
}

impl Metrics {
    /// The counters of one transform (by its full, scoped name).
    pub fn get(&self, name: &str) -> Option<&TransformMetrics> {
        self.transforms.get(name)
    }

    /// The transforms inside the composite `scope` (`scope/...`), with
    /// their names relative to it.
    pub fn within<'a>(
        &'a self,
        scope: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a TransformMetrics)> + 'a {
        self.transforms.iter().filter_map(move |(name, m)| {
            name.strip_prefix(scope)
                .and_then(|rest| rest.strip_prefix('/'))
                .map(|rest| (rest, m))
        })
    }

    /// One entry per top-level transform, composites folded into one:
    /// elements and bytes of the composite's output (its last step), the
    /// total of its first step when that is a source, busy time and spilled
    /// bytes of all its steps. This is what progress bars show.
    ///
    /// ```
    /// use xbeam_runner::{PCollection, Pipeline, Runner};
    ///
    /// let p = Pipeline::new();
    /// p.create("xs", (0..10u64).collect())
    ///     .apply("twice", |c: PCollection<u64>| {
    ///         c.map("a", |x: u64| Ok::<_, String>(x)).filter("b", |x: &u64| Ok::<_, String>(x % 2 == 0))
    ///     })
    ///     .collect("out");
    /// let m = p.run(&Runner::local_with_workers(1).quiet())?;
    /// assert_eq!(m.within("twice").count(), 2);
    /// let folded = m.by_composite();
    /// assert_eq!(folded.get("twice").unwrap().elements, 5);
    /// assert_eq!(folded.get("xs").unwrap().total, 10);
    /// # Ok::<(), xbeam_runner::RunError>(())
    /// ```
    pub fn by_composite(&self) -> Metrics {
        let mut out: IndexMap<String, TransformMetrics> = IndexMap::new();
        for (name, m) in &self.transforms {
            let top = name.split('/').next().unwrap_or(name);
            match out.get_mut(top) {
                None => {
                    out.insert(top.to_owned(), *m);
                }
                Some(acc) => {
                    acc.elements = m.elements;
                    acc.bytes = m.bytes;
                    acc.busy += m.busy;
                    acc.spilled_bytes += m.spilled_bytes;
                }
            }
        }
        Metrics { transforms: out }
    }
}

/// Shared live counters of a run.
#[derive(Debug, Default)]
pub(crate) struct LiveMetrics {
    pub(crate) by_name: IndexMap<String, Arc<Counters>>,
}

impl LiveMetrics {
    pub(crate) fn snapshot(&self) -> Metrics {
        Metrics {
            transforms: self
                .by_name
                .iter()
                .map(|(k, c)| {
                    let m = TransformMetrics {
                        elements: c.elements.load(Ordering::Relaxed),
                        bytes: c.bytes.load(Ordering::Relaxed),
                        busy: Duration::from_nanos(c.busy_ns.load(Ordering::Relaxed)),
                        total: c.total.load(Ordering::Relaxed),
                        spilled_bytes: c.spilled_bytes.load(Ordering::Relaxed),
                    };
                    (k.clone(), m)
                })
                .collect(),
        }
    }
}
