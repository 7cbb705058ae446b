//! Progress bars drawn by the CLI from the engine's live metrics.

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use xbeam::runner::{Metrics, Runner};

/// A bar of the pipeline's source: elements done of all, bytes, rate.
/// Hidden with `--quiet` or when stderr is not a terminal.
pub(crate) struct Progress {
    bar: Arc<ProgressBar>,
}

impl Progress {
    pub(crate) fn new(what: &str, quiet: bool) -> Progress {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        if let Ok(style) =
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} chunks, {prefix} eta {eta}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        Progress { bar: Arc::new(bar) }
    }

    /// `runner`, reporting to this bar.
    pub(crate) fn attach(&self, runner: Runner) -> Runner {
        let bar = Arc::clone(&self.bar);
        runner.on_progress(move |m: &Metrics| {
            if let Some(source) = m.transforms.values().next() {
                bar.set_length(source.total);
                bar.set_position(source.elements);
                let secs = bar.elapsed().as_secs_f64().max(1e-3);
                bar.set_prefix(format!(
                    "{:.0} MB, {:.0} MB/s",
                    source.bytes as f64 / 1e6,
                    source.bytes as f64 / 1e6 / secs
                ));
            }
        })
    }

    /// `runner`, reporting to this bar the chunks a job counts in `read`
    /// as it reads them (finer than the engine's elements when each
    /// element reads many chunks).
    pub(crate) fn attach_reads(
        &self,
        runner: Runner,
        read: Arc<xbeam::jobs::reduce::ReadProgress>,
    ) -> Runner {
        let bar = Arc::clone(&self.bar);
        runner.on_progress(move |_: &Metrics| {
            bar.set_length(read.total());
            bar.set_position(read.chunks());
            let secs = bar.elapsed().as_secs_f64().max(1e-3);
            let mb = read.bytes() as f64 / 1e6;
            bar.set_prefix(format!("{mb:.0} MB, {:.0} MB/s", mb / secs));
        })
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// One bar per step of a job that has several: the source, each `stage i`
/// of a rechunk, and every other top-level transform (the write), in
/// pipeline order. Each shows the chunks that step emitted (of all, for
/// the source), their bytes, and what it spilled to disk.
pub(crate) struct StageProgress {
    multi: Arc<indicatif::MultiProgress>,
    bars: Arc<std::sync::Mutex<indexmap::IndexMap<String, ProgressBar>>>,
}

impl StageProgress {
    pub(crate) fn new(quiet: bool) -> StageProgress {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        StageProgress {
            multi: Arc::new(indicatif::MultiProgress::with_draw_target(target)),
            bars: Arc::default(),
        }
    }

    /// `runner`, reporting to these bars.
    pub(crate) fn attach(&self, runner: Runner) -> Runner {
        let (multi, bars) = (Arc::clone(&self.multi), Arc::clone(&self.bars));
        runner.on_progress(move |m: &Metrics| {
            let Ok(mut bars) = bars.lock() else {
                return;
            };
            for (step, t) in steps(m) {
                let bar = bars.entry(step.clone()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(t.total));
                    let template = if t.total > 0 {
                        "{msg:>22} [{bar:30}] {pos}/{len} chunks, {prefix}"
                    } else {
                        "{msg:>22} {pos} chunks, {prefix}"
                    };
                    if let Ok(style) = ProgressStyle::with_template(template) {
                        bar.set_style(style.progress_chars("=> "));
                    }
                    bar.set_message(step.clone());
                    bar
                });
                bar.set_position(t.elements);
                let spilled = if t.spilled_bytes > 0 {
                    format!(", {:.0} MB spilled", t.spilled_bytes as f64 / 1e6)
                } else {
                    String::new()
                };
                bar.set_prefix(format!("{:.0} MB{spilled}", t.bytes as f64 / 1e6));
            }
        })
    }

    pub(crate) fn finish(&self) {
        if let Ok(bars) = self.bars.lock() {
            for bar in bars.values() {
                bar.finish_and_clear();
            }
        }
        let _ = self.multi.clear();
    }
}

/// The steps of `m` a bar each: transforms folded to their top-level
/// name, or to `stage i` inside a rechunk (`rechunk/stage 1/split` and
/// `rechunk/stage 1/consolidate/assemble` are one bar, `stage 1`); a step's
/// output is its last transform's, its spill the sum of all of them.
fn steps(m: &Metrics) -> indexmap::IndexMap<String, xbeam::runner::TransformMetrics> {
    let mut out: indexmap::IndexMap<String, xbeam::runner::TransformMetrics> =
        indexmap::IndexMap::new();
    for (name, t) in &m.transforms {
        let parts: Vec<&str> = name.split('/').collect();
        let depth = parts
            .iter()
            .position(|p| p.starts_with("stage "))
            .map_or(1, |i| i + 1);
        let step = parts[parts.len().min(depth) - 1..parts.len().min(depth)].join("/");
        let step = if depth > 1 {
            step
        } else {
            // `from_source_0` → `from_source`
            let top = parts[0].trim_end_matches(|c: char| c.is_ascii_digit());
            top.strip_suffix('_').unwrap_or(top).to_owned()
        };
        match out.get_mut(&step) {
            None => {
                out.insert(step, *t);
            }
            Some(acc) => {
                acc.elements = t.elements;
                acc.bytes = t.bytes;
                acc.spilled_bytes += t.spilled_bytes;
            }
        }
    }
    out
}
