//! Consolidating chunks into larger ones, optionally filling missing ones.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::ops::Range;

use indexmap::IndexMap;
use xbeam_key::{chunk_offsets, repr, row_major_strides, unravel, ChunkGrid, Key, VarSet};

use super::{leading_reprs, merge_chunks, split_chunks, vars_repr, Chunk, TargetChunks};
use crate::error::bail;
use crate::{ChunkError, Dataset, Template};

/// Combines chunks into one chunk per distinct `vars`, as xarray-beam's
/// `consolidate_chunks`.
///
/// Keys must be unique. Chunks are grouped by `key.vars`; along every
/// dimension a group must have the same offsets as all groups together, and
/// its chunks must form a full grid. Variables with a dimension are
/// concatenated along it; the others must be equal. The result's key has
/// the smallest offset per dimension. Sizes are not checked against offsets
/// (contiguity is trusted, as upstream).
///
/// ```
/// use xbeam_chunk::{chunks::consolidate_chunks, Array, Dataset, Variable};
/// use xbeam_key::Key;
///
/// let chunk = |v: Vec<i64>| Dataset::new().with_data_var("foo", Variable::new(["x"], Array::from_1d(v)).unwrap()).unwrap();
/// let out = consolidate_chunks(vec![
///     (Key::from_offsets([("x", 3)]), chunk(vec![3, 4])),
///     (Key::from_offsets([("x", 0)]), chunk(vec![0, 1, 2])),
/// ])?;
/// assert_eq!(out[0].0, Key::from_offsets([("x", 0)]));
/// assert_eq!(out[0].1.data_var("foo")?.data().as_view::<i64>()?.as_slice().unwrap(), &[0, 1, 2, 3, 4]);
/// # Ok::<(), xbeam_chunk::ChunkError>(())
/// ```
pub fn consolidate_chunks(
    inputs: impl IntoIterator<Item = Chunk>,
) -> Result<Vec<Chunk>, ChunkError> {
    let inputs: Vec<Chunk> = inputs.into_iter().collect();
    check_unique(&inputs)?;
    let groups = group_by_vars(&inputs);
    let all_offsets = offsets_by_dim(inputs.iter().map(|(k, _)| k));
    for (vars, members) in &groups {
        for (dim, expected) in &all_offsets {
            let present: BTreeSet<u64> = members
                .iter()
                .filter_map(|&i| inputs[i].0.offset(dim))
                .collect();
            if !present.is_empty() && &present != expected {
                bail!(
                    Chunks,
                    "some expected chunks are missing for vars={}",
                    vars_repr(vars.as_ref())
                );
            }
        }
    }
    groups
        .iter()
        .map(|(vars, members)| {
            combine_group(
                vars.as_ref(),
                &members.iter().map(|&i| &inputs[i]).collect::<Vec<_>>(),
            )
        })
        .collect()
}

fn check_unique(inputs: &[Chunk]) -> Result<(), ChunkError> {
    let mut seen = HashSet::with_capacity(inputs.len());
    if inputs.iter().all(|(k, _)| seen.insert(k)) {
        return Ok(());
    }
    let keys: Vec<String> = inputs.iter().map(|(k, _)| k.to_string()).collect();
    bail!(Chunks, "chunk keys are not unique: [{}]", keys.join(", "))
}

fn group_by_vars(inputs: &[Chunk]) -> IndexMap<Option<VarSet>, Vec<usize>> {
    let mut groups: IndexMap<Option<VarSet>, Vec<usize>> = IndexMap::new();
    for (i, (key, _)) in inputs.iter().enumerate() {
        groups.entry(key.vars().cloned()).or_default().push(i);
    }
    groups
}

/// The distinct offsets along each dimension of `keys`, dimensions in
/// first-seen order.
fn offsets_by_dim<'a>(keys: impl Iterator<Item = &'a Key>) -> IndexMap<&'a str, BTreeSet<u64>> {
    let mut dims: IndexMap<&str, BTreeSet<u64>> = IndexMap::new();
    for key in keys {
        for (d, &o) in key.offsets() {
            dims.entry(d.as_str()).or_default().insert(o);
        }
    }
    dims
}

/// Places one vars-group's chunks in an N-d grid and concatenates it,
/// last dimension first.
fn combine_group(vars: Option<&VarSet>, members: &[&Chunk]) -> Result<Chunk, ChunkError> {
    let offsets: Vec<(&str, Vec<u64>)> = offsets_by_dim(members.iter().map(|(k, _)| k))
        .into_iter()
        .map(|(d, s)| (d, s.into_iter().collect()))
        .collect();
    let shape: Vec<usize> = offsets.iter().map(|(_, o)| o.len()).collect();
    let cells: usize = shape.iter().product();
    if cells != members.len() {
        bail!(
            Chunks,
            "some expected chunks are missing for vars={} shape: ({}{}) len(inputs): {}",
            vars_repr(vars),
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            if shape.len() == 1 { "," } else { "" },
            members.len()
        );
    }
    let missing = || {
        ChunkError::Chunks(format!(
            "some expected chunks are missing for vars={}",
            vars_repr(vars)
        ))
    };
    let mut grid: Vec<Option<&Dataset>> = vec![None; cells];
    for (key, ds) in members {
        let mut flat = 0;
        for (d, o) in &offsets {
            // A key without this dimension starts at 0 along it.
            let i = o
                .binary_search(&key.offset_or_zero(d))
                .map_err(|_| missing())?;
            flat = flat * o.len() + i;
        }
        if grid[flat].replace(ds).is_some() {
            return Err(missing());
        }
    }
    let grid: Vec<&Dataset> = grid
        .into_iter()
        .collect::<Option<_>>()
        .ok_or_else(missing)?;
    check_contiguous(vars, &offsets, &grid, &shape)?;
    let key = Key::from_parts(offsets.iter().map(|(d, o)| (*d, o[0])), vars.cloned());
    let combined = Dataset::combine_nested(
        &grid,
        &shape,
        &offsets.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
    )
    .map_err(|cause| combine_error(vars, &offsets, &grid, &shape, &cause))?;
    Ok((key, combined))
}

/// Chunks must tile each dimension: every chunk ends where the next one
/// begins. xarray-beam trusts this; a gap or an overlap would silently shift
/// data, so here it is an error.
fn check_contiguous(
    vars: Option<&VarSet>,
    offsets: &[(&str, Vec<u64>)],
    grid: &[&Dataset],
    shape: &[usize],
) -> Result<(), ChunkError> {
    for ((dim, starts), stride) in offsets.iter().zip(row_major_strides(shape)) {
        for g in 0..starts.len().saturating_sub(1) {
            let Some(&size) = grid[g * stride].sizes().get(*dim) else {
                continue;
            };
            if starts[g] + size != starts[g + 1] {
                bail!(
                    Chunks,
                    "chunks for vars={} are not contiguous along {}: the chunk at offset {} has size {size}, \
                     so the next should start at {}, but it starts at {}",
                    vars_repr(vars),
                    repr::quote(dim),
                    starts[g],
                    starts[g] + size,
                    starts[g + 1]
                );
            }
        }
    }
    Ok(())
}

fn combine_error(
    vars: Option<&VarSet>,
    offsets: &[(&str, Vec<u64>)],
    grid: &[&Dataset],
    shape: &[usize],
    cause: &ChunkError,
) -> ChunkError {
    let offsets_repr = repr::dict(offsets.iter().map(|(d, o)| (*d, format!("{o:?}"))));
    let mut msg = format!(
        "combining nested dataset chunks for vars={} with offsets={offsets_repr} failed.",
        vars_repr(vars)
    );
    for (((dim, _), stride), &n) in offsets.iter().zip(row_major_strides(shape)).zip(shape) {
        let leading = (0..n).map(|i| grid[i * stride]);
        let _ = write!(
            msg,
            "\nLeading datasets along dimension {}:\n{}",
            repr::quote(dim),
            leading_reprs(leading)
        );
    }
    let _ = write!(msg, "\nCause: {cause}");
    ChunkError::Chunks(msg)
}

/// How [`consolidate_chunks_filled`] completes a group with missing chunks.
#[derive(Debug, Clone)]
pub struct FillMissing<'a> {
    /// The full dataset's schema: sizes, dtypes, coordinates of fill chunks.
    pub template: &'a Template,
    /// The chunk grid of the inputs: which chunks are expected.
    pub source_chunks: &'a ChunkGrid,
    /// The extent of each consolidated chunk along the dimensions being
    /// consolidated (as `ConsolidateChunks`' target); other dimensions are
    /// not filled along.
    pub target_chunks: &'a TargetChunks,
    /// The value of missing elements: NaN (the default for floats and
    /// datetimes), or any number for integer variables.
    pub fill_value: f64,
}

/// Like [`consolidate_chunks`], but chunks that are missing from the
/// expected grid are created filled with `fill.fill_value` rather than
/// failing (an open request from xarray-beam's users: sparse inputs, failed
/// downloads). The expected grid of each consolidated chunk is the part of
/// `fill.source_chunks` inside the target chunk holding the group's first
/// chunk.
///
/// ```
/// use xbeam_chunk::{chunks::{consolidate_chunks_filled, target_chunks, FillMissing}, Array, Dataset, Template, Variable};
/// use xbeam_key::{ChunkGrid, ChunkSpec, Key};
///
/// let full = Dataset::new().with_data_var("t", Variable::new(["time"], Array::from_1d(vec![0f32; 6]))?)?;
/// let grid = ChunkGrid::new([("time", 6)], [("time", ChunkSpec::Size(2))])?;
/// let chunk = full.isel([("time", 2..4)])?.map_f64(|_| 1.0)?;
/// let out = consolidate_chunks_filled(
///     vec![(Key::from_offsets([("time", 2)]), chunk)],
///     &FillMissing { template: &Template::from(&full), source_chunks: &grid,
///                    target_chunks: &target_chunks([("time", ChunkSpec::Size(6))]), fill_value: f64::NAN },
/// )?;
/// let values = out[0].1.data_var("t")?.data().to_f64()?;
/// assert!(values[[0]].is_nan() && values[[2]] == 1.0 && values[[5]].is_nan());
/// # Ok::<(), xbeam_chunk::ChunkError>(())
/// ```
pub fn consolidate_chunks_filled(
    inputs: impl IntoIterator<Item = Chunk>,
    fill: &FillMissing<'_>,
) -> Result<Vec<Chunk>, ChunkError> {
    let mut inputs: Vec<Chunk> = inputs.into_iter().collect();
    check_unique(&inputs)?;
    let groups = group_by_vars(&inputs);
    let mut filled = Vec::new();
    for (vars, members) in &groups {
        let keys: Vec<&Key> = members.iter().map(|&i| &inputs[i].0).collect();
        let mut expected: Vec<(String, Vec<(u64, u64)>)> = Vec::new();
        for dim in keys
            .iter()
            .flat_map(|k| k.offsets().keys())
            .collect::<indexmap::IndexSet<_>>()
        {
            expected.push((dim.clone(), expected_chunks(dim, &keys, fill)?));
        }
        let present: HashSet<Vec<u64>> = keys
            .iter()
            .map(|k| expected.iter().map(|(d, _)| k.offset_or_zero(d)).collect())
            .collect();
        let lens: Vec<usize> = expected.iter().map(|(_, e)| e.len()).collect();
        for flat in 0..lens.iter().product() {
            let pick: Vec<(u64, u64)> = unravel(flat, &lens)
                .iter()
                .zip(&expected)
                .map(|(&i, (_, e))| e[i])
                .collect();
            if present.contains(&pick.iter().map(|p| p.0).collect::<Vec<_>>()) {
                continue;
            }
            let region: IndexMap<String, Range<u64>> = expected
                .iter()
                .zip(&pick)
                .map(|((d, _), (o, n))| (d.clone(), *o..o + n))
                .collect();
            let key = Key::from_parts(
                expected
                    .iter()
                    .zip(&pick)
                    .map(|((d, _), (o, _))| (d.clone(), *o)),
                vars.clone(),
            );
            filled.push((
                key,
                fill.template
                    .fill_chunk(&region, vars.as_ref(), fill.fill_value)?,
            ));
        }
    }
    inputs.extend(filled);
    consolidate_chunks(inputs)
}

/// The `(offset, size)` of each source chunk expected along `dim` in the
/// consolidated chunk that holds `keys`.
fn expected_chunks(
    dim: &str,
    keys: &[&Key],
    fill: &FillMissing<'_>,
) -> Result<Vec<(u64, u64)>, ChunkError> {
    let sizes = fill.source_chunks.chunk_sizes(dim)?;
    let starts = chunk_offsets(sizes);
    let present: BTreeSet<u64> = keys.iter().map(|k| k.offset_or_zero(dim)).collect();
    // every present chunk must sit on the source grid (chunk_size checks it)
    let present_sizes: Vec<(u64, u64)> = present
        .iter()
        .map(|&o| Ok((o, fill.source_chunks.chunk_size(dim, o)?)))
        .collect::<Result<_, ChunkError>>()?;
    let Some(spec) = fill.target_chunks.get(dim) else {
        return Ok(present_sizes);
    };
    let first = *present.first().expect("a group has at least one chunk");
    let start = spec.round_down(first);
    let dim_size: u64 = sizes.iter().sum();
    let target_sizes = spec.normalize(dim, dim_size)?;
    let target_starts = chunk_offsets(&target_sizes);
    let end = target_starts
        .binary_search(&start)
        .map_or(dim_size, |i| start + target_sizes[i]);
    if let Some(outside) = present.iter().find(|&&o| o < start || o >= end) {
        bail!(Chunks, "chunks to consolidate along {} span more than one target chunk: offset {outside} is outside {start}..{end}", repr::quote(dim));
    }
    Ok(starts
        .iter()
        .zip(sizes)
        .filter(|(o, _)| (start..end).contains(*o))
        .map(|(&o, &n)| (o, n))
        .collect())
}

/// Consolidates chunks, then merges every variable into one chunk, as
/// xarray-beam's `consolidate_fully`. The key has the union of offsets and
/// the set of all data variables.
pub fn consolidate_fully(inputs: impl IntoIterator<Item = Chunk>) -> Result<Chunk, ChunkError> {
    let consolidated = consolidate_chunks(inputs)?;
    let mut offsets: IndexMap<String, u64> = IndexMap::new();
    for (key, chunk) in &consolidated {
        for (d, &o) in key.offsets() {
            match offsets.get(d) {
                Some(&existing) if existing != o => bail!(
                    Chunks,
                    "consolidating chunks fully failed because chunk\n{chunk}\n has offsets {} that differ from {}",
                    repr::dict(key.offsets().iter()),
                    repr::dict(offsets.iter())
                ),
                _ => {
                    offsets.insert(d.clone(), o);
                }
            }
        }
    }
    let datasets: Vec<&Dataset> = consolidated.iter().map(|(_, d)| d).collect();
    let merged = merge_chunks(&datasets)?;
    // the merge rejects duplicate names, so these are every chunk's variables
    let names: VarSet = merged.data_vars().keys().cloned().collect();
    Ok((Key::from_parts(offsets, Some(names)), merged))
}

/// A list of sets as Python prints it: `[{'foo'}, {'bar'}]`.
pub(crate) fn sets_repr(sets: &[VarSet]) -> String {
    format!(
        "[{}]",
        sets.iter().map(repr::set).collect::<Vec<_>>().join(", ")
    )
}

/// Consolidates `inputs`, then splits every result at `target` (xarray-beam's
/// `in_memory_rechunk`; target dimensions must be chunk dimensions).
pub fn in_memory_rechunk(
    inputs: impl IntoIterator<Item = Chunk>,
    target: &TargetChunks,
) -> Result<Vec<Chunk>, ChunkError> {
    let mut out = Vec::new();
    for (key, ds) in consolidate_chunks(inputs)? {
        out.extend(split_chunks(&key, &ds, target)?);
    }
    Ok(out)
}

/// The key a chunk is grouped under by `ConsolidateChunks`: each offset
/// rounded down to the start of its target chunk (dimensions without a
/// target keep their offset), vars kept.
///
/// ```
/// use xbeam_chunk::chunks::{rounded_key, target_chunks};
/// use xbeam_key::{ChunkSpec, Key};
/// let key = Key::from_offsets([("x", 25), ("y", 7)]);
/// let target = target_chunks([("x", ChunkSpec::Size(10))]);
/// assert_eq!(rounded_key(&key, &target), Key::from_offsets([("x", 20), ("y", 7)]));
/// ```
pub fn rounded_key(key: &Key, target: &TargetChunks) -> Key {
    key.offsets()
        .iter()
        .fold(key.clone(), |k, (d, &o)| match target.get(d) {
            Some(spec) => k.with_offset(d.clone(), spec.round_down(o)),
            None => k,
        })
}

/// Consolidates chunks into target-sized chunks in memory, as xarray-beam's
/// `ConsolidateChunks` transform does across a pipeline: group by
/// [`rounded_key`], then [`consolidate_chunks`] each group. Each group must
/// contain the chunk that starts its target chunk (upstream asserts this;
/// here it is an error that names both keys). Output is sorted by key.
pub fn consolidate_chunks_to(
    inputs: impl IntoIterator<Item = Chunk>,
    target: &TargetChunks,
) -> Result<Vec<Chunk>, ChunkError> {
    let mut groups: IndexMap<Key, Vec<Chunk>> = IndexMap::new();
    for (key, ds) in inputs {
        groups
            .entry(rounded_key(&key, target))
            .or_default()
            .push((key, ds));
    }
    let mut out = Vec::with_capacity(groups.len());
    for (rounded, group) in groups {
        for (key, ds) in consolidate_chunks(group)? {
            if key != rounded {
                bail!(Chunks, "consolidated chunk has key {key}, but its group expected {rounded}: the chunk that starts the target chunk is missing");
            }
            out.push((key, ds));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
