//! [`DatasetToChunks`] (and [`DatasetsToChunks`] for several datasets on
//! one grid): the root transform that reads a dataset as keyed chunks.

use std::ops::Range;
use std::sync::Arc;

use indexmap::IndexMap;

use super::Chunks;
use crate::chunk::chunks::TargetChunks;
use crate::chunk::{Dataset, Template};
use crate::io::{ChunkSource, MemorySource};
use crate::key::{repr, unravel, ChunkGrid, ChunkSpec, Key, VarSet};
use crate::runner::{PCollection, Pipeline, Transform};
use crate::Error;

/// Which chunks a dataset is read as, computed from its template and the
/// chunk specs without materializing a key list: key `i` of `0..count()` is
/// computed on demand (xarray-beam's key order: dimension order of the
/// template, last dimension fastest; with `split_vars`, variable by
/// variable, each over its own dimensions).
#[derive(Debug, Clone)]
pub struct ChunkPlan {
    grid: ChunkGrid,
    /// Chunk start offsets per dimension, in grid order.
    offsets: Vec<(String, Vec<u64>)>,
    /// With `split_vars`: each variable, its grid dimensions (indices into
    /// `offsets`) and the first task index of the next variable.
    vars: Option<Vec<(String, Vec<usize>, u64)>>,
    /// Dimensions that get an offset in keys.
    keyed: Vec<bool>,
    count: u64,
}

impl ChunkPlan {
    /// The plan for `template` cut by `chunks` (dimensions without a spec
    /// are whole). With `keep_unchunked_dims = false`, dimensions in one
    /// chunk get no offset in keys (an open upstream request; xarray-beam
    /// always keys every dimension).
    pub fn new(
        template: &Template,
        chunks: &TargetChunks,
        split_vars: bool,
        keep_unchunked_dims: bool,
    ) -> Result<ChunkPlan, Error> {
        for dim in chunks.keys() {
            if !template.sizes().contains_key(dim) {
                return Err(Error::Usage(format!(
                    "chunks key {} is not a dimension on the provided dataset(s): expected one of {}",
                    repr::quote(dim),
                    repr::tuple(template.sizes().keys())
                )));
            }
        }
        let grid = ChunkGrid::new(
            template.sizes().iter().map(|(d, s)| (d.clone(), *s)),
            chunks.iter().map(|(d, s)| (d.as_str(), s.clone())),
        )?;
        let offsets: Vec<(String, Vec<u64>)> = grid
            .dims()
            .map(|d| Ok((d.to_owned(), grid.offsets(d)?)))
            .collect::<Result<_, Error>>()?;
        let keyed = offsets
            .iter()
            .map(|(_, o)| keep_unchunked_dims || o.len() > 1)
            .collect();
        let counts =
            |dims: &[usize]| -> u64 { dims.iter().map(|&i| offsets[i].1.len() as u64).product() };
        let (vars, count) = if split_vars {
            let mut vars = Vec::new();
            let mut end = 0u64;
            for (name, schema) in template.data_vars() {
                let dims: Vec<usize> = schema
                    .dims
                    .iter()
                    .map(|d| {
                        offsets
                            .iter()
                            .position(|(g, _)| g == d)
                            .expect("a variable's dims are the template's")
                    })
                    .collect();
                end += counts(&dims);
                vars.push((name.clone(), dims, end));
            }
            (Some(vars), end)
        } else {
            let all: Vec<usize> = (0..offsets.len()).collect();
            (None, if offsets.is_empty() { 1 } else { counts(&all) })
        };
        Ok(ChunkPlan {
            grid,
            offsets,
            vars,
            keyed,
            count,
        })
    }

    /// The chunk grid.
    pub fn grid(&self) -> &ChunkGrid {
        &self.grid
    }

    /// How many chunks (tasks) there are.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The key of chunk `index` (in `0..count()`).
    pub fn key(&self, index: u64) -> Key {
        let (dims, vars, local): (Vec<usize>, Option<&str>, u64) = match &self.vars {
            None => ((0..self.offsets.len()).collect(), None, index),
            Some(vars) => {
                let v = vars.partition_point(|(_, _, end)| *end <= index);
                let start = if v == 0 { 0 } else { vars[v - 1].2 };
                (vars[v].1.clone(), Some(vars[v].0.as_str()), index - start)
            }
        };
        let shape: Vec<usize> = dims.iter().map(|&i| self.offsets[i].1.len()).collect();
        let at = unravel(local as usize, &shape);
        let key = Key::from_offsets(
            dims.iter()
                .zip(at)
                .filter(|(&i, _)| self.keyed[i])
                .map(|(&i, j)| (self.offsets[i].0.clone(), self.offsets[i].1[j])),
        );
        match vars {
            Some(name) => key.with_vars(Some([name])),
            None => key,
        }
    }

    /// The element ranges of `key`'s chunk, for every dimension it has an
    /// offset for (other dimensions are read whole).
    pub fn region(&self, key: &Key) -> Result<IndexMap<String, Range<u64>>, Error> {
        key.offsets()
            .iter()
            .map(|(d, &o)| Ok((d.clone(), o..o + self.grid.chunk_size(d, o)?)))
            .collect()
    }
}

/// Reads a dataset as `(Key, Dataset)` chunks, as xarray-beam's
/// `DatasetToChunks`: from an in-memory [`Dataset`] or any
/// [`ChunkSource`] (an open Zarr store; NetCDF files next). Keys are made
/// lazily, one per task index, so millions of chunks cost nothing up
/// front; reads are spread over the workers (and the processes of a
/// cluster) and run in parallel.
///
/// Chunk specs default to the source's native chunks (a Zarr store's),
/// else whole dimensions.
///
/// ```
/// use xbeam::prelude::*;
/// use xbeam::transforms::DatasetToChunks;
///
/// let ds = Dataset::new()
///     .with_data_var("foo", Variable::new(["x"], Array::from_1d((0..6i64).collect()))?)?;
/// let p = Pipeline::new();
/// let chunks = p
///     .apply("read", DatasetToChunks::from_dataset(ds, target_chunks([("x", ChunkSpec::Size(3))])))?
///     .collect("out");
/// p.run(&Runner::local_with_workers(2).quiet())?;
/// let mut keys: Vec<String> = chunks.take()?.into_iter().map(|(k, _)| k.to_string()).collect();
/// keys.sort();
/// assert_eq!(keys, ["Key(offsets={'x': 0})", "Key(offsets={'x': 3})"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct DatasetToChunks {
    source: Arc<dyn ChunkSource>,
    chunks: Option<TargetChunks>,
    split_vars: bool,
    keep_unchunked_dims: bool,
}

impl std::fmt::Debug for DatasetToChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatasetToChunks")
            .field("source", &self.source.describe())
            .field("chunks", &self.chunks)
            .field("split_vars", &self.split_vars)
            .finish_non_exhaustive()
    }
}

impl DatasetToChunks {
    /// Chunks of `source`, cut by `chunks`.
    pub fn new(source: Arc<dyn ChunkSource>, chunks: TargetChunks) -> DatasetToChunks {
        DatasetToChunks {
            source,
            chunks: Some(chunks),
            split_vars: false,
            keep_unchunked_dims: true,
        }
    }

    /// Chunks of `source` as it is chunked natively (a Zarr store's
    /// chunks).
    pub fn native(source: Arc<dyn ChunkSource>) -> DatasetToChunks {
        DatasetToChunks {
            chunks: None,
            ..DatasetToChunks::new(source, TargetChunks::new())
        }
    }

    /// Chunks of an in-memory dataset.
    pub fn from_dataset(dataset: Dataset, chunks: TargetChunks) -> DatasetToChunks {
        DatasetToChunks::new(Arc::new(MemorySource::new(dataset)), chunks)
    }

    /// One chunk per data variable and key (`key.vars = {name}`), keyed
    /// over the variable's own dimensions.
    pub fn split_vars(mut self, split: bool) -> DatasetToChunks {
        self.split_vars = split;
        self
    }

    /// Whether dimensions in one chunk get an offset (0) in keys (default
    /// true, as xarray-beam).
    pub fn keep_unchunked_dims(mut self, keep: bool) -> DatasetToChunks {
        self.keep_unchunked_dims = keep;
        self
    }

    /// The source read.
    pub fn source(&self) -> &Arc<dyn ChunkSource> {
        &self.source
    }

    /// The chunk specs, with the source's native chunks as the default.
    pub fn chunk_specs(&self) -> TargetChunks {
        self.chunks.clone().unwrap_or_else(|| {
            self.source
                .chunks()
                .iter()
                .map(|(d, &n)| (d.clone(), ChunkSpec::Size(n)))
                .collect()
        })
    }

    /// The plan: which keys exist.
    pub fn plan(&self) -> Result<ChunkPlan, Error> {
        ChunkPlan::new(
            self.source.template(),
            &self.chunk_specs(),
            self.split_vars,
            self.keep_unchunked_dims,
        )
    }
}

impl Transform<Pipeline> for DatasetToChunks {
    type Output = Result<Chunks, Error>;

    fn expand(self, p: Pipeline) -> Result<Chunks, Error> {
        let plan = Arc::new(self.plan()?);
        let source = self.source;
        Ok(p.source("read chunks", plan.count(), move |i| {
            let key = plan.key(i);
            let region = plan.region(&key)?;
            let chunk = source
                .read(&region, key.vars())
                .map_err(Error::input(source.describe()))?;
            Ok::<_, Error>((key, chunk))
        }))
    }
}

/// Several datasets on the first one's grid, read together as
/// `(Key, Vec<Dataset>)` (xarray-beam's `DatasetToChunks` of a list, an
/// open upstream request for the high-level API). Later datasets may lack
/// dimensions and variables of the first; a dimension they have must have
/// the first's size.
#[derive(Clone)]
pub struct DatasetsToChunks {
    sources: Vec<Arc<dyn ChunkSource>>,
    chunks: TargetChunks,
    split_vars: bool,
}

impl DatasetsToChunks {
    /// Chunks of every source, cut by `chunks` on the first's grid.
    pub fn new(sources: Vec<Arc<dyn ChunkSource>>, chunks: TargetChunks) -> DatasetsToChunks {
        DatasetsToChunks {
            sources,
            chunks,
            split_vars: false,
        }
    }

    /// As [`DatasetToChunks::split_vars`].
    pub fn split_vars(mut self, split: bool) -> DatasetsToChunks {
        self.split_vars = split;
        self
    }

    fn check(&self) -> Result<(), Error> {
        let Some(first) = self.sources.first() else {
            return Err(Error::Usage("dataset list cannot be empty".into()));
        };
        let first = first.template();
        for source in &self.sources[1..] {
            let t = source.template();
            for (dim, size) in t.sizes() {
                match first.sizes().get(dim) {
                    None => {
                        return Err(Error::Usage(format!(
                            "dimension {dim} does not appear on the first dataset"
                        )))
                    }
                    Some(s) if s != size => {
                        return Err(Error::Usage(format!(
                            "dimension {dim} has an inconsistent size on different datasets"
                        )))
                    }
                    Some(_) => {}
                }
            }
            if self.split_vars
                && !t
                    .data_vars()
                    .keys()
                    .all(|n| first.data_vars().contains_key(n))
            {
                return Err(Error::Usage(format!(
                    "inconsistent data_vars when splitting variables: {} != {}",
                    repr::tuple(t.data_vars().keys()),
                    repr::tuple(first.data_vars().keys())
                )));
            }
        }
        Ok(())
    }
}

impl Transform<Pipeline> for DatasetsToChunks {
    type Output = Result<PCollection<(Key, Vec<Dataset>)>, Error>;

    fn expand(self, p: Pipeline) -> Self::Output {
        self.check()?;
        let plan = Arc::new(ChunkPlan::new(
            self.sources[0].template(),
            &self.chunks,
            self.split_vars,
            true,
        )?);
        let sources = self.sources;
        Ok(p.source("read chunks", plan.count(), move |i| {
            let key = plan.key(i);
            let region = plan.region(&key)?;
            let chunks = sources
                .iter()
                .map(|s| {
                    let sizes = s.template().sizes();
                    let mine: IndexMap<String, Range<u64>> = region
                        .iter()
                        .filter(|(d, _)| sizes.contains_key(*d))
                        .map(|(d, r)| (d.clone(), r.clone()))
                        .collect();
                    let vars: Option<VarSet> = key.vars().map(|v| {
                        v.iter()
                            .filter(|n| s.template().data_vars().contains_key(*n))
                            .cloned()
                            .collect()
                    });
                    s.read(&mine, vars.as_ref())
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, Error>((key, chunks))
        }))
    }
}
