//! The pencil pass. When a worker's share of `--max-mem` cannot hold the
//! accumulators of a whole source chunk (a plain hour × day-of-year
//! climatology keeps one per step and element; exact quantiles keep every
//! value; the windowed one streams instead, see `stream.rs`), the
//! sequences are cut into stripes along a kept dimension, and each stripe
//! decodes every chunk it crosses: a chunk cut into 40 stripes is decoded
//! 40 times. From [`AUTO_STRIPES`] stripes per chunk it is cheaper to
//! rechunk the input once into *pencils* (one stripe wide, long along the
//! folded dimension) in a temporary store, with the budgeted
//! [`rechunk`](crate::jobs::rechunk) job, and reduce those: each chunk is
//! then decoded once more, whatever the number of stripes.
//!
//! The results are bit-identical either way: the values are the same, and
//! the fold's order (time order, then index order along reduced
//! dimensions) does not depend on the chunking.

use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use indexmap::IndexMap;
use xbeam_chunk::Template;
use xbeam_key::{ChunkSpec, ChunksRequest};
use xbeam_runner::scratch::Scratch;
use xbeam_runner::Runner;

use super::{Done, Options, VarPlan};
use crate::error::Error;
use crate::jobs::{output, peak_rss, rechunk};

/// Stripes per source chunk from which [`PencilPass::Auto`] rechunks first.
///
/// Measured on the 1 GB bench store (`--groupby time.hour,time.dayofyear
/// --window 61` as it was folded before it streamed, the same accumulators
/// as without the window; 2 workers, alternating runs): at `--max-mem 1GiB` (10
/// stripes per chunk) re-reading took 4.7–6.2 s and the pencil pass
/// 5.0–5.8 s, a tie; at 256 MB (40 stripes) re-reading took 10.6 s and
/// the pencil pass 8.3 s.
pub const AUTO_STRIPES: u64 = 16;

/// About how large a pencil chunk is made: long enough that the rechunk
/// writes few files and each stripe reads few chunks.
const PENCIL_BYTES: u64 = 8 << 20;

/// Whether [`run`](super::run) first rechunks its input into pencils (see
/// the module docs).
///
/// ```
/// use xbeam::jobs::reduce::PencilPass;
///
/// assert_eq!("never".parse::<PencilPass>()?, PencilPass::Never);
/// assert!("sometimes".parse::<PencilPass>().unwrap_err().contains("auto, always or never"));
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PencilPass {
    /// When the budget cuts each source chunk into [`AUTO_STRIPES`] or
    /// more stripes.
    #[default]
    Auto,
    /// Whenever the budget cuts source chunks into stripes.
    Always,
    /// Never: each stripe decodes the chunks it crosses.
    Never,
}

impl FromStr for PencilPass {
    type Err = String;

    fn from_str(s: &str) -> Result<PencilPass, String> {
        match s {
            "auto" => Ok(PencilPass::Auto),
            "always" => Ok(PencilPass::Always),
            "never" => Ok(PencilPass::Never),
            other => Err(format!(
                "the pencil pass is auto, always or never, not {other:?}"
            )),
        }
    }
}

/// The chunks to rechunk the input to first, or `None` when the sequences
/// are not cut into stripes (`stripe`: the dimension and the stripe
/// length; `fold`: the folded dimension), or too few for `mode`: one stripe along `dim`, and along the
/// folded dimension as many source chunks as make about
/// [`PENCIL_BYTES`] for the largest variable.
pub(super) fn target(
    mode: PencilPass,
    t: &Template,
    vars: &[VarPlan],
    step: &IndexMap<String, u64>,
    (fold, stripe): (Option<&str>, Option<(String, u64)>),
) -> Option<IndexMap<String, u64>> {
    let (dim, len) = stripe?;
    let (dim, len) = (&dim, &len);
    let cuts = step[dim].div_ceil(*len);
    let go = match mode {
        PencilPass::Auto => cuts >= AUTO_STRIPES,
        PencilPass::Always => cuts >= 2,
        PencilPass::Never => false,
    };
    if !go {
        return None;
    }
    let sizes = t.sizes();
    let mut target = IndexMap::new();
    target.insert(dim.clone(), *len);
    if let Some(f) = fold {
        let largest = vars
            .iter()
            .map(|v| {
                let elems: u64 = v
                    .dims
                    .iter()
                    .map(|d| {
                        if d == dim {
                            *len
                        } else {
                            step[d].min(sizes[d])
                        }
                    })
                    .product();
                elems * v.dtype.itemsize() as u64
            })
            .max()
            .unwrap_or(1);
        let k = (PENCIL_BYTES / largest.max(1)).max(1);
        target.insert(f.to_owned(), (step[f] * k).min(sizes[f]));
    }
    Some(target)
}

/// Rechunks `options.src` to `target` in a temporary store (in `runner`'s
/// spill directory), reduces that into `options.dst`, and removes it.
pub(super) fn run(
    options: &Options,
    runner: &Runner,
    target: IndexMap<String, u64>,
    (started, planned): (Instant, u64),
) -> Result<Done, Error> {
    // refuse a bad DST, or one without room for the `planned` output
    // bytes, before the rechunk, as the plain run does
    output::prepare(&options.dst, Some(&options.src), options.write, planned)?;
    let dir = temp_dir(runner.spill_path())?;
    let pencils = dir.path().join("pencils.zarr");
    let specs: IndexMap<String, ChunkSpec> = target
        .iter()
        .map(|(d, &n)| (d.clone(), ChunkSpec::Size(n)))
        .collect();
    let rechunk = rechunk::Options {
        max_mem: options.max_mem,
        write: output::WriteMode {
            ignore_free_space: options.write.ignore_free_space,
            ..output::WriteMode::default()
        },
        ..rechunk::Options::new(&options.src, &pencils, ChunksRequest::from(specs))
    };
    rechunk::run(&rechunk, runner)?;
    let inner = Options {
        src: pencils,
        pencil: PencilPass::Never,
        ..options.clone()
    };
    let done = super::run(&inner, runner)?;
    drop(dir);
    Ok(Done {
        summary: crate::jobs::Summary {
            wall: started.elapsed(),
            peak_rss: peak_rss(),
            ..done.summary
        },
        pencils: Some(target),
        ..done
    })
}

/// A new temporary directory in `parent` (default: the system's).
fn temp_dir(parent: Option<&Path>) -> Result<Scratch, Error> {
    Scratch::new("pencils", parent).map_err(|e| {
        Error::Check(format!(
            "cannot make a temporary directory for the pencil pass in {}: {e}",
            parent
                .map_or_else(std::env::temp_dir, Path::to_path_buf)
                .display()
        ))
    })
}
