//! `Display` snapshots (close to xarray's repr).

use serde_json::json;
use xbeam_chunk::calendar::{Calendar, TimeUnit};
use xbeam_chunk::{Array, Dataset, Template, Variable};

fn era5_like() -> Dataset {
    let time = Array::datetime(
        ndarray::Array1::from((0..48i64).collect::<Vec<_>>()).into_dyn(),
        TimeUnit::Hours,
        Calendar::ProlepticGregorian,
    );
    let lat: Vec<f32> = (0..5).map(|i| 90.0 - 45.0 * i as f32).collect();
    let lon: Vec<f32> = (0..8).map(|i| 45.0 * i as f32).collect();
    let temp: Vec<f32> = (0..48 * 5 * 8)
        .map(|i| 250.0 + (i % 97) as f32 * 0.5)
        .collect();
    Dataset::new()
        .with_coord("time", Variable::new(["time"], time).unwrap())
        .unwrap()
        .with_coord(
            "latitude",
            Variable::new(["latitude"], Array::from_1d(lat)).unwrap(),
        )
        .unwrap()
        .with_coord(
            "longitude",
            Variable::new(["longitude"], Array::from_1d(lon)).unwrap(),
        )
        .unwrap()
        .with_data_var(
            "temperature",
            Variable::new(
                ["time", "latitude", "longitude"],
                Array::from_vec(vec![48, 5, 8], temp).unwrap(),
            )
            .unwrap()
            .with_attr("units", "K"),
        )
        .unwrap()
        .with_attrs(
            [
                ("title".to_string(), json!("ERA5-like test data")),
                ("version".to_string(), json!(2)),
            ]
            .into(),
        )
}

#[test]
fn dataset_repr() {
    insta::assert_snapshot!(era5_like().to_string());
}

#[test]
fn template_repr() {
    insta::assert_snapshot!(Template::from(&era5_like()).to_string());
}

#[test]
fn small_reprs() {
    let mixed = Dataset::new()
        .with_coord(
            "city",
            Variable::new(
                ["city"],
                Array::from_1d(vec!["Oslo".to_string(), "Lima".into()]),
            )
            .unwrap(),
        )
        .unwrap()
        .with_data_var(
            "flag",
            Variable::new(["city"], Array::from_1d(vec![true, false])).unwrap(),
        )
        .unwrap()
        .with_data_var(
            "x64",
            Variable::new(["city"], Array::from_1d(vec![0.123_456_f64, f64::NAN])).unwrap(),
        )
        .unwrap()
        .with_data_var(
            "noleap",
            Variable::new(
                [] as [&str; 0],
                Array::datetime(
                    ndarray::arr0(6i64).into_dyn(),
                    TimeUnit::Hours,
                    Calendar::NoLeap,
                ),
            )
            .unwrap(),
        )
        .unwrap();
    insta::assert_snapshot!(mixed.to_string());
    insta::assert_snapshot!(Dataset::new().to_string());
}
