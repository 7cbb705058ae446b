//! Helpers the CLI integration tests share.

// (not every test crate that shares this module uses every helper)
#![allow(dead_code)]

/// Asserts that the peak RSS in an `xbeam <job>: ..., peak RSS N MB`
/// summary on `stderr` is at most `max_mem` bytes + 200 MB (the bound
/// every long job keeps), and returns it in MB.
pub(crate) fn assert_within_max_mem(stderr: &str, max_mem: u64) -> u64 {
    let peak: u64 = stderr
        .split("peak RSS ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {stderr}"));
    let limit = max_mem / 1_000_000 + 200;
    assert!(
        peak <= limit,
        "peak RSS {peak} MB over max-mem + 200 MB = {limit} MB: {stderr}"
    );
    peak
}

/// The budget a too-small-budget refusal names ("give --max-mem X or
/// more"), in bytes.
pub(crate) fn named_budget(text: &str) -> u64 {
    let named = text
        .split("give --max-mem ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .unwrap_or_else(|| panic!("no budget named in {text}"));
    xbeam::key::parse_bytes(named).unwrap()
}
