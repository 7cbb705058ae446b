//! [`ChunkedDataset`]: the high-level API (xarray-beam's `xbeam.Dataset`):
//! a template, its chunking and the keyed chunks that a pipeline makes of
//! it, transformed with dataset-like methods and written or collected.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::chunk::chunks::{consolidate_chunks, normalize_chunks, split_variables, TargetChunks};
use crate::chunk::{ChunkError, DType, Dataset, DimReplacement, Template, VarSchema, Variable};
use crate::io::{open_zarr, ChunkSource, IoError, MemorySource, SetupOptions};
use crate::key::{ChunkGrid, ChunkSpec, ChunksRequest, Key, VarSet};
use crate::rechunk::{DimChunks, RechunkStage};
use crate::runner::{Pipeline, Runner};
use crate::stats::Stat;
use crate::transforms::{
    run_stages, Chunks, ChunksToZarr, ConsolidateVariables, DatasetToChunks, Quantile, Rechunk,
    Reduce, SplitVariables,
};
use crate::Error;

/// Methods `mean`, `sum`, ... of a grouped or windowed dataset, each
/// `self.reduce(Stat::...)`, with their docs.
macro_rules! stat_methods {
    ($($(#[$doc:meta])* $name:ident => $stat:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&self) -> Result<ChunkedDataset, Error> {
                self.reduce(Stat::$stat)
            }
        )*
    };
}

mod grouped;
mod rolled;

pub use grouped::Grouped;
pub use rolled::Rolled;

/// Where the chunks come from: a source not read yet (so `rechunk` to
/// multiples, `head`, `tail` and `isel` just read differently), or a
/// collection in the pipeline.
#[derive(Clone)]
enum Stage {
    Unread(Arc<dyn ChunkSource>),
    Chunks(Chunks),
}

/// A dataset in a pipeline, chunked: the high-level API.
///
/// It holds the [`Template`] of the whole dataset, the chunk size of every
/// dimension, whether variables are split, and the pipeline stage that
/// makes the chunks. Methods add transforms under labels like `rechunk_3`
/// and return a new `ChunkedDataset`; nothing runs until the pipeline does
/// ([`ChunkedDataset::collect`] runs it for you).
///
/// ```
/// use xbeam::prelude::*;
/// use xbeam::ChunkedDataset;
///
/// let ds = xbeam::demo::era5_like(48, 19, 36, 7)?;
/// let p = Pipeline::new();
/// let pancakes = ChunkedDataset::from_dataset(&p, ds.clone(), &"time=24".parse()?)?;
/// assert_eq!(pancakes.chunk_count(), 2);
/// let mean = pancakes.rechunk(&"time=-1,latitude=10".parse()?)?.mean(&["time"])?;
/// let got = mean.collect(&Runner::local_with_workers(2).quiet())?;
/// let want = ds.reduce(Reduction::Mean, &["time"])?;
/// assert!(got.data_var("temperature")?.data().allclose(&want.data_var("temperature")?.data().astype(DType::F64)?, 1e-6, 1e-6));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ChunkedDataset {
    pipeline: Pipeline,
    template: Template,
    chunks: IndexMap<String, u64>,
    split_vars: bool,
    stage: Stage,
}

impl std::fmt::Debug for ChunkedDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// xarray-beam's repr: the chunking, the sizes, then the template.
impl std::fmt::Display for ChunkedDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chunks: Vec<String> = self
            .chunks
            .iter()
            .map(|(d, c)| format!("{d}: {c}"))
            .collect();
        writeln!(f, "<xbeam.ChunkedDataset>")?;
        writeln!(
            f,
            "Chunks:     {} ({}, split_vars={})",
            crate::chunk::display::human_bytes(self.bytes_per_chunk()),
            chunks.join(", "),
            if self.split_vars { "True" } else { "False" }
        )?;
        let n = self.chunk_count();
        writeln!(
            f,
            "Template:   {} ({n} chunk{})",
            crate::chunk::display::human_bytes(self.template.nbytes()),
            if n == 1 { "" } else { "s" }
        )
    }
}

impl ChunkedDataset {
    /// Chunks of `source` in `pipeline`, as xarray-beam normalizes them
    /// (`"time=24"`, `"time=-1,...=100MB"`, `"64MB"`; see
    /// [`normalize_chunks`]): dimensions not named keep the source's native
    /// chunks (a Zarr store's), else are whole.
    pub fn from_source(
        pipeline: &Pipeline,
        source: Arc<dyn ChunkSource>,
        chunks: &ChunksRequest,
    ) -> Result<ChunkedDataset, Error> {
        let template = source.template().clone();
        // the source's chunks, whole dimensions where it has no preference
        let native: IndexMap<String, u64> = template
            .sizes()
            .iter()
            .map(|(d, &size)| {
                (
                    d.clone(),
                    source.chunks().get(d).copied().unwrap_or(size).min(size),
                )
            })
            .collect();
        let chunks = normalize_chunks(chunks, &template, false, Some(&native))?;
        Ok(ChunkedDataset {
            pipeline: pipeline.clone(),
            template,
            chunks,
            split_vars: false,
            stage: Stage::Unread(source),
        })
    }

    /// An in-memory dataset, chunked.
    pub fn from_dataset(
        pipeline: &Pipeline,
        dataset: Dataset,
        chunks: &ChunksRequest,
    ) -> Result<ChunkedDataset, Error> {
        ChunkedDataset::from_source(pipeline, Arc::new(MemorySource::new(dataset)), chunks)
    }

    /// A Zarr store, chunked as stored unless `chunks` says otherwise.
    pub fn from_zarr(
        pipeline: &Pipeline,
        path: impl AsRef<Path>,
        chunks: &ChunksRequest,
    ) -> Result<ChunkedDataset, Error> {
        let path = path.as_ref();
        let source = open_zarr(path).map_err(Error::input(path))?;
        ChunkedDataset::from_source(pipeline, Arc::new(source), chunks)
    }

    /// Keyed chunks already in a pipeline, with their template and chunk
    /// sizes (xarray-beam's `from_ptransform`). Chunks must have offsets
    /// that are multiples of `chunks`.
    pub fn from_chunks(
        collection: Chunks,
        template: Template,
        chunks: &TargetChunks,
        split_vars: bool,
    ) -> Result<ChunkedDataset, Error> {
        let chunks = normalize(&template, &IndexMap::new(), chunks)?;
        Ok(ChunkedDataset {
            pipeline: collection.pipeline().clone(),
            template,
            chunks,
            split_vars,
            stage: Stage::Chunks(collection),
        })
    }

    /// The schema of the whole dataset.
    pub fn template(&self) -> &Template {
        &self.template
    }

    /// The chunk size of every dimension.
    pub fn chunks(&self) -> &IndexMap<String, u64> {
        &self.chunks
    }

    /// Whether each chunk holds one variable.
    pub fn split_vars(&self) -> bool {
        self.split_vars
    }

    /// Dimension sizes.
    pub fn sizes(&self) -> &IndexMap<String, u64> {
        self.template.sizes()
    }

    /// Bytes of one element of every data variable (the largest one's, when
    /// variables are split).
    pub fn itemsize(&self) -> usize {
        let sizes = self
            .template
            .data_vars()
            .values()
            .map(|v| v.dtype.itemsize());
        if self.split_vars {
            sizes.max().unwrap_or(0)
        } else {
            sizes.sum()
        }
    }

    /// Bytes of a full chunk (of the largest variable, when split).
    pub fn bytes_per_chunk(&self) -> usize {
        let per_var = self.template.data_vars().values().map(|v| {
            v.dtype.itemsize()
                * v.dims
                    .iter()
                    .map(|d| self.chunks[d] as usize)
                    .product::<usize>()
        });
        if self.split_vars {
            per_var.max().unwrap_or(0)
        } else {
            per_var.sum()
        }
    }

    /// How many chunks there are.
    pub fn chunk_count(&self) -> u64 {
        let count = |dims: &mut dyn Iterator<Item = &String>| -> u64 {
            dims.map(|d| self.sizes()[d].div_ceil(self.chunks[d].max(1)))
                .product()
        };
        if self.split_vars {
            self.template
                .data_vars()
                .values()
                .map(|v| count(&mut v.dims.iter()))
                .sum()
        } else {
            count(&mut self.sizes().keys())
        }
    }

    /// The chunk grid.
    pub fn grid(&self) -> Result<ChunkGrid, Error> {
        Ok(ChunkGrid::new(
            self.sizes().iter().map(|(d, s)| (d.clone(), *s)),
            self.specs().iter().map(|(d, s)| (d.as_str(), s.clone())),
        )?)
    }

    fn specs(&self) -> TargetChunks {
        size_specs(&self.chunks)
    }

    /// The keyed chunks, as a collection of the pipeline (reading the
    /// source, if it was not read yet).
    pub fn to_chunks(&self) -> Result<Chunks, Error> {
        match &self.stage {
            Stage::Chunks(c) => Ok(c.clone()),
            Stage::Unread(source) => self.pipeline.apply(
                &self.label("from_source"),
                DatasetToChunks::new(source.clone(), self.specs()).split_vars(self.split_vars),
            ),
        }
    }

    /// `{name}_{n}`, unique in this pipeline (xarray-beam's labels).
    fn label(&self, name: &str) -> String {
        self.pipeline.unique_name(name)
    }

    fn with(
        &self,
        template: Template,
        chunks: IndexMap<String, u64>,
        stage: Stage,
    ) -> ChunkedDataset {
        ChunkedDataset {
            pipeline: self.pipeline.clone(),
            template,
            chunks,
            split_vars: self.split_vars,
            stage,
        }
    }

    /// Rechunks to `target` (dimensions not named keep their chunks; `-1`
    /// is whole; byte targets such as `"time=-1,...=100MB"` are resolved as
    /// xarray-beam does) in one stage: chunks are split at the target
    /// boundaries and the pieces of each target chunk gathered, each emitted
    /// as soon as its pieces have arrived, groups spilling to disk beyond
    /// the runner's budget. No chunk larger than a source or target chunk
    /// is ever made, so this stays within any runner budget; for very
    /// different chunkings (pieces of a few bytes) plan stages with
    /// [`rechunk_with`](ChunkedDataset::rechunk_with).
    pub fn rechunk(&self, target: &ChunksRequest) -> Result<ChunkedDataset, Error> {
        let chunks = normalize_chunks(target, &self.template, self.split_vars, Some(&self.chunks))?;
        if let Some(done) = self.rechunk_by_reading(&chunks) {
            return Ok(done);
        }
        let dims: Vec<String> = self.sizes().keys().cloned().collect();
        let shape: Vec<u64> = self.sizes().values().copied().collect();
        let regular = |c: &IndexMap<String, u64>| -> Vec<DimChunks> {
            dims.iter().map(|d| DimChunks::Regular(c[d])).collect()
        };
        let stages = vec![RechunkStage::new(regular(&self.chunks), regular(&chunks))];
        let out = self
            .to_chunks()?
            .apply(&self.label("rechunk"), move |c: Chunks| {
                run_stages(c, &dims, &shape, &stages)
            });
        Ok(self.with(self.template.clone(), chunks, Stage::Chunks(out)))
    }

    /// The same dataset read with `chunks`, if it was not read yet and
    /// `chunks` are multiples of its chunks (or unchanged).
    fn rechunk_by_reading(&self, chunks: &IndexMap<String, u64>) -> Option<ChunkedDataset> {
        if *chunks == self.chunks {
            return Some(self.clone());
        }
        match &self.stage {
            Stage::Unread(source) if self.multiples(chunks) => Some(self.with(
                self.template.clone(),
                chunks.clone(),
                Stage::Unread(source.clone()),
            )),
            _ => None,
        }
    }

    /// Whether `chunks` are multiples of this dataset's chunks.
    fn multiples(&self, chunks: &IndexMap<String, u64>) -> bool {
        chunks
            .iter()
            .all(|(d, &c)| c % self.chunks[d] == 0 || c >= self.sizes()[d])
    }

    /// Rechunks to `target` with the Rechunker multi-stage plan
    /// ([`Rechunk`]): every chunk a stage reads, holds or writes within
    /// `max_mem` bytes, pieces above `min_mem` bytes where possible
    /// (default `max_mem / 100`). Each target chunk is emitted as soon as its
    /// pieces have arrived; groups spill to disk beyond the runner's budget.
    ///
    /// When the source was not read yet, new chunks that are multiples of
    /// the old are just read that way, and so is the plan's first stage
    /// when it only gathers whole source chunks. `max_mem` is memory per
    /// chunk, as upstream; [`chunk_budget`](crate::transforms::chunk_budget)
    /// derives it from the budget of the whole process.
    ///
    /// ```
    /// use xbeam::prelude::*;
    /// use xbeam::ChunkedDataset;
    ///
    /// let ds = xbeam::demo::era5_like(48, 19, 36, 3)?;
    /// let p = Pipeline::new();
    /// let pancakes = ChunkedDataset::from_dataset(&p, ds.clone(), &"time=1".parse()?)?;
    /// let pencils = pancakes.rechunk_with(&"time=-1,latitude=2,longitude=2".parse()?, Some(200), 20_000)?;
    /// assert_eq!(pencils.chunks()["latitude"], 2);
    /// let got = pencils.collect(&Runner::local_with_workers(2).quiet())?;
    /// assert!(got.identical(&ds));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rechunk_with(
        &self,
        target: &ChunksRequest,
        min_mem: Option<u64>,
        max_mem: u64,
    ) -> Result<ChunkedDataset, Error> {
        let chunks = normalize_chunks(target, &self.template, self.split_vars, Some(&self.chunks))?;
        if let Some(done) = self.rechunk_by_reading(&chunks) {
            return Ok(done);
        }
        let rechunk = Rechunk::new(
            self.sizes(),
            &size_specs(&self.chunks),
            &size_specs(&chunks),
            self.itemsize() as u64,
        )?
        .with_memory(min_mem, max_mem)?;
        let plan = rechunk.plan();
        let mut stages = plan.stages();
        let mut start = self.clone();
        // a first stage to chunks that are multiples of the source's (the
        // plan's read chunks) is a read with larger chunks
        if let (Stage::Unread(source), Some(first)) = (&self.stage, stages.first()) {
            let read: Option<IndexMap<String, u64>> = plan
                .dims()
                .iter()
                .zip(&first.target)
                .map(|(d, c)| match c {
                    DimChunks::Regular(n) => Some((d.clone(), *n)),
                    DimChunks::Irregular(_) => None,
                })
                .collect();
            if let Some(read) = read.filter(|r| self.multiples(r)) {
                start = self.with(self.template.clone(), read, Stage::Unread(source.clone()));
                stages = &stages[1..];
            }
        }
        let (dims, shape, stages) = (plan.dims().to_vec(), plan.shape().to_vec(), stages.to_vec());
        let out = start
            .to_chunks()?
            .apply(&self.label("rechunk"), move |c: Chunks| {
                run_stages(c, &dims, &shape, &stages)
            });
        Ok(self.with(self.template.clone(), chunks, Stage::Chunks(out)))
    }

    /// One chunk per data variable (a no-op when already split).
    pub fn split_variables(&self) -> Result<ChunkedDataset, Error> {
        Ok(self.with_split_vars(true))
    }

    /// All variables of a chunk together (a no-op when not split).
    pub fn consolidate_variables(&self) -> Result<ChunkedDataset, Error> {
        Ok(self.with_split_vars(false))
    }

    /// Variables split or not: an unread source is read that way, chunks
    /// in the pipeline go through `SplitVariables` / `ConsolidateVariables`.
    fn with_split_vars(&self, split: bool) -> ChunkedDataset {
        if self.split_vars == split {
            return self.clone();
        }
        let mut out = match &self.stage {
            Stage::Unread(_) => self.clone(),
            Stage::Chunks(c) => {
                let c = if split {
                    c.apply(&self.label("split_vars"), SplitVariables)
                } else {
                    c.apply(&self.label("consolidate_vars"), ConsolidateVariables)
                };
                self.with(self.template.clone(), self.chunks.clone(), Stage::Chunks(c))
            }
        };
        out.split_vars = split;
        out
    }

    /// Applies `f` to every chunk (xarray-beam's `map_blocks`). The new
    /// template is `template`, or inferred by running `f` once on a chunk
    /// of zeros shaped like the first chunk: dimensions whose chunk size
    /// `f` keeps keep their size and coordinates, dimensions it resizes
    /// scale with their chunk count, new dimensions are one chunk.
    pub fn map_blocks<F>(&self, f: F, template: Option<Template>) -> Result<ChunkedDataset, Error>
    where
        F: Fn(Dataset) -> Result<Dataset, ChunkError> + Send + Sync + 'static,
    {
        let (template, new_chunks) = match template {
            Some(t) => {
                let chunks = normalize(&t, &self.chunks, &TargetChunks::new())?;
                (t, chunks)
            }
            None => self.infer_template(&f)?,
        };
        for (d, &c) in &self.chunks {
            if self.sizes()[d] > c && !template.sizes().contains_key(d) {
                return Err(Error::Usage(format!(
                    "dimension {d:?} has multiple chunks on the source dataset, and therefore must be included in the result of map_blocks, but is not in the new template"
                )));
            }
        }
        let old = self.chunks.clone();
        let new = new_chunks.clone();
        let split = self.split_vars;
        let out = self.to_chunks()?.map(
            &self.label("map_blocks"),
            move |(key, ds): (Key, Dataset)| {
                let result = f(ds)?;
                let mut offsets = Vec::new();
                for d in result.sizes().keys() {
                    let o = key.offset_or_zero(d);
                    let o = match (old.get(d), new.get(d)) {
                        (Some(&oc), Some(&nc)) => o / oc.max(1) * nc,
                        _ => o,
                    };
                    offsets.push((d.clone(), o));
                }
                let vars: Option<VarSet> =
                    split.then(|| result.data_vars().keys().cloned().collect());
                Ok::<_, ChunkError>((Key::from_offsets(offsets).replace(None, Some(vars)), result))
            },
        );
        Ok(self.with(template, new_chunks, Stage::Chunks(out)))
    }

    fn infer_template<F>(&self, f: &F) -> Result<(Template, IndexMap<String, u64>), Error>
    where
        F: Fn(Dataset) -> Result<Dataset, ChunkError>,
    {
        let region: IndexMap<String, Range<u64>> = self
            .chunks
            .iter()
            .map(|(d, &c)| (d.clone(), 0..c.min(self.sizes()[d])))
            .collect();
        let sample = self.template.fill_chunk(&region, None, 0.0)?;
        let out = f(sample).map_err(|e| {
            Error::Usage(format!(
                "failed to apply func() to a sample chunk to infer the new template: {e}; supply the template explicitly"
            ))
        })?;
        let mut chunks = IndexMap::new();
        let mut replace = Vec::new();
        for (d, n) in out.sizes() {
            match (self.chunks.get(&d), self.sizes().get(&d)) {
                (Some(&c), Some(&size)) if n == c.min(size) => {
                    chunks.insert(d.clone(), c);
                    replace.push((d.clone(), self.dim_replacement(&d, size)));
                }
                (Some(&c), Some(&size)) => {
                    if size % c != 0 {
                        return Err(Error::Usage(format!(
                            "cannot infer new chunks for dimension {d:?} with changed size {c} -> {n}: existing chunks {c} do not evenly divide existing size {size}"
                        )));
                    }
                    chunks.insert(d.clone(), n);
                    replace.push((d.clone(), DimReplacement::Size(n * (size / c))));
                }
                _ => {
                    chunks.insert(d.clone(), n);
                }
            }
        }
        let template = Template::from(&out).replace_dims(&replace)?;
        Ok((template, chunks))
    }

    /// A dimension at its full size, with its coordinate when the template
    /// has one.
    fn dim_replacement(&self, dim: &str, size: u64) -> DimReplacement {
        match self.template.coords().get(dim) {
            Some(c) if c.dims() == [dim] => DimReplacement::Coord(c.data().clone()),
            _ => DimReplacement::Size(size),
        }
    }

    /// Dimensions in a new order (every variable's dimensions follow
    /// `order`; dimensions not named keep their place after those named).
    pub fn transpose(&self, order: &[&str]) -> Result<ChunkedDataset, Error> {
        let data_vars = self
            .template
            .data_vars()
            .iter()
            .map(|(n, v)| {
                let mut dims: Vec<String> = order
                    .iter()
                    .filter(|d| v.dims.iter().any(|x| x == *d))
                    .map(|d| (*d).to_owned())
                    .collect();
                dims.extend(
                    v.dims
                        .iter()
                        .filter(|d| !order.contains(&d.as_str()))
                        .cloned(),
                );
                (n.clone(), VarSchema { dims, ..v.clone() })
            })
            .collect::<IndexMap<_, _>>();
        let template = Template::new(
            self.template.sizes().clone(),
            data_vars.clone(),
            self.template.coords().clone(),
            self.template.attrs().clone(),
        )?;
        let out = self.to_chunks()?.map(
            &self.label("transpose"),
            move |(key, ds): (Key, Dataset)| {
                let mut out = ds.clone();
                for (name, v) in ds.data_vars() {
                    let dims = &data_vars[name].dims;
                    let t = v.transpose(dims)?;
                    out.insert_data_var(name.clone(), t)?;
                }
                Ok::<_, ChunkError>((key, out))
            },
        );
        Ok(self.with(template, self.chunks.clone(), Stage::Chunks(out)))
    }

    /// The first `n` elements along each named dimension (only before any
    /// transform: the source is read differently).
    pub fn head(&self, indexers: &[(&str, u64)]) -> Result<ChunkedDataset, Error> {
        let ranges: Vec<(&str, Range<u64>)> = indexers
            .iter()
            .map(|&(d, n)| (d, 0..n.min(self.sizes().get(d).copied().unwrap_or(0))))
            .collect();
        self.isel(&ranges)
    }

    /// The last `n` elements along each named dimension (only before any
    /// transform).
    pub fn tail(&self, indexers: &[(&str, u64)]) -> Result<ChunkedDataset, Error> {
        let ranges: Vec<(&str, Range<u64>)> = indexers
            .iter()
            .map(|&(d, n)| {
                let size = self.sizes().get(d).copied().unwrap_or(0);
                (d, size.saturating_sub(n)..size)
            })
            .collect();
        self.isel(&ranges)
    }

    /// The elements in `ranges` along the named dimensions (only before any
    /// transform, as xarray-beam's `head`/`tail`/`[]`).
    pub fn isel(&self, ranges: &[(&str, Range<u64>)]) -> Result<ChunkedDataset, Error> {
        let Stage::Unread(source) = &self.stage else {
            return Err(Error::Usage(
                "isel() is only supported on untransformed datasets (read from a source, before any transform)".into(),
            ));
        };
        let mut region = IndexMap::new();
        for (d, r) in ranges {
            let Some(&size) = self.sizes().get(*d) else {
                return Err(Error::Usage(format!(
                    "cannot select along {d:?}: the dataset has dimensions {:?}",
                    self.sizes().keys().collect::<Vec<_>>()
                )));
            };
            if r.start > r.end || r.end > size {
                return Err(Error::Usage(format!(
                    "range {}..{} is out of bounds for dimension {d:?} of size {size}",
                    r.start, r.end
                )));
            }
            region.insert((*d).to_owned(), r.clone());
        }
        let sub = Arc::new(Subset::new(source.clone(), region)?);
        let chunks = self
            .chunks
            .iter()
            .map(|(d, &c)| (d.clone(), c.min(sub.template().sizes()[d]).max(1)))
            .collect();
        Ok(self.with(sub.template().clone(), chunks, Stage::Unread(sub)))
    }

    /// The mean over `dims` (every dimension when empty), skipping NaN, as
    /// float64.
    pub fn mean(&self, dims: &[&str]) -> Result<ChunkedDataset, Error> {
        self.reduce(Stat::Mean, dims)
    }

    /// The sum over `dims` (0 where no value is valid), as float64.
    pub fn sum(&self, dims: &[&str]) -> Result<ChunkedDataset, Error> {
        self.reduce(Stat::Sum, dims)
    }

    /// The variance over `dims` (ddof 0), as float64.
    pub fn var(&self, dims: &[&str]) -> Result<ChunkedDataset, Error> {
        self.reduce(Stat::Var, dims)
    }

    /// The standard deviation over `dims` (ddof 0), as float64.
    pub fn std(&self, dims: &[&str]) -> Result<ChunkedDataset, Error> {
        self.reduce(Stat::Std, dims)
    }

    /// The smallest valid value over `dims`, as float64.
    pub fn min(&self, dims: &[&str]) -> Result<ChunkedDataset, Error> {
        self.reduce(Stat::Min, dims)
    }

    /// The largest valid value over `dims`, as float64.
    pub fn max(&self, dims: &[&str]) -> Result<ChunkedDataset, Error> {
        self.reduce(Stat::Max, dims)
    }

    /// The number of valid values over `dims`, as int64.
    pub fn count(&self, dims: &[&str]) -> Result<ChunkedDataset, Error> {
        self.reduce(Stat::Count, dims)
    }

    /// `stat` over `dims` (every dimension when empty), skipping NaN, as
    /// the [`Reduce`] transform computes it.
    ///
    /// ```
    /// use xbeam::prelude::*;
    /// use xbeam::stats::Stat;
    /// use xbeam::ChunkedDataset;
    ///
    /// let ds = Dataset::new().with_data_var("t", Variable::new(["x", "y"], Array::from(xbeam::chunk::ndarray::arr2(&[[1.0, 2.0], [3.0, 6.0]]).into_dyn()))?)?;
    /// let p = Pipeline::new();
    /// let chunked = ChunkedDataset::from_dataset(&p, ds, &"x=1".parse()?)?;
    /// let out = chunked.reduce(Stat::Max, &["x"])?.collect(&Runner::local_with_workers(2).quiet())?;
    /// assert_eq!(out.data_var("t")?.data().to_f64()?.into_raw_vec_and_offset().0, vec![3.0, 6.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reduce(&self, stat: Stat, dims: &[&str]) -> Result<ChunkedDataset, Error> {
        let dims = self.reduced_dims(dims)?;
        let sizes: IndexMap<String, u64> = self
            .sizes()
            .iter()
            .filter(|(d, _)| !dims.contains(d))
            .map(|(d, s)| (d.clone(), *s))
            .collect();
        let data_vars = self
            .template
            .data_vars()
            .iter()
            .map(|(n, v)| {
                let schema = VarSchema {
                    dims: v
                        .dims
                        .iter()
                        .filter(|d| !dims.contains(d))
                        .cloned()
                        .collect(),
                    dtype: crate::transforms::stat_dtype(stat),
                    attrs: IndexMap::default(),
                    encoding: IndexMap::default(),
                };
                (n.clone(), schema)
            })
            .collect();
        let coords = self
            .template
            .coords()
            .iter()
            .filter(|(_, c)| !c.dims().iter().any(|d| dims.contains(d)))
            .map(|(n, c)| (n.clone(), c.clone()))
            .collect::<IndexMap<String, Variable>>();
        let template = Template::new(sizes, data_vars, coords, IndexMap::default())?;
        let chunks = self
            .chunks
            .iter()
            .filter(|(d, _)| !dims.contains(d))
            .map(|(d, c)| (d.clone(), *c))
            .collect();
        let out = self.to_chunks()?.apply(
            &self.label(&format!("{stat}_{}", dims.join("_"))),
            Reduce::new(stat, dims),
        );
        Ok(self.with(template, chunks, Stage::Chunks(out)))
    }

    /// Quantiles at `levels` over `dims` (every dimension when empty),
    /// skipping NaN, within a relative accuracy `alpha` of xarray's
    /// `ds.quantile(levels, dim=dims)` (see the [`Quantile`] transform and
    /// [`Sketch`](crate::stats::Sketch) for the bound; `None`:
    /// [`DEFAULT_ALPHA`](crate::transforms::DEFAULT_ALPHA), 0.5%), in one
    /// pass over any number of values: every data variable becomes
    /// `[quantile, its other dims]`, float64.
    ///
    /// ```
    /// use xbeam::prelude::*;
    /// use xbeam::ChunkedDataset;
    ///
    /// let x = Array::from(xbeam::chunk::ndarray::Array2::from_shape_fn((100, 2), |(i, j)| (i + 1) as f64 * (j + 1) as f64).into_dyn());
    /// let ds = Dataset::new().with_data_var("x", Variable::new(["t", "y"], x)?)?;
    /// let p = Pipeline::new();
    /// let q = ChunkedDataset::from_dataset(&p, ds, &"t=30".parse()?)?.quantile(&[0.1, 0.9], &["t"], None)?;
    /// let out = q.collect(&Runner::local_with_workers(2).quiet())?;
    /// let got = out.data_var("x")?.data().to_f64()?;
    /// assert_eq!(out.data_var("x")?.dims(), ["quantile", "y"]);
    /// assert!((got[[1, 1]] - 180.2).abs() <= 0.005 * 182.0, "{got}"); // numpy: 180.2
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A usage error for a dimension the dataset lacks, a level outside
    /// [0, 1] or an accuracy outside (0, 1).
    pub fn quantile(
        &self,
        levels: &[f64],
        dims: &[&str],
        alpha: Option<f64>,
    ) -> Result<ChunkedDataset, Error> {
        let dims = self.reduced_dims(dims)?;
        let usage = |e: crate::stats::StatsError| Error::Usage(e.to_string());
        let mut transform = Quantile::new(levels, dims.clone()).map_err(usage)?;
        if let Some(a) = alpha {
            transform = transform.alpha(a).map_err(usage)?;
        }
        let mut sizes: IndexMap<String, u64> = IndexMap::new();
        sizes.insert("quantile".into(), levels.len() as u64);
        for (d, &n) in self.sizes() {
            if !dims.contains(d) {
                sizes.insert(d.clone(), n);
            }
        }
        let data_vars = self
            .template
            .data_vars()
            .iter()
            .map(|(n, v)| {
                let mut kept = vec!["quantile".to_owned()];
                kept.extend(v.dims.iter().filter(|d| !dims.contains(d)).cloned());
                let schema = VarSchema {
                    dims: kept,
                    dtype: DType::F64,
                    attrs: IndexMap::default(),
                    encoding: IndexMap::default(),
                };
                (n.clone(), schema)
            })
            .collect();
        let mut coords: IndexMap<String, Variable> = IndexMap::new();
        coords.insert(
            "quantile".into(),
            Variable::new(["quantile"], crate::chunk::Array::from_1d(levels.to_vec()))?,
        );
        for (n, c) in self.template.coords() {
            if !c.dims().iter().any(|d| dims.contains(d)) {
                coords.insert(n.clone(), c.clone());
            }
        }
        let template = Template::new(sizes, data_vars, coords, IndexMap::default())?;
        let mut chunks: IndexMap<String, u64> = IndexMap::new();
        chunks.insert("quantile".into(), levels.len() as u64);
        for (d, &c) in &self.chunks {
            if !dims.contains(d) {
                chunks.insert(d.clone(), c);
            }
        }
        let out = self.to_chunks()?.apply(
            &self.label(&format!("quantile_{}", dims.join("_"))),
            transform,
        );
        Ok(self.with(template, chunks, Stage::Chunks(out)))
    }

    /// `dims`, or every dimension when empty; a usage error names a
    /// dimension the dataset lacks.
    fn reduced_dims(&self, dims: &[&str]) -> Result<Vec<String>, Error> {
        let dims: Vec<String> = if dims.is_empty() {
            self.sizes().keys().cloned().collect()
        } else {
            dims.iter().map(|d| (*d).to_owned()).collect()
        };
        for d in &dims {
            if !self.sizes().contains_key(d) {
                return Err(Error::Usage(format!(
                    "cannot reduce over {d:?}: the dataset has dimensions {:?}",
                    self.sizes().keys().collect::<Vec<_>>()
                )));
            }
        }
        Ok(dims)
    }

    /// Writes the chunks to a Zarr store at `path` (set up now, from the
    /// template; Zarr chunks default to this dataset's chunks). The pipeline
    /// must still be run.
    pub fn to_zarr(&self, path: impl AsRef<Path>, options: SetupOptions) -> Result<(), Error> {
        let mut options = options;
        if options.chunks.is_empty() {
            options = options.chunks(self.chunks.clone());
        }
        let write = ChunksToZarr::new(path.as_ref(), self.template.clone()).options(options);
        // chunks of one variable each are written as they are (as
        // upstream): gathering them first would be one more shuffle
        self.to_chunks()?.apply(&self.label("to_zarr"), write)
    }

    /// Runs the pipeline and returns the whole dataset (for small results
    /// and tests).
    pub fn collect(&self, runner: &Runner) -> Result<Dataset, Error> {
        let out = self.to_chunks()?.collect(&self.label("collect"));
        self.pipeline.run(runner)?;
        let chunks = out.take()?;
        if chunks.is_empty() {
            return Ok(Dataset::new());
        }
        // variables keyed over different dimensions (a 2-D field and a 1-D
        // series) consolidate separately, then merge
        let mut single = Vec::new();
        for (key, ds) in chunks {
            single.extend(split_variables(&key, &ds)?);
        }
        // a variable without one of the chunked dimensions (a 1-D `bar(x)`
        // beside `foo(x, y)` chunked along y) comes with every chunk along
        // that dimension, under the same key once split: keep one copy of
        // equal duplicates (a different one stays, and is refused below)
        let mut seen: HashMap<Key, Dataset> = HashMap::new();
        single.retain(|(key, ds)| {
            if let Some(first) = seen.get(key) {
                return !first.identical(ds);
            }
            seen.insert(key.clone(), ds.clone());
            true
        });
        let whole = consolidate_chunks(single)?;
        let parts: Vec<&Dataset> = whole.iter().map(|(_, d)| d).collect();
        let mut merged = Dataset::merge(&parts)?;
        if let Some((_, first)) = whole.first() {
            merged.attrs_mut().clone_from(first.attrs());
        }
        Ok(merged)
    }
}

/// Chunk specs of regular chunks of these sizes.
pub(crate) fn size_specs(chunks: &IndexMap<String, u64>) -> TargetChunks {
    chunks
        .iter()
        .map(|(d, &c)| (d.clone(), ChunkSpec::Size(c)))
        .collect()
}

/// Chunk sizes for every template dimension: `requested` where given
/// (`-1`: whole; clamped to the size), else `defaults`, else whole.
fn normalize(
    template: &Template,
    defaults: &IndexMap<String, u64>,
    requested: &TargetChunks,
) -> Result<IndexMap<String, u64>, Error> {
    for d in requested.keys() {
        if !template.sizes().contains_key(d) {
            return Err(Error::Usage(format!(
                "chunks key {d:?} is not a dimension of the dataset: expected one of {:?}",
                template.sizes().keys().collect::<Vec<_>>()
            )));
        }
    }
    template
        .sizes()
        .iter()
        .map(|(d, &size)| {
            let c = match requested.get(d) {
                Some(ChunkSpec::Size(n)) => (*n).min(size),
                Some(ChunkSpec::Full) => size,
                Some(other) => {
                    return Err(Error::Usage(format!(
                        "chunks of a ChunkedDataset must be regular: expected a size or -1 for {d:?}, found {other:?}"
                    )))
                }
                None => defaults.get(d).copied().unwrap_or(size).min(size),
            };
            Ok((d.clone(), c.max(1)))
        })
        .collect()
}

/// A region of another source, read as a source of its own (`isel`,
/// `head`, `tail` before any transform).
struct Subset {
    inner: Arc<dyn ChunkSource>,
    region: IndexMap<String, Range<u64>>,
    template: Template,
    chunks: IndexMap<String, u64>,
}

impl Subset {
    fn new(
        inner: Arc<dyn ChunkSource>,
        region: IndexMap<String, Range<u64>>,
    ) -> Result<Subset, Error> {
        let t = inner.template();
        let mut sizes = t.sizes().clone();
        for (d, r) in &region {
            sizes.insert(d.clone(), r.end - r.start);
        }
        let ranges: IndexMap<String, Range<usize>> = region
            .iter()
            .map(|(d, r)| (d.clone(), r.start as usize..r.end as usize))
            .collect();
        let coords = t
            .coords()
            .iter()
            .map(|(n, c)| Ok((n.clone(), c.isel(&ranges)?)))
            .collect::<Result<IndexMap<String, Variable>, ChunkError>>()?;
        let template = Template::new(sizes, t.data_vars().clone(), coords, t.attrs().clone())?;
        Ok(Subset {
            chunks: inner.chunks().clone(),
            inner,
            region,
            template,
        })
    }
}

impl ChunkSource for Subset {
    fn template(&self) -> &Template {
        &self.template
    }

    fn chunks(&self) -> &IndexMap<String, u64> {
        &self.chunks
    }

    fn read(
        &self,
        region: &IndexMap<String, Range<u64>>,
        vars: Option<&VarSet>,
    ) -> Result<Dataset, IoError> {
        let mut shifted = self.region.clone();
        for (d, r) in region {
            let base = self.region.get(d).map_or(0, |b| b.start);
            shifted.insert(d.clone(), base + r.start..base + r.end);
        }
        self.inner.read(&shifted, vars)
    }

    fn describe(&self) -> String {
        format!("a selection of {}", self.inner.describe())
    }
}
