//! `jobs::reduce` (climatology and stats): results equal a direct
//! computation, and are bit-identical across worker counts and source
//! chunkings, NaN included.

use std::path::{Path, PathBuf};

mod common;

use indexmap::IndexMap;
use xbeam::chunk::calendar::{Calendar, DateTime, TimeUnit};
use xbeam::chunk::ndarray::{Array1, Array3, ArrayD};
use xbeam::chunk::{Array, Dataset, Template, Variable};
use xbeam::io::{open_zarr, setup_zarr, SetupOptions, ZarrFormat};
use xbeam::jobs::reduce::{self, Options, PencilPass};
use xbeam::key::Key;
use xbeam::runner::Runner;
use xbeam::stats::{parse_groupers, Grouper, Resample, Stat};

const NT: usize = 24 * 40; // 40 days, hourly
const NLAT: usize = 5;
const NLON: usize = 4;

/// Hourly data in a noleap calendar from 2001-02-10, with NaN in places:
/// `t(time, lat, lon)` float32 and `z(lat, time)` float64 (another order).
fn dataset() -> Dataset {
    let cal = Calendar::NoLeap;
    let t0 = cal
        .to_ticks(&DateTime::new(2001, 2, 10), TimeUnit::Hours)
        .unwrap();
    let time = Array::datetime(
        Array1::from_iter((0..NT as i64).map(|h| t0 + h)).into_dyn(),
        TimeUnit::Hours,
        cal,
    );
    let t = Array3::from_shape_fn((NT, NLAT, NLON), |(i, j, k)| {
        if (i * 13 + j * 7 + k) % 17 == 0 {
            f32::NAN
        } else {
            250.0 + ((i * 31 + j * 11 + k * 5) % 97) as f32 * 0.731
        }
    });
    let z = ArrayD::from_shape_fn(vec![NLAT, NT], |ix| {
        let (j, i) = (ix[0], ix[1]);
        if (i + j) % 23 == 0 {
            f64::NAN
        } else {
            5000.0 + (i as f64 * 0.37).sin() * 100.0 + j as f64
        }
    });
    let lat: Vec<f64> = (0..NLAT).map(|j| 60.0 - 30.0 * j as f64).collect();
    Dataset::new()
        .with_data_var(
            "t",
            Variable::new(["time", "lat", "lon"], Array::from(t.into_dyn())).unwrap(),
        )
        .unwrap()
        .with_data_var("z", Variable::new(["lat", "time"], Array::from(z)).unwrap())
        .unwrap()
        .with_coord("time", Variable::new(["time"], time).unwrap())
        .unwrap()
        .with_coord("lat", Variable::new(["lat"], Array::from_1d(lat)).unwrap())
        .unwrap()
}

fn write(ds: &Dataset, path: &Path, chunks: &[(&str, i64)]) -> PathBuf {
    let options = SetupOptions::default()
        .chunks(chunks.iter().copied())
        .format(ZarrFormat::V2);
    let sink = setup_zarr(&Template::from(ds), path, &options).unwrap();
    sink.write_chunk(&Key::new(), ds).unwrap();
    path.to_path_buf()
}

fn reduce_to(src: &Path, dst: &Path, workers: usize, edit: impl Fn(&mut Options)) -> Dataset {
    let mut options = Options {
        write: xbeam::jobs::output::WriteMode::overwrite(),
        ..Options::new(src, dst)
    };
    edit(&mut options);
    reduce::run(&options, &Runner::local_with_workers(workers).quiet()).unwrap();
    open_zarr(dst)
        .unwrap()
        .read(&IndexMap::new(), None)
        .unwrap()
}

/// `ds` written twice: pancakes of a day, and small chunks along every
/// dimension (none dividing another).
fn two_chunkings(ds: &Dataset, dir: &Path) -> (PathBuf, PathBuf) {
    let a = write(ds, &dir.join("a.zarr"), &[("time", 24), ("lat", -1)]);
    let b = write(
        ds,
        &dir.join("b.zarr"),
        &[("time", 7), ("lat", 2), ("lon", 3)],
    );
    (a, b)
}

fn bits(a: &Array) -> Vec<u64> {
    a.to_f64().unwrap().iter().map(|x| x.to_bits()).collect()
}

#[test]
fn results_are_bit_identical_across_workers_and_chunkings() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset();
    let (a, b) = two_chunkings(&ds, dir.path());
    let climatology = |o: &mut Options| {
        o.groupby = parse_groupers("time.dayofyear,time.hour").unwrap();
        o.stats = vec![Stat::Mean, Stat::Std, Stat::Min, Stat::Count, Stat::Sum];
    };
    let area_mean = |o: &mut Options| {
        o.over = vec!["time".into(), "lat".into()];
        o.stats = vec![Stat::Mean, Stat::Var];
        o.weights = vec!["lat=cos".parse().unwrap()];
    };
    let smoothed = |o: &mut Options| {
        o.groupby = parse_groupers("time.hour,time.dayofyear").unwrap();
        o.window = Some(7);
        o.stats = vec![Stat::Mean, Stat::Std];
    };
    let six_hourly = |o: &mut Options| {
        o.groupby = vec![Grouper::Resample(Resample::new("time", "6h").unwrap())];
        o.stats = vec![Stat::Mean, Stat::Max];
    };
    let quantiles = |o: &mut Options| {
        o.groupby = parse_groupers("time.month").unwrap();
        o.stats = vec![Stat::Mean];
        o.quantiles = vec![0.1, 0.5, 0.99];
    };
    for edit in [
        &climatology as &dyn Fn(&mut Options),
        &area_mean,
        &smoothed,
        &six_hourly,
        &quantiles,
    ] {
        let mut outs = Vec::new();
        for (i, (src, workers)) in [(&a, 1), (&a, 4), (&b, 1), (&b, 3)].into_iter().enumerate() {
            outs.push(reduce_to(
                src,
                &dir.path().join(format!("o{i}.zarr")),
                workers,
                edit,
            ));
        }
        for out in &outs[1..] {
            for (name, v) in outs[0].data_vars() {
                let w = out.data_var(name).unwrap();
                assert_eq!(v.dims(), w.dims(), "{name}");
                assert_eq!(bits(v.data()), bits(w.data()), "{name} differs");
            }
        }
    }
}

#[test]
fn a_climatology_equals_a_direct_computation() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset();
    let src = write(&ds, &dir.path().join("a.zarr"), &[("time", 10), ("lat", 2)]);
    let out = reduce_to(&src, &dir.path().join("o.zarr"), 2, |o| {
        o.groupby = parse_groupers("time.month,time.hour").unwrap();
        o.stats = vec![Stat::Mean, Stat::Std, Stat::Max, Stat::Count];
        o.ddof = 1;
    });
    // 2001-02-10 + 40 days (noleap) spans February and March
    assert_eq!(out.sizes()["month"], 2);
    assert_eq!(out.sizes()["hour"], 24);
    let months = out.coords()["month"]
        .data()
        .as_view::<i64>()
        .unwrap()
        .to_owned();
    assert_eq!(months.as_slice().unwrap(), &[2, 3]);
    let mean = out.data_var("t_mean").unwrap();
    assert_eq!(mean.dims(), ["month", "hour", "lat", "lon"]);
    assert_eq!(mean.dtype(), xbeam::chunk::DType::F32);
    let t = ds.data_var("t").unwrap().data().to_f64().unwrap();
    // February: days 10..=28 are the first 19 days
    for (m, days) in [(0usize, 0..19usize), (1, 19..40)] {
        for (h, j, k) in [(0usize, 0usize, 0usize), (7, 3, 2), (23, 4, 3)] {
            let v: Vec<f64> = days
                .clone()
                .map(|d| t[[d * 24 + h, j, k]])
                .filter(|x| !x.is_nan())
                .collect();
            let n = v.len() as f64;
            let mu = v.iter().sum::<f64>() / n;
            let sd = (v.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            let at =
                |name: &str| out.data_var(name).unwrap().data().to_f64().unwrap()[[m, h, j, k]];
            assert!((at("t_mean") - mu).abs() < 1e-4, "mean m{m} h{h}");
            assert!((at("t_std") - sd).abs() < 1e-4, "std m{m} h{h}");
            assert_eq!(at("t_count"), n);
            assert_eq!(at("t_max"), v.iter().copied().fold(f64::MIN, f64::max));
        }
    }
    // z is (lat, time): its outputs are (month, hour, lat)
    assert_eq!(
        out.data_var("z_mean").unwrap().dims(),
        ["month", "hour", "lat"]
    );
    let cm = out.data_var("t_mean").unwrap().attrs()["cell_methods"].clone();
    assert_eq!(cm, serde_json::json!("time: mean (grouped by month, hour)"));
}

#[test]
fn a_small_budget_cuts_blocks_into_stripes_with_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(&dataset(), &dir.path().join("a.zarr"), &[("time", 48)]);
    let edit = |max_mem: u64| {
        move |o: &mut Options| {
            o.groupby = parse_groupers("time.dayofyear,time.hour").unwrap();
            o.stats = vec![Stat::Mean, Stat::Max];
            o.max_mem = max_mem;
        }
    };
    let whole = reduce_to(&src, &dir.path().join("w.zarr"), 2, edit(1 << 30));
    // 40 × 24 groups × 20 elements × ~56 B = 1 MB per variable: 700 kB
    // makes each block cut into stripes along lat
    let striped = reduce_to(&src, &dir.path().join("s.zarr"), 2, |o| {
        edit(700 << 10)(o);
        o.pencil = PencilPass::Never;
    });
    let store = open_zarr(dir.path().join("s.zarr")).unwrap();
    assert!(store.chunks()["lat"] < NLAT as u64, "{:?}", store.chunks());
    // the same budget with a pencil pass: rechunked first in the spill
    // directory, which is left empty
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let mut options = Options::new(&src, dir.path().join("p.zarr"));
    edit(700 << 10)(&mut options);
    options.pencil = PencilPass::Always;
    let runner = Runner::local_with_workers(2).quiet().spill_dir(&spill);
    let done = reduce::run(&options, &runner).unwrap();
    let pencils = done.pencils.expect("a pencil pass");
    assert!(pencils["lat"] < NLAT as u64, "{pencils:?}");
    assert_eq!(std::fs::read_dir(&spill).unwrap().count(), 0);
    let pencil = open_zarr(dir.path().join("p.zarr"))
        .unwrap()
        .read(&IndexMap::new(), None)
        .unwrap();
    for (name, v) in whole.data_vars() {
        assert_eq!(
            bits(v.data()),
            bits(striped.data_var(name).unwrap().data()),
            "{name}"
        );
        assert_eq!(
            bits(v.data()),
            bits(pencil.data_var(name).unwrap().data()),
            "{name} after a pencil pass"
        );
    }
    // too small even for stripes of one row: a usage error naming the budget
    let options = Options {
        max_mem: 4 << 10,
        ..Options::new(&src, dir.path().join("x.zarr"))
    };
    let options = Options {
        groupby: parse_groupers("time.dayofyear,time.hour").unwrap(),
        ..options
    };
    let err = reduce::run(&options, &Runner::local_with_workers(2).quiet()).unwrap_err();
    assert!(err.to_string().contains("give --max-mem"), "{err}");
    assert_eq!(err.exit_code(), 2);
    assert!(!dir.path().join("x.zarr").exists());
    // and the budget it names runs
    reduce::run(
        &Options {
            max_mem: common::named_budget(&err.to_string()),
            ..options
        },
        &Runner::local_with_workers(2).quiet(),
    )
    .unwrap();
}

#[test]
fn a_three_day_window_is_the_plain_climatology_and_resampling_bins_by_day() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset();
    let src = write(&ds, &dir.path().join("a.zarr"), &[("time", 30)]);
    let plain = reduce_to(&src, &dir.path().join("p.zarr"), 2, |o| {
        o.groupby = parse_groupers("time.dayofyear,time.hour").unwrap();
    });
    // WeatherBench 2's weights for 3 days are (0, 1, 0): the day alone
    let smoothed = reduce_to(&src, &dir.path().join("w.zarr"), 2, |o| {
        o.groupby = parse_groupers("time.dayofyear,time.hour").unwrap();
        o.window = Some(3);
    });
    let t = smoothed.data_var("t").unwrap();
    assert_eq!(
        t.dtype(),
        xbeam::chunk::DType::F64,
        "weighted means are float64"
    );
    assert_eq!(
        bits(plain.data_var("t").unwrap().data()),
        bits(&t.data().astype(xbeam::chunk::DType::F32).unwrap())
    );
    let daily = reduce_to(&src, &dir.path().join("d.zarr"), 2, |o| {
        o.groupby = vec![Grouper::Resample(Resample::new("time", "1D").unwrap())];
        o.stats = vec![Stat::Count];
    });
    assert_eq!(daily.sizes()["time"], 40);
    let (ticks, unit, _) = daily.coords()["time"]
        .data()
        .datetime_ticks()
        .unwrap()
        .clone();
    let first = Calendar::NoLeap.days_from_date(2001, 2, 10).unwrap();
    let days: Vec<i64> = ticks
        .iter()
        .map(|&t| t * unit.nanos() / 86_400_000_000_000)
        .collect();
    assert_eq!(days, (first..first + 40).collect::<Vec<_>>());
    let counts = daily.data_var("t").unwrap().data().to_f64().unwrap();
    let data = ds.data_var("t").unwrap().data().to_f64().unwrap();
    let want = (0..24)
        .filter(|h| !data[[24 * 5 + h, 1, 2]].is_nan())
        .count();
    assert_eq!(counts[[5, 1, 2]], want as f64);
}

#[test]
fn rolling_windows_cross_chunks_and_do_not_depend_on_them() {
    use xbeam::jobs::rolling;
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset();
    let (a, b) = two_chunkings(&ds, dir.path());
    let run = |src: &Path, name: &str, workers: usize| {
        let dst = dir.path().join(name);
        let options = rolling::Options {
            window: 10,
            center: true,
            min_periods: Some(6),
            stats: vec![Stat::Mean, Stat::Std, Stat::Max],
            ..rolling::Options::new(src, &dst, "time")
        };
        rolling::run(&options, &Runner::local_with_workers(workers).quiet()).unwrap();
        open_zarr(&dst)
            .unwrap()
            .read(&IndexMap::new(), None)
            .unwrap()
    };
    let (x, y) = (run(&a, "x.zarr", 1), run(&b, "y.zarr", 3));
    for (name, v) in x.data_vars() {
        assert_eq!(
            bits(v.data()),
            bits(y.data_var(name).unwrap().data()),
            "{name}"
        );
    }
    // ChunkedDataset::rolling on the engine, with chunks of 7 steps (a
    // window reaches into two chunks before it): the same bits
    for stat in [Stat::Mean, Stat::Std, Stat::Max] {
        let p = xbeam::runner::Pipeline::new();
        let chunked =
            xbeam::ChunkedDataset::from_zarr(&p, &b, &"time=7,lat=2".parse().unwrap()).unwrap();
        let got = chunked
            .rolling("time", 10)
            .unwrap()
            .center(true)
            .min_periods(6)
            .reduce(stat)
            .unwrap()
            .collect(&Runner::local_with_workers(2).quiet())
            .unwrap();
        for var in ["t", "z"] {
            let want = x.data_var(&format!("{var}_{stat}")).unwrap();
            let got = got.data_var(var).unwrap();
            assert_eq!(got.dims(), want.dims(), "{var} {stat}");
            assert_eq!(
                bits(got.data()),
                bits(want.data()),
                "{var} {stat} on the engine"
            );
        }
    }
    // centred window of 10: 5 steps before, 4 after; 6 valid values needed
    let t = ds.data_var("t").unwrap().data().to_f64().unwrap();
    let mean = x.data_var("t_mean").unwrap().data().to_f64().unwrap();
    for (i, j, k) in [
        (0usize, 0usize, 0usize),
        (1, 1, 1),
        (23, 2, 3),
        (24, 4, 0),
        (NT - 1, 3, 2),
    ] {
        let w: Vec<f64> = (i.saturating_sub(5)..(i + 5).min(NT))
            .map(|s| t[[s, j, k]])
            .filter(|v| !v.is_nan())
            .collect();
        let want = if w.len() >= 6 {
            w.iter().sum::<f64>() / w.len() as f64
        } else {
            f64::NAN
        };
        let got = mean[[i, j, k]];
        assert!(
            (got - want).abs() < 1e-4 || (got.is_nan() && want.is_nan()),
            "({i}, {j}, {k}): {got} vs {want}"
        );
    }
}

/// `ChunkedDataset::groupby` and `resample` on the engine (the `GroupBy`
/// transform) give what the climatology job gives, from another chunking,
/// with NaN for the month × day combinations no step falls in.
#[test]
fn the_engine_groupby_and_resample_equal_the_job() {
    use xbeam::runner::Pipeline;
    use xbeam::ChunkedDataset;
    let dir = tempfile::tempdir().unwrap();
    let src = write(
        &dataset(),
        &dir.path().join("a.zarr"),
        &[("time", 24), ("lat", -1)],
    );
    let runner = Runner::local_with_workers(2).quiet();
    let cases: [(&str, Stat); 5] = [
        ("time.month,time.hour", Stat::Mean),
        ("time.month,time.hour", Stat::Std),
        ("time.month,time.day", Stat::Max),
        ("time.month,time.day", Stat::Count),
        ("1D", Stat::Sum),
    ];
    for (i, (by, stat)) in cases.into_iter().enumerate() {
        let resample = !by.starts_with("time.");
        let want = reduce_to(&src, &dir.path().join(format!("j{i}.zarr")), 2, |o| {
            o.groupby = if resample {
                vec![Grouper::Resample(Resample::new("time", by).unwrap())]
            } else {
                parse_groupers(by).unwrap()
            };
            o.stats = vec![stat];
        });
        let p = Pipeline::new();
        let ds = ChunkedDataset::from_zarr(&p, &src, &"time=7,lat=2".parse().unwrap()).unwrap();
        let grouped = if resample {
            ds.resample("time", by).unwrap()
        } else {
            ds.groupby(&parse_groupers(by).unwrap()).unwrap()
        };
        let got = grouped.reduce(stat).unwrap().collect(&runner).unwrap();
        for (name, v) in want.data_vars() {
            let g = got.data_var(name).unwrap();
            assert_eq!(g.dims(), v.dims(), "{by} {stat} {name}");
            let (a, b) = (v.data().to_f64().unwrap(), g.data().to_f64().unwrap());
            assert!(a.iter().any(|x| !x.is_nan()), "{by} {stat} {name}");
            if by.ends_with("day") && stat == Stat::Max {
                assert!(a.iter().any(|x| x.is_nan()), "absent groups are NaN");
            }
            let close = a.iter().zip(b.iter()).all(|(x, y)| {
                (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-6 * x.abs().max(1.0)
            });
            assert!(close, "{by} {stat} {name}: {a:?} vs {b:?}");
        }
        for (name, c) in want.coords() {
            if c.dims().len() == 1 && want.sizes().contains_key(name) {
                assert!(
                    got.coord(name).unwrap().data().equals(c.data()),
                    "{by}: coordinate {name}"
                );
            }
        }
    }
}

/// The sketch quantiles of `ChunkedDataset::quantile` are within their
/// relative accuracy of the job's exact ones, NaN skipped, and bit-identical
/// across chunkings and worker counts.
#[test]
fn sketch_quantiles_are_within_alpha_of_exact_ones_whatever_the_chunking() {
    use xbeam::runner::Pipeline;
    use xbeam::ChunkedDataset;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_chunkings(&dataset(), dir.path());
    let levels = [0.0, 0.1, 0.5, 0.93, 1.0];
    let exact = reduce_to(&a, &dir.path().join("q.zarr"), 2, |o| {
        o.over = vec!["time".into()];
        o.stats = Vec::new();
        o.quantiles = levels.to_vec();
    });
    let alpha = 0.002;
    let sketch = |src: &Path, chunks: &str, workers: usize| {
        let p = Pipeline::new();
        let ds = ChunkedDataset::from_zarr(&p, src, &chunks.parse().unwrap()).unwrap();
        ds.quantile(&levels, &["time"], Some(alpha))
            .unwrap()
            .collect(&Runner::local_with_workers(workers).quiet())
            .unwrap()
    };
    let one = sketch(&a, "time=24", 1);
    let other = sketch(&b, "time=7,lat=2,lon=3", 4);
    // the job with --sketch: the same values as the transform's, from
    // either chunking, and a global quantile over every dimension
    let job = |src: &Path, out: &str, workers: usize, over: &[&str]| {
        reduce_to(src, &dir.path().join(out), workers, |o| {
            o.over = over.iter().map(|d| (*d).to_owned()).collect();
            o.stats = Vec::new();
            o.quantiles = levels.to_vec();
            o.sketch = Some(alpha);
        })
    };
    let (ja, jb) = (
        job(&a, "ja.zarr", 1, &["time"]),
        job(&b, "jb.zarr", 4, &["time"]),
    );
    for (name, v) in ja.data_vars() {
        assert_eq!(
            bits(v.data()),
            bits(jb.data_var(name).unwrap().data()),
            "{name}"
        );
        // the transform gives float64; the job keeps t's float32 as xarray
        let from_transform = one
            .data_var(name)
            .unwrap()
            .data()
            .astype(v.data().dtype())
            .unwrap();
        assert_eq!(bits(v.data()), bits(&from_transform), "{name}");
    }
    let all = job(&b, "all.zarr", 2, &["time", "lat", "lon"]);
    let mut t: Vec<f64> = dataset()
        .data_var("t")
        .unwrap()
        .data()
        .to_f64()
        .unwrap()
        .iter()
        .copied()
        .filter(|x| !x.is_nan())
        .collect();
    t.sort_by(f64::total_cmp);
    let got = all.data_var("t").unwrap().data().to_f64().unwrap();
    for (k, &q) in levels.iter().enumerate() {
        let want = xbeam::stats::quantile_sorted(&t, q);
        assert!(
            (got[[k]] - want).abs() <= alpha * want.abs() * 1.0001 + 1e-4,
            "t q{q}: {} vs {want}",
            got[[k]]
        );
    }
    for (name, v) in exact.data_vars() {
        let want = v.data().to_f64().unwrap();
        let got = one.data_var(name).unwrap();
        assert_eq!(got.dims(), v.dims(), "{name}");
        let got = got.data().to_f64().unwrap();
        for (&w, &g) in want.iter().zip(got.iter()) {
            // one sign in this data: a relative bound
            assert!(
                (g - w).abs() <= alpha * w.abs() * 1.0001,
                "{name}: {g} vs {w}"
            );
        }
        assert_eq!(
            bits(one.data_var(name).unwrap().data()),
            bits(other.data_var(name).unwrap().data()),
            "{name}"
        );
    }
}

/// A reduction reports every chunk it reads as it reads it: at the end,
/// chunks read equal the total it planned and their bytes the summary's
/// input (the pancake store: `t` in 40 day chunks, `z` in 40 more).
#[test]
fn progress_counts_every_chunk_read() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = two_chunkings(&dataset(), dir.path());
    let read = std::sync::Arc::new(reduce::ReadProgress::default());
    let options = Options {
        groupby: parse_groupers("time.month").unwrap(),
        progress: Some(read.clone()),
        write: xbeam::jobs::output::WriteMode::overwrite(),
        ..Options::new(&a, dir.path().join("out.zarr"))
    };
    let done = reduce::run(&options, &Runner::local_with_workers(2).quiet()).unwrap();
    assert_eq!(read.total(), 80);
    assert_eq!(read.chunks(), read.total());
    assert_eq!(read.bytes(), done.summary.bytes_in);
}

/// 6-hourly data over 2003-11-01 .. `end`-03-01 (standard calendar: 2004
/// is a leap year, 2003 and 2005 are not), with NaN in places: `t(time,
/// lat, lon)` float32, 3 × 4 points.
fn years(end: i64) -> Dataset {
    let cal = Calendar::Standard;
    let t0 = cal
        .to_ticks(&DateTime::new(2003, 11, 1), TimeUnit::Hours)
        .unwrap();
    let t1 = cal
        .to_ticks(&DateTime::new(end, 3, 1), TimeUnit::Hours)
        .unwrap();
    let nt = ((t1 - t0) / 6) as usize;
    let time = Array::datetime(
        Array1::from_iter((0..nt as i64).map(|i| t0 + 6 * i)).into_dyn(),
        TimeUnit::Hours,
        cal,
    );
    let t = Array3::from_shape_fn((nt, 3, 4), |(i, j, k)| {
        if (i * 5 + j * 3 + k) % 29 == 0 {
            f32::NAN
        } else {
            270.0 + ((i as f32) * 0.017).sin() * 15.0 + ((i * 7 + j * 11 + k * 5) % 13) as f32 * 0.3
        }
    });
    Dataset::new()
        .with_data_var(
            "t",
            Variable::new(["time", "lat", "lon"], Array::from(t.into_dyn())).unwrap(),
        )
        .unwrap()
        .with_coord("time", Variable::new(["time"], time).unwrap())
        .unwrap()
}

/// The values WeatherBench 2's window takes at one hour, day of year and
/// point, with their weights, straight from its definition: over every
/// year, the days `d + j` of that year (`|j| < h`, wrapping within a year
/// of 366 days, day 366 of a common year being its day 365), weighted
/// `(h - |j|) / h`; NaN left out.
fn naive_window(
    ds: &Dataset,
    (hour, doy, lat, lon): (i64, i64, usize, usize),
    h: i64,
) -> Vec<(f64, f64)> {
    use xbeam::chunk::TimeField;
    let time = ds.coord("time").unwrap().data();
    let field = |f| time.time_field(f).unwrap().to_f64().unwrap();
    let (years, days, hours) = (
        field(TimeField::Year),
        field(TimeField::DayOfYear),
        field(TimeField::Hour),
    );
    let t = ds.data_var("t").unwrap().data().to_f64().unwrap();
    let mut pairs = Vec::new();
    for i in 0..years.len() {
        if hours[i] as i64 != hour {
            continue;
        }
        let leap = Calendar::Standard.days_in_year(years[i] as i64) == 366;
        // the days this step stands for: its own, and 366 for day 365 of a common year
        let mut own = vec![days[i] as i64];
        if !leap && days[i] as i64 == 365 {
            own.push(366);
        }
        for d in own {
            let off = (d - doy + 183).rem_euclid(366) - 183;
            let v = t[[i, lat, lon]];
            if off.abs() < h && !v.is_nan() {
                pairs.push((v, (h - off.abs()) as f64 / h as f64));
            }
        }
    }
    pairs
}

/// WeatherBench 2's hour × day-of-year window of 31 days on `o`, as the
/// tests over years ask it.
fn window_31(o: &mut Options) {
    o.groupby = parse_groupers("time.hour,time.dayofyear").unwrap();
    o.window = Some(31);
}

/// (hour, day of year, lat, lon) the tests over years check: around the
/// year's end (the wrap), day 366, and mid-year.
const AROUND_THE_YEAR: [(i64, i64, usize, usize); 4] = [
    (0, 1, 0, 0),
    (6, 366, 1, 2),
    (18, 365, 2, 3),
    (12, 200, 0, 1),
];

/// WeatherBench 2's windowed mean (see [`naive_window`]).
fn naive_window_mean(ds: &Dataset, at: (i64, i64, usize, usize), h: i64) -> f64 {
    let pairs = naive_window(ds, at, h);
    let sum: f64 = pairs.iter().map(|(v, w)| v * w).sum();
    sum / pairs.iter().map(|(_, w)| w).sum::<f64>()
}

#[test]
fn a_windowed_climatology_over_years_is_weatherbench2s_whatever_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let ds = years(2005);
    windowed_over_years_is_weatherbench2s(&ds, dir.path());
}

#[test]
fn a_windowed_climatology_of_many_years_is_weatherbench2s_whatever_the_budget() {
    // 2003-11 .. 2008-02: an hour of most days of Mar .. Oct has 4 float32
    // steps (16 bytes an element: read step by step), of most days of
    // Nov .. Feb 5 (20 bytes: gathered into sums), so both ways in one run
    let dir = tempfile::tempdir().unwrap();
    windowed_over_years_is_weatherbench2s(&years(2008), dir.path());
}

#[test]
fn a_windowed_climatology_of_decades_gathers_every_day_first_and_is_weatherbench2s() {
    // 2003-11 .. 2010-02: every hour of every day has 5 steps or more (and
    // the year's sums are small), so each chunk is read once, in storage
    // order, into the sums of every day before the window starts
    let dir = tempfile::tempdir().unwrap();
    let ds = years(2010);
    windowed_over_years_is_weatherbench2s(&ds, dir.path());
    // (the budget counts a year of sums, as its refusal says)
    let src = write(&ds, &dir.path().join("r.zarr"), &[("time", 4)]);
    let dst = dir.path().join("x.zarr");
    let mut options = Options::new(&src, &dst);
    window_31(&mut options);
    options.max_mem = 64 << 10;
    let err = reduce::run(&options, &Runner::local_with_workers(2).quiet()).unwrap_err();
    assert!(
        err.to_string()
            .contains("the sums of every day of the year"),
        "{err}"
    );
    assert!(!dst.exists());
}

/// A windowed climatology of `ds` (see [`years`]) is WeatherBench 2's,
/// and bit-identical whatever the budget and the chunking.
fn windowed_over_years_is_weatherbench2s(ds: &Dataset, dir: &Path) {
    let pancakes = write(ds, &dir.join("a.zarr"), &[("time", 4)]);
    let odd = write(ds, &dir.join("b.zarr"), &[("time", 9), ("lat", 2)]);
    let edit = |max_mem: u64| {
        move |o: &mut Options| {
            window_31(o);
            o.stats = vec![Stat::Mean, Stat::Std, Stat::Var];
            o.max_mem = max_mem;
        }
    };
    let whole = reduce_to(&pancakes, &dir.join("w.zarr"), 2, edit(1 << 30));
    let mean = whole.data_var("t_mean").unwrap();
    assert_eq!(mean.dims(), ["hour", "dayofyear", "lat", "lon"]);
    assert_eq!(whole.sizes()["dayofyear"], 366);
    assert_eq!(whole.sizes()["hour"], 4);
    let mean = mean.data().to_f64().unwrap();
    for (hour, doy, lat, lon) in AROUND_THE_YEAR.into_iter().chain([(0, 16, 1, 1)]) {
        let want = naive_window_mean(ds, (hour, doy, lat, lon), 31 / 2);
        let got = mean[[hour as usize / 6, doy as usize - 1, lat, lon]];
        assert!(
            (got - want).abs() <= 1e-9 * want.abs(),
            "hour {hour} day {doy}: {got} vs {want}"
        );
    }
    // a budget that cuts the grid into stripes, and another chunking: the
    // same bits
    let small = reduce_to(&pancakes, &dir.join("s.zarr"), 2, edit(900 << 10));
    assert!(open_zarr(dir.join("s.zarr")).unwrap().chunks()["lon"] < 4);
    let other = reduce_to(&odd, &dir.join("o.zarr"), 3, edit(1 << 30));
    for (name, v) in whole.data_vars() {
        for (what, out) in [("striped", &small), ("chunked otherwise", &other)] {
            assert_eq!(
                bits(v.data()),
                bits(out.data_var(name).unwrap().data()),
                "{name}, {what}"
            );
        }
    }
}

#[test]
fn a_windowed_climatology_of_pencils_counts_the_whole_chunk_it_decodes() {
    // time whole in each chunk (how WeatherBench 2 keeps its inputs): a
    // stripe of the grid still decodes its pencil whole, so a budget that
    // cannot hold one is refused before anything is written, and the
    // budget the refusal names is enough
    let dir = tempfile::tempdir().unwrap();
    let ds = years(2008);
    let pancakes = write(&ds, &dir.path().join("a.zarr"), &[("time", 4)]);
    let pencils = write(&ds, &dir.path().join("p.zarr"), &[("time", -1)]);
    let whole: u64 = ds.data_var("t").unwrap().data().len() as u64 * 4;
    let edit = |max_mem: u64| {
        move |o: &mut Options| {
            window_31(o);
            o.max_mem = max_mem;
        }
    };
    let dst = dir.path().join("x.zarr");
    let mut named = 0;
    // (a larger budget cuts coarser stripes, which the pencil outweighs:
    // the budget named is one that runs)
    for budget in [whole / 2, whole, whole * 5 / 4] {
        let mut options = Options::new(&pencils, &dst);
        edit(budget)(&mut options);
        let err = reduce::run(&options, &Runner::local_with_workers(2).quiet()).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.exit_code(), 2, "{text}");
        assert!(
            text.contains(&format!(
                "one source chunk of {} decoded whole",
                xbeam::key::to_human_size(whole)
            )),
            "{text}"
        );
        assert!(!dst.exists());
        named = common::named_budget(&text);
        assert!(named > whole, "{named} for a chunk of {whole}");
        reduce_to(&pencils, &dir.path().join("n.zarr"), 2, edit(named));
    }
    let from_pencils = reduce_to(&pencils, &dir.path().join("n.zarr"), 2, edit(named));
    let from_pancakes = reduce_to(&pancakes, &dir.path().join("w.zarr"), 2, edit(1 << 30));
    assert_eq!(
        bits(from_pencils.data_var("t").unwrap().data()),
        bits(from_pancakes.data_var("t").unwrap().data())
    );
}

/// WeatherBench 2's windowed quantile (see [`naive_window`]).
fn naive_window_quantile(ds: &Dataset, at: (i64, i64, usize, usize), h: i64, q: f64) -> f64 {
    let mut pairs = naive_window(ds, at, h);
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    xbeam::stats::weighted_quantile_sorted(&pairs, q)
}

#[test]
fn windowed_quantiles_are_weatherbench2s_whatever_the_budget_and_chunking() {
    let dir = tempfile::tempdir().unwrap();
    let ds = years(2006);
    let pancakes = write(&ds, &dir.path().join("a.zarr"), &[("time", 4)]);
    let odd = write(&ds, &dir.path().join("b.zarr"), &[("time", 9), ("lat", 2)]);
    let edit = |max_mem: u64| {
        move |o: &mut Options| {
            window_31(o);
            o.stats = Vec::new();
            o.quantiles = vec![0.1, 0.5, 0.9];
            o.max_mem = max_mem;
            o.pencil = PencilPass::Never;
        }
    };
    let whole = reduce_to(&pancakes, &dir.path().join("w.zarr"), 2, edit(1 << 30));
    let t = whole.data_var("t").unwrap();
    assert_eq!(t.dims(), ["hour", "dayofyear", "quantile", "lat", "lon"]);
    assert_eq!(t.dtype(), xbeam::chunk::DType::F64, "a weighted quantile");
    assert_eq!(whole.sizes()["dayofyear"], 366);
    let got = t.data().to_f64().unwrap();
    for (hour, doy, lat, lon) in AROUND_THE_YEAR {
        for (l, q) in [0.1, 0.5, 0.9].into_iter().enumerate() {
            let want = naive_window_quantile(&ds, (hour, doy, lat, lon), 31 / 2, q);
            let g = got[[hour as usize / 6, doy as usize - 1, l, lat, lon]];
            assert!(
                (g - want).abs() <= 1e-12 * want.abs(),
                "hour {hour} day {doy} q {q}: {g} vs {want}"
            );
        }
    }
    // a budget that cuts the grid into stripes, and another chunking on 3
    // workers: the same bits
    let small = reduce_to(&pancakes, &dir.path().join("s.zarr"), 2, edit(3 << 20));
    assert!(open_zarr(dir.path().join("s.zarr")).unwrap().chunks()["lon"] < 4);
    let other = reduce_to(&odd, &dir.path().join("o.zarr"), 3, edit(1 << 30));
    for (what, out) in [("striped", &small), ("chunked otherwise", &other)] {
        assert_eq!(
            bits(t.data()),
            bits(out.data_var("t").unwrap().data()),
            "{what}"
        );
    }
}
