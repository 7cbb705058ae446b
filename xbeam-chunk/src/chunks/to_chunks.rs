//! Cutting whole in-memory datasets into keyed chunks (the pure core of
//! xarray-beam's `DatasetToChunks`).

use std::ops::Range;

use indexmap::IndexMap;
use xbeam_key::{repr, ChunkGrid, Key};

use super::TargetChunks;
use crate::error::{bail, ensure};
use crate::{ChunkError, Dataset};

/// The chunking of one or more datasets on a shared grid: which keys exist
/// and, lazily, the chunk of each key.
///
/// Keys have an offset for every dimension of the first dataset (whole
/// dimensions at 0), in its dimension order, last dimension fastest. With
/// `split_vars`, each data variable of the first dataset is keyed over its
/// own dimensions with `vars = {name}`.
///
/// ```
/// use xbeam_chunk::{chunks::{target_chunks, DatasetChunks}, Array, Dataset, Variable};
/// use xbeam_key::ChunkSpec;
///
/// let ds = Dataset::new().with_data_var("foo", Variable::new(["x"], Array::from_1d((0..6i64).collect()))?)?;
/// let plan = DatasetChunks::new(vec![&ds], &target_chunks([("x", ChunkSpec::Size(3))]), false)?;
/// let chunks: Vec<_> = plan.keys().map(|k| plan.chunk(&k)).collect::<Result<_, _>>()?;
/// assert_eq!(chunks.len(), 2);
/// assert_eq!(chunks[1][0].data_var("foo")?.data().as_view::<i64>()?.as_slice().unwrap(), &[3, 4, 5]);
/// # Ok::<(), xbeam_chunk::ChunkError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DatasetChunks<'a> {
    datasets: Vec<&'a Dataset>,
    grid: ChunkGrid,
    split_vars: bool,
    var_dims: Vec<(String, Vec<String>)>,
}

impl<'a> DatasetChunks<'a> {
    /// Plans the chunks of `datasets` (all on the first one's grid) with the
    /// given chunk specs; dimensions without a spec are whole.
    pub fn new(
        datasets: Vec<&'a Dataset>,
        chunks: &TargetChunks,
        split_vars: bool,
    ) -> Result<DatasetChunks<'a>, ChunkError> {
        let Some(first) = datasets.first() else {
            bail!(Invalid, "dataset list cannot be empty")
        };
        let sizes = first.sizes();
        for ds in &datasets[1..] {
            for (dim, size) in ds.sizes() {
                match sizes.get(&dim) {
                    None => bail!(
                        Invalid,
                        "dimension {dim} does not appear on the first dataset"
                    ),
                    Some(&s) => ensure!(
                        s == size,
                        Invalid,
                        "dimension {dim} has an inconsistent size on different datasets"
                    ),
                }
            }
            if split_vars {
                let names: Vec<&String> = ds.data_vars().keys().collect();
                ensure!(
                    names.iter().all(|n| first.data_vars().contains_key(*n)),
                    Invalid,
                    "inconsistent data_vars when splitting variables: {} != {}",
                    repr::tuple(&names),
                    repr::tuple(first.data_vars().keys())
                );
            }
        }
        let grid = ChunkGrid::new(sizes, chunks.iter().map(|(d, s)| (d.as_str(), s.clone())))?;
        let var_dims = first
            .data_vars()
            .iter()
            .map(|(n, v)| (n.clone(), v.dims().to_vec()))
            .collect();
        Ok(DatasetChunks {
            datasets,
            grid,
            split_vars,
            var_dims,
        })
    }

    /// The chunk grid.
    pub fn grid(&self) -> &ChunkGrid {
        &self.grid
    }

    /// How many chunks there are.
    pub fn task_count(&self) -> u64 {
        if self.split_vars {
            self.grid
                .task_count_split(&self.var_dims)
                .expect("variable dims are grid dims")
        } else {
            self.grid.task_count()
        }
    }

    /// Every key, in order (see the type's docs).
    pub fn keys(&self) -> Box<dyn Iterator<Item = Key> + '_> {
        if self.split_vars {
            Box::new(
                self.grid
                    .keys_for_vars(&self.var_dims)
                    .expect("variable dims are grid dims"),
            )
        } else {
            Box::new(self.grid.keys())
        }
    }

    /// The chunk of `key` from each dataset: its variables (`key.vars`, or
    /// all) sliced to the chunk's extent. Shares buffers with the datasets.
    pub fn chunk(&self, key: &Key) -> Result<Vec<Dataset>, ChunkError> {
        let mut region: IndexMap<String, Range<u64>> = IndexMap::new();
        for (dim, &offset) in key.offsets() {
            let size = self.grid.chunk_size(dim, offset)?;
            region.insert(dim.clone(), offset..offset + size);
        }
        let n = self.datasets.len();
        self.datasets
            .iter()
            .enumerate()
            .map(|(i, ds)| {
                let selected = match key.vars() {
                    None => (*ds).clone(),
                    Some(vars) => {
                        ds.select_vars(&vars.iter().collect::<Vec<_>>())
                            .map_err(|e| {
                                ChunkError::Invalid(format!(
                                    "cannot read chunk {key} from dataset {} of {n}: {e}",
                                    i + 1
                                ))
                            })?
                    }
                };
                let sizes = selected.sizes();
                selected.isel(
                    region
                        .iter()
                        .filter(|(d, _)| sizes.contains_key(*d))
                        .map(|(d, r)| (d, r.clone())),
                )
            })
            .collect()
    }
}
