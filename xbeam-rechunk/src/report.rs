//! The dry-run report of a plan (`xbeam rechunk --dry-run`).

use std::fmt;

use xbeam_key::to_human_size;

use crate::chunks::DimChunks;
use crate::rechunking::{chunking_mem, RechunkPlan, StageSummary};

impl fmt::Display for RechunkPlan {
    /// The plan as `xbeam rechunk --dry-run` prints it: the array, source
    /// and target chunks and the budget; then per stage its chunks, tasks
    /// (chunks read, pieces, chunks written), bytes moved and the memory a
    /// task holds; then the predicted peak. Memory is per task (one chunk
    /// being split or one group being consolidated); the engine holds as
    /// many as it has tasks in flight. Sizes are decimal (`kB`, `MB`), as
    /// xarray-beam writes them. No trailing newline.
    ///
    /// ```
    /// use xbeam_rechunk::{DimChunks::Regular, Rechunking};
    ///
    /// let plan = Rechunking::new([("x", 100)], vec![Regular(5)], vec![Regular(7)], 1)
    ///     .with_max_mem(20)
    ///     .plan()?;
    /// let report = plan.to_string();
    /// assert!(report.starts_with("rechunk plan: 3 stages, 200B moved, peak 14B per task"));
    /// assert!(report.contains("stage 1: nothing to do\n  chunks: x=14 -> x=14\n"));
    /// # Ok::<(), xbeam_rechunk::RechunkError>(())
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.rechunking();
        let shape = self.shape();
        let summaries = self.summaries();
        let whole: Vec<DimChunks> = shape.iter().map(|&n| DimChunks::Regular(n)).collect();
        let total = chunking_mem(shape, &whole, r.itemsize());
        let elements = shape
            .iter()
            .fold(1u128, |acc, &n| acc.saturating_mul(n.into()));
        let moved = summaries
            .iter()
            .fold(0u128, |acc, s| acc.saturating_add(s.bytes));
        let peak = summaries
            .iter()
            .enumerate()
            .max_by_key(|(i, s)| (s.mem(), std::cmp::Reverse(*i)));

        let mut lines = Vec::new();
        lines.push(match peak {
            None => "rechunk plan: no stages, the source chunks are the target chunks".to_owned(),
            Some((_, s)) => format!(
                "rechunk plan: {}, {} moved, peak {} per task",
                plural(summaries.len() as u128, "stage"),
                to_human_size(moved),
                to_human_size(s.mem()),
            ),
        });
        lines.push(format!(
            "  array:  {} ({} of {}, {})",
            self.dims_list(&whole),
            plural(elements, "element"),
            plural(r.itemsize().into(), "byte"),
            to_human_size(total),
        ));
        for (name, chunks) in [("source", self.source()), ("target", self.target())] {
            lines.push(format!(
                "  {name}: {} ({} of up to {})",
                self.dims_list(chunks),
                plural(self.count(chunks), "chunk"),
                to_human_size(chunking_mem(shape, chunks, r.itemsize())),
            ));
        }
        lines.push(format!(
            "  budget: max_mem {} ({} bytes), min_mem {}",
            to_human_size(r.max_mem()),
            r.max_mem(),
            to_human_size(r.min_mem()),
        ));
        for (i, (stage, s)) in self.stages().iter().zip(&summaries).enumerate() {
            lines.push(format!("stage {i}: {}", kind(s)));
            lines.push(format!(
                "  chunks: {} -> {}",
                self.dims_list(&stage.source),
                self.dims_list(&stage.target)
            ));
            if s.mem() == 0 {
                continue;
            }
            lines.push(format!(
                "  tasks:  {} read, {}, {} written",
                plural(s.chunks_read.into(), "chunk"),
                plural(s.pieces.into(), "piece"),
                plural(s.chunks_written.into(), "chunk"),
            ));
            lines.push(format!(
                "  moved:  {}{}",
                to_human_size(s.bytes),
                if s.consolidate {
                    " through a shuffle"
                } else {
                    ", no shuffle"
                }
            ));
            lines.push(format!(
                "  memory: {} per task (source chunk {}, target chunk {})",
                to_human_size(s.mem()),
                to_human_size(s.source_chunk_mem),
                to_human_size(s.target_chunk_mem),
            ));
        }
        if let Some((i, s)) = peak {
            lines.push(format!(
                "predicted peak: {} ({} bytes) per task, in stage {i}; max_mem {}",
                to_human_size(s.mem()),
                s.mem(),
                to_human_size(r.max_mem()),
            ));
        }
        if let Some(warning) = self.warning() {
            lines.push(format!("warning: {warning}"));
        }
        f.write_str(&lines.join("\n"))
    }
}

impl RechunkPlan {
    /// `time=1, x=20, y=30`: chunks named by dimension.
    fn dims_list(&self, chunks: &[DimChunks]) -> String {
        let items: Vec<String> = self
            .dims()
            .iter()
            .zip(chunks)
            .map(|(dim, c)| format!("{dim}={c}"))
            .collect();
        items.join(", ")
    }

    /// The number of chunks of a chunking of the whole array.
    fn count(&self, chunks: &[DimChunks]) -> u128 {
        chunks
            .iter()
            .zip(self.shape())
            .fold(1u128, |acc, (c, &n)| acc.saturating_mul(c.count(n).into()))
    }
}

/// What a stage does, in words.
fn kind(s: &StageSummary) -> &'static str {
    match (s.split, s.consolidate) {
        (true, true) => "split + consolidate",
        (true, false) => "split",
        (false, true) => "consolidate",
        (false, false) => "nothing to do",
    }
}

/// `1 chunk`, `3 chunks`.
fn plural(n: u128, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
