//! [`Array`]: an N-dimensional array of any [`DType`], with a shared buffer.

use std::ops::Range;

use ndarray::{ArcArray, ArrayD, ArrayViewD, Axis, IxDyn, Slice};

use crate::calendar::{Calendar, TimeUnit};
use crate::error::{bail, ensure};
use crate::{ChunkError, DType, Element};

/// The buffer of an [`Array`] of element type `T`: a reference-counted,
/// dynamic-rank `ndarray` array. Cloning it is cheap; slicing it shares the
/// buffer.
pub type ArrayData<T> = ArcArray<T, IxDyn>;

/// An N-dimensional array of one of the [`DType`]s.
///
/// Cheap to clone (buffers are shared); slicing and transposing are views of
/// the same buffer. Typed access checks the dtype:
///
/// ```
/// use xbeam_chunk::Array;
/// let a = Array::from_vec(vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0])?;
/// assert_eq!(a.shape(), &[2, 2]);
/// assert_eq!(a.as_view::<f32>()?[[1, 0]], 3.0);
/// let err = a.as_view::<f64>().unwrap_err();
/// assert_eq!(err.to_string(), "expected an array of float64, found float32");
/// # Ok::<(), xbeam_chunk::ChunkError>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum Array {
    /// `bool` elements.
    Bool(ArrayData<bool>),
    /// `i8` elements.
    I8(ArrayData<i8>),
    /// `i16` elements.
    I16(ArrayData<i16>),
    /// `i32` elements.
    I32(ArrayData<i32>),
    /// `i64` elements.
    I64(ArrayData<i64>),
    /// `u8` elements.
    U8(ArrayData<u8>),
    /// `u16` elements.
    U16(ArrayData<u16>),
    /// `u32` elements.
    U32(ArrayData<u32>),
    /// `u64` elements.
    U64(ArrayData<u64>),
    /// `f32` elements.
    F32(ArrayData<f32>),
    /// `f64` elements.
    F64(ArrayData<f64>),
    /// Datetimes: ticks of the unit since 1970-01-01 in the calendar
    /// (`i64::MIN` is NaT).
    DateTime(ArrayData<i64>, TimeUnit, Calendar),
    /// Time differences: ticks of the unit (`i64::MIN` is NaT).
    TimeDelta(ArrayData<i64>, TimeUnit),
    /// Strings.
    String(ArrayData<String>),
}

/// The buffer of `other` as the same element type as `witness`; lets macro
/// bodies reach a second array of the same dtype generically.
pub(crate) fn same_type<'a, T: Element>(
    other: &'a Array,
    _witness: &ArrayData<T>,
) -> &'a ArrayData<T> {
    T::raw(other).expect("caller checked that dtypes are equal")
}

impl<T: Element> From<ArrayD<T>> for Array {
    fn from(a: ArrayD<T>) -> Array {
        T::wrap(a.into_shared())
    }
}

impl<T: Element> From<ArrayData<T>> for Array {
    fn from(a: ArrayData<T>) -> Array {
        T::wrap(a)
    }
}

/// Reductions over dimensions ([`Array::reduce`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reduction {
    /// Sum of non-missing values (0 when all are missing).
    Sum,
    /// Mean of non-missing values (NaN when all are missing).
    Mean,
    /// Minimum of non-missing values.
    Min,
    /// Maximum of non-missing values.
    Max,
    /// Count of non-missing values.
    Count,
}

impl Reduction {
    /// The name as in xarray (`sum`, `mean`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Reduction::Sum => "sum",
            Reduction::Mean => "mean",
            Reduction::Min => "min",
            Reduction::Max => "max",
            Reduction::Count => "count",
        }
    }
}

impl Array {
    /// An array of `shape` from elements in C (row-major) order.
    pub fn from_vec<T: Element>(
        shape: impl Into<Vec<usize>>,
        data: Vec<T>,
    ) -> Result<Array, ChunkError> {
        let shape: Vec<usize> = shape.into();
        let n = data.len();
        ArrayD::from_shape_vec(IxDyn(&shape), data)
            .map(Array::from)
            .map_err(|_| {
                ChunkError::Shape(format!(
                    "expected {} elements for shape {shape:?}, found {n}",
                    shape.iter().product::<usize>()
                ))
            })
    }

    /// A 1-D array.
    ///
    /// ```
    /// let a = xbeam_chunk::Array::from_1d(vec![1i64, 2, 3]);
    /// assert_eq!(a.shape(), &[3]);
    /// ```
    pub fn from_1d<T: Element>(data: Vec<T>) -> Array {
        let n = data.len();
        Array::from_vec(vec![n], data).expect("a 1-D shape always fits")
    }

    /// A 0-dimensional array holding one value.
    pub fn scalar<T: Element>(value: T) -> Array {
        Array::from_vec(Vec::new(), vec![value]).expect("a 0-D shape always fits")
    }

    /// A datetime array of ticks.
    ///
    /// ```
    /// use xbeam_chunk::{calendar::{Calendar, TimeUnit}, Array};
    /// let t = Array::datetime(ndarray::arr1(&[0i64, 24]).into_dyn(), TimeUnit::Hours, Calendar::NoLeap);
    /// assert_eq!(t.dtype().to_string(), "datetime[h, noleap]");
    /// ```
    pub fn datetime(ticks: ArrayD<i64>, unit: TimeUnit, calendar: Calendar) -> Array {
        Array::DateTime(ticks.into_shared(), unit, calendar)
    }

    /// A timedelta array of ticks.
    pub fn timedelta(ticks: ArrayD<i64>, unit: TimeUnit) -> Array {
        Array::TimeDelta(ticks.into_shared(), unit)
    }

    /// An array of `shape` filled with `value` converted to `dtype`; `NaN`
    /// gives NaT for datetimes. Strings are filled with the empty string.
    pub fn full(dtype: DType, shape: &[usize], value: f64) -> Result<Array, ChunkError> {
        let shape = IxDyn(shape);
        fn fill<T: Element>(shape: IxDyn, v: T) -> Array {
            T::wrap(ArrayD::from_elem(shape, v).into_shared())
        }
        let nat_or = |v: f64| if v.is_nan() { i64::MIN } else { v as i64 };
        let need_int = |v: f64| -> Result<f64, ChunkError> {
            ensure!(
                v.is_finite(),
                Invalid,
                "cannot fill an array of {dtype} with {v}: give a finite fill value"
            );
            Ok(v)
        };
        Ok(crate::dispatch!(dtype: dtype,
            T => {
                let v = if dtype.is_float() { value } else { need_int(value)? };
                fill(shape, T::from_f64(v).expect("numeric types convert from f64"))
            },
            DType::Bool => fill(shape, need_int(value)? != 0.0),
            DType::DateTime(u, c) => {
                Array::DateTime(ArrayD::from_elem(shape, nat_or(value)).into_shared(), u, c)
            },
            DType::TimeDelta(u) => {
                Array::TimeDelta(ArrayD::from_elem(shape, nat_or(value)).into_shared(), u)
            },
            DType::String => fill(shape, String::new()),
        ))
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Array::DateTime(_, u, c) => DType::DateTime(*u, *c),
            Array::TimeDelta(_, u) => DType::TimeDelta(*u),
            other => crate::dispatch!(array: other, a => element_dtype(a)),
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        crate::dispatch!(array: self, a => a.shape())
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of element data (`len × itemsize`), as xarray's `nbytes`.
    pub fn nbytes(&self) -> usize {
        self.len() * self.dtype().itemsize()
    }

    /// A read-only view with element type `T`; a clear error when the array
    /// holds another type. Datetime ticks are read with
    /// [`Array::datetime_ticks`].
    pub fn as_view<T: Element>(&self) -> Result<ArrayViewD<'_, T>, ChunkError> {
        self.as_data::<T>().map(ArrayData::view)
    }

    /// The shared buffer with element type `T` (cheap: no copy).
    pub fn as_data<T: Element>(&self) -> Result<&ArrayData<T>, ChunkError> {
        match T::raw(self) {
            Some(a) if self.dtype() == T::DTYPE => Ok(a),
            _ => Err(self.wrong_type(T::DTYPE.name())),
        }
    }

    /// The ticks, unit and calendar of a datetime array.
    pub fn datetime_ticks(&self) -> Result<(ArrayViewD<'_, i64>, TimeUnit, Calendar), ChunkError> {
        match self {
            Array::DateTime(a, u, c) => Ok((a.view(), *u, *c)),
            _ => Err(self.wrong_type("datetime".into())),
        }
    }

    fn wrong_type(&self, expected: String) -> ChunkError {
        ChunkError::WrongType {
            expected,
            found: self.dtype().name(),
        }
    }

    /// The elements `range` along `axis`; shares the buffer.
    pub fn slice_axis(&self, axis: usize, range: Range<usize>) -> Result<Array, ChunkError> {
        self.check_axis(axis)?;
        let n = self.shape()[axis];
        ensure!(
            range.start <= range.end && range.end <= n,
            Shape,
            "slice {}..{} is out of bounds for an axis of length {n}",
            range.start,
            range.end
        );
        Ok(
            crate::dispatch!(map: self, a => a.clone().slice_axis_move(Axis(axis), Slice::from(range.clone()))),
        )
    }

    /// The elements at `indices` along `axis` (copies).
    pub fn select(&self, axis: usize, indices: &[usize]) -> Result<Array, ChunkError> {
        self.check_axis(axis)?;
        let n = self.shape()[axis];
        if let Some(bad) = indices.iter().find(|&&i| i >= n) {
            bail!(
                Shape,
                "index {bad} is out of bounds for an axis of length {n}"
            );
        }
        Ok(crate::dispatch!(map: self, a => a.select(Axis(axis), indices).into_shared()))
    }

    /// The axes permuted: axis `i` of the result is axis `order[i]` of this
    /// array. A view of the same buffer.
    pub fn permute(&self, order: &[usize]) -> Result<Array, ChunkError> {
        let mut seen = order.to_vec();
        seen.sort_unstable();
        ensure!(
            seen == (0..self.ndim()).collect::<Vec<_>>(),
            Shape,
            "axis order {order:?} is not a permutation of 0..{}",
            self.ndim()
        );
        Ok(crate::dispatch!(map: self, a => a.clone().permuted_axes(IxDyn(order))))
    }

    /// The same values in a contiguous row-major buffer (no copy when the
    /// buffer already is).
    pub fn to_standard_layout(&self) -> Array {
        crate::dispatch!(map: self, a => if a.is_standard_layout() {
            a.clone()
        } else {
            let mut values = Vec::with_capacity(a.len());
            extend_row_major(&mut values, a.view());
            ArrayD::from_shape_vec(a.raw_dim(), values).expect("one value per element").into_shared()
        })
    }

    /// The same values in a buffer of their own, row-major. Unlike
    /// [`to_standard_layout`](Self::to_standard_layout) this always copies:
    /// a slice of a larger array keeps that whole array alive, so a piece
    /// that is held for long (a group waiting for its other pieces) is
    /// compacted first, and then holds exactly its own bytes.
    ///
    /// ```
    /// let a = xbeam_chunk::Array::from_1d((0..1000i64).collect());
    /// let piece = a.slice_axis(0, 10..20)?.compact();
    /// assert_eq!(piece.nbytes(), 80);
    /// assert!(piece.equals(&a.slice_axis(0, 10..20)?));
    /// # Ok::<(), xbeam_chunk::ChunkError>(())
    /// ```
    pub fn compact(&self) -> Array {
        crate::dispatch!(map: self, a => {
            let mut values = Vec::with_capacity(a.len());
            extend_row_major(&mut values, a.view());
            ArrayD::from_shape_vec(a.raw_dim(), values).expect("one value per element").into_shared()
        })
    }

    /// Concatenates arrays of one dtype along `axis`; other axes must agree.
    pub fn concat(axis: usize, arrays: &[&Array]) -> Result<Array, ChunkError> {
        let Some(first) = arrays.first() else {
            bail!(Invalid, "cannot concatenate zero arrays")
        };
        first.check_axis(axis)?;
        let mut grid = vec![1; first.ndim()];
        grid[axis] = arrays.len();
        Array::assemble(&grid, arrays)
    }

    /// Assembles a grid of blocks into one array in a single pass: `pieces`
    /// are in C order over `grid`, which has one entry per array axis (the
    /// number of blocks along it). Blocks in the same grid row must agree in
    /// size along the other axes, and all must share a dtype.
    ///
    /// ```
    /// use xbeam_chunk::Array;
    /// let block = |v: i32| Array::from_vec(vec![1, 2], vec![v, v]).unwrap();
    /// let (a, b, c, d) = (block(1), block(2), block(3), block(4));
    /// let whole = Array::assemble(&[2, 2], &[&a, &b, &c, &d])?;
    /// assert_eq!(whole.shape(), &[2, 4]);
    /// assert_eq!(whole.as_view::<i32>()?.iter().copied().collect::<Vec<_>>(), [1, 1, 2, 2, 3, 3, 4, 4]);
    /// # Ok::<(), xbeam_chunk::ChunkError>(())
    /// ```
    pub fn assemble(grid: &[usize], pieces: &[&Array]) -> Result<Array, ChunkError> {
        let cells: usize = grid.iter().product();
        ensure!(
            cells == pieces.len() && cells > 0,
            Invalid,
            "expected {cells} blocks for a grid of {grid:?}, found {}",
            pieces.len()
        );
        let first = pieces[0];
        for p in pieces {
            ensure!(
                p.dtype() == first.dtype(),
                Mismatch,
                "cannot concatenate arrays of {} and {}",
                first.dtype(),
                p.dtype()
            );
            ensure!(
                p.ndim() == grid.len(),
                Shape,
                "cannot assemble a block of shape {:?} into a grid of {} axes",
                p.shape(),
                grid.len()
            );
        }
        let strides = xbeam_key::row_major_strides(grid);
        let block_sizes = block_sizes(grid, &strides, pieces)?;
        if pieces.len() == 1 {
            return Ok(first.clone());
        }
        Ok(crate::dispatch!(map: first, a => {
            let views: Vec<_> = pieces.iter().map(|x| same_type(x, a).view()).collect();
            assemble_row_major(&strides, &block_sizes, &views).into_shared()
        }))
    }

    /// Copies `piece` into this array at `origin` (one index per axis), in
    /// place: a block of a larger chunk being assembled
    /// ([`Assembly`](crate::chunks::Assembly)). The buffer is copied first
    /// only if it is shared. Runs of contiguous elements are copied whole.
    ///
    /// ```
    /// use xbeam_chunk::{Array, DType};
    /// let mut whole = Array::full(DType::I32, &[2, 4], 0.0)?;
    /// whole.assign_at(&[1, 2], &Array::from_vec(vec![1, 2], vec![7, 8])?)?;
    /// assert_eq!(whole.as_view::<i32>()?.iter().copied().collect::<Vec<_>>(), [0, 0, 0, 0, 0, 0, 7, 8]);
    /// let err = whole.assign_at(&[1, 3], &Array::from_vec(vec![1, 2], vec![7, 8])?).unwrap_err();
    /// assert_eq!(err.to_string(), "cannot place a block of shape [1, 2] at [1, 3] in an array of shape [2, 4]");
    /// # Ok::<(), xbeam_chunk::ChunkError>(())
    /// ```
    pub fn assign_at(&mut self, origin: &[usize], piece: &Array) -> Result<(), ChunkError> {
        ensure!(
            piece.dtype() == self.dtype(),
            Mismatch,
            "cannot place a block of {} in an array of {}",
            piece.dtype(),
            self.dtype()
        );
        let fits = origin.len() == self.ndim()
            && piece.ndim() == self.ndim()
            && origin
                .iter()
                .zip(piece.shape())
                .zip(self.shape())
                .all(|((&o, &n), &len)| o + n <= len);
        ensure!(
            fits,
            Shape,
            "cannot place a block of shape {:?} at {origin:?} in an array of shape {:?}",
            piece.shape(),
            self.shape()
        );
        crate::dispatch!(array: self, a => {
            let src = same_type(piece, a).view();
            let mut dst = a.slice_each_axis_mut(|ax| {
                let (o, n) = (origin[ax.axis.index()], src.shape()[ax.axis.index()]);
                Slice::from(o..o + n)
            });
            match dst.as_slice_mut() {
                Some(out) => {
                    let mut at = 0;
                    crate::codec::for_each_run(src, &mut |run: &[_]| {
                        out[at..at + run.len()].clone_from_slice(run);
                        at += run.len();
                    });
                }
                None => dst.assign(&src),
            }
        });
        Ok(())
    }

    /// Exact equality of dtype, shape and values, where NaN equals NaN (as
    /// xarray's `equals`).
    pub fn equals(&self, other: &Array) -> bool {
        if self.dtype() != other.dtype() || self.shape() != other.shape() {
            return false;
        }
        crate::dispatch!(array: self, a => {
            let b = same_type(other, a);
            a.iter().zip(b.iter()).all(|(x, y)| x == y || (x.is_missing() && y.is_missing()))
        })
    }

    /// Whether numeric values agree within `atol + rtol * |other|` (NaN
    /// equals NaN); non-numeric arrays must be equal.
    pub fn allclose(&self, other: &Array, rtol: f64, atol: f64) -> bool {
        if self.shape() != other.shape() {
            return false;
        }
        if !(self.dtype().is_numeric() && other.dtype().is_numeric()) {
            return self.equals(other);
        }
        let (Ok(a), Ok(b)) = (self.to_f64(), other.to_f64()) else {
            return false;
        };
        a.iter().zip(b.iter()).all(|(x, y)| {
            (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= atol + rtol * y.abs()
        })
    }

    /// The values as `f64` (bool, integers, floats); a clear error otherwise.
    pub fn to_f64(&self) -> Result<ArrayD<f64>, ChunkError> {
        ensure!(
            self.dtype().is_numeric(),
            Invalid,
            "expected a numeric array, found {}",
            self.dtype()
        );
        Ok(crate::dispatch!(array: self, a => a.map(|v| v.to_f64().unwrap_or(f64::NAN))))
    }

    /// The values converted to `dtype` (numeric to numeric, as NumPy's
    /// `astype`: floats to integers truncate, NaN becomes 0).
    pub fn astype(&self, dtype: DType) -> Result<Array, ChunkError> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        ensure!(
            self.dtype().is_numeric() && dtype.is_numeric(),
            Invalid,
            "cannot convert an array of {} to {dtype}",
            self.dtype()
        );
        let values = self.to_f64()?;
        fn conv<T: Element>(v: &ArrayD<f64>) -> Array {
            T::wrap(
                v.map(|x| T::from_f64(*x).expect("numeric types convert from f64"))
                    .into_shared(),
            )
        }
        Ok(crate::dispatch!(dtype: dtype,
            T => conv::<T>(&values),
            DType::Bool => conv::<bool>(&values),
            _ => conv::<f64>(&values),
        ))
    }

    /// Applies `f` to every value. Floats keep their dtype; integers and
    /// bools give `f64` (as NumPy's true division would).
    ///
    /// ```
    /// let a = xbeam_chunk::Array::from_1d(vec![1.0f32, 2.0]);
    /// let b = a.map_f64(|x| x * 10.0)?;
    /// assert_eq!(b.as_view::<f32>()?.as_slice().unwrap(), &[10.0, 20.0]);
    /// # Ok::<(), xbeam_chunk::ChunkError>(())
    /// ```
    pub fn map_f64(&self, f: impl Fn(f64) -> f64) -> Result<Array, ChunkError> {
        Ok(match self {
            Array::F32(a) => Array::F32(a.map(|&x| f(f64::from(x)) as f32).into_shared()),
            Array::F64(a) => Array::F64(a.map(|&x| f(x)).into_shared()),
            _ => Array::F64(self.to_f64()?.mapv(f).into_shared()),
        })
    }

    /// Reduces over `axes`, skipping missing values (NaN, NaT).
    ///
    /// Result dtypes follow xarray: `sum` keeps floats and gives `int64` for
    /// integers and bools (accumulated in `f64`, exact to 2^53); `mean`
    /// keeps floats and gives `float64` otherwise; `min`/`max` keep the dtype
    /// (datetimes too); `count` is `int64`.
    ///
    /// ```
    /// use xbeam_chunk::{Array, Reduction};
    /// let a = Array::from_vec(vec![2, 2], vec![1.0, f64::NAN, 3.0, 4.0])?;
    /// let m = a.reduce(Reduction::Mean, &[1])?;
    /// assert_eq!(m.as_view::<f64>()?.as_slice().unwrap(), &[1.0, 3.5]);
    /// # Ok::<(), xbeam_chunk::ChunkError>(())
    /// ```
    pub fn reduce(&self, op: Reduction, axes: &[usize]) -> Result<Array, ChunkError> {
        for &axis in axes {
            self.check_axis(axis)?;
        }
        let dtype = self.dtype();
        let has_missing =
            dtype.is_float() || matches!(dtype, DType::DateTime(..) | DType::TimeDelta(_));
        match op {
            Reduction::Min | Reduction::Max => {
                let lane: usize = axes.iter().map(|&d| self.shape()[d]).product();
                let kept: usize =
                    (0..self.ndim()).filter(|d| !axes.contains(d)).map(|d| self.shape()[d]).product();
                ensure!(
                    lane > 0 || has_missing || kept == 0,
                    Invalid,
                    "cannot take the {} of {dtype} values over an empty dimension",
                    op.name()
                );
                Ok(crate::dispatch!(map: self, a => reduce_rows(a, axes, |row| extreme(row, op == Reduction::Max, has_missing)).into_shared()))
            }
            Reduction::Count => Ok(Array::I64(
                crate::dispatch!(array: self, a => reduce_rows(a, axes, |row| row.iter().filter(|v| !(has_missing && v.is_missing())).count() as i64)).into_shared(),
            )),
            Reduction::Sum | Reduction::Mean => {
                if !dtype.is_numeric() {
                    return Err(ChunkError::Unsupported { op: op.name().into(), dtype: dtype.name() });
                }
                let values = self.to_f64()?;
                let out = reduce_rows(&values.into_shared(), axes, |row| {
                    let (mut sum, mut n) = (0.0, 0u64);
                    for v in row.iter().filter(|v| !v.is_nan()) {
                        sum += *v;
                        n += 1;
                    }
                    if op == Reduction::Mean { sum / n as f64 } else { sum }
                });
                match (op, dtype) {
                    (_, DType::F32) => Array::from(out).astype(DType::F32),
                    (Reduction::Sum, _) if !dtype.is_float() => Array::from(out).astype(DType::I64),
                    _ => Ok(Array::from(out)),
                }
            }
        }
    }

    /// The value at flat (row-major) position `i` (`None` past the end),
    /// formatted as xarray's repr shows it: `1.5` (float64 with 4 significant digits), `nan`, `3`,
    /// `True`, `'abc'`, `2020-01-01` (midnight) or `2020-01-01T06:00:00`,
    /// `NaT`.
    pub fn format_value(&self, i: usize) -> Option<String> {
        if i >= self.len() {
            return None;
        }
        let index = IxDyn(&xbeam_key::unravel(i, self.shape()));
        Some(match self {
            Array::DateTime(a, u, c) => match a[&index] {
                i64::MIN => "NaT".into(),
                t => {
                    let date = c.from_ticks(t, *u);
                    let text = date.to_string();
                    match text.split_once('T') {
                        Some((day, _)) if date.is_midnight() => day.to_owned(),
                        _ => text,
                    }
                }
            },
            Array::TimeDelta(a, u) => match a[&index] {
                i64::MIN => "NaT".into(),
                t => format!("{t} {}", u.name()),
            },
            Array::String(a) => xbeam_key::repr::quote(&a[&index]),
            Array::Bool(a) => {
                if a[&index] {
                    "True".into()
                } else {
                    "False".into()
                }
            }
            Array::F32(a) => {
                crate::display::shortest_float(f64::from(a[&index]), &format!("{:?}", a[&index]))
            }
            Array::F64(a) => crate::display::python_g4(a[&index]),
            other => crate::dispatch!(array: other, a => format!("{:?}", a[&index])),
        })
    }

    fn check_axis(&self, axis: usize) -> Result<(), ChunkError> {
        ensure!(
            axis < self.ndim(),
            Shape,
            "axis {axis} is out of bounds for an array of {} dimensions",
            self.ndim()
        );
        Ok(())
    }
}

/// Appends the elements of `view` in row-major order, copying whole
/// contiguous rows at a time (ndarray's own copy of a strided dynamic-rank
/// view goes element by element, an order of magnitude slower).
fn extend_row_major<T: Clone>(out: &mut Vec<T>, view: ArrayViewD<'_, T>) {
    crate::codec::for_each_run(view, &mut |run: &[T]| out.extend_from_slice(run));
}

/// The size of each block along each axis, checking that blocks in the
/// same grid row agree.
fn block_sizes(
    grid: &[usize],
    strides: &[usize],
    pieces: &[&Array],
) -> Result<Vec<Vec<usize>>, ChunkError> {
    let sizes: Vec<Vec<usize>> = (0..grid.len())
        .map(|a| {
            (0..grid[a])
                .map(|g| pieces[g * strides[a]].shape()[a])
                .collect()
        })
        .collect();
    for (flat, p) in pieces.iter().enumerate() {
        for a in 0..grid.len() {
            let g = flat / strides[a] % grid[a];
            if p.shape()[a] != sizes[a][g] {
                let reference = pieces[g * strides[a]].shape();
                bail!(Shape, "cannot concatenate arrays of shapes {reference:?} and {:?}: they differ along axis {a}", p.shape());
            }
        }
    }
    Ok(sizes)
}

/// Writes a grid of blocks into a new row-major array, one output row (the
/// last axis) at a time, copying each block's contiguous row segments.
fn assemble_row_major<T: Clone>(
    grid_strides: &[usize],
    block_sizes: &[Vec<usize>],
    views: &[ArrayViewD<'_, T>],
) -> ArrayD<T> {
    let ndim = grid_strides.len();
    let full_shape: Vec<usize> = block_sizes.iter().map(|s| s.iter().sum()).collect();
    let contiguous: Vec<std::borrow::Cow<'_, [T]>> = views
        .iter()
        .map(|v| {
            if let Some(s) = v.as_slice() {
                std::borrow::Cow::Borrowed(s)
            } else {
                let mut owned = Vec::with_capacity(v.len());
                extend_row_major(&mut owned, v.view());
                std::borrow::Cow::Owned(owned)
            }
        })
        .collect();
    let mut out = Vec::with_capacity(full_shape.iter().product());
    if ndim == 0 {
        out.extend_from_slice(&contiguous[0]);
        return ArrayD::from_shape_vec(IxDyn(&full_shape), out).expect("one value");
    }
    // Trailing axes with a single block are merged into the last axis that
    // has several (a block row then is one run: e.g. pieces stacked along
    // the first axis are copied whole, not one short row at a time).
    let split_axes = block_sizes
        .iter()
        .rposition(|s| s.len() > 1)
        .map_or(1, |a| a + 1);
    let inner: usize = full_shape[split_axes..].iter().product();
    let ndim = split_axes;
    let mut block_sizes = block_sizes[..ndim].to_vec();
    for w in &mut block_sizes[ndim - 1] {
        *w *= inner;
    }
    let shape: Vec<usize> = block_sizes.iter().map(|s| s.iter().sum()).collect();
    // For every output coordinate along each outer axis: (block index, index within the block).
    let locate: Vec<Vec<(usize, usize)>> = block_sizes[..ndim - 1]
        .iter()
        .map(|sizes| {
            sizes
                .iter()
                .enumerate()
                .flat_map(|(g, &n)| (0..n).map(move |l| (g, l)))
                .collect()
        })
        .collect();
    let rows: usize = shape[..ndim - 1].iter().product();
    let mut coord = vec![0usize; ndim - 1];
    for _ in 0..rows {
        let mut block_flat = 0;
        let mut local_row = 0;
        for a in 0..ndim - 1 {
            let (g, l) = locate[a][coord[a]];
            block_flat += g * grid_strides[a];
            local_row = local_row * block_sizes[a][g] + l;
        }
        for (g, &width) in block_sizes[ndim - 1].iter().enumerate() {
            let start = local_row * width;
            out.extend_from_slice(&contiguous[block_flat + g][start..start + width]);
        }
        for a in (0..ndim - 1).rev() {
            coord[a] += 1;
            if coord[a] < shape[a] {
                break;
            }
            coord[a] = 0;
        }
    }
    ArrayD::from_shape_vec(IxDyn(&full_shape), out).expect("blocks fill the assembled shape")
}

fn element_dtype<T: Element>(_: &ArrayData<T>) -> DType {
    T::DTYPE
}

/// Applies `f` to each lane of the reduced axes: the kept axes (in order)
/// form the result's shape.
fn reduce_rows<T: Element, R>(
    a: &ArrayData<T>,
    axes: &[usize],
    f: impl Fn(&[T]) -> R,
) -> ArrayD<R> {
    let keep: Vec<usize> = (0..a.ndim()).filter(|d| !axes.contains(d)).collect();
    let order: Vec<usize> = keep.iter().copied().chain(axes.iter().copied()).collect();
    let keep_shape: Vec<usize> = keep.iter().map(|&d| a.shape()[d]).collect();
    let lane: usize = axes.iter().map(|&d| a.shape()[d]).product();
    let permuted = a.view().permuted_axes(IxDyn(&order));
    let contiguous = permuted.as_standard_layout();
    let flat = contiguous
        .as_slice()
        .expect("standard layout is contiguous");
    let values: Vec<R> = if lane == 0 {
        (0..keep_shape.iter().product()).map(|_| f(&[])).collect()
    } else {
        flat.chunks(lane).map(&f).collect()
    };
    ArrayD::from_shape_vec(IxDyn(&keep_shape), values).expect("one value per kept position")
}

fn extreme<T: Element>(row: &[T], max: bool, has_missing: bool) -> T {
    let mut best: Option<&T> = None;
    for v in row {
        if has_missing && v.is_missing() {
            continue;
        }
        best = match best {
            Some(b) if (max && v > b) || (!max && v < b) => Some(v),
            None => Some(v),
            keep => keep,
        };
    }
    best.cloned()
        .or_else(T::missing)
        .expect("reduce() rejects empty lanes of types without a missing value")
}

impl PartialEq for Array {
    /// Same as [`Array::equals`]: NaN equals NaN.
    fn eq(&self, other: &Array) -> bool {
        self.equals(other)
    }
}

impl std::fmt::Debug for Array {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Array<{}{:?}>[", self.dtype(), self.shape())?;
        let n = self.len();
        let shown: Vec<String> = (0..n.min(20))
            .filter_map(|i| self.format_value(i))
            .collect();
        write!(
            f,
            "{}{}]",
            shown.join(", "),
            if n > 20 { ", ..." } else { "" }
        )
    }
}
