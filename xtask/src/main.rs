//! Developer automation for the xbeam workspace: `cargo xtask <command>`.
//!
//! - `ci`: what CI runs — format check, clippy with `-D warnings` on every
//!   target, every test (unit, integration, property, snapshot, doctests),
//!   rustdoc with `-D warnings`, the README's main-job command, and
//!   `cargo package` of every crate.
//! - `fmt`: format the workspace.
//! - `interop`: xbeam against Python xarray / zarr-python in both
//!   directions, in a virtualenv of its own (`target/interop-venv`, pinned
//!   by `xtask/interop/requirements.txt`).
//! - `bench`: the criterion benchmarks (pass criterion arguments after `--`),
//!   then the Python baselines on the same data, side by side, then
//!   `xbeam copy` beside `zarrs_reencode` (`bench-copy` runs only that),
//!   then `xbeam rechunk` beside the codec bound, `zarrs_reencode`,
//!   xarray + dask, rechunker and xarray-beam on three stores
//!   (`bench rechunk` or `bench-rechunk` runs only that).
//! - `fuzz [--seconds N]`: the fuzz targets of `xbeam-io/tests/fuzz.rs`
//!   (metadata parsing, CF decoding, chunk decoding), each for N seconds
//!   (default 180) in release mode under a 4 GB address-space limit, with
//!   the executions of each reported.

mod climatology_bench;
mod copy_bench;
mod engine_bench;
mod ingest_bench;
mod interop_ingest;
mod interop_rechunk;
mod interop_stats;
mod rechunk_bench;

use std::env;
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("fmt") => run("format", cargo(&["fmt", "--all"])),
        Some("bench") if args.get(1).is_some_and(|a| a == "rechunk") => {
            rechunk_bench::run(&workspace_root(), &args[2..])
        }
        Some("bench") if args.get(1).is_some_and(|a| a == "climatology") => {
            climatology_bench::run(&workspace_root(), &args[2..])
        }
        Some("bench") if args.get(1).is_some_and(|a| a == "ingest") => {
            ingest_bench::run(&workspace_root(), &args[2..])
        }
        Some("bench") => bench(&args[1..]),
        Some("bench-copy") => copy_bench::run(&workspace_root()),
        Some("bench-rechunk") => rechunk_bench::run(&workspace_root(), &args[1..]),
        Some("interop") => interop(),
        Some("fuzz") => fuzz(&args[1..]),
        other => {
            if let Some(unknown) = other {
                eprintln!("error: unknown xtask command {unknown:?}");
            }
            eprintln!(
                "usage: cargo xtask <ci | fmt | interop | fuzz [--seconds N] | bench [-- criterion args] | bench-copy | bench rechunk|climatology|ingest [--stores ..] [--inputs ..] [--xarray-beam ..] [--timeout S] [--rss-limit-gb G]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(args);
    cmd
}

/// Runs one step, timing it; a failing step stops the run with its name.
fn run(step: &str, mut cmd: Command) -> Result<(), String> {
    eprintln!("\n==> {step}: {cmd:?}");
    let start = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{step}: cannot start {cmd:?}: {e}"))?;
    eprintln!(
        "==> {step}: {} in {:.1} s",
        if status.success() { "ok" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("step '{step}' failed ({status})"))
    }
}

/// Runs every fuzz target for `--seconds` each (see the module docs).
fn fuzz(args: &[String]) -> Result<(), String> {
    let seconds: u64 = match args {
        [] => 180,
        [flag, n] if flag == "--seconds" => n
            .parse()
            .map_err(|_| format!("--seconds expects a whole number, found {n:?}"))?,
        other => {
            return Err(format!(
                "usage: cargo xtask fuzz [--seconds N], found {other:?}"
            ))
        }
    };
    run(
        "build the fuzz targets",
        cargo(&[
            "test",
            "--release",
            "--locked",
            "-p",
            "xbeam-io",
            "--test",
            "fuzz",
            "--no-run",
        ]),
    )?;
    let started = Instant::now();
    // the address-space limit turns a runaway allocation into an abort
    // (a finding) instead of the machine swapping
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "ulimit -v 4000000 && exec \"$0\" test --release --locked -p xbeam-io --test fuzz -- --nocapture --test-threads 1",
    ])
    .arg(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
    .env("XBEAM_FUZZ_SECONDS", seconds.to_string())
    .current_dir(workspace_root());
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run the fuzz targets: {e}"))?;
    let text = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("FUZZ ")).collect();
    for l in &lines {
        println!("{l}");
    }
    if !out.status.success() {
        eprintln!("{text}");
        return Err(format!(
            "a fuzz target found a failure ({}); its input is above",
            out.status
        ));
    }
    println!(
        "==> fuzz: {} targets, {seconds} s each, no findings, in {:.0} s",
        lines.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn ci() -> Result<(), String> {
    let start = Instant::now();
    run("format check", cargo(&["fmt", "--all", "--", "--check"]))?;
    run(
        "clippy",
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    let mut tests = cargo(&["test", "--workspace", "--all-targets", "--locked"]);
    // Snapshot tests must match the committed snapshots, never rewrite them.
    tests.env("INSTA_UPDATE", "no").env("CI", "true");
    run("tests", tests)?;
    run(
        "doctests",
        cargo(&["test", "--workspace", "--doc", "--locked"]),
    )?;
    let mut docs = cargo(&["doc", "--workspace", "--no-deps", "--locked"]);
    docs.env("RUSTDOCFLAGS", "-D warnings");
    run("docs (no broken links)", docs)?;
    interop()?;
    run(
        "main job (README)",
        cargo(&["run", "--release", "--locked", "-p", "xbeam", "--", "demo"]),
    )?;
    forget_packaged_sources()?;
    // Verification builds get a target dir of their own, wiped first: cargo
    // treats the packaged siblings as immutable registry crates, so builds
    // of an earlier commit's `xbeam-key 0.1.0` left in `target/` would be
    // reused without looking at the new sources.
    let verify_dir = workspace_root().join("target").join("package-verify");
    if verify_dir.exists() {
        std::fs::remove_dir_all(&verify_dir)
            .map_err(|e| format!("cannot clear {}: {e}", verify_dir.display()))?;
    }
    let mut package = cargo(&[
        "package",
        "--workspace",
        "--exclude",
        "xtask",
        "--allow-dirty",
        "--locked",
    ]);
    package.env("CARGO_TARGET_DIR", &verify_dir);
    run("package", package)?;
    eprintln!(
        "\nci: all steps passed in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Removes earlier unpacked copies of this workspace's crates from cargo's
/// local-registry caches (`$CARGO_HOME/registry/src/-<hash>/xbeam*`).
///
/// `cargo package --workspace` verifies each crate against its siblings
/// through a temporary local registry; cargo unpacks that registry into a
/// cache keyed by the checkout's path and, since a version is immutable,
/// reuses an earlier unpacked `xbeam-key-0.1.0` from the same path: a later
/// commit would then be verified against stale sources and fail. Only
/// local registries (names starting with `-`) are touched, never crates.io.
fn forget_packaged_sources() -> Result<(), String> {
    let home = env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")))
        .ok_or("cannot find cargo's home: neither CARGO_HOME nor HOME is set")?;
    let Ok(registries) = std::fs::read_dir(home.join("registry").join("src")) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for krate in std::fs::read_dir(registry.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if krate.file_name().to_string_lossy().starts_with("xbeam") {
                std::fs::remove_dir_all(krate.path())
                    .map_err(|e| format!("cannot remove stale {}: {e}", krate.path().display()))?;
            }
        }
    }
    Ok(())
}

/// The workspace root: xtask's own folder sits directly inside it.
fn workspace_root() -> std::path::PathBuf {
    let xtask = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}

fn bench(extra: &[String]) -> Result<(), String> {
    let mut cmd = cargo(&["bench", "--workspace", "--locked"]);
    if !extra.is_empty() {
        cmd.arg("--").args(extra.iter().skip_while(|a| *a == "--"));
    }
    run("benchmarks", cmd)?;
    zarr_baseline()?;
    engine_bench::report()?;
    copy_bench::run(&workspace_root())?;
    rechunk_bench::run(&workspace_root(), &[])?;
    ingest_bench::run(&workspace_root(), &[])
}

/// Builds the release `xbeam` binary and the `one_stage_rechunk` example
/// in one command (so the copy and rechunk benches share one build: the
/// example's dev-dependencies change feature unification), makes the 1 GB
/// store if it is missing, and returns the release directory and the store.
fn release_bench_setup(
    root: &std::path::Path,
) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    run(
        "bench: build xbeam and the rechunk example (release)",
        cargo(&[
            "build",
            "--release",
            "--locked",
            "-p",
            "xbeam",
            "--bin",
            "xbeam",
            "--example",
            "one_stage_rechunk",
        ]),
    )?;
    let release = root.join("target/release");
    let store = root.join("target/bench-data/era5_1gb.zarr");
    if !store.join(".zgroup").exists() {
        let mut gen = Command::new(release.join("xbeam"));
        gen.args(["generate", "--gb", "1", "--quiet", "--overwrite", "--out"])
            .arg(&store);
        run("bench: generate the 1 GB store", gen)?;
    }
    Ok((release, store))
}

fn read_json(path: &std::path::Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("invalid JSON in {}: {e}", path.display()))
}

/// The mean time of a criterion benchmark, in seconds.
fn criterion_mean(group: &str, name: &str) -> Result<f64, String> {
    let path = workspace_root()
        .join("target/criterion")
        .join(group)
        .join(name)
        .join("new/estimates.json");
    let estimates = read_json(&path)?;
    let mean = estimates["mean"]["point_estimate"]
        .as_f64()
        .ok_or_else(|| format!("no mean estimate in {}", path.display()))?;
    Ok(mean / 1e9)
}

/// xarray + dask on the store the `zarr_1gb` benchmarks used, right after
/// them, and the ratios.
fn zarr_baseline() -> Result<(), String> {
    let root = workspace_root();
    let gb = env::var("XBEAM_BENCH_GB").unwrap_or_else(|_| "1".into());
    let store = root.join(format!("target/bench-data/era5_{gb}gb.zarr"));
    if !store.exists() {
        return Err(format!(
            "{} is missing: the zarr_io benchmark makes it",
            store.display()
        ));
    }
    let python = python_env()?;
    let out = Command::new(&python)
        .arg(root.join("xtask/bench/xarray_zarr_io.py"))
        .arg(&store)
        .output()
        .map_err(|e| format!("cannot run the xarray baseline: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "xarray baseline failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let result: serde_json::Value = serde_json::from_str(&line)
        .map_err(|e| format!("unexpected baseline output {line:?}: {e}"))?;
    let field = |k: &str| result[k].as_f64();
    let (Some(x_read), Some(x_write), Some(bytes)) =
        (field("read_s"), field("write_s"), field("bytes"))
    else {
        return Err(format!("unexpected baseline output: {line}"));
    };
    let read = criterion_mean("zarr_1gb", "read")?;
    let write = criterion_mean("zarr_1gb", "write")?;
    let decode = criterion_mean("zarr_1gb", "decode_in_memory")?;
    let mbps = |s: f64| bytes / 1e6 / s;
    eprintln!(
        "\nZarr IO on {} ({:.0} MB uncompressed), side by side:",
        store.display(),
        bytes / 1e6
    );
    eprintln!(
        "  xbeam read             {read:7.3} s  {:7.0} MB/s",
        mbps(read)
    );
    eprintln!(
        "  xbeam decode in memory {decode:7.3} s  {:7.0} MB/s  (codec-bound limit)",
        mbps(decode)
    );
    eprintln!(
        "  xarray+dask read       {x_read:7.3} s  {:7.0} MB/s",
        mbps(x_read)
    );
    eprintln!(
        "  xbeam write            {write:7.3} s  {:7.0} MB/s",
        mbps(write)
    );
    eprintln!(
        "  xarray+dask write      {x_write:7.3} s  {:7.0} MB/s",
        mbps(x_write)
    );
    eprintln!("  read:  {:.1}x faster than xarray+dask (target >= 5x); {:.2}x the codec-bound time (target <= 1.5x)", x_read / read, read / decode);
    eprintln!("  write: {:.1}x faster than xarray+dask", x_write / write);
    Ok(())
}

/// The interop virtualenv's Python, created and filled on first use (and
/// again whenever `requirements.txt` changes).
pub(crate) fn python_env() -> Result<std::path::PathBuf, String> {
    let root = workspace_root();
    let venv = root.join("target").join("interop-venv");
    let requirements = root.join("xtask").join("interop").join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    let stamp = venv.join("xbeam-requirements.txt");
    let python = venv.join("bin").join("python");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return Ok(python);
    }
    let base = ["python3.11", "python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .ok_or("no python3.11 or python3 on PATH: the interop tests need Python 3.11")?;
    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .map_err(|e| format!("cannot clear {}: {e}", venv.display()))?;
    }
    let mut create = Command::new(base);
    create.args(["-m", "venv"]).arg(&venv);
    run("python virtualenv", create)?;
    let mut install = Command::new(&python);
    install
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements);
    run("python packages (pinned)", install)?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(python)
}

/// xbeam against xarray / zarr-python, both directions: fixtures written by
/// xarray are read by xbeam and compared value for value; stores written
/// by xbeam (v2, v3, sharded) are opened by xarray and compared with
/// `assert_identical`.
/// The debug builds the interop checks run: the io example, the CLI and
/// the pipeline example.
fn build_interop_binaries() -> Result<(), String> {
    for (what, args) in [
        (
            "xbeam side",
            &["-p", "xbeam-io", "--example", "interop"][..],
        ),
        ("xbeam CLI", &["-p", "xbeam", "--bin", "xbeam"][..]),
        (
            "the pipeline example",
            &["-p", "xbeam", "--example", "interop_pipeline"][..],
        ),
    ] {
        let mut all = vec!["build", "--locked"];
        all.extend_from_slice(args);
        run(&format!("interop: build {what}"), cargo(&all))?;
    }
    Ok(())
}

fn interop() -> Result<(), String> {
    let root = workspace_root();
    let python = python_env()?;
    build_interop_binaries()?;
    let exe = root
        .join("target")
        .join("debug")
        .join("examples")
        .join("interop");
    let dir = root.join("target").join("interop");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
    }
    let scripts = root.join("xtask").join("interop");
    let mut make = Command::new(&python);
    make.arg(scripts.join("make_fixtures.py")).arg(&dir);
    run("interop: fixtures written by xarray", make)?;
    let listing = read_json(&dir.join("fixtures.json"))?;
    let names: Vec<String> = listing
        .as_array()
        .map(|fixtures| {
            fixtures
                .iter()
                .filter_map(|f| f["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        return Err("the fixture list names no fixtures".into());
    }
    let copies = dir.join("copies");
    let start = Instant::now();
    for name in &names {
        let store = dir.join(format!("{name}.zarr"));
        quiet(
            Command::new(&exe)
                .arg("dump")
                .arg(&store)
                .arg(dir.join(format!("{name}.dump.json"))),
        )?;
        for (tag, extra) in copy_variants(name) {
            let out = copies.join(format!("{name}.{tag}.zarr"));
            quiet(
                Command::new(&exe)
                    .arg("copy")
                    .arg(&store)
                    .arg(&out)
                    .args(extra),
            )?;
        }
    }
    // a store from `xbeam generate`, with `xbeam info --json --stats`
    let xbeam = root.join("target").join("debug").join("xbeam");
    let generated = copies.join("generated.zarr");
    quiet(
        Command::new(&xbeam)
            .args([
                "generate", "--gb", "0.004", "--nlat", "19", "--nlon", "36", "--levels", "3",
            ])
            .args(["--chunks", "time=7", "--format", "3", "--out"])
            .arg(&generated),
    )?;
    let info = Command::new(&xbeam)
        .args(["info", "--json", "--stats"])
        .arg(&generated)
        .output()
        .map_err(|e| format!("cannot run xbeam info: {e}"))?;
    if !info.status.success() {
        return Err(format!(
            "xbeam info failed: {}",
            String::from_utf8_lossy(&info.stderr)
        ));
    }
    std::fs::write(dir.join("generated.info.json"), &info.stdout)
        .map_err(|e| format!("cannot write the info JSON: {e}"))?;
    copy_generated(&xbeam, &generated, &copies.join("generated.copy.zarr"))?;
    eprintln!(
        "==> interop: xbeam read {} fixtures and wrote their copies in {:.1} s",
        names.len(),
        start.elapsed().as_secs_f64()
    );
    let mut compare = Command::new(&python);
    compare.arg(scripts.join("compare.py")).arg(&dir);
    run("interop: compare with xarray", compare)?;
    interop_rechunk::run_all(&python, &dir)?;
    interop_stats::run_all(&python, &dir)?;
    interop_ingest::run_all(&python, &dir)?;
    interop_pipeline(&python, &dir)
}

/// A pipeline on the engine over stores xarray wrote (`DatasetToChunks` →
/// kelvin to °C → `ChunksToZarr`, the `interop_pipeline` example), which
/// xarray must open identical to doing the same conversion itself.
fn interop_pipeline(python: &std::path::Path, dir: &std::path::Path) -> Result<(), String> {
    let root = workspace_root();
    let exe = root
        .join("target")
        .join("debug")
        .join("examples")
        .join("interop_pipeline");
    let mut check = Command::new(python);
    check.arg(root.join("xtask").join("interop").join("check_pipeline.py"));
    for name in ["v2_blosc", "v3_zstd"] {
        let fixture = dir.join(format!("{name}.zarr"));
        let out = dir.join("pipeline").join(format!("{name}.celsius.zarr"));
        quiet(Command::new(&exe).arg(&fixture).arg(&out))?;
        check.arg(&fixture).arg(&out);
    }
    run("interop: pipeline output checked by xarray", check)
}

/// `xbeam copy` of the generated store: Zarr v2, zstd, chunks twice as
/// long (`compare.py` opens it in xarray).
fn copy_generated(
    xbeam: &std::path::Path,
    generated: &std::path::Path,
    out: &std::path::Path,
) -> Result<(), String> {
    quiet(
        Command::new(xbeam)
            .arg("copy")
            .arg(generated)
            .arg(out)
            .args([
                "--format", "2", "--codec", "zstd", "--chunks", "time=14", "--quiet",
            ]),
    )
}

/// The stores xbeam writes from each fixture: v2, v3, and sharded v3.
fn copy_variants(name: &str) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut v = vec![("v2", vec!["--format", "2"]), ("v3", vec!["--format", "3"])];
    if name.starts_with("v3") {
        v.push(("sharded", vec!["--format", "3", "--shards", "time=4,lat=4"]));
    }
    v
}

/// Writes the page cache's dirty pages back (`sync`) before a timed run,
/// so that it does not pay for the writeback of the run before it.
fn settle() {
    let _ = Command::new("sync").status();
}

/// Runs a command, failing with its output if it fails.
fn quiet(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
