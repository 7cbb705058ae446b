//! Checking that a chunk fits its key.

use xbeam_key::{repr, Key};

use crate::error::bail;
use crate::{ChunkError, Dataset};

/// Checks each dataset against `key`, as xarray-beam's `validate_chunk`:
/// every key offset must be a dimension of the dataset, and every key
/// variable one of its data variables.
///
/// ```
/// use xbeam_chunk::{chunks::validate_chunk, Array, Dataset, Variable};
/// use xbeam_key::Key;
/// let ds = Dataset::new().with_data_var("foo", Variable::new(["x"], Array::from_1d(vec![1i64]))?)?;
/// assert!(validate_chunk(&Key::from_offsets([("x", 0)]), &[&ds]).is_ok());
/// let err = validate_chunk(&Key::from_offsets([("x", 0), ("y", 0)]), &[&ds]).unwrap_err();
/// assert!(err.to_string().starts_with("Key offset(s) 'y' in Key(offsets={'x': 0, 'y': 0}) not found in Dataset dimensions"));
/// # Ok::<(), xbeam_chunk::ChunkError>(())
/// ```
pub fn validate_chunk(key: &Key, datasets: &[&Dataset]) -> Result<(), ChunkError> {
    for ds in datasets {
        let sizes = ds.sizes();
        let dims = key.offsets().keys().filter(|d| !sizes.contains_key(*d));
        report_missing("Key offset(s)", dims, key, "Dataset dimensions", ds)?;
        if let Some(vars) = key.vars() {
            let names = vars.iter().filter(|v| !ds.data_vars().contains_key(*v));
            report_missing("Key var(s)", names, key, "Dataset data variables", ds)?;
        }
    }
    Ok(())
}

/// xarray-beam's "… not found in …" error, when anything is missing.
fn report_missing<'a>(
    what: &str,
    missing: impl Iterator<Item = &'a String>,
    key: &Key,
    place: &str,
    ds: &Dataset,
) -> Result<(), ChunkError> {
    let missing: Vec<String> = missing.map(|m| repr::quote(m)).collect();
    if !missing.is_empty() {
        bail!(
            Chunks,
            "{what} {} in {key} not found in {place}: {ds}",
            missing.join(", ")
        );
    }
    Ok(())
}
