//! [`Runner`]: how a pipeline is executed — in this process or as one
//! process of a cluster — and with which memory budget.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{Metrics, RunError};

/// A progress callback: the live metrics of every transform.
pub type ProgressFn = Arc<dyn Fn(&Metrics) + Send + Sync>;

/// How a run is executed.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    Local {
        workers: usize,
    },
    Cluster {
        hosts: Vec<String>,
        process: usize,
        threads: usize,
    },
}

/// Executes pipelines: timely workers as threads in this process
/// ([`Runner::local`]), or the same binary as several processes over TCP
/// ([`Runner::cluster`]).
///
/// ```
/// use xbeam_runner::Runner;
///
/// // two workers, a 256 MiB budget for the whole process, no bars
/// let runner = Runner::local_with_workers(2).max_mem(256 << 20).quiet();
/// assert_eq!(runner.workers(), 2);
/// ```
#[derive(Clone)]
pub struct Runner {
    pub(crate) mode: Mode,
    pub(crate) in_flight_bytes: usize,
    pub(crate) group_budget: usize,
    pub(crate) spill_dir: Option<PathBuf>,
    pub(crate) progress: Option<ProgressFn>,
    pub(crate) draw: bool,
    pub(crate) connect_timeout: Duration,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("mode", &self.mode)
            .field("in_flight_bytes", &self.in_flight_bytes)
            .field("group_budget", &self.group_budget)
            .field("spill_dir", &self.spill_dir)
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// Timely workers as threads in this process, one per core.
    pub fn local() -> Runner {
        let n = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Runner::local_with_workers(n)
    }

    /// `workers` timely workers as threads in this process.
    pub fn local_with_workers(workers: usize) -> Runner {
        Runner {
            mode: Mode::Local {
                workers: workers.max(1),
            },
            in_flight_bytes: 16 << 20,
            group_budget: 256 << 20,
            spill_dir: None,
            progress: None,
            draw: true,
            connect_timeout: Duration::from_mins(1),
        }
    }

    /// This process as number `process` of a cluster whose processes listen
    /// at `hosts` (`host:port`, one per process, the same list everywhere),
    /// each with `threads` workers. Every process runs the same pipeline.
    pub fn cluster(hosts: Vec<String>, process: usize, threads: usize) -> Runner {
        Runner {
            mode: Mode::Cluster {
                hosts,
                process,
                threads: threads.max(1),
            },
            ..Runner::local_with_workers(1)
        }
    }

    /// Like [`Runner::cluster`], with the hosts read from a file (one
    /// `host:port` per line).
    pub fn cluster_from_hostfile(
        hostfile: impl AsRef<std::path::Path>,
        process: usize,
        threads: usize,
    ) -> Result<Runner, RunError> {
        let path = hostfile.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            RunError::Cluster(format!("cannot read host file {}: {e}", path.display()))
        })?;
        let hosts: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        Ok(Runner::cluster(hosts, process, threads))
    }

    /// The memory budget of this process for elements: an eighth goes to
    /// source elements in flight (split among the workers, and at most
    /// 32 MiB each: more only adds memory), half to the groups
    /// group-by-keys hold before spilling; the rest is headroom for what
    /// operators make of their inputs (a source chunk and the pieces split
    /// and copied from it exist together for a moment, a group being
    /// consolidated exists twice).
    pub fn max_mem(self, bytes: usize) -> Runner {
        let workers = self.workers_in_process();
        self.in_flight_bytes((bytes / 8 / workers).min(32 << 20))
            .group_budget(bytes / 2)
    }

    /// At most `workers` worker threads in each process: a job whose
    /// chunks are too large for every core to hold some at once within its
    /// budget runs on fewer. A cluster keeps its processes.
    ///
    /// ```
    /// use xbeam_runner::Runner;
    /// assert_eq!(Runner::local_with_workers(8).limit_workers(3).workers(), 3);
    /// assert_eq!(Runner::local_with_workers(2).limit_workers(3).workers(), 2);
    /// ```
    #[must_use]
    pub fn limit_workers(mut self, workers: usize) -> Runner {
        let limit = workers.max(1);
        match &mut self.mode {
            Mode::Local { workers } => *workers = (*workers).min(limit),
            Mode::Cluster { threads, .. } => *threads = (*threads).min(limit),
        }
        self
    }

    /// Bytes of source elements in flight per worker (default 16 MiB).
    pub fn in_flight_bytes(mut self, bytes: usize) -> Runner {
        self.in_flight_bytes = bytes.max(1);
        self
    }

    /// Bytes of groups the group-by-keys of this process hold before
    /// spilling to disk (default 256 MiB), shared by its workers and by the
    /// pipeline's group-by-keys and combines (a multi-stage rechunk's
    /// shuffles hold groups at the same time): each gets an equal share.
    pub fn group_budget(mut self, bytes: usize) -> Runner {
        self.group_budget = bytes;
        self
    }

    /// Where spill files go (default: the system temporary directory).
    pub fn spill_dir(mut self, dir: impl Into<PathBuf>) -> Runner {
        self.spill_dir = Some(dir.into());
        self
    }

    /// The directory spill files go to, if one was set (see
    /// [`spill_dir`](Self::spill_dir)).
    ///
    /// ```
    /// use xbeam_runner::Runner;
    ///
    /// assert!(Runner::local().spill_path().is_none());
    /// let r = Runner::local().spill_dir("/scratch");
    /// assert_eq!(r.spill_path(), Some(std::path::Path::new("/scratch")));
    /// ```
    pub fn spill_path(&self) -> Option<&std::path::Path> {
        self.spill_dir.as_deref()
    }

    /// Calls `f` with live metrics about every 100 ms during a run.
    pub fn on_progress(mut self, f: impl Fn(&Metrics) + Send + Sync + 'static) -> Runner {
        self.progress = Some(Arc::new(f));
        self
    }

    /// How long to wait for every cluster peer to connect (default 60 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Runner {
        self.connect_timeout = timeout;
        self
    }

    /// No progress bars, even on a terminal.
    pub fn quiet(mut self) -> Runner {
        self.draw = false;
        self
    }

    /// Workers in all processes.
    pub fn workers(&self) -> usize {
        match &self.mode {
            Mode::Local { workers } => *workers,
            Mode::Cluster { hosts, threads, .. } => hosts.len() * threads,
        }
    }

    /// Workers in this process.
    pub fn workers_in_process(&self) -> usize {
        match &self.mode {
            Mode::Local { workers } => *workers,
            Mode::Cluster { threads, .. } => *threads,
        }
    }

    /// The indices of this process's workers.
    pub(crate) fn local_workers(&self) -> std::ops::Range<usize> {
        match &self.mode {
            Mode::Local { workers } => 0..*workers,
            Mode::Cluster {
                process, threads, ..
            } => process * threads..(process + 1) * threads,
        }
    }

    pub(crate) fn timely_config(&self) -> timely::Config {
        match &self.mode {
            Mode::Local { workers } => timely::Config::process(*workers),
            Mode::Cluster {
                hosts,
                process,
                threads,
            } => timely::Config {
                communication: timely::CommunicationConfig::Cluster {
                    threads: *threads,
                    process: *process,
                    addresses: hosts.clone(),
                    report: false,
                    zerocopy: false,
                },
                worker: timely::WorkerConfig::default(),
            },
        }
    }
}
