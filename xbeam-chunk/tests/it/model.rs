//! The data model: construction errors and dataset operations.

use serde_json::json;
use xbeam_chunk::calendar::{Calendar, DateTime, TimeUnit};
use xbeam_chunk::{
    Array, DType, Dataset, DimReplacement, Label, Labels, Reduction, Template, Variable,
};

use crate::common::{coord_values, dataset, foo_x, values, var};

fn floats(ds: &Dataset, name: &str) -> Vec<f64> {
    ds.data_var(name)
        .unwrap()
        .data()
        .to_f64()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

#[test]
fn construction_errors_name_expected_and_found() {
    let err =
        Variable::new(["x"], Array::from_vec(vec![2, 2], vec![0i32; 4]).unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected 2 dimension names for an array of shape [2, 2], found 1: ('x',)"
    );
    let err = Variable::new(
        ["x", "x"],
        Array::from_vec(vec![2, 2], vec![0i32; 4]).unwrap(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "dimension 'x' appears twice in ('x', 'x')");
    let err = Array::from_vec(vec![3], vec![1u8, 2]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected 3 elements for shape [3], found 2"
    );
    let err = foo_x(0..3)
        .with_data_var("bar", var(&["x"], &[4], vec![0i64; 4]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "conflicting sizes for dimension 'x': 3 in existing variables vs 4 in 'bar'"
    );
    let err = foo_x(0..3).data_var("nope").unwrap_err();
    assert_eq!(
        err.to_string(),
        "data variable 'nope' not found: expected one of ('foo',)"
    );
    let err = foo_x(0..3).isel([("q", 0..1)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dimensions {'q'} do not exist: expected one or more of ('x',)"
    );
    let err = foo_x(0..3).isel([("x", 2..5)]).unwrap_err();
    assert_eq!(err.to_string(), "along dimension 'x' of variable with dims ('x',): slice 2..5 is out of bounds for an axis of length 3");
}

#[test]
fn typed_access_checks_dtype() {
    let a = Array::from_1d(vec![1.5f32]);
    assert_eq!(a.as_view::<f32>().unwrap()[[0]], 1.5);
    assert_eq!(
        a.as_view::<i64>().unwrap_err().to_string(),
        "expected an array of int64, found float32"
    );
    let t = Array::datetime(
        ndarray::arr1(&[0i64]).into_dyn(),
        TimeUnit::Hours,
        Calendar::NoLeap,
    );
    assert!(
        t.as_view::<i64>().is_err(),
        "datetime ticks are not plain int64"
    );
    let (ticks, unit, cal) = t.datetime_ticks().unwrap();
    assert_eq!(
        (ticks[[0]], unit, cal),
        (0, TimeUnit::Hours, Calendar::NoLeap)
    );
    assert_eq!(
        a.datetime_ticks().unwrap_err().to_string(),
        "expected an array of datetime, found float32"
    );
}

#[test]
fn concat_checks_other_dims_and_coordinates() {
    let a = foo_x(0..2)
        .with_coord("x", var(&["x"], &[2], vec![0i64, 1]))
        .unwrap();
    let b = foo_x(2..4)
        .with_coord("x", var(&["x"], &[2], vec![2i64, 3]))
        .unwrap();
    let ab = Dataset::concat(&[&a, &b], "x").unwrap();
    assert_eq!(values(&ab, "foo"), vec![0, 1, 2, 3]);
    assert_eq!(coord_values(&ab, "x"), vec![0, 1, 2, 3]);

    // other dims must agree in size
    let wide = dataset(&[("foo", &["x", "y"], &[1, 3], vec![0; 3])]);
    let narrow = dataset(&[("foo", &["x", "y"], &[1, 2], vec![0; 2])]);
    let err = Dataset::concat(&[&wide, &narrow], "x")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("variable 'foo': cannot concatenate arrays of shapes [1, 3] and [1, 2]: they differ along axis 1"),
        "{err}"
    );

    // coordinates along other dims must be equal (join='exact')
    let with_y = |ys: Vec<i64>| wide.clone().with_coord("y", var(&["y"], &[3], ys)).unwrap();
    let err = Dataset::concat(&[&with_y(vec![0, 1, 2]), &with_y(vec![0, 1, 5])], "x")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("coordinates 'y' without dimension 'x' differs between datasets"),
        "{err}"
    );

    // different dim order is transposed to the first's order
    let yx = dataset(&[("foo", &["y", "x"], &[3, 1], vec![7, 8, 9])]);
    let joined = Dataset::concat(&[&wide, &yx], "x").unwrap();
    assert_eq!(joined.data_var("foo").unwrap().dims(), ["x", "y"]);
    assert_eq!(values(&joined, "foo"), vec![0, 0, 0, 7, 8, 9]);
}

#[test]
fn combine_nested_assembles_2d_grids_in_any_dim_order() {
    // a 4 x 6 field cut into a 2 x 3 grid of 2 x 2 blocks; one block stored (y, x)
    let full: Vec<i64> = (0..24).collect();
    let whole = dataset(&[
        ("foo", &["x", "y"], &[4, 6], full.clone()),
        ("s", &[], &[], vec![5]),
    ]);
    let mut blocks = Vec::new();
    for gx in 0..2u64 {
        for gy in 0..3u64 {
            let b = whole
                .isel([("x", gx * 2..gx * 2 + 2), ("y", gy * 2..gy * 2 + 2)])
                .unwrap();
            blocks.push(if (gx, gy) == (1, 2) {
                b.transpose(&["y", "x"]).unwrap()
            } else {
                b
            });
        }
    }
    let refs: Vec<&Dataset> = blocks.iter().collect();
    let combined = Dataset::combine_nested(&refs, &[2, 3], &["x", "y"]).unwrap();
    assert!(combined.identical(&whole));
    assert_eq!(values(&combined, "foo"), full);

    let err = Dataset::combine_nested(&refs[..5], &[2, 3], &["x", "y"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected 6 datasets for a grid of [2, 3] over ('x', 'y'), found 5"
    );
    // a variable without a grid dimension must be equal along it
    let mut odd = blocks.clone();
    odd[4] = odd[4]
        .clone()
        .with_data_var("s", var(&[], &[], vec![6i64]))
        .unwrap();
    let refs: Vec<&Dataset> = odd.iter().collect();
    let err = Dataset::combine_nested(&refs, &[2, 3], &["x", "y"])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("data variables 's' without dimension 'x' differs between datasets"),
        "{err}"
    );
}

#[test]
fn merge_requires_disjoint_vars_and_equal_coords() {
    let a = foo_x(0..2)
        .with_coord("x", var(&["x"], &[2], vec![0i64, 1]))
        .unwrap();
    let b = dataset(&[("bar", &["x"], &[2], vec![5, 6])])
        .with_coord("x", var(&["x"], &[2], vec![0i64, 1]))
        .unwrap();
    let m = Dataset::merge(&[&a, &b]).unwrap();
    assert_eq!(m.data_vars().keys().collect::<Vec<_>>(), ["foo", "bar"]);
    let err = Dataset::merge(&[&a, &a]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "data variable 'foo' is in more than one dataset"
    );
    let shifted = b
        .clone()
        .with_coord("x", var(&["x"], &[2], vec![1i64, 2]))
        .unwrap();
    assert!(Dataset::merge(&[&a, &shifted])
        .unwrap_err()
        .to_string()
        .starts_with("coordinate 'x' differs between datasets"));
}

#[test]
fn transpose_rename_select_drop() {
    let ds = dataset(&[
        ("foo", &["x", "y"], &[2, 3], (0..6).collect()),
        ("bar", &["y"], &[3], vec![1, 2, 3]),
    ])
    .with_coord("y", var(&["y"], &[3], vec![10i64, 20, 30]))
    .unwrap();
    let t = ds.transpose(&["y", "x"]).unwrap();
    assert_eq!(t.data_var("foo").unwrap().dims(), ["y", "x"]);
    assert_eq!(values(&t, "foo"), vec![0, 3, 1, 4, 2, 5]);
    assert!(ds.transpose(&["z"]).is_err());

    let r = ds.rename(&[("foo", "FOO"), ("y", "lat")]).unwrap();
    assert_eq!(r.data_var("FOO").unwrap().dims(), ["x", "lat"]);
    assert!(r.coord("lat").is_ok());
    // renaming onto an existing dimension or variable name is an error, not
    // an invalid variable or a silently dropped one
    assert_eq!(
        ds.rename(&[("x", "y")]).unwrap_err().to_string(),
        "dimension 'y' appears twice in ('y', 'y')"
    );
    assert_eq!(
        ds.rename(&[("foo", "bar")]).unwrap_err().to_string(),
        "cannot rename: two variables would be named 'bar'"
    );
    assert_eq!(
        ds.rename(&[("nope", "x")]).unwrap_err().to_string(),
        "cannot rename 'nope': it is not a variable or dimension of the dataset"
    );

    let only_bar = ds.select_vars(&["bar"]).unwrap();
    assert_eq!(only_bar.data_vars().len(), 1);
    assert!(
        only_bar.coord("y").is_ok(),
        "coordinates of the selected variable's dims are kept"
    );
    let dropped = ds.drop_vars(&["bar", "y"]).unwrap();
    assert_eq!(dropped.data_vars().len(), 1);
    assert!(dropped.coords().is_empty());
    assert!(ds.drop_vars(&["zzz"]).is_err());
}

#[test]
fn astype_map_and_reductions() {
    let ds = Dataset::new()
        .with_data_var(
            "t",
            var(
                &["time", "x"],
                &[3, 2],
                vec![1.0f32, 2.0, f32::NAN, 4.0, 5.0, f32::NAN],
            ),
        )
        .unwrap()
        .with_coord("time", var(&["time"], &[3], vec![0i64, 1, 2]))
        .unwrap()
        .with_attrs([("title".to_string(), json!("x"))].into());
    let mean = ds.reduce(Reduction::Mean, &["time"]).unwrap();
    assert_eq!(mean.data_var("t").unwrap().dtype(), DType::F32);
    assert_eq!(floats(&mean, "t"), vec![3.0, 3.0]);
    assert!(
        mean.coords().is_empty(),
        "coordinates along reduced dims are dropped"
    );
    assert!(
        mean.attrs().is_empty(),
        "attrs are dropped, as xarray's keep_attrs=False"
    );
    assert_eq!(
        floats(&ds.reduce(Reduction::Sum, &["time", "x"]).unwrap(), "t"),
        vec![12.0]
    );
    assert_eq!(
        values(&ds.reduce(Reduction::Count, &["x"]).unwrap(), "t"),
        vec![2, 1, 1]
    );
    assert_eq!(
        floats(&ds.reduce(Reduction::Max, &["time"]).unwrap(), "t"),
        vec![5.0, 4.0]
    );
    assert_eq!(
        floats(&ds.reduce(Reduction::Min, &["x"]).unwrap(), "t"),
        vec![1.0, 4.0, 5.0]
    );
    let all_nan = Dataset::new()
        .with_data_var("t", var(&["x"], &[2], vec![f64::NAN; 2]))
        .unwrap();
    assert!(floats(&all_nan.reduce(Reduction::Mean, &["x"]).unwrap(), "t")[0].is_nan());
    assert_eq!(
        floats(&all_nan.reduce(Reduction::Sum, &["x"]).unwrap(), "t"),
        vec![0.0]
    );

    let ints = foo_x(1..5);
    assert_eq!(
        ints.reduce(Reduction::Sum, &["x"])
            .unwrap()
            .data_var("foo")
            .unwrap()
            .dtype(),
        DType::I64
    );
    assert_eq!(
        floats(&ints.reduce(Reduction::Mean, &["x"]).unwrap(), "foo"),
        vec![2.5]
    );
    let empty = foo_x(0..0);
    assert_eq!(
        empty
            .reduce(Reduction::Max, &["x"])
            .unwrap_err()
            .to_string(),
        "cannot take the max of int64 values over an empty dimension"
    );

    let as_f64 = ints.astype(DType::F64).unwrap();
    assert_eq!(floats(&as_f64, "foo"), vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(
        floats(&ints.map_f64(|v| v / 2.0).unwrap(), "foo"),
        vec![0.5, 1.0, 1.5, 2.0]
    );
    let strings = Dataset::new()
        .with_data_var(
            "s",
            Variable::new(["x"], Array::from_1d(vec!["a".to_string()])).unwrap(),
        )
        .unwrap();
    assert_eq!(
        strings.astype(DType::F32).unwrap_err().to_string(),
        "cannot convert an array of str to float32"
    );
    assert_eq!(
        strings
            .reduce(Reduction::Sum, &["x"])
            .unwrap_err()
            .to_string(),
        "sum is not supported for dtype str"
    );
}

#[test]
fn datetime_min_max_skip_nat() {
    let t = Array::datetime(
        ndarray::arr1(&[5i64, i64::MIN, 2]).into_dyn(),
        TimeUnit::Days,
        Calendar::Day360,
    );
    let max = t.reduce(Reduction::Max, &[0]).unwrap();
    assert_eq!(max.datetime_ticks().unwrap().0[[]], 5);
    assert_eq!(
        t.reduce(Reduction::Min, &[0])
            .unwrap()
            .datetime_ticks()
            .unwrap()
            .0[[]],
        2
    );
    assert_eq!(
        t.reduce(Reduction::Count, &[0])
            .unwrap()
            .as_view::<i64>()
            .unwrap()[[]],
        2
    );
}

#[test]
fn sel_by_labels() {
    let cal = Calendar::NoLeap;
    let ticks: Vec<i64> = (0..4).map(|d| d * 24).collect();
    let time = Variable::new(
        ["time"],
        Array::datetime(
            ndarray::Array1::from(ticks).into_dyn(),
            TimeUnit::Hours,
            cal,
        ),
    )
    .unwrap();
    let ds = dataset(&[("foo", &["time"], &[4], vec![10, 11, 12, 13])])
        .with_coord("time", time)
        .unwrap();
    let day = |d| Label::Time(DateTime::new(1970, 1, d));
    assert_eq!(
        values(
            &ds.sel("time", &Labels::Between(day(2), day(3))).unwrap(),
            "foo"
        ),
        vec![11, 12]
    );
    assert_eq!(
        values(
            &ds.sel("time", &Labels::Exactly(vec![day(4), day(1)]))
                .unwrap(),
            "foo"
        ),
        vec![13, 10]
    );
    let err = ds
        .sel("time", &Labels::Exactly(vec![day(9)]))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("label Time("), "{err}");
    assert!(ds
        .sel("time", &Labels::Exactly(vec![Label::from("x")]))
        .is_err());
    assert_eq!(
        foo_x(0..2)
            .sel("x", &Labels::Exactly(vec![Label::from(0.0)]))
            .unwrap_err()
            .to_string(),
        "cannot select by label along 'x': it has no 1-D coordinate of the same name"
    );
    let names = Dataset::new()
        .with_coord(
            "city",
            Variable::new(
                ["city"],
                Array::from_1d(vec!["a".to_string(), "b".into(), "c".into()]),
            )
            .unwrap(),
        )
        .unwrap();
    assert_eq!(
        names
            .sel("city", &Labels::Between(Label::from("b"), Label::from("c")))
            .unwrap()
            .sizes()["city"],
        2
    );
}

#[test]
fn equality_semantics() {
    let nan = |attrs: bool| {
        let v = var(&["x"], &[2], vec![1.0f64, f64::NAN]);
        Dataset::new()
            .with_data_var("a", if attrs { v.with_attr("units", "K") } else { v })
            .unwrap()
    };
    assert!(
        nan(false).equals(&nan(true)),
        "NaN equals NaN; attrs ignored by equals"
    );
    assert!(!nan(false).identical(&nan(true)));
    assert_eq!(nan(true), nan(true));
    let close = nan(false).map_f64(|v| v + 1e-9).unwrap();
    assert!(close.allclose(&nan(false), 1e-6, 0.0));
    assert!(!close.equals(&nan(false)));
    assert!(!nan(false)
        .map_f64(|v| v + 1.0)
        .unwrap()
        .allclose(&nan(false), 1e-6, 1e-6));
}

#[test]
fn template_replace_dims_and_fill() {
    let ds = Dataset::new()
        .with_coord("x", var(&["x"], &[2], vec![0i64, 1]))
        .unwrap()
        .with_coord("y", var(&["y"], &[3], vec![0i64, 1, 2]))
        .unwrap()
        .with_data_var(
            "foo",
            var(&["x", "y"], &[2, 3], vec![0f32; 6]).with_attr("units", "K"),
        )
        .unwrap()
        .with_data_var("baz", var(&["z"], &[4], vec![0i16; 4]))
        .unwrap();
    let t = Template::from(&ds);
    assert_eq!(t.nbytes(), 6 * 4 + 4 * 2 + 5 * 8);
    let dates = Array::datetime(
        ndarray::Array1::from((0..5i64).collect::<Vec<_>>()).into_dyn(),
        TimeUnit::Days,
        Calendar::Standard,
    );
    let r = t
        .replace_dims(&[("x", DimReplacement::Coord(dates))])
        .unwrap();
    assert_eq!(r.sizes()["x"], 5);
    assert_eq!(
        r.coords()["x"].dtype(),
        DType::DateTime(TimeUnit::Days, Calendar::Standard)
    );
    assert_eq!(
        r.data_vars()["foo"].dims,
        ["x", "y"],
        "dimension order is kept"
    );
    assert_eq!(
        r.data_vars()["baz"],
        t.data_vars()["baz"],
        "unrelated variables are untouched"
    );
    let sized = t
        .replace_dims(&[
            ("z", DimReplacement::Size(4)),
            ("x", DimReplacement::Size(10)),
        ])
        .unwrap();
    assert_eq!(sized.sizes()["x"], 10);
    assert!(
        !sized.coords().contains_key("x"),
        "an int replacement drops the coordinate"
    );
    assert!(t.replace_dims(&[("q", DimReplacement::Size(1))]).is_err());

    let chunk = t
        .fill_chunk(
            &[("y".to_string(), 1..3)].into(),
            Some(&["foo".to_string()].into()),
            f64::NAN,
        )
        .unwrap();
    assert_eq!(chunk.data_var("foo").unwrap().shape(), &[2, 2]);
    assert_eq!(chunk.data_var("foo").unwrap().attrs()["units"], "K");
    assert_eq!(coord_values(&chunk, "y"), vec![1, 2]);
    assert!(chunk.data_vars().get("baz").is_none());
}

#[test]
fn assemble_puts_every_grid_of_blocks_back_together() {
    // 4 x 5 x 6 values 0..120, cut into blocks along any set of axes
    // (including trailing axes with one block, which are copied as runs)
    let whole = Array::from_vec(vec![4, 5, 6], (0..120i64).collect()).unwrap();
    let cuts: [&[usize]; 3] = [&[0, 1, 4], &[0, 2, 5], &[0, 3, 6]];
    for grid in [
        [1, 1, 1],
        [2, 1, 1],
        [1, 2, 1],
        [1, 1, 2],
        [2, 2, 1],
        [2, 1, 2],
        [1, 2, 2],
        [2, 2, 2],
    ] {
        let bounds: Vec<Vec<(usize, usize)>> = (0..3)
            .map(|a| match grid[a] {
                1 => vec![(0, whole.shape()[a])],
                _ => cuts[a].windows(2).map(|w| (w[0], w[1])).collect(),
            })
            .collect();
        let mut blocks = Vec::new();
        for &(a0, a1) in &bounds[0] {
            for &(b0, b1) in &bounds[1] {
                for &(c0, c1) in &bounds[2] {
                    let block = whole
                        .slice_axis(0, a0..a1)
                        .and_then(|x| x.slice_axis(1, b0..b1))
                        .and_then(|x| x.slice_axis(2, c0..c1))
                        .unwrap();
                    blocks.push(block);
                }
            }
        }
        let shape: Vec<usize> = bounds.iter().map(Vec::len).collect();
        let refs: Vec<&Array> = blocks.iter().collect();
        let got = Array::assemble(&shape, &refs).unwrap();
        assert!(got.equals(&whole), "grid {grid:?}: {got:?}");
        // the same from blocks in buffers of their own
        let own: Vec<Array> = blocks.iter().map(Array::compact).collect();
        let refs: Vec<&Array> = own.iter().collect();
        assert!(Array::assemble(&shape, &refs).unwrap().equals(&whole));
    }
}
