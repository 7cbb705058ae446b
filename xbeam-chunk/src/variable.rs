//! [`Variable`]: an array with named dimensions, attributes and encoding.

use std::ops::Range;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use xbeam_key::repr;

use crate::error::ensure;
use crate::wire::{attrs_json, shared_attrs_json};
use crate::{Array, ChunkError, DType, Reduction};

/// Attributes (and encodings): JSON values by name, in insertion order, as
/// they come from Zarr JSON and NetCDF attributes.
pub type Attrs = IndexMap<String, serde_json::Value>;

/// An [`Array`] with a name for each dimension, attributes and an encoding
/// (how it is stored: `_FillValue`, `units`, `dtype`, compressor, ...).
///
/// ```
/// use xbeam_chunk::{Array, Variable};
/// let v = Variable::new(["time", "lat"], Array::from_vec(vec![2, 3], vec![0f32; 6])?)?
///     .with_attr("units", "K");
/// assert_eq!(v.dims(), ["time", "lat"]);
/// assert_eq!(v.size_of("lat"), Some(3));
/// assert_eq!(v.attrs()["units"], "K");
/// # Ok::<(), xbeam_chunk::ChunkError>(())
/// ```
///
/// Cloning is cheap: the data buffer, the dimension names, the attributes and
/// the encoding are shared (copied on write), so the many pieces a chunk is
/// split into do not each copy its metadata.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "RawVariable")]
pub struct Variable {
    #[serde(serialize_with = "serialize_dims")]
    dims: Arc<[String]>,
    data: Array,
    #[serde(with = "attrs_json")]
    attrs: Arc<Attrs>,
    #[serde(with = "attrs_json")]
    encoding: Arc<Attrs>,
}

fn serialize_dims<S: serde::Serializer>(dims: &Arc<[String]>, s: S) -> Result<S::Ok, S::Error> {
    dims[..].serialize(s)
}

#[derive(Deserialize)]
struct RawVariable {
    dims: Vec<String>,
    data: Array,
    #[serde(deserialize_with = "shared_attrs_json::deserialize")]
    attrs: Arc<Attrs>,
    #[serde(deserialize_with = "shared_attrs_json::deserialize")]
    encoding: Arc<Attrs>,
}

impl TryFrom<RawVariable> for Variable {
    type Error = ChunkError;
    fn try_from(raw: RawVariable) -> Result<Variable, ChunkError> {
        let v = Variable::new(raw.dims, raw.data)?;
        Ok(Variable {
            attrs: raw.attrs,
            encoding: raw.encoding,
            ..v
        })
    }
}

impl Variable {
    /// A variable; there must be one distinct dimension name per axis.
    pub fn new<S: Into<String>>(
        dims: impl IntoIterator<Item = S>,
        data: Array,
    ) -> Result<Variable, ChunkError> {
        let dims: Vec<String> = dims.into_iter().map(Into::into).collect();
        ensure!(
            dims.len() == data.ndim(),
            Shape,
            "expected {} dimension names for an array of shape {:?}, found {}: {}",
            data.ndim(),
            data.shape(),
            dims.len(),
            repr::tuple(&dims)
        );
        for (i, d) in dims.iter().enumerate() {
            ensure!(
                !dims[..i].contains(d),
                Shape,
                "dimension {} appears twice in {}",
                repr::quote(d),
                repr::tuple(&dims)
            );
        }
        Ok(Variable {
            dims: dims.into(),
            data,
            attrs: Arc::default(),
            encoding: Arc::default(),
        })
    }

    /// With all attributes replaced.
    pub fn with_attrs(mut self, attrs: Attrs) -> Variable {
        self.attrs = Arc::new(attrs);
        self
    }

    /// With one attribute set.
    pub fn with_attr(
        mut self,
        name: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Variable {
        Arc::make_mut(&mut self.attrs).insert(name.into(), value.into());
        self
    }

    /// With the encoding replaced.
    pub fn with_encoding(mut self, encoding: Attrs) -> Variable {
        self.encoding = Arc::new(encoding);
        self
    }

    /// With the data replaced by an array of the same shape.
    pub fn with_data(&self, data: Array) -> Result<Variable, ChunkError> {
        ensure!(
            data.shape() == self.data.shape(),
            Shape,
            "expected new data of shape {:?}, found {:?}",
            self.data.shape(),
            data.shape()
        );
        Ok(self.with_same_metadata(data))
    }

    /// This variable's dimension names, attributes and encoding (shared,
    /// not copied) with `data`, which the caller checked has a matching
    /// number of dimensions.
    fn with_same_metadata(&self, data: Array) -> Variable {
        Variable {
            dims: self.dims.clone(),
            data,
            attrs: self.attrs.clone(),
            encoding: self.encoding.clone(),
        }
    }

    /// With the data replaced by an array with the same number of
    /// dimensions but any sizes (blocks of this variable, assembled).
    pub(crate) fn with_assembled_data(&self, data: Array) -> Variable {
        debug_assert_eq!(data.ndim(), self.dims.len());
        self.with_same_metadata(data)
    }

    /// The data, to change in place (a chunk being assembled).
    pub(crate) fn data_mut(&mut self) -> &mut Array {
        &mut self.data
    }

    /// The dimension names.
    pub fn dims(&self) -> &[String] {
        &self.dims
    }

    /// The data.
    pub fn data(&self) -> &Array {
        &self.data
    }

    /// The attributes.
    pub fn attrs(&self) -> &Attrs {
        &self.attrs
    }

    /// The attributes, to change.
    pub fn attrs_mut(&mut self) -> &mut Attrs {
        Arc::make_mut(&mut self.attrs)
    }

    /// The encoding.
    pub fn encoding(&self) -> &Attrs {
        &self.encoding
    }

    /// The encoding, to change.
    pub fn encoding_mut(&mut self) -> &mut Attrs {
        Arc::make_mut(&mut self.encoding)
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        self.data.shape()
    }

    /// `(dimension, size)` pairs in order.
    pub fn sizes(&self) -> impl Iterator<Item = (&str, usize)> {
        self.dims
            .iter()
            .map(String::as_str)
            .zip(self.data.shape().iter().copied())
    }

    /// The size along `dim`, if the variable has it.
    pub fn size_of(&self, dim: &str) -> Option<usize> {
        self.axis(dim).map(|a| self.data.shape()[a])
    }

    /// The axis of `dim`, if the variable has it.
    pub fn axis(&self, dim: &str) -> Option<usize> {
        self.dims.iter().position(|d| d == dim)
    }

    /// Bytes of data.
    pub fn nbytes(&self) -> usize {
        self.data.nbytes()
    }

    /// The elements in `ranges` along the named dimensions (dimensions the
    /// variable lacks are ignored). Shares the buffer.
    pub fn isel(&self, ranges: &IndexMap<String, Range<usize>>) -> Result<Variable, ChunkError> {
        self.isel_slices(ranges.iter().map(|(d, r)| (d.as_str(), r)))
    }

    /// [`Variable::isel`] with the ranges as `(dimension, range)` pairs.
    pub(crate) fn isel_slices<'a>(
        &self,
        ranges: impl IntoIterator<Item = (&'a str, &'a Range<usize>)>,
    ) -> Result<Variable, ChunkError> {
        let mut data = self.data.clone();
        for (dim, r) in ranges {
            if let Some(axis) = self.axis(dim) {
                data = data
                    .slice_axis(axis, r.clone())
                    .map_err(|e| self.context(dim, &e))?;
            }
        }
        Ok(self.with_same_metadata(data))
    }

    /// The elements at `indices` along `dim` (ignored if absent).
    pub fn take(&self, dim: &str, indices: &[usize]) -> Result<Variable, ChunkError> {
        match self.axis(dim) {
            Some(axis) => Ok(self.with_same_metadata(self.data.select(axis, indices)?)),
            None => Ok(self.clone()),
        }
    }

    fn context(&self, dim: &str, e: &ChunkError) -> ChunkError {
        ChunkError::Shape(format!(
            "along dimension {} of variable with dims {}: {e}",
            repr::quote(dim),
            repr::tuple(self.dims.iter())
        ))
    }

    /// The dimensions reordered: those in `order` first, in that order,
    /// then the rest in their current order. Names the variable lacks are
    /// ignored. A view of the same buffer.
    pub fn transpose<S: AsRef<str>>(&self, order: &[S]) -> Result<Variable, ChunkError> {
        let mut axes: Vec<usize> = order.iter().filter_map(|d| self.axis(d.as_ref())).collect();
        let rest: Vec<usize> = (0..self.dims.len()).filter(|a| !axes.contains(a)).collect();
        axes.extend(rest);
        if axes.iter().enumerate().all(|(i, &a)| i == a) {
            return Ok(self.clone());
        }
        let dims = axes.iter().map(|&a| self.dims[a].clone()).collect();
        Ok(Variable {
            dims,
            data: self.data.permute(&axes)?,
            attrs: self.attrs.clone(),
            encoding: self.encoding.clone(),
        })
    }

    /// Whether this variable, named `name`, is the index of its dimension:
    /// 1-D along a dimension of the same name.
    pub(crate) fn is_index(&self, name: &str) -> bool {
        self.dims.len() == 1 && self.dims[0] == name
    }

    /// Whether `other` has the same dimensions, in any order.
    pub(crate) fn same_dims_unordered(&self, other: &Variable) -> bool {
        self.dims.len() == other.dims.len() && self.dims.iter().all(|d| other.dims.contains(d))
    }

    /// Same dims, dtype and values (NaN equals NaN); attributes ignored.
    pub fn equals(&self, other: &Variable) -> bool {
        self.dims == other.dims && self.data.equals(&other.data)
    }

    /// Like [`Variable::equals`], and the attributes are equal too.
    pub fn identical(&self, other: &Variable) -> bool {
        self.equals(other) && self.attrs == other.attrs
    }

    /// Reduces over the named dimensions it has (others are ignored).
    /// Attributes are dropped, as xarray does by default.
    pub fn reduce<S: AsRef<str>>(&self, op: Reduction, dims: &[S]) -> Result<Variable, ChunkError> {
        let axes: Vec<usize> = dims.iter().filter_map(|d| self.axis(d.as_ref())).collect();
        if axes.is_empty() && op != Reduction::Count {
            return Ok(Variable {
                attrs: Arc::default(),
                ..self.clone()
            });
        }
        let data = self.data.reduce(op, &axes)?;
        let kept = (0..self.dims.len())
            .filter(|a| !axes.contains(a))
            .map(|a| self.dims[a].clone());
        Ok(Variable {
            encoding: self.encoding.clone(),
            ..Variable::new(kept, data)?
        })
    }

    /// The dimensions renamed by `map` (names not in it are kept); renaming
    /// onto a dimension the variable already has is an error.
    pub fn rename_dims(&self, map: &IndexMap<String, String>) -> Result<Variable, ChunkError> {
        let dims: Vec<String> = self
            .dims
            .iter()
            .map(|d| map.get(d).unwrap_or(d).clone())
            .collect();
        Ok(Variable {
            dims: Variable::new(dims, self.data.clone())?.dims,
            ..self.clone()
        })
    }
}

impl PartialEq for Variable {
    /// Same as [`Variable::identical`].
    fn eq(&self, other: &Variable) -> bool {
        self.identical(other)
    }
}

impl std::fmt::Debug for Variable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Variable({}, {:?})",
            repr::tuple(self.dims.iter()),
            self.data
        )
    }
}
