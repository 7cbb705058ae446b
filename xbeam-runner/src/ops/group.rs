//! Group-by-key and fold-by-key: values exchanged by key hash, folded into
//! accumulators while they fit in the byte budget, otherwise held per key
//! and spilled to sorted run files beyond it ([`Groups`]), merged at the
//! end; a key whose number of values is known is emitted as soon as it is
//! complete. A group-by-key is the fold that never accumulates ahead
//! ([`Collect`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::{Capability, Operator};

use super::spill::{Groups, SpillFailure};
use super::{by_key, key_bytes};
use crate::erased::Erased;
use crate::graph::{Expect, S};
use crate::pipeline::{Data, FoldFn};
use crate::state::{guarded, user, BoxError, Ctx, Described};
use crate::RunError;

/// The fold of a group-by-key: a key's values, in a vector.
pub(crate) struct Collect;

impl<K: Data, V: Data> FoldFn<K, V> for Collect {
    type Acc = Vec<V>;
    type Out = Vec<V>;
    type Error = BoxError;

    fn size_hint(&self, _: &K, _: &V) -> Option<usize> {
        None
    }

    fn create(&self, _: &K, first: V) -> Result<Vec<V>, BoxError> {
        Ok(vec![first])
    }

    fn add(&self, acc: &mut Vec<V>, value: V) -> Result<(), BoxError> {
        acc.push(value);
        Ok(())
    }

    fn extract(&self, _: &K, acc: Vec<V>) -> Result<Vec<V>, BoxError> {
        Ok(acc)
    }

    fn fold_group(&self, _: &K, values: Vec<V>) -> Result<Vec<V>, BoxError> {
        Ok(values)
    }
}

/// A key's accumulator in progress.
struct Folding<K, A> {
    key: K,
    acc: A,
    count: usize,
    bytes: usize,
}

/// The accumulators of one worker's fold and the groups of the keys that
/// did not fit, within one byte budget.
struct Folds<K, V, F: FoldFn<K, V>> {
    fold: Arc<F>,
    name: String,
    accs: HashMap<Vec<u8>, Folding<K, F::Acc>>,
    acc_bytes: usize,
    /// Whether accumulators are made before a group is complete.
    ahead: bool,
    budget: usize,
    groups: Groups<V>,
}

impl<K: Data, V: Data, F: FoldFn<K, V>> Folds<K, V, F> {
    fn guarded<R>(&self, key: &K, f: impl FnOnce() -> Result<R, F::Error>) -> Result<R, RunError> {
        guarded(&self.name, || Described::of(key).text(), f)
    }

    /// Adds one value; returns the key's result when it is complete.
    fn add(&mut self, k: K, v: V, want: Option<usize>) -> Result<Option<(K, F::Out)>, RunError> {
        let kb = key_bytes(&k);
        if let Some(f) = self.accs.get_mut(&kb) {
            guarded(
                &self.name,
                || Described::of(&k).text(),
                || self.fold.add(&mut f.acc, v),
            )?;
            f.count += 1;
            if want.is_some_and(|n| f.count >= n) {
                let f = self.accs.remove(&kb).expect("present");
                self.release(f.bytes);
                return self.extract(f.key, f.acc).map(Some);
            }
            return Ok(None);
        }
        if self.ahead && !self.groups.holds(&kb) {
            let room = self
                .budget
                .saturating_sub(self.acc_bytes + self.groups.bytes());
            let hint = user(&self.name, "a value", || self.fold.size_hint(&k, &v))?;
            if let Some(bytes) = hint.filter(|&b| b <= room) {
                let acc = self.guarded(&k, || self.fold.create(&k, v))?;
                if want.is_some_and(|n| n <= 1) {
                    return self.extract(k, acc).map(Some);
                }
                self.acc_bytes += bytes;
                self.groups
                    .set_budget(self.budget.saturating_sub(self.acc_bytes));
                let folding = Folding {
                    key: k,
                    acc,
                    count: 1,
                    bytes,
                };
                self.accs.insert(kb, folding);
                return Ok(None);
            }
        }
        let v = user(&self.name, "a value", || self.fold.hold(v))?;
        match self
            .groups
            .add(kb, v, want)
            .map_err(|f| f.into_run_error(&self.name))?
        {
            Some(values) => self.fold_all(k, values).map(Some),
            None => Ok(None),
        }
    }

    fn release(&mut self, bytes: usize) {
        self.acc_bytes -= bytes;
        self.groups
            .set_budget(self.budget.saturating_sub(self.acc_bytes));
    }

    fn extract(&self, k: K, acc: F::Acc) -> Result<(K, F::Out), RunError> {
        let out = self.guarded(&k, || self.fold.extract(&k, acc))?;
        Ok((k, out))
    }

    /// The result of a whole group.
    fn fold_all(&self, k: K, values: Vec<V>) -> Result<(K, F::Out), RunError> {
        let out = self.guarded(&k, || self.fold.fold_group(&k, values))?;
        Ok((k, out))
    }

    /// The accumulators left at the end (keys whose count was not reached
    /// or not known), extracted.
    fn drain_accs(&mut self) -> Vec<Result<(K, F::Out), RunError>> {
        let accs: Vec<Folding<K, F::Acc>> = self.accs.drain().map(|(_, f)| f).collect();
        self.release(self.acc_bytes);
        accs.into_iter()
            .map(|f| self.extract(f.key, f.acc))
            .collect()
    }

    /// The next spilled or held group at the end, folded.
    fn next_group(&mut self) -> Result<Option<(K, F::Out)>, RunError> {
        let name = self.name.clone();
        let Some((kb, values)) = self
            .groups
            .next_group()
            .map_err(|f| f.into_run_error(&name))?
        else {
            return Ok(None);
        };
        let k = SpillFailure::decode_key::<K>(&kb).map_err(|f| f.into_run_error(&name))?;
        self.fold_all(k, values).map(Some)
    }
}

/// A result ready to be handed out, with its size.
fn ready<K: Data, O: Data>(kv: (K, O)) -> (Erased, usize) {
    let size = kv.1.byte_size();
    (Erased::new(kv), size)
}

#[allow(clippy::too_many_lines)] // one operator: input, hand-out, end
pub(crate) fn fold_by_key<'s, K: Data, V: Data, F: FoldFn<K, V>>(
    ctx: &Ctx,
    mut inputs: Vec<S<'s>>,
    expecting: Option<Expect<K>>,
    fold: Arc<F>,
    ahead: bool,
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
            // complete results not handed out yet, with their sizes
            let mut out: VecDeque<(Erased, usize)> = VecDeque::new();
            let mut folds: Folds<K, V, F> = Folds {
                fold,
                name: name.clone(),
                accs: HashMap::new(),
                acc_bytes: 0,
                ahead,
                budget: state.group_budget,
                groups: Groups::new(
                    state.group_budget,
                    state.spill_dir.clone(),
                    counters.clone(),
                    ahead || expecting.is_some(),
                ),
            };
            move |(input, frontier), output| {
                let start = Instant::now();
                let mut emitted = (0u64, 0u64);
                input.for_each(|c, data| {
                    if cap.is_none() {
                        cap = c.retain_least(0);
                    }
                    crate::state::for_each_typed(&state, &name, data, |(k, v): (K, V)| {
                        let want = expecting.as_ref().map(|n| n(&k));
                        if let Some(kv) = folds.add(k, v, want)? {
                            out.push_back(ready(kv));
                        }
                        Ok(())
                    });
                });
                if frontier.is_empty() && cap.is_some() && !merging && !state.aborted() {
                    merging = true;
                    for r in folds.drain_accs() {
                        match r {
                            Ok(kv) => out.push_back(ready(kv)),
                            Err(e) => state.fail(e),
                        }
                    }
                    if let Err(f) = folds.groups.start_merge() {
                        state.fail(f.into_run_error(&name));
                    }
                }
                // hand results out a few megabytes per activation, so
                // downstream consumes them before more are made (complete
                // groups often arrive all at once: the last piece of every
                // group comes with the last source chunk)
                let mut budget = 8usize << 20;
                if let Some(c) = &cap {
                    let mut session = output.session(c);
                    while budget > 0 {
                        let next = match out.pop_front() {
                            Some(r) => Some(r),
                            None if merging && !state.aborted() => match folds.next_group() {
                                Ok(Some(kv)) => Some(ready(kv)),
                                Ok(None) => None,
                                Err(e) => {
                                    state.fail(e);
                                    None
                                }
                            },
                            None => None,
                        };
                        let Some((group, size)) = next else {
                            break;
                        };
                        session.give(group);
                        emitted.0 += 1;
                        emitted.1 += size as u64;
                        budget = budget.saturating_sub(size.max(1));
                    }
                    if budget == 0 {
                        activator.activate();
                    } else if merging {
                        // everything was handed out
                        drop(session);
                        cap = None;
                    }
                }
                if state.aborted() {
                    cap = None;
                    out.clear();
                }
                counters.add(emitted.0, emitted.1, start.elapsed());
            }
        },
    )
}
