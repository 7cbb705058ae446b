//! [`Pipeline`] and [`PCollection`]: a typed graph of named transforms,
//! built once and executed by a [`Runner`](crate::Runner).

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::erased::Erased;
use crate::graph::{Build, Expect, Generate, Graph, Node, NodeKind, S};
use crate::ops::{combine, elementwise::elementwise, group, route};
use crate::state::{guarded, BoxError, Ctx};
use crate::{ByteSize, RunError};

/// What an element of a [`PCollection`] must be: sendable between threads,
/// serializable between processes (only there: inside a process elements
/// move, or are cloned when a stream has several consumers), cheap to clone,
/// and able to say its size.
pub trait Data: Clone + Send + Sync + Serialize + DeserializeOwned + ByteSize + 'static {}

impl<T: Clone + Send + Sync + Serialize + DeserializeOwned + ByteSize + 'static> Data for T {}

/// A composite transform: a named part of a pipeline built from other
/// transforms, as Beam's `PTransform`. Applied with [`PCollection::apply`]
/// (or [`Pipeline::apply`] for one that starts from nothing), it runs
/// `expand` inside a name scope, so its inner transforms are named
/// `name/inner` (nested: `rechunk/stage 1/split`) and their metrics and
/// progress group under it.
///
/// Any `FnOnce(In) -> Out` is a transform, so a one-off composite is a
/// closure.
///
/// ```
/// use xbeam_runner::{PCollection, Pipeline, Runner, Transform};
///
/// /// Squares, then keeps the even squares.
/// struct EvenSquares;
///
/// impl Transform<PCollection<u64>> for EvenSquares {
///     type Output = PCollection<u64>;
///     fn expand(self, input: PCollection<u64>) -> PCollection<u64> {
///         input
///             .map("square", |x: u64| Ok::<_, String>(x * x))
///             .filter("even", |x: &u64| Ok::<_, String>(x % 2 == 0))
///     }
/// }
///
/// let p = Pipeline::new();
/// let out = p
///     .create("numbers", (1..=6u64).collect())
///     .apply("even squares", EvenSquares)
///     .apply("plus one", |c: PCollection<u64>| c.map("add", |x: u64| Ok::<_, String>(x + 1)))
///     .collect("out");
/// let metrics = p.run(&Runner::local_with_workers(2).quiet())?;
/// let mut got = out.take()?;
/// got.sort_unstable();
/// assert_eq!(got, vec![5, 17, 37]);
/// assert_eq!(metrics.get("even squares/square").unwrap().elements, 6);
/// assert_eq!(metrics.get("plus one/add").unwrap().elements, 3);
/// # Ok::<(), xbeam_runner::RunError>(())
/// ```
pub trait Transform<In> {
    /// What applying it gives: a [`PCollection`], several, nothing (a
    /// sink), or a `Result` of those when building can fail.
    type Output;
    /// Adds the transform's parts to the pipeline of `input`.
    fn expand(self, input: In) -> Self::Output;
}

impl<In, Out, F: FnOnce(In) -> Out> Transform<In> for F {
    type Output = Out;
    fn expand(self, input: In) -> Out {
        self(input)
    }
}

/// A pipeline: a graph of named transforms over [`PCollection`]s, built
/// once and run with [`Pipeline::run`].
///
/// ```
/// use xbeam_runner::{Pipeline, Runner};
///
/// let p = Pipeline::new();
/// let squares = p
///     .create("numbers", (1..=4u64).collect())
///     .map("square", |x| Ok::<_, String>(x * x))
///     .collect("out");
/// p.run(&Runner::local_with_workers(2).quiet())?;
/// let mut got = squares.take()?;
/// got.sort_unstable();
/// assert_eq!(got, vec![1, 4, 9, 16]);
/// # Ok::<(), xbeam_runner::RunError>(())
/// ```
#[derive(Clone, Default)]
pub struct Pipeline {
    pub(crate) graph: Arc<Mutex<Graph>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.graph.lock().expect("pipeline lock");
        let names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
        f.debug_struct("Pipeline")
            .field("transforms", &names)
            .finish()
    }
}

/// A distributed collection of elements of type `T`, the output of a
/// transform.
pub struct PCollection<T> {
    pipeline: Pipeline,
    node: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for PCollection<T> {
    fn clone(&self) -> Self {
        PCollection {
            pipeline: self.pipeline.clone(),
            node: self.node,
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for PCollection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PCollection")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// Results of [`PCollection::collect`], available after the run.
pub struct Collected<T> {
    slot: Arc<Mutex<Vec<Erased>>>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Data> Collected<T> {
    /// The collected elements (in no particular order), taken out. In a
    /// cluster they arrive at process 0; other processes get none.
    pub fn take(&self) -> Result<Vec<T>, RunError> {
        let items = std::mem::take(&mut *self.slot.lock().expect("collect lock"));
        items
            .into_iter()
            .map(|e| e.take::<T>().map_err(RunError::Pipeline))
            .collect()
    }
}

/// A combining function for [`PCollection::combine_per_key`] and
/// [`PCollection::combine_globally`], as in Beam: accumulators are created,
/// fed values, merged (across workers, after a partial combine before the
/// exchange), and turned into the output.
pub trait CombineFn<V>: Send + Sync + 'static {
    /// The accumulator.
    type Acc: Data;
    /// The result.
    type Out: Data;
    /// An empty accumulator.
    fn create(&self) -> Self::Acc;
    /// Adds one value.
    fn add(&self, acc: Self::Acc, value: V) -> Self::Acc;
    /// Merges two accumulators.
    fn merge(&self, a: Self::Acc, b: Self::Acc) -> Self::Acc;
    /// The result of an accumulator.
    fn extract(&self, acc: Self::Acc) -> Self::Out;
}

/// The sum of numbers, the [`CombineFn`] most pipelines need (counts,
/// bytes, totals).
///
/// ```
/// use xbeam_runner::{Pipeline, Runner, Sum};
///
/// let p = Pipeline::new();
/// let total = p.create("n", (1..=4u64).collect()).combine_globally("sum", Sum).collect("out");
/// p.run(&Runner::local_with_workers(2).quiet())?;
/// assert_eq!(total.take()?, vec![10]);
/// # Ok::<(), xbeam_runner::RunError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Sum;

impl<T: Data + Default + std::ops::Add<Output = T>> CombineFn<T> for Sum {
    type Acc = T;
    type Out = T;
    fn create(&self) -> T {
        T::default()
    }
    fn add(&self, acc: T, value: T) -> T {
        acc + value
    }
    fn merge(&self, a: T, b: T) -> T {
        a + b
    }
    fn extract(&self, acc: T) -> T {
        acc
    }
}

/// A fold of each key's values for [`PCollection::fold_by_key_expecting`]:
/// values are added to an accumulator in the order they arrive, and a key's
/// accumulator is extracted as soon as it has all its values. Unlike a
/// [`CombineFn`] nothing is merged and nothing is combined before the
/// exchange, so the accumulator may be a large buffer that each value is
/// copied into (a chunk assembled from its pieces).
///
/// Accumulators are made only while they fit in the runner's group budget
/// ([`size_hint`](Self::size_hint)); the values of other keys wait in
/// groups (spilled to disk beyond the budget, after [`hold`](Self::hold))
/// and are folded when complete.
pub trait FoldFn<K, V>: Send + Sync + 'static {
    /// The accumulator (never serialized).
    type Acc: Send + 'static;
    /// The result.
    type Out: Data;
    /// The error of a value that cannot be folded.
    type Error: Into<BoxError>;
    /// The bytes an accumulator for `key` made from `first` will hold, or
    /// `None` never to fold ahead (values are grouped, then folded).
    fn size_hint(&self, key: &K, first: &V) -> Option<usize>;
    /// A value about to wait in a group instead of being folded at once
    /// (for instance, a view copied into a buffer of its own).
    fn hold(&self, value: V) -> V {
        value
    }
    /// An accumulator for `key` holding its first value.
    fn create(&self, key: &K, first: V) -> Result<Self::Acc, Self::Error>;
    /// Adds one more value.
    fn add(&self, acc: &mut Self::Acc, value: V) -> Result<(), Self::Error>;
    /// The result of a key's accumulator.
    fn extract(&self, key: &K, acc: Self::Acc) -> Result<Self::Out, Self::Error>;
    /// The result of a whole group of a key's values at once (a group that
    /// waited); by default the values are created, added and extracted.
    fn fold_group(&self, key: &K, values: Vec<V>) -> Result<Self::Out, Self::Error> {
        let mut values = values.into_iter();
        let first = values.next().expect("a group holds at least one value");
        let mut acc = self.create(key, first)?;
        for v in values {
            self.add(&mut acc, v)?;
        }
        self.extract(key, acc)
    }
}

impl Pipeline {
    /// An empty pipeline.
    pub fn new() -> Pipeline {
        Pipeline::default()
    }

    pub(crate) fn add_node<T>(
        &self,
        name: &str,
        inputs: Vec<usize>,
        kind: NodeKind,
    ) -> PCollection<T> {
        let mut g = self.graph.lock().expect("pipeline lock");
        let name = g.scoped(name);
        let name = name.as_str();
        if g.nodes.iter().any(|n| n.name == name) {
            g.errors.push(format!(
                "two transforms are named {name:?}: names must be unique"
            ));
        }
        g.nodes.push(Arc::new(Node {
            name: name.to_owned(),
            inputs,
            kind,
        }));
        PCollection {
            pipeline: self.clone(),
            node: g.nodes.len() - 1,
            _t: PhantomData,
        }
    }

    /// A collection of `items`, split across the workers.
    pub fn create<T: Data>(&self, name: &str, items: Vec<T>) -> PCollection<T> {
        let items = Arc::new(items);
        let count = items.len() as u64;
        let generate: Generate = Arc::new(move |i| {
            let x = items[i as usize].clone();
            let bytes = x.byte_size() as u64;
            Ok((Erased::new(x), bytes))
        });
        self.add_node(name, Vec::new(), NodeKind::Source { count, generate })
    }

    /// A lazily generated, partitioned source: element `i` of `0..count` is
    /// `generate(i)`, made by the worker that owns index `i` when the
    /// pipeline has room for it (sources are throttled), never all at once.
    pub fn source<T, E, F>(&self, name: &str, count: u64, generate: F) -> PCollection<T>
    where
        T: Data,
        E: Into<BoxError>,
        F: Fn(u64) -> Result<T, E> + Send + Sync + 'static,
    {
        let label = self.graph.lock().expect("pipeline lock").scoped(name);
        let generate: Generate = Arc::new(move |i| {
            let x = guarded(&label, || format!("index {i}"), || generate(i))?;
            let bytes = x.byte_size() as u64;
            Ok((Erased::new(x), bytes))
        });
        self.add_node(name, Vec::new(), NodeKind::Source { count, generate })
    }

    /// `base_n` with the smallest `n` that names no transform (nor scope)
    /// of this pipeline yet, in the current scope: labels for transforms a
    /// library adds on the user's behalf (`rechunk_0`, `rechunk_1`), the
    /// same in every run and every process of a cluster.
    ///
    /// ```
    /// use xbeam_runner::Pipeline;
    ///
    /// let p = Pipeline::new();
    /// assert_eq!(p.unique_name("read"), "read_0");
    /// p.create("read_0", vec![1u64]);
    /// assert_eq!(p.unique_name("read"), "read_1");
    /// ```
    pub fn unique_name(&self, base: &str) -> String {
        let g = self.graph.lock().expect("pipeline lock");
        // at most one name per node is taken, so one of nodes+1 is free
        (0..=g.nodes.len())
            .map(|n| format!("{base}_{n}"))
            .find(|candidate| {
                let full = g.scoped(candidate);
                let scope = format!("{full}/");
                !g.nodes
                    .iter()
                    .any(|node| node.name == full || node.name.starts_with(&scope))
            })
            .expect("some number is free")
    }

    /// Every element of all `collections`.
    pub fn flatten<T: Data>(&self, name: &str, collections: &[&PCollection<T>]) -> PCollection<T> {
        let inputs = collections.iter().map(|c| c.node).collect();
        let build: Build = Arc::new(|ctx: &Ctx, inputs: Vec<S<'_>>| route::flatten(ctx, inputs));
        self.add_node(
            name,
            inputs,
            NodeKind::Op {
                build,
                barrier: false,
            },
        )
    }

    /// Applies a composite transform that starts from the pipeline itself
    /// (a source such as reading a dataset's chunks), under the scope
    /// `name`.
    pub fn apply<X: Transform<Pipeline>>(&self, name: &str, transform: X) -> X::Output {
        self.scoped(name, || transform.expand(self.clone()))
    }

    /// Runs `f` with `name` pushed on the scope stack: every transform
    /// added meanwhile is named `…/name/…`.
    pub(crate) fn scoped<R>(&self, name: &str, f: impl FnOnce() -> R) -> R {
        self.graph
            .lock()
            .expect("pipeline lock")
            .scope
            .push(name.to_owned());
        struct Pop<'a>(&'a Pipeline);
        impl Drop for Pop<'_> {
            fn drop(&mut self) {
                if let Ok(mut g) = self.0.graph.lock() {
                    g.scope.pop();
                }
            }
        }
        let _pop = Pop(self);
        f()
    }

    /// Runs the pipeline to completion, returning the metrics of every
    /// transform (of this process, in a cluster).
    pub fn run(&self, runner: &crate::Runner) -> Result<crate::Metrics, RunError> {
        crate::driver::run(self, runner)
    }
}

impl<T> PCollection<T> {
    /// The pipeline this collection belongs to.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Applies a composite transform to this collection, under the scope
    /// `name` (see [`Transform`]).
    pub fn apply<X: Transform<PCollection<T>>>(&self, name: &str, transform: X) -> X::Output {
        self.pipeline
            .scoped(name, || transform.expand(self.clone()))
    }
}

impl<T: Data> PCollection<T> {
    fn op<U>(&self, name: &str, build: Build, barrier: bool) -> PCollection<U> {
        self.pipeline
            .add_node(name, vec![self.node], NodeKind::Op { build, barrier })
    }

    /// One output per element.
    pub fn map<U, E, F>(&self, name: &str, f: F) -> PCollection<U>
    where
        U: Data,
        E: Into<BoxError>,
        F: Fn(T) -> Result<U, E> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let build: Build = Arc::new(move |ctx: &Ctx, inputs: Vec<S<'_>>| {
            let f = f.clone();
            elementwise::<T, U, _>(ctx, inputs, false, move |x, out| {
                out.push(f(x).map_err(Into::into)?);
                Ok(())
            })
        });
        self.op(name, build, false)
    }

    /// Any number of outputs per element.
    pub fn flat_map<U, I, E, F>(&self, name: &str, f: F) -> PCollection<U>
    where
        U: Data,
        I: IntoIterator<Item = U>,
        E: Into<BoxError>,
        F: Fn(T) -> Result<I, E> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let build: Build = Arc::new(move |ctx: &Ctx, inputs: Vec<S<'_>>| {
            let f = f.clone();
            elementwise::<T, U, _>(ctx, inputs, false, move |x, out| {
                out.extend(f(x).map_err(Into::into)?);
                Ok(())
            })
        });
        self.op(name, build, false)
    }

    /// The elements for which `f` is true.
    pub fn filter<E, F>(&self, name: &str, f: F) -> PCollection<T>
    where
        E: Into<BoxError>,
        F: Fn(&T) -> Result<bool, E> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let build: Build = Arc::new(move |ctx: &Ctx, inputs: Vec<S<'_>>| {
            let f = f.clone();
            elementwise::<T, T, _>(ctx, inputs, false, move |x, out| {
                if f(&x).map_err(Into::into)? {
                    out.push(x);
                }
                Ok(())
            })
        });
        self.op(name, build, false)
    }

    /// Redistributes the elements evenly across workers (breaks fusion).
    pub fn reshuffle(&self, name: &str) -> PCollection<T> {
        let build: Build = Arc::new(|ctx: &Ctx, inputs: Vec<S<'_>>| route::reshuffle(ctx, inputs));
        self.op(name, build, false)
    }

    /// Calls `f` on every element (a sink).
    pub fn for_each<E, F>(&self, name: &str, f: F)
    where
        E: Into<BoxError>,
        F: Fn(T) -> Result<(), E> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let build: Build = Arc::new(move |ctx: &Ctx, inputs: Vec<S<'_>>| {
            let f = f.clone();
            elementwise::<T, (), _>(ctx, inputs, true, move |x, _out| f(x).map_err(Into::into))
        });
        let _: PCollection<()> = self.op(name, build, false);
    }

    /// Gathers every element back to the caller (process 0 of a cluster):
    /// for tests and small outputs.
    pub fn collect(&self, name: &str) -> Collected<T> {
        let slot = Arc::new(Mutex::new(Vec::new()));
        self.pipeline
            .graph
            .lock()
            .expect("pipeline lock")
            .collects
            .push(slot.clone());
        let target = slot.clone();
        let build: Build = Arc::new(move |ctx: &Ctx, inputs: Vec<S<'_>>| {
            route::collect(ctx, inputs, target.clone())
        });
        let _: PCollection<()> = self.op(name, build, false);
        Collected {
            slot,
            _t: PhantomData,
        }
    }

    /// Combines all elements into one output with `combine` (a partial
    /// combine on every worker, then a merge on one).
    pub fn combine_globally<C: CombineFn<T>>(&self, name: &str, combine: C) -> PCollection<C::Out> {
        let combine = Arc::new(combine);
        let build: Build = Arc::new(move |ctx: &Ctx, inputs: Vec<S<'_>>| {
            combine::combine_globally::<T, C>(ctx, inputs, combine.clone())
        });
        self.op(name, build, true)
    }
}

impl<K: Data, V: Data> PCollection<(K, V)> {
    /// Groups values by key (keys compare by their serialized bytes). A
    /// worker holds groups up to the runner's byte budget and spills to
    /// disk beyond it, merging at the end.
    pub fn group_by_key(&self, name: &str) -> PCollection<(K, Vec<V>)> {
        self.fold(name, None, group::Collect, false)
    }

    /// Like [`group_by_key`](Self::group_by_key), but emits each group as
    /// soon as it holds `n_for_key(key)` values (consolidating chunks whose
    /// number is known); groups still incomplete at the end are emitted
    /// then.
    pub fn group_by_key_expecting<F>(&self, name: &str, n_for_key: F) -> PCollection<(K, Vec<V>)>
    where
        F: Fn(&K) -> usize + Send + Sync + 'static,
    {
        self.fold(name, Some(Arc::new(n_for_key)), group::Collect, false)
    }

    /// Folds the values of each key with `fold` ([`FoldFn`]), emitting a
    /// key's result as soon as `n_for_key(key)` values were added (the
    /// rest at the end). Accumulators are kept within the runner's group
    /// budget; beyond it values wait in groups that spill to disk.
    ///
    /// ```
    /// use xbeam_runner::{FoldFn, Pipeline, Runner};
    ///
    /// /// Places each `(index, value)` of a key in a buffer of 3.
    /// struct Place;
    /// impl FoldFn<char, (usize, i32)> for Place {
    ///     type Acc = Vec<i32>;
    ///     type Out = Vec<i32>;
    ///     type Error = String;
    ///     fn size_hint(&self, _: &char, _: &(usize, i32)) -> Option<usize> { Some(12) }
    ///     fn create(&self, _: &char, first: (usize, i32)) -> Result<Vec<i32>, String> {
    ///         let mut acc = vec![0; 3];
    ///         self.add(&mut acc, first)?;
    ///         Ok(acc)
    ///     }
    ///     fn add(&self, acc: &mut Vec<i32>, (i, v): (usize, i32)) -> Result<(), String> {
    ///         *acc.get_mut(i).ok_or(format!("index {i} is out of range"))? = v;
    ///         Ok(())
    ///     }
    ///     fn extract(&self, _: &char, acc: Vec<i32>) -> Result<Vec<i32>, String> { Ok(acc) }
    /// }
    ///
    /// let p = Pipeline::new();
    /// let items = vec![('a', (2, 30)), ('b', (0, 1)), ('a', (0, 10)), ('a', (1, 20))];
    /// let out = p.create("items", items).fold_by_key_expecting("place", |_| 3, Place).collect("out");
    /// p.run(&Runner::local_with_workers(2).quiet())?;
    /// let mut out = out.take()?;
    /// out.sort();
    /// assert_eq!(out, vec![('a', vec![10, 20, 30]), ('b', vec![1, 0, 0])]);
    /// # Ok::<(), xbeam_runner::RunError>(())
    /// ```
    pub fn fold_by_key_expecting<F, N>(
        &self,
        name: &str,
        n_for_key: N,
        fold: F,
    ) -> PCollection<(K, F::Out)>
    where
        F: FoldFn<K, V>,
        N: Fn(&K) -> usize + Send + Sync + 'static,
    {
        self.fold(name, Some(Arc::new(n_for_key)), fold, true)
    }

    /// The fold operator; `ahead`: whether it makes accumulators before a
    /// key's group is complete (a group-by-key does not).
    fn fold<F: FoldFn<K, V>>(
        &self,
        name: &str,
        expecting: Option<Expect<K>>,
        fold: F,
        ahead: bool,
    ) -> PCollection<(K, F::Out)> {
        let fold = Arc::new(fold);
        let build: Build = Arc::new(move |ctx: &Ctx, inputs: Vec<S<'_>>| {
            group::fold_by_key::<K, V, F>(ctx, inputs, expecting.clone(), fold.clone(), ahead)
        });
        self.op(name, build, true)
    }

    /// Combines the values of each key with `combine`, with a partial
    /// combine before the exchange (combiner lifting).
    pub fn combine_per_key<C: CombineFn<V>>(
        &self,
        name: &str,
        combine: C,
    ) -> PCollection<(K, C::Out)> {
        let combine = Arc::new(combine);
        let build: Build = Arc::new(move |ctx: &Ctx, inputs: Vec<S<'_>>| {
            combine::combine_per_key::<K, V, C>(ctx, inputs, combine.clone())
        });
        self.op(name, build, true)
    }
}
