//! The windowed climatology (`--window W`, WeatherBench 2's hour ×
//! day-of-year), streamed over the days of the year.
//!
//! A fold of every (group, day) and element would hold a year of
//! accumulators per element: 4 GB for hourly data on a 1.5° grid, which
//! the budget had to cut into stripes, each decoding every chunk again.
//! Instead each sequence (a variable over a block of its other dimensions)
//! walks the days in order with a [`WindowStream`], which holds two running
//! sums (the smoothed day and its change) and needs each day's steps about
//! three times.
//! The source chunks a sequence read are kept, up to its share of the
//! budget, so a chunk is decoded once when the window's span of days fits
//! (61 days of a 1.5° grid take 170 MB a variable and year of float32),
//! and again otherwise. A day of many years is instead read once into its
//! sums ([`DaySums`]: each group's steps added up), which the window then
//! takes about three times: over decades that reads each value once
//! instead of three times and holds the window's span of days of sums
//! (16 bytes an element for a mean) instead of those days of every year's
//! values. When the sums of every day of the year are small (a coarse
//! grid and 6-hourly steps: 3 million values per accumulator a variable
//! for WeatherBench 2's 64 × 32 grid, 48 MB for a mean), every day is
//! gathered at once instead
//! ([`all_days`]): each chunk is read once, in storage order, and let go
//! at once, so nothing but the sums stays in memory (keeping chunks of
//! several years for the days they span held most of the input on a
//! store chunked by half-years, and faulting in fresh pages for it was
//! most of the time). Output chunks hold a few whole days each, written as
//! the days are done.
//!
//! The arithmetic depends only on the values and their time order (which
//! days are gathered into sums, and whether all at once, depends on the
//! data's shape and dtype alone, see [`multi`] and [`all_days`]), so the
//! results are bit-identical whatever the chunking, the workers and the
//! budget.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use indexmap::IndexMap;
use xbeam_chunk::ndarray::{ArrayD, Axis, IxDyn};
use xbeam_chunk::{dispatch, Array, DType, Dataset, Template, Variable};
use xbeam_io::{setup_zarr, SetupOptions, ZarrSink, ZarrSource};
use xbeam_key::{ChunkSpec, Key};
use xbeam_runner::Runner;
use xbeam_stats::{DaySums, Fold, Groups, Move, Need, Stat, WindowStream, Work};

use super::budget::{cut_to_fit, OutputChunks};
use super::grouping::Window;
use super::{out_name, outputs, Done, Options, ReadProgress, Sequence, VarPlan};
use crate::error::Error;
use crate::jobs::output;
use crate::key::{to_human_size, to_human_size_up};

/// Days a sequence steps through a block of elements at a time (see
/// [`WindowStream::apply`]); the chunks of these days are kept besides
/// the window's span.
const BATCH: usize = 8;

/// About how large an output chunk is made (whole days of every group).
const OUT_CHUNK: u64 = 4 << 20;

/// What [`run`] needs of the planning in [`super::run`].
pub(super) struct Parts {
    pub(super) source: ZarrSource,
    pub(super) template: Template,
    pub(super) chunks: OutputChunks,
    pub(super) vars: Vec<VarPlan>,
    pub(super) sequences: Vec<Sequence>,
    pub(super) groups: Groups,
    pub(super) dup: Vec<Option<usize>>,
    pub(super) window: Window,
    pub(super) group_dims: Vec<String>,
    pub(super) step: IndexMap<String, u64>,
    pub(super) need: Need,
    pub(super) skipped: Vec<(String, DType)>,
    pub(super) started: Instant,
}

/// Everything a sequence needs, shared by the workers.
struct Stream {
    progress: Option<Arc<ReadProgress>>,
    source: ZarrSource,
    sink: ZarrSink,
    vars: Vec<VarPlan>,
    sequences: Vec<Sequence>,
    window: Window,
    /// Per day of the period: the time steps that fall on it, in time
    /// order, each with its group among the day's groups.
    feeds: Vec<Feed>,
    /// Per variable, per day of the period: whether a group has many steps
    /// on it (the day of several years; see [`multi`]). Such a day is read
    /// into its [`DaySums`] as it enters the window and kept until the
    /// window leaves it ([`Chains`]), or before the window starts with
    /// every other day ([`Stream::all`]). Another day is read each time it
    /// is needed (about three times).
    multi: Vec<Vec<bool>>,
    /// Per variable: whether every day is gathered before the window starts
    /// (see [`all_days`]).
    all: Vec<bool>,
    /// The day's groups as `[window.outer, inner]` (around the day-of-year
    /// axis).
    inner: usize,
    /// Days per output chunk.
    per_chunk: usize,
    stats: Vec<Stat>,
    need: Need,
    step: IndexMap<String, u64>,
    group_dims: Vec<String>,
    doy_dim: String,
    /// Bytes of source chunks a sequence may keep.
    cache_bytes: u64,
}

/// A day's time steps, each with its group.
type Feed = Vec<(usize, usize)>;

/// Each day's time steps and their groups among the day's `outer × inner`.
fn feeds(groups: &Groups, dup: &[Option<usize>], w: &Window) -> (Vec<Feed>, usize) {
    let len = w.days.len();
    let inner = w.inner(groups);
    let mut feeds = vec![Vec::new(); w.period];
    let mut put = |t: usize, g: usize| {
        let (o, rest) = (g / (len * inner), g % (len * inner));
        let (k, i) = (rest / inner, rest % inner);
        feeds[w.days[k]].push((t, o * inner + i));
    };
    for (t, g) in groups.index.iter().enumerate() {
        if let Some(g) = *g {
            put(t, g);
        }
        if let Some(g) = dup.get(t).copied().flatten() {
            put(t, g);
        }
    }
    for f in &mut feeds {
        f.sort_unstable();
    }
    (feeds, inner)
}

/// Per day: whether its steps are gathered into [`DaySums`] (see
/// [`Stream::multi`]): when a group has so many steps on it (the day of
/// several years) that their values, of `itemsize` bytes, take more than
/// [`GATHER_BYTES`]. This depends on the data's shape and dtype alone,
/// never on the chunking, the budget or the statistics asked, so none of
/// them changes a result's bits (the sums of several steps round
/// differently from the steps added one by one).
fn multi(feeds: &[Feed], itemsize: usize) -> Vec<bool> {
    feeds
        .iter()
        .map(|f| {
            let mut count: HashMap<usize, usize> = HashMap::new();
            for &(_, g) in f {
                *count.entry(g).or_default() += 1;
            }
            let most = count.values().copied().max().unwrap_or(0);
            most > 1 && most * itemsize > GATHER_BYTES
        })
        .collect()
}

/// Whether every day of variable `v` is gathered into its [`DaySums`]
/// before the window starts, each source chunk read once in storage order
/// ([`Stream::gather_all`]): when every day with steps is gathered
/// ([`multi`]) and a year of day sums, over the variable's whole grid,
/// holds at most [`ALL_DAYS_VALUES`] values per accumulator. This depends
/// on the shape alone (never on the chunking, the budget or the
/// statistics asked, which cut stripes when the sums do not fit a
/// worker's share): a variance's bits depend on the order days are
/// gathered in (each element's shift is its first valid value).
fn all_days(
    v: &VarPlan,
    sizes: &IndexMap<String, u64>,
    (feeds, multi): (&[Feed], &[bool]),
    groups: usize,
) -> bool {
    let every = feeds.iter().zip(multi).all(|(f, &m)| m || f.is_empty());
    let elems: u64 = v.kept.iter().map(|&a| sizes[&v.dims[a]]).product();
    let values = (feeds.len() * groups) as u64 * elems;
    // (a variable without time has no days: `multi` is empty)
    multi.contains(&true) && every && values <= ALL_DAYS_VALUES
}

/// The most values per accumulator of a year of day sums (over a
/// variable's whole grid) gathered before the window starts
/// ([`all_days`]): 134 MB for a mean (a sum and a weight total), twice
/// that with std, which a worker's share of the default budget holds on
/// up to 3 workers (7 for a mean). Larger sums would be cut into stripes,
/// each decoding every chunk again, where streaming holds the window's
/// span of sums (a fifth of a year's): on the hourly 32 × 64 bench store
/// (18 million values) mean and std took 1.8 s gathered in 2 stripes
/// and 1.1 s streamed (a mean alone 0.48 and 0.53 s). WeatherBench 2's
/// 6-hourly 64 × 32 grid has 3 million.
const ALL_DAYS_VALUES: u64 = 8 << 20;

/// A day's steps are gathered into sums when a group's take more than this
/// many bytes an element: what a mean's sums take (a weight total and a
/// sum), so a mean over 5 years of float32 (or 3 of float64) is gathered.
/// A mean's sums then hold at most the steps' bytes (8 more with NaN kept,
/// `--keep-nan`); with var or std (32 bytes) up to twice them, for a third
/// of the reads.
const GATHER_BYTES: usize = 16;

/// Days whose [`DaySums`] a sequence may hold at once: the window's span
/// and the days a batch gathers ahead, or the whole period when the
/// window spans nearly all of it (the days the window takes again across
/// the year's end, `period - 2h` steps later, are then kept: see
/// [`Chains`]).
fn kept_days(window: &Window) -> usize {
    let (h, period) = (window.width / 2, window.period);
    if period <= 3 * h + 1 {
        period
    } else {
        (2 * h + 2 + BATCH).min(period)
    }
}

/// Bytes a sequence holds besides its source chunks: the stream, the
/// sums of `kept` days (when days have several steps), the output buffers
/// (and their copies in the output dtype) and one step in f64.
fn held(
    p: &Parts,
    stats: usize,
    (seq, groups, per_chunk): (&Sequence, usize, usize),
    kept: usize,
) -> u64 {
    let elems: u64 = seq.block.iter().map(|r| r.end - r.start).product();
    let per = (WindowStream::bytes_per_element(p.need) + kept * DaySums::bytes_per_element(p.need))
        as u64;
    // open output chunks: those a batch of days crosses, in f64, and one
    // more copy in the output dtype as it is written
    let open = (BATCH.div_ceil(per_chunk) + 1) * per_chunk;
    groups as u64 * elems * per
        + stats as u64 * groups as u64 * (open + per_chunk) as u64 * elems * 8
        + elems * 8
}

/// The decoded bytes of one source chunk of sequence `seq`'s block.
fn chunk_bytes(p: &Parts, seq: &Sequence) -> u64 {
    let v = &p.vars[seq.var];
    let itemsize = v.dtype.itemsize() as u64;
    let mut n = itemsize;
    for (a, d) in v.dims.iter().enumerate() {
        n *= match v.kept.iter().position(|&k| k == a) {
            Some(k) => seq.block[k].end - seq.block[k].start,
            None => p.step[d].min(p.source.template().sizes()[d]),
        };
    }
    n
}

/// The decoded bytes of a whole source chunk of sequence `seq`'s
/// variable: what reading one chunk holds for a moment (decoded whole,
/// then copied out), whatever the block. Pencil-chunked stores (time
/// whole) make this the largest term.
fn whole_chunk_bytes(p: &Parts, seq: &Sequence) -> u64 {
    let v = &p.vars[seq.var];
    super::chunk_elems(v, p.source.template().sizes(), &p.step) * v.dtype.itemsize() as u64
}

/// Days per output chunk: whole days of every group, about [`OUT_CHUNK`].
fn days_per_chunk(groups: usize, elems: u64, days: usize) -> usize {
    let day = groups as u64 * elems * 8;
    ((OUT_CHUNK / day.max(1)) as usize).clamp(1, days.max(1))
}

/// The sequences (cut into stripes when a worker's share of the budget
/// cannot hold one), days per output chunk, workers and the bytes of source
/// chunks each sequence may keep.
fn fit(
    options: &Options,
    workers: usize,
    p: &mut Parts,
    (groups, feeds, multi, all): (usize, &[Feed], &[Vec<bool>], &[bool]),
) -> Result<(usize, usize, u64), Error> {
    let headroom = options.max_mem / 8;
    let stats = options.stats.len();
    let days = p.window.days.len();
    // days per output chunk from the blocks before any cut, so that
    // stripes hold less
    let elems = p
        .sequences
        .iter()
        .map(|s| s.block.iter().map(|r| r.end - r.start).product::<u64>())
        .max()
        .unwrap_or(1);
    let per_chunk = days_per_chunk(groups, elems, days);
    // the chunks a batch of days needs at once (kept whatever the cap):
    // three days a step; and the most the window spans over a batch (and
    // two spare), beyond which keeping chunks gains nothing
    let tstep = p
        .vars
        .iter()
        .find_map(|v| v.fold.map(|a| p.step[&v.dims[a]]))
        .unwrap_or(1) as usize;
    let most = span(feeds, p.window.width / 2 * 2 + 2 + BATCH, tstep);
    let pinned = (3 * BATCH as u64 * span(feeds, 1, tstep)).min(most);
    let largest = |p: &Parts, sequences: &[Sequence]| {
        sequences
            .iter()
            .map(|s| {
                // a time step is copied out of its chunk when time is not
                // the outermost dimension (its values are not contiguous)
                let copied = u64::from(p.vars[s.var].fold.is_some_and(|a| a > 0));
                // every day's sums and one chunk at a time, or the days'
                // sums the window spans and the chunks a batch needs
                let (kept, chunks) = if all[s.var] {
                    (p.window.period, 1)
                } else if multi[s.var].contains(&true) {
                    (kept_days(&p.window), pinned)
                } else {
                    (0, pinned)
                };
                held(p, stats, (s, groups, per_chunk), kept)
                    + (1 + copied) * chunks * chunk_bytes(p, s)
                    + whole_chunk_bytes(p, s)
            })
            .max()
            .unwrap_or(0)
    };
    let fitted = {
        let p: &Parts = p;
        cut_to_fit(
            options.max_mem,
            workers,
            (&p.sequences, &p.vars, &p.step),
            |s: &[Sequence]| largest(p, s),
        )
    };
    let bytes = match fitted {
        Ok((sequences, cut, bytes)) => {
            p.sequences = sequences;
            if let Some((dim, stripe)) = cut {
                p.chunks.insert(dim, ChunkSpec::Size(stripe));
            }
            bytes
        }
        Err((bytes, enough)) => {
            let whole = p.sequences.iter().map(|s| whole_chunk_bytes(p, s)).max();
            let held = if all.contains(&true) {
                "the sums of every day of the year, the window's running sums, the output days"
                    .to_owned()
            } else {
                format!(
                    "the window's running sums (and the days' sums it keeps), the output days, \
                     the source chunks of {BATCH} days"
                )
            };
            return Err(Error::Usage(format!(
                "the largest variable block needs {} for {held} and one source chunk of {} \
                 decoded whole, which with an eighth of the budget kept for reading is more \
                 than --max-mem {} allows: give --max-mem {} or more, or chunk the source's \
                 other dimensions more finely",
                to_human_size(bytes),
                to_human_size(whole.unwrap_or(0)),
                to_human_size(options.max_mem),
                to_human_size_up(enough),
            )));
        }
    };
    let fit = ((options.max_mem - headroom) / bytes.max(1)).max(1) as usize;
    let workers = workers.min(fit).min(p.sequences.len()).max(1);
    let share = (options.max_mem - headroom) / workers as u64;
    let chunk = p
        .sequences
        .iter()
        .map(|s| chunk_bytes(p, s))
        .max()
        .unwrap_or(0);
    // the chunks kept: what the share leaves (less another eighth of the
    // budget over the workers: the process's own memory, and the encoded
    // output and decoded input in flight, measured at about 100 MB on the
    // 4 GB bench store), the pinned ones included
    let spare = share.saturating_sub(bytes + options.max_mem / 8 / workers as u64);
    let cache = spare + pinned * chunk;
    Ok((per_chunk, workers, cache.min((most + 2) * chunk)))
}

/// The most source chunks (of `tstep` steps) that `n` days in a row touch
/// (around the period).
fn span(feeds: &[Feed], n: usize, tstep: usize) -> u64 {
    let p = feeds.len();
    let chunks = |d: usize| -> Vec<usize> {
        let mut c: Vec<usize> = feeds[d % p].iter().map(|&(t, _)| t / tstep).collect();
        c.dedup();
        c
    };
    let mut count: HashMap<usize, usize> = HashMap::new();
    let mut most = 0;
    for d in 0..p + n {
        for c in chunks(d) {
            *count.entry(c).or_default() += 1;
        }
        if d >= n {
            for c in chunks(d - n) {
                if let Some(k) = count.get_mut(&c) {
                    *k -= 1;
                    if *k == 0 {
                        count.remove(&c);
                    }
                }
            }
        }
        most = most.max(count.len());
    }
    most as u64
}

/// Runs the windowed climatology planned in `p`.
pub(super) fn run(options: &Options, runner: &Runner, mut p: Parts) -> Result<Done, Error> {
    let (feeds, inner) = feeds(&p.groups, &p.dup, &p.window);
    // per variable, as its values' size decides
    let multi: Vec<Vec<bool>> = p
        .vars
        .iter()
        .map(|v| match v.fold {
            Some(_) => multi(&feeds, v.dtype.itemsize()),
            None => Vec::new(),
        })
        .collect();
    let groups = p.window.outer * inner;
    let all: Vec<bool> = p
        .vars
        .iter()
        .zip(&multi)
        .map(|(v, m)| all_days(v, p.source.template().sizes(), (&feeds, m), groups))
        .collect();
    let (per_chunk, workers, cache_bytes) = fit(
        options,
        runner.workers(),
        &mut p,
        (groups, &feeds, &multi, &all),
    )?;
    let doy_dim = p.group_dims[p.window.at].clone();
    for (d, l) in p.group_dims.iter().zip(&p.groups.labels) {
        let c = if *d == doy_dim { per_chunk } else { l.len() };
        p.chunks.insert(d.clone(), ChunkSpec::Size(c.max(1) as u64));
    }
    let planned = p.template.data_nbytes();
    output::prepare(&options.dst, Some(&options.src), options.write, planned)?;
    let setup = SetupOptions {
        chunks: p.chunks,
        shards: None,
        format: options.format.unwrap_or(p.source.format()),
        encoding: IndexMap::new(),
        resume: options.write.resume,
    };
    let sink =
        setup_zarr(&p.template, &options.dst, &setup).map_err(Error::output(&options.dst))?;
    let stream = Arc::new(Stream {
        progress: options.progress.clone(),
        source: p.source,
        sink,
        vars: p.vars,
        sequences: p.sequences,
        window: p.window,
        feeds,
        multi,
        all,
        inner,
        per_chunk,
        stats: options.stats.clone(),
        need: p.need,
        step: p.step,
        group_dims: p.group_dims,
        doy_dim,
        cache_bytes,
    });
    let count = stream.sequences.len();
    let reads = (0..count).map(|i| stream.reads(i)).sum();
    let runner = runner.clone().limit_workers(workers);
    let s = Arc::clone(&stream);
    super::execute(
        options,
        (count, reads, move |i| s.run_sequence(i)),
        &runner,
        (p.started, p.skipped, workers),
    )
}

/// Where the batch of moves that starts at `start` ends: before an add,
/// or before the step after [`BATCH`] steps.
fn batch_end(moves: &[Move], start: usize) -> usize {
    let mut end = start;
    let mut steps = 0;
    while end < moves.len() && !matches!(moves[end], Move::Add { .. }) {
        if matches!(moves[end], Move::Step(_)) {
            if steps == BATCH {
                break;
            }
            steps += 1;
        }
        end += 1;
    }
    end
}

/// Time step `t` of the values `data` of its source chunk (time on axis
/// `at`, `tstep` steps a chunk).
fn step_of<T>(
    data: xbeam_chunk::ndarray::ArrayViewD<'_, T>,
    at: usize,
    (t, tstep): (usize, usize),
) -> xbeam_chunk::ndarray::ArrayViewD<'_, T> {
    data.index_axis_move(Axis(at), t % tstep)
}

/// One step of a day: its group, weight and values.
type Part<'c, T> = (usize, f64, xbeam_chunk::ndarray::ArrayViewD<'c, T>);

/// Source chunks kept by one sequence. When they do not all fit, the one
/// let go is the one needed again last (the moves are known in advance,
/// so this is the best choice there is); chunks the moves being done need
/// are pinned until [`release`](Cache::release)d.
struct Cache {
    kept: HashMap<u64, Dataset>,
    bytes: u64,
    cap: u64,
    /// Chunks read at least once.
    seen: std::collections::HashSet<u64>,
    /// Chunks the moves being done need (kept even beyond `cap`).
    pinned: std::collections::HashSet<u64>,
    /// Kept chunks not pinned, by the next move that needs them.
    free: std::collections::BTreeSet<(usize, u64)>,
    /// Each free chunk's next move.
    next: HashMap<u64, usize>,
    /// The bytes of the last chunk read.
    last: u64,
    /// Per chunk, the moves that need it, in order.
    uses: HashMap<u64, Vec<usize>>,
}

impl Cache {
    fn new(cap: u64, uses: HashMap<u64, Vec<usize>>) -> Cache {
        Cache {
            kept: HashMap::new(),
            bytes: 0,
            cap,
            seen: std::collections::HashSet::new(),
            pinned: std::collections::HashSet::new(),
            free: std::collections::BTreeSet::new(),
            next: HashMap::new(),
            last: 0,
            uses,
        }
    }

    /// Keeps chunk `i` (pinned), read by `read` unless kept; returns
    /// whether it was read for the first time.
    fn get(
        &mut self,
        i: u64,
        read: impl FnOnce() -> Result<Dataset, Error>,
    ) -> Result<bool, Error> {
        if self.pinned.insert(i) {
            if let Some(m) = self.next.remove(&i) {
                self.free.remove(&(m, i));
            }
        }
        if self.kept.contains_key(&i) {
            return Ok(false);
        }
        // room first (as large as the last chunk), so that the chunk read
        // takes the memory of the one let go
        self.make_room(self.last);
        let ds = read()?;
        let n = ds.nbytes() as u64;
        self.last = n;
        self.make_room(n);
        self.bytes += n;
        self.kept.insert(i, ds);
        Ok(self.seen.insert(i))
    }

    /// Unpins every chunk, the moves up to `done` being done, and lets go
    /// at once of those no later move needs: their memory is then what the
    /// next chunks are read into, where keeping them until the cap is
    /// reached would have every chunk read into fresh pages (the kernel
    /// zeroes each one first, about 1 s per GB on these VMs).
    fn release(&mut self, done: usize) {
        let pinned: Vec<u64> = self.pinned.drain().collect();
        for i in pinned {
            if self.kept.contains_key(&i) {
                let m = self.uses.get(&i).and_then(|uses| {
                    let at = uses.partition_point(|&m| m <= done);
                    uses.get(at).copied()
                });
                if let Some(m) = m {
                    self.free.insert((m, i));
                    self.next.insert(i, m);
                } else if let Some(d) = self.kept.remove(&i) {
                    self.bytes -= d.nbytes() as u64;
                }
            }
        }
    }

    /// Lets go of the chunks needed again last, never a pinned one, until
    /// `n` more bytes fit.
    fn make_room(&mut self, n: u64) {
        while self.bytes + n > self.cap {
            let Some((m, old)) = self.free.pop_last() else {
                break;
            };
            debug_assert_eq!(self.next.get(&old), Some(&m));
            self.next.remove(&old);
            if let Some(d) = self.kept.remove(&old) {
                self.bytes -= d.nbytes() as u64;
            }
        }
    }
}

/// The days a move needs.
fn days_of(mv: &Move) -> Vec<usize> {
    match *mv {
        Move::Add { day, .. } => vec![day],
        Move::Step(three) => three.iter().map(|&(d, _)| d).collect(),
        Move::Emit(_) => Vec::new(),
    }
}

/// When the days of many steps are gathered: a day's uses come in chains
/// (as it enters the window, at its centre, as it leaves: `h` steps
/// apart), and a day is gathered at the first use of a chain and kept to
/// its last. A use more than `h + 1` steps after the one before starts a
/// new chain (the window takes the day again across the year's end), so
/// the sums held stay within the window's span ([`kept_days`]); gathering
/// a day again gives the same bits (each element's shift is set by then).
struct Chains {
    /// Per day, the moves that use it, in order.
    uses: HashMap<usize, Vec<usize>>,
    /// Per move, the steps before it.
    step: Vec<usize>,
    /// The most steps between two uses of a chain.
    gap: usize,
}

impl Chains {
    fn new(moves: &[Move], h: usize) -> Chains {
        let mut uses: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut step = Vec::with_capacity(moves.len());
        let mut steps = 0;
        for (m, mv) in moves.iter().enumerate() {
            step.push(steps);
            steps += usize::from(matches!(mv, Move::Step(_)));
            for d in days_of(mv) {
                let list = uses.entry(d).or_default();
                if list.last() != Some(&m) {
                    list.push(m);
                }
            }
        }
        Chains {
            uses,
            step,
            gap: h + 1,
        }
    }

    /// Whether move `m`, which uses `day`, starts a chain of it.
    fn starts(&self, day: usize, m: usize) -> bool {
        let Some(u) = self.uses.get(&day) else {
            return true;
        };
        let i = u.partition_point(|&x| x < m);
        i == 0 || self.step[m] - self.step[u[i - 1]] > self.gap
    }

    /// Whether `day`'s chain is over once the moves up to `done` are.
    fn over(&self, day: usize, done: usize) -> bool {
        let Some(u) = self.uses.get(&day) else {
            return true;
        };
        let i = u.partition_point(|&x| x <= done);
        i == u.len() || (i > 0 && self.step[u[i]] - self.step[u[i - 1]] > self.gap)
    }
}

/// The [`DaySums`] of the days of many steps that a sequence keeps: each
/// through a chain of its uses ([`Chains`]), or every day from the start
/// ([`Stream::gather_all`]).
struct Sums {
    kept: HashMap<usize, DaySums>,
    /// Sums of days done with, to gather others into.
    spare: Vec<DaySums>,
    chains: Chains,
}

impl Sums {
    /// Lets go of the days whose chain is over once the moves up to
    /// `done` are.
    fn release(&mut self, done: usize) {
        let gone: Vec<usize> = self
            .kept
            .keys()
            .copied()
            .filter(|&d| self.chains.over(d, done))
            .collect();
        for d in gone {
            if let Some(mut s) = self.kept.remove(&d) {
                s.clear();
                self.spare.push(s);
            }
        }
    }
}

impl Stream {
    /// The source chunks sequence `i` reads (each once when they fit).
    fn reads(&self, i: usize) -> u64 {
        let v = &self.vars[self.sequences[i].var];
        super::chunks_read(v, self.source.template().sizes(), &self.step)
    }

    /// The region of sequence `seq`'s block, and of time chunk `chunk`.
    fn region(&self, seq: &Sequence, chunk: Option<u64>) -> IndexMap<String, std::ops::Range<u64>> {
        let v = &self.vars[seq.var];
        let mut region: IndexMap<String, std::ops::Range<u64>> = v
            .kept
            .iter()
            .zip(&seq.block)
            .map(|(&a, r)| (v.dims[a].clone(), r.clone()))
            .collect();
        if let (Some(a), Some(c)) = (v.fold, chunk) {
            let d = &v.dims[a];
            let (s, n) = (self.step[d], self.source.template().sizes()[d]);
            region.insert(d.clone(), c * s..((c + 1) * s).min(n));
        }
        region
    }

    fn read(&self, seq: &Sequence, chunk: Option<u64>) -> Result<Dataset, Error> {
        let v = &self.vars[seq.var];
        let vars = [v.name.clone()].into_iter().collect();
        self.source
            .read(&self.region(seq, chunk), Some(&vars))
            .map_err(Error::input(self.source.path()))
    }

    /// Smooths sequence `i` day by day and writes its output chunks;
    /// returns bytes read, bytes written and chunks read.
    fn run_sequence(&self, i: usize) -> Result<(u64, u64, u64), Error> {
        let seq = &self.sequences[i];
        let v = &self.vars[seq.var];
        match v.fold {
            None => self.run_static(seq),
            Some(at) => dispatch!(dtype: v.dtype, T => self.run_typed::<T>(seq, at),
                other => Err(Error::Check(format!("cannot smooth values of {other}")))),
        }
    }

    /// [`run_sequence`](Stream::run_sequence) of a variable of `T`, whose
    /// time axis is `at`.
    fn run_typed<T>(&self, seq: &Sequence, at: usize) -> Result<(u64, u64, u64), Error>
    where
        T: xbeam_stats::Value + xbeam_chunk::Element,
    {
        let v = &self.vars[seq.var];
        let shape: Vec<usize> = seq
            .block
            .iter()
            .map(|r| (r.end - r.start) as usize)
            .collect();
        let w = &self.window;
        let mut stream = WindowStream::new(
            self.need,
            self.window.outer * self.inner,
            &shape,
            w.period,
            w.width,
        )?;
        let tstep = self.step[&v.dims[at]] as usize;
        let moves = stream.moves(&w.days)?;
        let chains = Chains::new(&moves, w.width / 2);
        let all = self.all[seq.var];
        let uses = if all {
            HashMap::new()
        } else {
            self.uses(seq.var, &moves, tstep, &chains)
        };
        let mut cache = Cache::new(self.cache_bytes, uses);
        let mut sums = Sums {
            kept: HashMap::new(),
            spare: Vec::new(),
            chains,
        };
        let mut bytes_out = 0u64;
        let mut out = Out::new(seq, shape.iter().product());
        let mut read = (0u64, 0u64);
        if all {
            self.gather_all::<T>((seq, at, tstep), &mut stream, &mut sums.kept, &mut read)?;
        }
        let mut fetch = |day, stream: &mut WindowStream, cache: &mut Cache, sums: &mut Sums| {
            self.fetch::<T>((seq, at, tstep), day, (stream, cache, sums), &mut read)
        };
        let mut at_move = 0;
        while at_move < moves.len() {
            if let Move::Add {
                day,
                triangle,
                delta,
            } = moves[at_move]
            {
                fetch(day, &mut stream, &mut cache, &mut sums)?;
                if let Some(day_sums) = sums.kept.get(&day) {
                    stream.add_sums((triangle, delta), day_sums);
                } else {
                    let mut parts = Vec::new();
                    self.steps::<T>(v, (day, 1.0), (at, tstep), &cache, &mut parts)?;
                    for (group, _, values) in &parts {
                        stream.add((triangle, delta), *group, values);
                    }
                }
                cache.release(at_move);
                if !all {
                    sums.release(at_move);
                }
                at_move += 1;
                continue;
            }
            // up to BATCH days of steps and emits, a block of elements at a time
            let end = batch_end(&moves, at_move);
            let batch = &moves[at_move..end];
            for m in batch {
                if let Move::Step(three) = m {
                    for (day, _) in three {
                        fetch(*day, &mut stream, &mut cache, &mut sums)?;
                    }
                }
            }
            debug_assert!(
                all || sums.kept.len() <= kept_days(&self.window),
                "{} days' sums kept, over the {} budgeted",
                sums.kept.len(),
                kept_days(&self.window)
            );
            let work = self.work::<T>((seq.var, at, tstep), batch, (&cache, &sums), &mut out)?;
            stream.apply(&work, |k, day, group, elements| {
                out.fill(self, k, group, elements, |stat, group, e, buf| {
                    day.write_range(self.stats[stat], group, e, buf);
                });
            });
            drop(work);
            for m in batch {
                if let Move::Emit(k) = m {
                    bytes_out += out.done(self, *k)?;
                }
            }
            cache.release(end - 1);
            if !all {
                sums.release(end - 1);
            }
            at_move = end;
        }
        Ok((read.0, bytes_out, read.1))
    }

    /// Reads every source chunk of `seq`'s block once, in storage order,
    /// each let go once read, and gathers each of its steps into the sums
    /// of its days (of every day: see [`all_days`]); counts the bytes and
    /// chunks read in `read`.
    fn gather_all<T>(
        &self,
        (seq, at, tstep): (&Sequence, usize, usize),
        stream: &mut WindowStream,
        kept: &mut HashMap<usize, DaySums>,
        read: &mut (u64, u64),
    ) -> Result<(), Error>
    where
        T: xbeam_stats::Value + xbeam_chunk::Element,
    {
        let v = &self.vars[seq.var];
        // (step, day, group) in time order: each day takes its steps in the
        // order the window would gather them (its feed's)
        let mut order: Vec<(usize, usize, usize)> = self
            .feeds
            .iter()
            .enumerate()
            .flat_map(|(d, f)| f.iter().map(move |&(t, g)| (t, d, g)))
            .collect();
        order.sort_unstable();
        let mut next = order.iter().peekable();
        while let Some(&&(first, ..)) = next.peek() {
            let c = first / tstep;
            let ds = self.read(seq, Some(c as u64))?;
            let data = ds.data_var(&v.name)?.data();
            self.count_read(data.nbytes() as u64, read);
            let values = data.as_view::<T>()?;
            while let Some(&(t, day, group)) = next.next_if(|&&(t, ..)| t / tstep == c) {
                let sums = kept.entry(day).or_insert_with(|| stream.day_sums());
                stream.gather(sums, group, &step_of(values.view(), at, (t, tstep)));
            }
        }
        Ok(())
    }

    /// Counts a source chunk of `bytes` read for the first time in `read`
    /// (bytes and chunks), and on the progress bar.
    fn count_read(&self, bytes: u64, read: &mut (u64, u64)) {
        read.0 += bytes;
        read.1 += 1;
        if let Some(p) = &self.progress {
            p.read(bytes);
        }
    }

    /// Reads the source chunks of `day` (into `cache`) unless its sums are
    /// kept, and gathers those of a day of many steps into its sums;
    /// counts the bytes and chunks read for the first time in `read`.
    fn fetch<T>(
        &self,
        (seq, at, tstep): (&Sequence, usize, usize),
        day: usize,
        (stream, cache, sums): (&mut WindowStream, &mut Cache, &mut Sums),
        read: &mut (u64, u64),
    ) -> Result<(), Error>
    where
        T: xbeam_stats::Value + xbeam_chunk::Element,
    {
        if sums.kept.contains_key(&day) {
            return Ok(());
        }
        let v = &self.vars[seq.var];
        for &(t, _) in &self.feeds[day] {
            let c = (t / tstep) as u64;
            if cache.get(c, || self.read(seq, Some(c)))? {
                // the variable's bytes (the chunk read has coordinates too)
                let first = cache.kept[&c].data_var(&v.name)?.data().nbytes() as u64;
                self.count_read(first, read);
            }
        }
        if self.multi[seq.var][day] {
            let mut parts = Vec::new();
            self.steps::<T>(v, (day, 1.0), (at, tstep), cache, &mut parts)?;
            let mut day_sums = sums.spare.pop().unwrap_or_else(|| stream.day_sums());
            for (group, _, values) in &parts {
                stream.gather(&mut day_sums, *group, values);
            }
            sums.kept.insert(day, day_sums);
        }
        Ok(())
    }

    /// The work of a `batch` of steps and emits (opening the output days
    /// of its emits): each step's days as their steps, from `cache`, or
    /// as their sums, kept in `sums`.
    fn work<'c, T>(
        &self,
        (var, at, tstep): (usize, usize, usize),
        batch: &[Move],
        (cache, sums): (&'c Cache, &'c Sums),
        out: &mut Out,
    ) -> Result<Vec<Work<'c, T>>, Error>
    where
        T: xbeam_stats::Value + xbeam_chunk::Element,
    {
        let v = &self.vars[var];
        let mut work = Vec::with_capacity(batch.len());
        for m in batch {
            work.push(match *m {
                Move::Step(three) => {
                    let (mut parts, mut gathered) = (Vec::new(), Vec::new());
                    for (day, weight) in three {
                        if let Some(day_sums) = sums.kept.get(&day) {
                            gathered.push((weight, day_sums));
                        } else {
                            // a gathered day stepped would round otherwise
                            debug_assert!(!self.multi[var][day], "day {day} not gathered");
                            self.steps::<T>(v, (day, weight), (at, tstep), cache, &mut parts)?;
                        }
                    }
                    Work::StepSums(parts, gathered)
                }
                Move::Emit(k) => {
                    out.open(self, k);
                    Work::Emit(k)
                }
                Move::Add { .. } => unreachable!("a batch holds steps and emits"),
            });
        }
        Ok(work)
    }

    /// Per source chunk (of `tstep` steps), the moves that need it: every
    /// move that needs a day read step by step, the first of each chain
    /// of a day gathered into sums ([`Chains`]).
    fn uses(
        &self,
        var: usize,
        moves: &[Move],
        tstep: usize,
        chains: &Chains,
    ) -> HashMap<u64, Vec<usize>> {
        let mut uses: HashMap<u64, Vec<usize>> = HashMap::new();
        for (m, mv) in moves.iter().enumerate() {
            for d in days_of(mv) {
                if self.multi[var][d] && !chains.starts(d, m) {
                    continue;
                }
                for &(t, _) in &self.feeds[d] {
                    let list = uses.entry((t / tstep) as u64).or_default();
                    if list.last() != Some(&m) {
                        list.push(m);
                    }
                }
            }
        }
        uses
    }

    /// Pushes the steps of `day` (each with its group and `weight`) from
    /// `cache`, where their chunks are, to `parts`.
    fn steps<'c, T: xbeam_chunk::Element>(
        &self,
        v: &VarPlan,
        (day, weight): (usize, f64),
        (at, tstep): (usize, usize),
        cache: &'c Cache,
        parts: &mut Vec<Part<'c, T>>,
    ) -> Result<(), Error> {
        for &(t, group) in &self.feeds[day] {
            let c = (t / tstep) as u64;
            let data = cache.kept[&c].data_var(&v.name)?.data().as_view::<T>()?;
            parts.push((group, weight, step_of(data, at, (t, tstep))));
        }
        Ok(())
    }

    /// A variable without the time dimension: its statistics, the same for
    /// every group (as xarray's groupby repeats it).
    fn run_static(&self, seq: &Sequence) -> Result<(u64, u64, u64), Error> {
        let v = &self.vars[seq.var];
        let ds = self.read(seq, None)?;
        let data = ds.data_var(&v.name)?.data();
        let bytes_in = data.nbytes() as u64;
        if let Some(p) = &self.progress {
            p.read(bytes_in);
        }
        let shape: Vec<usize> = seq
            .block
            .iter()
            .map(|r| (r.end - r.start) as usize)
            .collect();
        let elems: usize = shape.iter().product();
        let mut fold = Fold::new(self.need, 1, &shape);
        let origin = vec![0; shape.len()];
        dispatch!(primitive: data, a => fold.add(0, &origin, &a.view()),
            _ => unreachable!("non-numeric variables are skipped"));
        let one = fold.into_partial();
        let results: Vec<ArrayD<f64>> = self.stats.iter().map(|&st| one.finalize(st, 0)).collect();
        let mut out = Out::new(seq, elems);
        let mut bytes_out = 0;
        for k in 0..self.window.days.len() {
            out.open(self, k);
            for group in 0..self.window.outer * self.inner {
                out.fill(self, k, group, 0..elems, |stat, _, _, buf| {
                    buf.copy_from_slice(results[stat].as_slice().expect("standard layout"));
                });
            }
            bytes_out += out.done(self, k)?;
        }
        Ok((bytes_in, bytes_out, 1))
    }
}

/// One sequence's output chunks being filled: per statistic, `[outer,
/// days, inner, elements]` in f64, with the days done so far.
struct Out {
    seq: Sequence,
    elems: usize,
    /// By the chunk's first day (among those present).
    open: std::collections::BTreeMap<usize, (Vec<Vec<f64>>, usize)>,
    /// Buffers of chunks written.
    spare: Vec<Vec<f64>>,
}

impl Out {
    fn new(seq: &Sequence, elems: usize) -> Out {
        Out {
            seq: seq.clone(),
            elems,
            open: std::collections::BTreeMap::new(),
            spare: Vec::new(),
        }
    }

    /// Days in the chunk that starts at day `first`.
    fn days(s: &Stream, first: usize) -> usize {
        s.per_chunk.min(s.window.days.len() - first)
    }

    /// Makes room for day `k`.
    fn open(&mut self, s: &Stream, k: usize) {
        let first = k - k % s.per_chunk;
        let len = s.window.outer * Out::days(s, first) * s.inner * self.elems;
        if self.open.contains_key(&first) {
            return;
        }
        // buffers of written chunks are used again: fresh pages cost more
        // than filling old ones (the kernel zeroes them)
        let bufs = (0..s.stats.len())
            .map(|_| {
                let mut b = self.spare.pop().unwrap_or_default();
                b.clear();
                b.resize(len, f64::NAN);
                b
            })
            .collect();
        self.open.insert(first, (bufs, 0));
    }

    /// Fills `elements` of `group` of day `k` (opened) with
    /// `fill(stat, group, elements, out)`.
    fn fill(
        &mut self,
        s: &Stream,
        k: usize,
        group: usize,
        elements: std::ops::Range<usize>,
        fill: impl Fn(usize, usize, std::ops::Range<usize>, &mut [f64]),
    ) {
        let first = k - k % s.per_chunk;
        let days = Out::days(s, first);
        let (o, i) = (group / s.inner, group % s.inner);
        let at = ((o * days + (k - first)) * s.inner + i) * self.elems;
        let (bufs, _) = self.open.get_mut(&first).expect("an opened day");
        for (stat, b) in bufs.iter_mut().enumerate() {
            let out = &mut b[at + elements.start..at + elements.end];
            fill(stat, group, elements.clone(), out);
        }
    }

    /// Day `k` is filled: writes its chunk if that was the last day;
    /// returns the bytes written.
    fn done(&mut self, s: &Stream, k: usize) -> Result<u64, Error> {
        let first = k - k % s.per_chunk;
        let days = Out::days(s, first);
        let entry = self.open.get_mut(&first).expect("an opened day");
        entry.1 += 1;
        if entry.1 < days {
            return Ok(0);
        }
        let (bufs, _) = self.open.remove(&first).expect("an opened day");
        self.write(s, (first, days), bufs)
    }

    /// Writes the chunk of `days` days that starts at `first`.
    fn write(
        &mut self,
        s: &Stream,
        (first, days): (usize, usize),
        bufs: Vec<Vec<f64>>,
    ) -> Result<u64, Error> {
        let t = s.sink.template();
        let v = &s.vars[self.seq.var];
        let mut shape: Vec<usize> = Vec::new();
        let mut key = Key::new();
        for d in &s.group_dims {
            if *d == s.doy_dim {
                shape.push(days);
                key = key.with_offset(d, first as u64);
            } else {
                shape.push(t.sizes()[d] as usize);
                key = key.with_offset(d, 0);
            }
        }
        for (k, &a) in v.kept.iter().enumerate() {
            let r = &self.seq.block[k];
            shape.push((r.end - r.start) as usize);
            key = key.with_offset(&v.dims[a], r.start);
        }
        let mut out = Dataset::new();
        for (stat, b) in s.stats.iter().zip(bufs) {
            let name = out_name(&v.name, stat.name(), outputs(&s.stats, &[]));
            let schema = &t.data_vars()[&name];
            let values = ArrayD::from_shape_vec(IxDyn(&shape), b)
                .map_err(|e| Error::Check(format!("result shape: {e}")))?;
            let data = Array::from(values).astype(schema.dtype)?;
            out = out.with_data_var(name, Variable::new(schema.dims.clone(), data)?)?;
        }
        let bytes = out.nbytes() as u64;
        s.sink
            .write_chunk(&key, &out)
            .map_err(Error::output(s.sink.path()))?;
        // the buffers back, when nothing else holds them
        let kept: Vec<_> = out
            .data_vars()
            .values()
            .filter_map(|v| match v.data() {
                Array::F64(a) => Some(a.clone()),
                _ => None,
            })
            .collect();
        drop(out);
        for a in kept {
            if a.is_unique() {
                self.spare.push(a.into_owned().into_raw_vec_and_offset().0);
            }
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunk of `n` float64 values.
    fn chunk(n: usize) -> Result<Dataset, Error> {
        let a = Array::from_1d(vec![1.0f64; n]);
        Ok(Dataset::new().with_data_var("x", Variable::new(["i"], a)?)?)
    }

    fn kept(c: &Cache) -> Vec<u64> {
        let mut k: Vec<u64> = c.kept.keys().copied().collect();
        k.sort_unstable();
        k
    }

    #[test]
    fn the_cache_lets_go_the_chunk_needed_last_but_never_a_pinned_one() {
        // chunk i is needed at moves uses[i]; 9 never
        let uses: HashMap<u64, Vec<usize>> = [
            (0, vec![0, 7]),
            (1, vec![0, 2]),
            (2, vec![0, 3]),
            (3, vec![1, 4]),
            (4, vec![5]),
        ]
        .into_iter()
        .collect();
        let mut c = Cache::new(3 * 80, uses);
        for i in 0..3 {
            assert!(c.get(i, || chunk(10)).unwrap(), "read the first time");
        }
        c.release(0);
        // a fourth lets go of 0, needed again last (at move 7)
        assert!(c.get(3, || chunk(10)).unwrap());
        assert_eq!(kept(&c), [1, 2, 3]);
        // a chunk kept is not read again
        assert!(!c.get(2, || panic!("kept")).unwrap());
        c.release(1);
        // 3, needed again last (at move 4), goes
        c.get(9, || chunk(10)).unwrap();
        assert_eq!(kept(&c), [1, 2, 9]);
        c.release(1);
        // chunk 9, never needed again, goes as soon as it is unpinned
        assert_eq!(kept(&c), [1, 2]);
        c.get(4, || chunk(10)).unwrap();
        assert_eq!(kept(&c), [1, 2, 4]);
        // chunks the moves being done need stay, beyond the cap if need be
        c.get(1, || panic!("kept")).unwrap();
        c.get(2, || panic!("kept")).unwrap();
        c.get(5, || chunk(10)).unwrap();
        assert_eq!(kept(&c), [1, 2, 4, 5], "all pinned: over the cap");
        assert!(c.bytes > c.cap);
        // read again after being let go: not a first read
        c.release(5);
        assert_eq!(kept(&c), [] as [u64; 0], "none is needed after move 5");
        assert_eq!(c.bytes, 0);
        assert!(!c.get(0, || chunk(10)).unwrap());
        assert_eq!(kept(&c), [0]);
        assert_eq!(
            c.bytes,
            c.kept.values().map(|d| d.nbytes() as u64).sum::<u64>()
        );
        assert!(c.bytes <= c.cap);
    }

    #[test]
    fn days_are_gathered_when_a_groups_steps_take_more_than_16_bytes() {
        // day 0: 5 steps of group 0; day 1: 4 of group 0 and 1 of group 1;
        // day 2: one step each of 5 groups; day 3: none
        let feeds: Vec<Vec<(usize, usize)>> = vec![
            (0..5).map(|t| (t, 0)).collect(),
            (5..10).map(|t| (t, usize::from(t == 9))).collect(),
            (10..15).map(|t| (t, t - 10)).collect(),
            Vec::new(),
        ];
        // gathered above 16 bytes of a group's steps an element
        assert_eq!(multi(&feeds, 4), [true, false, false, false]);
        assert_eq!(multi(&feeds, 8), [true, true, false, false]);
        assert_eq!(multi(&feeds, 2), [false; 4]);
        // one step per group is never gathered, however large
        assert_eq!(multi(&feeds[2..3], 32), [false]);
    }

    #[test]
    fn gathered_days_are_kept_through_the_window_and_gathered_again_across_the_year_end() {
        // a year of 20 days, width 7 (h = 3): day 18 is added with the
        // first window (around day 0) and taken again as the last days pass
        let need = Need::of(&[Stat::Mean], true);
        let stream = WindowStream::new(need, 1, &[1], 20, 7).unwrap();
        let days: Vec<usize> = (0..20).collect();
        let moves = stream.moves(&days).unwrap();
        let chains = Chains::new(&moves, 3);
        let uses = &chains.uses[&18];
        assert!(uses.len() >= 4, "{uses:?}");
        let steps: Vec<usize> = uses.iter().map(|&m| chains.step[m]).collect();
        // the first chain (the first window's adds, then as it leaves)
        // and the second (as it enters near the end) are far apart
        let cut = steps.windows(2).position(|w| w[1] - w[0] > 4).unwrap();
        assert!(chains.starts(18, uses[0]));
        assert!(!chains.starts(18, uses[cut]));
        assert!(chains.starts(18, uses[cut + 1]), "{steps:?}");
        assert!(!chains.over(18, uses[0]), "kept within its chain");
        assert!(chains.over(18, uses[cut]), "let go between its chains");
        assert!(chains.over(18, *uses.last().unwrap()));
        // as a sequence gathers and lets go (a batch's days gathered before
        // it, let go after it), never more days kept than kept_days allows
        for (period, width) in [(20, 7), (366, 61), (365, 3), (366, 243), (360, 359)] {
            let stream = WindowStream::new(need, 1, &[1], period, width).unwrap();
            let days: Vec<usize> = (0..period).collect();
            let moves = stream.moves(&days).unwrap();
            let chains = Chains::new(&moves, width / 2);
            let window = Window {
                at: 0,
                outer: 1,
                days,
                period,
                width,
            };
            let mut kept = std::collections::HashSet::new();
            let (mut most, mut at) = (0, 0);
            while at < moves.len() {
                let end = if let Move::Add { day, .. } = moves[at] {
                    kept.insert(day);
                    at + 1
                } else {
                    let end = batch_end(&moves, at);
                    for m in &moves[at..end] {
                        if let Move::Step(three) = m {
                            kept.extend(three.iter().map(|&(d, _)| d));
                        }
                    }
                    end
                };
                most = most.max(kept.len());
                kept.retain(|&d| !chains.over(d, end - 1));
                at = end;
            }
            assert!(kept.is_empty(), "every day let go in the end");
            let budget = kept_days(&window);
            assert!(most <= budget, "{period}/{width}: {most} kept > {budget}");
            // and the budget is not far above it (the whole period only
            // when the window takes days again across the year's end)
            assert!(
                budget <= most + 2,
                "{period}/{width}: {most} kept, {budget} budgeted"
            );
        }
    }

    #[test]
    fn span_counts_the_chunks_of_days_in_a_row_around_the_period() {
        // 5 days of 2 steps each, chunks of 3 steps: day d has steps 2d, 2d + 1
        let feeds: Vec<Vec<(usize, usize)>> =
            (0..5).map(|d| vec![(2 * d, 0), (2 * d + 1, 1)]).collect();
        // one day touches at most 2 chunks (day 1: steps 2, 3)
        assert_eq!(span(&feeds, 1, 3), 2);
        // around the end: days 4 and 0 (steps 8, 9 and 0, 1) touch chunks 2, 3 and 0
        assert_eq!(span(&feeds, 2, 3), 3);
        // days 4, 0 and 1: every chunk
        assert_eq!(span(&feeds, 3, 3), 4);
        assert_eq!(span(&feeds, 5, 3), 4);
    }
}
