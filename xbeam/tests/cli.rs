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
        text.contains(
            "== 7. On files and the engine: 5 pancakes (Zarr) -> 6 pencils (Zarr), 0 chunks missing; identical to the input: yes"
        ),
        "{text}"
    );
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

#[test]
fn generate_then_info_json_with_stats() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("era5.zarr");
    let store_s = store.to_str().unwrap();
    let out = xbeam(&[
        "generate", "--gb", "0.001", "--nlat", "7", "--nlon", "12", "--levels", "2", "--chunks",
        "time=5", "--format", "3", "--out", store_s,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 1e6 bytes / (2 vars × 2 levels × 7 × 12 × 4 bytes) = 744 steps
    let out = xbeam(&["info", "--json", "--stats", store_s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], 3);
    assert_eq!(v["dims"]["time"], 744);
    assert_eq!(v["dims"]["level"], 2);
    let t = &v["data_vars"]["temperature"];
    assert_eq!(t["dtype"], "float32");
    assert_eq!(
        t["dims"],
        serde_json::json!(["time", "level", "latitude", "longitude"])
    );
    assert_eq!(t["chunks"], serde_json::json!([5, 2, 7, 12]));
    assert_eq!(t["attrs"]["units"], "K");
    assert_eq!(t["stats"]["count"], 744 * 2 * 7 * 12);
    assert_eq!(t["stats"]["nan_count"], 0);
    let (lo, hi, mean) = (
        t["stats"]["min"].as_f64().unwrap(),
        t["stats"]["max"].as_f64().unwrap(),
        t["stats"]["mean"].as_f64().unwrap(),
    );
    assert!(
        150.0 < lo && lo < mean && mean < hi && hi < 330.0,
        "{lo} {mean} {hi}"
    );
    let time = &v["coords"]["time"];
    assert_eq!(time["dtype"], "datetime64[ns]");
    assert_eq!(time["calendar"], "proleptic_gregorian");
    assert_eq!(time["stats"]["min"], "2020-01-01T00:00:00");
    assert_eq!(time["stats"]["max"], "2020-01-31T23:00:00");

    let text = xbeam(&["info", store_s]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("Dimensions:  (time: 744, level: 2, latitude: 7, longitude: 12)"),
        "{text}"
    );
    assert!(
        text.contains(
            "temperature  (time, level, latitude, longitude) float32 chunks=(5, 2, 7, 12)"
        ),
        "{text}"
    );
}

#[test]
fn info_on_bad_input_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.zarr");
    let out = xbeam(&["info", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err,
        format!("error: {}: no such file or directory\n", missing.display())
    );
    let out = xbeam(&[
        "generate",
        "--out",
        dir.path().to_str().unwrap(),
        "--chunks",
        "time",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("expected chunks like time=24"), "{err}");
}
