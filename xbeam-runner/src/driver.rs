//! Running a [`Pipeline`] on timely-dataflow: set up the run's state, start
//! the workers, drive the sources with probe-based flow control, then
//! drain, tear down and report.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::{Operator, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

use crate::erased::Erased;
use crate::graph::{Node, NodeKind, S};
use crate::metrics::{Counters, LiveMetrics};
use crate::progress::{progress_thread, Done};
use crate::runner::Mode;
use crate::state::{self, Ctx, RunState};
use crate::{Metrics, Pipeline, RunError, Runner};

/// Runs `pipeline` with `runner`.
pub(crate) fn run(pipeline: &Pipeline, runner: &Runner) -> Result<Metrics, RunError> {
    state::install_hook();
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
    let spill =
        crate::scratch::Scratch::new("spill", runner.spill_dir.as_deref()).map_err(|e| {
            RunError::Spill {
                message: "cannot create a spill directory".into(),
                io: Some(Arc::new(e)),
            }
        })?;
    // every group-by-key of every worker holds groups at the same time (a
    // multi-stage rechunk's shuffles overlap): each gets its share
    let barriers = nodes.iter().filter(|n| n.is_barrier()).count().max(1);
    let state = Arc::new(RunState::new(
        spill.path().to_path_buf(),
        runner.group_budget / runner.workers_in_process() / barriers,
        runner.in_flight_bytes,
        live_metrics(&nodes, runner),
    ));
    let _cluster =
        matches!(runner.mode, Mode::Cluster { .. }).then(|| state::register_cluster_run(&state));
    let done = Arc::new(Done::default());
    let reporter = progress_thread(runner, state.clone(), done.clone());
    let joined = execute(runner, Arc::new(nodes), state.clone(), &done);
    done.set();
    if let Some(h) = reporter {
        let _ = h.join();
    }
    drop(spill);
    outcome(&state, joined?)
}

/// Counters for every transform; sources know how many elements this
/// process's workers will make.
fn live_metrics(nodes: &[Arc<Node>], runner: &Runner) -> LiveMetrics {
    let mut live = LiveMetrics::default();
    let workers = runner.workers() as u64;
    for n in nodes {
        let counters = Counters::default();
        if let NodeKind::Source { count, .. } = n.kind {
            let mine: u64 = runner
                .local_workers()
                .map(|w| count.saturating_sub(w as u64).div_ceil(workers))
                .sum();
            counters.total.store(mine, Ordering::Relaxed);
        }
        live.by_name.insert(n.name.clone(), Arc::new(counters));
    }
    live
}

/// Runs the timely workers on their own thread and waits for them; `Err`
/// when a cluster peer never connected. Timely's teardown panics when a
/// peer's network thread died; that comes back as `Ok(Some(message))`.
fn execute(
    runner: &Runner,
    nodes: Arc<Vec<Arc<Node>>>,
    state: Arc<RunState>,
    done: &Done,
) -> Result<Option<String>, RunError> {
    let config = runner.timely_config();
    let started = Arc::new(AtomicBool::new(false));
    let started_in = started.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let joined = catch_unwind(AssertUnwindSafe(move || {
            match timely::execute(config, move |worker| {
                started_in.store(true, Ordering::Relaxed);
                let _run = state::enter_run(&state);
                worker_main(worker, &nodes, &state);
            }) {
                Ok(guards) => guards.join().into_iter().find_map(Result::err),
                Err(e) => Some(e),
            }
        }))
        .unwrap_or_else(|payload| Some(state::panic_message(&*payload)));
        let _ = tx.send(joined);
    });
    let begun = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(j) => return Ok(j),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Ok(Some("the timely runtime stopped without a result".into()))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if !started.load(Ordering::Relaxed) && begun.elapsed() > runner.connect_timeout {
                    done.set();
                    return Err(RunError::Cluster(format!(
                        "could not connect to every peer within {} s",
                        runner.connect_timeout.as_secs()
                    )));
                }
            }
        }
    }
}

/// The run's result: its first error, else a lost peer (the workers then
/// fail in its wake), a dead worker, a failed teardown, or a stop caused by
/// another process; else the metrics.
fn outcome(state: &RunState, joined: Option<String>) -> Result<Metrics, RunError> {
    if let Some(e) = state.take_error() {
        return Err(e);
    }
    if let Some(m) = state.cluster_failure() {
        return Err(RunError::Cluster(m));
    }
    if let Some(m) = state.worker_failure() {
        return Err(RunError::Worker(m));
    }
    if let Some(m) = joined {
        return Err(RunError::Cluster(format!("a worker failed: {m}")));
    }
    if state.stopped() {
        // stopped by another process's failure: its output is incomplete
        return Err(RunError::Cluster(
            "another process of the cluster failed and stopped the run (its error says why)".into(),
        ));
    }
    Ok(state.live.snapshot())
}

type Input = InputHandle<u64, timely::container::CapacityContainerBuilder<Vec<Erased>>>;

#[allow(clippy::too_many_lines)] // build, then drive the sources, then drain
fn worker_main(worker: &mut timely::worker::Worker, nodes: &[Arc<Node>], state: &Arc<RunState>) {
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
        after_barrier[i] = up || n.is_barrier();
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
                        state: state.clone(),
                        counters: state.live.by_name[&n.name].clone(),
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
            let feeds_barrier = consumers.iter().any(|&c| nodes[c].is_barrier());
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
        let stop = state.clone();
        abort_in
            .to_stream(scope)
            .unary::<timely::container::CapacityContainerBuilder<Vec<u8>>, _, _, _>(
                Exchange::new(|x: &u8| u64::from(*x)),
                "abort",
                move |_, _| {
                    move |input, _output| {
                        input.for_each(|_c, data| {
                            if !data.is_empty() {
                                stop.stop();
                                data.clear();
                            }
                        });
                    }
                },
            )
            .probe_with(&all);
    });

    let lag: u64 = 4;
    let in_flight = state.in_flight_bytes as u64;
    let per_round = (in_flight / lag).max(1);
    // rounds sent and not yet through to the barriers, with their bytes: a
    // round holds at least one element, so elements larger than a round's
    // share (a rechunk stage reading 20 MB chunks with 4 MB rounds) are
    // bounded by bytes, not only by the lag in rounds
    let mut outstanding: std::collections::VecDeque<(u64, u64)> = std::collections::VecDeque::new();
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
        if state.aborted() {
            if state.stopped() {
                tell_others(&mut abort_in, &mut told_others);
            }
            break;
        }
        let mut remaining = false;
        let mut sent = 0u64;
        for (k, (node, handle)) in inputs.iter_mut().enumerate() {
            let NodeKind::Source { count, generate } = &nodes[*node].kind else {
                continue;
            };
            let counters = &state.live.by_name[&nodes[*node].name];
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
                        state.fail(err);
                        break;
                    }
                }
                next[k] += peers as u64;
            }
            counters.add(n, bytes, start.elapsed());
            sent += bytes;
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
        outstanding.push_back((round - 1, sent));
        loop {
            while outstanding
                .front()
                .is_some_and(|&(r, _)| !flow.less_than(&(r + 1)))
            {
                outstanding.pop_front();
            }
            let bytes: u64 = outstanding.iter().map(|&(_, b)| b).sum();
            let over =
                outstanding.len() as u64 > lag || (bytes > in_flight && outstanding.len() > 1);
            if state.aborted() || !over {
                break;
            }
            worker.step();
        }
    }
    if state.stopped() {
        tell_others(&mut abort_in, &mut told_others);
    }
    drop(inputs);
    drop(abort_in);
    let deadline_after_abort = Duration::from_secs(2);
    let mut aborted_at: Option<Instant> = None;
    while !all.done() {
        if state.aborted() {
            // give the abort message time to reach the other workers
            let t = *aborted_at.get_or_insert_with(Instant::now);
            if t.elapsed() > deadline_after_abort || state.cluster_failure().is_some() {
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
