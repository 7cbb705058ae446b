//! `normalize_chunks`: one chunk size per dimension from what a user asked
//! for, exactly as xarray-beam's high-level API resolves it (through Dask's
//! `normalize_chunks` and its byte-target algorithm).

// Dask's byte-target algorithm is float arithmetic on sizes and counts;
// the casts mirror Python's `float(n)` and `int(x)`.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use xbeam_key::{repr, ChunkRequest, ChunkSpec, ChunksRequest};

use crate::{ChunkError, Template};

/// Dask's `array.chunk-size-tolerance` as xarray-beam sets it.
const CHUNK_SIZE_TOLERANCE: f64 = 1.25;

/// A bound on the byte-target iterations (Dask's loop stops when its
/// multiplier stops changing; this only guards against a float cycle).
const MAX_ROUNDS: usize = 1000;

/// One chunk size per template dimension, in template order, from a
/// chunks request — xarray-beam's `normalize_chunks(chunks, template,
/// split_vars, previous_chunks)`.
///
/// - A value for every dimension ([`ChunksRequest::All`]) applies to each.
/// - Per dimension: the `...` entry is the value of every dimension not
///   named; a dimension not named (and no `...`) keeps its size in
///   `previous_chunks` when given (and not empty), else its full size.
/// - `-1` is the full size; a size larger than the dimension is clamped to
///   it; explicit sizes must add up to the dimension, and give their first.
/// - Byte targets (`"100MB"`) choose sizes with Dask's algorithm (chunk
///   size tolerance 1.25): square-ish chunks without `previous_chunks`, and
///   multiples of the previous chunks with it. The bytes per element are
///   the sum of the data variables' item sizes, or the largest with
///   `split_vars` (one byte for a template without data variables). Rust
///   templates carry no Dask chunking, so every data variable counts.
/// - `auto`, several distinct byte targets, and inputs Dask rejects are
///   errors with xarray-beam's messages. A dimension the template lacks is
///   an error too (Dask rejects the longer chunks tuple).
///
/// Unlike xarray-beam, a malformed string (`"invalid_chunks"`) is refused
/// earlier, when it is parsed into a [`ChunksRequest`].
///
/// ```
/// use indexmap::IndexMap;
/// use xbeam_chunk::chunks::normalize_chunks;
/// use xbeam_chunk::{DType, Template, VarSchema};
///
/// let schema = VarSchema { dims: vec!["x".into(), "y".into()], dtype: DType::F64, attrs: Default::default(), encoding: Default::default() };
/// let template = Template::new(
///     [("x".to_string(), 100), ("y".to_string(), 100)].into(),
///     [("foo".to_string(), schema)].into(),
///     Default::default(),
///     Default::default(),
/// )?;
/// let previous: IndexMap<String, u64> = [("x".to_string(), 10), ("y".to_string(), 25)].into();
///
/// let chunks = normalize_chunks(&"8000B".parse()?, &template, false, Some(&previous))?;
/// assert_eq!(chunks, IndexMap::from([("x".to_string(), 20), ("y".to_string(), 50)]));
///
/// let chunks = normalize_chunks(&"x=-1,y=1000".parse()?, &template, false, None)?;
/// assert_eq!(chunks, IndexMap::from([("x".to_string(), 100), ("y".to_string(), 100)]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn normalize_chunks(
    request: &ChunksRequest,
    template: &Template,
    split_vars: bool,
    previous_chunks: Option<&IndexMap<String, u64>>,
) -> Result<IndexMap<String, u64>, ChunkError> {
    let previous_chunks = previous_chunks.filter(|p| !p.is_empty());
    let invalid = || {
        ChunkError::Invalid(format!(
            "Invalid input for normalize_chunks: chunks={}, previous_chunks={}, template={template}",
            request.py_repr(),
            previous_chunks.map_or_else(|| "None".to_owned(), |p| repr::dict(p.iter())),
        ))
    };
    let requested = per_dimension(request, template)?;
    if requested.keys().any(|d| !template.sizes().contains_key(d)) {
        return Err(invalid());
    }
    let defaults = previous_chunks.unwrap_or(template.sizes());
    let mut chunks = Vec::with_capacity(template.sizes().len());
    let mut limit = None;
    for (dim, &size) in template.sizes() {
        let entry = match requested.get(dim) {
            Some(ChunkRequest::Spec(ChunkSpec::Full)) => Entry::Fixed(size),
            Some(ChunkRequest::Spec(ChunkSpec::Size(c))) => Entry::Fixed(*c),
            Some(ChunkRequest::Spec(ChunkSpec::Sizes(v))) => Entry::Sizes(v.clone()),
            Some(ChunkRequest::Bytes(b)) => {
                limit = Some(*b);
                Entry::Auto
            }
            Some(_) => return Err(invalid()),
            None => Entry::Fixed(*defaults.get(dim).ok_or_else(invalid)?),
        };
        chunks.push(entry);
    }
    let shape: Vec<u64> = template.sizes().values().copied().collect();
    if let Some(limit) = limit {
        let previous = previous_chunks
            .map(|p| {
                template
                    .sizes()
                    .iter()
                    .map(|(d, &s)| block_dims(s, *p.get(d)?))
                    .collect::<Option<Vec<_>>>()
            })
            .map(|p| p.ok_or_else(invalid))
            .transpose()?;
        let problem = AutoChunks {
            shape: &shape,
            limit: limit.max(1) as f64,
            itemsize: itemsize(template, split_vars) as f64,
        };
        match previous {
            Some(previous) => problem.with_previous(&mut chunks, &previous),
            None => problem.without_previous(&mut chunks),
        }
        .ok_or_else(invalid)?;
    }
    template
        .sizes()
        .keys()
        .zip(chunks)
        .zip(&shape)
        .map(|((dim, entry), &size)| {
            Ok((dim.clone(), first_chunk(&entry, size).ok_or_else(invalid)?))
        })
        .collect()
}

/// The request per dimension name, after xarray-beam's own checks and the
/// `...` default.
fn per_dimension(
    request: &ChunksRequest,
    template: &Template,
) -> Result<IndexMap<String, ChunkRequest>, ChunkError> {
    let all_dims = |value: &ChunkRequest| {
        template
            .sizes()
            .keys()
            .map(|d| (d.clone(), value.clone()))
            .collect()
    };
    match request {
        ChunksRequest::All(ChunkRequest::Auto) => Err(ChunkError::Invalid(
            "Unlike Dask, xarray_beam.normalize_chunks() does not support chunks='auto'. Supply an explicit number of bytes instead, e.g., chunks='100MB'.".into(),
        )),
        ChunksRequest::All(value) => Ok(all_dims(value)),
        ChunksRequest::PerDim { dims, rest } => {
            let values = || dims.values().chain(rest.as_ref());
            let targets: BTreeSet<u64> = values()
                .filter_map(|v| match v {
                    ChunkRequest::Bytes(b) => Some(*b),
                    _ => None,
                })
                .collect();
            if targets.len() > 1 {
                return Err(ChunkError::Invalid(format!(
                    "cannot provide multiple distinct chunk sizes in bytes: {}",
                    request.py_repr()
                )));
            }
            if values().any(|v| *v == ChunkRequest::Auto) {
                return Err(ChunkError::Invalid(format!(
                    "Unlike Dask, xarray_beam.normalize_chunks() does not support 'auto' chunk sizes. Supply an explicit number of bytes instead, e.g., '100MB'. Got chunks={}",
                    request.py_repr()
                )));
            }
            let mut out = dims.clone();
            if let Some(rest) = rest {
                let defaults: IndexMap<String, ChunkRequest> = all_dims(rest);
                for (d, v) in defaults {
                    out.entry(d).or_insert(v);
                }
            }
            Ok(out)
        }
        _ => unreachable!("ChunksRequest has two forms"),
    }
}

/// Bytes per element for byte targets (see [`normalize_chunks`]).
fn itemsize(template: &Template, split_vars: bool) -> usize {
    let sizes = template.data_vars().values().map(|v| v.dtype.itemsize());
    match (template.data_vars().is_empty(), split_vars) {
        (true, _) => 1,
        (false, true) => sizes.max().unwrap_or(1),
        (false, false) => sizes.sum(),
    }
}

/// One dimension's chunks in Dask's terms.
#[derive(Debug, Clone, PartialEq)]
enum Entry {
    /// To be chosen from the byte target.
    Auto,
    /// Chunks of this size (the last may be smaller).
    Fixed(u64),
    /// Explicit sizes.
    Sizes(Vec<u64>),
}

impl Entry {
    /// The size that counts toward a block's bytes (Dask's `largest_block`
    /// factor): the size, or the largest of explicit sizes.
    fn block(&self) -> Option<f64> {
        match self {
            Entry::Auto => None,
            Entry::Fixed(c) => Some(*c as f64),
            Entry::Sizes(v) => Some(v.iter().copied().max().unwrap_or(0) as f64),
        }
    }
}

/// The first chunk of a dimension of `size` (xarray-beam keeps only that),
/// or `None` where Dask raises.
fn first_chunk(entry: &Entry, size: u64) -> Option<u64> {
    match entry {
        Entry::Fixed(_) if size == 0 => Some(0),
        Entry::Fixed(0) | Entry::Auto => None,
        Entry::Fixed(c) => Some((*c).min(size)),
        Entry::Sizes(v) if v.is_empty() || v.iter().sum::<u64>() != size => None,
        Entry::Sizes(v) => Some(v[0]),
    }
}

/// Dask's `blockdims_from_blockshape` for one dimension: chunks of `chunk`
/// and a remainder; `None` for a zero chunk of a non-empty dimension.
fn block_dims(size: u64, chunk: u64) -> Option<Vec<u64>> {
    if size == 0 {
        return Some(vec![0]);
    }
    if chunk == 0 {
        return None;
    }
    let mut out = vec![chunk; usize::try_from(size / chunk).ok()?];
    if size % chunk != 0 {
        out.push(size % chunk);
    }
    Some(out)
}

/// Dask's `round_to`: below the dimension size, the whole part (at least
/// one); above it, a multiple of it. `None` where Dask divides by zero.
fn round_to(c: f64, s: u64) -> Option<f64> {
    let s = s as f64;
    if c <= s {
        Some(c.trunc().max(1.0))
    } else if s == 0.0 {
        None
    } else {
        Some((c / s).floor() * s)
    }
}

/// NumPy's median: the middle value, or the mean of the two middle ones.
fn median(values: &[u64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2] as f64,
        _ => f64::midpoint(sorted[n / 2 - 1] as f64, sorted[n / 2] as f64),
    }
}

/// The chunk size the previous chunks of a dimension suggest: their most
/// frequent size if it is above one and at least half of them have it,
/// else the dimension size (Dask's `ideal_shape`).
fn ideal(previous: &[u64], size: u64) -> u64 {
    let mut counts: Vec<(u64, usize)> = Vec::new();
    for &c in previous {
        match counts.iter_mut().find(|(v, _)| *v == c) {
            Some((_, n)) => *n += 1,
            None => counts.push((c, 1)),
        }
    }
    // The first of the most frequent, as Python's `max` picks.
    let mode = counts
        .iter()
        .fold(None, |best: Option<(u64, usize)>, &(v, n)| match best {
            Some((_, bn)) if bn >= n => best,
            _ => Some((v, n)),
        });
    match mode {
        Some((mode, count)) if mode > 1 && count as f64 >= previous.len() as f64 / 2.0 => mode,
        _ => size,
    }
}

/// A value of Dask's `result` / `median_chunks` dictionaries.
#[derive(Debug, Clone, PartialEq)]
enum Proposal {
    Size(f64),
    Sizes(Vec<u64>),
}

impl Proposal {
    /// Its factor in `_compute_multiplier` (`None` when Python's `if r`
    /// skips it).
    fn factor(&self) -> Option<f64> {
        match self {
            Proposal::Size(x) if *x != 0.0 => Some(*x),
            Proposal::Sizes(v) if !v.is_empty() => v.iter().copied().max().map(|m| m as f64),
            _ => None,
        }
    }
}

/// Dask's `auto_chunks` for one byte target.
struct AutoChunks<'a> {
    shape: &'a [u64],
    limit: f64,
    itemsize: f64,
}

impl AutoChunks<'_> {
    fn largest_block(chunks: &[Entry]) -> f64 {
        chunks.iter().filter_map(Entry::block).product()
    }

    /// Without previous chunks: equal-ish sizes over the automatic
    /// dimensions; a dimension smaller than that is taken whole and the
    /// rest recomputed.
    fn without_previous(&self, chunks: &mut [Entry]) -> Option<()> {
        loop {
            let autos: Vec<usize> = (0..chunks.len())
                .filter(|&i| chunks[i] == Entry::Auto)
                .collect();
            if autos.is_empty() {
                return Some(());
            }
            let largest = Self::largest_block(chunks);
            if self.itemsize == 0.0 || largest == 0.0 {
                return None;
            }
            let size = (self.limit / self.itemsize / largest).powf(1.0 / autos.len() as f64);
            let small: Vec<usize> = autos
                .iter()
                .copied()
                .filter(|&i| (self.shape[i] as f64) < size)
                .collect();
            if small.is_empty() {
                for i in autos {
                    chunks[i] = Entry::Fixed(round_to(size, self.shape[i])? as u64);
                }
                return Some(());
            }
            for i in small {
                chunks[i] = Entry::Sizes(vec![self.shape[i]]);
            }
        }
    }

    /// With previous chunks (always the case for a chunked dataset): grow
    /// or shrink the previous chunks of the automatic dimensions by the
    /// same factor, merging whole previous chunks where they fit.
    fn with_previous(&self, chunks: &mut [Entry], previous: &[Vec<u64>]) -> Option<()> {
        let mut autos: BTreeSet<usize> = (0..chunks.len())
            .filter(|&i| chunks[i] == Entry::Auto)
            .collect();
        let mut largest = Self::largest_block(chunks);
        let mut medians: BTreeMap<usize, Proposal> = autos
            .iter()
            .map(|&a| (a, Proposal::Size(median(&previous[a]))))
            .collect();
        let mut multiplier = self.multiplier(largest, &medians);
        // When shrinking, Dask updates the medians in place (its `result`
        // *is* `median_chunks`); when growing, results are kept apart.
        let reduce_case = multiplier < 1.0;
        let mut separate: BTreeMap<usize, Proposal> = BTreeMap::new();
        let ideal: Vec<u64> = previous
            .iter()
            .zip(self.shape)
            .map(|(p, &s)| ideal(p, s))
            .collect();
        let mut remaining = true;
        let mut rounds = 0;
        while remaining && rounds < MAX_ROUNDS {
            rounds += 1;
            let n = autos.len() as f64;
            remaining = false;
            for a in autos.clone() {
                let Some(Proposal::Size(median)) = medians.get(&a).cloned() else {
                    return None;
                };
                let proposed = median * multiplier.powf(1.0 / n);
                let max_chunk_size = proposed * CHUNK_SIZE_TOLERANCE.powf(1.0 / n);
                let shape = self.shape[a];
                let value = if proposed > shape as f64 {
                    chunks[a] = Entry::Fixed(shape);
                    autos.remove(&a);
                    medians.remove(&a);
                    remaining = true;
                    largest *= shape as f64;
                    Proposal::Sizes(vec![shape])
                } else if reduce_case
                    || previous[a].iter().copied().max().unwrap_or(0) as f64 > max_chunk_size
                {
                    if proposed < 1.0 {
                        remaining = true;
                        autos.remove(&a);
                    }
                    Proposal::Size(round_to(proposed, ideal[a])?)
                } else {
                    Proposal::Sizes(merge_previous(&previous[a], proposed))
                };
                if reduce_case {
                    medians.insert(a, value);
                } else {
                    separate.insert(a, value);
                }
            }
            if remaining || reduce_case {
                let last = multiplier;
                multiplier = self.multiplier(largest, &medians);
                #[allow(clippy::float_cmp)] // Dask stops on exact equality
                if multiplier != last {
                    remaining = true;
                }
            }
        }
        let result = if reduce_case { medians } else { separate };
        for (a, value) in result {
            chunks[a] = match value {
                Proposal::Size(x) => Entry::Fixed(x as u64),
                Proposal::Sizes(v) if v.is_empty() => Entry::Fixed(0),
                Proposal::Sizes(v) => Entry::Sizes(v),
            };
        }
        Some(())
    }

    /// Dask's `_compute_multiplier`: how much larger the blocks may grow.
    fn multiplier(&self, largest: f64, proposals: &BTreeMap<usize, Proposal>) -> f64 {
        let product: f64 = proposals.values().filter_map(Proposal::factor).product();
        self.limit / self.itemsize / largest / product
    }
}

/// Whole previous chunks merged greedily while they fit in `proposed`.
fn merge_previous(previous: &[u64], proposed: f64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut current = 0;
    for &c in previous {
        if (c + current) as f64 <= proposed {
            current += c;
        } else {
            if current > 0 {
                out.push(current);
            }
            current = c;
        }
    }
    if current > 0 {
        out.push(current);
    }
    out
}
