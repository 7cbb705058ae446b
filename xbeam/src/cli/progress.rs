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

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
