//! Many NetCDF files as one dataset: [`open_netcdf`] scans them (in
//! parallel), reconciles their CF encodings and returns a
//! [`NetcdfSource`], a [`ChunkSource`] that reads any region, each file
//! decoded with its own encoding.

use std::collections::VecDeque;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use indexmap::{IndexMap, IndexSet};
use netcdf_reader::NcFile;
use rayon::prelude::*;
use serde_json::{json, Value};
use xbeam_chunk::calendar::{Calendar, CfUnits, TimeUnit};
use xbeam_chunk::{Array, Attrs, DType, Dataset, Template, VarSchema, Variable, Variables};
use xbeam_key::{repr, VarSet};

use super::file::{
    array_bytes, direct_buffer, hdf5_chunks, open_file, open_recorded, probe, read_direct_into,
    read_meta, read_raw, NcMeta, NcVar,
};
use crate::cf::coding::{self, Coding};
use crate::cf::{attr_f64, retick};
use crate::source::{add_region_coords, check_read};
use crate::{encode_cf_time, ChunkSource, IoError};

/// Files kept open at once (a handle holds a descriptor and the parsed
/// header; thousands of files are opened as they are read).
const OPEN_FILES: usize = 16;

/// Encoding keys a Zarr store takes from a NetCDF variable (xarray drops
/// the NetCDF-only ones, `zlib`, `chunksizes`, ..., when writing Zarr).
const ENCODING_KEYS: [&str; 7] = [
    "dtype",
    "_FillValue",
    "missing_value",
    "scale_factor",
    "add_offset",
    "units",
    "calendar",
];

/// One scanned file.
struct Scanned {
    meta: NcMeta,
    /// CF coding, decoded attributes and encoding per variable.
    codings: IndexMap<String, (Coding, Attrs, Attrs)>,
    /// Decoded values of the coordinates (variables named as their only
    /// dimension, and those named in `coordinates` attributes).
    coords: IndexMap<String, Array>,
}

/// Where a data variable's values are.
#[derive(Debug, Clone)]
enum Layout {
    /// Along the concat dimension: (file, start of its part, length).
    Concat {
        axis: usize,
        pieces: Vec<(usize, u64, u64)>,
    },
    /// Without the concat dimension: in this file.
    Whole(usize),
}

/// Many NetCDF files read as one dataset: concatenated along a dimension
/// (xarray's `open_mfdataset(..., combine="nested", concat_dim=...)`) and
/// merged across files holding different variables (pangeo-forge's
/// `MergeDim`); see [`open_netcdf`].
pub struct NetcdfSource {
    paths: Vec<PathBuf>,
    concat_dim: String,
    template: Template,
    chunks: IndexMap<String, u64>,
    /// Per file, per variable: the stored layout and CF coding.
    vars: Vec<IndexMap<String, (NcVar, Coding)>>,
    layout: IndexMap<String, Layout>,
    lengths: Vec<u64>,
    notes: Vec<String>,
    open: Mutex<VecDeque<(usize, Arc<OpenFile>)>>,
}

/// A file open for reading: through `netcdf-reader`, and plainly for
/// direct reads.
struct OpenFile {
    nc: NcFile,
    raw: std::fs::File,
}

impl std::fmt::Debug for NetcdfSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetcdfSource")
            .field("files", &self.paths.len())
            .field("concat_dim", &self.concat_dim)
            .field("chunks", &self.chunks)
            .finish_non_exhaustive()
    }
}

/// xarray's `_choose_float_dtype` for packed values: the type of
/// `scale_factor` and `add_offset` when both are floats of one type
/// (float64 for 32-bit integers), float64 with any other `add_offset`,
/// else the type of `scale_factor`.
fn unpacked_dtype(stored: DType, var: &NcVar) -> DType {
    let scale = var.attr_types.get("scale_factor").copied();
    let offset = var.attr_types.get("add_offset").copied();
    let float = |t: DType| {
        if t == DType::F32 {
            DType::F32
        } else {
            DType::F64
        }
    };
    match (scale, offset) {
        (Some(s), Some(o)) if s == o && s.is_float() => {
            if stored.is_integer() && stored.itemsize() == 4 {
                DType::F64
            } else {
                float(s)
            }
        }
        (Some(s), None) => float(s),
        (_, Some(_)) | (None, None) => DType::F64,
    }
}

/// The coordinate names of a file (as [`crate::open_zarr`] finds them).
fn coordinate_names(meta: &NcMeta) -> IndexSet<String> {
    let mut names = IndexSet::new();
    let listed = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_str)
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    names.extend(listed(meta.attrs.get("coordinates")));
    for (name, v) in &meta.vars {
        if v.dims.len() == 1 && &v.dims[0] == name {
            names.insert(name.clone());
        }
        names.extend(listed(v.attrs.get("coordinates")));
    }
    names.retain(|n| meta.vars.contains_key(n));
    names
}

fn scan(path: &Path, concat_dim: &str) -> Result<Scanned, IoError> {
    let (file, recorder) = open_recorded(path)?;
    let mut meta = read_meta(path, &file)?;
    if !meta.dims.contains_key(concat_dim) {
        return Err(IoError::store(
            path.display(),
            format!(
                "has no dimension {} to concatenate along: expected it in every file, found {}",
                repr::quote(concat_dim),
                repr::tuple(meta.dims.keys())
            ),
        ));
    }
    bounds_take_time_units(&mut meta);
    let mut codings = IndexMap::new();
    for (name, var) in &meta.vars {
        let at = format!("{}:{name}", path.display());
        let (mut coding, attrs, encoding) =
            coding::decoding(&at, var.stored(), &var.attrs, None, attr_f64)?;
        if coding.time.is_none() && (coding.scale.is_some() || coding.offset.is_some()) {
            coding.decoded = unpacked_dtype(coding.stored, var);
        }
        codings.insert(name.clone(), (coding, attrs, encoding));
    }
    // values along the concat dimension stored as one contiguous run are
    // read straight into their buffers
    let mut chunked = hdf5_chunks(&file, &recorder);
    for var in meta.vars.values_mut() {
        if var.dims.iter().any(|d| d == concat_dim) {
            var.chunks = chunked.shift_remove(&var.name);
            if var.chunks.is_none() {
                var.direct = probe(path, &file, &recorder, var);
            }
        }
    }
    let mut coords = IndexMap::new();
    for name in coordinate_names(&meta) {
        let var = &meta.vars[&name];
        let ranges: Vec<Range<u64>> = var.shape.iter().map(|&n| 0..n).collect();
        let raw = read_raw(path, &file, var, &ranges)?;
        let values = codings[&name]
            .0
            .decode(raw)
            .map_err(|e| e.at(format!("{}:{name}", path.display())))?;
        coords.insert(name, values);
    }
    Ok(Scanned {
        meta,
        codings,
        coords,
    })
}

/// xarray's `_update_bounds_attributes`: the variable a time variable
/// names in its `bounds` attribute (`time_bnds`) takes that variable's
/// `units` and `calendar` when it has none, so both decode alike.
fn bounds_take_time_units(meta: &mut NcMeta) {
    let mut copies = Vec::new();
    for v in meta.vars.values() {
        let units = v.attrs.get("units").and_then(Value::as_str);
        let Some(bounds) = v.attrs.get("bounds").and_then(Value::as_str) else {
            continue;
        };
        if units.is_some_and(|u| u.contains(" since ")) {
            copies.push((
                bounds.to_owned(),
                v.attrs.get("units").cloned(),
                v.attrs.get("calendar").cloned(),
            ));
        }
    }
    for (bounds, units, calendar) in copies {
        if let Some(b) = meta.vars.get_mut(&bounds) {
            for (key, value) in [("units", units), ("calendar", calendar)] {
                if let Some(value) = value {
                    b.attrs.entry(key.to_owned()).or_insert(value);
                }
            }
        }
    }
}

/// Names a file for messages.
fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// The finest CF time units in which every one of `units` is a whole
/// count: the finest of their units (finer still when the reference dates
/// are not whole units apart), since the earliest reference date.
fn common_units(units: &[CfUnits], calendar: Calendar) -> Result<String, IoError> {
    // reference dates in seconds (whole seconds: a unit finer than that
    // divides any difference), as i128 so that references far apart or far
    // from 1970 neither overflow nor fail
    let refs: Vec<i128> = units
        .iter()
        .map(|u| {
            calendar
                .to_ticks(&u.reference, TimeUnit::Seconds)
                .map(i128::from)
        })
        .collect::<Result<_, _>>()?;
    let (earliest, first) = refs
        .iter()
        .zip(units)
        .min_by_key(|(r, _)| **r)
        .map(|(r, u)| (*r, *u))
        .ok_or_else(|| IoError::Invalid("no time units to reconcile".into()))?;
    let finest = units
        .iter()
        .map(|u| u.unit)
        .min_by_key(|u| u.nanos())
        .unwrap_or(TimeUnit::Seconds);
    let seconds = |u: TimeUnit| i128::from((u.nanos() / TimeUnit::Seconds.nanos()).max(1));
    let unit = TimeUnit::ALL
        .into_iter()
        .rev()
        .filter(|u| u.nanos() <= finest.nanos())
        .find(|u| refs.iter().all(|r| (r - earliest) % seconds(*u) == 0))
        .unwrap_or(TimeUnit::Seconds);
    Ok(CfUnits {
        unit,
        reference: first.reference,
        calendar,
    }
    .format())
}

/// The finest tick unit and the CF units of a time-coded variable across
/// `files`, which must share one calendar.
fn time_units_of(
    name: &str,
    files: &[usize],
    scanned: &[Scanned],
    calendar: Calendar,
) -> Result<(TimeUnit, Vec<CfUnits>), IoError> {
    let mut finest = TimeUnit::Days;
    let mut units = Vec::new();
    for &i in files {
        let c = &scanned[i].codings[name].0;
        match (c.decoded, &c.time) {
            (DType::DateTime(u, cal), Some((text, _))) if cal == calendar => {
                if u.nanos() < finest.nanos() {
                    finest = u;
                }
                units.push(CfUnits::parse(text, calendar)?);
            }
            _ => {
                return Err(IoError::store(
                    shown(&scanned[i].meta.path),
                    format!(
                        "variable {} is not times in calendar {} here, unlike in {}",
                        repr::quote(name),
                        repr::quote(calendar.name()),
                        shown(&scanned[files[0]].meta.path)
                    ),
                ))
            }
        }
    }
    Ok((finest, units))
}

/// Whether two coordinates hold the same values: datetimes compared in the
/// finer of their tick units.
fn same_values(a: &Array, b: &Array) -> Result<bool, IoError> {
    if let (DType::DateTime(ua, ca), DType::DateTime(ub, cb)) = (a.dtype(), b.dtype()) {
        if ca != cb {
            return Ok(false);
        }
        let unit = if ua.nanos() <= ub.nanos() { ua } else { ub };
        return Ok(retick(a, unit)?.equals(&retick(b, unit)?));
    }
    Ok(a.equals(b))
}

/// The dtype values of a variable from several files are given: the
/// first's when all agree, a float wide enough for all when all are
/// floats.
fn common_dtype(dtypes: &[DType]) -> Option<DType> {
    let first = dtypes[0];
    if dtypes.iter().all(|&d| d == first) {
        return Some(first);
    }
    if dtypes.iter().all(|d| d.is_float()) {
        return Some(if dtypes.contains(&DType::F64) {
            DType::F64
        } else {
            DType::F32
        });
    }
    None
}

/// A coding's packing, for comparing files.
fn packing(c: &Coding) -> (DType, Option<u64>, Option<u64>, Option<u64>, Option<u64>) {
    let bits = |x: Option<f64>| x.map(f64::to_bits);
    (
        c.stored,
        bits(c.scale),
        bits(c.offset),
        bits(c.fill),
        bits(c.missing),
    )
}

fn describe_packing(c: &Coding) -> String {
    let mut parts = vec![c.stored.name()];
    if let Some(s) = c.scale {
        parts.push(format!("scale_factor {s}"));
    }
    if let Some(o) = c.offset {
        parts.push(format!("add_offset {o}"));
    }
    if let Some(f) = c.fill {
        parts.push(format!("_FillValue {f}"));
    }
    parts.join(", ")
}

/// Whether two codings decode stored values the same way.
fn same_coding(a: &Coding, b: &Coding) -> bool {
    packing(a) == packing(b) && a.time == b.time && a.decoded == b.decoded
}

/// The encoding a store keeps from a NetCDF variable's.
fn store_encoding(encoding: &Attrs, coding: &Coding) -> Attrs {
    let mut out = Attrs::new();
    for key in ENCODING_KEYS {
        if let Some(v) = encoding.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    if coding.stored != DType::String && !out.contains_key("dtype") {
        out.insert("dtype".into(), json!(coding.stored.name()));
    }
    out
}

/// Opens `paths` (in this order) as one dataset concatenated along
/// `concat_dim`, as xarray's
/// `open_mfdataset(paths, combine="nested", concat_dim=concat_dim)` and
/// pangeo-forge's `MergeDim` for files that hold different variables.
///
/// Every file is scanned in parallel (headers and coordinates); `on_file`
/// is called once per file scanned. Each file is decoded with its own CF
/// encoding (time units and calendar, `scale_factor`, `add_offset`,
/// `_FillValue`), and the result's encoding is chosen so that every value
/// is stored exactly: the first file's time units when every time is a
/// whole count of them (else the finest units of all files since the
/// earliest reference date), the packing shared by all files (else
/// unpacked floats). [`NetcdfSource::notes`] says what was reconciled.
///
/// Errors name the file: a missing concat dimension, a dimension of
/// another size, a coordinate with other values, a variable with other
/// dimensions or a type that cannot be reconciled, another calendar, and
/// files whose sets of variables overlap without being equal.
///
/// ```
/// use indexmap::IndexMap;
/// use xbeam_io::{expand_pattern, open_netcdf, ChunkSource};
///
/// // two files: 5 steps in "hours since 2004-01-01", 4 in "days since 2004-01-02"
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/netcdf/nc4");
/// let files = expand_pattern(&format!("{dir}/*.nc"))?;
/// let source = open_netcdf(&files, "time", &|| {})?;
/// assert_eq!(source.template().sizes()["time"], 9);
/// assert_eq!(source.template().coords()["time"].encoding()["units"], "hours since 2004-01-01");
/// // a region across both files, each decoded with its own encoding
/// let region = IndexMap::from([("time".to_owned(), 3..7)]);
/// let ds = source.read(&region, None)?;
/// let t = ds.data_vars()["t"].data().as_view::<f32>()?;
/// assert_eq!(t[[3, 2, 1]], 6021.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open_netcdf(
    paths: &[PathBuf],
    concat_dim: &str,
    on_file: &(dyn Fn() + Sync),
) -> Result<NetcdfSource, IoError> {
    if paths.is_empty() {
        return Err(IoError::Invalid(
            "no NetCDF files to open: expected at least one".into(),
        ));
    }
    let scanned: Vec<Scanned> = paths
        .par_iter()
        .map(|p| {
            let s = scan(p, concat_dim);
            on_file();
            s
        })
        .collect::<Result<_, _>>()?;
    build(paths, concat_dim, &scanned)
}

#[allow(clippy::too_many_lines)]
fn build(
    paths: &[PathBuf],
    concat_dim: &str,
    scanned: &[Scanned],
) -> Result<NetcdfSource, IoError> {
    let first = &scanned[0];
    let first_path = shown(&first.meta.path);
    let mut notes = Vec::new();
    let coord_names: Vec<IndexSet<String>> =
        scanned.iter().map(|s| coordinate_names(&s.meta)).collect();

    // dimensions other than the concat dimension agree wherever they appear
    let mut sizes: IndexMap<String, (u64, usize)> = IndexMap::new();
    for (i, s) in scanned.iter().enumerate() {
        for (d, &n) in &s.meta.dims {
            if d == concat_dim {
                continue;
            }
            match sizes.get(d) {
                Some(&(m, j)) if m != n => {
                    return Err(IoError::store(
                        shown(&s.meta.path),
                        format!(
                            "dimension {} has size {n} here but {m} in {}: expected every file to have the same size along every dimension but {}",
                            repr::quote(d),
                            shown(&scanned[j].meta.path),
                            repr::quote(concat_dim)
                        ),
                    ))
                }
                Some(_) => {}
                None => {
                    sizes.insert(d.clone(), (n, i));
                }
            }
        }
    }

    // coordinates other than the concat dimension's are equal in every file
    let mut coords = Variables::new();
    let mut coord_from: IndexMap<String, usize> = IndexMap::new();
    for (i, s) in scanned.iter().enumerate() {
        for (name, values) in &s.coords {
            let var = &s.meta.vars[name];
            if var.dims.iter().any(|d| d == concat_dim) {
                continue;
            }
            if let Some(&j) = coord_from.get(name) {
                let first = &scanned[j].coords[name];
                if first.dtype() != values.dtype() && !matches!(first.dtype(), DType::DateTime(..))
                {
                    return Err(IoError::store(
                        shown(&s.meta.path),
                        format!(
                            "coordinate {} holds {} values here but {} in {}: expected equal coordinates in every file except along {}",
                            repr::quote(name),
                            values.dtype(),
                            first.dtype(),
                            shown(&scanned[j].meta.path),
                            repr::quote(concat_dim)
                        ),
                    ));
                }
                if !same_values(first, values)? {
                    return Err(IoError::store(
                        shown(&s.meta.path),
                        format!(
                            "coordinate {} has other values here than in {}: expected equal coordinates in every file except along {}",
                            repr::quote(name),
                            shown(&scanned[j].meta.path),
                            repr::quote(concat_dim)
                        ),
                    ));
                }
                continue;
            }
            let (_, attrs, encoding) = &s.codings[name];
            let v = Variable::new(var.dims.clone(), values.clone())?
                .with_attrs(attrs.clone())
                .with_encoding(store_encoding(encoding, &s.codings[name].0));
            coords.insert(name.clone(), v);
            coord_from.insert(name.clone(), i);
        }
    }

    // data variables along the concat dimension, grouped by the files
    // that hold them (MergeDim)
    let along = |s: &Scanned, i: usize| -> Vec<String> {
        s.meta
            .vars
            .iter()
            .filter(|(n, v)| !coord_names[i].contains(*n) && v.dims.iter().any(|d| d == concat_dim))
            .map(|(n, _)| n.clone())
            .collect()
    };
    let mut groups: IndexMap<Vec<String>, Vec<usize>> = IndexMap::new();
    for (i, s) in scanned.iter().enumerate() {
        let mut set = along(s, i);
        set.sort();
        groups.entry(set).or_default().push(i);
    }
    let group_list: Vec<(&Vec<String>, &Vec<usize>)> = groups.iter().collect();
    for (k, (set, files)) in group_list.iter().enumerate() {
        for (other, other_files) in &group_list[..k] {
            if let Some(shared) = set.iter().find(|v| other.contains(v)) {
                return Err(IoError::store(
                    shown(&scanned[files[0]].meta.path),
                    format!(
                        "has data variables {} but {} has {}: files sharing a variable ({}) must hold the same variables",
                        repr::tuple(set.iter()),
                        shown(&scanned[other_files[0]].meta.path),
                        repr::tuple(other.iter()),
                        repr::quote(shared)
                    ),
                ));
            }
        }
    }

    // the concat coordinate of each group, and the groups agree
    let concat_coord = |files: &[usize]| -> Result<Option<Array>, IoError> {
        if !scanned[files[0]].coords.contains_key(concat_dim) {
            return Ok(None);
        }
        let mut parts = Vec::new();
        for &i in files {
            let Some(c) = scanned[i].coords.get(concat_dim) else {
                return Err(IoError::store(
                    shown(&scanned[i].meta.path),
                    format!(
                        "has no coordinate {} but {} has: expected it in every file or in none",
                        repr::quote(concat_dim),
                        shown(&scanned[files[0]].meta.path)
                    ),
                ));
            };
            parts.push(c.clone());
        }
        // datetimes in the finest tick unit of all files, one calendar
        if let DType::DateTime(_, calendar) = parts[0].dtype() {
            let mut finest = TimeUnit::Days;
            for (k, p) in parts.iter().enumerate() {
                let DType::DateTime(u, c) = p.dtype() else {
                    return Err(IoError::store(
                        shown(&scanned[files[k]].meta.path),
                        format!(
                            "coordinate {} holds {} values but datetimes in {}",
                            repr::quote(concat_dim),
                            p.dtype(),
                            shown(&scanned[files[0]].meta.path)
                        ),
                    ));
                };
                if c != calendar {
                    return Err(IoError::store(
                        shown(&scanned[files[k]].meta.path),
                        format!(
                            "coordinate {} uses calendar {} but {} uses {}: expected one calendar in every file",
                            repr::quote(concat_dim),
                            repr::quote(c.name()),
                            shown(&scanned[files[0]].meta.path),
                            repr::quote(calendar.name())
                        ),
                    ));
                }
                if u.nanos() < finest.nanos() {
                    finest = u;
                }
            }
            for p in &mut parts {
                *p = retick(p, finest)?;
            }
        }
        let refs: Vec<&Array> = parts.iter().collect();
        Array::concat(0, &refs).map(Some).map_err(|e| {
            IoError::store(
                shown(&scanned[files[0]].meta.path),
                format!("cannot concatenate {}: {e}", repr::quote(concat_dim)),
            )
        })
    };
    let lengths: Vec<u64> = scanned.iter().map(|s| s.meta.dims[concat_dim]).collect();
    let (_, first_files) = group_list[0];
    let total: u64 = first_files.iter().map(|&i| lengths[i]).sum();
    let index = concat_coord(first_files)?;
    for (_, files) in &group_list[1..] {
        let n: u64 = files.iter().map(|&i| lengths[i]).sum();
        let other = concat_coord(files)?;
        let (this, first) = (
            shown(&scanned[files[0]].meta.path),
            shown(&scanned[first_files[0]].meta.path),
        );
        let differs = |what: String| {
            IoError::store(
                &this,
                format!(
                    "{what} than the files of {first}: files holding different variables must cover the same {}",
                    repr::quote(concat_dim)
                ),
            )
        };
        if n != total {
            return Err(differs(format!(
                "its files hold {n} {} steps in all, other",
                repr::quote(concat_dim)
            )));
        }
        match (&index, &other) {
            (Some(a), Some(b)) if !same_values(a, b)? => {
                return Err(differs(format!(
                    "its files' {} coordinate has other values",
                    repr::quote(concat_dim)
                )))
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(differs(format!(
                    "its files {} a {} coordinate, unlike",
                    if other.is_some() { "have" } else { "have no" },
                    repr::quote(concat_dim)
                )))
            }
            _ => {}
        }
    }

    // the concat coordinate's encoding: every file's times exact in it
    if let Some(values) = &index {
        let s0 = &scanned[first_files[0]];
        let (coding, attrs, encoding) = &s0.codings[concat_dim];
        let mut encoding = store_encoding(encoding, coding);
        if let (DType::DateTime(_, calendar), Some((first_units, _))) =
            (values.dtype(), &coding.time)
        {
            let units: Vec<CfUnits> = first_files
                .iter()
                .filter_map(|&i| scanned[i].codings[concat_dim].0.time.as_ref())
                .map(|(u, _)| CfUnits::parse(u, calendar))
                .collect::<Result<_, _>>()?;
            let differ = units.iter().any(|u| u.format() != units[0].format());
            if !coding.stored.is_float() && encode_cf_time(values, first_units, None).is_err() {
                let chosen = common_units(&units, calendar)?;
                notes.push(format!(
                    "{}: the files' time units differ and not every time is a whole count of {} (the first file's): stored as {} (int64)",
                    concat_dim,
                    repr::quote(first_units),
                    repr::quote(&chosen)
                ));
                encoding.insert("units".into(), json!(chosen));
                encoding.insert("dtype".into(), json!("int64"));
            } else if differ {
                notes.push(format!(
                    "{}: the files' time units differ; every time is stored exactly in the first file's, {}",
                    concat_dim,
                    repr::quote(first_units)
                ));
            }
        }
        let v = Variable::new(vec![concat_dim.to_owned()], values.clone())?
            .with_attrs(attrs.clone())
            .with_encoding(encoding);
        coords.insert(concat_dim.to_owned(), v);
    }
    // other coordinates along the concat dimension (`expver(valid_time)`,
    // a 2-D `time_bnds` named in `coordinates`): each file's values one
    // after the other, as the data; every file of the first group has them
    let along: IndexSet<&String> = scanned
        .iter()
        .flat_map(|s| s.coords.keys())
        .filter(|n| {
            *n != concat_dim
                && scanned.iter().any(|s| {
                    s.meta
                        .vars
                        .get(*n)
                        .is_some_and(|v| v.dims.iter().any(|d| d == concat_dim))
                })
        })
        .collect();
    for name in along {
        let mut parts = Vec::new();
        for &i in first_files {
            let Some(values) = scanned[i].coords.get(name) else {
                return Err(IoError::store(
                    shown(&scanned[i].meta.path),
                    format!(
                        "has no coordinate {} but {} has: expected it in every file",
                        repr::quote(name),
                        shown(&scanned[first_files[0]].meta.path)
                    ),
                ));
            };
            parts.push(values.clone());
        }
        let s0 = &scanned[first_files[0]];
        let v0 = &s0.meta.vars[name];
        let axis = v0.dims.iter().position(|d| d == concat_dim).unwrap_or(0);
        let (c0, attrs, enc0) = &s0.codings[name];
        let mut encoding = store_encoding(enc0, c0);
        let dtype = match parts[0].dtype() {
            DType::DateTime(_, calendar) => {
                let (unit, units) = time_units_of(name, first_files, scanned, calendar)?;
                if units.iter().any(|u| u.format() != units[0].format()) {
                    encoding.insert("units".into(), json!(common_units(&units, calendar)?));
                    if !c0.stored.is_float() {
                        encoding.insert("dtype".into(), json!("int64"));
                    }
                }
                DType::DateTime(unit, calendar)
            }
            first => {
                let dtypes: Vec<DType> = parts.iter().map(Array::dtype).collect();
                common_dtype(&dtypes).ok_or_else(|| {
                    IoError::store(
                        shown(&s0.meta.path),
                        format!(
                            "coordinate {} holds {first} values here but other types in other files",
                            repr::quote(name)
                        ),
                    )
                })?
            }
        };
        for p in &mut parts {
            *p = match dtype {
                DType::DateTime(unit, _) => retick(p, unit)?,
                DType::String => p.clone(),
                other => p.astype(other)?,
            };
        }
        let refs: Vec<&Array> = parts.iter().collect();
        let values = Array::concat(axis, &refs)?;
        let v = Variable::new(v0.dims.clone(), values)?
            .with_attrs(attrs.clone())
            .with_encoding(encoding);
        coords.insert(name.clone(), v);
    }

    // data variables: layout, dtype, encoding, attributes
    let mut data_vars: IndexMap<String, VarSchema> = IndexMap::new();
    let mut layout: IndexMap<String, Layout> = IndexMap::new();
    for (set, files) in &group_list {
        for name in *set {
            let f0 = files[0];
            let v0 = &scanned[f0].meta.vars[name];
            let axis = v0.dims.iter().position(|d| d == concat_dim).expect("along");
            let mut pieces = Vec::new();
            let mut start = 0;
            for &i in *files {
                let v = &scanned[i].meta.vars[name];
                if v.dims != v0.dims {
                    return Err(IoError::store(
                        shown(&scanned[i].meta.path),
                        format!(
                            "variable {} has dimensions {} here but {} in {}",
                            repr::quote(name),
                            repr::tuple(v.dims.iter()),
                            repr::tuple(v0.dims.iter()),
                            shown(&scanned[f0].meta.path)
                        ),
                    ));
                }
                pieces.push((i, start, lengths[i]));
                start += lengths[i];
            }
            let codings: Vec<&Coding> =
                files.iter().map(|&i| &scanned[i].codings[name].0).collect();
            let decoded: Vec<DType> = codings.iter().map(|c| c.decoded).collect();
            let dtype = match decoded[0] {
                DType::DateTime(..) => decoded[0],
                _ => common_dtype(&decoded).ok_or_else(|| {
                    let k = decoded.iter().position(|&d| d != decoded[0]).unwrap_or(0);
                    IoError::store(
                        shown(&scanned[files[k]].meta.path),
                        format!(
                            "variable {} decodes to {} here but {} in {}: expected one dtype in every file",
                            repr::quote(name),
                            decoded[k],
                            decoded[0],
                            shown(&scanned[f0].meta.path)
                        ),
                    )
                })?,
            };
            let (c0, attrs, enc0) = &scanned[f0].codings[name];
            let mut encoding = store_encoding(enc0, c0);
            let mut dtype = dtype;
            if let DType::DateTime(_, calendar) = dtype {
                let (unit, units) = time_units_of(name, files, scanned, calendar)?;
                dtype = DType::DateTime(unit, calendar);
                if units.iter().any(|u| u.format() != units[0].format()) {
                    let chosen = common_units(&units, calendar)?;
                    notes.push(format!(
                        "{name}: the files' time units differ: stored as {} (every file's times are whole counts of it)",
                        repr::quote(&chosen)
                    ));
                    encoding.insert("units".into(), json!(chosen));
                    if !c0.stored.is_float() {
                        encoding.insert("dtype".into(), json!("int64"));
                    }
                }
            } else if let Some(k) = codings.iter().position(|c| packing(c) != packing(c0)) {
                // the first file's packing and the first that differs
                let between = format!(
                    "{} in {}, {} in {}",
                    describe_packing(c0),
                    first_path_of(scanned, f0),
                    describe_packing(codings[k]),
                    first_path_of(scanned, files[k]),
                );
                let plain_floats = codings
                    .iter()
                    .all(|c| c.stored.is_float() && c.scale.is_none() && c.offset.is_none());
                if plain_floats {
                    // only the fill or missing values differ: each file's
                    // masked as its own says, NaN marks them in the store
                    encoding.shift_remove("_FillValue");
                    encoding.shift_remove("missing_value");
                    notes.push(format!(
                        "{name}: fill values differ between files ({between}): NaN is the store's fill value"
                    ));
                } else {
                    // each file decoded with its own packing; stored as the
                    // decoded values, never re-packed with another file's
                    encoding = Attrs::new();
                    if dtype != DType::String {
                        encoding.insert("dtype".into(), json!(dtype.name()));
                    }
                    notes.push(format!(
                        "{name}: packing differs between files ({between}): stored unpacked as {}",
                        dtype.name()
                    ));
                }
            }
            let differing: Vec<String> = files
                .iter()
                .filter(|&&i| &scanned[i].codings[name].1 != attrs)
                .map(|&i| shown(&scanned[i].meta.path))
                .collect();
            if !differing.is_empty() {
                notes.push(format!(
                    "warning: {name}: attributes differ from {}'s in {} file{} ({}{}); kept the first file's",
                    first_path,
                    differing.len(),
                    if differing.len() == 1 { "" } else { "s" },
                    differing.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                    if differing.len() > 3 { ", ..." } else { "" }
                ));
            }
            data_vars.insert(
                name.clone(),
                VarSchema {
                    dims: v0.dims.clone(),
                    dtype,
                    attrs: attrs.clone(),
                    encoding,
                },
            );
            layout.insert(name.clone(), Layout::Concat { axis, pieces });
        }
    }
    // data variables without the concat dimension: from the first file
    // that has them
    for (i, s) in scanned.iter().enumerate() {
        for (name, v) in &s.meta.vars {
            if coord_names[i].contains(name)
                || data_vars.contains_key(name)
                || layout.contains_key(name)
            {
                continue;
            }
            if v.dims.iter().any(|d| d == concat_dim) {
                continue;
            }
            let (c, attrs, enc) = &s.codings[name];
            data_vars.insert(
                name.clone(),
                VarSchema {
                    dims: v.dims.clone(),
                    dtype: c.decoded,
                    attrs: attrs.clone(),
                    encoding: store_encoding(enc, c),
                },
            );
            layout.insert(name.clone(), Layout::Whole(i));
        }
    }

    let mut dim_sizes: IndexMap<String, u64> = IndexMap::new();
    for (d, &n) in &first.meta.dims {
        dim_sizes.insert(d.clone(), if d == concat_dim { total } else { n });
    }
    for (d, &(n, _)) in &sizes {
        dim_sizes.entry(d.clone()).or_insert(n);
    }
    // a char array's string-length dimension is not a dimension of the data
    let used: IndexSet<&String> = data_vars
        .values()
        .flat_map(|v| &v.dims)
        .chain(coords.values().flat_map(Variable::dims))
        .collect();
    dim_sizes.retain(|d, _| used.contains(d) || d == concat_dim);
    let mut attrs = first.meta.attrs.clone();
    attrs.shift_remove("coordinates");
    let template = Template::new(dim_sizes, data_vars, coords, attrs)?;
    // the first file's length (the first that has any steps)
    let first_length = first_files
        .iter()
        .map(|&i| lengths[i])
        .find(|&n| n > 0)
        .unwrap_or(1);
    let chunks = IndexMap::from([(concat_dim.to_owned(), first_length)]);
    let vars = scanned
        .iter()
        .map(|s| {
            s.meta
                .vars
                .iter()
                .map(|(n, v)| (n.clone(), (v.clone(), s.codings[n].0.clone())))
                .collect()
        })
        .collect();
    let _ = first_path;
    Ok(NetcdfSource {
        paths: paths.to_vec(),
        concat_dim: concat_dim.to_owned(),
        template,
        chunks,
        vars,
        layout,
        lengths,
        notes,
        open: Mutex::new(VecDeque::new()),
    })
}

fn first_path_of(scanned: &[Scanned], i: usize) -> String {
    shown(&scanned[i].meta.path)
}

impl NetcdfSource {
    /// The files, in the order they are concatenated.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The dimension the files are concatenated along.
    pub fn concat_dim(&self) -> &str {
        &self.concat_dim
    }

    /// Each file's length along the concat dimension.
    pub fn lengths(&self) -> &[u64] {
        &self.lengths
    }

    /// What was reconciled between the files (time units, packing stored
    /// unpacked) and warnings (variable attributes that differ), one
    /// sentence each.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The same source with its concat coordinate's datetimes in ticks of
    /// `unit` (to continue a store whose index has that unit); an error
    /// when a time is not a whole number of them.
    pub fn with_index_unit(mut self, unit: TimeUnit) -> Result<NetcdfSource, IoError> {
        let Some(index) = self.template.coords().get(&self.concat_dim) else {
            return Ok(self);
        };
        let DType::DateTime(from, _) = index.dtype() else {
            return Ok(self);
        };
        if from == unit {
            return Ok(self);
        }
        let values = retick(index.data(), unit)?;
        if values.dtype() == index.dtype() {
            return Err(IoError::Invalid(format!(
                "{} holds times that are not whole {}",
                repr::quote(&self.concat_dim),
                unit.name()
            )));
        }
        let var = Variable::new(index.dims().to_vec(), values)?
            .with_attrs(index.attrs().clone())
            .with_encoding(index.encoding().clone());
        let t = &self.template;
        let mut coords = t.coords().clone();
        coords.insert(self.concat_dim.clone(), var);
        self.template = Template::new(
            t.sizes().clone(),
            t.data_vars().clone(),
            coords,
            t.attrs().clone(),
        )?;
        Ok(self)
    }

    /// An open handle on file `i`, from the few kept open.
    fn file(&self, i: usize) -> Result<Arc<OpenFile>, IoError> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(k) = open.iter().position(|(j, _)| *j == i) {
            let entry = open.remove(k).expect("found");
            let file = entry.1.clone();
            open.push_front(entry);
            return Ok(file);
        }
        drop(open);
        let path = &self.paths[i];
        let raw = std::fs::File::open(path)
            .map_err(|e| IoError::file(path.display(), "cannot open", e))?;
        let file = Arc::new(OpenFile {
            nc: open_file(path)?,
            raw,
        });
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        open.push_front((i, file.clone()));
        open.truncate(OPEN_FILES);
        Ok(file)
    }

    /// Decodes values of variable `name` stored as file `i` stores them,
    /// as `dtype`.
    fn decode(&self, i: usize, name: &str, raw: Array, dtype: DType) -> Result<Array, IoError> {
        let path = &self.paths[i];
        let values = self.vars[i][name]
            .1
            .decode(raw)
            .map_err(|e| e.at(format!("{}:{name}", path.display())))?;
        if values.dtype() == dtype {
            return Ok(values);
        }
        match dtype {
            DType::DateTime(unit, _) => retick(&values, unit),
            other => Ok(values.astype(other)?),
        }
    }

    /// Reads `ranges` of variable `name` from file `i`, decoded with its own
    /// coding, as `dtype`.
    fn read_part(
        &self,
        i: usize,
        name: &str,
        ranges: &[Range<u64>],
        dtype: DType,
    ) -> Result<Array, IoError> {
        let (var, _) = &self.vars[i][name];
        let path = &self.paths[i];
        let file = self.file(i)?;
        let raw = match (var.direct, direct_buffer(var.stored(), 0)) {
            (Some(direct), Some(_)) => {
                let shape: Vec<usize> = ranges.iter().map(|r| (r.end - r.start) as usize).collect();
                let mut buf = direct_buffer(var.stored(), shape.iter().product()).expect("numeric");
                read_direct_into(path, &file.raw, var, direct, ranges, buf.bytes())?;
                buf.into_array(shape)?
            }
            _ => read_raw(path, &file.nc, var, ranges)?,
        };
        self.decode(i, name, raw, dtype)
    }

    /// Reads the parts of one region (from one file or several) into one
    /// buffer, when all share one coding and the parts are contiguous
    /// blocks of the region (the concat dimension first, or single
    /// elements before it): contiguous runs straight from the file, chunked
    /// variables a row of HDF5 chunks at a time; `None` otherwise.
    fn read_pieces(
        &self,
        name: &str,
        axis: usize,
        ranges: &[Range<u64>],
        parts: &[(usize, Range<u64>)],
        dtype: DType,
    ) -> Option<Result<Array, IoError>> {
        if !ranges[..axis].iter().all(|r| r.end - r.start <= 1) {
            return None;
        }
        let (first, c0) = &self.vars[parts[0].0][name];
        if parts.iter().any(|(i, _)| {
            let (v, c) = &self.vars[*i][name];
            (v.direct.is_none() && v.chunks.is_none())
                || v.stored() != first.stored()
                || !same_coding(c, c0)
        }) {
            return None;
        }
        let shape: Vec<usize> = ranges.iter().map(|r| (r.end - r.start) as usize).collect();
        let mut buf = direct_buffer(first.stored(), shape.iter().product())?;
        let per: usize = shape
            .iter()
            .enumerate()
            .filter(|&(d, _)| d != axis)
            .map(|(_, &n)| n)
            .product::<usize>()
            * first.stored().itemsize();
        let read = || -> Result<(), IoError> {
            let bytes = buf.bytes();
            let mut at = 0;
            for (i, r) in parts {
                let (var, _) = &self.vars[*i][name];
                let path = &self.paths[*i];
                let file = self.file(*i)?;
                let mut part = ranges.to_vec();
                part[axis] = r.clone();
                if let Some(direct) = var.direct {
                    let len = (r.end - r.start) as usize * per;
                    read_direct_into(
                        path,
                        &file.raw,
                        var,
                        direct,
                        &part,
                        &mut bytes[at..at + len],
                    )?;
                    at += len;
                    continue;
                }
                // a row of chunks at a time, aligned to the chunk grid
                let rows = var.chunks.as_ref().map_or(1, |c| c[axis].max(1));
                let mut lo = r.start;
                while lo < r.end {
                    let hi = ((lo / rows + 1) * rows).min(r.end);
                    part[axis] = lo..hi;
                    let piece = read_raw(path, &file.nc, var, &part)?;
                    let src = array_bytes(&piece).ok_or_else(|| {
                        IoError::Invalid(format!("variable {name:?}: a piece read is not numeric"))
                    })?;
                    bytes[at..at + src.len()].copy_from_slice(src);
                    at += src.len();
                    lo = hi;
                }
            }
            Ok(())
        }();
        Some(read.and_then(|()| {
            let raw = buf.into_array(shape)?;
            self.decode(parts[0].0, name, raw, dtype)
        }))
    }

    /// Reads one variable's region.
    fn read_var(
        &self,
        name: &str,
        region: &IndexMap<String, Range<u64>>,
    ) -> Result<Variable, IoError> {
        let schema = &self.template.data_vars()[name];
        let sizes = self.template.sizes();
        let ranges: Vec<Range<u64>> = schema
            .dims
            .iter()
            .map(|d| region.get(d).cloned().unwrap_or(0..sizes[d]))
            .collect();
        let data = match &self.layout[name] {
            Layout::Whole(i) => self.read_part(*i, name, &ranges, schema.dtype)?,
            Layout::Concat { axis, pieces } => {
                let want = ranges[*axis].clone();
                let parts: Vec<(usize, Range<u64>)> = pieces
                    .iter()
                    .filter_map(|&(i, start, len)| {
                        let (lo, hi) = (want.start.max(start), want.end.min(start + len));
                        (lo < hi).then(|| (i, lo - start..hi - start))
                    })
                    .collect();
                if let Some(done) = (!parts.is_empty())
                    .then(|| self.read_pieces(name, *axis, &ranges, &parts, schema.dtype))
                    .flatten()
                {
                    done?
                } else if parts.len() > 1 {
                    let mut read = Vec::new();
                    for (i, r) in &parts {
                        let mut part = ranges.clone();
                        part[*axis] = r.clone();
                        read.push(self.read_part(*i, name, &part, schema.dtype)?);
                    }
                    let refs: Vec<&Array> = read.iter().collect();
                    Array::concat(*axis, &refs)?
                } else if let Some((i, r)) = parts.first() {
                    let mut part = ranges.clone();
                    part[*axis] = r.clone();
                    self.read_part(*i, name, &part, schema.dtype)?
                } else {
                    let shape: Vec<usize> =
                        ranges.iter().map(|r| (r.end - r.start) as usize).collect();
                    Array::full(schema.dtype, &shape, f64::NAN)?
                }
            }
        };
        Ok(Variable::new(schema.dims.clone(), data)?
            .with_attrs(schema.attrs.clone())
            .with_encoding(schema.encoding.clone()))
    }
}

impl ChunkSource for NetcdfSource {
    fn template(&self) -> &Template {
        &self.template
    }

    /// The first file's length along the concat dimension (later files may
    /// be longer or shorter); other dimensions whole.
    fn chunks(&self) -> &IndexMap<String, u64> {
        &self.chunks
    }

    fn read(
        &self,
        region: &IndexMap<String, Range<u64>>,
        vars: Option<&VarSet>,
    ) -> Result<Dataset, IoError> {
        let what = self.describe();
        let names = check_read(&what, &self.template, region, vars)?;
        let read: Vec<Result<(String, Variable), IoError>> = names
            .par_iter()
            .map(|name| Ok(((*name).clone(), self.read_var(name, region)?)))
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

    fn describe(&self) -> String {
        match self.paths.as_slice() {
            [one] => one.display().to_string(),
            many => format!(
                "{} NetCDF files ({} ... {})",
                many.len(),
                many[0].display(),
                many[many.len() - 1].display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_units_hold_every_files_times() {
        let cal = Calendar::Standard;
        let parse = |u: &str| CfUnits::parse(u, cal).unwrap();
        // the finest unit, since the earliest reference
        let u = common_units(
            &[
                parse("days since 2004-02-01"),
                parse("hours since 2004-01-01"),
            ],
            cal,
        );
        assert_eq!(u.unwrap(), "hours since 2004-01-01");
        // references half a day apart need hours even when both are days
        let u = common_units(
            &[
                parse("days since 2004-01-01"),
                parse("days since 2004-01-01 12:00"),
            ],
            cal,
        );
        assert_eq!(u.unwrap(), "hours since 2004-01-01");
    }

    #[test]
    fn packed_values_unpack_to_xarrays_float_type() {
        let var = |types: &[(&str, DType)]| NcVar {
            name: "p".into(),
            dims: vec![],
            shape: vec![],
            kind: super::super::file::Kind::Number(DType::I16),
            attrs: Attrs::new(),
            attr_types: types.iter().map(|(k, t)| ((*k).to_owned(), *t)).collect(),
            direct: None,
            chunks: None,
        };
        let both32 = var(&[("scale_factor", DType::F32), ("add_offset", DType::F32)]);
        assert_eq!(unpacked_dtype(DType::I16, &both32), DType::F32);
        assert_eq!(unpacked_dtype(DType::I32, &both32), DType::F64);
        let scale32 = var(&[("scale_factor", DType::F32)]);
        assert_eq!(unpacked_dtype(DType::I16, &scale32), DType::F32);
        let mixed = var(&[("scale_factor", DType::F32), ("add_offset", DType::F64)]);
        assert_eq!(unpacked_dtype(DType::I16, &mixed), DType::F64);
    }
}
