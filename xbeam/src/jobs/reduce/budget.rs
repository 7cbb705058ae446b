//! Sequences (a variable over a block of its kept axes) and fitting
//! them to the memory budget: stripes, workers and output chunks.

use indexmap::IndexMap;
use xbeam_chunk::Template;
use xbeam_key::ChunkSpec;
use xbeam_stats::{Groups, Need};

use super::template::BOUNDS_DIM;
use super::{Options, Sequence, VarPlan};
use crate::error::Error;
use crate::key::{parse_bytes, to_human_size, to_human_size_up};

/// Every sequence: each variable over each block of source chunks of its
/// kept axes, in order.
pub(super) fn sequences(
    vars: &[VarPlan],
    sizes: &IndexMap<String, u64>,
    step: &IndexMap<String, u64>,
) -> Vec<Sequence> {
    let mut out = Vec::new();
    for (vi, v) in vars.iter().enumerate() {
        let axes: Vec<(u64, u64)> = v
            .kept
            .iter()
            .map(|&a| {
                let d = &v.dims[a];
                (sizes[d], step[d])
            })
            .collect();
        let counts: Vec<u64> = axes.iter().map(|(n, s)| n.div_ceil(*s).max(1)).collect();
        let total: u64 = counts.iter().product();
        for mut flat in 0..total {
            let mut block = vec![0..0; axes.len()];
            for k in (0..axes.len()).rev() {
                let (n, s) = axes[k];
                let i = flat % counts[k];
                flat /= counts[k];
                block[k] = i * s..((i + 1) * s).min(n);
            }
            out.push(Sequence { var: vi, block });
        }
    }
    out
}

/// When sequences are too large for a worker's share of the budget: the
/// kept dimension to cut them along (the one with the largest source
/// chunks) and the stripe length, a divisor of that chunk size, so stripes
/// of different blocks never share an output chunk. Each stripe reads the
/// chunks it crosses, so a chunk is decoded once per stripe.
pub(super) fn stripes(
    sequences: &[Sequence],
    vars: &[VarPlan],
    step: &IndexMap<String, u64>,
    largest: u64,
    per_worker: u64,
) -> Option<(String, u64)> {
    let seq = sequences.first()?;
    let v = &vars[seq.var];
    let (k, len) = seq
        .block
        .iter()
        .enumerate()
        .map(|(k, r)| (k, r.end - r.start))
        .max_by_key(|&(_, n)| n)?;
    let dim = v.dims[v.kept[k]].clone();
    let parts = largest.div_ceil(per_worker.max(1)).max(2);
    let want = len.div_ceil(parts).max(1);
    let s = step[&dim];
    let stripe = (1..=want).rev().find(|d| s % d == 0)?;
    Some((dim, stripe))
}

/// Cuts every sequence whose variable keeps `dim` into stripes of
/// `stripe` elements along it.
pub(super) fn split(
    sequences: Vec<Sequence>,
    vars: &[VarPlan],
    dim: &str,
    stripe: u64,
) -> Vec<Sequence> {
    let mut out = Vec::new();
    for seq in sequences {
        let v = &vars[seq.var];
        let Some(k) = v.kept.iter().position(|&a| v.dims[a] == dim) else {
            out.push(seq);
            continue;
        };
        let r = seq.block[k].clone();
        let mut start = r.start;
        while start < r.end {
            let mut block = seq.block.clone();
            block[k] = start..(start + stripe).min(r.end);
            out.push(Sequence {
                var: seq.var,
                block,
            });
            start += stripe;
        }
    }
    out
}

/// Output chunk sizes of the group dimensions: whole from the last while a
/// chunk stays within 4 MiB, then as many groups as fit, then 1.
pub(super) fn group_chunks(groups: &Groups, block_bytes: u64) -> Vec<u64> {
    let mut chunks = vec![1u64; groups.labels.len()];
    let mut bytes = block_bytes.max(1);
    for k in (0..chunks.len()).rev() {
        let n = groups.labels[k].len().max(1) as u64;
        let fit = ((4 << 20) / bytes).clamp(1, n);
        chunks[k] = fit;
        if fit < n {
            break;
        }
        bytes *= n;
    }
    chunks
}

/// Sets the group dimensions' output chunks for the blocks the other
/// dimensions' chunks make (after [`fit_budget`] cut them into stripes).
pub(super) fn regroup(chunks: &mut OutputChunks, group_dims: &[String], groups: &Groups) {
    let block: u64 = chunks
        .iter()
        .filter(|(d, _)| !group_dims.contains(d) && d.as_str() != BOUNDS_DIM)
        .map(|(_, c)| match c {
            ChunkSpec::Size(n) => *n,
            ChunkSpec::Full | ChunkSpec::Sizes(_) => 1,
        })
        .product::<u64>()
        * 8;
    for (d, c) in group_dims.iter().zip(group_chunks(groups, block)) {
        chunks.insert(d.clone(), ChunkSpec::Size(c));
    }
}

/// Bytes a sequence holds at its peak: its fold, the partial made from
/// it, one result, and one source chunk.
pub(super) fn sequence_bytes(
    plan_groups: usize,
    v: &VarPlan,
    seq: &Sequence,
    sizes: &IndexMap<String, u64>,
    step: &IndexMap<String, u64>,
    (need, weighted, (steps, levels, sketch)): (Need, bool, (u64, u64, bool)),
) -> u64 {
    let kept: u64 = seq.block.iter().map(|r| r.end - r.start).product();
    let reduced: u64 = v.reduced.iter().map(|&a| sizes[&v.dims[a]]).product();
    let elems = plan_groups as u64 * kept * reduced;
    let chunk = super::chunk_elems(v, sizes, step) * 8;
    // at its peak a sequence holds its fold and the counts made from it,
    // or its partial, one finalized statistic and its output copy
    let per = (need.fold_bytes() + 8).max(need.partial_bytes() + 16) + 8 * usize::from(weighted);
    // exact quantiles keep every value (f64), and make a result per level
    let steps = if v.fold.is_some() {
        steps
    } else {
        steps.min(1)
    };
    let results = plan_groups as u64 * levels * kept * 2 * 8;
    let quantiles = if sketch {
        // a sketch per group and element (none without levels)
        (levels.min(1) * plan_groups as u64 * kept * reduced) * xbeam_stats::SKETCH_BYTES as u64
            + results
    } else {
        kept * reduced * steps * 8 + results
    };
    elems * per as u64 + chunk + quantiles
}

/// Sequences cut to fit, the stripes they were cut into (if any) and the
/// largest one's bytes (see [`cut_to_fit`]).
pub(super) type Cut = (Vec<Sequence>, Option<(String, u64)>, u64);

/// Cuts `sequences` into stripes when a worker's share of `max_mem`
/// (an eighth kept for reading) cannot hold the largest (`bytes_of`), and
/// returns them with the largest one's bytes; or, when even the cut ones
/// do not fit, that many bytes and a budget that fits. That budget is
/// searched for, not derived: a larger budget cuts coarser stripes, and
/// what does not shrink with a stripe (a source chunk read whole) then
/// weighs more.
pub(super) fn cut_to_fit(
    max_mem: u64,
    workers: usize,
    (sequences, vars, step): (&[Sequence], &[VarPlan], &IndexMap<String, u64>),
    bytes_of: impl Fn(&[Sequence]) -> u64,
) -> Result<Cut, (u64, u64)> {
    let bytes = bytes_of(sequences);
    let cut = |max_mem: u64| -> Cut {
        let per_worker = (max_mem - max_mem / 8) / workers.max(1) as u64;
        if bytes > per_worker {
            if let Some((dim, stripe)) = stripes(sequences, vars, step, bytes, per_worker) {
                let cut = split(sequences.to_vec(), vars, &dim, stripe);
                let bytes = bytes_of(&cut);
                return (cut, Some((dim, stripe)), bytes);
            }
        }
        (sequences.to_vec(), None, bytes)
    };
    let fits = |bytes: u64, max_mem: u64| bytes + max_mem / 8 <= max_mem;
    let fitted = cut(max_mem);
    if fits(fitted.2, max_mem) {
        return Ok(fitted);
    }
    let mut enough = fitted.2 + fitted.2 / 7 + 1;
    for _ in 0..64 {
        // the budget as the refusal prints it (rounded up), which is the
        // one a user then gives
        enough = parse_bytes(&to_human_size_up(enough)).unwrap_or(enough);
        let (_, _, bytes) = cut(enough);
        if fits(bytes, enough) {
            break;
        }
        enough = (bytes + bytes / 7 + 1).max(enough + enough / 16 + 1);
    }
    Err((fitted.2, enough))
}

/// Output chunk sizes per dimension.
pub(super) type OutputChunks = IndexMap<String, ChunkSpec>;

/// The sequences, output chunks and workers that fit the budget, and the
/// stripes (dimension and length) sequences were cut into, if any.
pub(super) type Fitted = (Vec<Sequence>, OutputChunks, usize, Option<(String, u64)>);

/// What [`fit_budget`] fits: the input's template, the variables, the
/// source chunks, what the statistics need, and the groups (with each
/// step's second group under a window).
pub(super) type Planned<'a> = (
    &'a Template,
    &'a [VarPlan],
    &'a IndexMap<String, u64>,
    Need,
    (&'a Groups, &'a [Option<usize>]),
);

/// Cuts sequences into stripes when a worker's share of the budget cannot
/// hold one, refuses a budget too small even then, and says how many
/// workers fit.
pub(super) fn fit_budget(
    options: &Options,
    workers: usize,
    (t, vars, step, need, (groups, dup)): Planned<'_>,
    sequences: &[Sequence],
    mut chunks: OutputChunks,
) -> Result<Fitted, Error> {
    let ngroups = groups.count().max(1);
    let quantiles = if options.quantiles.is_empty() {
        (0, 0, false)
    } else {
        // every step, and its copy in its second group (day 366 filled
        // from day 365 under a window)
        let steps =
            (groups.index.iter().flatten().count() + dup.iter().flatten().count()).max(1) as u64;
        (
            steps,
            options.quantiles.len() as u64,
            options.sketch.is_some(),
        )
    };
    let headroom = options.max_mem / 8;
    let bytes_of = |seqs: &[Sequence]| {
        seqs.iter()
            .map(|s| {
                sequence_bytes(
                    ngroups,
                    &vars[s.var],
                    s,
                    t.sizes(),
                    step,
                    (need, !options.weights.is_empty(), quantiles),
                )
            })
            .max()
            .unwrap_or(0)
    };
    let (sequences, cut, largest) =
        match cut_to_fit(options.max_mem, workers, (sequences, vars, step), bytes_of) {
            Ok(fitted) => fitted,
            Err((largest, enough)) => {
                return Err(Error::Usage(format!(
                    "the largest variable block needs {} for its accumulators and one source \
                     chunk being read, which with an eighth of the budget kept for reading is \
                     more than --max-mem {} allows: give --max-mem {} or more, or chunk the kept \
                     dimensions more finely{}",
                    to_human_size(largest),
                    to_human_size(options.max_mem),
                    to_human_size_up(enough),
                    if options.quantiles.is_empty()
                        || options.sketch.is_some()
                        || options.window.is_some()
                    {
                        ""
                    } else {
                        " (or take the quantiles from sketches: --sketch)"
                    }
                )))
            }
        };
    if let Some((dim, stripe)) = &cut {
        chunks.insert(dim.clone(), ChunkSpec::Size(*stripe));
    }
    let fit = ((options.max_mem - headroom) / largest.max(1)).max(1) as usize;
    let workers = workers.min(fit).min(sequences.len()).max(1);
    Ok((sequences, chunks, workers, cut))
}
