//! Running one sequence: read its chunks in order, fold them, finalize
//! every statistic and write its output chunk.

use std::ops::Range;

use indexmap::IndexMap;
use xbeam_chunk::ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};
use xbeam_chunk::{dispatch, Array, Dataset, Variable};
use xbeam_io::{ZarrSink, ZarrSource};
use xbeam_key::Key;
use xbeam_stats::{DayWindow, Fold, Groups, Need, Partial, Sketches, Stat, Values};

use super::{out_name, outputs, Sequence, VarPlan};
use crate::error::Error;

/// Everything a sequence needs, shared by the workers.
pub(super) struct Plan {
    /// Chunks read so far, reported as they are read.
    pub(super) progress: Option<std::sync::Arc<super::ReadProgress>>,
    pub(super) source: ZarrSource,
    pub(super) sink: ZarrSink,
    pub(super) vars: Vec<VarPlan>,
    pub(super) sequences: Vec<Sequence>,
    pub(super) groups: Groups,
    /// Whether any time step falls in each group (empty without groupers).
    pub(super) present: Vec<bool>,
    /// Quantile levels (none: no quantiles).
    pub(super) quantiles: Vec<f64>,
    /// The sketches' accuracy, when quantiles come from sketches.
    pub(super) sketch: Option<f64>,
    /// Each step's slot among the steps of its group (for quantiles).
    pub(super) slot: Vec<usize>,
    /// Steps per group.
    pub(super) slots: Vec<usize>,
    /// A second group per step (day 366 filled from day 365 under a
    /// window), and the step's slot there.
    pub(super) dup: Vec<Option<usize>>,
    pub(super) dup_slot: Vec<usize>,
    /// WeatherBench 2's window, whose quantiles merge the days around
    /// each day (see [`Values::window_quantiles`]).
    pub(super) window: Option<DayWindow>,
    pub(super) skipna: bool,
    /// Group dimension names (empty without groupers).
    pub(super) group_dims: Vec<String>,
    /// Source chunk size per dimension.
    pub(super) step: IndexMap<String, u64>,
    /// Weights per dimension.
    pub(super) weights: IndexMap<String, Vec<f64>>,
    pub(super) stats: Vec<Stat>,
    pub(super) need: Need,
    pub(super) ddof: u64,
}

/// What quantiles are taken from: every value, or sketches.
pub(super) enum Kept {
    Exact(Values),
    Sketch(Sketches),
}

impl Kept {
    fn add<T: xbeam_stats::Value>(
        &mut self,
        group: usize,
        slot: usize,
        origin: &[usize],
        values: &ArrayViewD<'_, T>,
    ) {
        match self {
            Kept::Exact(v) => v.add(group, slot, origin, values),
            Kept::Sketch(s) => s.add(group, origin, values),
        }
    }

    fn quantiles(
        &self,
        q: &[f64],
        keep: &[usize],
        skipna: bool,
        window: Option<&DayWindow>,
    ) -> ArrayD<f64> {
        match (self, window) {
            (Kept::Exact(v), Some(w)) => v.window_quantiles(q, keep, skipna, w),
            (Kept::Exact(v), None) => v.quantiles(q, keep, skipna),
            // refused when the options are checked
            (Kept::Sketch(_), Some(_)) => unreachable!("--window takes exact quantiles"),
            (Kept::Sketch(s), None) => s.quantiles(q, keep, skipna),
        }
    }
}

impl Plan {
    /// The chunks sequence `i` reads.
    pub(super) fn reads(&self, i: usize) -> u64 {
        let v = &self.vars[self.sequences[i].var];
        super::chunks_read(v, self.source.template().sizes(), &self.step)
    }

    /// Folds sequence `i` and writes its results; returns bytes read,
    /// bytes written and chunks read.
    pub(super) fn run_sequence(&self, i: usize) -> Result<(u64, u64, u64), Error> {
        let seq = &self.sequences[i];
        let v = &self.vars[seq.var];
        let sizes = self.source.template().sizes();
        // the fold's element shape: every axis but the fold axis
        let axes: Vec<usize> = (0..v.dims.len()).filter(|&a| Some(a) != v.fold).collect();
        let block_of = |a: usize| -> Range<u64> {
            match v.kept.iter().position(|&k| k == a) {
                Some(k) => seq.block[k].clone(),
                None => 0..sizes[&v.dims[a]],
            }
        };
        let shape: Vec<usize> = axes
            .iter()
            .map(|&a| {
                let r = block_of(a);
                (r.end - r.start) as usize
            })
            .collect();
        let ngroups = if v.fold.is_some() {
            self.groups.count().max(1)
        } else {
            1
        };
        let mut fold = Fold::new(self.need, ngroups, &shape);
        let mut values = match (self.quantiles.is_empty(), self.sketch) {
            (true, _) => None,
            (false, Some(alpha)) => Some(Kept::Sketch(
                Sketches::new(alpha, ngroups, &shape).map_err(|e| Error::Usage(e.to_string()))?,
            )),
            (false, None) => {
                let slots = if v.fold.is_some() {
                    self.slots.clone()
                } else {
                    vec![1]
                };
                Some(Kept::Exact(Values::new(&slots, &shape)))
            }
        };
        // chunk positions along the reduced axes and the fold axis, in order
        let walk: Vec<usize> = v.reduced.iter().copied().chain(v.fold).collect();
        let counts: Vec<u64> = walk
            .iter()
            .map(|&a| sizes[&v.dims[a]].div_ceil(self.step[&v.dims[a]]).max(1))
            .collect();
        let total: u64 = counts.iter().product();
        let (mut bytes_in, mut chunks) = (0u64, 0u64);
        let progress = self.progress.as_deref();
        let vars = [v.name.clone()].into_iter().collect();
        for mut flat in 0..total {
            let mut region: IndexMap<String, Range<u64>> = IndexMap::new();
            for (k, &a) in walk.iter().enumerate().rev() {
                let d = &v.dims[a];
                let i = flat % counts[k];
                flat /= counts[k];
                let s = self.step[d];
                region.insert(d.clone(), i * s..((i + 1) * s).min(sizes[d]));
            }
            for (k, &a) in v.kept.iter().enumerate() {
                region.insert(v.dims[a].clone(), seq.block[k].clone());
            }
            let ds = self
                .source
                .read(&region, Some(&vars))
                .map_err(Error::input(self.source.path()))?;
            let data = ds.data_var(&v.name)?.data();
            bytes_in += data.nbytes() as u64;
            chunks += 1;
            if let Some(p) = progress {
                p.read(data.nbytes() as u64);
            }
            // where the chunk sits in the fold's elements
            let origin: Vec<usize> = axes
                .iter()
                .map(|&a| {
                    let d = &v.dims[a];
                    (region[d].start - block_of(a).start) as usize
                })
                .collect();
            let start = v.fold.map_or(0, |a| region[&v.dims[a]].start as usize);
            let into = (&mut fold, values.as_mut());
            dispatch!(primitive: data, a => self.fold_chunk(into, v.fold, start, &origin, &a.view()),
                _ => unreachable!("non-numeric variables are skipped"));
        }
        let bytes_out = self.write(v, seq, fold.into_partial(), values)?;
        Ok((bytes_in, bytes_out, chunks))
    }

    /// Folds every step of a chunk (one step when there is no fold axis).
    fn fold_chunk<T: xbeam_stats::Value>(
        &self,
        (fold, mut keep): (&mut Fold, Option<&mut Kept>),
        axis: Option<usize>,
        start: usize,
        origin: &[usize],
        values: &ArrayViewD<'_, T>,
    ) {
        match axis {
            None => {
                fold.add(0, origin, values);
                if let Some(k) = keep {
                    k.add(0, 0, origin, values);
                }
            }
            Some(a) => {
                for (t, step) in values.axis_iter(Axis(a)).enumerate() {
                    if let Some(g) = self.groups.index[start + t] {
                        fold.add(g, origin, &step);
                        if let Some(k) = keep.as_deref_mut() {
                            k.add(g, self.slot[start + t], origin, &step);
                            if let Some(&Some(d)) = self.dup.get(start + t) {
                                k.add(d, self.dup_slot[start + t], origin, &step);
                            }
                        }
                    }
                }
            }
        }
    }

    /// A finalized `[groups, kept...]` result (`[1, kept...]` for a
    /// variable without the grouped dimension: repeated for every group, as
    /// xarray's groupby does) in the output's `shape`, NaN in groups that
    /// no time step falls in (a year × month product has absent months).
    fn by_group(
        &self,
        v: &VarPlan,
        values: ArrayD<f64>,
        shape: &[usize],
    ) -> Result<ArrayD<f64>, Error> {
        let bad = |e: xbeam_chunk::ndarray::ShapeError| Error::Check(format!("result shape: {e}"));
        let ngroups = self.present.len();
        if ngroups == 0 {
            return values.into_shape_with_order(IxDyn(shape)).map_err(bad);
        }
        let mut values = if v.fold.is_none() {
            let mut whole = vec![ngroups];
            whole.extend_from_slice(&values.shape()[1..]);
            values
                .broadcast(IxDyn(&whole))
                .ok_or_else(|| Error::Check("cannot repeat a result over the groups".into()))?
                .to_owned()
        } else {
            values
        };
        for (g, &here) in self.present.iter().enumerate() {
            if !here {
                values.index_axis_mut(Axis(0), g).fill(f64::NAN);
            }
        }
        values.into_shape_with_order(IxDyn(shape)).map_err(bad)
    }

    /// Merges the reduced axes, finalizes every statistic and writes them.
    fn write(
        &self,
        v: &VarPlan,
        seq: &Sequence,
        partial: Partial,
        values: Option<Kept>,
    ) -> Result<u64, Error> {
        // partial axes: [group, every var axis but the fold axis]
        let axes: Vec<usize> = (0..v.dims.len()).filter(|&a| Some(a) != v.fold).collect();
        let mut partial = partial;
        for &a in v.reduced.iter().rev() {
            let at = 1 + axes.iter().position(|&x| x == a).expect("reduced axis");
            let w = self.weights.get(&v.dims[a]).map(Vec::as_slice);
            partial = partial
                .reduce_axis(at, w)
                .map_err(|e| Error::Check(e.to_string()))?;
        }
        let groups: Vec<usize> = self
            .groups
            .labels
            .iter()
            .map(xbeam_stats::Labels::len)
            .collect();
        let mut shape: Vec<usize> = groups.clone();
        shape.extend(seq.block.iter().map(|r| (r.end - r.start) as usize));
        let mut out = Dataset::new();
        let t = self.sink.template();
        for &stat in &self.stats {
            let values = self.by_group(v, partial.finalize(stat, self.ddof), &shape)?;
            let name = out_name(&v.name, stat.name(), outputs(&self.stats, &self.quantiles));
            let schema = &t.data_vars()[&name];
            let data = Array::from(values).astype(schema.dtype)?;
            out = out.with_data_var(name, Variable::new(schema.dims.clone(), data)?)?;
        }
        if let Some(values) = values {
            // the kept axes among the fold's element axes
            let keep: Vec<usize> = v
                .kept
                .iter()
                .map(|k| axes.iter().position(|a| a == k).expect("kept axis"))
                .collect();
            let window = self.window.as_ref().filter(|_| v.fold.is_some());
            let mut q = values.quantiles(&self.quantiles, &keep, self.skipna, window);
            let name = out_name(&v.name, "quantile", outputs(&self.stats, &self.quantiles));
            let schema = &t.data_vars()[&name];
            let mut qshape = groups.clone();
            if schema.dims.iter().any(|d| d == "quantile") {
                qshape.push(self.quantiles.len());
            } else {
                // repeated unchanged over the groups (any level will do)
                q = q.index_axis_move(Axis(1), 0);
            }
            qshape.extend(seq.block.iter().map(|r| (r.end - r.start) as usize));
            let data = Array::from(self.by_group(v, q, &qshape)?).astype(schema.dtype)?;
            out = out.with_data_var(name, Variable::new(schema.dims.clone(), data)?)?;
        }
        let mut key = Key::new();
        for d in &self.group_dims {
            key = key.with_offset(d, 0);
        }
        if out.sizes().contains_key("quantile") {
            key = key.with_offset("quantile", 0);
        }
        for (k, &a) in v.kept.iter().enumerate() {
            key = key.with_offset(&v.dims[a], seq.block[k].start);
        }
        let bytes = out.nbytes() as u64;
        self.sink
            .write_chunk(&key, &out)
            .map_err(Error::output(self.sink.path()))?;
        Ok(bytes)
    }
}
