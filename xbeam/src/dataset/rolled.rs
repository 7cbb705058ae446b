//! [`ChunkedDataset::rolling`]: moving-window statistics in the high-level
//! API, on the [`Rolling`] transform.

use indexmap::IndexMap;

use super::{ChunkedDataset, Stage};
use crate::chunk::{Template, VarSchema};
use crate::jobs::rolling::rolling_dtype;
use crate::stats::Stat;
use crate::transforms::Rolling;
use crate::Error;

/// A [`ChunkedDataset`] with rolling windows along one dimension, as
/// xarray's `ds.rolling(dim=window)`: set [`center`](Rolled::center) and
/// [`min_periods`](Rolled::min_periods), then reduce with
/// [`mean`](Rolled::mean), ... or [`reduce`](Rolled::reduce).
#[derive(Debug, Clone)]
pub struct Rolled {
    ds: ChunkedDataset,
    dim: String,
    window: u64,
    center: bool,
    min_periods: Option<u64>,
    ddof: u64,
}

impl ChunkedDataset {
    /// Rolling windows of `window` steps along `dim` (trailing unless
    /// [`Rolled::center`]), computed chunk by chunk with halos from the
    /// neighbouring chunks, so the dimension stays split.
    ///
    /// ```
    /// use xbeam::prelude::*;
    /// use xbeam::ChunkedDataset;
    ///
    /// let x = Array::from_1d((0..12).map(f64::from).collect::<Vec<_>>());
    /// let ds = Dataset::new().with_data_var("x", Variable::new(["t"], x)?)?;
    /// let p = Pipeline::new();
    /// let chunked = ChunkedDataset::from_dataset(&p, ds, &"t=5".parse()?)?;
    /// let out = chunked.rolling("t", 4)?.center(true).mean()?.collect(&Runner::local_with_workers(2).quiet())?;
    /// let got = out.data_var("x")?.data().to_f64()?;
    /// assert!(got[[1]].is_nan()); // a centred window of 4 holds [i-2, i+1]
    /// assert_eq!(got[[5]], (3.0 + 4.0 + 5.0 + 6.0) / 4.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A usage error for a dimension the dataset lacks or a window of 0 or
    /// longer than the dimension.
    pub fn rolling(&self, dim: &str, window: u64) -> Result<Rolled, Error> {
        let Some(&n) = self.sizes().get(dim) else {
            return Err(Error::Usage(format!(
                "dimension {dim:?} is not in the dataset: expected one of {}",
                crate::key::repr::tuple(self.sizes().keys())
            )));
        };
        if window == 0 || window > n {
            return Err(Error::Usage(format!(
                "a rolling window must be from 1 to the length of {dim:?} ({n}): found {window}"
            )));
        }
        Ok(Rolled {
            ds: self.clone(),
            dim: dim.to_owned(),
            window,
            center: false,
            min_periods: None,
            ddof: 0,
        })
    }
}

impl Rolled {
    /// Centre each window on its label (xarray's `center=True`).
    pub fn center(mut self, center: bool) -> Rolled {
        self.center = center;
        self
    }

    /// The fewest valid values a window needs (default: the whole window,
    /// so any NaN makes it NaN, as xarray).
    pub fn min_periods(mut self, m: u64) -> Rolled {
        self.min_periods = Some(m);
        self
    }

    /// Delta degrees of freedom of var and std (default 0, as xarray).
    pub fn ddof(mut self, ddof: u64) -> Rolled {
        self.ddof = ddof;
        self
    }

    /// `stat` (mean, sum, std, var, min or max) of every window: variables
    /// along the dimension become float (xarray's dtypes), the others are
    /// kept.
    ///
    /// # Errors
    /// A usage error for [`Stat::Count`] or a `min_periods` outside 1 to
    /// the window.
    pub fn reduce(&self, stat: Stat) -> Result<ChunkedDataset, Error> {
        let src = &self.ds;
        let n = src.sizes()[&self.dim];
        let c = src.chunks.get(&self.dim).copied().unwrap_or(n).max(1);
        let chunks: Vec<u64> = (0..n.div_ceil(c)).map(|i| c.min(n - i * c)).collect();
        let usage = |e: crate::chunk::ChunkError| Error::Usage(e.to_string());
        let mut transform = Rolling::new(&self.dim, self.window, stat, chunks)
            .map_err(usage)?
            .center(self.center)
            .ddof(self.ddof);
        if let Some(m) = self.min_periods {
            transform = transform.min_periods(m).map_err(usage)?;
        }
        let t = &src.template;
        let data_vars: IndexMap<String, VarSchema> = t
            .data_vars()
            .iter()
            .map(|(name, v)| {
                let mut v = v.clone();
                if v.dims.contains(&self.dim) {
                    v.dtype = rolling_dtype(stat, v.dtype);
                }
                (name.clone(), v)
            })
            .collect();
        let template = Template::new(
            t.sizes().clone(),
            data_vars,
            t.coords().clone(),
            t.attrs().clone(),
        )?;
        let name = format!("rolling_{stat}_{}", self.dim);
        let out = src.to_chunks()?.apply(&src.label(&name), transform);
        Ok(src.with(template, src.chunks.clone(), Stage::Chunks(out)))
    }

    stat_methods! {
        /// The mean of every window.
        mean => Mean;
        /// The sum of every window.
        sum => Sum;
        /// The variance of every window.
        var => Var;
        /// The standard deviation of every window.
        std => Std;
        /// The smallest valid value of every window.
        min => Min;
        /// The largest valid value of every window.
        max => Max;
    }
}
