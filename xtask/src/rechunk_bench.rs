//! `cargo xtask bench rechunk` (also `cargo xtask bench-rechunk`, and part
//! of `cargo xtask bench`): the pancake → pencil rechunk
//! (`time=-1,latitude=11,longitude=24`, `max_mem` 256 MB, 2 workers) as
//! users run it, `xbeam rechunk SRC DST --target-chunks .. --max-mem 256MB
//! --workers 2 --overwrite`, side by side in one run with the anchors of
//! issue 9 on three stores made by `xbeam generate` (once, then reused, in
//! `target/bench-data/`): 1 GB and 4 GB with 2.8 MB chunks (`time=24` on
//! the 121 × 240 grid) and 0.25 GB with 116 KB chunks (`time=1`).
//!
//! On the 1 GB store also issue 8's one-stage rechunk (the
//! `one_stage_rechunk` example: `from_zarr → rechunk → to_zarr` on the
//! high-level API) with its groups in memory and with a 256 MiB budget,
//! interleaved with the CLI and `zarrs_reencode`; its targets (>= 700 and
//! >= 400 MB/s) are printed after issue 9's.
//!
//! Per store: the codec bound (the `codec_bound` example: every chunk
//! decoded and encoded again in memory, on 2 threads), `xbeam rechunk` and
//! `zarrs_reencode` (both arrays one after the other, `--chunk-shape S
//! --shard-shape S --cache-chunks 200`), each the best of 5 runs
//! interleaved; then one run each of xarray with dask
//! (`shared/bench/dask_rechunk.py --method xarray --threads 2`), rechunker
//! with dask (the same script in the `venv-zarr2` of
//! `shared/bench/setup_venvs.sh`) and xarray-beam on the `DirectRunner`
//! (`xbeam_rechunk.py --direct-num-workers 2 --direct-running-mode
//! multi_processing`; by default on the 1 GB store only). Peak RSS is
//! `/usr/bin/time -v`'s largest process (for xarray-beam also the summed
//! RSS of its process tree, sampled); MB/s are uncompressed input MB per
//! wall second. The tables, ratios and issue 9's targets (MET / NOT MET)
//! go to stderr and `target/bench-data/rechunk-bench.json`.
//!
//! Options (flags, or the environment for `cargo xtask bench`):
//! - `--stores 1gb,4gb,0.25gb_t1` (`XBEAM_BENCH_RECHUNK_STORES`): which
//!   stores, default all three;
//! - `--xarray-beam 1gb|all|none|STORE,..` (`XBEAM_BENCH_XARRAY_BEAM`): the
//!   stores xarray-beam runs on, default `1gb` (it needs minutes and many
//!   GB of RAM at 4 GB);
//! - `--timeout SECS` (`XBEAM_BENCH_TIMEOUT`, default 600) and
//!   `--rss-limit-gb GB` (`XBEAM_BENCH_RSS_LIMIT_GB`, default 14): a Python
//!   baseline past either is killed (its whole process group) and reported
//!   as skipped.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Runs of the fast tools (xbeam, `zarrs_reencode`, the codec bound).
/// Five: on these VMs the same binary's time varies up to 2x from run to
/// run (a process's first touch of fresh memory costs 0.06-2.6 s per GiB,
/// depending on what the host still backs), and best-of-3 still caught
/// slow runs.
const REPEAT: usize = 5;
const TARGET: &str = "time=-1,latitude=11,longitude=24";
const MAX_MEM: &str = "256MB";
const WORKERS: &str = "2";
/// Issue 9's bound on peak RSS: max-mem + 200 MB.
const RSS_BOUND: f64 = 256e6 + 200e6;
/// The bench stores' data arrays.
const ARRAYS: [&str; 2] = ["temperature", "geopotential"];
const TIME: &str = "/usr/bin/time";
/// The rows of `xbeam rechunk`: with `--max-mem 256MB`, and with the
/// budget it asks for when it refuses that one.
const XBEAM: &str = "xbeam rechunk (CLI)";
const XBEAM_ASKED: &str = "xbeam rechunk (CLI, budget it asks)";
/// The rows of issue 8's one-stage rechunk (the `one_stage_rechunk`
/// example, on the high-level API), on the 1 GB store only: groups all in
/// memory, and a 256 MiB budget (half of it for groups, then they spill).
const ONE_STAGE_MEM: &str = "xbeam one-stage (API, in memory)";
const ONE_STAGE_256: &str = "xbeam one-stage (API, 256 MiB)";
const ONE_STAGE_BUDGETS: [(&str, &str); 2] =
    [(ONE_STAGE_MEM, "8589934592"), (ONE_STAGE_256, "268435456")];

/// A bench store: its short name, directory name and `xbeam generate` flags.
pub(crate) struct Store {
    pub(crate) name: &'static str,
    pub(crate) dir: &'static str,
    pub(crate) generate: &'static [&'static str],
}

const STORES: [Store; 3] = [
    Store {
        name: "1gb",
        dir: "era5_1gb",
        generate: &["--gb", "1"],
    },
    Store {
        name: "4gb",
        dir: "era5_4gb",
        generate: &["--gb", "4"],
    },
    Store {
        name: "0.25gb_t1",
        dir: "era5_0.25gb_t1",
        generate: &["--gb", "0.25", "--chunks", "time=1"],
    },
];

pub(crate) struct Options {
    pub(crate) stores: Vec<&'static Store>,
    pub(crate) xarray_beam: Vec<&'static str>,
    pub(crate) timeout: Duration,
    pub(crate) rss_limit: f64,
}

/// Stores a list names but `all` leaves out, for the climatology bench (a
/// windowed climatology over years, as WeatherBench 2's runs over
/// decades): 1 GB of 7 years of hourly data on a 32 × 64 grid, in chunks
/// of 30 days (5.9 MB); and WeatherBench 2's own shape, 30 years of
/// 6-hourly data on its 64 × 32 grid (0.72 GB, 43 830 steps), in chunks of
/// 180 days (5.9 MB).
const EXTRA: [Store; 2] = [
    Store {
        name: "1gb_years",
        dir: "era5_1gb_years",
        generate: &[
            "--gb", "1", "--nlat", "32", "--nlon", "64", "--chunks", "time=720",
        ],
    },
    Store {
        name: "30y_6h",
        dir: "era5_30y_6h",
        generate: &[
            "--gb",
            "0.71811",
            "--step-hours",
            "6",
            "--nlat",
            "32",
            "--nlon",
            "64",
            "--chunks",
            "time=720",
        ],
    },
];

/// The stores a list names (`all`, `none`, or names separated by commas).
fn store_list(list: &str) -> Result<Vec<&'static Store>, String> {
    match list.trim() {
        "all" => return Ok(STORES.iter().collect()),
        "none" | "" => return Ok(Vec::new()),
        _ => {}
    }
    list.split(',')
        .map(|name| {
            STORES
                .iter()
                .chain(&EXTRA)
                .find(|s| s.name == name.trim())
                .ok_or_else(|| {
                    format!(
                        "unknown bench store {name:?}: expected 1gb, 4gb, 0.25gb_t1, 1gb_years, 30y_6h, all or none"
                    )
                })
        })
        .collect()
}

impl Options {
    pub(crate) fn parse(args: &[String]) -> Result<Options, String> {
        let env = |k: &str| std::env::var(k).ok();
        let mut stores = env("XBEAM_BENCH_RECHUNK_STORES").unwrap_or_else(|| "all".into());
        let mut xarray_beam = env("XBEAM_BENCH_XARRAY_BEAM").unwrap_or_else(|| "1gb".into());
        let mut timeout = env("XBEAM_BENCH_TIMEOUT").unwrap_or_else(|| "600".into());
        let mut rss_limit = env("XBEAM_BENCH_RSS_LIMIT_GB").unwrap_or_else(|| "14".into());
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let slot = match flag.as_str() {
                "--stores" => &mut stores,
                "--xarray-beam" => &mut xarray_beam,
                "--timeout" => &mut timeout,
                "--rss-limit-gb" => &mut rss_limit,
                other => {
                    return Err(format!(
                        "bench rechunk: unknown argument {other:?} (expected --stores, --xarray-beam, --timeout, --rss-limit-gb)"
                    ))
                }
            };
            slot.clone_from(
                it.next()
                    .ok_or_else(|| format!("bench rechunk: {flag} needs a value"))?,
            );
        }
        let number = |what: &str, s: &str| -> Result<f64, String> {
            s.parse::<f64>().ok().filter(|v| *v > 0.0).ok_or_else(|| {
                format!("bench rechunk: {what} must be a positive number, not {s:?}")
            })
        };
        Ok(Options {
            stores: store_list(&stores)?,
            xarray_beam: store_list(&xarray_beam)?.iter().map(|s| s.name).collect(),
            timeout: Duration::from_secs_f64(number("--timeout", &timeout)?),
            rss_limit: number("--rss-limit-gb", &rss_limit)? * 1e9,
        })
    }
}

/// One finished process (or several, one after the other).
pub(crate) struct Run {
    pub(crate) seconds: f64,
    /// The largest process's peak RSS, in bytes (`/usr/bin/time -v`).
    pub(crate) rss: Option<f64>,
    /// The peak of the summed RSS of the process group, when sampled.
    pub(crate) tree_rss: Option<f64>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Limits for a slow baseline: wall time and summed RSS of its processes.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) timeout: Duration,
    pub(crate) rss: f64,
}

/// The summed RSS (bytes) of the processes in process group `pgid`.
fn group_rss(pgid: u32) -> f64 {
    let mut total = 0.0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // after "(comm) ": state ppid pgrp ...
        let pgrp = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(2))
            .and_then(|s| s.parse::<u32>().ok());
        if pgrp != Some(pgid) {
            continue;
        }
        let pages = std::fs::read_to_string(format!("/proc/{pid}/statm"))
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok());
        total += pages.unwrap_or(0.0) * 4096.0;
    }
    total
}

/// The last few lines of `text`, on one line.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// `cmd` under `/usr/bin/time -v -o time_file` (when present), in a
/// process group of its own, its output piped.
fn wrap(cmd: &Command, time_file: &Path) -> Command {
    let mut full = if Path::new(TIME).is_file() {
        let mut w = Command::new(TIME);
        w.arg("-v").arg("-o").arg(time_file).arg(cmd.get_program());
        w
    } else {
        Command::new(cmd.get_program())
    };
    full.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => full.env(k, v),
            None => full.env_remove(k),
        };
    }
    full.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .process_group(0);
    full
}

/// Reads a pipe to its end on a thread of its own.
fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut text);
        }
        text
    })
}

/// Waits for `child` (the leader of its process group), sampling the
/// group's summed RSS; kills the group past either limit. Returns the exit
/// status, the peak summed RSS and why the group was killed.
fn watch(
    child: &mut std::process::Child,
    start: Instant,
    limits: Limits,
) -> std::io::Result<(std::process::ExitStatus, Option<f64>, Option<String>)> {
    let pgid = child.id();
    let mut tree: Option<f64> = None;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status, tree, None));
        }
        let rss = group_rss(pgid);
        tree = Some(tree.map_or(rss, |t| t.max(rss)));
        let reason = if start.elapsed() > limits.timeout {
            Some(format!(
                "timed out after {:.0} s",
                limits.timeout.as_secs_f64()
            ))
        } else if rss > limits.rss {
            Some(format!(
                "its processes' RSS reached {:.1} GB (limit {:.1} GB) after {:.0} s",
                rss / 1e9,
                limits.rss / 1e9,
                start.elapsed().as_secs_f64()
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            // the whole group this bench started, by its id
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .status();
            return Ok((child.wait()?, tree, Some(reason)));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `cmd` in a process group of its own under `/usr/bin/time -v` (when
/// present), timing it. With `limits`, the group's summed RSS is sampled
/// and the group is killed past either limit.
pub(crate) fn measure(
    cmd: &Command,
    scratch: &Path,
    limits: Option<Limits>,
) -> Result<Run, String> {
    let time_file = scratch.join("time-v.txt");
    let _ = std::fs::remove_file(&time_file);
    let shown = format!("{cmd:?}");
    let start = Instant::now();
    let mut child = wrap(cmd, &time_file)
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let (status, tree, killed) = match limits {
        None => child.wait().map(|s| (s, None, None)),
        Some(limits) => watch(&mut child, start, limits),
    }
    .map_err(|e| format!("cannot wait for {shown}: {e}"))?;
    let seconds = start.elapsed().as_secs_f64();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if let Some(reason) = killed {
        return Err(format!("killed: {reason}"));
    }
    if !status.success() {
        return Err(format!("failed ({status}): {}", tail(&stderr)));
    }
    let rss = std::fs::read_to_string(&time_file).ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|kb| kb * 1024.0)
    });
    Ok(Run {
        seconds,
        rss,
        tree_rss: tree,
        stdout,
        stderr,
    })
}

/// One line of a store's table.
#[derive(Default)]
pub(crate) struct Row {
    pub(crate) tool: &'static str,
    pub(crate) runs: usize,
    pub(crate) seconds: Option<f64>,
    /// The tool's own timer (xbeam's summary line, the scripts' RESULT).
    pub(crate) own_seconds: Option<f64>,
    pub(crate) rss: Option<f64>,
    pub(crate) tree_rss: Option<f64>,
    /// Why there is no time: failed or skipped.
    pub(crate) problem: Option<String>,
    pub(crate) note: String,
}

impl Row {
    pub(crate) fn failed(tool: &'static str, problem: String) -> Row {
        Row {
            tool,
            problem: Some(problem),
            ..Row::default()
        }
    }

    /// Adds one run: the best time, the largest RSS.
    pub(crate) fn add(&mut self, run: &Run, own: Option<f64>) {
        self.runs += 1;
        if self.seconds.is_none_or(|s| run.seconds < s) {
            self.seconds = Some(run.seconds);
            self.own_seconds = own;
        }
        let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.rss = max(self.rss, run.rss);
        self.tree_rss = max(self.tree_rss, run.tree_rss);
    }

    pub(crate) fn ok(&self) -> Option<f64> {
        self.seconds.filter(|_| self.problem.is_none())
    }
}

/// The JSON object on the line of `text` that starts with `prefix`.
pub(crate) fn json_line(text: &str, prefix: &str) -> Option<Value> {
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .and_then(|l| serde_json::from_str(l.trim()).ok())
}

/// Seconds and peak RSS (bytes) from xbeam's summary line: `xbeam
/// rechunk: in 1.00 GB, out 1.00 GB, 110 chunks, 5.50 s, 0.18 GB/s, peak
/// RSS 332 MB`.
fn xbeam_summary(stderr: &str) -> (Option<f64>, Option<f64>) {
    let Some(line) = stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("xbeam rechunk: "))
    else {
        return (None, None);
    };
    let mut seconds = None;
    let mut rss = None;
    for part in line.split(", ") {
        if let Some(s) = part.strip_suffix(" s") {
            seconds = s.trim().parse().ok();
        } else if let Some(r) = part.strip_prefix("peak RSS ") {
            rss = r
                .trim_end_matches(" MB")
                .trim()
                .parse::<f64>()
                .ok()
                .map(|mb| mb * 1e6);
        }
    }
    (seconds, rss)
}

/// Where `shared/bench/setup_venvs.sh` puts the baselines (`$XB_BASE`).
pub(crate) fn baseline_dir() -> Option<PathBuf> {
    std::env::var_os("XB_BASE").map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/xbeam-baseline"))
    })
}

/// The shared bench scripts, beside the repository (`../shared/bench`).
pub(crate) fn shared_bench(root: &Path) -> Option<PathBuf> {
    let dir = root.parent()?.join("shared/bench");
    dir.join("dask_rechunk.py").is_file().then_some(dir)
}

/// Uncompressed bytes of the store's data arrays and of one source chunk
/// (of one array), from their `.zarray`.
pub(crate) fn store_bytes(store: &Path) -> Result<(f64, f64), String> {
    let mut total = 0.0;
    let mut chunk = 0.0;
    for array in ARRAYS {
        let meta = super::read_json(&store.join(array).join(".zarray"))?;
        let itemsize = meta["dtype"]
            .as_str()
            .and_then(|d| d.get(2..)?.parse::<f64>().ok())
            .ok_or_else(|| format!("no numeric dtype in {}/{array}/.zarray", store.display()))?;
        let product = |key: &str| -> Option<f64> {
            meta[key]
                .as_array()?
                .iter()
                .map(Value::as_f64)
                .product::<Option<f64>>()
        };
        total += product("shape").ok_or("no shape in .zarray")? * itemsize;
        chunk = product("chunks").ok_or("no chunks in .zarray")? * itemsize;
    }
    Ok((total, chunk))
}

/// The store's time length, from its `time/.zarray`.
fn store_ntime(store: &Path) -> Result<u64, String> {
    let meta = super::read_json(&store.join("time/.zarray"))?;
    meta["shape"][0]
        .as_u64()
        .ok_or_else(|| format!("no shape in {}", store.join("time/.zarray").display()))
}

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "n/a".into(),
        |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

/// Removes a run's output and writes back dirty pages before the next.
pub(crate) fn clear(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
    }
    super::settle();
    Ok(())
}

/// Builds one release target of `xbeam` and copies it into `scratch`, so
/// that builds running beside the bench cannot swap it between runs.
pub(crate) fn build(
    root: &Path,
    scratch: &Path,
    what: &str,
    args: &[&str],
    built: &str,
) -> Result<PathBuf, String> {
    let mut all = vec!["build", "--release", "--locked", "-p", "xbeam"];
    all.extend_from_slice(args);
    super::run(what, super::cargo(&all))?;
    let from = root.join("target/release").join(built);
    let to = scratch.join(Path::new(built).file_name().unwrap_or_default());
    std::fs::copy(&from, &to)
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    Ok(to)
}

/// Makes `store` with the bench's `xbeam` unless an earlier run made it.
pub(crate) fn ensure_store(xbeam: &Path, data: &Path, store: &Store) -> Result<PathBuf, String> {
    let path = data.join(format!("{}.zarr", store.dir));
    let marker = data.join(format!("{}.done", store.dir));
    // the 1 GB store is shared with the other benches, which check .zgroup
    let ready = marker.exists() || (store.name == "1gb" && path.join(".zgroup").exists());
    if !ready {
        let mut gen = Command::new(xbeam);
        gen.arg("generate")
            .args(store.generate)
            .args(["--quiet", "--overwrite", "--out"])
            .arg(&path);
        super::run(&format!("bench: generate the {} store", store.name), gen)?;
        std::fs::write(&marker, "")
            .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    }
    Ok(path)
}

/// The programs a bench run uses.
struct Tools {
    xbeam: PathBuf,
    codec_bound: PathBuf,
    one_stage: PathBuf,
    zarrs: Option<PathBuf>,
    shared: Option<PathBuf>,
    python: Option<PathBuf>,
    python_zarr2: Option<PathBuf>,
}

/// The codec bound: best of `REPEAT` inside one process.
fn codec_row(tools: &Tools, src: &Path, scratch: &Path) -> Row {
    let tool = "codec bound (decode+encode in memory)";
    let mut codec = Command::new(&tools.codec_bound);
    codec.arg(src).arg(WORKERS).arg(REPEAT.to_string());
    match measure(&codec, scratch, None) {
        Ok(run) => match json_line(&run.stdout, "") {
            Some(v) => Row {
                tool,
                runs: REPEAT,
                seconds: v["seconds"].as_f64(),
                note: format!(
                    "zarrs codecs, {WORKERS} threads; decode alone {:.2} s",
                    v["decode_seconds"].as_f64().unwrap_or(f64::NAN)
                ),
                ..Row::default()
            },
            None => Row::failed(tool, format!("no JSON in {:?}", run.stdout)),
        },
        Err(e) => Row::failed(tool, e),
    }
}

/// One run of `xbeam rechunk`, as users run it, into `dst`.
fn xbeam_once(row: &mut Row, xbeam: &Path, max_mem: &str, src: &Path, dst: &Path, scratch: &Path) {
    let mut cmd = Command::new(xbeam);
    cmd.arg("rechunk")
        .arg(src)
        .arg(dst)
        .args(["--target-chunks", TARGET, "--max-mem", max_mem])
        .args(["--workers", WORKERS, "--overwrite"]);
    match clear(dst).and_then(|()| measure(&cmd, scratch, None)) {
        Ok(mut run) => {
            let (own, rss) = xbeam_summary(&run.stderr);
            if run.rss.is_none() {
                run.rss = rss;
            }
            row.add(&run, own);
            if let Some(r) = rss {
                row.note = format!("its summary line: peak RSS {:.0} MB", r / 1e6);
            }
        }
        Err(e) => row.problem = Some(e),
    }
}

/// One run of the `one_stage_rechunk` example into `dst` with a runner
/// budget of `budget` bytes; its own seconds come from its JSON line.
fn one_stage_once(
    row: &mut Row,
    example: &Path,
    budget: &str,
    src: &Path,
    dst: &Path,
    scratch: &Path,
) {
    let mut cmd = Command::new(example);
    cmd.arg(src).arg(dst).arg(budget).arg(WORKERS);
    match clear(dst).and_then(|()| measure(&cmd, scratch, None)) {
        Ok(run) => {
            let v = json_line(&run.stdout, "");
            let own = v.as_ref().and_then(|v| v["seconds"].as_f64());
            row.add(&run, own);
            if let Some(spilled) = v.as_ref().and_then(|v| v["spilled_bytes"].as_f64()) {
                row.note = format!(
                    "spilled {:.0} MB; own timer from open to done",
                    spilled / 1e6
                );
            }
        }
        Err(e) => row.problem = Some(e),
    }
}

/// One run of `zarrs_reencode` on both arrays, one after the other.
fn zarrs_once(zarrs: &Path, src: &Path, dst: &Path, scratch: &Path) -> Result<Run, String> {
    let shape = store_ntime(src).map(|n| format!("{n},11,24"))?;
    clear(dst)?;
    let mut total: Option<Run> = None;
    for array in ARRAYS {
        let mut cmd = Command::new(zarrs);
        // with --chunk-shape alone zarrs_tools 0.8.1 keeps the old chunks:
        // the shard shape makes it rechunk
        cmd.args(["--chunk-shape", &shape, "--shard-shape", &shape])
            .args(["--cache-chunks", "200"])
            .arg(src.join(array))
            .arg(dst.join(array));
        let run = measure(&cmd, scratch, None)?;
        total = Some(match total.take() {
            None => run,
            Some(t) => Run {
                seconds: t.seconds + run.seconds,
                rss: match (t.rss, run.rss) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                },
                ..t
            },
        });
    }
    total.ok_or_else(|| "no array".into())
}

/// One run of a Python baseline script from `shared/bench`, under the
/// limits.
fn python_row(
    tools: &Tools,
    opts: &Options,
    tool: &'static str,
    python: Option<&PathBuf>,
    (script, args): (&str, &[&str]),
    src: &Path,
    scratch: &Path,
) -> Row {
    let (Some(python), Some(shared)) = (python, &tools.shared) else {
        return Row::failed(
            tool,
            "skipped: ../shared/bench or its virtualenv is missing (shared/bench/setup_venvs.sh)"
                .into(),
        );
    };
    let dst = scratch.join("python.zarr");
    let mut cmd = Command::new(python);
    cmd.arg(shared.join(script))
        .args(args)
        .args(["--target-chunks", TARGET, "--input"])
        .arg(src)
        .arg("--output")
        .arg(&dst);
    let limits = Limits {
        timeout: opts.timeout,
        rss: opts.rss_limit,
    };
    let row = match measure(&cmd, scratch, Some(limits)) {
        Ok(run) => {
            let own = json_line(&run.stdout, "RESULT ").and_then(|v| v["seconds"].as_f64());
            let mut row = Row {
                tool,
                ..Row::default()
            };
            row.add(&run, own);
            row
        }
        Err(e) => Row::failed(tool, format!("skipped: {e}")),
    };
    let _ = clear(&dst);
    let _ = clear(&scratch.join("python.zarr.tmp"));
    row
}

/// `xbeam rechunk` and `zarrs_reencode` (and, when `one_stage`, issue 8's
/// one-stage example with both budgets), interleaved, best of `REPEAT`;
/// when xbeam refuses the budget, also xbeam with the budget it asks for.
fn fast_rows(tools: &Tools, src: &Path, scratch: &Path, one_stage: bool) -> Vec<Row> {
    let mut rows = Vec::new();
    // xbeam and zarrs_reencode, interleaved, best of REPEAT
    let mut xbeam = Row {
        tool: XBEAM,
        ..Row::default()
    };
    let cache = store_bytes(src).map_or(String::new(), |(_, chunk)| {
        format!(" = {:.0} MB here", 200.0 * chunk / 1e6)
    });
    let mut zarrs = Row {
        tool: "zarrs_reencode (cache 200 chunks)",
        note: format!("both arrays one after the other; cache 200 chunks{cache}"),
        ..Row::default()
    };
    if tools.zarrs.is_none() {
        zarrs.problem = Some(
            "skipped: not installed (shared/bench/setup_venvs.sh installs it; or set ZARRS_REENCODE)"
                .into(),
        );
    }
    let (xbeam_out, zarrs_out) = (scratch.join("xbeam.zarr"), scratch.join("zarrs.zarr"));
    let mut one_stage_rows: Vec<Row> = ONE_STAGE_BUDGETS
        .iter()
        .filter(|_| one_stage)
        .map(|&(tool, _)| Row {
            tool,
            ..Row::default()
        })
        .collect();
    for _ in 0..REPEAT {
        if xbeam.problem.is_none() {
            xbeam_once(&mut xbeam, &tools.xbeam, MAX_MEM, src, &xbeam_out, scratch);
        }
        for (row, (_, budget)) in one_stage_rows.iter_mut().zip(ONE_STAGE_BUDGETS) {
            if row.problem.is_none() {
                one_stage_once(row, &tools.one_stage, budget, src, &xbeam_out, scratch);
            }
        }
        if let (Some(bin), None) = (&tools.zarrs, &zarrs.problem) {
            match zarrs_once(bin, src, &zarrs_out, scratch) {
                Ok(run) => zarrs.add(&run, None),
                Err(e) => zarrs.problem = Some(e),
            }
        }
    }
    // a refusal names the smallest budget that works: time that too, so
    // the table still says how fast xbeam is on this store
    let suggested = xbeam.problem.as_deref().and_then(|p| {
        let rest = &p[p.find("use --max-mem ")? + "use --max-mem ".len()..];
        rest.split_whitespace().next().map(str::to_owned)
    });
    rows.push(xbeam);
    if let Some(max_mem) = suggested {
        let mut row = Row {
            tool: XBEAM_ASKED,
            ..Row::default()
        };
        for _ in 0..REPEAT {
            if row.problem.is_none() {
                xbeam_once(&mut row, &tools.xbeam, &max_mem, src, &xbeam_out, scratch);
            }
        }
        row.note = format!("--max-mem {max_mem}; {}", row.note);
        rows.push(row);
    }
    rows.extend(one_stage_rows);
    rows.push(zarrs);
    let _ = clear(&xbeam_out);
    let _ = clear(&zarrs_out);
    rows
}

/// Times every tool on one store and returns its rows.
fn bench_store(
    tools: &Tools,
    opts: &Options,
    store: &Store,
    src: &Path,
    scratch: &Path,
) -> Vec<Row> {
    let mut rows = vec![codec_row(tools, src, scratch)];
    rows.extend(fast_rows(tools, src, scratch, store.name == "1gb"));
    // the Python baselines, one run each
    let python = tools.python.as_ref();
    rows.push(python_row(
        tools,
        opts,
        "xarray + dask (2 threads)",
        python,
        (
            "dask_rechunk.py",
            &["--method", "xarray", "--threads", WORKERS],
        ),
        src,
        scratch,
    ));
    rows.push(python_row(
        tools,
        opts,
        "rechunker + dask (2 threads)",
        tools.python_zarr2.as_ref(),
        (
            "dask_rechunk.py",
            &[
                "--method",
                "rechunker",
                "--max-mem",
                MAX_MEM,
                "--threads",
                WORKERS,
            ],
        ),
        src,
        scratch,
    ));
    let tool = "xarray-beam DirectRunner (2 procs)";
    if opts.xarray_beam.contains(&store.name) {
        let args = [
            "--max-mem",
            MAX_MEM,
            "--direct-num-workers",
            WORKERS,
            "--direct-running-mode",
            "multi_processing",
        ];
        let mut row = python_row(
            tools,
            opts,
            tool,
            python,
            ("xbeam_rechunk.py", &args),
            src,
            scratch,
        );
        if let Some(t) = row.tree_rss {
            row.note = format!("process tree peak RSS {:.0} MB (sampled)", t / 1e6);
        }
        rows.push(row);
    } else {
        rows.push(Row::failed(
            tool,
            format!(
                "skipped: not on this store by default (--xarray-beam {} or XBEAM_BENCH_XARRAY_BEAM includes it)",
                store.name
            ),
        ));
    }
    rows
}

/// Prints a table's rows (runs, best seconds, GB/s of `gb` GB, peak RSS,
/// and how many times `ours` each took) under their header, and returns
/// them as JSON.
pub(crate) fn print_rows(rows: &[Row], gb: f64, ours: Option<f64>) -> Vec<Value> {
    eprintln!(
        "{:<30} {:>5} {:>9} {:>9} {:>10} {:>12}",
        "tool", "runs", "seconds", "GB/s", "peak RSS", "xbeam faster"
    );
    let mut out = Vec::new();
    for r in rows {
        let gbps = r.ok().map(|s| gb / s);
        eprintln!(
            "{:<30} {:>5} {:>9} {:>9} {:>10} {:>12}  {}",
            r.tool,
            r.runs,
            opt(r.ok(), 1.0, 2),
            opt(gbps, 1.0, 3),
            opt(r.rss, 1e6, 0) + " MB",
            ratio(r.ok(), ours),
            r.problem.as_deref().unwrap_or("")
        );
        out.push(json!({
            "tool": r.tool, "runs": r.runs, "seconds": r.ok(), "own_seconds": r.own_seconds,
            "gb_per_s": gbps, "peak_rss_mb": r.rss.map(|b| b / 1e6), "problem": r.problem,
        }));
    }
    out
}

/// Runs `python -c script want got` (a comparison in xarray): `equal` when
/// it succeeds, else `DIFFERS from <whose>: <its last line of stderr>`.
pub(crate) fn compare_in_python(
    python: &Path,
    script: &str,
    (want, got): (&Path, &Path),
    equal: &str,
    whose: &str,
) -> String {
    let out = Command::new(python)
        .args(["-c", script])
        .arg(want)
        .arg(got)
        .output();
    match out {
        Ok(o) if o.status.success() => equal.into(),
        Ok(o) => format!(
            "DIFFERS from {whose}: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => format!("not checked: {e}"),
    }
}

/// `a / b` as `1.23x`, or `-`.
pub(crate) fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

pub(crate) fn opt(v: Option<f64>, scale: f64, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{:.*}", digits, v / scale))
}

/// Prints a store's table and returns it as JSON.
fn report(
    store: &Store,
    src: &Path,
    bytes: f64,
    chunk: f64,
    load: (&str, &str),
    rows: &[Row],
) -> Value {
    // the first row of a tool that ran
    let find = |prefix: &str| {
        rows.iter()
            .filter(|r| r.tool.starts_with(prefix))
            .find_map(Row::ok)
    };
    let (codec, xbeam, zarrs) = (find("codec bound"), find("xbeam"), find("zarrs"));
    eprintln!(
        "\nrechunk {TARGET}, max-mem {MAX_MEM}, {WORKERS} workers, of {} ({:.0} MB, {:.0} KB chunks); load average {} before, {} after:",
        src.display(),
        bytes / 1e6,
        chunk / 1e3,
        load.0,
        load.1
    );
    eprintln!(
        "  {:<38} {:>5} {:>8} {:>8} {:>7} {:>9} {:>7} {:>7} {:>7}  notes",
        "tool", "runs", "wall s", "own s", "MB/s", "RSS MB", "/codec", "/zarrs", "/xbeam"
    );
    let mut json_rows = Vec::new();
    for r in rows {
        let secs = r.ok();
        let mbps = secs.map(|s| bytes / 1e6 / s);
        if let Some(problem) = &r.problem {
            eprintln!("  {:<38} {problem}", r.tool);
        } else {
            eprintln!(
                "  {:<38} {:>5} {:>8} {:>8} {:>7} {:>9} {:>7} {:>7} {:>7}  {}",
                r.tool,
                if r.runs > 1 {
                    format!("best{}", r.runs)
                } else {
                    r.runs.to_string()
                },
                opt(secs, 1.0, 2),
                opt(r.own_seconds, 1.0, 2),
                opt(mbps, 1.0, 0),
                opt(r.rss, 1e6, 0),
                ratio(secs, codec),
                ratio(secs, zarrs),
                ratio(secs, xbeam),
                r.note
            );
        }
        json_rows.push(json!({
            "tool": r.tool,
            "runs": r.runs,
            "seconds": secs,
            "own_seconds": r.own_seconds,
            "mb_per_s": mbps,
            "peak_rss_mb": r.rss.map(|v| v / 1e6),
            "tree_rss_mb": r.tree_rss.map(|v| v / 1e6),
            "vs_codec_bound": secs.zip(codec).map(|(a, b)| a / b),
            "vs_zarrs_reencode": secs.zip(zarrs).map(|(a, b)| a / b),
            "vs_xbeam": secs.zip(xbeam).map(|(a, b)| a / b),
            "status": r.problem.clone().unwrap_or_else(|| "ok".into()),
            "note": r.note,
        }));
    }
    json!({
        "store": store.name,
        "path": src.display().to_string(),
        "input_bytes": bytes,
        "chunk_bytes": chunk,
        "load_before": load.0,
        "load_after": load.1,
        "rows": json_rows,
    })
}

/// xbeam on a store: `None` if the store was not benched, an error (why,
/// and what the budget it asked for gave) if it failed, else its seconds,
/// peak RSS and the input bytes.
type XbeamResult = Option<Result<(f64, Option<f64>, f64), String>>;

fn xbeam_of(results: &[(&Store, f64, Vec<Row>)], name: &str) -> XbeamResult {
    let (_, bytes, rows) = results.iter().find(|(s, _, _)| s.name == name)?;
    let row = rows.iter().find(|r| r.tool == XBEAM)?;
    if let Some(s) = row.ok() {
        return Some(Ok((s, row.rss, *bytes)));
    }
    let mut why = format!(
        "xbeam rechunk failed: {}",
        row.problem.as_deref().unwrap_or("no run")
    );
    let asked = rows.iter().find(|r| r.tool == XBEAM_ASKED);
    if let Some((r, s)) = asked.and_then(|r| Some((r, r.ok()?))) {
        why = format!(
            "{why}; with {}: {:.2} GB/s ({s:.2} s), peak RSS {:.0} MB",
            r.note.split(';').next().unwrap_or_default(),
            bytes / 1e9 / s,
            r.rss.unwrap_or(f64::NAN) / 1e6
        );
    }
    Some(Err(why))
}

/// A target's verdict from xbeam's result: not measured, not met (xbeam
/// failed), or what `judge` says.
fn judge<T>(
    x: Option<Result<T, String>>,
    judge: impl FnOnce(T) -> Option<(String, bool)>,
) -> Option<(String, bool)> {
    match x? {
        Ok(v) => judge(v),
        Err(why) => Some((why, false)),
    }
}

/// Issue 9's targets from the measured rows, printed and as JSON: each
/// MET, NOT MET, or NOT MEASURED when a run it needs is missing.
fn targets(results: &[(&Store, f64, Vec<Row>)]) -> Vec<Value> {
    let row_secs = |store: &str, prefix: &str| {
        results
            .iter()
            .find(|(s, _, _)| s.name == store)?
            .2
            .iter()
            .find(|r| r.tool.starts_with(prefix))?
            .ok()
    };
    let rss_text = |rss: Option<f64>| rss.map_or("n/a".into(), |r| format!("{:.0} MB", r / 1e6));
    let rss_ok = |rss: Option<f64>| rss.is_some_and(|r| r <= RSS_BOUND);
    let zarrs1 = judge(xbeam_of(results, "1gb"), |(s, rss, _)| {
        let z = row_secs("1gb", "zarrs")?;
        Some((
            format!(
                "{:.2}x ({s:.2} s vs {z:.2} s), peak RSS {}",
                s / z,
                rss_text(rss)
            ),
            s / z <= 1.25 && rss_ok(rss),
        ))
    });
    let dask1 = judge(xbeam_of(results, "1gb"), |(s, _, _)| {
        let d = row_secs("1gb", "xarray + dask")?;
        Some((
            format!("{:.2}x ({s:.2} s vs {d:.2} s wall)", d / s),
            d / s >= 2.0,
        ))
    });
    let four = judge(xbeam_of(results, "4gb"), |(s, rss, bytes)| {
        let gbps = bytes / 1e9 / s;
        Some((
            format!("{gbps:.2} GB/s ({s:.2} s), peak RSS {}", rss_text(rss)),
            gbps >= 0.5 && rss_ok(rss),
        ))
    });
    // per-byte cost with 116 KB chunks against the 2.8 MB chunks at 1 GB
    let small = judge(xbeam_of(results, "0.25gb_t1"), |(s, rss, b)| {
        let (s1, _, b1) = xbeam_of(results, "1gb")?.ok()?;
        let (small, large) = (s / b * 1e9, s1 / b1 * 1e9);
        Some((
            format!(
                "{:.2}x ({small:.2} s/GB vs {large:.2} s/GB), peak RSS {}",
                small / large,
                rss_text(rss)
            ),
            small / large <= 2.0,
        ))
    });
    let issue8 = one_stage_targets(results);
    eprintln!("\ntargets (issue 9), xbeam rechunk as run above:");
    [
        (
            "1 GB: <= 1.25x zarrs_reencode's time, peak RSS <= 456 MB",
            zarrs1,
        ),
        ("1 GB: >= 2x faster than xarray + dask", dask1),
        ("4 GB: >= 0.5 GB/s, peak RSS <= 456 MB", four),
        (
            "116 KB chunks: <= 2x the per-byte cost of 2.8 MB chunks (1 GB)",
            small,
        ),
    ]
    .into_iter()
    .map(|(name, measured)| {
        let (verdict, text) = match &measured {
            Some((text, true)) => ("MET", text.as_str()),
            Some((text, false)) => ("NOT MET", text.as_str()),
            None => ("NOT MEASURED", "a run it needs is missing"),
        };
        eprintln!("  {verdict:<12} {name}: {text}");
        json!({"target": name, "result": text, "verdict": verdict})
    })
    .chain(issue8)
    .collect()
}

/// Issue 8's targets for the one-stage rechunk on the 1 GB store: MB/s in
/// memory and with a 256 MiB budget, with its time against
/// `zarrs_reencode`'s (the fastest tool) and xarray + dask's in the same
/// run beside each.
fn one_stage_targets(results: &[(&Store, f64, Vec<Row>)]) -> Vec<Value> {
    let Some((_, bytes, rows)) = results.iter().find(|(s, _, _)| s.name == "1gb") else {
        return Vec::new();
    };
    let secs = |prefix: &str| {
        rows.iter()
            .find(|r| r.tool.starts_with(prefix))
            .and_then(Row::ok)
    };
    let (zarrs, dask) = (secs("zarrs"), secs("xarray + dask"));
    eprintln!("\ntargets (issue 8), the one-stage rechunk example as run above:");
    [(ONE_STAGE_MEM, 700.0), (ONE_STAGE_256, 400.0)]
        .into_iter()
        .map(|(tool, target)| {
            let name = format!(
                "1 GB one-stage, {}: >= {target:.0} MB/s",
                &tool[tool.find('(').unwrap_or(0)..]
            );
            let (verdict, text) = match secs(tool) {
                Some(s) => {
                    let mbps = bytes / 1e6 / s;
                    let beside = |b: Option<f64>, who: &str| match b {
                        Some(b) if b >= s => format!(", {:.2}x faster than {who}", b / s),
                        Some(b) => format!(", {:.2}x {who}'s time", s / b),
                        None => String::new(),
                    };
                    (
                        if mbps >= target { "MET" } else { "NOT MET" },
                        format!(
                            "{mbps:.0} MB/s ({s:.2} s){}{}",
                            beside(zarrs, "zarrs_reencode"),
                            beside(dask, "xarray + dask")
                        ),
                    )
                }
                None => ("NOT MEASURED", "the example did not run".to_owned()),
            };
            eprintln!("  {verdict:<12} {name}: {text}");
            json!({"target": name, "result": text, "verdict": verdict})
        })
        .collect()
}

/// Builds xbeam and the codec-bound example, makes the stores, times every
/// tool on each and writes the report.
pub(crate) fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let opts = Options::parse(args)?;
    let data = root.join("target/bench-data");
    let scratch = data.join("rechunk-bench");
    std::fs::create_dir_all(&scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    // the CLI alone, as `cargo install` builds it (an example in the same
    // command would add the dev-dependencies' features), then the example
    let xbeam = build(
        root,
        &scratch,
        "bench: build the xbeam CLI (release)",
        &["--bin", "xbeam"],
        "xbeam",
    )?;
    let codec_bound = build(
        root,
        &scratch,
        "bench: build the codec_bound example (release)",
        &["--example", "codec_bound"],
        "examples/codec_bound",
    )?;
    let one_stage = build(
        root,
        &scratch,
        "bench: build the one_stage_rechunk example (release)",
        &["--example", "one_stage_rechunk"],
        "examples/one_stage_rechunk",
    )?;
    let base = baseline_dir();
    let venv = |name: &str| {
        base.as_ref()
            .map(|b| b.join(name).join("bin/python"))
            .filter(|p| p.is_file())
    };
    let tools = Tools {
        xbeam,
        codec_bound,
        one_stage,
        zarrs: super::copy_bench::zarrs_reencode(),
        shared: shared_bench(root),
        python: venv("venv"),
        python_zarr2: venv("venv-zarr2"),
    };
    let started = loadavg();
    let mut results = Vec::new();
    let mut stores_json = Vec::new();
    for store in &opts.stores {
        let src = ensure_store(&tools.xbeam, &data, store)?;
        let (bytes, chunk) = store_bytes(&src)?;
        let before = loadavg();
        let rows = bench_store(&tools, &opts, store, &src, &scratch);
        let after = loadavg();
        stores_json.push(report(store, &src, bytes, chunk, (&before, &after), &rows));
        results.push((*store, bytes, rows));
    }
    let verdicts = targets(&results);
    let report = json!({
        "job": format!("rechunk {TARGET}, max-mem {MAX_MEM}, {WORKERS} workers"),
        "unix_time": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        "load_average_start": started,
        "load_average_end": loadavg(),
        "rss_bound_mb": RSS_BOUND / 1e6,
        "stores": stores_json,
        "targets": verdicts,
    });
    let path = data.join("rechunk-bench.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&path, text + "\n")
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("\nwritten: {}", path.display());
    clear(&scratch)?;
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, _, rows)| rows.iter().any(|r| r.tool == XBEAM && r.problem.is_some()))
        .map(|(s, _, _)| s.name)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "xbeam rechunk --max-mem {MAX_MEM} failed on the {} store(s): see the tables above",
            failed.join(", ")
        ))
    }
}
