use indexmap::IndexMap;
use xbeam_key::{offsets_to_slices, ChunkGrid, ChunkSpec, Key, Offsets};

fn map(entries: &[(&str, u64)]) -> IndexMap<String, u64> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_string(), *v))
        .collect()
}

#[test]
fn offsets_to_slices_case_3() {
    let offsets = map(&[("x", 0), ("y", 10)]);
    let s = offsets_to_slices(
        &offsets,
        &map(&[("x", 5), ("y", 10), ("extra_key", 100)]),
        None,
    )
    .unwrap();
    assert_eq!(s["x"], 0..5);
    assert_eq!(s["y"], 10..20);
    assert_eq!(s["extra_key"], 0..100);

    let err = offsets_to_slices(&offsets, &map(&[("y", 10)]), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "some dimensions have offsets specified but no dimension sizes: \
         offsets={'x': 0, 'y': 10} and sizes={'y': 10}"
    );

    let base: Offsets = map(&[("x", 100)]);
    let s = offsets_to_slices(
        &map(&[("x", 100), ("y", 210)]),
        &map(&[("x", 5), ("y", 10)]),
        Some(&base),
    )
    .unwrap();
    assert_eq!(s["x"], 0..5);
    assert_eq!(s["y"], 210..220);

    let err = offsets_to_slices(&map(&[("x", 5)]), &map(&[("x", 5)]), Some(&base)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "offset 5 along dimension 'x' is before the base offset 100"
    );
}

#[test]
fn normalize_chunks_follows_xarray_beam() {
    assert_eq!(
        ChunkSpec::Size(3).normalize("x", 10).unwrap(),
        vec![3, 3, 3, 1]
    );
    assert_eq!(ChunkSpec::Size(100).normalize("x", 10).unwrap(), vec![10]);
    assert_eq!(ChunkSpec::from(-1).normalize("x", 10).unwrap(), vec![10]);
    assert_eq!(ChunkSpec::Size(5).normalize("x", 10).unwrap(), vec![5, 5]);
    assert_eq!(
        ChunkSpec::Sizes(vec![1, 2, 3]).normalize("x", 6).unwrap(),
        vec![1, 2, 3]
    );
    let err = ChunkSpec::Sizes(vec![1, 2]).normalize("x", 6).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sum of provided chunks does not match size of dimension x: 3 vs 6"
    );
    let err = ChunkSpec::Size(1).normalize("time", u64::MAX).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dimension 'time' of size 18446744073709551615 in chunks of 1 would have more than 4294967296 chunks: \
         expected a larger chunk size"
    );
    let err = ChunkSpec::Size(0).normalize("x", 6).unwrap_err();
    assert_eq!(
        err.to_string(),
        "chunk sizes must be positive, but dimension \"x\" has a chunk of size 0"
    );
}

#[test]
fn grid_keys_and_task_counts_case_4() {
    // foo(x:3, y:6), bar(x:3), baz(z:10)
    let sizes = [("x", 3), ("y", 6), ("z", 10)];
    let vars = [
        ("foo", vec!["x", "y"]),
        ("bar", vec!["x"]),
        ("baz", vec!["z"]),
    ];
    let count = |chunks: &[(&str, u64)], split: bool| {
        let grid =
            ChunkGrid::new(sizes, chunks.iter().map(|(d, c)| (*d, ChunkSpec::Size(*c)))).unwrap();
        if split {
            let keys: Vec<Key> = grid.keys_for_vars(&vars).unwrap().collect();
            let n = grid.task_count_split(&vars).unwrap();
            assert_eq!(keys.len() as u64, n);
            n
        } else {
            assert_eq!(grid.keys().count() as u64, grid.task_count());
            grid.task_count()
        }
    };
    assert_eq!(count(&[("x", 1)], false), 3);
    assert_eq!(count(&[("x", 1)], true), 7);
    assert_eq!(count(&[("y", 1)], true), 8);
    assert_eq!(count(&[("z", 1)], true), 12);
}

#[test]
fn split_var_keys_case_5() {
    // foo(x:2, y:3), bar(x:2), baz(z:3), chunks {x:1}
    let grid = ChunkGrid::new([("x", 2), ("y", 3), ("z", 3)], [("x", ChunkSpec::Size(1))]).unwrap();
    let vars = [
        ("foo", vec!["x", "y"]),
        ("bar", vec!["x"]),
        ("baz", vec!["z"]),
    ];
    let keys: Vec<String> = grid
        .keys_for_vars(&vars)
        .unwrap()
        .map(|k| k.to_string())
        .collect();
    assert_eq!(
        keys,
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
fn grid_errors_name_the_dimension() {
    let err = ChunkGrid::new([("x", 5)], [("invalid", ChunkSpec::Size(1))]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "chunks key 'invalid' is not a dimension on the provided dataset(s)"
    );
    let grid = ChunkGrid::new([("x", 10)], [("x", ChunkSpec::Size(3))]).unwrap();
    assert_eq!(
        grid.chunk_index("x", 4).unwrap_err().to_string(),
        "offset 4 along dimension 'x' is not on a chunk boundary: expected one of [0, 3, 6, 9]"
    );
    assert_eq!(
        grid.chunk_sizes("t").unwrap_err().to_string(),
        "dimension 't' is not part of the chunk grid with dimensions ('x',)"
    );
    assert_eq!(grid.chunk_index("x", 9).unwrap(), 3);
}

#[test]
fn empty_grid_has_one_empty_key() {
    let grid = ChunkGrid::new(
        Vec::<(String, u64)>::new(),
        Vec::<(String, ChunkSpec)>::new(),
    )
    .unwrap();
    let keys: Vec<Key> = grid.keys().collect();
    assert_eq!(keys, vec![Key::new()]);
}

#[test]
fn split_bounds_vectors_case_10() {
    let s = |start, stop, m: i64| ChunkSpec::from(m).split_bounds(start, stop);
    assert_eq!(s(0, 10, 3), vec![(0, 3), (3, 6), (6, 9), (9, 10)]);
    assert_eq!(s(5, 10, 3), vec![(5, 6), (6, 9), (9, 10)]);
    assert_eq!(s(10, 20, 12), vec![(10, 12), (12, 20)]);
    assert_eq!(s(0, 20, 100), vec![(0, 20)]);
    assert_eq!(s(0, 20, -1), vec![(0, 20)]);
}

#[test]
fn irregular_round_down() {
    let years = ChunkSpec::Sizes(vec![365, 366, 365]);
    assert_eq!(years.round_down(0), 0);
    assert_eq!(years.round_down(364), 0);
    assert_eq!(years.round_down(365), 365);
    assert_eq!(years.round_down(731), 731);
    assert_eq!(years.round_down(5000), 731);
    // an empty dimension has no chunks at all
    assert_eq!(ChunkSpec::Sizes(vec![]).round_down(0), 0);
}
