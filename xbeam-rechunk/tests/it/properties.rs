//! The properties xarray-beam's hypothesis tests assert of the Rechunker
//! planner, as proptest properties, plus the same for the executed stages.

use proptest::prelude::*;
use xbeam_rechunk::{
    chunk_mem, chunking_mem, io_ops, multistage_rechunking_plan, stage_io_ops, DimChunks,
    Rechunking,
};

const ITEMSIZE: u64 = 4;

/// `(shape, source, target, min_mem, max_mem)` as xarray-beam's
/// `shapes_chunks_maxmem_for_ndim` draws them: up to 5 dimensions, chunks
/// no larger than their dimension, `max_mem` ten times the larger of a
/// source and a target chunk, `min_mem` between `itemsize` and
/// `min(itemsize * max(size / 4, 1), 5 * chunk)`. Dimensions stay below
/// 10 000 (1 000 with 5 dimensions) so every product fits in a `u64`.
fn plans() -> impl Strategy<Value = (Vec<u64>, Vec<u64>, Vec<u64>, u64, u64)> {
    (1usize..=5)
        .prop_flat_map(|ndim| {
            let max_len: u64 = if ndim == 5 { 1_000 } else { 10_000 };
            proptest::collection::vec(
                (1..=max_len).prop_flat_map(|n| (Just(n), 1..=n, 1..=n)),
                ndim,
            )
        })
        .prop_flat_map(|dims| {
            let shape: Vec<u64> = dims.iter().map(|d| d.0).collect();
            let source: Vec<u64> = dims.iter().map(|d| d.1).collect();
            let target: Vec<u64> = dims.iter().map(|d| d.2).collect();
            let orig = chunk_mem(&source, ITEMSIZE).max(chunk_mem(&target, ITEMSIZE));
            let orig = u64::try_from(orig).unwrap();
            let size: u64 = shape.iter().product();
            let hi = (ITEMSIZE * (size / 4).max(1)).min(5 * orig);
            (Just((shape, source, target, orig * 10)), ITEMSIZE..=hi)
        })
        .prop_map(|((shape, source, target, max_mem), min_mem)| {
            (shape, source, target, min_mem, max_mem)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn multistage_plans_keep_rechunkers_invariants(
        (shape, source, target, min_mem, max_mem) in plans()
    ) {
        let plan = multistage_rechunking_plan(&shape, &source, &target, ITEMSIZE, min_mem, max_mem)
            .unwrap();
        let excessive_io = plan.warning.is_some();
        let stages = &plan.stages;
        prop_assert!(!stages.is_empty());
        for (s, r) in source.iter().zip(&stages[0].read) {
            prop_assert!(r >= s, "read {r} < source {s}");
        }
        for ((n, t), w) in shape.iter().zip(&target).zip(&stages[stages.len() - 1].write) {
            prop_assert!(w >= t, "write {w} < target {t}");
            prop_assert!(w == n || w % t == 0, "write {w} neither {n} nor a multiple of {t}");
        }
        let (min, max) = (u128::from(min_mem), u128::from(max_mem));
        for (k, stage) in stages.iter().enumerate() {
            let read = chunk_mem(&stage.read, ITEMSIZE);
            let int = chunk_mem(&stage.intermediate, ITEMSIZE);
            let write = chunk_mem(&stage.write, ITEMSIZE);
            prop_assert!(min <= read && read <= max, "read {read} outside [{min}, {max}]");
            prop_assert!(int <= max, "intermediate {int} > {max}");
            prop_assert!(excessive_io || min <= int, "intermediate {int} < {min}");
            prop_assert!(min <= write && write <= max, "write {write} outside [{min}, {max}]");
            for ((r, i), w) in stage.read.iter().zip(&stage.intermediate).zip(&stage.write) {
                prop_assert_eq!(*i, (*r).min(*w));
            }
            if let Some(next) = stages.get(k + 1) {
                prop_assert_eq!(&stage.write, &next.read);
            }
        }
    }

    #[test]
    fn executed_stages_chain_source_to_target_within_max_mem(
        (shape, source, target, min_mem, max_mem) in plans()
    ) {
        let regular = |c: &[u64]| c.iter().map(|&c| DimChunks::Regular(c)).collect::<Vec<_>>();
        let dims: Vec<(String, u64)> =
            shape.iter().enumerate().map(|(i, &n)| (format!("d{i}"), n)).collect();
        let plan = Rechunking::new(dims, regular(&source), regular(&target), ITEMSIZE)
            .with_min_mem(min_mem)
            .with_max_mem(max_mem)
            .plan()
            .unwrap();
        if source == target {
            prop_assert!(plan.stages().is_empty());
            return Ok(());
        }
        // The chain is xarray-beam's: source, read, stage writes..., target.
        let multistage = multistage_rechunking_plan(&shape, &source, &target, ITEMSIZE, min_mem, max_mem)
            .unwrap();
        prop_assert_eq!(plan.multistage(), Some(&multistage));
        let mut chain = vec![regular(&source), regular(&multistage.stages[0].read)];
        chain.extend(multistage.stages.iter().map(|s| regular(&s.write)));
        chain.push(regular(&target));
        let executed: Vec<_> = plan.stages().iter().map(|s| (s.source.clone(), s.target.clone())).collect();
        let expected: Vec<_> = chain.windows(2).map(|w| (w[0].clone(), w[1].clone())).collect();
        prop_assert_eq!(executed, expected);
        for stage in plan.stages() {
            prop_assert!(chunking_mem(&shape, &stage.target, ITEMSIZE) <= u128::from(max_mem));
        }
        prop_assert!(plan.peak_mem() <= u128::from(max_mem));
    }

    #[test]
    fn io_ops_counts_distinct_chunk_pairs(n in 1u64..=1000, s in 1u64..=1000, t in 1u64..=1000) {
        let mut pairs: Vec<(u64, u64)> = (0..n).map(|i| (i / s, i / t)).collect();
        pairs.dedup();
        prop_assert_eq!(io_ops(&[n], &[s], &[t]).unwrap(), pairs.len() as u64);
    }

    #[test]
    fn irregular_io_ops_agree_with_regular_ones(n in 1u64..=500, s in 1u64..=500, t in 1u64..=500) {
        // The same chunkings spelled out as explicit sizes count the same.
        let explicit = |c: u64| DimChunks::Irregular(DimChunks::Regular(c).sizes(n));
        let regular = io_ops(&[n], &[s], &[t]).unwrap();
        prop_assert_eq!(stage_io_ops(&[n], &[explicit(s)], &[DimChunks::Regular(t)]).unwrap(), regular);
        prop_assert_eq!(stage_io_ops(&[n], &[DimChunks::Regular(s)], &[explicit(t)]).unwrap(), regular);
        prop_assert_eq!(stage_io_ops(&[n], &[explicit(s)], &[explicit(t)]).unwrap(), regular);
    }
}
