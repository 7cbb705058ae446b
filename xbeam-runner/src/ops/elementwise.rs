//! Element-wise operators: `map`, `flat_map`, `filter` and `for_each` are
//! one operator, [`elementwise`], that turns each element into any number
//! of outputs, fused with its input (no exchange).

use std::time::Instant;

use timely::dataflow::channels::pact::Pipeline as Local;
use timely::dataflow::operators::Operator;

use crate::erased::Erased;
use crate::graph::S;
use crate::pipeline::Data;
use crate::state::{describe, for_each_typed, guarded, BoxError, Ctx};

/// Map-like operators: `f` turns one `T` into any number of `U`.
pub(crate) fn elementwise<'s, T, U, F>(ctx: &Ctx, mut inputs: Vec<S<'s>>, mut f: F) -> S<'s>
where
    T: Data,
    U: Data,
    F: FnMut(T, &mut Vec<U>) -> Result<(), BoxError> + 'static,
{
    let input = inputs.remove(0);
    let state = ctx.state.clone();
    let counters = ctx.counters.clone();
    let name = ctx.name.clone();
    input.unary::<timely::container::CapacityContainerBuilder<Vec<Erased>>, _, _, _>(
        Local,
        &name.clone(),
        move |_, _| {
            let mut typed: Vec<U> = Vec::new();
            move |input, output| {
                input.for_each(|cap, data| {
                    let start = Instant::now();
                    let mut out: Vec<Erased> = Vec::new();
                    let mut bytes = 0u64;
                    for_each_typed(&state, &name, data, |x: T| {
                        // the element is moved into `f`: keep a copy of a
                        // small one to describe it if `f` fails
                        let size = x.byte_size();
                        let small = (size <= 256).then(|| x.clone());
                        guarded(
                            &name,
                            || {
                                small.map_or_else(
                                    || format!("an element of {size} bytes"),
                                    |x| describe(&x),
                                )
                            },
                            || f(x, &mut typed),
                        )?;
                        for y in typed.drain(..) {
                            bytes += y.byte_size() as u64;
                            out.push(Erased::new(y));
                        }
                        Ok(())
                    });
                    counters.add(out.len() as u64, bytes, start.elapsed());
                    if !out.is_empty() {
                        output.session(&cap).give_iterator(out.into_iter());
                    }
                });
            }
        },
    )
}
