//! Running a [`Pipeline`] on timely-dataflow: the [`Runner`], the worker
//! loop with probe-based flow control, and the operators.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use timely::dataflow::channels::pact::{Exchange, Pipeline as Local};
use timely::dataflow::operators::{Capability, Concatenate, Operator, Probe};
use timely::dataflow::{InputHandle, ProbeHandle, Stream};

use crate::erased::{stable_hash, Erased};
use crate::metrics::{Counters, LiveMetrics};
use crate::pipeline::{CombineFn, Data, NodeKind, Pipeline};
use crate::spill::Groups;
use crate::{ByteSize, Metrics, RunError};

/// Every stream carries type-erased elements; timestamps are rounds of
/// source input.
pub(crate) type S<'s> = Stream<'s, u64, Vec<Erased>>;

/// Builds one node's operator from its inputs' streams.
pub(crate) type Build = Arc<dyn for<'s> Fn(&Ctx, Vec<S<'s>>) -> S<'s> + Send + Sync>;

/// A progress callback: the live metrics of every transform.
pub type ProgressFn = Arc<dyn Fn(&Metrics) + Send + Sync>;

/// How a run is executed.
#[derive(Debug, Clone)]
enum Mode {
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
#[derive(Clone)]
pub struct Runner {
    mode: Mode,
    in_flight_bytes: usize,
    group_budget: usize,
    spill_dir: Option<PathBuf>,
    progress: Option<ProgressFn>,
    draw: bool,
    connect_timeout: Duration,
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

    /// Bytes of source elements in flight per worker (default 16 MiB).
    pub fn in_flight_bytes(mut self, bytes: usize) -> Runner {
        self.in_flight_bytes = bytes.max(1);
        self
    }

    /// Bytes of groups a group-by-key holds per worker before spilling to
    /// disk (default 256 MiB).
    pub fn group_budget(mut self, bytes: usize) -> Runner {
        self.group_budget = bytes;
        self
    }

    /// Where spill files go (default: the system temporary directory).
    pub fn spill_dir(mut self, dir: impl Into<PathBuf>) -> Runner {
        self.spill_dir = Some(dir.into());
        self
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

    fn workers(&self) -> usize {
        match &self.mode {
            Mode::Local { workers } => *workers,
            Mode::Cluster { hosts, threads, .. } => hosts.len() * threads,
        }
    }
}

/// State shared by the workers of one process during a run.
pub(crate) struct Shared {
    abort: AtomicBool,
    error: Mutex<Option<RunError>>,
    pub(crate) spill_dir: PathBuf,
    pub(crate) group_budget: usize,
    in_flight_bytes: usize,
    live: LiveMetrics,
}

impl Shared {
    pub(crate) fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed) || cluster_failed().is_some()
    }

    /// Records the first error and stops the run.
    pub(crate) fn fail(&self, e: RunError) {
        let mut slot = self.error.lock().expect("error lock");
        if slot.is_none() {
            *slot = Some(e);
        }
        self.abort.store(true, Ordering::Relaxed);
    }
}

/// What an operator knows while it is built.
pub(crate) struct Ctx {
    pub(crate) name: String,
    pub(crate) shared: Arc<Shared>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) worker: usize,
}

static CLUSTER_FAILURE: Mutex<Option<String>> = Mutex::new(None);
static WORKER_FAILURE: Mutex<Option<String>> = Mutex::new(None);

thread_local! {
    /// Whether this thread is running user code under `catch_unwind`.
    static IN_USER_CODE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
static HOOK: Once = Once::new();

fn cluster_failed() -> Option<String> {
    CLUSTER_FAILURE
        .lock()
        .ok()
        .and_then(|g| g.clone())
        .or_else(worker_failed)
}

fn worker_failed() -> Option<String> {
    WORKER_FAILURE.lock().ok().and_then(|g| g.clone())
}

/// Timely's network threads panic when a peer goes away; the hook turns
/// that into a failed run instead of a hang.
fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("");
            if name.starts_with("timely:send") || name.starts_with("timely:recv") {
                let msg = panic_message(info.payload());
                if let Ok(mut g) = CLUSTER_FAILURE.lock() {
                    if g.is_none() {
                        *g = Some(format!(
                            "lost the connection to a peer process ({name}: {msg})"
                        ));
                    }
                }
                return;
            }
            if name.starts_with("timely:work") && IN_USER_CODE.with(std::cell::Cell::get) {
                return; // caught, and reported as RunError::Panic
            }
            if name.starts_with("timely:work") {
                // a worker died outside user code: stop the others instead
                // of letting them wait for it
                if let Ok(mut g) = WORKER_FAILURE.lock() {
                    if g.is_none() {
                        *g = Some(format!(
                            "worker thread {name} panicked: {}",
                            panic_message(info.payload())
                        ));
                    }
                }
            }
            previous(info);
        }));
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}

/// A short description of a small element: its JSON (or its size, when
/// the JSON is long).
fn describe<T: Data>(x: &T) -> String {
    match serde_json::to_string(x) {
        Ok(s) if s.len() <= 300 => format!("element {s}"),
        _ => format!("an element of {} bytes", x.byte_size()),
    }
}

/// Runs user code on one element: an error or a panic becomes a
/// [`RunError`] naming the transform and the element.
pub(crate) fn guarded<R, E: std::fmt::Display>(
    transform: &str,
    element: impl FnOnce() -> String,
    f: impl FnOnce() -> Result<R, E>,
) -> Result<R, RunError> {
    IN_USER_CODE.with(|c| c.set(true));
    let outcome = catch_unwind(AssertUnwindSafe(f));
    IN_USER_CODE.with(|c| c.set(false));
    match outcome {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(RunError::Element {
            transform: transform.to_owned(),
            element: element(),
            message: e.to_string(),
        }),
        Err(payload) => Err(RunError::Panic {
            transform: transform.to_owned(),
            element: element(),
            message: panic_message(&*payload),
        }),
    }
}

/// Runs infallible user code (a `CombineFn` method): a panic becomes a
/// [`RunError`] naming the transform and `what` it was working on.
fn user<R>(transform: &str, what: &str, f: impl FnOnce() -> R) -> Result<R, RunError> {
    guarded(transform, || what.to_owned(), || Ok::<_, String>(f()))
}

/// Hands every element of a batch to `f` as a `T`; the first error stops
/// the run (recorded in `shared`). Batches arriving after a stop are
/// dropped.
fn for_each_typed<T: Data>(
    shared: &Shared,
    transform: &str,
    data: &mut Vec<Erased>,
    mut f: impl FnMut(T) -> Result<(), RunError>,
) {
    if shared.aborted() {
        data.clear();
        return;
    }
    for e in data.drain(..) {
        if let Err(err) = e
            .take::<T>()
            .map_err(|m| internal(transform, m))
            .and_then(&mut f)
        {
            shared.fail(err);
            return;
        }
    }
}

fn internal(transform: &str, message: String) -> RunError {
    RunError::Element {
        transform: transform.to_owned(),
        element: "an element".into(),
        message,
    }
}

/// Map-like operators: `f` turns one `T` into any number of `U`.
pub(crate) fn elementwise<'s, T, U, F>(ctx: &Ctx, mut inputs: Vec<S<'s>>, mut f: F) -> S<'s>
where
    T: Data,
    U: Data,
    F: FnMut(T, &mut Vec<U>) -> Result<(), String> + 'static,
{
    let input = inputs.remove(0);
    let shared = ctx.shared.clone();
    let counters = ctx.counters.clone();
    let name = ctx.name.clone();
    input.unary::<timely::container::CapacityContainerBuilder<Vec<Erased>>, _, _, _>(
        Local,
        &name.clone(),
        move |_, _| {
            let mut typed: Vec<U> = Vec::new();
            move |input, output| {
                input.for_each(|cap, data| {
                    let start = Instant::now();
                    let mut out: Vec<Erased> = Vec::new();
                    let mut bytes = 0u64;
                    for_each_typed(&shared, &name, data, |x: T| {
                        // the element is moved into `f`: describe it first
                        // when that is cheap
                        let size = x.byte_size();
                        let small = (size <= 256).then(|| describe(&x));
                        guarded(
                            &name,
                            || small.unwrap_or_else(|| format!("an element of {size} bytes")),
                            || f(x, &mut typed),
                        )?;
                        for y in typed.drain(..) {
                            bytes += y.byte_size() as u64;
                            out.push(Erased::new(y));
                        }
                        Ok(())
                    });
                    counters.add(out.len() as u64, bytes, start.elapsed());
                    if !out.is_empty() {
                        output.session(&cap).give_iterator(out.into_iter());
                    }
                });
            }
        },
    )
}

pub(crate) fn flatten<'s>(_ctx: &Ctx, inputs: Vec<S<'s>>) -> S<'s> {
    let scope = inputs[0].scope();
    scope.concatenate(inputs)
}

pub(crate) fn reshuffle<'s>(ctx: &Ctx, mut inputs: Vec<S<'s>>) -> S<'s> {
    let input = inputs.remove(0);
    let mut counter = ctx.worker as u64;
    let counters = ctx.counters.clone();
    input.unary::<timely::container::CapacityContainerBuilder<Vec<Erased>>, _, _, _>(
        Exchange::new(move |_: &Erased| {
            counter = counter.wrapping_add(1);
            counter
        }),
        &ctx.name,
        move |_, _| {
            move |input, output| {
                input.for_each(|cap, data| {
                    counters.add(data.len() as u64, 0, Duration::ZERO);
                    output.session(&cap).give_iterator(data.drain(..));
                });
            }
        },
    )
}

pub(crate) fn collect<'s>(
    ctx: &Ctx,
    mut inputs: Vec<S<'s>>,
    slot: Arc<Mutex<Vec<Erased>>>,
) -> S<'s> {
    let input = inputs.remove(0);
    let counters = ctx.counters.clone();
    let shared = ctx.shared.clone();
    input.unary::<timely::container::CapacityContainerBuilder<Vec<Erased>>, _, _, _>(
        Exchange::new(|_: &Erased| 0),
        &ctx.name,
        move |_, _| {
            move |input, _output| {
                input.for_each(|_cap, data| {
                    if shared.aborted() {
                        data.clear();
                        return;
                    }
                    counters.add(data.len() as u64, 0, Duration::ZERO);
                    slot.lock().expect("collect lock").extend(data.drain(..));
                });
            }
        },
    )
}

fn key_bytes<K: Data>(k: &K) -> Vec<u8> {
    bincode::serialize(k).expect("bincode serializes every serde value")
}

fn by_key<K: Data, V: Data>() -> impl FnMut(&Erased) -> u64 + 'static {
    |e: &Erased| {
        e.with_ref(|kv: &(K, V)| stable_hash(&key_bytes(&kv.0)))
            .unwrap_or(0)
    }
}

pub(crate) fn group_by_key<'s, K: Data, V: Data>(
    ctx: &Ctx,
    mut inputs: Vec<S<'s>>,
    expecting: Option<crate::pipeline::Expect<K>>,
) -> S<'s> {
    let input = inputs.remove(0);
    let shared = ctx.shared.clone();
    let counters = ctx.counters.clone();
    let name = ctx.name.clone();
    let scope = input.scope();
    input.unary_frontier::<timely::container::CapacityContainerBuilder<Vec<Erased>>, _, _, _>(
        Exchange::new(by_key::<K, V>()),
        &ctx.name.clone(),
        move |_, info| {
            let activator = scope.activator_for(info.address);
            let mut merging = false;
            let mut cap: Option<Capability<u64>> = None;
            let mut groups: Groups<V> = Groups::new(
                shared.group_budget,
                shared.spill_dir.clone(),
                counters.clone(),
            );
            move |(input, frontier), output| {
                let start = Instant::now();
                let mut ready: Vec<Erased> = Vec::new();
                let mut emitted = (0u64, 0u64);
                input.for_each(|c, data| {
                    if cap.is_none() {
                        cap = c.retain_least(0);
                    }
                    for_each_typed(&shared, &name, data, |(k, v): (K, V)| {
                        let want = expecting.as_ref().map(|n| n(&k));
                        let complete = groups
                            .add(key_bytes(&k), v, want)
                            .map_err(|m| RunError::Spill(format!("{name}: {m}")))?;
                        if let Some(values) = complete {
                            emitted.0 += 1;
                            emitted.1 += values.byte_size() as u64;
                            ready.push(Erased::new((k, values)));
                        }
                        Ok(())
                    });
                });
                if let Some(c) = &cap {
                    if !ready.is_empty() {
                        output.session(c).give_iterator(ready.drain(..));
                    }
                }
                // at the end, hand groups out a few megabytes per activation,
                // so downstream consumes them before more are read back
                if frontier.is_empty() && cap.is_some() && !shared.aborted() {
                    if !merging {
                        merging = true;
                        if let Err(m) = groups.start_merge() {
                            shared.fail(RunError::Spill(format!("{name}: {m}")));
                        }
                    }
                    let c = cap.as_ref().expect("checked");
                    let mut session = output.session(c);
                    let mut budget = 8usize << 20;
                    loop {
                        match groups.next_group() {
                            Ok(Some((kb, values))) => {
                                let size = values.byte_size();
                                match bincode::deserialize::<K>(&kb) {
                                    Ok(k) => session.give(Erased::new((k, values))),
                                    Err(e) => {
                                        shared.fail(RunError::Spill(format!("{name}: {e}")));
                                        break;
                                    }
                                }
                                emitted.0 += 1;
                                emitted.1 += size as u64;
                                budget = budget.saturating_sub(size.max(1));
                                if budget == 0 {
                                    activator.activate();
                                    break;
                                }
                            }
                            Ok(None) => {
                                drop(session);
                                cap = None;
                                break;
                            }
                            Err(m) => {
                                shared.fail(RunError::Spill(format!("{name}: {m}")));
                                break;
                            }
                        }
                    }
                }
                if shared.aborted() {
                    cap = None;
                }
                counters.add(emitted.0, emitted.1, start.elapsed());
            }
        },
    )
}

/// Partial combine before an exchange: one accumulator per key per worker,
/// flushed when the table grows large and at the end.
fn precombine<'s, K: Data, V: Data, C: CombineFn<V>>(
    ctx: &Ctx,
    input: S<'s>,
    combine: Arc<C>,
) -> S<'s> {
    const MAX_KEYS: usize = 10_000;
    let shared = ctx.shared.clone();
    let name = ctx.name.clone();
    input.unary_frontier::<timely::container::CapacityContainerBuilder<Vec<Erased>>, _, _, _>(
        Local,
        &format!("{}/partial", ctx.name),
        move |_, _| {
            let mut cap: Option<Capability<u64>> = None;
            let mut table: HashMap<Vec<u8>, (K, C::Acc)> = HashMap::new();
            move |(input, frontier), output| {
                input.for_each(|c, data| {
                    if cap.is_none() {
                        cap = c.retain_least(0);
                    }
                    for_each_typed(&shared, &name, data, |(k, v): (K, V)| {
                        let kb = key_bytes(&k);
                        let (k, acc) = table.remove(&kb).unwrap_or_else(|| (k, combine.create()));
                        let acc = user(&name, "a value", || combine.add(acc, v))?;
                        table.insert(kb, (k, acc));
                        Ok(())
                    });
                });
                let flush = table.len() > MAX_KEYS || frontier.is_empty();
                if flush {
                    if let Some(c) = &cap {
                        output
                            .session(c)
                            .give_iterator(table.drain().map(|(_, kv)| Erased::new(kv)));
                    }
                }
                if frontier.is_empty() {
                    cap = None;
                }
            }
        },
    )
}

pub(crate) fn combine_per_key<'s, K: Data, V: Data, C: CombineFn<V>>(
    ctx: &Ctx,
    mut inputs: Vec<S<'s>>,
    combine: Arc<C>,
) -> S<'s> {
    let partial = precombine::<K, V, C>(ctx, inputs.remove(0), combine.clone());
    let shared = ctx.shared.clone();
    let counters = ctx.counters.clone();
    let name = ctx.name.clone();
    partial.unary_frontier::<timely::container::CapacityContainerBuilder<Vec<Erased>>, _, _, _>(
        Exchange::new(by_key::<K, C::Acc>()),
        &ctx.name.clone(),
        move |_, _| {
            let mut cap: Option<Capability<u64>> = None;
            let mut table: BTreeMap<Vec<u8>, (K, C::Acc)> = BTreeMap::new();
            move |(input, frontier), output| {
                let start = Instant::now();
                input.for_each(|c, data| {
                    if cap.is_none() {
                        cap = c.retain_least(0);
                    }
                    for_each_typed(&shared, &name, data, |(k, acc): (K, C::Acc)| {
                        let kb = key_bytes(&k);
                        let merged = match table.remove(&kb) {
                            None => acc,
                            Some((_, old)) => {
                                user(&name, "an accumulator", || combine.merge(old, acc))?
                            }
                        };
                        table.insert(kb, (k, merged));
                        Ok(())
                    });
                });
                let mut count = (0u64, 0u64);
                if frontier.is_empty() {
                    if let Some(c) = cap.take() {
                        let mut session = output.session(&c);
                        for (_, (k, acc)) in std::mem::take(&mut table) {
                            match user(&name, "an accumulator", || combine.extract(acc)) {
                                Ok(out) => {
                                    count.0 += 1;
                                    count.1 += out.byte_size() as u64;
                                    session.give(Erased::new((k, out)));
                                }
                                Err(err) => return shared.fail(err),
                            }
                        }
                    }
                }
                counters.add(count.0, count.1, start.elapsed());
            }
        },
    )
}

#[allow(clippy::too_many_lines)] // two operators: partial, then final
pub(crate) fn combine_globally<'s, V: Data, C: CombineFn<V>>(
    ctx: &Ctx,
    mut inputs: Vec<S<'s>>,
    combine: Arc<C>,
) -> S<'s> {
    let input = inputs.remove(0);
    let shared = ctx.shared.clone();
    let counters = ctx.counters.clone();
    let name = ctx.name.clone();
    let first = combine.clone();
    let partial = input
        .unary_frontier::<timely::container::CapacityContainerBuilder<Vec<Erased>>, _, _, _>(
            Local,
            &format!("{}/partial", ctx.name),
            {
                let shared = shared.clone();
                let name = name.clone();
                move |default_cap, _| {
                    let mut cap = Some(default_cap);
                    let mut acc: Option<C::Acc> = None;
                    move |(input, frontier), output| {
                        input.for_each(|_c, data| {
                            for_each_typed(&shared, &name, data, |v: V| {
                                let current = acc.take().unwrap_or_else(|| first.create());
                                acc = Some(user(&name, "a value", || first.add(current, v))?);
                                Ok(())
                            });
                        });
                        if frontier.is_empty() {
                            if let Some(c) = cap.take() {
                                if let Some(a) = acc.take() {
                                    output.session(&c).give(Erased::new(a));
                                }
                            }
                        }
                    }
                }
            },
        );
    let worker = ctx.worker;
    partial.unary_frontier::<timely::container::CapacityContainerBuilder<Vec<Erased>>, _, _, _>(
        Exchange::new(|_: &Erased| 0),
        &ctx.name.clone(),
        move |default_cap, _| {
            // only worker 0 emits the one result, even for empty input
            let mut cap = (worker == 0).then_some(default_cap);
            let mut acc: Option<C::Acc> = None;
            move |(input, frontier), output| {
                let start = Instant::now();
                input.for_each(|_c, data| {
                    for_each_typed(&shared, &name, data, |a: C::Acc| {
                        acc = Some(match acc.take() {
                            None => a,
                            Some(old) => user(&name, "an accumulator", || combine.merge(old, a))?,
                        });
                        Ok(())
                    });
                });
                if frontier.is_empty() {
                    if let Some(c) = cap.take() {
                        if !shared.aborted() {
                            let a = acc.take().unwrap_or_else(|| combine.create());
                            match user(&name, "the accumulator", || combine.extract(a)) {
                                Ok(out) => {
                                    counters.add(1, out.byte_size() as u64, start.elapsed());
                                    output.session(&c).give(Erased::new(out));
                                }
                                Err(err) => shared.fail(err),
                            }
                        }
                    }
                }
            }
        },
    )
}

/// Runs `pipeline` with `runner`.
#[allow(clippy::too_many_lines)] // set up, run, tear down, report
pub(crate) fn run(pipeline: &Pipeline, runner: &Runner) -> Result<Metrics, RunError> {
    install_hook();
    // a failure recorded by an earlier run of this process is not this run's
    for failure in [&CLUSTER_FAILURE, &WORKER_FAILURE] {
        if let Ok(mut g) = failure.lock() {
            *g = None;
        }
    }
    let (nodes, collects) = {
        let g = pipeline.graph.lock().expect("pipeline lock");
        if let Some(e) = g.errors.first() {
            return Err(RunError::Pipeline(e.clone()));
        }
        (g.nodes.clone(), g.collects.clone())
    };
    for slot in &collects {
        slot.lock().expect("collect lock").clear();
    }
    if let Mode::Cluster { hosts, process, .. } = &runner.mode {
        if *process >= hosts.len() {
            return Err(RunError::Cluster(format!(
                "process index {process} is out of range for {} hosts",
                hosts.len()
            )));
        }
    }
    let spill = match &runner.spill_dir {
        Some(dir) => tempfile::Builder::new()
            .prefix("xbeam-spill-")
            .tempdir_in(dir),
        None => tempfile::Builder::new().prefix("xbeam-spill-").tempdir(),
    }
    .map_err(|e| RunError::Spill(format!("cannot create a spill directory: {e}")))?;
    let mut live = LiveMetrics::default();
    for n in &nodes {
        live.by_name
            .insert(n.name.clone(), Arc::new(Counters::default()));
    }
    let shared = Arc::new(Shared {
        abort: AtomicBool::new(false),
        error: Mutex::new(None),
        spill_dir: spill.path().to_path_buf(),
        group_budget: runner.group_budget / runner.workers().max(1),
        in_flight_bytes: runner.in_flight_bytes,
        live,
    });
    // sources know their totals
    let workers = runner.workers();
    let config = match &runner.mode {
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
    };
    let local_workers: Vec<usize> = match &runner.mode {
        Mode::Local { workers } => (0..*workers).collect(),
        Mode::Cluster {
            process, threads, ..
        } => (process * threads..(process + 1) * threads).collect(),
    };
    for n in &nodes {
        if let NodeKind::Source { count, .. } = n.kind {
            let mine: u64 = local_workers
                .iter()
                .map(|&w| count.saturating_sub(w as u64).div_ceil(workers as u64))
                .sum();
            shared.live.by_name[&n.name]
                .total
                .store(mine, Ordering::Relaxed);
        }
    }
    let done = Arc::new(AtomicBool::new(false));
    let reporter = progress_thread(runner, shared.clone(), done.clone());
    let worker_shared = shared.clone();
    let nodes = Arc::new(nodes);
    // timely's teardown panics when a peer's network thread died; that is
    // reported as a cluster error below. Timely waits for every peer to
    // connect; a peer that never comes up is an error after the timeout.
    let started = Arc::new(AtomicBool::new(false));
    let started_in = started.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let joined = catch_unwind(AssertUnwindSafe(move || {
            match timely::execute(config, move |worker| {
                started_in.store(true, Ordering::Relaxed);
                worker_main(worker, &nodes, &worker_shared);
            }) {
                Ok(guards) => guards.join().into_iter().find_map(Result::err),
                Err(e) => Some(e),
            }
        }))
        .unwrap_or_else(|payload| Some(panic_message(&*payload)));
        let _ = tx.send(joined);
    });
    let begun = Instant::now();
    let joined = loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(j) => break j,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                break Some("the timely runtime stopped without a result".into())
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if !started.load(Ordering::Relaxed) && begun.elapsed() > runner.connect_timeout {
                    done.store(true, Ordering::Relaxed);
                    return Err(RunError::Cluster(format!(
                        "could not connect to every peer within {} s",
                        runner.connect_timeout.as_secs()
                    )));
                }
            }
        }
    };
    done.store(true, Ordering::Relaxed);
    if let Some(h) = reporter {
        let _ = h.join();
    }
    drop(spill);
    if let Some(e) = shared.error.lock().expect("error lock").take() {
        return Err(e);
    }
    // a lost peer comes first: the workers then fail in its wake
    if let Some(m) = CLUSTER_FAILURE.lock().ok().and_then(|g| g.clone()) {
        return Err(RunError::Cluster(m));
    }
    if let Some(m) = worker_failed() {
        return Err(RunError::Worker(m));
    }
    if let Some(m) = joined {
        return Err(RunError::Cluster(format!("a worker failed: {m}")));
    }
    if shared.abort.load(Ordering::Relaxed) {
        // stopped by another process's failure: its output is incomplete
        return Err(RunError::Cluster(
            "another process of the cluster failed and stopped the run (its error says why)".into(),
        ));
    }
    Ok(shared.live.snapshot())
}

fn progress_thread(
    runner: &Runner,
    shared: Arc<Shared>,
    done: Arc<AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
    let draw = runner.draw && std::io::stderr().is_terminal();
    let callback = runner.progress.clone();
    if !draw && callback.is_none() {
        return None;
    }
    Some(std::thread::spawn(move || {
        let multi = indicatif::MultiProgress::new();
        let mut bars: Vec<indicatif::ProgressBar> = Vec::new();
        if draw {
            for name in shared.live.by_name.keys() {
                let pb = multi.add(indicatif::ProgressBar::new(0));
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "{prefix:>24} {bar:30} {pos}/{len} elements {msg}",
                ) {
                    pb.set_style(style);
                }
                pb.set_prefix(name.clone());
                bars.push(pb);
            }
        }
        loop {
            let finished = done.load(Ordering::Relaxed);
            let snapshot = shared.live.snapshot();
            if let Some(cb) = &callback {
                cb(&snapshot);
            }
            for (pb, m) in bars.iter().zip(snapshot.transforms.values()) {
                pb.set_length(m.total.max(m.elements));
                pb.set_position(m.elements);
                pb.set_message(format!("{:.1} MB", m.bytes as f64 / 1e6));
            }
            if finished {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for pb in bars {
            pb.finish_and_clear();
        }
    }))
}

type Input = InputHandle<u64, timely::container::CapacityContainerBuilder<Vec<Erased>>>;

#[allow(clippy::too_many_lines)] // build, then drive the sources, then drain
fn worker_main(
    worker: &mut timely::worker::Worker,
    nodes: &[Arc<crate::pipeline::Node>],
    shared: &Arc<Shared>,
) {
    let index = worker.index();
    let peers = worker.peers();
    let flow = ProbeHandle::new();
    let all = ProbeHandle::new();
    let mut inputs: Vec<(usize, Input)> = Vec::new();
    let mut abort_in: InputHandle<u64, timely::container::CapacityContainerBuilder<Vec<u8>>> =
        InputHandle::new();
    // whether a node is downstream of a barrier (its frontier waits for the end)
    let mut after_barrier = vec![false; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        let up = n.inputs.iter().any(|&j| after_barrier[j]);
        let barrier = matches!(n.kind, NodeKind::Op { barrier: true, .. });
        after_barrier[i] = up || barrier;
    }
    worker.dataflow::<u64, _, _>(|scope| {
        let mut streams: Vec<Option<S<'_>>> = vec![None; nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            let stream = match &n.kind {
                NodeKind::Source { .. } => {
                    let mut handle = Input::new();
                    let s = handle.to_stream(scope);
                    inputs.push((i, handle));
                    s
                }
                NodeKind::Op { build, .. } => {
                    let ctx = Ctx {
                        name: n.name.clone(),
                        shared: shared.clone(),
                        counters: shared.live.by_name[&n.name].clone(),
                        worker: index,
                    };
                    let ins: Vec<S<'_>> = n
                        .inputs
                        .iter()
                        .map(|&j| streams[j].clone().expect("inputs come first"))
                        .collect();
                    build(&ctx, ins)
                }
            };
            streams[i] = Some(stream);
        }
        for (i, s) in streams.iter().enumerate() {
            let s = s.clone().expect("every node has a stream");
            let consumers: Vec<usize> = (0..nodes.len())
                .filter(|&c| nodes[c].inputs.contains(&i))
                .collect();
            let feeds_barrier = consumers
                .iter()
                .any(|&c| matches!(nodes[c].kind, NodeKind::Op { barrier: true, .. }));
            if consumers.is_empty() {
                let s = s.probe_with(&all);
                if !after_barrier[i] {
                    s.probe_with(&flow);
                }
            } else if !after_barrier[i] && feeds_barrier {
                s.probe_with(&flow);
            }
        }
        // an abort from any worker reaches every worker
        let stop = shared.clone();
        abort_in
            .to_stream(scope)
            .unary::<timely::container::CapacityContainerBuilder<Vec<u8>>, _, _, _>(
                Exchange::new(|x: &u8| u64::from(*x)),
                "abort",
                move |_, _| {
                    move |input, _output| {
                        input.for_each(|_c, data| {
                            if !data.is_empty() {
                                stop.abort.store(true, Ordering::Relaxed);
                                data.clear();
                            }
                        });
                    }
                },
            )
            .probe_with(&all);
    });

    let lag: u64 = 4;
    let per_round = (shared.in_flight_bytes as u64 / lag).max(1);
    let mut next: Vec<u64> = vec![index as u64; inputs.len()];
    let mut round = 0u64;
    let mut told_others = false;
    let tell_others = |abort_in: &mut InputHandle<u64, _>, told: &mut bool| {
        if !*told {
            *told = true;
            for target in 0..peers {
                abort_in.send(target as u8);
            }
        }
    };
    loop {
        if shared.aborted() {
            if shared.abort.load(Ordering::Relaxed) {
                tell_others(&mut abort_in, &mut told_others);
            }
            break;
        }
        let mut remaining = false;
        for (k, (node, handle)) in inputs.iter_mut().enumerate() {
            let NodeKind::Source { count, generate } = &nodes[*node].kind else {
                continue;
            };
            let counters = &shared.live.by_name[&nodes[*node].name];
            let start = Instant::now();
            let (mut bytes, mut n) = (0u64, 0u64);
            while next[k] < *count && bytes < per_round && n < 1024 {
                match generate(next[k]) {
                    Ok((e, b)) => {
                        handle.send(e);
                        bytes += b;
                        n += 1;
                    }
                    Err(err) => {
                        shared.fail(err);
                        break;
                    }
                }
                next[k] += peers as u64;
            }
            counters.add(n, bytes, start.elapsed());
            if next[k] < *count {
                remaining = true;
            }
        }
        round += 1;
        for (_, h) in &mut inputs {
            h.advance_to(round);
        }
        abort_in.advance_to(round);
        if !remaining {
            break;
        }
        while !shared.aborted() && flow.less_than(&round.saturating_sub(lag)) {
            worker.step();
        }
    }
    if shared.abort.load(Ordering::Relaxed) {
        tell_others(&mut abort_in, &mut told_others);
    }
    drop(inputs);
    drop(abort_in);
    let deadline_after_abort = Duration::from_secs(2);
    let mut aborted_at: Option<Instant> = None;
    while !all.done() {
        if shared.aborted() {
            // give the abort message time to reach the other workers
            let t = *aborted_at.get_or_insert_with(Instant::now);
            if t.elapsed() > deadline_after_abort || cluster_failed().is_some() {
                break;
            }
        }
        worker.step_or_park(Some(Duration::from_millis(1)));
    }
    if !all.done() {
        // stopped early: timely would otherwise wait for the dataflow to
        // finish after this returns, which a dead worker never lets happen
        for id in worker.installed_dataflows() {
            worker.drop_dataflow(id);
        }
    }
}
