//! Property tests: split then consolidate is the identity for random grids,
//! dtypes and irregular sizes; calendars round-trip dates and ticks.

use proptest::prelude::*;
use xbeam_chunk::calendar::{Calendar, DateTime, TimeUnit};
use xbeam_chunk::chunks::{consolidate_chunks, in_memory_rechunk, split_chunks, TargetChunks};
use xbeam_chunk::{Array, DType, Dataset, Variable};
use xbeam_key::{ChunkSpec, Key};

fn spec_for(size: u64) -> impl Strategy<Value = ChunkSpec> {
    prop_oneof![
        (1..=size.max(1) + 2).prop_map(ChunkSpec::Size),
        Just(ChunkSpec::Full),
        proptest::collection::vec(1u64..5, 1..8).prop_map(move |v| {
            // irregular sizes that add up to `size`
            let mut out = Vec::new();
            let mut left = size;
            for s in v {
                if left == 0 {
                    break;
                }
                let s = s.min(left);
                out.push(s);
                left -= s;
            }
            if left > 0 {
                out.push(left);
            }
            ChunkSpec::Sizes(out)
        }),
    ]
}

fn array_of(dtype: DType, shape: &[usize]) -> Array {
    let n: usize = shape.iter().product();
    let base = Array::from_vec(shape.to_vec(), (0..n).map(|i| i as f64 * 0.5).collect()).unwrap();
    match dtype {
        DType::String => {
            Array::from_vec(shape.to_vec(), (0..n).map(|i| format!("s{i}")).collect()).unwrap()
        }
        DType::DateTime(u, c) => Array::datetime(
            ndarray::ArrayD::from_shape_vec(shape.to_vec(), (0..n as i64).collect()).unwrap(),
            u,
            c,
        ),
        d => base.astype(d).unwrap(),
    }
}

fn dtype() -> impl Strategy<Value = DType> {
    prop_oneof![
        Just(DType::F32),
        Just(DType::F64),
        Just(DType::I16),
        Just(DType::U8),
        Just(DType::Bool),
        Just(DType::String),
        Just(DType::DateTime(TimeUnit::Hours, Calendar::Day360)),
    ]
}

prop_compose! {
    fn grid_case()(nx in 1u64..12, ny in 1u64..7)(
        nx in Just(nx), ny in Just(ny),
        sx in spec_for(nx), sy in spec_for(ny),
        tx in spec_for(nx), ty in spec_for(ny),
        dt in dtype(),
    ) -> (u64, u64, ChunkSpec, ChunkSpec, ChunkSpec, ChunkSpec, DType) {
        (nx, ny, sx, sy, tx, ty, dt)
    }
}

fn dataset(nx: u64, ny: u64, dt: DType) -> Dataset {
    Dataset::new()
        .with_coord(
            "x",
            Variable::new(["x"], Array::from_1d((0..nx as i64).collect())).unwrap(),
        )
        .unwrap()
        .with_data_var(
            "a",
            Variable::new(["x", "y"], array_of(dt, &[nx as usize, ny as usize])).unwrap(),
        )
        .unwrap()
        .with_data_var(
            "b",
            Variable::new(["y"], array_of(DType::F64, &[ny as usize])).unwrap(),
        )
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn split_then_consolidate_is_identity((nx, ny, sx, sy, _tx, _ty, dt) in grid_case()) {
        let ds = dataset(nx, ny, dt);
        let target = TargetChunks::from([("x".to_string(), sx), ("y".to_string(), sy)]);
        let pieces = split_chunks(&Key::new(), &ds, &target).unwrap();
        let total: u64 = pieces.iter().map(|(_, d)| d.sizes()["x"] * d.sizes()["y"]).sum();
        prop_assert_eq!(total, nx * ny);
        let back = consolidate_chunks(pieces).unwrap();
        prop_assert_eq!(back.len(), 1);
        prop_assert_eq!(&back[0].0, &Key::from_offsets([("x", 0), ("y", 0)]));
        prop_assert!(back[0].1.identical(&ds));
    }

    #[test]
    fn in_memory_rechunk_between_random_grids((nx, ny, sx, sy, tx, ty, dt) in grid_case()) {
        let ds = dataset(nx, ny, dt);
        let source = TargetChunks::from([("x".to_string(), sx), ("y".to_string(), sy)]);
        let target = TargetChunks::from([("x".to_string(), tx.clone()), ("y".to_string(), ty.clone())]);
        let pieces = split_chunks(&Key::new(), &ds, &source).unwrap();
        let rechunked = in_memory_rechunk(pieces, &target).unwrap();
        let direct = split_chunks(&Key::new(), &ds, &target).unwrap();
        prop_assert_eq!(rechunked.len(), direct.len());
        for ((k1, d1), (k2, d2)) in rechunked.iter().zip(&direct) {
            prop_assert_eq!(k1, k2);
            prop_assert!(d1.identical(d2));
        }
    }

    #[test]
    fn dates_round_trip_through_ticks(
        cal in prop::sample::select(Calendar::ALL.to_vec()),
        days in -3_000_000i64..3_000_000,
        secs in 0i64..86_400,
        unit in prop::sample::select(vec![TimeUnit::Seconds, TimeUnit::Milliseconds, TimeUnit::Nanoseconds]),
    ) {
        let (y, m, d) = cal.date_from_days(days);
        prop_assert_eq!(cal.days_from_date(y, m, d).unwrap(), days);
        let dt = DateTime::new(y, m, d).with_time((secs / 3600) as u32, (secs / 60 % 60) as u32, (secs % 60) as u32, 0);
        if let Ok(ticks) = cal.to_ticks(&dt, unit) {
            prop_assert_eq!(cal.from_ticks(ticks, unit), dt);
            let parsed = DateTime::parse(&dt.to_string()).unwrap();
            prop_assert_eq!(parsed, dt);
        }
        let doy = dt.dayofyear(cal).unwrap();
        prop_assert!(doy >= 1 && i64::from(doy) <= cal.days_in_year(y));
    }
}
