//! Element-wise operators: `map`, `flat_map`, `filter` and `for_each` are
//! one operator, [`elementwise`], that turns each element into any number
//! of outputs, fused with its input (no exchange).

use std::time::Instant;

use timely::dataflow::channels::pact::Pipeline as Local;
use timely::dataflow::operators::Operator;

use crate::erased::Erased;
use crate::graph::S;
use crate::pipeline::Data;
use crate::state::{for_each_typed, guarded, BoxError, Ctx, Described};

/// Map-like operators: `f` turns one `T` into any number of `U`. A sink
/// (`for_each`) counts the elements (and bytes) it consumed; other
/// operators count what they produce.
pub(crate) fn elementwise<'s, T, U, F>(
    ctx: &Ctx,
    mut inputs: Vec<S<'s>>,
    sink: bool,
    mut f: F,
) -> S<'s>
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
                    let (mut bytes, mut consumed) = (0u64, 0u64);
                    for_each_typed(&state, &name, data, |x: T| {
                        if sink {
                            consumed += 1;
                            bytes += x.byte_size() as u64;
                        }
                        // the element is moved into `f`: keep what describes
                        // it if `f` fails
                        let described = Described::of(&x);
                        guarded(&name, || described.text(), || f(x, &mut typed))?;
                        for y in typed.drain(..) {
                            bytes += y.byte_size() as u64;
                            out.push(Erased::new(y));
                        }
                        Ok(())
                    });
                    let count = if sink { consumed } else { out.len() as u64 };
                    counters.add(count, bytes, start.elapsed());
                    if !out.is_empty() {
                        output.session(&cap).give_iterator(out.into_iter());
                    }
                });
            }
        },
    )
}
