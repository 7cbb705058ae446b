//! Irregular chunks (one per calendar year, one per monthly file) planned
//! as they are, without splitting down to a common divisor.

use proptest::prelude::*;
use xbeam_rechunk::{
    chunking_mem, stage_io_ops, DimChunks, DimChunks::Irregular, DimChunks::Regular, RechunkPlan,
    RechunkStage, Rechunking,
};

const MIB: u64 = 1 << 20;

fn is_leap(year: u64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days per year of 2000..2010 (3653 days).
pub(crate) fn year_chunks() -> Vec<u64> {
    (2000..2010)
        .map(|y| if is_leap(y) { 366 } else { 365 })
        .collect()
}

/// Days per month of 2000..2010 (120 monthly files).
fn month_chunks() -> Vec<u64> {
    (2000..2010)
        .flat_map(|y| {
            let feb = if is_leap(y) { 29 } else { 28 };
            [31, feb, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        })
        .collect()
}

/// The chunk boundaries inside a chunking of `n`.
fn bounds(chunks: &DimChunks, n: u64) -> Vec<u64> {
    let sizes = chunks.sizes(n);
    sizes[..sizes.len() - 1]
        .iter()
        .scan(0, |acc, c| {
            *acc += c;
            Some(*acc)
        })
        .collect()
}

/// What every plan must satisfy: the stages chain the source to the
/// target, every chunking partitions its dimension, no chunk exceeds
/// `max_mem`, irregular source chunks are never cut in the first stage and
/// irregular target chunks never gathered from pieces in the last.
fn check_plan(plan: &RechunkPlan) {
    let shape = plan.shape();
    let max_mem = u128::from(plan.rechunking().max_mem());
    let stages = plan.stages();
    assert!(!stages.is_empty());
    assert_eq!(stages[0].source, plan.source());
    assert_eq!(stages[stages.len() - 1].target, plan.target());
    for pair in stages.windows(2) {
        assert_eq!(pair[0].target, pair[1].source);
    }
    for stage in stages {
        for chunks in [&stage.source, &stage.target] {
            for (c, &n) in chunks.iter().zip(shape) {
                assert!(!c.sizes(n).contains(&0), "{c:?}");
                assert_eq!(c.sizes(n).iter().sum::<u64>(), n, "{c:?} on {n}");
            }
            assert!(chunking_mem(shape, chunks, plan.rechunking().itemsize()) <= max_mem);
        }
        // Pieces are counted on the real boundaries.
        stage_io_ops(shape, &stage.source, &stage.target).unwrap();
    }
    // Between the read chunks (the target of stage 0) and the write chunks
    // (the source of the last stage) every chunking is regular.
    assert!(stages.len() >= 3);
    for stage in &stages[1..stages.len() - 2] {
        assert!(stage.target.iter().all(DimChunks::is_regular), "{stage:?}");
    }
    for (axis, &n) in shape.iter().enumerate() {
        let along = |stage: &RechunkStage| {
            RechunkStage::new(
                vec![stage.source[axis].clone()],
                vec![stage.target[axis].clone()],
            )
        };
        if !plan.source()[axis].is_regular() {
            let first = along(&stages[0]);
            assert!(!first.needs_split(), "axis {axis}: {first:?}");
            let source = bounds(&first.source[0], n);
            assert!(bounds(&first.target[0], n)
                .iter()
                .all(|b| source.contains(b)));
        }
        if !plan.target()[axis].is_regular() {
            let last = along(&stages[stages.len() - 1]);
            assert!(!last.needs_consolidate(), "axis {axis}: {last:?}");
        }
    }
    assert!(plan.peak_mem() <= max_mem);
}

pub(crate) fn years_to_pencils() -> RechunkPlan {
    // Ten years of daily float32 on a 180 x 360 grid, a chunk per year
    // (95 MB), to all-time pencils of 10 x 10, in 256 MiB.
    Rechunking::new(
        [("time", 3653), ("lat", 180), ("lon", 360)],
        vec![Irregular(year_chunks()), Regular(180), Regular(360)],
        vec![Regular(3653), Regular(10), Regular(10)],
        4,
    )
    .with_max_mem(256 * MIB)
    .plan()
    .unwrap()
}

#[test]
fn years_to_all_time_pencils() {
    let plan = years_to_pencils();
    check_plan(&plan);
    // Stage 0 reads the years whole: each is one piece.
    let first = &plan.summaries()[0];
    assert_eq!(first.chunks_read, 10);
    assert_eq!(first.pieces, 10);
    assert!(!first.split);
}

#[test]
fn monthly_files_to_regular_30_day_chunks() {
    let months = month_chunks();
    assert_eq!(months.iter().sum::<u64>(), 3653);
    let plan = Rechunking::new(
        [("time", 3653), ("lat", 721), ("lon", 1440)],
        vec![Irregular(months.clone()), Regular(721), Regular(1440)],
        vec![Regular(30), Regular(721), Regular(1440)],
        4,
    )
    .with_max_mem(256 * MIB)
    .plan()
    .unwrap();
    check_plan(&plan);
    // No gcd: the months are grouped (January with February, ...), never
    // cut into days. A split to days would make 3653 pieces per stage.
    let summaries = plan.summaries();
    assert_eq!(summaries[0].pieces, 120);
    for s in &summaries {
        assert!(s.pieces < 400, "{s:?}");
    }
}

#[test]
fn regular_pancakes_to_yearly_chunks() {
    let plan = Rechunking::new(
        [("time", 3653), ("x", 50), ("y", 50)],
        vec![Regular(1), Regular(50), Regular(50)],
        vec![Irregular(year_chunks()), Regular(5), Regular(5)],
        8,
    )
    .with_max_mem(16 * MIB)
    .plan()
    .unwrap();
    check_plan(&plan);
}

#[test]
fn years_to_months_and_back() {
    let (years, months) = (Irregular(year_chunks()), Irregular(month_chunks()));
    for (source, target) in [(years.clone(), months.clone()), (months, years)] {
        let plan = Rechunking::new(
            [("time", 3653), ("x", 100)],
            vec![source, Regular(1)],
            vec![target, Regular(100)],
            4,
        )
        .with_max_mem(4 * MIB)
        .plan()
        .unwrap();
        check_plan(&plan);
    }
}

#[test]
fn a_year_that_does_not_fit_is_named_by_its_size() {
    let err = Rechunking::new(
        [("time", 3653), ("lat", 721), ("lon", 1440)],
        vec![Irregular(year_chunks()), Regular(721), Regular(1440)],
        vec![Regular(3653), Regular(10), Regular(10)],
        4,
    )
    .plan()
    .unwrap_err();
    // The largest chunk, a leap year: 366 * 721 * 1440 * 4 bytes.
    assert_eq!(
        err.to_string(),
        "Source chunk memory (1519983360) exceeds max_mem (1073741824)"
    );
}

/// Sizes of a random partition of `n` into at most `parts` chunks.
fn partition(n: u64, parts: usize) -> impl Strategy<Value = Vec<u64>> {
    proptest::sample::subsequence((1..n).collect::<Vec<_>>(), 0..parts.min(n as usize)).prop_map(
        move |cuts| {
            let mut sizes = Vec::with_capacity(cuts.len() + 1);
            let mut last = 0;
            for c in cuts.into_iter().chain([n]) {
                sizes.push(c - last);
                last = c;
            }
            sizes
        },
    )
}

/// A chunking of `n`: regular, or a random irregular partition.
fn chunking(n: u64) -> impl Strategy<Value = DimChunks> {
    prop_oneof![
        (1..=n).prop_map(Regular),
        partition(n, 30).prop_map(Irregular),
    ]
}

fn rechunkings() -> impl Strategy<Value = Rechunking> {
    proptest::collection::vec(1u64..=400, 1..=3)
        .prop_flat_map(|shape| {
            let dims: Vec<_> = shape.iter().map(|&n| (chunking(n), chunking(n))).collect();
            (Just(shape), dims, 1u64..=20, 0u64..=100)
        })
        .prop_map(|(shape, dims, factor, min_percent)| {
            let (source, target): (Vec<_>, Vec<_>) = dims.into_iter().unzip();
            let itemsize = 4;
            let mem = chunking_mem(&shape, &source, itemsize)
                .max(chunking_mem(&shape, &target, itemsize));
            let max_mem = u64::try_from(mem).unwrap() * factor;
            let names: Vec<(String, u64)> = shape
                .iter()
                .enumerate()
                .map(|(i, &n)| (format!("d{i}"), n))
                .collect();
            Rechunking::new(names, source, target, itemsize)
                .with_max_mem(max_mem)
                .with_min_mem(max_mem * min_percent / 100)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn irregular_plans_stay_within_max_mem_and_consistent(rechunking in rechunkings()) {
        let plan = rechunking.plan().unwrap();
        if rechunking.source() == rechunking.target() {
            prop_assert!(plan.stages().is_empty());
        } else {
            check_plan(&plan);
        }
    }
}
