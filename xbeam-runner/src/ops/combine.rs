//! `combine_per_key` and `combine_globally`: a partial combine on every
//! worker before the exchange (combiner lifting), then the final merge.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use timely::dataflow::channels::pact::{Exchange, Pipeline as Local};
use timely::dataflow::operators::{Capability, Operator};

use super::{by_key, key_bytes};
use crate::erased::Erased;
use crate::graph::S;
use crate::pipeline::{CombineFn, Data};
use crate::state::{for_each_typed, user, Ctx};
use crate::ByteSize;

/// Partial combine before an exchange: one accumulator per key per worker,
/// flushed when the table grows large and at the end.
fn precombine<'s, K: Data, V: Data, C: CombineFn<V>>(
    ctx: &Ctx,
    input: S<'s>,
    combine: Arc<C>,
) -> S<'s> {
    const MAX_KEYS: usize = 10_000;
    let state = ctx.state.clone();
    let name = ctx.name.clone();
    input.unary_frontier::<timely::container::CapacityContainerBuilder<Vec<Erased>>, _, _, _>(
        Local,
        &format!("{}/partial", ctx.name),
        move |_, _| {
            let mut cap: Option<Capability<u64>> = None;
            let mut table: HashMap<Vec<u8>, (K, C::Acc)> = HashMap::new();
            move |(input, frontier), output| {
                input.for_each(|c, data| {
                    if cap.is_none() {
                        cap = c.retain_least(0);
                    }
                    for_each_typed(&state, &name, data, |(k, v): (K, V)| {
                        let kb = key_bytes(&k);
                        let (k, acc) = table.remove(&kb).unwrap_or_else(|| (k, combine.create()));
                        let acc = user(&name, "a value", || combine.add(acc, v))?;
                        table.insert(kb, (k, acc));
                        Ok(())
                    });
                });
                let flush = table.len() > MAX_KEYS || frontier.is_empty();
                if flush {
                    if let Some(c) = &cap {
                        output
                            .session(c)
                            .give_iterator(table.drain().map(|(_, kv)| Erased::new(kv)));
                    }
                }
                if frontier.is_empty() {
                    cap = None;
                }
            }
        },
    )
}

pub(crate) fn combine_per_key<'s, K: Data, V: Data, C: CombineFn<V>>(
    ctx: &Ctx,
    mut inputs: Vec<S<'s>>,
    combine: Arc<C>,
) -> S<'s> {
    let partial = precombine::<K, V, C>(ctx, inputs.remove(0), combine.clone());
    let state = ctx.state.clone();
    let counters = ctx.counters.clone();
    let name = ctx.name.clone();
    partial.unary_frontier::<timely::container::CapacityContainerBuilder<Vec<Erased>>, _, _, _>(
        Exchange::new(by_key::<K, C::Acc>()),
        &ctx.name.clone(),
        move |_, _| {
            let mut cap: Option<Capability<u64>> = None;
            let mut table: BTreeMap<Vec<u8>, (K, C::Acc)> = BTreeMap::new();
            move |(input, frontier), output| {
                let start = Instant::now();
                input.for_each(|c, data| {
                    if cap.is_none() {
                        cap = c.retain_least(0);
                    }
                    for_each_typed(&state, &name, data, |(k, acc): (K, C::Acc)| {
                        let kb = key_bytes(&k);
                        let merged = match table.remove(&kb) {
                            None => acc,
                            Some((_, old)) => {
                                user(&name, "an accumulator", || combine.merge(old, acc))?
                            }
                        };
                        table.insert(kb, (k, merged));
                        Ok(())
                    });
                });
                let mut count = (0u64, 0u64);
                if frontier.is_empty() {
                    if let Some(c) = cap.take() {
                        let mut session = output.session(&c);
                        for (_, (k, acc)) in std::mem::take(&mut table) {
                            match user(&name, "an accumulator", || combine.extract(acc)) {
                                Ok(out) => {
                                    count.0 += 1;
                                    count.1 += out.byte_size() as u64;
                                    session.give(Erased::new((k, out)));
                                }
                                Err(err) => return state.fail(err),
                            }
                        }
                    }
                }
                counters.add(count.0, count.1, start.elapsed());
            }
        },
    )
}

#[allow(clippy::too_many_lines)] // two operators: partial, then final
pub(crate) fn combine_globally<'s, V: Data, C: CombineFn<V>>(
    ctx: &Ctx,
    mut inputs: Vec<S<'s>>,
    combine: Arc<C>,
) -> S<'s> {
    let input = inputs.remove(0);
    let state = ctx.state.clone();
    let counters = ctx.counters.clone();
    let name = ctx.name.clone();
    let first = combine.clone();
    let partial = input
        .unary_frontier::<timely::container::CapacityContainerBuilder<Vec<Erased>>, _, _, _>(
            Local,
            &format!("{}/partial", ctx.name),
            {
                let state = state.clone();
                let name = name.clone();
                move |default_cap, _| {
                    let mut cap = Some(default_cap);
                    let mut acc: Option<C::Acc> = None;
                    move |(input, frontier), output| {
                        input.for_each(|_c, data| {
                            for_each_typed(&state, &name, data, |v: V| {
                                let current = acc.take().unwrap_or_else(|| first.create());
                                acc = Some(user(&name, "a value", || first.add(current, v))?);
                                Ok(())
                            });
                        });
                        if frontier.is_empty() {
                            if let Some(c) = cap.take() {
                                if let Some(a) = acc.take() {
                                    output.session(&c).give(Erased::new(a));
                                }
                            }
                        }
                    }
                }
            },
        );
    let worker = ctx.worker;
    partial.unary_frontier::<timely::container::CapacityContainerBuilder<Vec<Erased>>, _, _, _>(
        Exchange::new(|_: &Erased| 0),
        &ctx.name.clone(),
        move |default_cap, _| {
            // only worker 0 emits the one result, even for empty input
            let mut cap = (worker == 0).then_some(default_cap);
            let mut acc: Option<C::Acc> = None;
            move |(input, frontier), output| {
                let start = Instant::now();
                input.for_each(|_c, data| {
                    for_each_typed(&state, &name, data, |a: C::Acc| {
                        acc = Some(match acc.take() {
                            None => a,
                            Some(old) => user(&name, "an accumulator", || combine.merge(old, a))?,
                        });
                        Ok(())
                    });
                });
                if frontier.is_empty() {
                    if let Some(c) = cap.take() {
                        if !state.aborted() {
                            let a = acc.take().unwrap_or_else(|| combine.create());
                            match user(&name, "the accumulator", || combine.extract(a)) {
                                Ok(out) => {
                                    counters.add(1, out.byte_size() as u64, start.elapsed());
                                    output.session(&c).give(Erased::new(out));
                                }
                                Err(err) => state.fail(err),
                            }
                        }
                    }
                }
            }
        },
    )
}
