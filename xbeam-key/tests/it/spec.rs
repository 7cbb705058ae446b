//! Chunks written as text: parsing, byte sizes, errors and round trips.

use indexmap::IndexMap;
use proptest::prelude::*;
use xbeam_key::{parse_bytes, to_human_size, ChunkRequest, ChunkSpec, ChunksRequest, KeyError};

fn per_dim(pairs: &[(&str, ChunkRequest)], rest: Option<ChunkRequest>) -> ChunksRequest {
    let r: ChunksRequest = pairs.iter().cloned().collect();
    match rest {
        Some(rest) => r.with_rest(rest),
        None => r,
    }
}

fn size(n: u64) -> ChunkRequest {
    ChunkRequest::Spec(ChunkSpec::Size(n))
}

const FULL: ChunkRequest = ChunkRequest::Spec(ChunkSpec::Full);

#[test]
fn per_dimension_requests() {
    let parse = |s: &str| s.parse::<ChunksRequest>().unwrap();
    assert_eq!(
        parse("time=24,latitude=-1"),
        per_dim(&[("time", size(24)), ("latitude", FULL)], None)
    );
    assert_eq!(
        parse(" time = 24 , latitude=-1 "),
        parse("time=24,latitude=-1")
    );
    assert_eq!(
        parse("x=10,...=20"),
        per_dim(&[("x", size(10))], Some(size(20)))
    );
    assert_eq!(
        parse("time=-1,...=292000B"),
        per_dim(&[("time", FULL)], Some(ChunkRequest::Bytes(292_000)))
    );
    assert_eq!(
        parse("time=365,366,365,lat=-1"),
        per_dim(
            &[
                (
                    "time",
                    ChunkRequest::Spec(ChunkSpec::Sizes(vec![365, 366, 365]))
                ),
                ("lat", FULL)
            ],
            None
        )
    );
    assert_eq!(parse("x=auto"), per_dim(&[("x", ChunkRequest::Auto)], None));
    assert_eq!(parse(""), ChunksRequest::default());
}

#[test]
fn one_value_for_every_dimension() {
    let parse = |s: &str| s.parse::<ChunksRequest>().unwrap();
    assert_eq!(
        parse("100MB"),
        ChunksRequest::All(ChunkRequest::Bytes(100_000_000))
    );
    assert_eq!(
        parse("64KiB"),
        ChunksRequest::All(ChunkRequest::Bytes(65_536))
    );
    assert_eq!(parse("-1"), ChunksRequest::All(FULL));
    assert_eq!(parse("10"), ChunksRequest::All(size(10)));
    assert_eq!(parse("auto"), ChunksRequest::All(ChunkRequest::Auto));
    assert_eq!(
        parse("365,366"),
        ChunksRequest::All(ChunkRequest::Spec(ChunkSpec::Sizes(vec![365, 366])))
    );
    assert_eq!(
        "365,366".parse::<ChunkSpec>().unwrap(),
        ChunkSpec::Sizes(vec![365, 366])
    );
    assert_eq!("-1".parse::<ChunkSpec>().unwrap(), ChunkSpec::Full);
}

#[test]
fn byte_sizes_follow_dask_parse_bytes() {
    for (text, bytes) in [
        ("100MB", 100_000_000),
        ("100mb", 100_000_000),
        ("100 M", 100_000_000),
        ("64KiB", 65_536),
        ("64kib", 65_536),
        ("64ki", 65_536),
        ("1KiB", 1024),
        ("128MiB", 128 << 20),
        ("5kB", 5000),
        ("5k", 5000),
        ("5 kb", 5000),
        ("1.5GB", 1_500_000_000),
        ("2g", 2_000_000_000),
        ("3T", 3_000_000_000_000),
        ("1p", 1_000_000_000_000_000),
        ("1Gi", 1 << 30),
        ("1TiB", 1 << 40),
        ("1PiB", 1 << 50),
        ("80B", 80),
        ("80b", 80),
        ("80", 80),
        ("MB", 1_000_000),
        ("0.1kB", 100),
        ("1e3", 1000),
    ] {
        assert_eq!(parse_bytes(text).unwrap(), bytes, "{text}");
    }
    for (text, message) in [
        ("5 apples", "expected a byte unit (B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB), found \"apples\" in \"5 apples\""),
        ("1.2.3MB", "expected a number of bytes like 100MB or 64KiB, found \"1.2.3\" in \"1.2.3MB\""),
        ("-5MB", "expected a number of bytes between 0 and 2^64, found \"-5MB\""),
        ("100000PB", "expected a number of bytes between 0 and 2^64, found \"100000PB\""),
    ] {
        assert_eq!(parse_bytes(text).unwrap_err().to_string(), message);
    }
}

#[test]
fn malformed_requests_say_what_was_expected() {
    let err = |s: &str| s.parse::<ChunksRequest>().unwrap_err().to_string();
    assert_eq!(
        err("time=24,x"),
        "expected chunks like time=24,latitude=-1, found \"x\""
    );
    assert_eq!(
        err("=24"),
        "expected chunks like time=24,latitude=-1, found \"=24\""
    );
    assert_eq!(
        err("time=-1,5"),
        "expected chunks like time=24,latitude=-1, found \"5\""
    );
    assert_eq!(
        err("time=abc"),
        "expected a chunk size like 24, -1 (the whole dimension), 365,366 (explicit sizes) or 100MB for dimension \"time\", found \"abc\""
    );
    assert_eq!(
        err("...=1.5"),
        "expected a chunk size like 24, -1 (the whole dimension), 365,366 (explicit sizes) or 100MB for the other dimensions (...), found \"1.5\""
    );
    assert_eq!(
        err("x=1,x=2"),
        "expected dimension \"x\" once in chunks like time=24,latitude=-1, found \"x\" twice"
    );
    assert_eq!(
        err("abc"),
        "expected a byte unit (B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB), found \"abc\" in \"abc\""
    );
    assert_eq!(
        err("-2"),
        "expected a chunk size like 24, -1 (the whole dimension), 365,366 (explicit sizes) or 100MB, found \"-2\""
    );
    assert!(matches!(
        "x=5MB".parse::<ChunksRequest>().unwrap().fixed_specs(),
        Err(KeyError::NotFixed { .. })
    ));
    assert_eq!(
        "100MB".parse::<ChunkSpec>().unwrap_err().to_string(),
        "expected a chunk size like 24, -1 (the whole dimension) or 365,366 (explicit sizes), found \"100MB\""
    );
}

#[test]
fn fixed_specs_and_target_chunks_convert() {
    let specs: IndexMap<String, ChunkSpec> = [
        ("time".to_string(), ChunkSpec::Size(24)),
        ("lat".to_string(), ChunkSpec::Full),
    ]
    .into();
    let request = ChunksRequest::from(specs.clone());
    assert_eq!(request.to_string(), "time=24,lat=-1");
    assert_eq!(request.fixed_specs().unwrap(), specs);
    assert_eq!(
        "time=24,lat=-1"
            .parse::<ChunksRequest>()
            .unwrap()
            .fixed_specs()
            .unwrap(),
        specs
    );
    let err = "time=24,...=5"
        .parse::<ChunksRequest>()
        .unwrap()
        .fixed_specs()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected fixed chunk sizes per dimension, found \"time=24,...=5\": byte targets and `...` need normalize_chunks and a template"
    );
}

#[test]
fn python_reprs_for_messages() {
    let r: ChunksRequest = "x=100MB,y=1KB,z=3,4,w=-1,...=auto".parse().unwrap();
    assert_eq!(
        r.py_repr(),
        "{'x': '100MB', 'y': '1kB', 'z': (3, 4), 'w': -1, Ellipsis: 'auto'}"
    );
    assert_eq!("auto".parse::<ChunksRequest>().unwrap().py_repr(), "'auto'");
    assert_eq!(
        ChunkRequest::Spec(ChunkSpec::Sizes(vec![5])).py_repr(),
        "(5,)"
    );
}

#[test]
fn human_sizes_match_xarray_beam() {
    for (bytes, text) in [
        (0u128, "0B"),
        (999, "999B"),
        (1000, "1.0kB"),
        (9996, "10kB"),
        (100_000_000, "100MB"),
        (10u128.pow(21), "1000EB"),
        (10u128.pow(22), "10000EB"),
        (40, "40B"),
        (80, "80B"),
        (1500, "1.5kB"),
        (2_523_100, "2.5MB"),
        (12_345_678, "12MB"),
    ] {
        assert_eq!(to_human_size(bytes), text, "{bytes}");
    }
}

fn request_value() -> impl Strategy<Value = ChunkRequest> {
    prop_oneof![
        (0u64..10_000).prop_map(size),
        Just(FULL),
        Just(ChunkRequest::Auto),
        prop::collection::vec(1u64..1000, 2..5)
            .prop_map(|v| ChunkRequest::Spec(ChunkSpec::Sizes(v))),
        (0u64..1 << 50).prop_map(ChunkRequest::Bytes),
    ]
}

proptest! {
    #[test]
    fn display_parses_back(
        dims in prop::collection::vec(("[a-z_][a-z0-9_]{0,6}", request_value()), 0..4),
        rest in prop::option::of(request_value()),
        all in request_value(),
    ) {
        let mut map = IndexMap::new();
        for (d, r) in dims {
            map.entry(d).or_insert(r);
        }
        let mut request: ChunksRequest = map.into_iter().collect();
        if let Some(rest) = rest {
            request = request.with_rest(rest);
        }
        let text = request.to_string();
        prop_assert_eq!(text.parse::<ChunksRequest>().unwrap(), request);
        let all = ChunksRequest::All(all);
        prop_assert_eq!(all.to_string().parse::<ChunksRequest>().unwrap(), all);
    }
}
