//! [`ChunkedDataset::groupby`] and [`ChunkedDataset::resample`]: grouped
//! reductions in the high-level API, on the [`GroupBy`] transform.

use std::ops::Range;
use std::sync::Arc;

use indexmap::IndexMap;

use super::{ChunkedDataset, Stage};
use crate::chunk::{Template, VarSchema, Variable};
use crate::key::{ChunkGrid, Key};
use crate::stats::{Grouper, Groups, Labels, Resample, Stat};
use crate::transforms::{canonical_key, GroupBy};
use crate::Error;

/// A [`ChunkedDataset`] grouped along one dimension, as xarray's
/// `ds.groupby(...)` or `ds.resample(...)`: reduce it with
/// [`mean`](Grouped::mean), [`std`](Grouped::std), ... or
/// [`reduce`](Grouped::reduce).
#[derive(Debug, Clone)]
pub struct Grouped {
    ds: ChunkedDataset,
    dim: String,
    groups: Groups,
    group_dims: Vec<String>,
    skipna: bool,
    ddof: u64,
}

impl ChunkedDataset {
    /// Groups the steps of one dimension by `groupers` (parts of a time
    /// coordinate such as `time.month`, a 1-D coordinate's values,
    /// resampling bins or a user function; all along one dimension), as
    /// xarray's `ds.groupby(...)`. The labels come from the template's
    /// coordinates, so no data is read to find them.
    ///
    /// ```
    /// use xbeam::prelude::*;
    /// use xbeam::stats::parse_groupers;
    /// use xbeam::ChunkedDataset;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let src = dir.path().join("era5.zarr");
    /// let runner = Runner::local_with_workers(2).quiet();
    /// xbeam::jobs::generate::run(&xbeam::jobs::generate::Options { ntime: Some(96), nlat: 3, nlon: 4, ..xbeam::jobs::generate::Options::new(&src) }, &runner)?;
    /// let p = Pipeline::new();
    /// let ds = ChunkedDataset::from_zarr(&p, &src, &"time=24".parse()?)?;
    /// let clim = ds.groupby(&parse_groupers("time.hour")?)?.mean()?;
    /// assert_eq!(clim.sizes()["hour"], 24);
    /// let out = clim.collect(&runner)?;
    /// assert_eq!(out.data_var("temperature")?.dims(), ["hour", "latitude", "longitude"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A usage error when a grouper's coordinate is missing, not 1-D, not a
    /// datetime where it needs one, or the groupers group different
    /// dimensions.
    pub fn groupby(&self, groupers: &[Grouper]) -> Result<Grouped, Error> {
        let t = &self.template;
        let mut dim: Option<String> = None;
        let mut parts = Vec::with_capacity(groupers.len());
        for g in groupers {
            let coord = t.coords().get(g.coord()).ok_or_else(|| {
                Error::Usage(format!(
                    "grouper {g} names coordinate {:?}, which the dataset does not have: expected one of {}",
                    g.coord(),
                    crate::key::repr::tuple(t.coords().keys())
                ))
            })?;
            if coord.dims().len() != 1 {
                return Err(Error::Usage(format!(
                    "grouper {g} needs a 1-D coordinate, but {:?} has dimensions {:?}",
                    g.coord(),
                    coord.dims()
                )));
            }
            let d = &coord.dims()[0];
            if let Some(prev) = dim.as_ref().filter(|p| *p != d) {
                return Err(Error::Usage(format!(
                    "groupers must group one dimension: they group {prev:?} and {d:?}"
                )));
            }
            dim = Some(d.clone());
            parts.push(
                g.labels(coord.data())
                    .map_err(|e| Error::Usage(e.to_string()))?,
            );
        }
        let dim = dim.ok_or_else(|| Error::Usage("groupby needs at least one grouper".into()))?;
        let groups = Groups::from_parts(t.sizes()[&dim] as usize, parts);
        Ok(Grouped {
            ds: self.clone(),
            dim,
            groups,
            group_dims: groupers.iter().map(Grouper::name).collect(),
            skipna: true,
            ddof: 0,
        })
    }

    /// Groups the datetime dimension `dim` into bins of `freq` (`1D`,
    /// `6h`, `30min`, `1MS`, `1YS`), as xarray's
    /// `ds.resample({dim: freq})`: bins are closed and labelled on the
    /// left, and the group dimension keeps the name `dim`.
    ///
    /// ```
    /// use xbeam::prelude::*;
    /// use xbeam::ChunkedDataset;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let src = dir.path().join("era5.zarr");
    /// let runner = Runner::local_with_workers(2).quiet();
    /// xbeam::jobs::generate::run(&xbeam::jobs::generate::Options { ntime: Some(96), nlat: 3, nlon: 4, ..xbeam::jobs::generate::Options::new(&src) }, &runner)?;
    /// let p = Pipeline::new();
    /// let daily = ChunkedDataset::from_zarr(&p, &src, &"time=24".parse()?)?.resample("time", "1D")?.max()?;
    /// assert_eq!(daily.sizes()["time"], 4);
    /// assert_eq!(daily.collect(&runner)?.coord("time")?.data().len(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A usage error for a frequency it does not know, or a `dim` that is
    /// not a datetime coordinate.
    pub fn resample(&self, dim: &str, freq: &str) -> Result<Grouped, Error> {
        let bins = Resample::new(dim, freq).map_err(|e| Error::Usage(e.to_string()))?;
        let mut grouped = self.groupby(&[Grouper::Resample(bins)])?;
        // the bins' dimension takes the grouped one's name and place
        grouped.group_dims = vec![dim.to_owned()];
        Ok(grouped)
    }
}

impl Grouped {
    /// Whether NaN values are skipped (default true, as xarray).
    pub fn skipna(mut self, skipna: bool) -> Grouped {
        self.skipna = skipna;
        self
    }

    /// Delta degrees of freedom of var and std (default 0, as xarray).
    pub fn ddof(mut self, ddof: u64) -> Grouped {
        self.ddof = ddof;
        self
    }

    /// The groups' labels and every step's group.
    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// `stat` of each group: every data variable along the grouped
    /// dimension becomes `[group dims..., its other dims]`, float64 (int64
    /// counts), one group per chunk, with the labels as coordinates (see
    /// [`GroupBy`]). Results combine in the order the engine meets them;
    /// the `climatology` job ([`crate::jobs::reduce`]) is bit-identical
    /// across runs.
    ///
    /// # Errors
    /// When the dataset has no data variable along the grouped dimension.
    pub fn reduce(&self, stat: Stat) -> Result<ChunkedDataset, Error> {
        let src = &self.ds;
        let t = &src.template;
        let group_dims = &self.group_dims;
        let mut sizes: IndexMap<String, u64> = IndexMap::new();
        let mut coords: IndexMap<String, Variable> = IndexMap::new();
        for (d, labels) in group_dims.iter().zip(&self.groups.labels) {
            sizes.insert(d.clone(), labels.len() as u64);
            coords.insert(d.clone(), Variable::new([d.clone()], labels.to_array())?);
        }
        for (d, &n) in t.sizes() {
            if *d != self.dim {
                sizes.insert(d.clone(), n);
            }
        }
        for (name, c) in t.coords() {
            if !c.dims().contains(&self.dim) {
                coords.insert(name.clone(), c.clone());
            }
        }
        // as xarray: integer results of a product with absent groups are
        // float64, NaN there
        let absent = self.groups.present().contains(&false);
        let dtype = if absent {
            crate::chunk::DType::F64
        } else {
            crate::transforms::stat_dtype(stat)
        };
        let data_vars: IndexMap<String, VarSchema> = t
            .data_vars()
            .iter()
            .filter(|(_, v)| v.dims.contains(&self.dim))
            .map(|(n, v)| {
                let dims = group_dims
                    .iter()
                    .chain(v.dims.iter().filter(|d| **d != self.dim))
                    .cloned()
                    .collect();
                (
                    n.clone(),
                    VarSchema {
                        dims,
                        dtype,
                        attrs: IndexMap::default(),
                        encoding: IndexMap::default(),
                    },
                )
            })
            .collect();
        if data_vars.is_empty() {
            return Err(Error::Usage(format!(
                "no data variable has the grouped dimension {:?}",
                self.dim
            )));
        }
        let template = Template::new(sizes, data_vars, coords, IndexMap::default())?;
        let mut chunks: IndexMap<String, u64> = group_dims.iter().map(|d| (d.clone(), 1)).collect();
        for (d, &c) in &src.chunks {
            if *d != self.dim {
                chunks.insert(d.clone(), c);
            }
        }
        let transform = GroupBy::new(&self.dim, self.groups.clone(), group_dims, stat)?
            .skipna(self.skipna)
            .ddof(self.ddof);
        let name = format!("groupby_{stat}_{}", self.group_dims.join("_"));
        let out = src.to_chunks()?.apply(&src.label(&name), transform);
        let out = match self.absent(&template, &chunks)? {
            Some(filler) => {
                let filler = src
                    .pipeline
                    .source(&src.label("absent groups"), filler.count(), {
                        move |i| filler.chunk(i as usize)
                    });
                src.pipeline.flatten(&src.label("groups"), &[&out, &filler])
            }
            None => out,
        };
        Ok(src.with(template, chunks, Stage::Chunks(out)))
    }

    /// The output chunks of the groups no step falls in (NaN, as xarray),
    /// made as the pipeline runs, or `None` when every group has steps.
    fn absent(
        &self,
        template: &Template,
        chunks: &IndexMap<String, u64>,
    ) -> Result<Option<Filler>, Error> {
        let present = self.groups.present();
        if present.iter().all(|&p| p) {
            return Ok(None);
        }
        let grid = ChunkGrid::new(
            template.sizes().iter().map(|(d, s)| (d.clone(), *s)),
            super::size_specs(chunks)
                .iter()
                .map(|(d, s)| (d.as_str(), s.clone())),
        )?;
        let lens: Vec<usize> = self.groups.labels.iter().map(Labels::len).collect();
        let mut keys = Vec::new();
        for key in grid.keys() {
            let g = self
                .group_dims
                .iter()
                .zip(&lens)
                .fold(0usize, |g, (d, &n)| {
                    g * n + key.offset(d).unwrap_or(0) as usize
                });
            if !present[g] {
                let mut region = IndexMap::new();
                for (d, &o) in key.offsets() {
                    region.insert(d.clone(), o..o + grid.chunk_size(d, o)?);
                }
                keys.push((canonical_key(&key), region));
            }
        }
        Ok(Some(Filler {
            template: Arc::new(template.clone()),
            keys: Arc::new(keys),
        }))
    }

    stat_methods! {
        /// The mean of each group.
        mean => Mean;
        /// The sum of each group (0 where no value is valid).
        sum => Sum;
        /// The variance of each group.
        var => Var;
        /// The standard deviation of each group.
        std => Std;
        /// The smallest valid value of each group.
        min => Min;
        /// The largest valid value of each group.
        max => Max;
        /// The number of valid values of each group.
        count => Count;
    }
}

/// A chunk's key and its element ranges.
type Region = (Key, IndexMap<String, Range<u64>>);

/// The chunks of absent groups, filled from the output template.
#[derive(Clone)]
struct Filler {
    template: Arc<Template>,
    keys: Arc<Vec<Region>>,
}

impl Filler {
    fn count(&self) -> u64 {
        self.keys.len() as u64
    }

    fn chunk(&self, i: usize) -> Result<(Key, crate::chunk::Dataset), crate::chunk::ChunkError> {
        let (key, region) = &self.keys[i];
        Ok((
            key.clone(),
            self.template.fill_chunk(region, None, f64::NAN)?,
        ))
    }
}
