//! Developer automation for the xbeam workspace: `cargo xtask <command>`.
//!
//! - `ci`: what CI runs — format check, clippy with `-D warnings` on every
//!   target, every test (unit, integration, property, snapshot, doctests),
//!   rustdoc with `-D warnings`, the README's main-job command, and
//!   `cargo package` of every crate.
//! - `fmt`: format the workspace.
//! - `bench`: the criterion benchmarks (pass criterion arguments after `--`).

use std::env;
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("fmt") => run("format", cargo(&["fmt", "--all"])),
        Some("bench") => bench(&args[1..]),
        other => {
            if let Some(unknown) = other {
                eprintln!("error: unknown xtask command {unknown:?}");
            }
            eprintln!("usage: cargo xtask <ci | fmt | bench [-- criterion args]>");
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
    run("benchmarks", cmd)
}
