//! [`Pipeline`] and [`PCollection`]: a typed graph of named transforms,
//! built once and executed by a [`Runner`](crate::Runner).

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::erased::Erased;
use crate::exec::{self, Build, Ctx, S};
use crate::{ByteSize, RunError};

/// What an element of a [`PCollection`] must be: sendable between threads,
/// serializable between processes, and able to say its size.
pub trait Data: Send + Sync + Serialize + DeserializeOwned + ByteSize + 'static {}

impl<T: Send + Sync + Serialize + DeserializeOwned + ByteSize + 'static> Data for T {}

/// A lazily generated source element: `index` in `0..count` → element.
pub(crate) type Generate = Arc<dyn Fn(u64) -> Result<(Erased, u64), RunError> + Send + Sync>;

/// How many values a key's group holds ([`PCollection::group_by_key_expecting`]).
pub(crate) type Expect<K> = Arc<dyn Fn(&K) -> usize + Send + Sync>;

pub(crate) enum NodeKind {
    /// Elements `0..count`, split across workers by index.
    Source { count: u64, generate: Generate },
    /// An operator on its inputs' streams.
    Op {
        build: Build,
        /// Holds all input until the end (group-by-key, combine).
        barrier: bool,
    },
}

pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) inputs: Vec<usize>,
    pub(crate) kind: NodeKind,
}

#[derive(Default)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<Arc<Node>>,
    pub(crate) errors: Vec<String>,
    pub(crate) collects: Vec<Arc<Mutex<Vec<Erased>>>>,
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
    #[allow(clippy::needless_pass_by_value)] // the items are the pipeline's now
    pub fn create<T: Data>(&self, name: &str, items: Vec<T>) -> PCollection<T> {
        let encoded: Vec<Vec<u8>> = items
            .iter()
            .map(|x| bincode::serialize(x).expect("bincode serializes every serde value"))
            .collect();
        let encoded = Arc::new(encoded);
        let count = encoded.len() as u64;
        let label = name.to_owned();
        let generate: Generate = Arc::new(move |i| {
            let x: T =
                bincode::deserialize(&encoded[i as usize]).map_err(|e| RunError::Element {
                    transform: label.clone(),
                    element: format!("element {i}"),
                    message: e.to_string(),
                })?;
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
        E: std::fmt::Display,
        F: Fn(u64) -> Result<T, E> + Send + Sync + 'static,
    {
        let label = name.to_owned();
        let generate: Generate = Arc::new(move |i| {
            let x = exec::guarded(&label, || format!("index {i}"), || generate(i))?;
            let bytes = x.byte_size() as u64;
            Ok((Erased::new(x), bytes))
        });
        self.add_node(name, Vec::new(), NodeKind::Source { count, generate })
    }

    /// Every element of all `collections`.
    pub fn flatten<T: Data>(&self, name: &str, collections: &[&PCollection<T>]) -> PCollection<T> {
        let inputs = collections.iter().map(|c| c.node).collect();
        let build: Build = Arc::new(|ctx: &Ctx, inputs: Vec<S<'_>>| exec::flatten(ctx, inputs));
        self.add_node(
            name,
            inputs,
            NodeKind::Op {
                build,
                barrier: false,
            },
        )
    }

    /// Runs the pipeline to completion, returning the metrics of every
    /// transform (of this process, in a cluster).
    pub fn run(&self, runner: &crate::Runner) -> Result<crate::Metrics, RunError> {
        exec::run(self, runner)
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
        E: std::fmt::Display,
        F: Fn(T) -> Result<U, E> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let build: Build = Arc::new(move |ctx: &Ctx, inputs: Vec<S<'_>>| {
            let f = f.clone();
            exec::elementwise::<T, U, _>(ctx, inputs, move |x, out| {
                out.push(f(x).map_err(|e| e.to_string())?);
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
        E: std::fmt::Display,
        F: Fn(T) -> Result<I, E> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let build: Build = Arc::new(move |ctx: &Ctx, inputs: Vec<S<'_>>| {
            let f = f.clone();
            exec::elementwise::<T, U, _>(ctx, inputs, move |x, out| {
                out.extend(f(x).map_err(|e| e.to_string())?);
                Ok(())
            })
        });
        self.op(name, build, false)
    }

    /// The elements for which `f` is true.
    pub fn filter<E, F>(&self, name: &str, f: F) -> PCollection<T>
    where
        E: std::fmt::Display,
        F: Fn(&T) -> Result<bool, E> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let build: Build = Arc::new(move |ctx: &Ctx, inputs: Vec<S<'_>>| {
            let f = f.clone();
            exec::elementwise::<T, T, _>(ctx, inputs, move |x, out| {
                if f(&x).map_err(|e| e.to_string())? {
                    out.push(x);
                }
                Ok(())
            })
        });
        self.op(name, build, false)
    }

    /// Redistributes the elements evenly across workers (breaks fusion).
    pub fn reshuffle(&self, name: &str) -> PCollection<T> {
        let build: Build = Arc::new(|ctx: &Ctx, inputs: Vec<S<'_>>| exec::reshuffle(ctx, inputs));
        self.op(name, build, false)
    }

    /// Calls `f` on every element (a sink).
    pub fn for_each<E, F>(&self, name: &str, f: F)
    where
        E: std::fmt::Display,
        F: Fn(T) -> Result<(), E> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let build: Build = Arc::new(move |ctx: &Ctx, inputs: Vec<S<'_>>| {
            let f = f.clone();
            exec::elementwise::<T, (), _>(ctx, inputs, move |x, _out| {
                f(x).map_err(|e| e.to_string())
            })
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
            exec::collect(ctx, inputs, target.clone())
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
            exec::combine_globally::<T, C>(ctx, inputs, combine.clone())
        });
        self.op(name, build, true)
    }
}

impl<K: Data, V: Data> PCollection<(K, V)> {
    /// Groups values by key (keys compare by their serialized bytes). A
    /// worker holds groups up to the runner's byte budget and spills to
    /// disk beyond it, merging at the end.
    pub fn group_by_key(&self, name: &str) -> PCollection<(K, Vec<V>)> {
        let build: Build =
            Arc::new(|ctx: &Ctx, inputs: Vec<S<'_>>| exec::group_by_key::<K, V>(ctx, inputs, None));
        self.op(name, build, true)
    }

    /// Like [`group_by_key`](Self::group_by_key), but emits each group as
    /// soon as it holds `n_for_key(key)` values (consolidating chunks whose
    /// number is known); groups still incomplete at the end are emitted
    /// then.
    pub fn group_by_key_expecting<F>(&self, name: &str, n_for_key: F) -> PCollection<(K, Vec<V>)>
    where
        F: Fn(&K) -> usize + Send + Sync + 'static,
    {
        let n_for_key: Expect<K> = Arc::new(n_for_key);
        let build: Build = Arc::new(move |ctx: &Ctx, inputs: Vec<S<'_>>| {
            exec::group_by_key::<K, V>(ctx, inputs, Some(n_for_key.clone()))
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
            exec::combine_per_key::<K, V, C>(ctx, inputs, combine.clone())
        });
        self.op(name, build, true)
    }
}
