//! Builders shared by the tests.

use xbeam_chunk::{chunks::Chunk, Array, Dataset, Element, Variable};
use xbeam_key::Key;

/// `name(dims) = values` with the given shape.
pub(crate) fn var<T: Element>(dims: &[&str], shape: &[usize], values: Vec<T>) -> Variable {
    Variable::new(
        dims.iter().copied(),
        Array::from_vec(shape.to_vec(), values).unwrap(),
    )
    .unwrap()
}

/// A dataset with one 1-D int64 variable `foo(x)`.
pub(crate) fn foo_x(values: impl IntoIterator<Item = i64>) -> Dataset {
    let v: Vec<i64> = values.into_iter().collect();
    let n = v.len();
    Dataset::new()
        .with_data_var("foo", var(&["x"], &[n], v))
        .unwrap()
}

/// A dataset with data variables given as `(name, dims, shape, values)`.
/// `(name, dims, shape, values)` of an int64 variable.
pub(crate) type VarSpec<'a> = (&'a str, &'a [&'a str], &'a [usize], Vec<i64>);

pub(crate) fn dataset(vars: &[VarSpec<'_>]) -> Dataset {
    let mut ds = Dataset::new();
    for (name, dims, shape, values) in vars {
        ds.insert_data_var(*name, var(dims, shape, values.clone()))
            .unwrap();
    }
    ds
}

/// A key with offsets and optional vars.
pub(crate) fn key(offsets: &[(&str, u64)], vars: Option<&[&str]>) -> Key {
    Key::from_parts(offsets.iter().copied(), vars.map(|v| v.iter().copied()))
}

/// The int64 values of data variable `name`, flattened.
pub(crate) fn values(ds: &Dataset, name: &str) -> Vec<i64> {
    ints(ds.data_var(name).unwrap())
}

/// The int64 values of coordinate `name`, flattened.
pub(crate) fn coord_values(ds: &Dataset, name: &str) -> Vec<i64> {
    ints(ds.coord(name).unwrap())
}

fn ints(v: &Variable) -> Vec<i64> {
    v.data().as_view::<i64>().unwrap().iter().copied().collect()
}

/// Keys of chunks as strings, for compact assertions.
pub(crate) fn keys(chunks: &[Chunk]) -> Vec<String> {
    chunks.iter().map(|(k, _)| k.to_string()).collect()
}
