//! The groups a reduction folds into: groupers, the WeatherBench 2
//! window over the day of the year, and weights along reduced dimensions.

use indexmap::IndexMap;
use xbeam_chunk::{DType, Template};
use xbeam_stats::{Grouper, Groups};

use super::{Options, Weights};
use crate::error::{ensure_usage, Error};

/// How the steps of the grouped dimension fall into groups.
pub(super) struct Grouping {
    /// The dimension folded in order (grouped, or reduced), if any.
    pub(super) dim: Option<String>,
    pub(super) groups: Groups,
    /// A second group per step: day 365 of a common year also fills day
    /// 366 under a window (empty without one).
    pub(super) dup: Vec<Option<usize>>,
    /// The window, if any.
    pub(super) window: Option<Window>,
}

/// A window over the day-of-year axis of the groups (read as `[outer,
/// days, inner]`), streamed by [`xbeam_stats::WindowStream`].
#[derive(Debug, Clone)]
pub(super) struct Window {
    /// Which grouper is the day of the year.
    pub(super) at: usize,
    pub(super) outer: usize,
    /// The days present, from 0.
    pub(super) days: Vec<usize>,
    pub(super) period: usize,
    pub(super) width: usize,
}

impl Window {
    /// Groups after the day axis (the groups are `[outer, days, inner]`).
    pub(super) fn inner(&self, groups: &Groups) -> usize {
        groups.count() / (self.outer * self.days.len()).max(1)
    }

    /// The window as [`Values::window_quantiles`](xbeam_stats::Values::window_quantiles) takes it, over `groups`.
    pub(super) fn of_groups(&self, groups: &Groups) -> xbeam_stats::DayWindow {
        xbeam_stats::DayWindow {
            outer: self.outer,
            inner: self.inner(groups),
            days: self.days.clone(),
            period: self.period,
            width: self.width,
        }
    }
}

/// The day-of-year part under a window: the days present (and day 366
/// when a year of 366 days is present: day 365 of a shorter year then also
/// counts as day 366, the second list, as WeatherBench 2 fills the missing
/// day from the day before), the step positions, and the period the window
/// wraps around (the longest year present: 366, 365 or 360 days).
pub(super) fn window_days(time: &xbeam_chunk::Array) -> Result<WindowDays, Error> {
    use xbeam_chunk::TimeField;
    let (_, _, calendar) = time.datetime_ticks()?;
    let ints = |f: TimeField| -> Result<Vec<Option<i64>>, Error> {
        let a = time.time_field(f)?;
        Ok(match a.as_view::<i64>() {
            Ok(v) => v.iter().map(|&x| Some(x)).collect(),
            Err(_) => a
                .to_f64()?
                .iter()
                .map(|x| (!x.is_nan()).then_some(*x as i64))
                .collect(),
        })
    };
    let (days, years) = (ints(TimeField::DayOfYear)?, ints(TimeField::Year)?);
    let period = years
        .iter()
        .flatten()
        .map(|&y| calendar.days_in_year(y))
        .max()
        .unwrap_or(365);
    let filled: Vec<bool> = days
        .iter()
        .zip(&years)
        .map(|(d, y)| {
            matches!((d, y), (Some(365), Some(y)) if period == 366 && calendar.days_in_year(*y) == 365)
        })
        .collect();
    let mut present: std::collections::BTreeSet<i64> = days.iter().flatten().copied().collect();
    if filled.contains(&true) {
        present.insert(366);
    }
    let labels: Vec<i64> = present.into_iter().collect();
    let at = |d: i64| labels.binary_search(&d).ok();
    let positions = days.iter().map(|d| d.and_then(at)).collect();
    let dup = filled
        .iter()
        .map(|&f| if f { at(366) } else { None })
        .collect();
    let offsets = labels.iter().map(|&d| (d - 1) as usize).collect();
    Ok(WindowDays {
        part: (xbeam_stats::Labels::Ints(labels), positions),
        dup,
        offsets,
        period: period as usize,
    })
}

/// See [`window_days`].
pub(super) struct WindowDays {
    pub(super) part: (xbeam_stats::Labels, Vec<Option<usize>>),
    pub(super) dup: Vec<Option<usize>>,
    /// Each label's day, from 0.
    pub(super) offsets: Vec<usize>,
    pub(super) period: usize,
}

/// The time coordinate's dimension and the groups, or one group of all.
/// Without groupers: a reduction over a time dimension folds it in order
/// as one group; otherwise nothing is folded.
pub(super) fn ungrouped(options: &Options, t: &Template) -> Grouping {
    let time_dim = options.over.iter().find(|d| {
        t.coords()
            .get(*d)
            .is_some_and(|c| matches!(c.dtype(), DType::DateTime(..)))
    });
    let n = time_dim.map_or(0, |d| t.sizes()[d] as usize);
    Grouping {
        dim: time_dim.cloned(),
        groups: Groups {
            labels: Vec::new(),
            index: vec![Some(0); n],
        },
        dup: Vec::new(),
        window: None,
    }
}

pub(super) fn groups_of(options: &Options, t: &Template) -> Result<Grouping, Error> {
    let plain = |dim, groups| Grouping {
        dim,
        groups,
        dup: Vec::new(),
        window: None,
    };
    let Some(first) = options.groupby.first() else {
        return Ok(ungrouped(options, t));
    };
    let mut dim: Option<String> = None;
    let mut parts = Vec::with_capacity(options.groupby.len());
    let mut window_at = None;
    for g in &options.groupby {
        let coord = t.coords().get(g.coord()).ok_or_else(|| {
            Error::Usage(format!(
                "grouper {g} names coordinate {:?}, which {} does not have: expected one of {}",
                g.coord(),
                options.src.display(),
                crate::key::repr::tuple(t.coords().keys())
            ))
        })?;
        ensure_usage!(
            coord.dims().len() == 1,
            "grouper {g} needs a 1-D coordinate, but {:?} has dimensions {:?}",
            g.coord(),
            coord.dims()
        );
        ensure_usage!(
            !g.needs_time() || matches!(coord.dtype(), DType::DateTime(..)),
            "grouper {g} needs a datetime coordinate, but {:?} is {}",
            g.coord(),
            coord.dtype()
        );
        let d = &coord.dims()[0];
        if let Some(prev) = &dim {
            ensure_usage!(
                prev == d,
                "groupers must group one dimension: {first} groups {prev:?} and {g} groups {d:?}"
            );
        }
        dim = Some(d.clone());
        let is_day = matches!(g, Grouper::Time(t) if t.field == xbeam_chunk::TimeField::DayOfYear);
        if options.window.is_some() && is_day {
            let days = window_days(coord.data())?;
            window_at = Some((parts.len(), days.dup, days.offsets, days.period));
            parts.push(days.part);
        } else {
            parts.push(
                g.labels(coord.data())
                    .map_err(|e| Error::Usage(e.to_string()))?,
            );
        }
    }
    let dim = dim.expect("at least one grouper");
    let lens: Vec<usize> = parts.iter().map(|p| p.0.len()).collect();
    let positions: Vec<Vec<Option<usize>>> = parts.iter().map(|p| p.1.clone()).collect();
    let groups = Groups::from_parts(t.sizes()[&dim] as usize, parts);
    ensure_usage!(
        groups.count() > 0,
        "grouping by {} leaves no group: every label is missing (NaN or NaT)",
        first
    );
    let Some((k, extra, offsets, period)) = window_at else {
        return Ok(plain(Some(dim), groups));
    };
    let width = options.window.unwrap_or(0) as usize;
    ensure_usage!(
        width <= period,
        "--window must be at most the {period} days of a year in the calendar of {dim:?}: found {width}"
    );
    // the second group of a step: its day moved from 365 to 366
    let inner: usize = lens[k + 1..].iter().product();
    let dup = groups
        .index
        .iter()
        .zip(extra)
        .zip(&positions[k])
        .map(|((g, e), p)| match (g, e, p) {
            (Some(g), Some(e), Some(p)) => Some(g + (e - p) * inner),
            _ => None,
        })
        .collect();
    let window = Window {
        at: k,
        outer: lens[..k].iter().product(),
        days: offsets,
        period,
        width,
    };
    Ok(Grouping {
        dim: Some(dim),
        groups,
        dup,
        window: Some(window),
    })
}

pub(super) fn weights_of(
    options: &Options,
    t: &Template,
) -> Result<IndexMap<String, Vec<f64>>, Error> {
    let mut out = IndexMap::new();
    for w in &options.weights {
        ensure_usage!(
            options.over.contains(&w.dim),
            "weights along {:?} need {:?} in --over",
            w.dim,
            w.dim
        );
        let c = t
            .coords()
            .get(&w.dim)
            .filter(|c| c.dims().len() == 1)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "weights along {:?} need a 1-D coordinate {:?}",
                    w.dim, w.dim
                ))
            })?;
        let values = c.data().to_f64().map_err(|_| {
            Error::Usage(format!(
                "weights along {:?} need a numeric coordinate, found {}",
                w.dim,
                c.dtype()
            ))
        })?;
        let values: Vec<f64> = values
            .iter()
            .map(|&v| match w.weights {
                Weights::Cos => v.to_radians().cos(),
                Weights::Values => v,
            })
            .collect();
        out.insert(w.dim.clone(), values);
    }
    Ok(out)
}
