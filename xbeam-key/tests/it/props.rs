use proptest::prelude::*;
use xbeam_key::{chunk_offsets, ChunkGrid, ChunkSpec, Key};

fn spec() -> impl Strategy<Value = (u64, ChunkSpec)> {
    prop_oneof![
        (1u64..200, 1u64..50).prop_map(|(n, c)| (n, ChunkSpec::Size(c))),
        (1u64..200).prop_map(|n| (n, ChunkSpec::Full)),
        proptest::collection::vec(1u64..30, 1..10)
            .prop_map(|v| (v.iter().sum(), ChunkSpec::Sizes(v))),
    ]
}

proptest! {
    #[test]
    fn split_bounds_tile_the_range((size, spec) in spec(), a in 0u64..200, b in 0u64..200) {
        let (start, stop) = (a.min(b).min(size), a.max(b).min(size));
        let bounds = spec.split_bounds(start, stop);
        prop_assert_eq!(bounds.first().unwrap().0, start);
        prop_assert_eq!(bounds.last().unwrap().1, stop);
        for w in bounds.windows(2) {
            prop_assert_eq!(w[0].1, w[1].0);
        }
        // every interior cut is a chunk boundary of the spec
        let offsets = chunk_offsets(&spec.normalize("x", size).unwrap());
        for (s, _) in bounds.iter().skip(1) {
            prop_assert!(offsets.contains(s), "cut {} not a boundary of {:?}", s, offsets);
            prop_assert_eq!(spec.round_down(*s), *s);
        }
    }

    #[test]
    fn normalized_chunks_sum_to_size((size, spec) in spec()) {
        let sizes = spec.normalize("x", size).unwrap();
        prop_assert_eq!(sizes.iter().sum::<u64>(), size);
        let grid = ChunkGrid::from_chunk_sizes([("x", sizes.clone())]);
        for (i, o) in chunk_offsets(&sizes).into_iter().enumerate() {
            prop_assert_eq!(grid.chunk_index("x", o).unwrap(), i);
            prop_assert_eq!(grid.chunk_size("x", o).unwrap(), sizes[i]);
            prop_assert_eq!(spec.round_down(o + sizes[i] - 1), o);
        }
    }

    #[test]
    fn encoding_round_trips_and_is_canonical(
        offsets in proptest::collection::vec(("[a-z]{1,4}", 0u64..u64::MAX), 0..6),
        vars in proptest::option::of(proptest::collection::btree_set("[a-z_]{0,5}", 0..4)),
    ) {
        let key = Key::from_parts(offsets.clone(), vars.clone());
        let reversed = Key::from_parts(offsets.into_iter().rev().collect::<Vec<_>>(), vars);
        let bytes = key.encode();
        prop_assert_eq!(Key::decode(&bytes).unwrap(), key.clone());
        // the same key with another insertion order of distinct dims encodes the same
        if key == reversed {
            prop_assert_eq!(reversed.encode(), bytes);
            prop_assert_eq!(key.cmp(&reversed), std::cmp::Ordering::Equal);
        }
    }

    #[test]
    fn order_and_hash_agree_with_equality(
        a in proptest::collection::vec(("[ab]", 0u64..3), 0..3),
        b in proptest::collection::vec(("[ab]", 0u64..3), 0..3),
        va in proptest::option::of(proptest::collection::btree_set("[fg]", 0..2)),
        vb in proptest::option::of(proptest::collection::btree_set("[fg]", 0..2)),
    ) {
        use std::hash::{BuildHasher, RandomState};
        let (ka, kb) = (Key::from_parts(a, va), Key::from_parts(b, vb));
        let equal = ka == kb;
        prop_assert_eq!(equal, ka.cmp(&kb) == std::cmp::Ordering::Equal);
        prop_assert_eq!(equal, ka.encode() == kb.encode());
        prop_assert_eq!(ka.cmp(&kb), kb.cmp(&ka).reverse());
        if equal {
            let s = RandomState::new();
            prop_assert_eq!(s.hash_one(&ka), s.hash_one(&kb));
        }
    }
}
