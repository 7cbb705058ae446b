//! `ingest --append`: the files a store does not hold yet, added along the
//! concat dimension.
//!
//! The record ([`Record`]) says which files the store holds. An append
//! first records itself as pending (the store's length before it and the
//! files it adds), then grows the store ([`append_dim`]), writes every
//! chunk of the new files (a partly filled last chunk is read back and
//! written again whole with the first new values), and records the files
//! as held. A run stopped half way (a kill, a full disk, a file that
//! cannot be decoded) is finished by the next `--append`: if the store has
//! not grown, the append starts again; if it has, the pending files'
//! chunks are written again (writes are idempotent); if the store's length
//! is neither, it was changed by something else and that is an error.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use indexmap::IndexMap;
use serde_json::Value;
use xbeam_chunk::{Array, DType, Template};
use xbeam_io::{
    append_dim, open_netcdf, open_zarr, ChunkSink, ChunkSource, NetcdfSource, ZarrSink, ZarrSource,
};
use xbeam_key::{ChunksRequest, Key};
use xbeam_runner::{Pipeline, Runner};

use super::record::{recorded, Record, Recorded};
use super::{input, plan, Ingested, Options};
use crate::error::{ensure_usage, Error};
use crate::jobs::Summary;
use crate::transforms::write_to;
use crate::ChunkedDataset;

/// Appends the files of `files` that the store does not hold.
pub(super) fn append(
    options: &Options,
    runner: &Runner,
    files: Vec<PathBuf>,
    on_file: &(dyn Fn() + Sync),
    started: Instant,
) -> Result<Ingested, Error> {
    let dim = &options.concat_dim;
    let mut record = Record::read(&options.dst)?;
    ensure_usage!(
        &record.concat_dim == dim,
        "--concat-dim {dim} does not match the store, which was ingested along {}",
        record.concat_dim
    );
    let mut notes = Vec::new();
    let (mut bytes, mut chunks) = (0, 0);
    if let Some((from, pending)) = record.pending.clone() {
        // the store did not grow: the pending files count as new again
        if let Some((done, (b, c, n))) = finish_pending(options, runner, on_file, from, &pending)? {
            (bytes, chunks) = (bytes + b, chunks + c);
            notes.extend(n);
            record.files.extend(done);
        }
        record.pending = None;
        record.write(&options.dst)?;
    }
    let all = files.len();
    let new = record.new_files(files)?;
    let skipped = all - new.len();
    if !new.is_empty() {
        let store = open_zarr(&options.dst).map_err(Error::input(&options.dst))?;
        let from = store.template().sizes().get(dim).copied().unwrap_or(0);
        let source = open_netcdf(&new, dim, on_file).map_err(input(options))?;
        // checked before anything is recorded: files that do not match the
        // store leave it and its record as they were
        let source = matching(options, store.template(), source)?;
        let added = recorded(source.paths(), source.lengths())?;
        // recorded as pending before the store grows
        record.pending = Some((from, added.clone()));
        record.write(&options.dst)?;
        let (b, c, n) = write_after(options, runner, &store, source, from, true)?;
        (bytes, chunks) = (bytes + b, chunks + c);
        notes.extend(n);
        record.files.extend(added);
        record.pending = None;
        record.write(&options.dst)?;
    }
    Ok(Ingested {
        summary: Summary::finish(started, bytes, bytes, chunks),
        files: new.len(),
        skipped,
        notes,
    })
}

/// What [`write_after`] wrote: bytes, chunks, and notes.
type Written = (u64, u64, Vec<String>);

/// Finishes an append an earlier run started: nothing to do when the store
/// did not grow (the files count as new again), the pending files written
/// again when it did.
fn finish_pending(
    options: &Options,
    runner: &Runner,
    on_file: &(dyn Fn() + Sync),
    from: u64,
    pending: &[Recorded],
) -> Result<Option<(Vec<Recorded>, Written)>, Error> {
    let dim = &options.concat_dim;
    let store = open_zarr(&options.dst).map_err(Error::input(&options.dst))?;
    let size = store.template().sizes().get(dim).copied().unwrap_or(0);
    let added: u64 = pending.iter().map(|r| r.length).sum();
    if size == from {
        return Ok(None);
    }
    ensure_usage!(
        size == from + added,
        "the store holds {size} steps along {dim}, neither the {from} before an interrupted append of {} file(s) nor the {} after it: something other than xbeam ingest changed it; ingest all the files again",
        pending.len(),
        from + added
    );
    // the files as they are now (one may have been mended since): each
    // must still have its length, and the store's index (checked for
    // every chunk written) tells whether they hold the same steps
    let paths: Vec<PathBuf> = pending.iter().map(|r| PathBuf::from(&r.path)).collect();
    let source = open_netcdf(&paths, dim, on_file).map_err(input(options))?;
    for ((r, p), &n) in pending.iter().zip(&paths).zip(source.lengths()) {
        ensure_usage!(
            n == r.length,
            "an append of {} was interrupted and is to be finished now, but that file now holds {n} steps along {dim}, not {}: ingest all the files again",
            p.display(),
            r.length
        );
    }
    let source = matching(options, store.template(), source)?;
    let now = recorded(source.paths(), source.lengths())?;
    let (b, c, mut notes) = write_after(options, runner, &store, source, from, false)?;
    notes.push(format!(
        "finished the append of {} file(s) that an earlier run was stopped in",
        paths.len()
    ));
    Ok(Some((now, (b, c, notes))))
}

/// Writes `source` after the store's first `from` steps along the concat
/// dimension, growing the store first when `grow` (else it has grown
/// already): the new files must continue the store, and the budget must
/// hold their chunks. Returns bytes, chunks and notes.
/// `source` with its index in the store's time unit, once it is checked
/// to hold the store's variables, dimensions and packing.
fn matching(options: &Options, st: &Template, source: NetcdfSource) -> Result<NetcdfSource, Error> {
    let dim = &options.concat_dim;
    let mut source = source;
    if let Some(DType::DateTime(unit, _)) = st.coords().get(dim).map(xbeam_chunk::Variable::dtype) {
        source = source.with_index_unit(unit).map_err(input(options))?;
    }
    same_dataset(st, source.template(), dim)?;
    Ok(source)
}

fn write_after(
    options: &Options,
    runner: &Runner,
    store: &ZarrSource,
    source: NetcdfSource,
    from: u64,
    grow: bool,
) -> Result<Written, Error> {
    let dim = &options.concat_dim;
    let st = store.template();
    let n = source.template().sizes()[dim];
    // the new index values (a count when the files have no coordinate)
    let index = match source.template().coords().get(dim) {
        Some(c) => c.data().clone(),
        None => Array::from_1d((0..n as i64).collect::<Vec<_>>()),
    };
    let t = source.template().clone();
    let bytes: u64 = t.data_nbytes();
    let notes = source.notes().to_vec();
    let chunk = store
        .chunks()
        .get(dim)
        .copied()
        .unwrap_or(from.max(1))
        .max(1);
    let (source, base) =
        continuing(store, source, dim, chunk, from).map_err(Error::input(&options.dst))?;
    let request: ChunksRequest = st
        .sizes()
        .iter()
        .map(|(d, &size)| {
            let c = store.chunks().get(d).copied().unwrap_or(size);
            (d.clone(), xbeam_key::ChunkSpec::Size(c))
        })
        .collect();
    let (_, workers) = plan(source.as_ref(), &request, options, runner.workers())?;
    let output = |e| Error::Output {
        path: options.dst.clone(),
        source: e,
    };
    let sink = if grow {
        append_dim(&options.dst, dim, &index).map_err(output)?
    } else {
        ZarrSink::open(&options.dst).map_err(output)?
    };
    let p = Pipeline::new();
    let ds = ChunkedDataset::from_source(&p, source, &request)?.split_variables()?;
    let count = ds.chunk_count();
    let d = dim.clone();
    // variables without the concat dimension are in the store already
    let shifted = ds.to_chunks()?.flat_map(
        "shift along the store",
        move |(key, chunk): (Key, xbeam_chunk::Dataset)| {
            if !chunk.sizes().contains_key(&d) {
                return Ok::<_, Error>(None);
            }
            let at = key.offsets().get(&d).copied().unwrap_or(0);
            Ok(Some((key.with_offset(d.clone(), base + at), chunk)))
        },
    );
    let sink: Arc<dyn ChunkSink> = Arc::new(sink);
    write_to(&shifted, sink);
    p.run(&runner.clone().limit_workers(workers))?;
    Ok((bytes, count, notes))
}

/// The new files' source as the store's continuation after its first
/// `from` steps, and where along the concat dimension it starts: a partly
/// filled chunk at `from` is written again whole, its values read back,
/// then the new files'.
fn continuing(
    store: &ZarrSource,
    source: NetcdfSource,
    dim: &str,
    chunk: u64,
    from: u64,
) -> Result<(Arc<dyn ChunkSource>, u64), xbeam_io::IoError> {
    let base = from - from % chunk;
    if base == from {
        return Ok((Arc::new(source), base));
    }
    let region = IndexMap::from([(dim.to_owned(), base..from)]);
    let tail = store.read(&region, None)?;
    let parts: Vec<Arc<dyn ChunkSource>> = vec![
        Arc::new(xbeam_io::MemorySource::new(tail)),
        Arc::new(source),
    ];
    Ok((Arc::new(xbeam_io::ConcatSource::new(parts, dim)?), base))
}

/// The new files of an append hold the store's variables (same
/// dimensions, kinds of dtype and packing) and its sizes along every other
/// dimension.
fn same_dataset(st: &Template, t: &Template, concat: &str) -> Result<(), Error> {
    // the index along the concat dimension: times of one calendar
    if let (Some(DType::DateTime(_, a)), Some(DType::DateTime(_, b))) = (
        st.coords().get(concat).map(xbeam_chunk::Variable::dtype),
        t.coords().get(concat).map(xbeam_chunk::Variable::dtype),
    ) {
        ensure_usage!(
            a == b,
            "the new files' {concat:?} uses calendar {:?} but the store's uses {:?}: expected one calendar",
            b.name(),
            a.name()
        );
    }
    for (name, v) in st.data_vars() {
        let Some(n) = t.data_vars().get(name) else {
            return Err(Error::Usage(format!(
                "the new files have no variable {name:?}, which the store holds: expected the same variables"
            )));
        };
        let alike = n.dtype == v.dtype
            || (n.dtype.is_float() && v.dtype.is_float())
            || matches!(
                (n.dtype, v.dtype),
                (DType::DateTime(_, a), DType::DateTime(_, b)) if a == b
            );
        ensure_usage!(
            n.dims == v.dims && alike,
            "variable {name:?} is {} {:?} in the new files but {} {:?} in the store",
            n.dtype,
            n.dims,
            v.dtype,
            v.dims
        );
        // values are encoded with the store's packing: another packing
        // would be re-quantized
        let number = |e: &xbeam_chunk::Attrs, k: &str| e.get(k).and_then(Value::as_f64);
        let packed = |e: &xbeam_chunk::Attrs| {
            (
                number(e, "scale_factor"),
                number(e, "add_offset"),
                e.get("dtype").cloned(),
            )
        };
        let (store, new) = (packed(&v.encoding), packed(&n.encoding));
        ensure_usage!(
            (store.0.is_none() && store.1.is_none()) || store == new,
            "variable {name:?} is packed with scale_factor {:?}, add_offset {:?} ({:?}) in the store but {:?}, {:?} ({:?}) in the new files: appending would re-pack their values; ingest all the files again instead",
            store.0,
            store.1,
            store.2,
            new.0,
            new.1,
            new.2
        );
    }
    if let Some((name, _)) = st
        .coords()
        .iter()
        .find(|(n, c)| n.as_str() != concat && c.dims().iter().any(|d| d == concat))
    {
        return Err(Error::Usage(format!(
            "the store has coordinate {name:?} along {concat} besides its index, whose new values an append cannot write yet: ingest all the files again"
        )));
    }
    ensure_usage!(
        t.data_vars().len() == st.data_vars().len(),
        "the new files hold variables the store does not: expected exactly {:?}",
        st.data_vars().keys().collect::<Vec<_>>()
    );
    for (d, &n) in t.sizes() {
        if d != concat {
            ensure_usage!(
                st.sizes().get(d) == Some(&n),
                "dimension {d:?} has size {n} in the new files but {:?} in the store",
                st.sizes().get(d)
            );
        }
    }
    Ok(())
}
