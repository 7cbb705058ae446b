//! The `xbeam` binary: the demo runs and checks itself; bad arguments give
//! a clear error and a non-zero exit code.

use std::process::Command;

fn xbeam(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xbeam"))
        .args(args)
        .output()
        .expect("the xbeam binary runs")
}

#[test]
fn demo_splits_rechunks_and_round_trips() {
    let out = xbeam(&["demo", "--hours", "30", "--chunk-hours", "7"]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("== 2. Split into 5 keyed chunks of 7 hours"),
        "{text}"
    );
    assert!(
        text.contains("Key(offsets={'time': 28, 'latitude': 0, 'longitude': 0})  time=2"),
        "{text}"
    );
    assert!(text.contains("identical to the input: yes"), "{text}");
    assert!(
        text.contains("Dimensions:       (time: 30, latitude: 19, longitude: 36)"),
        "{text}"
    );
}

#[test]
fn bad_arguments_are_clear_errors() {
    let out = xbeam(&["demo", "--hours", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("invalid value '0' for '--hours <HOURS>'"),
        "{err}"
    );

    let out = xbeam(&["frobnicate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("unrecognized subcommand 'frobnicate'"));
}
