//! [`ChunkSource`]: the seam every readable dataset implements (a Zarr
//! store, an in-memory [`Dataset`], later NetCDF files and object stores),
//! and [`MemorySource`], the in-memory one.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use indexmap::IndexMap;
use indexmap::IndexSet;
use xbeam_chunk::{Array, DType, Dataset, Template};
use xbeam_key::{repr, VarSet};

use crate::IoError;

/// A dataset that can be read region by region: its [`Template`], its
/// preferred chunking, and [`read`](ChunkSource::read) for any region.
///
/// Object safe: pipelines hold sources as `Arc<dyn ChunkSource>`, and reads
/// happen on many threads at once.
///
/// ```
/// use std::sync::Arc;
/// use xbeam_chunk::{Array, Dataset, Variable};
/// use xbeam_io::{ChunkSource, MemorySource};
///
/// let ds = Dataset::new()
///     .with_data_var("t", Variable::new(["x"], Array::from_1d(vec![1.0f32, 2.0, 3.0]))?)?;
/// let source: Arc<dyn ChunkSource> = Arc::new(MemorySource::new(ds.clone()));
/// assert_eq!(source.template().sizes()["x"], 3);
/// let region = [("x".to_owned(), 1..3)].into_iter().collect();
/// assert!(source.read(&region, None)?.identical(&ds.isel([("x", 1..3)])?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ChunkSource: Send + Sync {
    /// The schema of the whole dataset, with coordinates loaded.
    fn template(&self) -> &Template;

    /// The native (preferred) chunk size per dimension; may be empty, and
    /// dimensions not named have no preference.
    fn chunks(&self) -> &IndexMap<String, u64>;

    /// Reads `region` (element ranges per dimension; dimensions not named
    /// are read whole) of the data variables `vars` (default: all), with the
    /// coordinates whose dimensions those variables have.
    fn read(
        &self,
        region: &IndexMap<String, Range<u64>>,
        vars: Option<&VarSet>,
    ) -> Result<Dataset, IoError>;

    /// What the source is, for error messages (e.g. a store's path).
    fn describe(&self) -> String;
}

impl<S: ChunkSource + ?Sized> ChunkSource for Arc<S> {
    fn template(&self) -> &Template {
        (**self).template()
    }

    fn chunks(&self) -> &IndexMap<String, u64> {
        (**self).chunks()
    }

    fn read(
        &self,
        region: &IndexMap<String, Range<u64>>,
        vars: Option<&VarSet>,
    ) -> Result<Dataset, IoError> {
        (**self).read(region, vars)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Checks a read request against a source's template and returns the data
/// variables to read, in the template's order. `what` names the source in
/// messages.
pub(crate) fn check_read<'t>(
    what: &dyn fmt::Display,
    template: &'t Template,
    region: &IndexMap<String, Range<u64>>,
    vars: Option<&VarSet>,
) -> Result<Vec<&'t String>, IoError> {
    let sizes = template.sizes();
    for (d, r) in region {
        let Some(&n) = sizes.get(d) else {
            return Err(IoError::Invalid(format!(
                "region names dimension {} which {what} does not have: expected one of {}",
                repr::quote(d),
                repr::tuple(sizes.keys())
            )));
        };
        if r.start > r.end || r.end > n {
            return Err(IoError::Invalid(format!(
                "region {}..{} is out of bounds for dimension {} of size {n}",
                r.start,
                r.end,
                repr::quote(d)
            )));
        }
    }
    let names = template.data_vars().keys();
    let Some(set) = vars else {
        return Ok(names.collect());
    };
    if let Some(v) = set.iter().find(|v| !template.data_vars().contains_key(*v)) {
        return Err(IoError::Invalid(format!(
            "{what} has no data variable {}: expected one of {}",
            repr::quote(v),
            repr::tuple(template.data_vars().keys())
        )));
    }
    Ok(names.filter(|k| set.contains(*k)).collect())
}

/// Adds to `ds` the coordinates of `template` cut to `region`: all of them,
/// or with `vars` given only those whose dimensions the data variables
/// read (`used`) all have. Every source's `read` ends with this.
pub(crate) fn add_region_coords(
    ds: &mut Dataset,
    template: &Template,
    region: &IndexMap<String, Range<u64>>,
    vars: Option<&VarSet>,
    used: &IndexSet<String>,
) -> Result<(), IoError> {
    let sizes = template.sizes();
    for (name, c) in template.coords() {
        if vars.is_some() && !c.dims().iter().all(|d| used.contains(d)) {
            continue;
        }
        let ranges: IndexMap<String, Range<usize>> = c
            .dims()
            .iter()
            .map(|d| {
                let r = region.get(d).cloned().unwrap_or(0..sizes[d]);
                (d.clone(), r.start as usize..r.end as usize)
            })
            .collect();
        ds.insert_coord(name.clone(), c.isel(&ranges)?)?;
    }
    Ok(())
}

/// An in-memory [`Dataset`] as a [`ChunkSource`]: reads are zero-copy
/// slices ([`Dataset::isel`]) of it.
///
/// ```
/// use xbeam_chunk::{Array, Dataset, Variable};
/// use xbeam_io::{ChunkSource, MemorySource};
///
/// let ds = Dataset::new()
///     .with_coord("x", Variable::new(["x"], Array::from_1d(vec![10i64, 20, 30, 40]))?)?
///     .with_data_var("a", Variable::new(["x"], Array::from_1d(vec![1.0f32, 2.0, 3.0, 4.0]))?)?
///     .with_data_var("b", Variable::new(["x"], Array::from_1d(vec![5i32, 6, 7, 8]))?)?;
/// let source = MemorySource::new(ds.clone()).with_chunks([("x", 2)])?;
/// assert_eq!(source.chunks()["x"], 2);
/// let region = [("x".to_owned(), 2..4)].into_iter().collect();
/// let only_b = ["b".to_owned()].into_iter().collect();
/// let back = source.read(&region, Some(&only_b))?;
/// assert!(back.identical(&ds.select_vars(&["b"])?.isel([("x", 2..4)])?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct MemorySource {
    dataset: Dataset,
    template: Template,
    chunks: IndexMap<String, u64>,
}

impl MemorySource {
    /// A source serving `dataset`, with no preferred chunking.
    pub fn new(dataset: Dataset) -> MemorySource {
        MemorySource {
            template: Template::from(&dataset),
            dataset,
            chunks: IndexMap::new(),
        }
    }

    /// With this preferred chunk size per dimension; every dimension must
    /// be one of the dataset's and every size positive.
    pub fn with_chunks<S: Into<String>>(
        mut self,
        chunks: impl IntoIterator<Item = (S, u64)>,
    ) -> Result<MemorySource, IoError> {
        let sizes = self.template.sizes();
        let mut checked = IndexMap::new();
        for (d, c) in chunks {
            let d = d.into();
            if !sizes.contains_key(&d) {
                return Err(IoError::Invalid(format!(
                    "chunks name dimension {} which the dataset does not have: expected one of {}",
                    repr::quote(&d),
                    repr::tuple(sizes.keys())
                )));
            }
            if c == 0 {
                return Err(IoError::Invalid(format!(
                    "chunk size for dimension {} must be positive, found 0",
                    repr::quote(&d)
                )));
            }
            checked.insert(d, c);
        }
        self.chunks = checked;
        Ok(self)
    }

    /// The dataset served.
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }
}

impl ChunkSource for MemorySource {
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
        let names = check_read(&self.describe(), &self.template, region, vars)?;
        let selected = match vars {
            None => self.dataset.clone(),
            Some(_) => self.dataset.select_vars(&names)?,
        };
        // dimensions of variables left out are not in the selection
        let sizes = selected.sizes();
        let ranges = region
            .iter()
            .filter(|(d, _)| sizes.contains_key(*d))
            .map(|(d, r)| (d.as_str(), r.clone()));
        Ok(selected.isel(ranges)?)
    }

    fn describe(&self) -> String {
        format!(
            "the in-memory dataset with dimensions {}",
            repr::dict(self.template.sizes().iter())
        )
    }
}

/// Sources read as one, one after the other along a dimension (a store's
/// last, partly filled chunk and the files appended after it): each data
/// variable and coordinate along that dimension comes from every part
/// (converted to the first part's dtype; datetimes to its tick unit),
/// variables and coordinates without it from the first part.
///
/// ```
/// use std::sync::Arc;
/// use indexmap::IndexMap;
/// use xbeam_chunk::{Array, Dataset, Variable};
/// use xbeam_io::{ChunkSource, ConcatSource, MemorySource};
///
/// let part = |x: Vec<i64>, v: Vec<f32>| -> Result<Arc<dyn ChunkSource>, Box<dyn std::error::Error>> {
///     let ds = Dataset::new()
///         .with_coord("x", Variable::new(["x"], Array::from_1d(x))?)?
///         .with_data_var("v", Variable::new(["x"], Array::from_1d(v))?)?;
///     Ok(Arc::new(MemorySource::new(ds)))
/// };
/// let both = ConcatSource::new(vec![part(vec![0, 1], vec![1.0, 2.0])?, part(vec![2, 3, 4], vec![3.0, 4.0, 5.0])?], "x")?;
/// assert_eq!(both.template().sizes()["x"], 5);
/// let region = IndexMap::from([("x".to_owned(), 1..4)]);
/// let ds = both.read(&region, None)?;
/// assert_eq!(ds.data_vars()["v"].data().as_view::<f32>()?.iter().copied().collect::<Vec<_>>(), [2.0, 3.0, 4.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ConcatSource {
    parts: Vec<Arc<dyn ChunkSource>>,
    dim: String,
    starts: Vec<u64>,
    template: Template,
    chunks: IndexMap<String, u64>,
}

impl fmt::Debug for ConcatSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcatSource")
            .field("parts", &self.parts.len())
            .field("dim", &self.dim)
            .field("starts", &self.starts)
            .finish_non_exhaustive()
    }
}

/// `values` in `dtype`: numbers converted, datetimes re-expressed in its
/// tick unit.
fn converted(values: Array, dtype: DType) -> Result<Array, IoError> {
    if values.dtype() == dtype {
        return Ok(values);
    }
    match dtype {
        DType::DateTime(unit, _) => crate::cf::retick(&values, unit),
        other => Ok(values.astype(other)?),
    }
}

impl ConcatSource {
    /// `parts` one after the other along `dim`, which each must have; their
    /// other dimensions must have the first's sizes, and each data
    /// variable of the first along `dim` must be in every part.
    pub fn new(parts: Vec<Arc<dyn ChunkSource>>, dim: &str) -> Result<ConcatSource, IoError> {
        let Some(first) = parts.first() else {
            return Err(IoError::Invalid(
                "nothing to concatenate: expected at least one source".into(),
            ));
        };
        let t0 = first.template();
        let mut starts = Vec::new();
        let mut total = 0;
        for p in &parts {
            let t = p.template();
            let Some(&n) = t.sizes().get(dim) else {
                return Err(IoError::Invalid(format!(
                    "{} has no dimension {} to concatenate along",
                    p.describe(),
                    repr::quote(dim)
                )));
            };
            for (d, &m) in t.sizes() {
                if d != dim && t0.sizes().get(d).is_some_and(|&k| k != m) {
                    return Err(IoError::Invalid(format!(
                        "dimension {} has size {m} in {} but {} in {}",
                        repr::quote(d),
                        p.describe(),
                        t0.sizes()[d],
                        first.describe()
                    )));
                }
            }
            for (name, v) in t0.data_vars() {
                if v.dims.iter().any(|d| d == dim) && !t.data_vars().contains_key(name) {
                    return Err(IoError::Invalid(format!(
                        "{} has no data variable {}, which {} has",
                        p.describe(),
                        repr::quote(name),
                        first.describe()
                    )));
                }
            }
            starts.push(total);
            total += n;
        }
        let mut sizes = t0.sizes().clone();
        sizes.insert(dim.to_owned(), total);
        // coordinates along `dim` (its index and any other) from every part
        let mut coords = t0.coords().clone();
        for (name, first_coord) in t0.coords() {
            let Some(axis) = first_coord.dims().iter().position(|d| d == dim) else {
                continue;
            };
            let mut values = Vec::new();
            for p in &parts {
                let c = p.template().coords().get(name).ok_or_else(|| {
                    IoError::Invalid(format!(
                        "{} has no {} coordinate, which {} has",
                        p.describe(),
                        repr::quote(name),
                        first.describe()
                    ))
                })?;
                values.push(converted(c.data().clone(), first_coord.dtype())?);
            }
            let refs: Vec<&Array> = values.iter().collect();
            let var = xbeam_chunk::Variable::new(
                first_coord.dims().to_vec(),
                Array::concat(axis, &refs)?,
            )?
            .with_attrs(first_coord.attrs().clone())
            .with_encoding(first_coord.encoding().clone());
            coords.insert(name.clone(), var);
        }
        let template = Template::new(sizes, t0.data_vars().clone(), coords, t0.attrs().clone())?;
        let chunks = first.chunks().clone();
        Ok(ConcatSource {
            parts,
            dim: dim.to_owned(),
            starts,
            template,
            chunks,
        })
    }
}

impl ChunkSource for ConcatSource {
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
        let what = self.describe();
        let names = check_read(&what, &self.template, region, vars)?;
        let sizes = self.template.sizes();
        let want = region
            .get(&self.dim)
            .cloned()
            .unwrap_or(0..sizes[&self.dim]);
        let mut ds = Dataset::new().with_attrs(self.template.attrs().clone());
        let mut used: IndexSet<String> = IndexSet::new();
        for name in names {
            let schema = &self.template.data_vars()[name];
            let one: VarSet = [name.clone()].into_iter().collect();
            let var = if let Some(axis) = schema.dims.iter().position(|d| d == &self.dim) {
                let mut pieces = Vec::new();
                for (p, &start) in self.parts.iter().zip(&self.starts) {
                    let n = p.template().sizes()[&self.dim];
                    let (lo, hi) = (want.start.max(start), want.end.min(start + n));
                    if lo >= hi {
                        continue;
                    }
                    let mut sub = region.clone();
                    sub.insert(self.dim.clone(), lo - start..hi - start);
                    let part = p.read(&sub, Some(&one))?;
                    pieces.push(converted(
                        part.data_vars()[name].data().clone(),
                        schema.dtype,
                    )?);
                }
                if pieces.is_empty() {
                    // an empty region: the first part's, empty
                    let mut sub = region.clone();
                    sub.insert(self.dim.clone(), 0..0);
                    let part = self.parts[0].read(&sub, Some(&one))?;
                    pieces.push(converted(
                        part.data_vars()[name].data().clone(),
                        schema.dtype,
                    )?);
                }
                let refs: Vec<&Array> = pieces.iter().collect();
                Array::concat(axis, &refs)?
            } else {
                let part = self.parts[0].read(region, Some(&one))?;
                part.data_vars()[name].data().clone()
            };
            let var = xbeam_chunk::Variable::new(schema.dims.clone(), var)?
                .with_attrs(schema.attrs.clone())
                .with_encoding(schema.encoding.clone());
            used.extend(var.dims().iter().cloned());
            ds.insert_data_var(name.clone(), var)?;
        }
        add_region_coords(&mut ds, &self.template, region, vars, &used)?;
        Ok(ds)
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = self.parts.iter().map(ChunkSource::describe).collect();
        format!("{} along {}", parts.join(" then "), repr::quote(&self.dim))
    }
}

#[cfg(test)]
mod tests {
    use xbeam_chunk::{Array, Variable};

    use super::*;

    fn dataset() -> Dataset {
        let grid = Array::from_vec(vec![2, 3], (0..6).map(f64::from).collect::<Vec<_>>()).unwrap();
        Dataset::new()
            .with_coord(
                "t",
                Variable::new(["t"], Array::from_1d(vec![0i64, 1])).unwrap(),
            )
            .unwrap()
            .with_coord(
                "x",
                Variable::new(["x"], Array::from_1d(vec![10i64, 20, 30])).unwrap(),
            )
            .unwrap()
            .with_data_var("grid", Variable::new(["t", "x"], grid).unwrap())
            .unwrap()
            .with_data_var(
                "series",
                Variable::new(["t"], Array::from_1d(vec![1.5f32, 2.5])).unwrap(),
            )
            .unwrap()
    }

    fn region(entries: &[(&str, Range<u64>)]) -> IndexMap<String, Range<u64>> {
        entries
            .iter()
            .map(|(d, r)| ((*d).to_owned(), r.clone()))
            .collect()
    }

    #[test]
    fn reads_a_region_of_every_variable() {
        let ds = dataset();
        let source = MemorySource::new(ds.clone());
        assert!(source.chunks().is_empty());
        assert_eq!(source.template().sizes()["x"], 3);
        let back = source.read(&region(&[("x", 1..3)]), None).unwrap();
        assert_eq!(back.sizes()["x"], 2);
        assert_eq!(back.sizes()["t"], 2, "dimensions not named are read whole");
        assert!(back.identical(&ds.isel([("x", 1..3)]).unwrap()));
        let all = source.read(&IndexMap::new(), None).unwrap();
        assert!(all.identical(&ds));
    }

    #[test]
    fn selected_variables_keep_only_their_coordinates() {
        let source = MemorySource::new(dataset());
        let vars: VarSet = ["series".to_owned()].into_iter().collect();
        // "x" is not a dimension of "series": the range along it is moot
        let back = source
            .read(&region(&[("t", 1..2), ("x", 0..1)]), Some(&vars))
            .unwrap();
        assert_eq!(back.data_vars().keys().collect::<Vec<_>>(), ["series"]);
        assert_eq!(back.coords().keys().collect::<Vec<_>>(), ["t"]);
        let values = back.data_var("series").unwrap().data().to_f64().unwrap();
        assert_eq!(values.iter().copied().collect::<Vec<_>>(), [2.5]);
    }

    #[test]
    fn bad_requests_name_the_source_and_what_was_expected() {
        let source = MemorySource::new(dataset());
        let err = source.read(&region(&[("y", 0..1)]), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "region names dimension 'y' which the in-memory dataset with dimensions {'t': 2, 'x': 3} does not have: expected one of ('t', 'x')"
        );
        let err = source.read(&region(&[("x", 2..4)]), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "region 2..4 is out of bounds for dimension 'x' of size 3"
        );
        let vars: VarSet = ["nope".to_owned()].into_iter().collect();
        let err = source.read(&IndexMap::new(), Some(&vars)).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("has no data variable 'nope': expected one of ('grid', 'series')"),
            "{err}"
        );
        let err = MemorySource::new(dataset())
            .with_chunks([("y", 1)])
            .unwrap_err();
        assert!(err.to_string().contains("'y'"), "{err}");
        assert!(MemorySource::new(dataset())
            .with_chunks([("x", 0)])
            .is_err());
    }

    #[test]
    fn shared_as_a_trait_object_across_threads() {
        let source: Arc<dyn ChunkSource> = Arc::new(
            MemorySource::new(dataset())
                .with_chunks([("t", 1)])
                .unwrap(),
        );
        let reads: Vec<Dataset> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2u64)
                .map(|i| {
                    let source = Arc::clone(&source);
                    s.spawn(move || source.read(&region(&[("t", i..i + 1)]), None).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let whole = Dataset::concat(&[&reads[0], &reads[1]], "t").unwrap();
        assert!(whole.identical(source.read(&IndexMap::new(), None).as_ref().unwrap()));
        assert_eq!(source.chunks()["t"], 1);
        // Arc<S> is itself a source, so generic code takes it too
        fn sizes_of(s: &impl ChunkSource) -> usize {
            s.template().sizes().len()
        }
        assert_eq!(sizes_of(&source), 2);
    }
}
