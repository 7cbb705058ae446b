//! Operators that only move elements: `flatten`, `reshuffle` (round robin
//! across workers) and `collect` (everything to worker 0).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::{Concatenate, Operator};

use crate::erased::Erased;
use crate::graph::S;
use crate::state::Ctx;

pub(crate) fn flatten<'s>(_ctx: &Ctx, inputs: Vec<S<'s>>) -> S<'s> {
    let scope = inputs[0].scope();
    scope.concatenate(inputs)
}

pub(crate) fn reshuffle<'s>(ctx: &Ctx, mut inputs: Vec<S<'s>>) -> S<'s> {
    let input = inputs.remove(0);
    let mut counter = ctx.worker as u64;
    let counters = ctx.counters.clone();
    input.unary::<timely::container::CapacityContainerBuilder<Vec<Erased>>, _, _, _>(
        Exchange::new(move |_: &Erased| {
            counter = counter.wrapping_add(1);
            counter
        }),
        &ctx.name,
        move |_, _| {
            move |input, output| {
                input.for_each(|cap, data| {
                    counters.add(data.len() as u64, 0, Duration::ZERO);
                    output.session(&cap).give_iterator(data.drain(..));
                });
            }
        },
    )
}

pub(crate) fn collect<'s>(
    ctx: &Ctx,
    mut inputs: Vec<S<'s>>,
    slot: Arc<Mutex<Vec<Erased>>>,
) -> S<'s> {
    let input = inputs.remove(0);
    let counters = ctx.counters.clone();
    let state = ctx.state.clone();
    input.unary::<timely::container::CapacityContainerBuilder<Vec<Erased>>, _, _, _>(
        Exchange::new(|_: &Erased| 0),
        &ctx.name,
        move |_, _| {
            move |input, _output| {
                input.for_each(|_cap, data| {
                    if state.aborted() {
                        data.clear();
                        return;
                    }
                    counters.add(data.len() as u64, 0, Duration::ZERO);
                    slot.lock().expect("collect lock").extend(data.drain(..));
                });
            }
        },
    )
}
