//! The array <-> bytes codec: every layout (contiguous, strided, transposed,
//! reversed) encodes to the bytes of its row-major copy, and decodes back.

use xbeam_chunk::calendar::{Calendar, TimeUnit};
use xbeam_chunk::{codec, Array, DType};

/// The reference encoding: element by element, in logical row-major order.
fn reference_bytes(a: &Array) -> Vec<u8> {
    fn le<T: Copy, const N: usize>(
        v: &ndarray::ArrayViewD<'_, T>,
        f: impl Fn(T) -> [u8; N],
    ) -> Vec<u8> {
        v.iter().flat_map(|&x| f(x)).collect()
    }
    match a.dtype() {
        DType::F32 => le(&a.as_view::<f32>().unwrap(), f32::to_le_bytes),
        DType::I16 => le(&a.as_view::<i16>().unwrap(), i16::to_le_bytes),
        DType::U8 => le(&a.as_view::<u8>().unwrap(), u8::to_le_bytes),
        DType::Bool => le(&a.as_view::<bool>().unwrap(), |b| [u8::from(b)]),
        DType::DateTime(..) => le(&a.datetime_ticks().unwrap().0, i64::to_le_bytes),
        other => panic!("no reference encoding for {other}"),
    }
}

fn check(a: &Array) {
    let bytes = codec::to_le_bytes(a).unwrap();
    assert_eq!(&bytes[..], &reference_bytes(a)[..], "{a:?}");
    assert_eq!(codec::encoded_len(a).unwrap(), bytes.len());
    let mut out = vec![0xAA; bytes.len()];
    codec::write_le_bytes(a, &mut out).unwrap();
    assert_eq!(out, &bytes[..]);
    let mut appended = vec![7u8];
    codec::extend_le_bytes(a, &mut appended).unwrap();
    assert_eq!(&appended[1..], &bytes[..]);
    let back = codec::from_le_bytes(a.dtype(), a.shape(), &bytes).unwrap();
    assert!(back.equals(a), "{back:?} vs {a:?}");
}

fn cube() -> Array {
    Array::from_vec(vec![4, 5, 6], (0..120).map(|i| i as f32 * 0.5).collect()).unwrap()
}

#[test]
fn contiguous_arrays_are_borrowed() {
    let a = cube();
    assert!(matches!(
        codec::to_le_bytes(&a).unwrap(),
        std::borrow::Cow::Borrowed(_)
    ));
    check(&a);
    // A time slice of a pancake is contiguous too.
    let slice = a.slice_axis(0, 1..3).unwrap();
    assert!(matches!(
        codec::to_le_bytes(&slice).unwrap(),
        std::borrow::Cow::Borrowed(_)
    ));
    check(&slice);
}

#[test]
fn strided_views_encode_in_row_major_order() {
    let a = cube();
    // Spatial splits: strided in the middle and last axes.
    check(&a.slice_axis(1, 1..4).unwrap());
    check(&a.slice_axis(2, 2..5).unwrap());
    check(&a.slice_axis(1, 1..4).unwrap().slice_axis(2, 0..1).unwrap());
    // Transposed (the last axis itself strided) and a 2-D case.
    check(&a.permute(&[2, 0, 1]).unwrap());
    let m = Array::from_vec(vec![3, 4], (0..12i16).collect()).unwrap();
    check(&m.slice_axis(1, 1..3).unwrap());
    check(&m.permute(&[1, 0]).unwrap());
    // Reversed (negative strides) through select.
    check(&m.select(0, &[2, 0]).unwrap());
    // 1-D, 0-D and empty views.
    let v = Array::from_1d((0..10u8).collect());
    check(&v.slice_axis(0, 3..7).unwrap());
    check(&Array::scalar(3u8));
    check(&a.slice_axis(1, 2..2).unwrap());
    // A 4-D view.
    let four = Array::from_vec(vec![2, 3, 4, 5], (0..120).map(|i| i as f32).collect()).unwrap();
    check(&four.slice_axis(2, 1..3).unwrap());
}

#[test]
fn bools_and_datetimes_encode_as_bytes_and_ticks() {
    let b = Array::from_vec(vec![2, 3], vec![true, false, true, false, false, true]).unwrap();
    check(&b);
    check(&b.slice_axis(1, 1..3).unwrap());
    assert!(codec::from_le_bytes(DType::Bool, &[2], &[0, 7])
        .unwrap()
        .equals(&Array::from_1d(vec![false, true])));
    let ticks = ndarray::ArrayD::from_shape_vec(vec![2, 2], vec![0i64, 1, i64::MIN, 9]).unwrap();
    let t = Array::datetime(ticks, TimeUnit::Hours, Calendar::NoLeap);
    check(&t);
    check(&t.slice_axis(1, 1..2).unwrap());
}

#[test]
fn strings_and_wrong_lengths_are_errors() {
    let s = Array::from_1d(vec!["a".to_string()]);
    let err = codec::to_le_bytes(&s).unwrap_err().to_string();
    assert_eq!(
        err,
        "expected an array with a fixed-size dtype to encode as bytes, found str"
    );
    assert!(codec::from_le_bytes(DType::String, &[1], &[0]).is_err());
    let err = codec::from_le_bytes(DType::F32, &[2, 2], &[0; 15])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "expected 16 bytes for an array of float32 of shape [2, 2], found 15"
    );
    let err = codec::from_le_bytes(DType::F64, &[usize::MAX, 2], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("expected more than usize::MAX bytes"),
        "{err}"
    );
    let err = codec::write_le_bytes(&cube(), &mut [0u8; 4])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "expected a buffer of 480 bytes for an array of float32 of shape [4, 5, 6], found 4 bytes"
    );
}
