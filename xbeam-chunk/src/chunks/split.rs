//! Splitting chunks at absolute chunk boundaries.

use xbeam_key::repr;

use super::{Chunk, TargetChunks};
use crate::{ChunkError, Dataset};
use xbeam_key::{unravel, Key};

type Cut<'a> = (&'a str, u64, Vec<(u64, u64)>);

/// Splits one chunk into pieces whose boundaries fall at the target chunk
/// boundaries, measured in absolute offsets (so a chunk starting at 5 split
/// by 3 gives pieces at 5, 6, 9).
///
/// Every target dimension must be a dimension of the chunk; each piece's key
/// gains an offset for every target dimension. Pieces share the chunk's
/// buffers (no copy). Dimensions are cut in target order, last fastest.
///
/// ```
/// use xbeam_chunk::{chunks::{split_chunks, target_chunks}, Array, Dataset, Variable};
/// use xbeam_key::{ChunkSpec, Key};
///
/// let ds = Dataset::new().with_data_var("foo", Variable::new(["x"], Array::from_1d(vec![0i64; 5]))?)?;
/// let out = split_chunks(&Key::from_offsets([("x", 5)]), &ds, &target_chunks([("x", ChunkSpec::Size(3))]))?;
/// let starts: Vec<u64> = out.iter().map(|(k, _)| k.offset_or_zero("x")).collect();
/// assert_eq!(starts, [5, 6, 9]);
/// # Ok::<(), xbeam_chunk::ChunkError>(())
/// ```
pub fn split_chunks(
    key: &Key,
    dataset: &Dataset,
    target: &TargetChunks,
) -> Result<Vec<Chunk>, ChunkError> {
    let sizes = dataset.sizes();
    // (dimension, the chunk's start along it, the pieces' absolute bounds)
    let mut cuts: Vec<Cut<'_>> = Vec::with_capacity(target.len());
    for (dim, spec) in target {
        let Some(&size) = sizes.get(dim) else {
            return Err(ChunkError::Invalid(format!(
                "target chunks name dimension {} which the chunk at {key} does not have: expected one of {}",
                repr::quote(dim),
                repr::tuple(sizes.keys())
            )));
        };
        let start = key.offset_or_zero(dim);
        cuts.push((dim.as_str(), start, spec.split_bounds(start, start + size)));
    }
    let total: usize = cuts.iter().map(|c| c.2.len()).product();
    if total == 1 {
        let key = cuts.iter().fold(key.clone(), |k, (dim, start, _)| {
            k.with_offset(*dim, *start)
        });
        return Ok(vec![(key, dataset.clone())]);
    }
    let mut out = Vec::with_capacity(total);
    let lens: Vec<usize> = cuts.iter().map(|c| c.2.len()).collect();
    let mut offsets = key.offsets().clone();
    let mut ranges = Vec::with_capacity(cuts.len());
    for flat in 0..total {
        ranges.clear();
        let picks = unravel(flat, &lens);
        for ((dim, start, bounds), &p) in cuts.iter().zip(&picks) {
            let (a, b) = bounds[p];
            match offsets.get_mut(*dim) {
                Some(o) => *o = a,
                None => {
                    offsets.insert((*dim).to_owned(), a);
                }
            }
            ranges.push((*dim, (a - start) as usize..(b - start) as usize));
        }
        // every cut dimension is one of the dataset's (checked above)
        out.push((
            key.replace(Some(offsets.clone()), None),
            dataset.isel_existing(&ranges)?,
        ));
    }
    Ok(out)
}
