//! Engine semantics with 1 and 4 workers, spilling, failures, metrics and
//! progress; a 2-process cluster on 127.0.0.1 (including a spilling
//! group-by-key and a killed peer); peak memory of a group-by-key over
//! 4× its budget, measured on a child process.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xbeam_runner::{CombineFn, Pipeline, RunError, Runner, Sum};

/// Mean as (sum, count): the accumulator differs from the output.
struct Mean;
impl CombineFn<u64> for Mean {
    type Acc = (u64, u64);
    type Out = f64;
    fn create(&self) -> (u64, u64) {
        (0, 0)
    }
    fn add(&self, acc: (u64, u64), v: u64) -> (u64, u64) {
        (acc.0 + v, acc.1 + 1)
    }
    fn merge(&self, a: (u64, u64), b: (u64, u64)) -> (u64, u64) {
        (a.0 + b.0, a.1 + b.1)
    }
    fn extract(&self, acc: (u64, u64)) -> f64 {
        if acc.1 == 0 {
            f64::NAN
        } else {
            acc.0 as f64 / acc.1 as f64
        }
    }
}

fn runner(workers: usize) -> Runner {
    Runner::local_with_workers(workers).quiet()
}

/// Everything one run of the semantics pipeline produced, sorted.
#[derive(Debug, PartialEq)]
struct Outputs {
    mapped: Vec<u64>,
    flat: Vec<u64>,
    filtered: Vec<u64>,
    grouped: Vec<(u64, Vec<u64>)>,
    expecting: Vec<(u64, Vec<u64>)>,
    per_key: Vec<(u64, u64)>,
    means: Vec<(String, u64)>,
    global: Vec<u64>,
    empty_global: Vec<u64>,
    flattened: Vec<u64>,
    reshuffled: Vec<u64>,
    for_each_sum: u64,
}

fn semantics(workers: usize) -> Outputs {
    let p = Pipeline::new();
    let numbers = p.source("numbers", 200, Ok::<_, String>);
    let created = p.create("created", (1000..1010u64).collect());
    let mapped = numbers
        .map("double", |x| Ok::<_, String>(2 * x))
        .collect("mapped");
    let flat = created
        .flat_map("repeat", |x| Ok::<_, String>(vec![x; (x % 3) as usize]))
        .collect("flat");
    let filtered = numbers
        .filter("odd", |x| Ok::<_, String>(x % 2 == 1))
        .collect("filtered");
    let keyed = numbers.map("key", |x| Ok::<_, String>((x % 7, x)));
    let grouped = keyed.group_by_key("group").collect("grouped");
    let expecting = keyed
        .group_by_key_expecting("group-expecting", |k: &u64| if *k < 4 { 29 } else { 28 })
        .collect("expecting");
    let per_key = keyed.combine_per_key("sum-per-key", Sum).collect("per_key");
    let means = keyed
        .map("stringly", |(k, v)| Ok::<_, String>((format!("k{k}"), v)))
        .combine_per_key("mean-per-key", Mean)
        .map("rounded", |(k, m)| {
            Ok::<_, String>((k, (m * 1000.0).round() as u64))
        })
        .collect("means");
    let global = numbers.combine_globally("sum-all", Sum).collect("global");
    let empty_global = numbers
        .filter("none", |_| Ok::<_, String>(false))
        .combine_globally("sum-none", Sum)
        .collect("empty_global");
    let flattened = p
        .flatten("both", &[&numbers, &created])
        .collect("flattened");
    let reshuffled = numbers.reshuffle("reshuffle").collect("reshuffled");
    let total = Arc::new(AtomicU64::new(0));
    let t = total.clone();
    numbers.for_each("sink", move |x| {
        t.fetch_add(x, Ordering::Relaxed);
        Ok::<_, String>(())
    });
    let metrics = p.run(&runner(workers)).unwrap();
    assert_eq!(metrics.get("numbers").unwrap().elements, 200);
    assert_eq!(metrics.get("numbers").unwrap().total, 200);
    assert_eq!(metrics.get("double").unwrap().elements, 200);
    assert_eq!(metrics.get("double").unwrap().bytes, 200 * 8);
    assert_eq!(metrics.get("group").unwrap().elements, 7);
    assert_eq!(
        metrics.get("sink").unwrap().elements,
        200,
        "a sink counts what it consumed"
    );
    assert_eq!(metrics.get("sink").unwrap().bytes, 200 * 8);
    let sorted = |mut v: Vec<u64>| {
        v.sort_unstable();
        v
    };
    let groups = |v: Vec<(u64, Vec<u64>)>| {
        let mut v: Vec<(u64, Vec<u64>)> = v.into_iter().map(|(k, vs)| (k, sorted(vs))).collect();
        v.sort();
        v
    };
    Outputs {
        mapped: sorted(mapped.take().unwrap()),
        flat: sorted(flat.take().unwrap()),
        filtered: sorted(filtered.take().unwrap()),
        grouped: groups(grouped.take().unwrap()),
        expecting: groups(expecting.take().unwrap()),
        per_key: {
            let mut v = per_key.take().unwrap();
            v.sort_unstable();
            v
        },
        means: {
            let mut v = means.take().unwrap();
            v.sort();
            v
        },
        global: global.take().unwrap(),
        empty_global: empty_global.take().unwrap(),
        flattened: sorted(flattened.take().unwrap()),
        reshuffled: sorted(reshuffled.take().unwrap()),
        for_each_sum: total.load(Ordering::Relaxed),
    }
}

#[test]
fn every_transform_gives_the_same_results_with_1_and_4_workers() {
    let one = semantics(1);
    let four = semantics(4);
    assert_eq!(one, four);
    let all: Vec<u64> = (0..200).collect();
    assert_eq!(one.mapped, all.iter().map(|x| 2 * x).collect::<Vec<_>>());
    assert_eq!(
        one.flat,
        vec![1000, 1001, 1001, 1003, 1004, 1004, 1006, 1007, 1007, 1009]
    );
    assert_eq!(
        one.filtered,
        all.iter()
            .copied()
            .filter(|x| x % 2 == 1)
            .collect::<Vec<_>>()
    );
    assert_eq!(one.grouped.len(), 7);
    assert_eq!(
        one.grouped[3],
        (3, all.iter().copied().filter(|x| x % 7 == 3).collect())
    );
    assert_eq!(one.expecting, one.grouped);
    assert_eq!(one.per_key[0], (0, (0..200).filter(|x| x % 7 == 0).sum()));
    assert_eq!(one.means[0], ("k0".to_owned(), 98_000));
    assert_eq!(one.global, vec![19_900]);
    assert_eq!(
        one.empty_global,
        vec![0],
        "an empty input still gives create()'s result"
    );
    let mut both: Vec<u64> = all.iter().copied().chain(1000..1010).collect();
    both.sort_unstable();
    assert_eq!(one.flattened, both);
    assert_eq!(one.reshuffled, all);
    assert_eq!(one.for_each_sum, 19_900);
}

/// Places `(slot, value)` in a key's buffer of `SLOTS`; a slot out of
/// range or filled twice is an error.
struct Place;
const SLOTS: usize = 50;
impl xbeam_runner::FoldFn<u64, (usize, u64)> for Place {
    type Acc = Vec<Option<u64>>;
    type Out = Vec<u64>;
    type Error = String;
    fn size_hint(&self, _: &u64, _: &(usize, u64)) -> Option<usize> {
        Some(SLOTS * 16)
    }
    fn create(&self, _: &u64, first: (usize, u64)) -> Result<Self::Acc, String> {
        let mut acc = vec![None; SLOTS];
        self.add(&mut acc, first)?;
        Ok(acc)
    }
    fn add(&self, acc: &mut Self::Acc, (slot, v): (usize, u64)) -> Result<(), String> {
        match acc.get_mut(slot) {
            Some(s @ None) => {
                *s = Some(v);
                Ok(())
            }
            Some(Some(_)) => Err(format!("slot {slot} came twice")),
            None => Err(format!("slot {slot} is out of range")),
        }
    }
    fn extract(&self, _: &u64, acc: Self::Acc) -> Result<Vec<u64>, String> {
        Ok(acc.into_iter().map(|v| v.unwrap_or(u64::MAX)).collect())
    }
}

#[test]
fn fold_by_key_folds_within_its_budget_and_groups_and_spills_beyond_it() {
    let spill_root = tempfile::tempdir().unwrap();
    // 20 keys of 50 slots; key 19 gets only 10 values (extracted at the end)
    let run = |workers: usize, budget: usize, count: usize| {
        let p = Pipeline::new();
        let out = p
            .source("values", 20 * SLOTS as u64, |i| {
                Ok::<_, String>((i % 20, ((i / 20) as usize, i)))
            })
            .filter("short key 19", |(k, (slot, _))| {
                Ok::<_, String>(*k != 19 || *slot < 10)
            })
            .fold_by_key_expecting("place", move |_| count, Place)
            .collect("out");
        let runner = runner(workers)
            .group_budget(budget)
            .spill_dir(spill_root.path());
        let metrics = p.run(&runner).unwrap();
        let mut got = out.take().unwrap();
        got.sort();
        (got, metrics.get("place").unwrap().spilled_bytes)
    };
    let (in_memory, none) = run(1, 1 << 30, SLOTS);
    assert_eq!(none, 0);
    assert_eq!(in_memory.len(), 20);
    for (k, values) in &in_memory {
        let want: Vec<u64> = (0..SLOTS as u64)
            .map(|s| {
                if *k == 19 && s >= 10 {
                    u64::MAX
                } else {
                    s * 20 + k
                }
            })
            .collect();
        assert_eq!(values, &want, "key {k}");
    }
    // one worker sees the keys in turn: room for two accumulators, the
    // other keys wait in groups, which spill
    let (mixed, spilled) = run(1, 2 * SLOTS * 16 + 500, SLOTS);
    assert!(spilled > 0, "nothing spilled");
    assert_eq!(mixed, in_memory);
    let (mixed, _) = run(4, 4 * (2 * SLOTS * 16 + 500), SLOTS);
    assert_eq!(mixed, in_memory);
    // without a count every key is extracted at the end
    let (at_end, _) = run(2, 1 << 30, usize::MAX);
    assert_eq!(at_end, in_memory);
    assert_eq!(
        std::fs::read_dir(spill_root.path()).unwrap().count(),
        0,
        "spill files are removed"
    );
}

#[test]
fn a_fold_error_names_the_key_and_stops_the_run() {
    for budget in [1 << 30, 100] {
        let p = Pipeline::new();
        p.create("values", vec![(7u64, (3usize, 1u64)), (7, (3, 2))])
            .fold_by_key_expecting("place", |_| SLOTS, Place)
            .collect("out");
        let err = p.run(&runner(2).group_budget(budget)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("place") && text.contains("slot 3 came twice"),
            "{text}"
        );
        assert!(text.contains('7'), "the key is named: {text}");
    }
}

#[test]
fn group_by_key_spills_beyond_its_budget_and_cleans_up() {
    let spill_root = tempfile::tempdir().unwrap();
    let run = |budget: usize| {
        let p = Pipeline::new();
        let groups = p
            .source("values", 4000, |i| {
                Ok::<_, String>((i % 13, vec![i as u8; 100]))
            })
            .group_by_key("group")
            .collect("out");
        let runner = runner(4).group_budget(budget).spill_dir(spill_root.path());
        let metrics = p.run(&runner).unwrap();
        let mut got: Vec<(u64, Vec<Vec<u8>>)> = groups.take().unwrap();
        for (_, vs) in &mut got {
            vs.sort();
        }
        got.sort();
        (got, metrics.get("group").unwrap().spilled_bytes)
    };
    let (in_memory, none) = run(1 << 30);
    let (spilled, bytes) = run(20_000);
    assert_eq!(none, 0);
    assert!(bytes > 100_000, "spilled {bytes} bytes");
    assert_eq!(in_memory, spilled);
    assert_eq!(in_memory.len(), 13);
    assert_eq!(in_memory.iter().map(|(_, v)| v.len()).sum::<usize>(), 4000);
    assert_eq!(
        std::fs::read_dir(spill_root.path()).unwrap().count(),
        0,
        "spill files are removed"
    );
}

#[test]
fn a_failing_map_stops_the_run_with_the_transform_and_element() {
    for workers in [1, 4] {
        let p = Pipeline::new();
        p.source("numbers", 1000, Ok::<_, String>)
            .map("check", |x: u64| {
                if x == 500 {
                    Err(format!("{x} is not allowed"))
                } else {
                    Ok(x)
                }
            })
            .collect("out");
        let err = p.run(&runner(workers)).unwrap_err();
        assert!(
            matches!(
                &err,
                RunError::Element { transform, element, message, .. }
                    if transform == "check" && element == "element 500" && message == "500 is not allowed"
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "transform \"check\" failed on element 500: 500 is not allowed"
        );
    }
}

#[test]
fn a_panic_in_user_code_becomes_an_error() {
    let p = Pipeline::new();
    p.create("words", vec!["a".to_owned(), "boom".to_owned()])
        .map("explode", |w: String| {
            assert!(w != "boom", "cannot handle {w}");
            Ok::<_, String>(w)
        })
        .collect("out");
    let err = p.run(&runner(2)).unwrap_err();
    match err {
        RunError::Panic {
            transform,
            element,
            message,
        } => {
            assert_eq!(transform, "explode");
            assert_eq!(element, "element \"boom\"");
            assert_eq!(message, "cannot handle boom");
        }
        other => panic!("expected a panic error, found {other:?}"),
    }
    // a source that fails
    let p = Pipeline::new();
    p.source("gen", 10, |i| if i == 7 { Err("no seven") } else { Ok(i) })
        .collect("out");
    let err = p.run(&runner(2)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "transform \"gen\" failed on index 7: no seven"
    );
    // big elements are described by their size
    let p = Pipeline::new();
    p.create("big", vec![vec![0u8; 10_000]])
        .map("reject", |_v: Vec<u8>| Err::<u8, _>("too big"))
        .collect("out");
    let err = p.run(&runner(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "transform \"reject\" failed on an element of 10000 bytes: too big"
    );
}

#[test]
fn duplicate_names_are_rejected() {
    let p = Pipeline::new();
    let a = p.create("a", vec![1u64]);
    a.map("m", Ok::<_, String>).collect("out");
    a.map("m", Ok::<_, String>).collect("out2");
    let err = p.run(&runner(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid pipeline: two transforms are named \"m\": names must be unique"
    );
}

/// Runs `count` source elements of `size` bytes into a slow sink on one
/// worker with `runner`; the most elements generated and not yet consumed
/// at any time.
fn most_waiting(count: u64, size: usize, sleep_ms: u64, runner: &Runner) -> u64 {
    let generated = Arc::new(AtomicU64::new(0));
    let consumed = Arc::new(AtomicU64::new(0));
    let max_gap = Arc::new(AtomicU64::new(0));
    let (g, c, m) = (generated.clone(), consumed.clone(), max_gap.clone());
    let p = Pipeline::new();
    p.source("chunks", count, move |i| {
        g.fetch_add(1, Ordering::SeqCst);
        Ok::<_, String>((i, vec![0u8; size]))
    })
    .for_each("slow", move |_x| {
        std::thread::sleep(Duration::from_millis(sleep_ms));
        let done = c.fetch_add(1, Ordering::SeqCst) + 1;
        m.fetch_max(
            generated.load(Ordering::SeqCst).saturating_sub(done),
            Ordering::SeqCst,
        );
        Ok::<_, String>(())
    });
    p.run(runner).unwrap();
    assert_eq!(consumed.load(Ordering::SeqCst), count);
    max_gap.load(Ordering::SeqCst)
}

#[test]
fn sources_are_throttled_and_progress_is_reported() {
    // 64 elements of 1 MB each, 4 MB in flight: the slow sink never sees
    // many more elements generated than it has consumed
    let calls = Arc::new(AtomicU64::new(0));
    let seen = calls.clone();
    let runner = Runner::local_with_workers(1)
        .quiet()
        .in_flight_bytes(4 << 20)
        .on_progress(move |m| {
            assert!(m.get("chunks").is_some());
            seen.fetch_add(1, Ordering::Relaxed);
        });
    let gap = most_waiting(64, 1 << 20, 2, &runner);
    assert!(
        gap <= 8,
        "at most ~4 MB (+ one round) in flight, found {gap} elements"
    );
    assert!(
        calls.load(Ordering::Relaxed) >= 1,
        "the progress callback ran"
    );
}

#[test]
fn sources_with_elements_larger_than_a_round_are_bounded_by_bytes() {
    // 24 elements of 8 MiB, 4 MiB in flight (rounds of 1 MiB): one element
    // being consumed and one sent, not one per round of the lag
    let runner = Runner::local_with_workers(1)
        .quiet()
        .in_flight_bytes(4 << 20);
    let gap = most_waiting(24, 8 << 20, 5, &runner);
    assert!(
        gap <= 1,
        "{gap} elements of 8 MiB were waiting with 4 MiB in flight"
    );
}

// ---------------------------------------------------------------- cluster

/// The pipeline every cluster process runs; returns sorted results.
fn cluster_pipeline(runner: &Runner) -> Result<Vec<(u64, u64, usize)>, RunError> {
    let p = Pipeline::new();
    let slow = std::env::var("XBEAM_TEST_SLOW").is_ok();
    let fail_at: Option<u64> = std::env::var("XBEAM_TEST_FAIL_AT")
        .ok()
        .and_then(|v| v.parse().ok());
    let out = p
        .source("values", 2000, move |i| {
            if slow {
                std::thread::sleep(Duration::from_millis(20));
            }
            if Some(i) == fail_at {
                return Err(format!("cannot make value {i}"));
            }
            Ok::<_, String>((i % 17, vec![(i % 251) as u8; 200]))
        })
        .group_by_key("group")
        .map("summarize", |(k, vs): (u64, Vec<Vec<u8>>)| {
            let sum: u64 = vs.iter().map(|v| u64::from(v[0])).sum();
            Ok::<_, String>((k, sum, vs.len()))
        })
        .collect("out");
    p.run(runner)?;
    let mut got = out.take()?;
    got.sort_unstable();
    Ok(got)
}

#[test]
#[ignore = "helper: run in a child process by the cluster tests"]
fn cluster_process() {
    let hosts: Vec<String> = std::env::var("XBEAM_TEST_HOSTS")
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    let index: usize = std::env::var("XBEAM_TEST_INDEX").unwrap().parse().unwrap();
    let out = std::env::var("XBEAM_TEST_OUT").unwrap();
    // a small budget, so the group-by-key spills
    let runner = Runner::cluster(hosts, index, 2)
        .quiet()
        .group_budget(50_000);
    match cluster_pipeline(&runner) {
        Ok(got) => std::fs::write(out, serde_json::to_string(&got).unwrap()).unwrap(),
        Err(e) => {
            eprintln!("cluster process {index} failed: {e}");
            std::process::exit(3);
        }
    }
}

/// Two loopback addresses and the result file of each process.
fn two_process_setup() -> (tempfile::TempDir, Vec<String>, Vec<std::path::PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let outs = (0..2)
        .map(|i| dir.path().join(format!("out{i}.json")))
        .collect();
    (dir, free_ports(2), outs)
}

fn free_ports(n: usize) -> Vec<String> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect()
}

fn spawn_process(
    hosts: &[String],
    index: usize,
    out: &std::path::Path,
    slow: bool,
) -> std::process::Child {
    spawn_process_with(hosts, index, out, slow, None)
}

fn spawn_process_with(
    hosts: &[String],
    index: usize,
    out: &std::path::Path,
    slow: bool,
    fail_at: Option<u64>,
) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        "cluster_process",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("XBEAM_TEST_HOSTS", hosts.join(","))
    .env("XBEAM_TEST_INDEX", index.to_string())
    .env("XBEAM_TEST_OUT", out)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if slow {
        cmd.env("XBEAM_TEST_SLOW", "1");
    }
    if let Some(i) = fail_at {
        cmd.env("XBEAM_TEST_FAIL_AT", i.to_string());
    }
    cmd.spawn().unwrap()
}

#[test]
fn two_processes_with_two_workers_each_match_the_local_run() {
    let local = cluster_pipeline(&runner(4).group_budget(50_000)).unwrap();
    assert_eq!(local.len(), 17);
    assert_eq!(local.iter().map(|r| r.2).sum::<usize>(), 2000);
    let (_dir, hosts, outs) = two_process_setup();
    let mut children: Vec<_> = (0..2)
        .map(|i| spawn_process(&hosts, i, &outs[i], false))
        .collect();
    for (i, c) in children.iter_mut().enumerate() {
        let status = wait_with_timeout(c, Duration::from_mins(2));
        assert!(
            status.is_some_and(|s| s.success()),
            "process {i} failed: {:?}",
            output_of(c)
        );
    }
    let got: Vec<(u64, u64, usize)> =
        serde_json::from_str(&std::fs::read_to_string(&outs[0]).unwrap()).unwrap();
    assert_eq!(got, local, "process 0 collects everything");
    let other: Vec<(u64, u64, usize)> =
        serde_json::from_str(&std::fs::read_to_string(&outs[1]).unwrap()).unwrap();
    assert!(other.is_empty(), "process 1 collects nothing");
}

#[test]
fn a_killed_peer_ends_the_run_with_an_error() {
    let (_dir, hosts, outs) = two_process_setup();
    let mut p0 = spawn_process(&hosts, 0, &outs[0], true);
    let mut p1 = spawn_process(&hosts, 1, &outs[1], true);
    std::thread::sleep(Duration::from_secs(3));
    p1.kill().unwrap();
    let _ = p1.wait();
    let start = Instant::now();
    let status = wait_with_timeout(&mut p0, Duration::from_mins(1));
    let (stdout, stderr) = output_of(&mut p0);
    let status = status.unwrap_or_else(|| panic!("the surviving process hung\n{stdout}\n{stderr}"));
    assert!(!status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("cluster process 0 failed: cluster:"),
        "{stderr}"
    );
    assert!(start.elapsed() < Duration::from_mins(1));
    assert!(!outs[0].exists());
}

fn wait_with_timeout(
    c: &mut std::process::Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(s) = c.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    None
}

fn output_of(c: &mut std::process::Child) -> (String, String) {
    use std::io::Read;
    let mut out = String::new();
    let mut err = String::new();
    if let Some(s) = c.stdout.as_mut() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(s) = c.stderr.as_mut() {
        let _ = s.read_to_string(&mut err);
    }
    (out, err)
}

// ----------------------------------------------------------------- memory

const BUDGET: usize = 64 << 20;

#[test]
#[ignore = "helper: run in a child process by the memory test"]
fn memory_process() {
    // 256 values of 1 MiB in 16 groups: 4x the budget
    let p = Pipeline::new();
    let out = p
        .source("values", 256, |i| {
            Ok::<_, String>((i % 16, vec![(i % 200) as u8; 1 << 20]))
        })
        .group_by_key("group")
        .map("sizes", |(k, vs): (u64, Vec<Vec<u8>>)| {
            Ok::<_, String>((k, vs.len(), vs.iter().map(|v| u64::from(v[0])).sum::<u64>()))
        })
        .collect("out");
    let metrics = p
        .run(&Runner::local_with_workers(2).quiet().group_budget(BUDGET))
        .unwrap();
    let got = out.take().unwrap();
    assert_eq!(got.len(), 16);
    assert!(got.iter().all(|(_, n, _)| *n == 16));
    report_peak(metrics.get("group").unwrap().spilled_bytes);
}

/// Prints this process's peak RSS and `spilled` for [`child_peak`].
fn report_peak(spilled: u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    println!("PEAK_RSS_BYTES={}", hwm_kb * 1024);
    println!("SPILLED_BYTES={spilled}");
}

/// Runs the ignored test `name` in a child process; its peak RSS and
/// spilled bytes.
fn child_peak(name: &str) -> (u64, u64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            name,
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value = |key: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.split(key).nth(1))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {stdout}"))
    };
    (value("PEAK_RSS_BYTES="), value("SPILLED_BYTES="))
}

#[test]
fn group_by_key_over_4x_its_budget_stays_under_budget_plus_150_mb() {
    let (peak, spilled) = child_peak("memory_process");
    assert!(spilled > (128 << 20), "spilled only {spilled} bytes");
    assert!(
        peak < (BUDGET as u64) + (150 << 20),
        "peak RSS {} MB is over the {} MB budget + 150 MB",
        peak >> 20,
        BUDGET >> 20
    );
}

#[test]
#[ignore = "helper: run in a child process by the merge memory test"]
fn merge_memory_process() {
    // 256 values of 1 MiB in 16 groups of 16 MiB that arrive one group
    // after the other, an 8 MiB budget: ~30 spill runs of one or two keys
    // each. Reading every run's next record at once held nearly all of it.
    let p = Pipeline::new();
    let out = p
        .source("values", 256, |i| {
            Ok::<_, String>((i / 16, vec![(i % 200) as u8; 1 << 20]))
        })
        .group_by_key("group")
        .map("sizes", |(k, vs): (u64, Vec<Vec<u8>>)| {
            Ok::<_, String>((k, vs.len(), vs.iter().map(|v| u64::from(v[0])).sum::<u64>()))
        })
        .collect("out");
    let metrics = p
        .run(
            &Runner::local_with_workers(1)
                .quiet()
                .group_budget(8 << 20)
                .in_flight_bytes(4 << 20),
        )
        .unwrap();
    let mut got = out.take().unwrap();
    got.sort_unstable();
    let want: Vec<(u64, usize, u64)> = (0..16)
        .map(|k| (k, 16, (k * 16..k * 16 + 16).map(|i| i % 200).sum()))
        .collect();
    assert_eq!(got, want);
    report_peak(metrics.get("group").unwrap().spilled_bytes);
}

#[test]
fn a_spill_merge_holds_one_group_at_a_time() {
    let (peak, spilled) = child_peak("merge_memory_process");
    assert!(spilled > (200 << 20), "spilled only {spilled} bytes");
    // one 16 MiB group, the budget, the values in flight and the binary
    assert!(
        peak < (100 << 20),
        "peak RSS {} MB: the merge held more than one group of 16 MiB",
        peak >> 20
    );
}

#[test]
fn results_are_independent_of_key_types() {
    let p = Pipeline::new();
    let out = p
        .create(
            "pairs",
            vec![
                ((1u8, "a".to_owned()), 1u64),
                ((1u8, "a".to_owned()), 2),
                ((2u8, "b".to_owned()), 3),
            ],
        )
        .group_by_key("group")
        .collect("out");
    p.run(&runner(3)).unwrap();
    let got: BTreeMap<(u8, String), Vec<u64>> = out
        .take()
        .unwrap()
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_unstable();
            (k, v)
        })
        .collect();
    assert_eq!(got[&(1, "a".to_owned())], vec![1, 2]);
    assert_eq!(got[&(2, "b".to_owned())], vec![3]);
}

#[test]
fn a_peer_that_never_comes_up_is_an_error_not_a_hang() {
    let hosts = free_ports(2);
    let p = Pipeline::new();
    p.create("one", vec![1u64]).collect("out");
    let start = Instant::now();
    let err = p
        .run(
            &Runner::cluster(hosts, 0, 1)
                .quiet()
                .connect_timeout(Duration::from_secs(3)),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cluster: could not connect to every peer within 3 s"
    );
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn spill_files_are_removed_when_a_run_fails() {
    let spill_root = tempfile::tempdir().unwrap();
    let p = Pipeline::new();
    p.source("values", 3000, |i| Ok::<_, String>((i % 5, vec![1u8; 100])))
        .group_by_key("group")
        .map(
            "fail",
            |(k, _vs): (u64, Vec<Vec<u8>>)| {
                if k == 3 {
                    Err("bad group")
                } else {
                    Ok(k)
                }
            },
        )
        .collect("out");
    let runner = runner(2).group_budget(10_000).spill_dir(spill_root.path());
    let metrics_err = p.run(&runner).unwrap_err();
    assert!(
        metrics_err.to_string().contains("bad group"),
        "{metrics_err}"
    );
    assert_eq!(std::fs::read_dir(spill_root.path()).unwrap().count(), 0);
}

#[test]
fn a_spill_failure_keeps_its_io_error_as_the_source() {
    // the spill directory's parent is a regular file: creating it fails
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let p = Pipeline::new();
    p.create("pairs", (0..100u64).map(|i| (i % 7, i)).collect::<Vec<_>>())
        .group_by_key("group")
        .collect("out");
    let err = p
        .run(&runner(2).group_budget(100).spill_dir(file.join("spill")))
        .unwrap_err();
    assert!(matches!(err, RunError::Spill { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("spill: cannot create a spill directory"),
        "{err}"
    );
    let io = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("the IO error is the source");
    assert_eq!(io.kind(), std::io::ErrorKind::NotADirectory, "{io}");
}

#[test]
fn an_element_failing_in_one_process_fails_every_process() {
    let (_dir, hosts, outs) = two_process_setup();
    // index 1001 belongs to global worker 1001 % 4 = 1, in process 0;
    // process 1 must not report partial results as success
    let mut children: Vec<_> = (0..2)
        .map(|i| spawn_process_with(&hosts, i, &outs[i], false, Some(1001)))
        .collect();
    let mut errors = Vec::new();
    for c in &mut children {
        let status = wait_with_timeout(c, Duration::from_mins(1)).expect("no hang");
        assert!(!status.success());
        errors.push(output_of(c).1);
    }
    assert!(
        errors[0].contains("transform \"values\" failed on index 1001: cannot make value 1001"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("cluster: another process of the cluster failed"),
        "{}",
        errors[1]
    );
    assert!(!outs[0].exists() && !outs[1].exists());
}

/// An element whose size panics: a panic outside the transforms' user code.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Bomb(u64);

impl xbeam_runner::ByteSize for Bomb {
    fn byte_size(&self) -> usize {
        assert!(self.0 != 77, "bomb 77");
        8
    }
}

#[test]
fn a_panic_outside_user_code_fails_the_run_instead_of_hanging() {
    let p = Pipeline::new();
    p.source("bombs", 400, Ok::<_, String>)
        .map("arm", |i| Ok::<_, String>(Bomb(i)))
        .reshuffle("spread")
        .for_each("sink", |_b: Bomb| Ok::<_, String>(()));
    let start = Instant::now();
    let err = p.run(&runner(4)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("worker failed: worker thread timely:work-"),
        "{err}"
    );
    assert!(err.to_string().ends_with("panicked: bomb 77"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(30));
}

/// A value that counts how often it is serialized.
#[derive(Clone, serde::Deserialize)]
struct Counted(u64);

static SERIALIZED: AtomicU64 = AtomicU64::new(0);

impl serde::Serialize for Counted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SERIALIZED.fetch_add(1, Ordering::SeqCst);
        s.serialize_u64(self.0)
    }
}

impl xbeam_runner::ByteSize for Counted {
    fn byte_size(&self) -> usize {
        8
    }
}

/// In one process an element is never serialized: not when its stream has
/// several consumers (a probe, two maps), not at a group-by-key, not at a
/// combine, with 1 or 4 workers.
#[test]
fn one_process_never_serializes_elements() {
    for workers in [1, 4] {
        SERIALIZED.store(0, Ordering::SeqCst);
        let p = Pipeline::new();
        let values = p
            .source("values", 2000, |i| Ok::<_, String>((i % 7, Counted(i))))
            .map("identity", Ok::<_, String>);
        let grouped = values.group_by_key("group").collect("groups");
        let sums = values
            .map("plain", |(k, v): (u64, Counted)| Ok::<_, String>((k, v.0)))
            .combine_per_key("sum", Sum)
            .collect("sums");
        let again = values.reshuffle("spread").collect("again");
        p.run(&runner(workers)).unwrap();
        assert_eq!(grouped.take().unwrap().len(), 7);
        assert_eq!(sums.take().unwrap().len(), 7);
        assert_eq!(again.take().unwrap().len(), 2000);
        assert_eq!(
            SERIALIZED.load(Ordering::SeqCst),
            0,
            "elements were serialized with {workers} workers"
        );
    }
}

/// Run state is per run: two pipelines run at once in one process, one
/// fails, the other completes with every element.
#[test]
fn two_pipelines_run_at_once_and_one_failure_stays_its_own() {
    let failing = std::thread::spawn(|| {
        let p = Pipeline::new();
        p.source("slow numbers", 400, |i| {
            std::thread::sleep(Duration::from_millis(1));
            Ok::<_, String>(i)
        })
        .map("fail at 100", |x: u64| {
            if x == 100 {
                Err("boom at 100".to_owned())
            } else {
                Ok(x)
            }
        })
        .for_each("sink", |_x: u64| Ok::<_, String>(()));
        p.run(&runner(2))
    });
    let p = Pipeline::new();
    let out = p
        .source("slow numbers", 400, |i| {
            std::thread::sleep(Duration::from_millis(1));
            Ok::<_, String>(i)
        })
        .map("double", |x: u64| Ok::<_, String>(2 * x))
        .collect("out");
    let ok = p.run(&runner(2));
    let err = failing.join().unwrap().unwrap_err();
    assert!(err.to_string().contains("boom at 100"), "{err}");
    ok.unwrap();
    let mut got = out.take().unwrap();
    got.sort_unstable();
    assert_eq!(got, (0..400).map(|x| 2 * x).collect::<Vec<u64>>());
}

/// Composite transforms scope their inner names; a name reused inside two
/// different scopes is fine, reused in one scope is an error.
#[test]
fn composite_transforms_scope_names() {
    let p = Pipeline::new();
    let twice = |c: xbeam_runner::PCollection<u64>| {
        c.map("inc", |x: u64| Ok::<_, String>(x + 1))
            .apply("inner", |c: xbeam_runner::PCollection<u64>| {
                c.map("inc", |x: u64| Ok::<_, String>(x + 1))
            })
    };
    let out = p
        .create("xs", vec![1u64, 2, 3])
        .apply("a", twice)
        .apply("b", twice)
        .collect("out");
    let metrics = p.run(&runner(2)).unwrap();
    let mut got = out.take().unwrap();
    got.sort_unstable();
    assert_eq!(got, vec![5, 6, 7]);
    for name in ["a/inc", "a/inner/inc", "b/inc", "b/inner/inc"] {
        assert_eq!(metrics.get(name).map(|m| m.elements), Some(3), "{name}");
    }
    let p = Pipeline::new();
    let xs = p.create("xs", vec![1u64]);
    xs.apply("a", |c: xbeam_runner::PCollection<u64>| {
        c.map("same", Ok::<_, String>);
        c.map("same", Ok::<_, String>);
    });
    let err = p.run(&runner(1)).unwrap_err();
    assert!(err.to_string().contains("\"a/same\""), "{err}");
}

/// The error user code returned stays reachable: downcast, and its own
/// source chain below the message.
#[test]
fn element_errors_keep_their_cause() {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot write chunk {0}")]
    struct WriteFailed(u64, #[source] std::io::Error);

    let p = Pipeline::new();
    p.create("xs", vec![3u64]).for_each("write", |x: u64| {
        Err(WriteFailed(
            x,
            std::io::Error::other("no space left on device"),
        ))
    });
    let err = p.run(&runner(1)).unwrap_err();
    assert!(err.to_string().ends_with("cannot write chunk 3"), "{err}");
    let cause = err.cause().and_then(|c| c.downcast_ref::<WriteFailed>());
    assert_eq!(cause.map(|c| c.0), Some(3));
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("no space left on device"));
}
