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
        let missing: Vec<String> = key
            .offsets()
            .keys()
            .filter(|d| !sizes.contains_key(*d))
            .map(|d| repr::quote(d))
            .collect();
        if !missing.is_empty() {
            bail!(
                Chunks,
                "Key offset(s) {} in {key} not found in Dataset dimensions: {ds}",
                missing.join(", ")
            );
        }
        if let Some(vars) = key.vars() {
            let missing: Vec<String> = vars
                .iter()
                .filter(|v| !ds.data_vars().contains_key(*v))
                .map(|v| repr::quote(v))
                .collect();
            if !missing.is_empty() {
                bail!(
                    Chunks,
                    "Key var(s) {} in {key} not found in Dataset data variables: {ds}",
                    missing.join(", ")
                );
            }
        }
    }
    Ok(())
}
