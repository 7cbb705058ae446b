//! The dry-run report (`xbeam rechunk --dry-run`), pinned by snapshots.

use xbeam_rechunk::{DimChunks::Regular, Rechunking};

#[test]
fn time_to_space_report() {
    // Reference §3 worked example: pancakes of one time step to 5 x 5
    // pencils, 8 bytes per element, 10 kB per chunk.
    let plan = Rechunking::new(
        [("time", 10), ("x", 20), ("y", 30)],
        vec![Regular(1), Regular(20), Regular(30)],
        vec![Regular(10), Regular(5), Regular(5)],
        8,
    )
    .with_max_mem(10_000)
    .plan()
    .unwrap();
    insta::assert_snapshot!(plan.to_string());
}

#[test]
fn report_with_a_stage_that_does_nothing() {
    let plan = Rechunking::new([("x", 100)], vec![Regular(5)], vec![Regular(7)], 1)
        .with_max_mem(20)
        .plan()
        .unwrap();
    insta::assert_snapshot!(plan.to_string());
}

#[test]
fn irregular_years_to_pencils_report() {
    insta::assert_snapshot!(crate::irregular::years_to_pencils().to_string());
}

#[test]
fn report_with_an_excessive_io_warning() {
    let plan = Rechunking::new(
        [("x", 100), ("y", 100)],
        vec![Regular(100), Regular(1)],
        vec![Regular(1), Regular(100)],
        1,
    )
    .with_min_mem(90)
    .with_max_mem(100)
    .plan()
    .unwrap();
    assert!(plan.warning().is_some());
    insta::assert_snapshot!(plan.to_string());
}

#[test]
fn report_with_nothing_to_do() {
    let plan = Rechunking::new([("x", 10)], vec![Regular(5)], vec![Regular(5)], 4)
        .plan()
        .unwrap();
    insta::assert_snapshot!(plan.to_string());
}
