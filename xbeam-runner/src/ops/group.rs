//! Group-by-key: values exchanged by key hash, held per key up to the byte
//! budget and spilled to sorted run files beyond it ([`Groups`]), merged at
//! the end; a group whose size is known is emitted as soon as it is
//! complete.

use std::collections::VecDeque;
use std::time::Instant;

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::{Capability, Operator};

use super::spill::{Groups, SpillFailure};
use super::{by_key, key_bytes};
use crate::erased::Erased;
use crate::graph::{Expect, S};
use crate::pipeline::Data;
use crate::state::{for_each_typed, Ctx};
use crate::ByteSize;

pub(crate) fn group_by_key<'s, K: Data, V: Data>(
    ctx: &Ctx,
    mut inputs: Vec<S<'s>>,
    expecting: Option<Expect<K>>,
) -> S<'s> {
    let input = inputs.remove(0);
    let state = ctx.state.clone();
    let counters = ctx.counters.clone();
    let name = ctx.name.clone();
    let scope = input.scope();
    input.unary_frontier::<timely::container::CapacityContainerBuilder<Vec<Erased>>, _, _, _>(
        Exchange::new(by_key::<K, V>()),
        &ctx.name.clone(),
        move |_, info| {
            let activator = scope.activator_for(info.address);
            let mut merging = false;
            let mut cap: Option<Capability<u64>> = None;
            // complete groups not handed out yet, with their sizes
            let mut ready: VecDeque<(Erased, usize)> = VecDeque::new();
            let mut groups: Groups<V> = Groups::new(
                state.group_budget,
                state.spill_dir.clone(),
                counters.clone(),
            );
            move |(input, frontier), output| {
                let start = Instant::now();
                let mut emitted = (0u64, 0u64);
                input.for_each(|c, data| {
                    if cap.is_none() {
                        cap = c.retain_least(0);
                    }
                    for_each_typed(&state, &name, data, |(k, v): (K, V)| {
                        let want = expecting.as_ref().map(|n| n(&k));
                        let complete = groups
                            .add(key_bytes(&k), v, want)
                            .map_err(|f| f.into_run_error(&name))?;
                        if let Some(values) = complete {
                            let size = values.byte_size();
                            ready.push_back((Erased::new((k, values)), size));
                        }
                        Ok(())
                    });
                });
                // hand groups out a few megabytes per activation, so
                // downstream consumes them before more are made (complete
                // groups often arrive all at once: the last piece of every
                // group comes with the last source chunk)
                let mut budget = 8usize << 20;
                if let Some(c) = &cap {
                    let mut session = output.session(c);
                    while budget > 0 {
                        let Some((group, size)) = ready.pop_front() else {
                            break;
                        };
                        session.give(group);
                        emitted.0 += 1;
                        emitted.1 += size as u64;
                        budget = budget.saturating_sub(size.max(1));
                    }
                }
                if !ready.is_empty() {
                    activator.activate();
                } else if frontier.is_empty() && cap.is_some() && !state.aborted() {
                    if !merging {
                        merging = true;
                        if let Err(f) = groups.start_merge() {
                            state.fail(f.into_run_error(&name));
                        }
                    }
                    let c = cap.as_ref().expect("checked");
                    let mut session = output.session(c);
                    loop {
                        match groups.next_group() {
                            Ok(Some((kb, values))) => {
                                let size = values.byte_size();
                                match SpillFailure::decode_key::<K>(&kb) {
                                    Ok(k) => session.give(Erased::new((k, values))),
                                    Err(f) => {
                                        state.fail(f.into_run_error(&name));
                                        break;
                                    }
                                }
                                emitted.0 += 1;
                                emitted.1 += size as u64;
                                budget = budget.saturating_sub(size.max(1));
                                if budget == 0 {
                                    activator.activate();
                                    break;
                                }
                            }
                            Ok(None) => {
                                drop(session);
                                cap = None;
                                break;
                            }
                            Err(f) => {
                                state.fail(f.into_run_error(&name));
                                break;
                            }
                        }
                    }
                }
                if state.aborted() {
                    cap = None;
                    ready.clear();
                }
                counters.add(emitted.0, emitted.1, start.elapsed());
            }
        },
    )
}
