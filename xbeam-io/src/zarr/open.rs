//! Opening a store for reading: [`open_zarr`] and [`ZarrSource::read`].

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use indexmap::{IndexMap, IndexSet};
use rayon::prelude::*;
use serde_json::Value;
use xbeam_chunk::{Array, Attrs, Dataset, Template, VarSchema, Variable, Variables};
use xbeam_key::{repr, VarSet};

use super::array::{open_store, zarrs_array, Opened};
use super::coding;
use super::meta::{self, ArrayInfo, GroupMeta, ZarrFormat};
use crate::source::{add_region_coords, check_read};
use crate::{ChunkSource, IoError};

/// Names of the coordinates of a group: indexes, and everything named in a
/// `coordinates` attribute (xarray's `decode_coords`).
fn coordinate_names(group: &GroupMeta) -> IndexSet<String> {
    let mut names = IndexSet::new();
    let listed = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_str)
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    for name in listed(group.attrs.get("coordinates")) {
        names.insert(name);
    }
    for (name, info) in &group.arrays {
        if info.dims.len() == 1 && &info.dims[0] == name {
            names.insert(name.clone());
        }
        for c in listed(info.attrs.get("coordinates")) {
            names.insert(c);
        }
    }
    names.retain(|n| group.arrays.contains_key(n));
    names
}

/// A Zarr store opened for reading: its [`Template`], its native chunks,
/// and [`read`](ZarrSource::read) for any region.
pub struct ZarrSource {
    path: PathBuf,
    pub(super) format: ZarrFormat,
    pub(super) template: Template,
    chunks: IndexMap<String, u64>,
    pub(super) arrays: IndexMap<String, Opened>,
}

impl std::fmt::Debug for ZarrSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrSource")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("chunks", &self.chunks)
            .finish_non_exhaustive()
    }
}

/// Opens a Zarr v2 or v3 group as xarray would (`xarray.open_zarr` with
/// CF decoding): dimension names from `_ARRAY_DIMENSIONS` /
/// `dimension_names`, fill values masked as NaN, packed integers unpacked,
/// CF times decoded; coordinates are loaded, data variables stay lazy.
///
/// The native chunking comes from the data variables, as in xarray-beam's
/// `open_zarr`: conflicting chunk sizes for a dimension are an error, and
/// sharded arrays report their inner chunks.
pub fn open_zarr(path: impl AsRef<Path>) -> Result<ZarrSource, IoError> {
    let root = path.as_ref();
    let mut group = meta::read_group(root)?;
    let store = open_store(root)?;
    let coord_names = coordinate_names(&group);
    let mut attrs = group.attrs.clone();
    attrs.shift_remove("coordinates");
    group.attrs.clone_from(&attrs);

    let mut sizes: IndexMap<String, u64> = IndexMap::new();
    for info in group.arrays.values() {
        for (d, &n) in info.dims.iter().zip(&info.shape) {
            match sizes.get(d) {
                Some(&m) if m != n => {
                    return Err(IoError::store(
                        root.join(&info.name).display(),
                        format!("dimension {d:?} has size {n} here but {m} in other arrays"),
                    ))
                }
                _ => {
                    sizes.insert(d.clone(), n);
                }
            }
        }
    }

    let mut opened: IndexMap<String, Opened> = IndexMap::new();
    let mut schemas: IndexMap<String, (Attrs, Attrs)> = IndexMap::new();
    for (name, info) in &group.arrays {
        let (coding, var_attrs, encoding) =
            coding::decoding(info).map_err(|e| in_array(root, name, e))?;
        let array = zarrs_array(&store, root, info)?;
        schemas.insert(name.clone(), (var_attrs, encoding));
        opened.insert(
            name.clone(),
            Opened {
                array,
                coding,
                info: info.clone(),
                root: root.to_path_buf(),
            },
        );
    }

    // coordinates are loaded, in parallel
    let coord_list: Vec<&String> = coord_names.iter().collect();
    let loaded: Vec<(String, Result<Array, IoError>)> = coord_list
        .par_iter()
        .map(|name| ((*name).clone(), read_coordinate(root, name, &opened[*name])))
        .collect();
    let mut coords = Variables::new();
    for (name, data) in loaded {
        let (a, e) = &schemas[&name];
        let var = Variable::new(opened[&name].info.dims.clone(), data?)?
            .with_attrs(a.clone())
            .with_encoding(e.clone());
        coords.insert(name.clone(), var);
    }
    let mut data_vars = IndexMap::new();
    let mut chunk_sets: IndexMap<String, BTreeSet<u64>> = IndexMap::new();
    for (name, o) in &opened {
        if coord_names.contains(name) {
            continue;
        }
        let (a, e) = &schemas[name];
        for (d, &c) in o.info.dims.iter().zip(&o.info.chunks) {
            chunk_sets.entry(d.clone()).or_default().insert(c);
        }
        data_vars.insert(
            name.clone(),
            VarSchema {
                dims: o.info.dims.clone(),
                dtype: o.coding.decoded,
                attrs: a.clone(),
                encoding: e.clone(),
            },
        );
    }
    let mut chunks = IndexMap::new();
    for (d, set) in chunk_sets {
        if set.len() > 1 {
            return Err(IoError::store(
                root.display(),
                format!(
                    "inconsistent chunk sizes on Zarr dataset for dimension {}: {}",
                    repr::quote(&d),
                    repr::set(set.iter().map(ToString::to_string)).replace('\'', "")
                ),
            ));
        }
        chunks.insert(d, *set.first().expect("non-empty"));
    }
    let template = Template::new(sizes, data_vars, coords, attrs)?;
    opened.retain(|name, _| !coord_names.contains(name));
    Ok(ZarrSource {
        path: root.to_path_buf(),
        format: group.format,
        template,
        chunks,
        arrays: opened,
    })
}

fn in_array(root: &Path, name: &str, e: IoError) -> IoError {
    match e {
        IoError::Store { .. }
        | IoError::File { .. }
        | IoError::Json { .. }
        | IoError::Zarr { .. } => e,
        other => other.at(root.join(name).display()),
    }
}

impl ZarrSource {
    /// The store's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store's Zarr format.
    pub fn format(&self) -> ZarrFormat {
        self.format
    }

    /// The schema of the whole dataset, with coordinates loaded.
    pub fn template(&self) -> &Template {
        &self.template
    }

    /// The native chunk size per dimension (dimensions only in coordinates
    /// have none).
    pub fn chunks(&self) -> &IndexMap<String, u64> {
        &self.chunks
    }

    /// The stored layout of each data variable.
    pub fn array_info(&self, name: &str) -> Option<&ArrayInfo> {
        self.arrays.get(name).map(|o| &o.info)
    }

    /// Reads `region` (element ranges per dimension; dimensions not named
    /// are read whole) of the data variables `vars` (default: all), with
    /// their coordinates. Only the Zarr chunks the region touches are read,
    /// and they are decoded in parallel.
    pub fn read(
        &self,
        region: &IndexMap<String, Range<u64>>,
        vars: Option<&VarSet>,
    ) -> Result<Dataset, IoError> {
        let sizes = self.template.sizes();
        let names = check_read(&self.path.display(), &self.template, region, vars)?;
        let range_of = |d: &String| region.get(d).cloned().unwrap_or(0..sizes[d]);
        let read: Vec<Result<(String, Variable), IoError>> = names
            .par_iter()
            .map(|name| {
                let o = &self.arrays[*name];
                let ranges: Vec<Range<u64>> = o.info.dims.iter().map(range_of).collect();
                let data = o.read(&self.path, &ranges)?;
                let schema = &self.template.data_vars()[*name];
                let var = Variable::new(schema.dims.clone(), data)?
                    .with_attrs(schema.attrs.clone())
                    .with_encoding(schema.encoding.clone());
                Ok(((*name).clone(), var))
            })
            .collect();
        let mut ds = Dataset::new().with_attrs(self.template.attrs().clone());
        let mut used: IndexSet<String> = IndexSet::new();
        for r in read {
            let (name, var) = r?;
            used.extend(var.dims().iter().cloned());
            ds.insert_data_var(name, var)?;
        }
        add_region_coords(&mut ds, &self.template, region, vars, &used)?;
        Ok(ds)
    }
}

impl ChunkSource for ZarrSource {
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
        ZarrSource::read(self, region, vars)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// A coordinate, whole. A chunk file missing is an error, not fill values:
/// for coordinates those are never what was written.
fn read_coordinate(root: &Path, name: &str, o: &Opened) -> Result<Array, IoError> {
    if let Some(key) = super::verify::first_missing(root, &o.info) {
        return Err(IoError::store(
            root.join(&key).display(),
            format!(
                "the chunk file of coordinate {} is missing, so its values would read as fill values (`xbeam verify` lists every missing chunk)",
                xbeam_key::repr::quote(name)
            ),
        ));
    }
    // read whole at open: at most the budget (a shape from metadata can
    // ask for anything)
    let limit = super::bounded::read_limits().0;
    let bytes = o
        .info
        .shape
        .iter()
        .try_fold(o.info.stored.itemsize() as u64, |b, &n| b.checked_mul(n))
        .filter(|&b| b <= limit);
    if bytes.is_none() {
        return Err(IoError::store(
            root.join(&o.info.name).display(),
            format!(
                "expected a coordinate of at most {limit} bytes (the memory budget, as coordinates are read whole), found {:?} elements of {} (raise --max-mem if it is sound)",
                o.info.shape,
                o.info.stored.numpy_name()
            ),
        ));
    }
    let ranges: Vec<Range<u64>> = o.info.shape.iter().map(|&n| 0..n).collect();
    o.read(root, &ranges)
}
