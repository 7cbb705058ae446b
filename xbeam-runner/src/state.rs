//! The state of one run, shared by the workers of a process: the first
//! error, the stop flag, failures seen by the panic hook, live metrics.
//!
//! Everything about a run lives here, not in process-wide statics, so two
//! pipelines may run at once in one process and one's failure never stops
//! the other. The panic hook is process-wide (Rust has one); it finds the
//! run of a worker thread through a thread-local, and the runs of a cluster
//! through a registry of live cluster runs (timely's network threads belong
//! to no worker).

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};

use crate::erased::Erased;
use crate::metrics::{Counters, LiveMetrics};
use crate::pipeline::Data;
use crate::RunError;

/// State shared by the workers of one process during one run.
pub(crate) struct RunState {
    abort: AtomicBool,
    /// Set with `cluster_failure` or `worker_failure`, so that checking
    /// for a stop (every element) takes no lock.
    failed: AtomicBool,
    error: Mutex<Option<RunError>>,
    /// A lost peer (set by the panic hook for timely's network threads).
    cluster_failure: Mutex<Option<String>>,
    /// A worker that died outside user code (set by the panic hook).
    worker_failure: Mutex<Option<String>>,
    pub(crate) spill_dir: PathBuf,
    /// Bytes of groups one group-by-key may hold on one worker.
    pub(crate) group_budget: usize,
    /// Bytes of source elements in flight, per worker.
    pub(crate) in_flight_bytes: usize,
    pub(crate) live: LiveMetrics,
}

impl RunState {
    pub(crate) fn new(
        spill_dir: PathBuf,
        group_budget: usize,
        in_flight_bytes: usize,
        live: LiveMetrics,
    ) -> RunState {
        RunState {
            abort: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
            cluster_failure: Mutex::new(None),
            worker_failure: Mutex::new(None),
            spill_dir,
            group_budget,
            in_flight_bytes,
            live,
        }
    }

    /// Whether the run is stopping, for any reason.
    pub(crate) fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed) || self.failed.load(Ordering::Acquire)
    }

    /// Whether this process stopped the run or was told to stop (not a
    /// failure seen by the panic hook).
    pub(crate) fn stopped(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    /// Stops the run without an error of its own (another process failed).
    pub(crate) fn stop(&self) {
        self.abort.store(true, Ordering::Relaxed);
    }

    /// Records the first error and stops the run.
    pub(crate) fn fail(&self, e: RunError) {
        let mut slot = self.error.lock().expect("error lock");
        if slot.is_none() {
            *slot = Some(e);
        }
        self.abort.store(true, Ordering::Relaxed);
    }

    pub(crate) fn take_error(&self) -> Option<RunError> {
        self.error.lock().expect("error lock").take()
    }

    pub(crate) fn cluster_failure(&self) -> Option<String> {
        self.cluster_failure.lock().ok().and_then(|g| g.clone())
    }

    pub(crate) fn worker_failure(&self) -> Option<String> {
        self.worker_failure.lock().ok().and_then(|g| g.clone())
    }

    /// Records a failure in `slot` (the first one wins).
    fn set_once(&self, slot: &Mutex<Option<String>>, message: String) {
        if let Ok(mut g) = slot.lock() {
            if g.is_none() {
                *g = Some(message);
            }
        }
        self.failed.store(true, Ordering::Release);
    }
}

/// What an operator knows while it is built.
pub(crate) struct Ctx {
    pub(crate) name: String,
    pub(crate) state: Arc<RunState>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) worker: usize,
}

thread_local! {
    /// Whether this thread is running user code under `catch_unwind`.
    static IN_USER_CODE: Cell<bool> = const { Cell::new(false) };
    /// The run this worker thread works for.
    static CURRENT_RUN: RefCell<Option<Arc<RunState>>> = const { RefCell::new(None) };
}

/// Cluster runs in progress in this process: a lost peer fails them.
static CLUSTER_RUNS: Mutex<Vec<Weak<RunState>>> = Mutex::new(Vec::new());
static HOOK: Once = Once::new();

/// Marks this thread as a worker of `state`'s run until the guard drops.
pub(crate) fn enter_run(state: &Arc<RunState>) -> impl Drop {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            CURRENT_RUN.with(|r| {
                if let Ok(mut r) = r.try_borrow_mut() {
                    *r = None;
                }
            });
        }
    }
    CURRENT_RUN.with(|r| *r.borrow_mut() = Some(state.clone()));
    Leave
}

/// Registers a cluster run, so a lost peer fails it; unregistered when the
/// returned guard drops.
pub(crate) fn register_cluster_run(state: &Arc<RunState>) -> impl Drop {
    struct Unregister(Weak<RunState>);
    impl Drop for Unregister {
        fn drop(&mut self) {
            if let Ok(mut runs) = CLUSTER_RUNS.lock() {
                runs.retain(|w| w.strong_count() > 0 && !Weak::ptr_eq(w, &self.0));
            }
        }
    }
    let weak = Arc::downgrade(state);
    if let Ok(mut runs) = CLUSTER_RUNS.lock() {
        runs.push(weak.clone());
    }
    Unregister(weak)
}

/// Timely's network threads panic when a peer goes away, and a worker may
/// die outside user code; the hook turns both into a failed run instead of
/// a hang. Panics in user code are caught and reported as
/// [`RunError::Panic`], so the hook keeps quiet about them.
pub(crate) fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("");
            if name.starts_with("timely:send") || name.starts_with("timely:recv") {
                let message = format!(
                    "lost the connection to a peer process ({name}: {})",
                    panic_message(info.payload())
                );
                if let Ok(runs) = CLUSTER_RUNS.lock() {
                    for run in runs.iter().filter_map(Weak::upgrade) {
                        run.set_once(&run.cluster_failure, message.clone());
                    }
                }
                return;
            }
            if name.starts_with("timely:work") {
                if IN_USER_CODE.with(Cell::get) {
                    return;
                }
                let message = format!(
                    "worker thread {name} panicked: {}",
                    panic_message(info.payload())
                );
                CURRENT_RUN.with(|r| {
                    if let Ok(r) = r.try_borrow() {
                        if let Some(run) = r.as_ref() {
                            run.set_once(&run.worker_failure, message);
                        }
                    }
                });
            }
            previous(info);
        }));
    });
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}

/// A user error, boxed with its cause chain.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A short description of an element: its own ([`ByteSize::describe`],
/// e.g. a chunk's key), else its JSON when short, else its size.
pub(crate) fn describe<T: Data>(x: &T) -> String {
    if let Some(d) = x.describe() {
        return format!("{d} ({} bytes)", x.byte_size());
    }
    match serde_json::to_string(x) {
        Ok(s) if s.len() <= 300 => format!("element {s}"),
        _ => format!("an element of {} bytes", x.byte_size()),
    }
}

/// What to keep of an element that is moved into user code, to describe it
/// if that fails: its own description, or a copy of a small one.
pub(crate) enum Described<T> {
    Named(String),
    Small(T),
    Sized(usize),
}

impl<T: Data> Described<T> {
    pub(crate) fn of(x: &T) -> Described<T> {
        let size = x.byte_size();
        match x.describe() {
            Some(d) => Described::Named(format!("{d} ({size} bytes)")),
            None if size <= 256 => Described::Small(x.clone()),
            None => Described::Sized(size),
        }
    }

    pub(crate) fn text(self) -> String {
        match self {
            Described::Named(s) => s,
            Described::Small(x) => describe(&x),
            Described::Sized(n) => format!("an element of {n} bytes"),
        }
    }
}

/// Runs user code on one element: an error or a panic becomes a
/// [`RunError`] naming the transform and the element.
pub(crate) fn guarded<R, E: Into<BoxError>>(
    transform: &str,
    element: impl FnOnce() -> String,
    f: impl FnOnce() -> Result<R, E>,
) -> Result<R, RunError> {
    IN_USER_CODE.with(|c| c.set(true));
    let outcome = catch_unwind(AssertUnwindSafe(f));
    IN_USER_CODE.with(|c| c.set(false));
    match outcome {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(RunError::element(transform, element(), e.into())),
        Err(payload) => Err(RunError::Panic {
            transform: transform.to_owned(),
            element: element(),
            message: panic_message(&*payload),
        }),
    }
}

/// Runs infallible user code (a `CombineFn` method): a panic becomes a
/// [`RunError`] naming the transform and `what` it was working on.
pub(crate) fn user<R>(transform: &str, what: &str, f: impl FnOnce() -> R) -> Result<R, RunError> {
    guarded(transform, || what.to_owned(), || Ok::<_, BoxError>(f()))
}

/// Hands every element of a batch to `f` as a `T`; the first error stops
/// the run (recorded in `state`). Batches arriving after a stop are
/// dropped.
pub(crate) fn for_each_typed<T: Data>(
    state: &RunState,
    transform: &str,
    data: &mut Vec<Erased>,
    mut f: impl FnMut(T) -> Result<(), RunError>,
) {
    if state.aborted() {
        data.clear();
        return;
    }
    for e in data.drain(..) {
        if let Err(err) = e
            .take::<T>()
            .map_err(|m| internal(transform, m))
            .and_then(&mut f)
        {
            state.fail(err);
            return;
        }
    }
}

pub(crate) fn internal(transform: &str, message: String) -> RunError {
    RunError::Element {
        transform: transform.to_owned(),
        element: "an element".into(),
        message,
        cause: None,
    }
}
