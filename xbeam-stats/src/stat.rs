//! The statistics a reduction can compute, and their output dtypes.

use std::fmt;
use std::str::FromStr;

use xbeam_chunk::DType;

use crate::StatsError;

/// One statistic of a reduction (`--stat` in the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stat {
    /// Number of valid (not NaN) values, as xarray's `count`.
    Count,
    /// Sum of valid values (0 where there are none, as xarray's `sum`).
    Sum,
    /// Mean of valid values.
    Mean,
    /// Variance about the mean, with `ddof` delta degrees of freedom.
    Var,
    /// Standard deviation, the square root of [`Stat::Var`].
    Std,
    /// Smallest valid value.
    Min,
    /// Largest valid value.
    Max,
}

impl Stat {
    /// Every statistic, in the order the CLI lists them.
    pub const ALL: [Stat; 7] = [
        Stat::Mean,
        Stat::Sum,
        Stat::Std,
        Stat::Var,
        Stat::Min,
        Stat::Max,
        Stat::Count,
    ];

    /// The name used on the command line and in `<var>_<stat>` names.
    pub fn name(self) -> &'static str {
        match self {
            Stat::Count => "count",
            Stat::Sum => "sum",
            Stat::Mean => "mean",
            Stat::Var => "var",
            Stat::Std => "std",
            Stat::Min => "min",
            Stat::Max => "max",
        }
    }

    /// The CF `cell_methods` method name, where CF has one (not for count).
    pub fn cell_method(self) -> Option<&'static str> {
        match self {
            Stat::Count => None,
            Stat::Sum => Some("sum"),
            Stat::Mean => Some("mean"),
            Stat::Var => Some("variance"),
            Stat::Std => Some("standard_deviation"),
            Stat::Min => Some("minimum"),
            Stat::Max => Some("maximum"),
        }
    }

    /// Whether the statistic can be weighted (as xarray's `weighted`:
    /// mean, sum, var and std).
    pub fn weightable(self) -> bool {
        matches!(self, Stat::Sum | Stat::Mean | Stat::Var | Stat::Std)
    }

    /// The dtype xarray returns for this statistic of an `input` variable:
    /// `int64` counts; min and max keep the input dtype; an unweighted sum
    /// of integers is `int64`; other float results keep a float input's
    /// dtype and are `float64` for integers and for weighted reductions.
    ///
    /// ```
    /// use xbeam_chunk::DType;
    /// use xbeam_stats::Stat;
    ///
    /// assert_eq!(Stat::Mean.output_dtype(DType::F32, false), DType::F32);
    /// assert_eq!(Stat::Mean.output_dtype(DType::F32, true), DType::F64);
    /// assert_eq!(Stat::Sum.output_dtype(DType::I16, false), DType::I64);
    /// assert_eq!(Stat::Max.output_dtype(DType::I16, false), DType::I16);
    /// assert_eq!(Stat::Count.output_dtype(DType::F32, false), DType::I64);
    /// ```
    pub fn output_dtype(self, input: DType, weighted: bool) -> DType {
        let float = matches!(input, DType::F32 | DType::F64);
        match self {
            Stat::Count => DType::I64,
            Stat::Min | Stat::Max => input,
            _ if weighted => DType::F64,
            Stat::Sum if !float => DType::I64,
            _ if float => input,
            _ => DType::F64,
        }
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Stat {
    type Err = StatsError;

    /// Parses `mean`, `sum`, `std`, `var`, `min`, `max` or `count`.
    fn from_str(s: &str) -> Result<Stat, StatsError> {
        Stat::ALL
            .into_iter()
            .find(|x| x.name() == s.trim())
            .ok_or_else(|| StatsError::UnknownStat(s.to_owned()))
    }
}

/// Parses a comma-separated list of statistics (`mean,std`), refusing an
/// empty list and repeats.
///
/// ```
/// use xbeam_stats::{parse_stats, Stat};
///
/// assert_eq!(parse_stats("mean,std")?, vec![Stat::Mean, Stat::Std]);
/// assert!(parse_stats("mean,mean").is_err());
/// assert!(parse_stats("median").unwrap_err().to_string().contains("median"));
/// # Ok::<(), xbeam_stats::StatsError>(())
/// ```
pub fn parse_stats(text: &str) -> Result<Vec<Stat>, StatsError> {
    let mut out: Vec<Stat> = Vec::new();
    for part in text.split(',') {
        let stat: Stat = part.parse()?;
        if out.contains(&stat) {
            return Err(StatsError::Repeated(stat.name().to_owned()));
        }
        out.push(stat);
    }
    Ok(out)
}
