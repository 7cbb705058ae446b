//! The serde form: every dtype round-trips through bincode, buffers travel
//! as raw bytes, and malformed input is an error.

use serde_json::json;
use xbeam_chunk::calendar::{Calendar, TimeUnit};
use xbeam_chunk::{Array, Dataset, Template, Variable};

fn round_trip(a: &Array) -> Array {
    let bytes = bincode::serialize(a).unwrap();
    bincode::deserialize(&bytes).unwrap()
}

fn every_dtype() -> Vec<Array> {
    let shape = vec![2, 3];
    let ticks =
        ndarray::Array::from_shape_vec(vec![2, 3], vec![0i64, 1, -5, i64::MIN, 7, 9]).unwrap();
    vec![
        Array::from_vec(shape.clone(), vec![true, false, true, true, false, false]).unwrap(),
        Array::from_vec(shape.clone(), vec![-1i8, 2, 3, 4, 5, i8::MIN]).unwrap(),
        Array::from_vec(shape.clone(), vec![-1i16, 2, 3, 4, 5, i16::MAX]).unwrap(),
        Array::from_vec(shape.clone(), vec![-1i32, 2, 3, 4, 5, i32::MIN]).unwrap(),
        Array::from_vec(shape.clone(), vec![-1i64, 2, 3, 4, 5, i64::MAX]).unwrap(),
        Array::from_vec(shape.clone(), vec![1u8, 2, 3, 4, 5, 255]).unwrap(),
        Array::from_vec(shape.clone(), vec![1u16, 2, 3, 4, 5, u16::MAX]).unwrap(),
        Array::from_vec(shape.clone(), vec![1u32, 2, 3, 4, 5, u32::MAX]).unwrap(),
        Array::from_vec(shape.clone(), vec![1u64, 2, 3, 4, 5, u64::MAX]).unwrap(),
        Array::from_vec(
            shape.clone(),
            vec![
                1.5f32,
                f32::NAN,
                -0.0,
                f32::INFINITY,
                5.0,
                f32::MIN_POSITIVE,
            ],
        )
        .unwrap(),
        Array::from_vec(
            shape.clone(),
            vec![1.5f64, f64::NAN, -0.0, f64::NEG_INFINITY, 5.0, 1e-300],
        )
        .unwrap(),
        Array::datetime(ticks.clone(), TimeUnit::Hours, Calendar::NoLeap),
        Array::datetime(
            ticks.clone(),
            TimeUnit::Nanoseconds,
            Calendar::ProlepticGregorian,
        ),
        Array::timedelta(ticks, TimeUnit::Seconds),
        Array::from_vec(
            shape,
            ["a", "", "ünï", "x y", "'q'", "z"]
                .map(String::from)
                .to_vec(),
        )
        .unwrap(),
    ]
}

#[test]
fn every_dtype_round_trips() {
    for a in every_dtype() {
        let back = round_trip(&a);
        assert_eq!(back.dtype(), a.dtype());
        assert_eq!(back.shape(), a.shape());
        assert!(back.equals(&a), "{a:?} came back as {back:?}");
        // transposed (non-contiguous) arrays round-trip in logical order
        let t = a.permute(&[1, 0]).unwrap();
        assert!(round_trip(&t).equals(&t));
        assert!(round_trip(&a.slice_axis(1, 1..3).unwrap()).equals(&a.slice_axis(1, 1..3).unwrap()));
    }
}

#[test]
fn numeric_buffers_travel_as_raw_bytes() {
    let n = 1 << 16;
    let a = Array::from_vec(vec![n], vec![1.25f32; n]).unwrap();
    let bytes = bincode::serialize(&a).unwrap();
    assert!(
        bytes.len() < n * 4 + 64,
        "{} bytes for {} of data",
        bytes.len(),
        n * 4
    );
    assert!(
        bytes
            .windows(8)
            .any(|w| w == [0, 0, 0xa0, 0x3f, 0, 0, 0xa0, 0x3f]),
        "little-endian f32 1.25 bytes are in the payload"
    );
}

#[test]
fn datasets_and_templates_round_trip_with_attrs() {
    let v = Variable::new(["x"], Array::from_1d(vec![1.0f32, 2.0]))
        .unwrap()
        .with_attr("units", "K")
        .with_attr("valid_range", json!([0, 400]))
        .with_attr("nested", json!({"a": null, "b": true, "c": 1.5}));
    let mut enc = xbeam_chunk::Attrs::new();
    enc.insert("_FillValue".into(), json!(-9999));
    let ds = Dataset::new()
        .with_coord(
            "x",
            Variable::new(["x"], Array::from_1d(vec!["a".to_string(), "b".into()])).unwrap(),
        )
        .unwrap()
        .with_data_var("t", v.with_encoding(enc))
        .unwrap()
        .with_attrs([("history".to_string(), json!("made by a test"))].into());
    let back: Dataset = bincode::deserialize(&bincode::serialize(&ds).unwrap()).unwrap();
    assert!(back.identical(&ds));
    assert_eq!(back.data_var("t").unwrap().encoding()["_FillValue"], -9999);
    let json_back: Dataset = serde_json::from_str(&serde_json::to_string(&ds).unwrap()).unwrap();
    assert!(json_back.identical(&ds));
    let t = Template::from(&ds);
    let t_back: Template = bincode::deserialize(&bincode::serialize(&t).unwrap()).unwrap();
    assert_eq!(t_back, t);
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let a = Array::from_1d(vec![1.0f64, 2.0, 3.0]);
    let bytes = bincode::serialize(&a).unwrap();
    for cut in 0..bytes.len() {
        assert!(bincode::deserialize::<Array>(&bytes[..cut]).is_err());
    }
    // a shape that does not match the payload
    let mut wrong = serde_json::to_value(&a).unwrap();
    wrong["shape"] = json!([4]);
    let err = serde_json::from_value::<Array>(wrong)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("expected 32 bytes for an array of float64 of shape [4], found 24"),
        "{err}"
    );
    // a variable whose dims do not fit its data
    let v = Variable::new(["x"], a).unwrap();
    let mut wrong = serde_json::to_value(&v).unwrap();
    wrong["dims"] = json!(["x", "y"]);
    assert!(serde_json::from_value::<Variable>(wrong).is_err());
    // a template whose variable names a dimension without a size
    let t = Template::from(&Dataset::new().with_data_var("v", v).unwrap());
    let mut wrong = serde_json::to_value(&t).unwrap();
    wrong["data_vars"]["v"]["dims"] = json!(["nope"]);
    let err = serde_json::from_value::<Template>(wrong)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data variable 'v' has dimension 'nope' which has no size in the template"),
        "{err}"
    );
}

#[test]
fn chunks_read_back_with_the_same_attributes_are_independent_to_change() {
    // deserializing shares the attributes of identical chunks; changing
    // one chunk's must not change the other's
    let v = Variable::new(["x"], Array::from_1d(vec![1.0f32, 2.0]))
        .unwrap()
        .with_attr("units", "K");
    let ds = Dataset::new()
        .with_data_var("t", v)
        .unwrap()
        .with_attrs([("title".to_string(), json!("era5"))].into_iter().collect());
    let bytes = bincode::serialize(&ds).unwrap();
    let mut a: Dataset = bincode::deserialize(&bytes).unwrap();
    let b: Dataset = bincode::deserialize(&bytes).unwrap();
    assert!(a.identical(&ds) && b.identical(&ds));
    a.attrs_mut().insert("title".into(), json!("changed"));
    let mut t = a.data_var("t").unwrap().clone();
    t.attrs_mut().insert("units".into(), json!("C"));
    assert_eq!(b.attrs()["title"], json!("era5"));
    assert_eq!(b.data_var("t").unwrap().attrs()["units"], json!("K"));
    let c: Dataset = bincode::deserialize(&bytes).unwrap();
    assert!(c.identical(&ds));
}
