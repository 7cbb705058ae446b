//! [`ChunksToZarr`] and [`DatasetToZarr`].

use std::path::PathBuf;
use std::sync::Arc;

use super::{Chunks, DatasetToChunks};
use crate::chunk::chunks::TargetChunks;
use crate::chunk::{Dataset, Template};
use crate::io::{setup_zarr, ChunkSink, SetupOptions, ZarrSink};
use crate::key::{ChunkSpec, Key};
use crate::runner::{Pipeline, Sum, Transform};
use crate::Error;

/// Writes keyed chunks into a Zarr store, as xarray-beam's `ChunksToZarr`.
///
/// The store is set up once, when the transform is applied (metadata,
/// consolidated metadata and coordinates, from the [`Template`]): setting
/// up a template of a million chunks writes only metadata and takes
/// milliseconds. Then each chunk is a region write, validated before any
/// byte is written (offsets aligned to Zarr chunks or shards, sizes, the
/// template's variables and dtypes), transposed to the template's
/// dimension order; writes are idempotent, so a re-run after a failure is
/// safe. With [`ChunksToZarr::existing`] (xarray-beam's
/// `needs_setup=False`) the store must already be set up.
///
/// Setup happens when the pipeline is *built*, as upstream's `to_zarr`
/// writes metadata when called: a store read back in the same pipeline
/// would read chunks not written yet, so read it after the run. On a
/// cluster every process builds the pipeline: set the store up once (in
/// the launcher, or in process 0 before the others start) and apply
/// [`ChunksToZarr::existing`] in the pipeline, or every process would
/// replace the store.
///
/// ```
/// use xbeam::prelude::*;
/// use xbeam::transforms::{ChunksToZarr, DatasetToChunks};
///
/// let dir = tempfile::tempdir()?;
/// let ds = Dataset::new()
///     .with_coord("x", Variable::new(["x"], Array::from_1d((0..6i64).collect()))?)?
///     .with_data_var("foo", Variable::new(["x"], Array::from_1d(vec![1.0f32; 6]))?)?;
/// let p = Pipeline::new();
/// p.apply("read", DatasetToChunks::from_dataset(ds.clone(), target_chunks([("x", ChunkSpec::Size(3))])))?
///     .apply("write", ChunksToZarr::new(dir.path().join("out.zarr"), Template::from(&ds)).zarr_chunks([("x", 3)]))?;
/// p.run(&Runner::local_with_workers(2).quiet())?;
/// let back = xbeam::io::open_zarr(dir.path().join("out.zarr"))?;
/// assert_eq!(back.chunks()["x"], 3);
/// assert!(back.read(&Default::default(), None)?.identical(&ds));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChunksToZarr {
    path: PathBuf,
    template: Option<Template>,
    options: SetupOptions,
}

impl ChunksToZarr {
    /// Writes to a new store at `path` set up from `template`, with Zarr
    /// chunks equal to the whole template unless
    /// [`zarr_chunks`](Self::zarr_chunks) says otherwise.
    pub fn new(path: impl Into<PathBuf>, template: Template) -> ChunksToZarr {
        ChunksToZarr {
            path: path.into(),
            template: Some(template),
            options: SetupOptions::default(),
        }
    }

    /// Writes into a store that is already set up (`needs_setup=False`).
    pub fn existing(path: impl Into<PathBuf>) -> ChunksToZarr {
        ChunksToZarr {
            path: path.into(),
            template: None,
            options: SetupOptions::default(),
        }
    }

    /// Setup options: Zarr chunks, shards, format, encoding.
    pub fn options(mut self, options: SetupOptions) -> ChunksToZarr {
        self.options = options;
        self
    }

    /// Zarr chunks per dimension: [`ChunkSpec`]s, or sizes with `-1` for
    /// the whole dimension (see [`SetupOptions::chunks`]).
    pub fn zarr_chunks<S: Into<String>, C: Into<ChunkSpec>>(
        mut self,
        chunks: impl IntoIterator<Item = (S, C)>,
    ) -> ChunksToZarr {
        self.options = self.options.chunks(chunks);
        self
    }

    /// The store, set up (or opened) now.
    fn sink(&self) -> Result<ZarrSink, Error> {
        match &self.template {
            Some(t) => setup_zarr(t, &self.path, &self.options).map_err(Error::output(&self.path)),
            None => ZarrSink::open(&self.path).map_err(Error::output(&self.path)),
        }
    }
}

impl Transform<Chunks> for ChunksToZarr {
    type Output = Result<(), Error>;

    fn expand(self, input: Chunks) -> Result<(), Error> {
        let sink: Arc<dyn ChunkSink> = Arc::new(self.sink()?);
        write_to(&input, sink);
        Ok(())
    }
}

/// Writes every chunk of `input` into `sink` (set up already), then,
/// once every chunk is written, flushes the sink to disk
/// ([`ChunkSink::flush`]: one `syncfs` for a Zarr store, instead of an
/// `fsync` per chunk). A failed write or flush is an output error naming
/// the sink ([`Error::Output`], exit code 4 in the CLI). On a cluster the
/// flush runs in one process; where the processes write to different
/// machines' disks, call [`crate::io::sync_store`] in each after the run.
pub fn write_to(input: &Chunks, sink: Arc<dyn ChunkSink>) {
    let output = |sink: &dyn ChunkSink, source| Error::Output {
        path: sink.describe().into(),
        source,
    };
    let writer = sink.clone();
    input
        .map("write chunks", move |(key, ds): (Key, Dataset)| {
            writer
                .write_chunk(&key, &ds)
                .map(|()| 1u64)
                .map_err(|e| output(&*writer, e))
        })
        .combine_globally("chunks written", Sum)
        .for_each("flush to disk", move |_: u64| {
            sink.flush().map_err(|e| output(&*sink, e))
        });
}

/// Writes an in-memory dataset to a Zarr store in chunks, as xarray-beam's
/// `DatasetToZarr`: [`DatasetToChunks`] then [`ChunksToZarr`], with Zarr
/// chunks equal to the chunks read.
#[derive(Debug, Clone)]
pub struct DatasetToZarr {
    dataset: Dataset,
    path: PathBuf,
    chunks: TargetChunks,
}

impl DatasetToZarr {
    /// Writes `dataset` to `path` in `chunks`.
    pub fn new(dataset: Dataset, path: impl Into<PathBuf>, chunks: TargetChunks) -> DatasetToZarr {
        DatasetToZarr {
            dataset,
            path: path.into(),
            chunks,
        }
    }
}

impl Transform<Pipeline> for DatasetToZarr {
    type Output = Result<(), Error>;

    fn expand(self, p: Pipeline) -> Result<(), Error> {
        // setup refuses irregular Zarr chunks
        let zarr_chunks = self.chunks.clone();
        let template = Template::from(&self.dataset);
        p.apply(
            "read",
            DatasetToChunks::from_dataset(self.dataset, self.chunks),
        )?
        .apply(
            "write",
            ChunksToZarr::new(self.path, template).zarr_chunks(zarr_chunks),
        )
    }
}
