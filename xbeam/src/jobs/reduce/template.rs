//! The output store's template: variables, coordinates, CF attributes
//! (`cell_methods`, climatology bounds) and chunks.

use indexmap::IndexMap;
use serde_json::Value as Json;
use xbeam_chunk::ndarray::{ArrayD, IxDyn};
use xbeam_chunk::{Array, Attrs, DType, Template, VarSchema, Variable};
use xbeam_key::ChunkSpec;
use xbeam_stats::{Grouper, Groups};

use super::budget::group_chunks;
use super::{out_name, outputs, Options, VarPlan};
use crate::error::{ensure_usage, Error};

/// The coordinate of a climatology's bounds, and its second dimension.
pub(super) const BOUNDS: &str = "climatology_bounds";
pub(super) const BOUNDS_DIM: &str = "nv";

/// CF climatology bounds (CF 7.4) when grouping by parts of a time
/// coordinate: for each group, the first and the last time of the input
/// steps in it, `[groups..., nv]`. `None` for other groupings, when the
/// input has an `nv` dimension, or when some group has no step (its
/// bounds would be NaT, which xarray cannot decode in cftime calendars).
pub(super) fn climatology_bounds(
    options: &Options,
    t: &Template,
    groups: &Groups,
    group_dims: &[String],
) -> Result<Option<Variable>, Error> {
    let times = options
        .groupby
        .iter()
        .all(|g| matches!(g, Grouper::Time(_)));
    let Some(first) = options.groupby.first() else {
        return Ok(None);
    };
    if !times || t.sizes().contains_key(BOUNDS_DIM) || groups.present().contains(&false) {
        return Ok(None);
    }
    let (ticks, unit, calendar) = t.coords()[first.coord()].data().datetime_ticks()?;
    let mut bounds = vec![[i64::MAX, i64::MIN]; groups.count()];
    for (&tick, g) in ticks.iter().zip(&groups.index) {
        if let (Some(g), true) = (g, tick != i64::MIN) {
            bounds[*g] = [bounds[*g][0].min(tick), bounds[*g][1].max(tick)];
        }
    }
    let flat: Vec<i64> = bounds.iter().flatten().copied().collect();
    let mut shape: Vec<usize> = groups.labels.iter().map(xbeam_stats::Labels::len).collect();
    shape.push(2);
    let data = ArrayD::from_shape_vec(IxDyn(&shape), flat)
        .map_err(|e| Error::Check(format!("climatology bounds: {e}")))?;
    let dims: Vec<String> = group_dims
        .iter()
        .cloned()
        .chain([BOUNDS_DIM.to_owned()])
        .collect();
    Ok(Some(Variable::new(
        dims,
        Array::datetime(data, unit, calendar),
    )?))
}

/// The output's coordinates: each group dimension's labels, the quantile
/// levels, the input's coordinates along kept dimensions only, and the
/// climatology bounds (whose `nv` dimension joins `sizes`).
pub(super) fn output_coords(
    options: &Options,
    t: &Template,
    groups: &Groups,
    group_dims: &[String],
    sizes: &mut IndexMap<String, u64>,
    reduced: &[&str],
) -> Result<IndexMap<String, Variable>, Error> {
    let mut coords = IndexMap::new();
    for (d, l) in group_dims.iter().zip(&groups.labels) {
        coords.insert(d.clone(), Variable::new([d.clone()], l.to_array())?);
    }
    if !options.quantiles.is_empty() {
        let levels = Array::from_1d(options.quantiles.clone());
        coords.insert("quantile".into(), Variable::new(["quantile"], levels)?);
    }
    for (name, c) in t.coords() {
        // coordinates along a reduced dimension go (resampling names its
        // new dimension as the reduced one)
        let kept = c
            .dims()
            .iter()
            .all(|d| sizes.contains_key(d) && !reduced.contains(&d.as_str()));
        if kept && !coords.contains_key(name) {
            coords.insert(name.clone(), c.clone());
        }
    }
    if let Some(bounds) = climatology_bounds(options, t, groups, group_dims)? {
        sizes.insert(BOUNDS_DIM.into(), 2);
        if let Some(first) = group_dims.first().and_then(|d| coords.get_mut(d)) {
            first
                .attrs_mut()
                .insert("climatology".into(), Json::String(BOUNDS.into()));
        }
        coords.insert(BOUNDS.into(), bounds);
    }
    Ok(coords)
}

/// The output template and its chunks.
pub(super) fn output_template(
    options: &Options,
    t: &Template,
    vars: &[VarPlan],
    groups: &Groups,
    group_dims: &[String],
    step: &IndexMap<String, u64>,
    fold: Option<&str>,
) -> Result<(Template, IndexMap<String, ChunkSpec>), Error> {
    let mut reduced: Vec<&str> = fold.into_iter().collect();
    for d in &options.over {
        if !reduced.contains(&d.as_str()) {
            reduced.push(d);
        }
    }
    let mut sizes: IndexMap<String, u64> = IndexMap::new();
    for (d, l) in group_dims.iter().zip(&groups.labels) {
        sizes.insert(d.clone(), l.len() as u64);
    }
    if !options.quantiles.is_empty() {
        sizes.insert("quantile".into(), options.quantiles.len() as u64);
    }
    for (d, &n) in t.sizes() {
        if !reduced.contains(&d.as_str()) {
            ensure_usage!(
                !sizes.contains_key(d),
                "the group dimension {d:?} is also a dimension of {}",
                options.src.display()
            );
            sizes.insert(d.clone(), n);
        }
    }
    let coords = output_coords(options, t, groups, group_dims, &mut sizes, &reduced)?;
    let weighted = !options.weights.is_empty() || options.window.is_some();
    // absent groups are NaN, so integer results become float64 (as xarray)
    let absent =
        !group_dims.is_empty() && (options.window.is_some() || groups.present().contains(&false));
    let methods = reduced.join(": ");
    let by = match (group_dims.is_empty(), options.window) {
        (true, _) => String::new(),
        (false, None) => format!(" (grouped by {})", group_dims.join(", ")),
        (false, Some(w)) => format!(
            " (grouped by {}, over years and a {w}-day triangular window on dayofyear)",
            group_dims.join(", ")
        ),
    };
    let mut data_vars = IndexMap::new();
    for v in vars {
        let src = &t.data_vars()[&v.name];
        let dims: Vec<String> = group_dims
            .iter()
            .cloned()
            .chain(v.kept.iter().map(|&a| v.dims[a].clone()))
            .collect();
        for &stat in &options.stats {
            let mut attrs = plain_attrs(&src.attrs);
            if let (Some(m), false) = (stat.cell_method(), reduced.is_empty()) {
                let before = attrs
                    .get("cell_methods")
                    .and_then(Json::as_str)
                    .unwrap_or("");
                let sep = if before.is_empty() { "" } else { " " };
                let text = format!("{before}{sep}{methods}: {m}{by}");
                attrs.insert("cell_methods".into(), Json::String(text));
            }
            let schema = VarSchema {
                dims: dims.clone(),
                dtype: match stat.output_dtype(v.dtype, weighted) {
                    DType::F32 | DType::F64 => stat.output_dtype(v.dtype, weighted),
                    _ if absent => DType::F64,
                    other => other,
                },
                attrs,
                encoding: Attrs::new(),
            };
            let n = outputs(&options.stats, &options.quantiles);
            data_vars.insert(out_name(&v.name, stat.name(), n), schema);
        }
        if !options.quantiles.is_empty() {
            let n = outputs(&options.stats, &options.quantiles);
            let schema = quantile_schema(options, v, group_dims, &src.attrs);
            data_vars.insert(out_name(&v.name, "quantile", n), schema);
        }
    }
    let itemsize = 8u64;
    let block_bytes: u64 = sizes
        .iter()
        .filter(|(d, _)| !group_dims.contains(d) && *d != BOUNDS_DIM)
        .map(|(d, &n)| step.get(d).copied().unwrap_or(n).min(n))
        .product::<u64>()
        * itemsize;
    let mut chunks: IndexMap<String, ChunkSpec> = IndexMap::new();
    for (d, c) in group_dims.iter().zip(group_chunks(groups, block_bytes)) {
        chunks.insert(d.clone(), ChunkSpec::Size(c));
    }
    for (d, &n) in &sizes {
        if !group_dims.contains(d) {
            let c = step.get(d).copied().unwrap_or(n);
            chunks.insert(d.clone(), ChunkSpec::Size(c.min(n).max(1)));
        }
    }
    let template = Template::new(sizes, data_vars, coords, t.attrs().clone())?;
    Ok((template, chunks))
}

/// Whether a variable's quantiles have a `quantile` dimension, and their
/// dtype, as xarray gives them: grouped, a float variable keeps its dtype
/// and one without the grouped dimension is repeated unchanged, with no
/// `quantile` dimension; otherwise (and for the weighted quantiles of
/// WeatherBench 2's window) float64 over `quantile`.
pub(super) fn quantile_form(options: &Options, v: &VarPlan) -> (bool, DType) {
    let grouped = !options.groupby.is_empty();
    let weighted = options.window.is_some() && v.fold.is_some();
    let dtype = if grouped && v.dtype.is_float() && !weighted {
        v.dtype
    } else {
        DType::F64
    };
    (!grouped || v.fold.is_some(), dtype)
}

/// The schema of a variable's quantiles.
pub(super) fn quantile_schema(
    options: &Options,
    v: &VarPlan,
    group_dims: &[String],
    attrs: &Attrs,
) -> VarSchema {
    let mut dims = group_dims.to_vec();
    let (levels, dtype) = quantile_form(options, v);
    if levels {
        dims.push("quantile".into());
    }
    dims.extend(v.kept.iter().map(|&a| v.dims[a].clone()));
    VarSchema {
        dims,
        dtype,
        attrs: plain_attrs(attrs),
        encoding: Attrs::new(),
    }
}

/// A variable's attributes without its CF encoding keys (statistics of
/// packed or masked values are plain floats).
pub(in crate::jobs) fn plain_attrs(attrs: &Attrs) -> Attrs {
    const ENCODING: [&str; 6] = [
        "_FillValue",
        "missing_value",
        "scale_factor",
        "add_offset",
        "_Unsigned",
        "dtype",
    ];
    attrs
        .iter()
        .filter(|(k, _)| !ENCODING.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
