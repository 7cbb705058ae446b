//! [`Dataset`]: named data variables and coordinates sharing dimensions.

use std::ops::Range;
use std::sync::Arc;

use indexmap::{IndexMap, IndexSet};
use serde::{Deserialize, Serialize};
use xbeam_key::{repr, row_major_strides, unravel};

use crate::error::{bail, ensure};
use crate::wire::{attrs_json, shared_attrs_json};
use crate::{Array, Attrs, ChunkError, DType, Reduction, Variable};

/// Variables by name, in insertion order.
pub type Variables = IndexMap<String, Variable>;

/// A labeled dataset, as `xarray.Dataset`: data variables and coordinates
/// (insertion-ordered) whose dimensions agree in size, plus attributes.
///
/// ```
/// use xbeam_chunk::{Array, Dataset, Variable};
///
/// let ds = Dataset::new()
///     .with_coord("x", Variable::new(["x"], Array::from_1d(vec![10i64, 20, 30]))?)?
///     .with_data_var("foo", Variable::new(["x"], Array::from_1d(vec![1.0f64, 2.0, 3.0]))?)?;
/// assert_eq!(ds.sizes()["x"], 3);
/// let head = ds.isel([("x", 0..2)])?;
/// assert_eq!(head.coord("x")?.data().as_view::<i64>()?.as_slice().unwrap(), &[10, 20]);
/// # Ok::<(), xbeam_chunk::ChunkError>(())
/// ```
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(try_from = "RawDataset")]
pub struct Dataset {
    data_vars: Variables,
    coords: Variables,
    /// Shared between the chunks split from one dataset (copied on write).
    #[serde(with = "attrs_json")]
    attrs: Arc<Attrs>,
}

#[derive(Deserialize)]
struct RawDataset {
    data_vars: Variables,
    coords: Variables,
    #[serde(deserialize_with = "shared_attrs_json::deserialize")]
    attrs: Arc<Attrs>,
}

impl TryFrom<RawDataset> for Dataset {
    type Error = ChunkError;
    fn try_from(raw: RawDataset) -> Result<Dataset, ChunkError> {
        Dataset::from_shared_parts(raw.data_vars, raw.coords, raw.attrs)
    }
}

/// How [`Dataset::sel`] picks labels along a 1-D coordinate.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Labels {
    /// Every position whose label lies between the two, inclusive (as
    /// pandas' label slices), in either order.
    Between(Label, Label),
    /// The positions of exactly these labels, in this order; every label must
    /// be present.
    Exactly(Vec<Label>),
}

/// One coordinate label for [`Dataset::sel`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Label {
    /// A number (compared with numeric coordinates).
    Number(f64),
    /// A string.
    Str(String),
    /// A date-time in the coordinate's calendar (e.g. `"2020-01-01T06"` is
    /// written `Label::Time(DateTime::parse("2020-01-01 06:00")?)`).
    Time(crate::calendar::DateTime),
}

impl From<f64> for Label {
    fn from(v: f64) -> Label {
        Label::Number(v)
    }
}

impl From<i64> for Label {
    fn from(v: i64) -> Label {
        Label::Number(v as f64)
    }
}

impl From<&str> for Label {
    fn from(v: &str) -> Label {
        Label::Str(v.to_owned())
    }
}

impl Dataset {
    /// The empty dataset.
    pub fn new() -> Dataset {
        Dataset::default()
    }

    /// A dataset from parts, checking that dimension sizes agree and that
    /// no name is both a data variable and a coordinate.
    pub fn from_parts(
        data_vars: Variables,
        coords: Variables,
        attrs: Attrs,
    ) -> Result<Dataset, ChunkError> {
        Dataset::from_shared_parts(data_vars, coords, Arc::new(attrs))
    }

    fn from_shared_parts(
        data_vars: Variables,
        coords: Variables,
        attrs: Arc<Attrs>,
    ) -> Result<Dataset, ChunkError> {
        let mut ds = Dataset {
            attrs,
            ..Dataset::default()
        };
        for (name, var) in coords {
            ds.insert_coord(name, var)?;
        }
        for (name, var) in data_vars {
            ds.insert_data_var(name, var)?;
        }
        Ok(ds)
    }

    /// With a data variable added (or replaced).
    pub fn with_data_var(
        mut self,
        name: impl Into<String>,
        var: Variable,
    ) -> Result<Dataset, ChunkError> {
        self.insert_data_var(name, var)?;
        Ok(self)
    }

    /// With a coordinate added (or replaced).
    pub fn with_coord(
        mut self,
        name: impl Into<String>,
        var: Variable,
    ) -> Result<Dataset, ChunkError> {
        self.insert_coord(name, var)?;
        Ok(self)
    }

    /// With the attributes replaced.
    pub fn with_attrs(mut self, attrs: Attrs) -> Dataset {
        self.attrs = Arc::new(attrs);
        self
    }

    /// Adds (or replaces) a data variable.
    pub fn insert_data_var(
        &mut self,
        name: impl Into<String>,
        var: Variable,
    ) -> Result<(), ChunkError> {
        self.insert(name.into(), var, false)
    }

    /// Adds (or replaces) a coordinate.
    pub fn insert_coord(
        &mut self,
        name: impl Into<String>,
        var: Variable,
    ) -> Result<(), ChunkError> {
        self.insert(name.into(), var, true)
    }

    fn insert(&mut self, name: String, var: Variable, as_coord: bool) -> Result<(), ChunkError> {
        let (taken, kind) = if as_coord {
            (self.data_vars.contains_key(&name), "a data variable")
        } else {
            (self.coords.contains_key(&name), "a coordinate")
        };
        ensure!(!taken, Invalid, "{} is already {kind}", repr::quote(&name));
        self.check_sizes(&name, &var)?;
        let map = if as_coord {
            &mut self.coords
        } else {
            &mut self.data_vars
        };
        map.insert(name, var);
        Ok(())
    }

    fn check_sizes(&self, name: &str, var: &Variable) -> Result<(), ChunkError> {
        for (dim, size) in var.sizes() {
            let existing = self
                .variables()
                .filter(|(n, _)| n.as_str() != name)
                .find_map(|(_, v)| v.size_of(dim));
            if let Some(first) = existing.filter(|&s| s != size) {
                return Err(ChunkError::SizeConflict {
                    dim: repr::quote(dim),
                    first: first as u64,
                    second: size as u64,
                    var: repr::quote(name),
                });
            }
        }
        Ok(())
    }

    /// The data variables.
    pub fn data_vars(&self) -> &Variables {
        &self.data_vars
    }

    /// The coordinates.
    pub fn coords(&self) -> &Variables {
        &self.coords
    }

    /// The attributes.
    pub fn attrs(&self) -> &Attrs {
        &self.attrs
    }

    /// The attributes, to change.
    pub fn attrs_mut(&mut self) -> &mut Attrs {
        Arc::make_mut(&mut self.attrs)
    }

    /// Every variable: coordinates first, then data variables.
    pub fn variables(&self) -> impl Iterator<Item = (&String, &Variable)> {
        self.coords.iter().chain(self.data_vars.iter())
    }

    /// A data variable by name.
    pub fn data_var(&self, name: &str) -> Result<&Variable, ChunkError> {
        self.data_vars
            .get(name)
            .ok_or_else(|| ChunkError::NotFound {
                what: "data variable",
                name: repr::quote(name),
                available: repr::tuple(self.data_vars.keys()),
            })
    }

    /// A coordinate by name.
    pub fn coord(&self, name: &str) -> Result<&Variable, ChunkError> {
        self.coords.get(name).ok_or_else(|| ChunkError::NotFound {
            what: "coordinate",
            name: repr::quote(name),
            available: repr::tuple(self.coords.keys()),
        })
    }

    /// The coordinate that indexes `dim`: 1-D, named like the dimension.
    pub fn index(&self, dim: &str) -> Option<&Variable> {
        self.coords.get(dim).filter(|v| v.is_index(dim))
    }

    /// Dimension sizes: dimensions of data variables in order of first
    /// appearance, then dimensions only coordinates have.
    pub fn sizes(&self) -> IndexMap<String, u64> {
        let mut out = IndexMap::new();
        for (_, v) in self.data_vars.iter().chain(self.coords.iter()) {
            for (d, n) in v.sizes() {
                out.entry(d.to_owned()).or_insert(n as u64);
            }
        }
        out
    }

    /// The dimension names (see [`Dataset::sizes`] for the order).
    pub fn dims(&self) -> Vec<String> {
        self.sizes().into_keys().collect()
    }

    /// Whether the dataset has no variables.
    pub fn is_empty(&self) -> bool {
        self.data_vars.is_empty() && self.coords.is_empty()
    }

    /// Bytes of data of every variable.
    pub fn nbytes(&self) -> usize {
        self.variables().map(|(_, v)| v.nbytes()).sum()
    }

    /// Whether some variable has dimension `dim` (without building
    /// [`Dataset::sizes`]).
    pub(crate) fn has_dim(&self, dim: &str) -> bool {
        self.variables().any(|(_, v)| v.axis(dim).is_some())
    }

    fn check_dims<S: AsRef<str>>(
        &self,
        dims: impl IntoIterator<Item = S>,
    ) -> Result<(), ChunkError> {
        let missing: Vec<String> = dims
            .into_iter()
            .filter(|d| !self.has_dim(d.as_ref()))
            .map(|d| d.as_ref().to_owned())
            .collect();
        ensure!(
            missing.is_empty(),
            Invalid,
            "dimensions {} do not exist: expected one or more of {}",
            repr::set(&missing),
            repr::tuple(self.sizes().keys())
        );
        Ok(())
    }

    fn map_vars(
        &self,
        f: impl Fn(&Variable) -> Result<Variable, ChunkError>,
    ) -> Result<Dataset, ChunkError> {
        // Callers (isel, take, transpose, layout) change every variable's
        // sizes alike, so the dataset's consistency needs no re-check.
        let map = |vars: &Variables| -> Result<Variables, ChunkError> {
            vars.iter().map(|(n, v)| Ok((n.clone(), f(v)?))).collect()
        };
        Ok(Dataset {
            data_vars: map(&self.data_vars)?,
            coords: map(&self.coords)?,
            attrs: self.attrs.clone(),
        })
    }

    /// The elements in `ranges` (element positions) along named dimensions;
    /// every variable with that dimension is sliced. Shares buffers.
    pub fn isel<S: AsRef<str>>(
        &self,
        ranges: impl IntoIterator<Item = (S, Range<u64>)>,
    ) -> Result<Dataset, ChunkError> {
        let ranges: IndexMap<String, Range<usize>> = ranges
            .into_iter()
            .map(|(d, r)| (d.as_ref().to_owned(), r.start as usize..r.end as usize))
            .collect();
        self.check_dims(ranges.keys())?;
        self.map_vars(|v| v.isel(&ranges))
    }

    /// [`Dataset::isel`] along dimensions the caller knows exist.
    pub(crate) fn isel_existing(
        &self,
        ranges: &[(&str, Range<usize>)],
    ) -> Result<Dataset, ChunkError> {
        debug_assert!(ranges.iter().all(|(d, _)| self.has_dim(d)));
        self.map_vars(|v| v.isel_slices(ranges.iter().map(|(d, r)| (*d, r))))
    }

    /// The elements at `indices` along `dim`.
    pub fn take(&self, dim: &str, indices: &[usize]) -> Result<Dataset, ChunkError> {
        self.check_dims([dim])?;
        self.map_vars(|v| v.take(dim, indices))
    }

    /// Label-based selection along the 1-D coordinate of `dim`.
    ///
    /// ```
    /// use xbeam_chunk::{Array, Dataset, Label, Labels, Variable};
    /// let ds = Dataset::new()
    ///     .with_coord("lat", Variable::new(["lat"], Array::from_1d(vec![90.0, 45.0, 0.0, -45.0]))?)?;
    /// let band = ds.sel("lat", &Labels::Between(Label::from(50.0), Label::from(-10.0)))?;
    /// assert_eq!(band.sizes()["lat"], 2);
    /// let pick = ds.sel("lat", &Labels::Exactly(vec![Label::from(0.0), Label::from(90.0)]))?;
    /// assert_eq!(pick.coord("lat")?.data().as_view::<f64>()?.as_slice().unwrap(), &[0.0, 90.0]);
    /// # Ok::<(), xbeam_chunk::ChunkError>(())
    /// ```
    pub fn sel(&self, dim: &str, labels: &Labels) -> Result<Dataset, ChunkError> {
        let Some(index) = self.index(dim) else {
            bail!(
                Invalid,
                "cannot select by label along {}: it has no 1-D coordinate of the same name",
                repr::quote(dim)
            )
        };
        let keys = label_keys(index.data())?;
        let key_of = |l: &Label| label_key(l, index.data());
        let positions: Vec<usize> = match labels {
            Labels::Between(a, b) => {
                let (a, b) = (key_of(a)?, key_of(b)?);
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                keys.iter()
                    .enumerate()
                    .filter(|(_, k)| **k >= lo && **k <= hi)
                    .map(|(i, _)| i)
                    .collect()
            }
            Labels::Exactly(wanted) => wanted
                .iter()
                .map(|l| {
                    let k = key_of(l)?;
                    keys.iter().position(|x| *x == k).ok_or_else(|| {
                        ChunkError::Invalid(format!(
                            "label {l:?} is not in the coordinate {}",
                            repr::quote(dim)
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let contiguous = positions.windows(2).all(|w| w[1] == w[0] + 1);
        match (contiguous, positions.first(), positions.last()) {
            (true, Some(&a), Some(&b)) => self.isel([(dim, a as u64..b as u64 + 1)]),
            (true, _, _) => self.isel([(dim, 0..0)]),
            (false, _, _) => self.take(dim, &positions),
        }
    }

    /// Only the named data variables, with the coordinates whose dimensions
    /// they all have (as `ds[[names]]` in xarray).
    pub fn select_vars<S: AsRef<str>>(&self, names: &[S]) -> Result<Dataset, ChunkError> {
        let data_vars: Variables = names
            .iter()
            .map(|n| Ok((n.as_ref().to_owned(), self.data_var(n.as_ref())?.clone())))
            .collect::<Result<_, ChunkError>>()?;
        let dims: IndexSet<&String> = data_vars.values().flat_map(Variable::dims).collect();
        let coords = self
            .coords
            .iter()
            .filter(|(_, c)| c.dims().iter().all(|d| dims.contains(d)))
            .map(|(n, c)| (n.clone(), c.clone()))
            .collect();
        Ok(Dataset {
            data_vars,
            coords,
            attrs: self.attrs.clone(),
        })
    }

    /// Without the named variables (data variables or coordinates).
    pub fn drop_vars<S: AsRef<str>>(&self, names: &[S]) -> Result<Dataset, ChunkError> {
        let mut out = self.clone();
        for n in names {
            let n = n.as_ref();
            if out.data_vars.shift_remove(n).is_none() && out.coords.shift_remove(n).is_none() {
                bail!(
                    Invalid,
                    "cannot drop {}: it is not a variable of the dataset, which has {}",
                    repr::quote(n),
                    repr::tuple(self.variables().map(|(k, _)| k))
                );
            }
        }
        Ok(out)
    }

    /// Each variable's dimensions reordered: those in `order` first, in that
    /// order, then the rest. Every name must be a dimension.
    pub fn transpose<S: AsRef<str>>(&self, order: &[S]) -> Result<Dataset, ChunkError> {
        self.check_dims(order.iter().map(AsRef::as_ref))?;
        self.map_vars(|v| v.transpose(order))
    }

    /// Renames variables, coordinates and dimensions (`old → new`).
    pub fn rename<S: AsRef<str>>(&self, map: &[(S, S)]) -> Result<Dataset, ChunkError> {
        let map: IndexMap<String, String> = map
            .iter()
            .map(|(a, b)| (a.as_ref().to_owned(), b.as_ref().to_owned()))
            .collect();
        let dims = self.sizes();
        for old in map.keys() {
            ensure!(
                dims.contains_key(old) || self.variables().any(|(n, _)| n == old),
                Invalid,
                "cannot rename {}: it is not a variable or dimension of the dataset",
                repr::quote(old)
            );
        }
        let mut names = IndexSet::new();
        let mut rename = |vars: &Variables| -> Result<Variables, ChunkError> {
            vars.iter()
                .map(|(n, v)| {
                    let new = map.get(n).unwrap_or(n).clone();
                    ensure!(
                        names.insert(new.clone()),
                        Invalid,
                        "cannot rename: two variables would be named {}",
                        repr::quote(&new)
                    );
                    Ok((new, v.rename_dims(&map)?))
                })
                .collect()
        };
        let coords = rename(&self.coords)?;
        let data_vars = rename(&self.data_vars)?;
        Dataset::from_shared_parts(data_vars, coords, self.attrs.clone())
    }

    /// Every data variable converted to `dtype`.
    pub fn astype(&self, dtype: DType) -> Result<Dataset, ChunkError> {
        self.map_data(|a| a.astype(dtype))
    }

    /// `f` applied to every value of every data variable (see
    /// [`Array::map_f64`]); coordinates are unchanged.
    pub fn map_f64(&self, f: impl Fn(f64) -> f64) -> Result<Dataset, ChunkError> {
        self.map_data(|a| a.map_f64(&f))
    }

    /// Every data variable's data replaced by `f` of it (same shape).
    fn map_data(
        &self,
        f: impl Fn(&Array) -> Result<Array, ChunkError>,
    ) -> Result<Dataset, ChunkError> {
        let data_vars = self
            .data_vars
            .iter()
            .map(|(n, v)| Ok((n.clone(), v.with_data(f(v.data())?)?)))
            .collect::<Result<_, ChunkError>>()?;
        Ok(Dataset {
            data_vars,
            ..self.clone()
        })
    }

    /// Reduces every data variable over the named dimensions it has,
    /// skipping missing values; coordinates along them are dropped, and so
    /// are attributes (xarray's default).
    ///
    /// ```
    /// use xbeam_chunk::{Array, Dataset, Reduction, Variable};
    /// let ds = Dataset::new().with_data_var("t", Variable::new(["time", "x"],
    ///     Array::from_vec(vec![2, 2], vec![1.0, 2.0, 3.0, f64::NAN])?)?)?;
    /// let mean = ds.reduce(Reduction::Mean, &["time"])?;
    /// assert_eq!(mean.data_var("t")?.data().as_view::<f64>()?.as_slice().unwrap(), &[2.0, 2.0]);
    /// # Ok::<(), xbeam_chunk::ChunkError>(())
    /// ```
    pub fn reduce<S: AsRef<str>>(&self, op: Reduction, dims: &[S]) -> Result<Dataset, ChunkError> {
        self.check_dims(dims.iter().map(AsRef::as_ref))?;
        let data_vars = self
            .data_vars
            .iter()
            .map(|(n, v)| Ok((n.clone(), v.reduce(op, dims)?)))
            .collect::<Result<_, ChunkError>>()?;
        let coords = self
            .coords
            .iter()
            .filter(|(_, c)| !dims.iter().any(|d| c.axis(d.as_ref()).is_some()))
            .map(|(n, c)| (n.clone(), c.clone()))
            .collect();
        Dataset::from_parts(data_vars, coords, Attrs::new())
    }

    /// Concatenates datasets along `dim` (xarray's `concat` with
    /// `data_vars='minimal', coords='minimal', join='exact'`): variables
    /// with `dim` are concatenated, all others must be equal across the
    /// datasets; attributes come from the first.
    pub fn concat(datasets: &[&Dataset], dim: &str) -> Result<Dataset, ChunkError> {
        Dataset::combine_nested(datasets, &[datasets.len()], &[dim])
    }

    /// Combines a grid of datasets in one pass (xarray's `combine_nested`
    /// with `data_vars='minimal', coords='minimal', join='exact',
    /// combine_attrs='override'`): `grid` is in C order over `dims`, with
    /// `shape[i]` datasets along `dims[i]`. Each variable is assembled along
    /// the grid dimensions it has (one copy, whatever the number of
    /// dimensions); along the others its pieces must be equal. Variables may
    /// come in different dimension orders; the first's order wins.
    pub fn combine_nested(
        grid: &[&Dataset],
        shape: &[usize],
        dims: &[&str],
    ) -> Result<Dataset, ChunkError> {
        let cells: usize = shape.iter().product();
        ensure!(
            dims.len() == shape.len() && cells == grid.len() && cells > 0,
            Invalid,
            "expected {cells} datasets for a grid of {shape:?} over {}, found {}",
            repr::tuple(dims),
            grid.len()
        );
        let first = grid[0];
        if grid.len() == 1 {
            return Ok(first.clone());
        }
        let strides = row_major_strides(shape);
        let combine =
            |get: fn(&Dataset) -> &Variables, kind: &str| -> Result<Variables, ChunkError> {
                let names: IndexSet<&String> = get(first).keys().collect();
                for ds in &grid[1..] {
                    let other: IndexSet<&String> = get(ds).keys().collect();
                    ensure!(
                        names == other,
                        Mismatch,
                        "cannot concatenate datasets with different {kind}: {} vs {}",
                        repr::tuple(names.iter()),
                        repr::tuple(other.iter())
                    );
                }
                get(first)
                    .iter()
                    .map(|(name, v)| {
                        let all: Vec<&Variable> = grid.iter().map(|ds| &get(ds)[name]).collect();
                        combine_variable(name, kind, v, &all, shape, dims, &strides)
                            .map(|c| (name.clone(), c))
                    })
                    .collect()
            };
        let coords = combine(|d| &d.coords, "coordinates")?;
        let data_vars = combine(|d| &d.data_vars, "data variables")?;
        Dataset::from_shared_parts(data_vars, coords, first.attrs.clone())
    }

    /// Merges datasets with disjoint data variables (xarray's `merge` with
    /// `compat='equals', join='exact', combine_attrs='override'`): shared
    /// coordinates must be equal; attributes come from the first.
    pub fn merge(datasets: &[&Dataset]) -> Result<Dataset, ChunkError> {
        let mut out = match datasets.first() {
            Some(first) => (*first).clone(),
            None => return Ok(Dataset::new()),
        };
        for ds in &datasets[1..] {
            for (name, c) in &ds.coords {
                match out.coords.get(name) {
                    Some(existing) if !existing.equals(c) => {
                        bail!(
                            Mismatch,
                            "coordinate {} differs between datasets: {:?} vs {:?}",
                            repr::quote(name),
                            existing,
                            c
                        )
                    }
                    Some(_) => {}
                    None => out.insert_coord(name.clone(), c.clone())?,
                }
            }
            for (name, v) in &ds.data_vars {
                ensure!(
                    !out.data_vars.contains_key(name),
                    Mismatch,
                    "data variable {} is in more than one dataset",
                    repr::quote(name)
                );
                out.insert_data_var(name.clone(), v.clone())?;
            }
        }
        Ok(out)
    }

    /// Same variables (names, dims, dtypes, values; NaN equals NaN),
    /// attributes ignored.
    pub fn equals(&self, other: &Dataset) -> bool {
        self.vars_match(other, Variable::equals)
    }

    /// Like [`Dataset::equals`], and all attributes are equal too.
    pub fn identical(&self, other: &Dataset) -> bool {
        self.attrs == other.attrs && self.vars_match(other, Variable::identical)
    }

    /// Like [`Dataset::equals`] with numeric values compared within
    /// `atol + rtol × |other|`.
    pub fn allclose(&self, other: &Dataset, rtol: f64, atol: f64) -> bool {
        self.vars_match(other, |v, w| {
            v.dims() == w.dims() && v.data().allclose(w.data(), rtol, atol)
        })
    }

    /// Whether both datasets have the same data variables and coordinates by
    /// name, each pair satisfying `same`.
    fn vars_match(&self, other: &Dataset, same: impl Fn(&Variable, &Variable) -> bool) -> bool {
        let all = |a: &Variables, b: &Variables| {
            a.len() == b.len() && a.iter().all(|(n, v)| b.get(n).is_some_and(|w| same(v, w)))
        };
        all(&self.data_vars, &other.data_vars) && all(&self.coords, &other.coords)
    }

    /// Every variable's data in a contiguous row-major buffer (copies only
    /// what is a strided view).
    pub fn to_standard_layout(&self) -> Dataset {
        self.map_vars(|v| v.with_data(v.data().to_standard_layout()))
            .expect("layout does not change shapes")
    }

    /// Every data variable copied into a buffer of its own
    /// ([`Array::compact`]): a chunk split from a larger one no longer keeps
    /// the larger one alive. Coordinates (small, shared) are kept as they
    /// are.
    pub fn compact(&self) -> Dataset {
        let data_vars = self
            .data_vars
            .iter()
            .map(|(name, v)| (name.clone(), v.with_assembled_data(v.data().compact())))
            .collect();
        Dataset {
            data_vars,
            coords: self.coords.clone(),
            attrs: self.attrs.clone(),
        }
    }
}

/// One variable of [`Dataset::combine_nested`]: check the pieces along grid
/// dimensions it lacks are equal, then assemble it along the ones it has.
fn combine_variable(
    name: &str,
    kind: &str,
    first: &Variable,
    all: &[&Variable],
    shape: &[usize],
    dims: &[&str],
    strides: &[usize],
) -> Result<Variable, ChunkError> {
    for (a, dim) in dims.iter().enumerate() {
        if first.axis(dim).is_some() || shape[a] == 1 {
            continue;
        }
        for (flat, piece) in all.iter().enumerate() {
            let base = all[flat - flat / strides[a] % shape[a] * strides[a]];
            if !piece.equals(base) {
                bail!(Mismatch, "{kind} {} without dimension {} differs between datasets: {base:?} vs {piece:?}", repr::quote(name), repr::quote(dim));
            }
        }
    }
    // The variable's own block grid, in its dimension order.
    let var_axes: Vec<Option<usize>> = first
        .dims()
        .iter()
        .map(|d| dims.iter().position(|g| g == d))
        .collect();
    let var_grid: Vec<usize> = var_axes.iter().map(|a| a.map_or(1, |a| shape[a])).collect();
    let mut blocks = Vec::with_capacity(var_grid.iter().product());
    for cell in 0..var_grid.iter().product::<usize>() {
        let flat: usize = unravel(cell, &var_grid)
            .iter()
            .zip(&var_axes)
            .filter_map(|(i, axis)| axis.map(|a| i * strides[a]))
            .sum();
        let piece = all[flat];
        ensure!(
            first.same_dims_unordered(piece),
            Mismatch,
            "cannot concatenate variable {} with dims {} and {}",
            repr::quote(name),
            repr::tuple(first.dims()),
            repr::tuple(piece.dims())
        );
        if piece.dims() == first.dims() {
            blocks.push(piece.data().clone());
        } else {
            blocks.push(piece.transpose(first.dims())?.data().clone());
        }
    }
    let refs: Vec<&Array> = blocks.iter().collect();
    let data = Array::assemble(&var_grid, &refs)
        .map_err(|e| ChunkError::Mismatch(format!("variable {}: {e}", repr::quote(name))))?;
    Ok(first.with_assembled_data(data))
}

/// Comparable keys of a coordinate's labels.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum LabelKey {
    Number(f64),
    Text(String),
}

fn label_keys(index: &Array) -> Result<Vec<LabelKey>, ChunkError> {
    match index {
        Array::String(a) => Ok(a.iter().map(|s| LabelKey::Text(s.clone())).collect()),
        Array::DateTime(a, ..) => Ok(a.iter().map(|&t| LabelKey::Number(t as f64)).collect()),
        other => Ok(other
            .to_f64()?
            .iter()
            .map(|&v| LabelKey::Number(v))
            .collect()),
    }
}

fn label_key(label: &Label, index: &Array) -> Result<LabelKey, ChunkError> {
    match (label, index) {
        (Label::Time(t), Array::DateTime(_, unit, cal)) => {
            Ok(LabelKey::Number(cal.to_ticks(t, *unit)? as f64))
        }
        (Label::Str(s), Array::String(_)) => Ok(LabelKey::Text(s.clone())),
        (Label::Number(n), a) if a.dtype().is_numeric() => Ok(LabelKey::Number(*n)),
        (l, a) => bail!(
            Invalid,
            "cannot compare label {l:?} with coordinate labels of dtype {}",
            a.dtype()
        ),
    }
}

impl PartialEq for Dataset {
    /// Same as [`Dataset::identical`].
    fn eq(&self, other: &Dataset) -> bool {
        self.identical(other)
    }
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
