//! Progress while a run goes: indicatif bars on a terminal (one per
//! top-level transform, composites folded into one: see
//! [`Metrics::by_composite`](crate::Metrics::by_composite)) and the
//! runner's callback, both fed from the live metrics about every 100 ms.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::state::RunState;
use crate::Runner;

pub(crate) fn progress_thread(
    runner: &Runner,
    state: Arc<RunState>,
    done: Arc<AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
    let draw = runner.draw && std::io::stderr().is_terminal();
    let callback = runner.progress.clone();
    if !draw && callback.is_none() {
        return None;
    }
    Some(std::thread::spawn(move || {
        let multi = indicatif::MultiProgress::new();
        let mut bars: Vec<indicatif::ProgressBar> = Vec::new();
        if draw {
            for name in state.live.snapshot().by_composite().transforms.keys() {
                let pb = multi.add(indicatif::ProgressBar::new(0));
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "{prefix:>24} {bar:30} {pos}/{len} elements {msg}",
                ) {
                    pb.set_style(style);
                }
                pb.set_prefix(name.clone());
                bars.push(pb);
            }
        }
        loop {
            let finished = done.load(Ordering::Relaxed);
            let snapshot = state.live.snapshot();
            if let Some(cb) = &callback {
                cb(&snapshot);
            }
            for (pb, m) in bars.iter().zip(snapshot.by_composite().transforms.values()) {
                pb.set_length(m.total.max(m.elements));
                pb.set_position(m.elements);
                pb.set_message(format!("{:.1} MB", m.bytes as f64 / 1e6));
            }
            if finished {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for pb in bars {
            pb.finish_and_clear();
        }
    }))
}
