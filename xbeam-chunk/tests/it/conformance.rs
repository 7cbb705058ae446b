//! xarray-beam's conformance cases (reference §7) that concern keys, chunk
//! grids and in-memory chunk operations.

use xbeam_chunk::chunks::{
    consolidate_chunks, consolidate_chunks_filled, consolidate_chunks_to, consolidate_fully,
    consolidate_variables, in_memory_rechunk, split_chunks, split_variables, validate_chunk, Chunk,
    DatasetChunks, FillMissing, TargetChunks,
};
use xbeam_chunk::{Array, Dataset, Template, Variable};
use xbeam_key::{ChunkGrid, ChunkSpec, Key};

use crate::common::{dataset, foo_x, key, keys, values, var};

fn target(specs: &[(&str, i64)]) -> TargetChunks {
    specs
        .iter()
        .map(|(d, c)| ((*d).to_string(), ChunkSpec::from(*c)))
        .collect()
}

fn to_chunks(
    datasets: Vec<&Dataset>,
    chunks: &[(&str, i64)],
    split_vars: bool,
) -> Result<Vec<(Key, Vec<Dataset>)>, String> {
    let plan =
        DatasetChunks::new(datasets, &target(chunks), split_vars).map_err(|e| e.to_string())?;
    let out: Vec<_> = plan
        .keys()
        .map(|k| plan.chunk(&k).map(|c| (k, c)))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    assert_eq!(out.len() as u64, plan.task_count());
    Ok(out)
}

#[test]
fn case_4_dataset_to_chunks() {
    let ds = foo_x(0..6);
    let out = to_chunks(vec![&ds], &[("x", 3)], false).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].0, key(&[("x", 0)], None));
    assert!(out[0].1[0].identical(&foo_x(0..3)));
    assert_eq!(out[1].0, key(&[("x", 3)], None));
    assert!(out[1].1[0].identical(&foo_x(3..6)));

    // a list of 7 datasets gives lists of chunks
    let many = vec![&ds; 7];
    let out = to_chunks(many, &[("x", 3)], false).unwrap();
    assert_eq!(out[1].1.len(), 7);
    assert!(out[1].1.iter().all(|c| c.identical(&foo_x(3..6))));

    // -1: one chunk with an offset
    let out = to_chunks(vec![&ds], &[("x", -1)], false).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, key(&[("x", 0)], None));

    // empty dataset and no chunks: exactly (Key(), empty)
    let empty = Dataset::new();
    let out = to_chunks(vec![&empty], &[], false).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, Key::new());
    assert!(out[0].1[0].is_empty());

    // unchunked dims get offset 0; static variables repeat in every chunk
    let ds2 = dataset(&[
        ("foo", &["t", "x"], &[4, 2], (0..8).collect()),
        ("static", &["x"], &[2], vec![7, 8]),
    ]);
    let out = to_chunks(vec![&ds2], &[("t", 2)], false).unwrap();
    assert_eq!(
        keys(
            &out.iter()
                .map(|(k, c)| (k.clone(), c[0].clone()))
                .collect::<Vec<_>>()
        ),
        [
            "Key(offsets={'t': 0, 'x': 0})",
            "Key(offsets={'t': 2, 'x': 0})"
        ]
    );
    assert_eq!(values(&out[1].1[0], "foo"), vec![4, 5, 6, 7]);
    assert_eq!(values(&out[1].1[0], "static"), vec![7, 8]);
}

#[test]
fn case_4_task_counts() {
    let ds = dataset(&[
        ("foo", &["x", "y"], &[3, 6], vec![0; 18]),
        ("bar", &["x"], &[3], vec![0; 3]),
        ("baz", &["z"], &[10], vec![0; 10]),
    ]);
    let count = |chunks: &[(&str, i64)], split| to_chunks(vec![&ds], chunks, split).unwrap().len();
    assert_eq!(count(&[("x", 1)], false), 3);
    assert_eq!(count(&[("x", 1)], true), 7);
    assert_eq!(count(&[("y", 1)], true), 8);
    assert_eq!(count(&[("z", 1)], true), 12);
}

#[test]
fn case_5_split_vars() {
    let ds = dataset(&[
        ("foo", &["x"], &[6], (0..6).collect()),
        ("bar", &["x"], &[6], (10..16).collect()),
    ]);
    let out = to_chunks(vec![&ds], &[("x", 3)], true).unwrap();
    let k: Vec<String> = out.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(
        k,
        [
            "Key(offsets={'x': 0}, vars={'foo'})",
            "Key(offsets={'x': 3}, vars={'foo'})",
            "Key(offsets={'x': 0}, vars={'bar'})",
            "Key(offsets={'x': 3}, vars={'bar'})",
        ]
    );
    assert_eq!(values(&out[3].1[0], "bar"), vec![13, 14, 15]);
    assert_eq!(out[3].1[0].data_vars().len(), 1);

    let ds = dataset(&[
        ("foo", &["x", "y"], &[2, 3], vec![0; 6]),
        ("bar", &["x"], &[2], vec![0; 2]),
        ("baz", &["z"], &[3], vec![0; 3]),
    ]);
    let k: Vec<String> = to_chunks(vec![&ds], &[("x", 1)], true)
        .unwrap()
        .iter()
        .map(|(k, _)| k.to_string())
        .collect();
    assert_eq!(
        k,
        [
            "Key(offsets={'x': 0, 'y': 0}, vars={'foo'})",
            "Key(offsets={'x': 1, 'y': 0}, vars={'foo'})",
            "Key(offsets={'x': 0}, vars={'bar'})",
            "Key(offsets={'x': 1}, vars={'bar'})",
            "Key(offsets={'z': 0}, vars={'baz'})",
        ]
    );
}

#[test]
fn case_6_dataset_to_chunks_errors() {
    let ds = dataset(&[
        ("foo", &["x"], &[3], vec![0; 3]),
        ("bar", &["x"], &[3], vec![0; 3]),
        ("baz", &["x"], &[3], vec![0; 3]),
    ]);
    let err = |datasets: Vec<&Dataset>, chunks: &[(&str, i64)], split| {
        to_chunks(datasets, chunks, split).unwrap_err()
    };
    assert_eq!(
        err(vec![&ds], &[("invalid", 1)], false),
        "chunks key 'invalid' is not a dimension on the provided dataset(s)"
    );
    assert_eq!(err(vec![], &[], false), "dataset list cannot be empty");
    let with_z = ds
        .clone()
        .with_data_var("q", var(&["z"], &[2], vec![0i64; 2]))
        .unwrap();
    assert_eq!(
        err(vec![&ds, &with_z], &[], false),
        "dimension z does not appear on the first dataset"
    );
    let other_x = foo_x(0..5);
    assert_eq!(
        err(vec![&ds, &other_x], &[], false),
        "dimension x has an inconsistent size on different datasets"
    );
    let with_qux = ds
        .clone()
        .with_data_var("qux", var(&["x"], &[3], vec![0i64; 3]))
        .unwrap();
    assert_eq!(
        err(vec![&ds, &with_qux], &[], true),
        "inconsistent data_vars when splitting variables: ('foo', 'bar', 'baz', 'qux') != ('foo', 'bar', 'baz')"
    );
    // the first dataset having more dims/vars is accepted
    // ... but a later dataset lacking a split variable fails when that chunk is read
    let plan = DatasetChunks::new(vec![&with_qux, &ds], &target(&[]), true).unwrap();
    assert_eq!(
        plan.chunk(&key(&[("x", 0)], Some(&["foo"]))).unwrap().len(),
        2
    );
    let err = plan.chunk(&key(&[("x", 0)], Some(&["qux"]))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read chunk Key(offsets={'x': 0}, vars={'qux'}) from dataset 2 of 2: \
         data variable 'qux' not found: expected one of ('foo', 'bar', 'baz')"
    );
    assert!(to_chunks(vec![&with_z, &ds], &[], false).is_ok());
}

#[test]
fn case_7_validate_chunk() {
    let ds = foo_x(0..3);
    let err = validate_chunk(&key(&[("x", 0), ("y", 0)], None), &[&ds])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("Key offset(s) 'y' in Key(offsets={'x': 0, 'y': 0}) not found in Dataset dimensions: <xbeam.Dataset>"), "{err}");
    let err = validate_chunk(&key(&[("x", 0)], Some(&["bar"])), &[&ds])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("Key var(s) 'bar' in Key(offsets={'x': 0}, vars={'bar'}) not found in Dataset data variables: <xbeam.Dataset>"), "{err}");
    validate_chunk(&key(&[("x", 0)], Some(&["foo"])), &[&ds]).unwrap();
}

fn chunk(offset: u64, values: impl IntoIterator<Item = i64>) -> Chunk {
    (key(&[("x", offset)], None), foo_x(values))
}

fn split_all(inputs: &[Chunk], t: &[(&str, i64)]) -> Vec<Chunk> {
    // SplitChunks filters the target to each chunk's dims.
    inputs
        .iter()
        .flat_map(|(k, ds)| {
            let sizes = ds.sizes();
            let filtered: TargetChunks = target(t)
                .into_iter()
                .filter(|(d, _)| sizes.contains_key(d))
                .collect();
            split_chunks(k, ds, &filtered).unwrap()
        })
        .collect()
}

#[test]
fn case_10_split_chunks_at_absolute_multiples() {
    let out = split_all(&[chunk(0, 0..5), chunk(5, 5..10)], &[("x", 3)]);
    let got: Vec<(String, Vec<i64>)> = out
        .iter()
        .map(|(k, d)| (k.to_string(), values(d, "foo")))
        .collect();
    assert_eq!(
        got,
        [
            ("Key(offsets={'x': 0})".to_string(), vec![0, 1, 2]),
            ("Key(offsets={'x': 3})".to_string(), vec![3, 4]),
            ("Key(offsets={'x': 5})".to_string(), vec![5]),
            ("Key(offsets={'x': 6})".to_string(), vec![6, 7, 8]),
            ("Key(offsets={'x': 9})".to_string(), vec![9]),
        ]
    );
}

#[test]
fn case_11_split_and_consolidate_round_trip() {
    let two = vec![chunk(0, 0..10), chunk(10, 10..20)];
    let four = split_all(&two, &[("x", 5)]);
    assert_eq!(
        keys(&four),
        [
            "Key(offsets={'x': 0})",
            "Key(offsets={'x': 5})",
            "Key(offsets={'x': 10})",
            "Key(offsets={'x': 15})"
        ]
    );
    let back = consolidate_chunks_to(four, &target(&[("x", 10)])).unwrap();
    assert_eq!(keys(&back), keys(&two));
    assert!(back.iter().zip(&two).all(|(a, b)| a.1.identical(&b.1)));

    let sizes: Vec<usize> = split_all(&[chunk(0, 0..10)], &[("x", 4)])
        .iter()
        .map(|(_, d)| d.sizes()["x"] as usize)
        .collect();
    assert_eq!(sizes, [4, 4, 2]);

    // 2-D: {x:0,y:0} and {x:0,y:5} (2x5) <-> {x:0,y:0} (2x10)
    let full = dataset(&[("foo", &["x", "y"], &[2, 10], (0..20).collect())]);
    let halves = split_chunks(
        &key(&[("x", 0), ("y", 0)], None),
        &full,
        &target(&[("y", 5)]),
    )
    .unwrap();
    assert_eq!(
        keys(&halves),
        [
            "Key(offsets={'x': 0, 'y': 0})",
            "Key(offsets={'x': 0, 'y': 5})"
        ]
    );
    assert_eq!(
        values(&halves[1].1, "foo"),
        vec![5, 6, 7, 8, 9, 15, 16, 17, 18, 19]
    );
    let whole = consolidate_chunks_to(halves, &target(&[("y", 10)])).unwrap();
    assert_eq!(whole.len(), 1);
    assert!(whole[0].1.identical(&full));

    // per-variable keys stay separate
    let per_var = vec![
        (key(&[("x", 0)], Some(&["foo"])), foo_x(0..5)),
        (key(&[("x", 5)], Some(&["foo"])), foo_x(5..10)),
        (
            key(&[("x", 0)], Some(&["bar"])),
            dataset(&[("bar", &["x"], &[5], (0..5).collect())]),
        ),
        (
            key(&[("x", 5)], Some(&["bar"])),
            dataset(&[("bar", &["x"], &[5], (5..10).collect())]),
        ),
    ];
    let out = consolidate_chunks_to(per_var, &target(&[("x", 10)])).unwrap();
    assert_eq!(
        keys(&out),
        [
            "Key(offsets={'x': 0}, vars={'bar'})",
            "Key(offsets={'x': 0}, vars={'foo'})"
        ]
    );
    assert_eq!(values(&out[0].1, "bar"), (0..10).collect::<Vec<_>>());
}

#[test]
fn case_12_consolidate_whole_dimension_and_scalar_conflicts() {
    let with_bar = |range: std::ops::Range<i64>, bar: i64| {
        foo_x(range)
            .with_data_var("bar", var(&[], &[], vec![bar]))
            .unwrap()
    };
    let out = consolidate_chunks_to(
        vec![
            (key(&[("x", 0)], None), with_bar(0..10, 1)),
            (key(&[("x", 10)], None), with_bar(10..20, 1)),
        ],
        &target(&[("x", -1)]),
    )
    .unwrap();
    assert_eq!(keys(&out), ["Key(offsets={'x': 0})"]);
    assert_eq!(values(&out[0].1, "foo"), (0..20).collect::<Vec<_>>());
    assert_eq!(values(&out[0].1, "bar"), vec![1]);

    let err = consolidate_chunks_to(
        vec![
            (key(&[("x", 0)], None), with_bar(0..10, 1)),
            (key(&[("x", 10)], None), with_bar(10..20, 2)),
        ],
        &target(&[("x", -1)]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with(
            "combining nested dataset chunks for vars=None with offsets={'x': [0, 10]} failed.\n\
             Leading datasets along dimension 'x':\n  <xbeam.Dataset>"
        ),
        "{err}"
    );
    assert!(
        err.contains("data variables 'bar' without dimension 'x' differs between datasets"),
        "{err}"
    );
}

#[test]
fn case_13_consolidate_groups_by_vars() {
    let bar = dataset(&[("bar", &["y"], &[2], vec![1, 2])]);
    let out = consolidate_chunks(vec![
        (key(&[("x", 0)], Some(&["foo"])), foo_x(0..5)),
        (key(&[("x", 5)], Some(&["foo"])), foo_x(5..10)),
        (key(&[("y", 0)], Some(&["bar"])), bar.clone()),
    ])
    .unwrap();
    assert_eq!(
        keys(&out),
        [
            "Key(offsets={'x': 0}, vars={'foo'})",
            "Key(offsets={'y': 0}, vars={'bar'})"
        ]
    );
    assert_eq!(values(&out[0].1, "foo").len(), 10);
    assert!(out[1].1.identical(&bar));

    let err = consolidate_chunks(vec![
        (key(&[("x", 0)], Some(&["foo"])), foo_x(0..5)),
        (
            key(&[("x", 5)], Some(&["bar"])),
            dataset(&[("bar", &["x"], &[5], (0..5).collect())]),
        ),
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "some expected chunks are missing for vars={'foo'}"
    );
}

#[test]
fn case_14_split_and_consolidate_variables() {
    let both = dataset(&[
        ("foo", &["x"], &[3], vec![1, 2, 3]),
        ("bar", &["x"], &[3], vec![4, 5, 6]),
    ]);
    let split = split_variables(&key(&[("x", 0)], None), &both).unwrap();
    assert_eq!(
        keys(&split),
        [
            "Key(offsets={'x': 0}, vars={'foo'})",
            "Key(offsets={'x': 0}, vars={'bar'})"
        ]
    );
    let back = consolidate_variables(split).unwrap();
    assert_eq!(keys(&back), ["Key(offsets={'x': 0}, vars={'bar', 'foo'})"]);
    assert!(back[0].1.identical(&both));

    let mixed = dataset(&[
        ("foo", &["x"], &[2], vec![1, 2]),
        ("bar", &["x", "y"], &[2, 2], vec![1, 2, 3, 4]),
    ]);
    let split = split_variables(&key(&[("x", 0), ("y", 0)], None), &mixed).unwrap();
    assert_eq!(
        keys(&split),
        [
            "Key(offsets={'x': 0}, vars={'foo'})",
            "Key(offsets={'x': 0, 'y': 0}, vars={'bar'})"
        ]
    );
    assert!(split_variables(&Key::new(), &Dataset::new())
        .unwrap()
        .is_empty());
}

#[test]
fn case_15_consolidate_variables() {
    let bar = |n: usize| dataset(&[("bar", &["x"], &[n], vec![9; n])]);
    let out = consolidate_variables(vec![
        (key(&[("x", 0)], Some(&["foo"])), foo_x(0..2)),
        (key(&[("x", 2)], Some(&["foo"])), foo_x(2..4)),
        (key(&[("x", 0)], Some(&["bar"])), bar(2)),
    ])
    .unwrap();
    assert_eq!(
        keys(&out),
        [
            "Key(offsets={'x': 0}, vars={'bar', 'foo'})",
            "Key(offsets={'x': 2}, vars={'foo'})"
        ]
    );

    let foo_bar = foo_x(0..2)
        .with_data_var("bar", var(&["x"], &[2], vec![0i64, 0]))
        .unwrap();
    let err = consolidate_variables(vec![
        (key(&[("x", 0)], Some(&["foo"])), foo_x(0..2)),
        (key(&[("x", 0)], Some(&["foo", "bar"])), foo_bar),
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot merge chunks with overlapping variables: [{'foo'}, {'bar', 'foo'}]"
    );

    let err = consolidate_variables(vec![
        (key(&[("x", 0)], Some(&["foo"])), foo_x(0..2)),
        (key(&[("x", 0)], Some(&["bar"])), bar(3)),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with(
            "merging dataset chunks with variables [{'foo'}, {'bar'}] failed.\n  <xbeam.Dataset>"
        ),
        "{err}"
    );
}

#[test]
fn case_16_consolidate_fully() {
    let bar = |r: std::ops::Range<i64>| dataset(&[("bar", &["x"], &[5], r.collect())]);
    let (k, ds) = consolidate_fully(vec![
        (key(&[("x", 0)], Some(&["foo"])), foo_x(0..5)),
        (key(&[("x", 5)], Some(&["foo"])), foo_x(5..10)),
        (key(&[("x", 0)], Some(&["bar"])), bar(0..5)),
        (key(&[("x", 5)], Some(&["bar"])), bar(5..10)),
    ])
    .unwrap();
    assert_eq!(k, key(&[("x", 0)], Some(&["foo", "bar"])));
    assert_eq!(values(&ds, "bar"), (0..10).collect::<Vec<_>>());

    let (k, _) = consolidate_fully(vec![
        (key(&[("x", 0)], None), foo_x(0..5)),
        (key(&[("x", 5)], None), foo_x(5..10)),
        (
            key(&[("y", 2)], Some(&["bar"])),
            dataset(&[("bar", &["y"], &[3], vec![1, 2, 3])]),
        ),
    ])
    .unwrap();
    assert_eq!(k, key(&[("x", 0), ("y", 2)], Some(&["foo", "bar"])));

    let err = consolidate_fully(vec![
        (key(&[("x", 0)], Some(&["foo"])), foo_x(0..5)),
        (key(&[("x", 0)], Some(&["bar"])), foo_x(0..5)),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("merging dataset chunks with variables [{'foo'}, {'foo'}] failed."),
        "{err}"
    );

    let baz = dataset(&[
        ("bar", &["x"], &[5], vec![0; 5]),
        ("baz", &["x"], &[5], vec![0; 5]),
    ]);
    let err = consolidate_fully(vec![
        (key(&[("x", 5)], Some(&["foo"])), foo_x(0..5)),
        (key(&[("x", 0)], Some(&["bar", "baz"])), baz),
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "some expected chunks are missing for vars={'foo'}"
    );
}

#[test]
fn case_17_in_memory_rechunk() {
    let row = |v: Vec<i64>| dataset(&[("foo", &["x", "y"], &[1, 3], v)]);
    let out = in_memory_rechunk(
        vec![
            (key(&[("x", 100), ("y", 300)], None), row(vec![1, 2, 3])),
            (key(&[("x", 101), ("y", 300)], None), row(vec![4, 5, 6])),
        ],
        &target(&[("x", 2), ("y", 1)]),
    )
    .unwrap();
    let got: Vec<(String, Vec<i64>)> = out
        .iter()
        .map(|(k, d)| (k.to_string(), values(d, "foo")))
        .collect();
    assert_eq!(
        got,
        [
            ("Key(offsets={'x': 100, 'y': 300})".to_string(), vec![1, 4]),
            ("Key(offsets={'x': 100, 'y': 301})".to_string(), vec![2, 5]),
            ("Key(offsets={'x': 100, 'y': 302})".to_string(), vec![3, 6]),
        ]
    );

    let dup =
        in_memory_rechunk(vec![chunk(0, 0..2), chunk(0, 0..2)], &target(&[("x", 1)])).unwrap_err();
    assert_eq!(
        dup.to_string(),
        "chunk keys are not unique: [Key(offsets={'x': 0}), Key(offsets={'x': 0})]"
    );

    let one = || dataset(&[("foo", &["x", "y"], &[1, 1], vec![1])]);
    let err = in_memory_rechunk(
        vec![
            (key(&[("x", 0), ("y", 0)], None), one()),
            (key(&[("x", 1), ("y", 1)], None), one()),
        ],
        &target(&[("x", 2)]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "some expected chunks are missing for vars=None shape: (2, 2) len(inputs): 2"
    );
}

#[test]
fn irregular_chunks_one_per_calendar_year() {
    // 3 "years" of 365, 366, 365 days, split daily-by-month and back.
    let n = 365 + 366 + 365;
    let full = foo_x(0..n);
    let years = TargetChunks::from([("x".to_string(), ChunkSpec::Sizes(vec![365, 366, 365]))]);
    let by_year = split_chunks(&Key::new(), &full, &years).unwrap();
    assert_eq!(
        keys(&by_year),
        [
            "Key(offsets={'x': 0})",
            "Key(offsets={'x': 365})",
            "Key(offsets={'x': 731})"
        ]
    );
    assert_eq!(by_year[1].1.sizes()["x"], 366);

    // 100-day chunks cut across year boundaries, then back to years
    let hundreds = in_memory_rechunk(by_year.clone(), &target(&[("x", 100)])).unwrap();
    assert_eq!(hundreds.len(), 11);
    let back = in_memory_rechunk(hundreds.clone(), &years).unwrap();
    assert_eq!(keys(&back), keys(&by_year));
    assert!(back.iter().zip(&by_year).all(|(a, b)| a.1.identical(&b.1)));

    // consolidating 100-day pieces into years groups by the irregular boundaries
    let split_at_both: Vec<Chunk> = hundreds
        .iter()
        .flat_map(|(k, d)| split_chunks(k, d, &years).unwrap())
        .collect();
    assert_eq!(split_at_both.len(), 13);
    let yearly = consolidate_chunks_to(split_at_both, &years).unwrap();
    assert_eq!(keys(&yearly), keys(&by_year));
    assert!(yearly
        .iter()
        .zip(&by_year)
        .all(|(a, b)| a.1.identical(&b.1)));
}

#[test]
fn fill_missing_chunks_with_nan_and_coordinates() {
    let full = Dataset::new()
        .with_coord("x", var(&["x"], &[6], (0..6i64).map(|i| i * 10).collect()))
        .unwrap()
        .with_data_var(
            "t",
            var(&["x", "y"], &[6, 2], (0..12).map(f64::from).collect()),
        )
        .unwrap();
    let template = Template::from(&full);
    let grid = ChunkGrid::new([("x", 6), ("y", 2)], [("x", ChunkSpec::Size(2))]).unwrap();
    let present: Vec<Chunk> = [0u64, 4]
        .iter()
        .map(|&o| {
            (
                key(&[("x", o), ("y", 0)], None),
                full.isel([("x", o..o + 2)]).unwrap(),
            )
        })
        .collect();
    let fill = FillMissing {
        template: &template,
        source_chunks: &grid,
        target_chunks: &target(&[("x", -1)]),
        fill_value: f64::NAN,
    };
    let out = consolidate_chunks_filled(present.clone(), &fill).unwrap();
    assert_eq!(keys(&out), ["Key(offsets={'x': 0, 'y': 0})"]);
    let ds = &out[0].1;
    assert!(
        ds.coord("x").unwrap().equals(full.coord("x").unwrap()),
        "fill chunk carries template coordinates"
    );
    let t = ds.data_var("t").unwrap().data().to_f64().unwrap();
    assert_eq!(t[[1, 1]], 3.0);
    assert!(t[[2, 0]].is_nan() && t[[3, 1]].is_nan());
    assert_eq!(t[[5, 1]], 11.0);

    // without filling, the gap is an error, never a silently shorter array
    let err = consolidate_chunks(present.clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "chunks for vars=None are not contiguous along 'x': the chunk at offset 0 has size 2, \
         so the next should start at 2, but it starts at 4"
    );
    let missing_first = vec![present[1].clone()];
    let out = consolidate_chunks_filled(missing_first, &fill).unwrap();
    assert_eq!(
        out[0].1.sizes()["x"],
        6,
        "a missing first chunk is filled too"
    );

    // integer variables need an explicit fill value
    let ints = foo_x(0..4);
    let int_grid = ChunkGrid::new([("x", 4)], [("x", ChunkSpec::Size(2))]).unwrap();
    let int_template = Template::from(&ints);
    let whole = target(&[("x", -1)]);
    let int_fill = |v| FillMissing {
        template: &int_template,
        source_chunks: &int_grid,
        target_chunks: &whole,
        fill_value: v,
    };
    let err = consolidate_chunks_filled(
        vec![(key(&[("x", 0)], None), foo_x(0..2))],
        &int_fill(f64::NAN),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot fill a missing chunk of int64 variable 'foo' with NaN: give a fill value"
    );
    let out =
        consolidate_chunks_filled(vec![(key(&[("x", 0)], None), foo_x(0..2))], &int_fill(-1.0))
            .unwrap();
    assert_eq!(values(&out[0].1, "foo"), vec![0, 1, -1, -1]);

    // a chunk off the source grid is an error, not silent misplacement
    let err =
        consolidate_chunks_filled(vec![(key(&[("x", 1)], None), foo_x(0..2))], &int_fill(0.0))
            .unwrap_err();
    assert!(
        err.to_string().contains("is not on a chunk boundary"),
        "{err}"
    );
}

#[test]
fn consolidate_rejects_overlaps_and_misplaced_keys() {
    // overlapping chunks: 0..5 and 3..8
    let err = consolidate_chunks(vec![chunk(0, 0..5), chunk(3, 3..8)]).unwrap_err();
    assert!(
        err.to_string().contains(
            "the chunk at offset 0 has size 5, so the next should start at 5, but it starts at 3"
        ),
        "{err}"
    );
    // a key without `y` (so y = 0) among keys at y = 5 is missing, not misplaced
    let row = |v: i64| dataset(&[("foo", &["x", "y"], &[1, 1], vec![v])]);
    let err = consolidate_chunks(vec![
        (key(&[("x", 0), ("y", 5)], None), row(1)),
        (key(&[("x", 1)], None), row(2)),
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "some expected chunks are missing for vars=None"
    );
}

#[test]
fn split_chunks_rejects_unknown_dims_and_shares_buffers() {
    let ds = foo_x(0..4);
    let err = split_chunks(&Key::new(), &ds, &target(&[("z", 2)])).unwrap_err();
    assert_eq!(err.to_string(), "target chunks name dimension 'z' which the chunk at Key() does not have: expected one of ('x',)");
    let pieces = split_chunks(&Key::new(), &ds, &target(&[("x", 2)])).unwrap();
    let original = ds
        .data_var("foo")
        .unwrap()
        .data()
        .as_view::<i64>()
        .unwrap()
        .as_ptr();
    let second = pieces[1]
        .1
        .data_var("foo")
        .unwrap()
        .data()
        .as_view::<i64>()
        .unwrap()
        .as_ptr();
    assert_eq!(
        second,
        original.wrapping_add(2),
        "split pieces are views of the original buffer"
    );
    let _ = Array::from_1d(vec![0u8]);
    let _ = Variable::new(["x"], Array::from_1d(vec![0u8])).unwrap();
}
