//! [`Template`]: the schema of a full (virtual) dataset.

use std::ops::Range;

use indexmap::{IndexMap, IndexSet};
use serde::{Deserialize, Serialize};
use xbeam_key::{repr, VarSet};

use crate::error::{bail, ensure};
use crate::wire::attrs_json;
use crate::{Array, Attrs, ChunkError, DType, Dataset, Variable, Variables};

/// The schema of one data variable: everything but the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VarSchema {
    /// Dimension names.
    pub dims: Vec<String>,
    /// Element type.
    pub dtype: DType,
    /// Attributes.
    #[serde(with = "attrs_json")]
    pub attrs: Attrs,
    /// Encoding (how it is stored).
    #[serde(with = "attrs_json")]
    pub encoding: Attrs,
}

/// What replaces a dimension in [`Template::replace_dims`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DimReplacement {
    /// A new size; coordinates along the dimension are dropped.
    Size(u64),
    /// New coordinate values (1-D); they become the dimension's index.
    Coord(Array),
}

/// The schema of a full dataset that exists only as chunks: dimension
/// sizes, data variables without data, coordinates *with* data (they are
/// small), attributes. It replaces xarray-beam's lazy Dask templates, and it
/// is what sinks set up.
///
/// ```
/// use xbeam_chunk::{Array, Dataset, DimReplacement, Template, Variable};
///
/// let ds = Dataset::new()
///     .with_coord("x", Variable::new(["x"], Array::from_1d(vec![0i64, 1, 2]))?)?
///     .with_data_var("foo", Variable::new(["x"], Array::from_1d(vec![1.0f32, 2.0, 3.0]))?)?;
/// let template = Template::from(&ds);
/// assert_eq!(template.sizes()["x"], 3);
/// let longer = template.replace_dims(&[("x", DimReplacement::Size(10))])?;
/// assert_eq!(longer.sizes()["x"], 10);
/// assert!(longer.coords().is_empty());
/// # Ok::<(), xbeam_chunk::ChunkError>(())
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawTemplate")]
pub struct Template {
    sizes: IndexMap<String, u64>,
    data_vars: IndexMap<String, VarSchema>,
    coords: Variables,
    #[serde(with = "attrs_json")]
    attrs: Attrs,
}

#[derive(Deserialize)]
struct RawTemplate {
    sizes: IndexMap<String, u64>,
    data_vars: IndexMap<String, VarSchema>,
    coords: Variables,
    #[serde(with = "attrs_json")]
    attrs: Attrs,
}

impl TryFrom<RawTemplate> for Template {
    type Error = ChunkError;
    fn try_from(raw: RawTemplate) -> Result<Template, ChunkError> {
        Template::new(raw.sizes, raw.data_vars, raw.coords, raw.attrs)
    }
}

impl From<&Dataset> for Template {
    fn from(ds: &Dataset) -> Template {
        let data_vars = ds
            .data_vars()
            .iter()
            .map(|(n, v)| {
                let schema = VarSchema {
                    dims: v.dims().to_vec(),
                    dtype: v.dtype(),
                    attrs: v.attrs().clone(),
                    encoding: v.encoding().clone(),
                };
                (n.clone(), schema)
            })
            .collect();
        Template {
            sizes: ds.sizes(),
            data_vars,
            coords: ds.coords().clone(),
            attrs: ds.attrs().clone(),
        }
    }
}

impl Template {
    /// A template from parts; every dimension used must have a size, and
    /// coordinates must fit the sizes.
    pub fn new(
        sizes: IndexMap<String, u64>,
        data_vars: IndexMap<String, VarSchema>,
        coords: Variables,
        attrs: Attrs,
    ) -> Result<Template, ChunkError> {
        for (name, v) in &data_vars {
            for d in &v.dims {
                ensure!(
                    sizes.contains_key(d),
                    Invalid,
                    "data variable {} has dimension {} which has no size in the template",
                    repr::quote(name),
                    repr::quote(d)
                );
            }
        }
        for (name, c) in &coords {
            for (d, n) in c.sizes() {
                ensure!(
                    sizes.get(d) == Some(&(n as u64)),
                    Invalid,
                    "coordinate {} has size {n} along {} but the template size is {:?}",
                    repr::quote(name),
                    repr::quote(d),
                    sizes.get(d)
                );
            }
        }
        Ok(Template {
            sizes,
            data_vars,
            coords,
            attrs,
        })
    }

    /// Dimension sizes.
    pub fn sizes(&self) -> &IndexMap<String, u64> {
        &self.sizes
    }

    /// Data variable schemas.
    pub fn data_vars(&self) -> &IndexMap<String, VarSchema> {
        &self.data_vars
    }

    /// Coordinates, with data.
    pub fn coords(&self) -> &Variables {
        &self.coords
    }

    /// Dataset attributes.
    pub fn attrs(&self) -> &Attrs {
        &self.attrs
    }

    /// Bytes of one data variable of the full dataset.
    pub fn var_nbytes(&self, v: &VarSchema) -> usize {
        v.dims
            .iter()
            .map(|d| self.sizes[d] as usize)
            .product::<usize>()
            * v.dtype.itemsize()
    }

    /// Bytes of all data variables of the full dataset (saturating at
    /// `u64::MAX` for shapes whose size cannot be counted).
    ///
    /// ```
    /// use xbeam_chunk::{Array, Dataset, Template, Variable};
    /// let ds = Dataset::new()
    ///     .with_data_var("t", Variable::new(["x"], Array::from_1d(vec![1.0f32, 2.0, 3.0]))?)?;
    /// assert_eq!(Template::from(&ds).data_nbytes(), 12);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn data_nbytes(&self) -> u64 {
        self.data_vars
            .values()
            .map(|v| {
                v.dims
                    .iter()
                    .try_fold(v.dtype.itemsize() as u64, |n, d| {
                        n.checked_mul(self.sizes[d])
                    })
                    .unwrap_or(u64::MAX)
            })
            .fold(0u64, u64::saturating_add)
    }

    /// Bytes of the full dataset (data variables and coordinates).
    pub fn nbytes(&self) -> usize {
        self.data_vars
            .values()
            .map(|v| self.var_nbytes(v))
            .sum::<usize>()
            + self.coords.values().map(Variable::nbytes).sum::<usize>()
    }

    /// A template with dimensions resized or given new coordinates, as
    /// xarray-beam's `replace_template_dims`.
    pub fn replace_dims<S: AsRef<str>>(
        &self,
        replacements: &[(S, DimReplacement)],
    ) -> Result<Template, ChunkError> {
        let mut out = self.clone();
        for (dim, rep) in replacements {
            let dim = dim.as_ref();
            ensure!(
                self.sizes.contains_key(dim),
                Invalid,
                "cannot replace dimension {}: the template has dimensions {}",
                repr::quote(dim),
                repr::tuple(self.sizes.keys())
            );
            out.coords.retain(|_, c| !c.dims().iter().any(|d| d == dim));
            match rep {
                DimReplacement::Size(n) => {
                    out.sizes.insert(dim.to_owned(), *n);
                }
                DimReplacement::Coord(values) => {
                    ensure!(
                        values.ndim() == 1,
                        Invalid,
                        "new coordinate for {} must be 1-D, found shape {:?}",
                        repr::quote(dim),
                        values.shape()
                    );
                    out.sizes.insert(dim.to_owned(), values.len() as u64);
                    out.coords
                        .insert(dim.to_owned(), Variable::new([dim], values.clone())?);
                }
            }
        }
        Ok(out)
    }

    /// The chunk of `region` (element ranges per dimension; dimensions not
    /// named are whole) filled with `fill_value` (NaN: floats and
    /// datetimes only), holding `vars` (or every data variable) and the
    /// coordinates they would have, sliced to the region. This is how
    /// missing chunks are filled.
    pub fn fill_chunk(
        &self,
        region: &IndexMap<String, Range<u64>>,
        vars: Option<&VarSet>,
        fill_value: f64,
    ) -> Result<Dataset, ChunkError> {
        for (d, r) in region {
            let Some(&size) = self.sizes.get(d) else {
                bail!(
                    Invalid,
                    "region names dimension {} which the template does not have",
                    repr::quote(d)
                )
            };
            ensure!(
                r.start <= r.end && r.end <= size,
                Invalid,
                "region {}..{} is out of bounds for dimension {} of size {size}",
                r.start,
                r.end,
                repr::quote(d)
            );
        }
        let names: Vec<&String> = match vars {
            None => self.data_vars.keys().collect(),
            Some(set) => set.iter().collect(),
        };
        let mut ds = Dataset::new().with_attrs(self.attrs.clone());
        let mut dims: IndexSet<&String> = IndexSet::new();
        for name in names {
            let Some(schema) = self.data_vars.get(name) else {
                bail!(
                    Invalid,
                    "template has no data variable {}: expected one of {}",
                    repr::quote(name),
                    repr::tuple(self.data_vars.keys())
                )
            };
            let shape: Vec<usize> = schema
                .dims
                .iter()
                .map(|d| region.get(d).map_or(self.sizes[d], |r| r.end - r.start) as usize)
                .collect();
            if schema.dtype.is_integer() || schema.dtype == DType::Bool {
                ensure!(
                    !fill_value.is_nan(),
                    Invalid,
                    "cannot fill a missing chunk of {} variable {} with NaN: give a fill value",
                    schema.dtype,
                    repr::quote(name)
                );
            }
            let data = Array::full(schema.dtype, &shape, fill_value)?;
            let var = Variable::new(schema.dims.clone(), data)?
                .with_attrs(schema.attrs.clone())
                .with_encoding(schema.encoding.clone());
            ds.insert_data_var(name.clone(), var)?;
            dims.extend(&schema.dims);
        }
        let ranges: IndexMap<String, Range<usize>> = region
            .iter()
            .map(|(d, r)| (d.clone(), r.start as usize..r.end as usize))
            .collect();
        for (name, c) in &self.coords {
            if vars.is_none() || c.dims().iter().all(|d| dims.contains(d)) {
                ds.insert_coord(name.clone(), c.isel(&ranges)?)?;
            }
        }
        Ok(ds)
    }
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
