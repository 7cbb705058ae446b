#!/usr/bin/env python
"""`xbeam rechunk` against xarray-beam's Rechunk + ChunksToZarr.

  python rechunk_fixtures.py make DIR    # source stores + DIR/jobs.json
  python rechunk_fixtures.py beam DIR    # xarray-beam's rechunks
  python rechunk_fixtures.py check DIR   # the comparison

Between `make` and `check`, `cargo xtask interop` (interop_rechunk.rs) runs
every `xbeam rechunk` that jobs.json lists, while `beam` runs beside it.

`make` writes odd-shaped source stores with xarray, in Zarr v2 and v3: time
101 (noleap calendar, cftime), lat 13, lon 27, chunked time=8, lat=13,
lon=10, so that no chunk divides a dimension, with

  t2m     (time, lat, lon) float32, NaNs, attrs
  orog    (lat, lon)       float64, a static field
  gmean   (time,)          float32, a series
  packed  (lon, lat, time) int16 on disk (scale_factor, add_offset,
                           _FillValue), NaNs; dims in another order
  area    (lat, lon)       a non-index coordinate

and jobs.json: for each store, target chunkings (pancake -> pencil; one that
names only time, so lat and lon keep their chunks; in v3 also pencils in
shards), each run by `xbeam rechunk` twice: with `--max-mem 2MiB` (for the
pencils a plan of three working stages: consolidate, split + consolidate,
split; its dry run is kept and checked) and with the default budget.

`beam` runs xarray-beam 0.11.5 for every job, in one Beam pipeline on the
DirectRunner (in_memory): xbeam.open_zarr -> DatasetToChunks(split_vars) ->
Rechunk(max_mem=2 MiB) -> ChunksToZarr, the pattern of
../shared/bench/xbeam_rechunk.py, with `encoding=` carrying the source's CF
encoding, and for the pencils also as is (without it). xarray-beam's Rechunk and ChunksToZarr take a
missing dimension as whole, so they are given every dimension's chunks (for
`--target-chunks time=30`: time=30 and the source's lat=13, lon=10), and
shards as Rechunk's target. `check`, for every store xbeam wrote:

- it opens in xarray with no warning (warnings are errors), with
  consolidated metadata (.zmetadata in v2, consolidated_metadata in v3);
- xr.testing.assert_identical against the source and against xarray-beam's
  output (decoded values and NaNs, dims and their order, coords, attrs);
- per variable, the same on-disk dtype and fill value, the same CF encoding
  (dtype, _FillValue, scale_factor, add_offset, units, calendar) and the
  same raw (undecoded) values as the source and as xarray-beam's output
  with encoding=;
- data variables chunked as asked (and sharded); coordinates whole;
- the 2 MiB and default-budget runs wrote byte-identical stores;
- for the pencils, `--transpose time,lat,lon` too: identical to xarray's
  `ds.transpose("time", "lat", "lon")` of the source and of xarray-beam's
  output (`packed`, stored (lon, lat, time), changes order), with the
  source's CF encoding and the chunks asked along each dimension.

Where xbeam differs from xarray-beam on purpose, the check asserts xbeam's
behaviour and prints the difference:

1. ChunksToZarr without `encoding=` does not keep the source's CF encoding:
   xarray's to_zarr replaces a variable's .encoding by the `encoding`
   argument's entry (dump_to_store), and xarray-beam's setup passes one for
   every variable (the chunks, or {}), so `packed` is written as float64 with a NaN fill instead of
   int16 packed, and time gets xarray's default units ('hours since <first
   time>' rather than the source's). xbeam keeps the source's encoding;
   xarray-beam needs `encoding=` for it (the second xarray-beam run).
2. Non-index coordinates (`area`): xarray-beam writes them with the data
   variables' target chunks; xbeam writes every coordinate whole (one
   chunk), as xarray does for a store it writes.
3. Compressors: xarray-beam uses zarr-python's defaults for the output;
   xbeam keeps the source's codecs. Compared only as printed information.
"""
import json
import os
import shutil
import sys
import warnings

import numpy as np
import xarray as xr

NT, NY, NX = 101, 13, 27
SOURCE_CHUNKS = {"time": 8, "lat": 13, "lon": 10}
SMALL_MAX_MEM = "2MiB"
BEAM_MAX_MEM = 2 << 20

ATTRS = {
    "title": "xbeam rechunk interop fixture",
    "int_attr": 42,
    "float_attr": 2.5,
    "bool_attr": True,
    "list_attr": [1, 2, 3],
    "str_list": ["a", "b"],
    "nested": {"a": 1, "b": [1, "x"]},
    "unicode": "température °C",
}

# Target chunkings: name -> (--target-chunks, --shards or None, v3 only,
# stages doing work in the 2 MiB plan at least, xarray-beam also without
# encoding=). xarray-beam costs ~6 s per rechunk even of these small stores,
# so its run without encoding= is done for the pencils only.
TARGETS = {
    "pencil": ("time=-1,lat=5,lon=4", None, False, 2, True),
    "time30": ("time=30", None, False, 1, False),
    "sharded": ("time=-1,lat=5,lon=4", "lat=10,lon=8", True, 2, False),
}

# `xbeam rechunk --transpose` of the pencil jobs, against xarray's
# ds.transpose of the source and of xarray-beam's output
TRANSPOSE = "time,lat,lon"

ENCODING_KEYS = ["dtype", "_FillValue", "scale_factor", "add_offset", "units",
                 "calendar"]

failures = []


def fail(msg):
  failures.append(msg)
  print("FAIL", msg, flush=True)


# ---------------------------------------------------------------- make


def source_dataset():
  rng = np.random.default_rng(20260909)
  time = xr.date_range("2001-02-25", periods=NT, freq="6h", calendar="noleap",
                       use_cftime=True)
  t2m = (rng.standard_normal((NT, NY, NX)) * 5 + 280).astype(np.float32)
  t2m[3, 4, 5] = np.nan
  t2m[100, 12, 26] = np.nan
  packed = (rng.standard_normal((NX, NY, NT)) * 10 + 15).round(2)
  packed[rng.random(packed.shape) < 0.02] = np.nan
  return xr.Dataset(
      {
          "t2m": (("time", "lat", "lon"), t2m,
                  {"units": "K", "long_name": "2 m temperature", **ATTRS}),
          "orog": (("lat", "lon"), rng.random((NY, NX)) * 3000,
                   {"units": "m", "long_name": "orography"}),
          "gmean": (("time",), np.nanmean(t2m, axis=(1, 2)),
                    {"units": "K", "cell_methods": "lat: lon: mean"}),
          # times stored as float days: 3 h after each step is x.125
          # (datetime64: xarray-beam's make_template cannot hold cftime
          # objects in a data variable)
          "valid": (("time",),
                    np.datetime64("2001-02-25T03:00", "ns")
                    + np.arange(NT) * np.timedelta64(6, "h"),
                    {"long_name": "valid time"}),
          "packed": (("lon", "lat", "time"), packed,
                     {"units": "mm", "long_name": "packed precipitation"}),
      },
      coords={
          "time": ("time", time, {"long_name": "time"}),
          "lat": ("lat", np.linspace(60.0, -60.0, NY),
                  {"units": "degrees_north"}),
          "lon": ("lon", np.arange(NX) * 13.3, {"units": "degrees_east"}),
          "area": (("lat", "lon"), rng.random((NY, NX)) * 100,
                   {"units": "km2"}),
      },
      attrs=ATTRS,
  )


def source_encoding(fmt):
  import numcodecs
  from zarr.codecs import ZstdCodec
  chunks = lambda dims: tuple(SOURCE_CHUNKS[d] for d in dims)  # noqa: E731
  compressors = ([numcodecs.Zstd(level=3)] if fmt == 2
                 else [ZstdCodec(level=3)])
  enc = {
      "time": {"units": "hours since 2001-01-01", "calendar": "noleap",
               "dtype": "int64"},
      "packed": {"dtype": "int16", "scale_factor": 0.01, "add_offset": 15.0,
                 "_FillValue": -32768},
      "valid": {"units": "days since 2001-01-01", "dtype": "float64"},
  }
  for name, dims in [("t2m", ("time", "lat", "lon")), ("orog", ("lat", "lon")),
                     ("gmean", ("time",)), ("valid", ("time",)),
                     ("packed", ("lon", "lat", "time"))]:
    e = enc.setdefault(name, {})
    e["chunks"] = chunks(dims)
    e["compressors"] = compressors
  return enc


def expected_chunks(target):
  """--target-chunks -> chunks of every dimension (unnamed: the source's)."""
  sizes = {"time": NT, "lat": NY, "lon": NX}
  out = dict(SOURCE_CHUNKS)
  for part in target.split(","):
    d, n = part.split("=")
    n = int(n)
    out[d] = sizes[d] if n == -1 else min(n, sizes[d])
  return out


def parse_shards(shards):
  return {d: int(n) for d, n in (p.split("=") for p in shards.split(","))}


def make(out):
  if os.path.exists(out):
    shutil.rmtree(out)
  os.makedirs(os.path.join(out, "xbeam"))
  ds = source_dataset()
  jobs = []
  for fmt in (2, 3):
    src = os.path.join(out, f"src_v{fmt}.zarr")
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")  # zarr: v3 consolidated metadata
      ds.to_zarr(src, mode="w", zarr_format=fmt, consolidated=True,
                 encoding=source_encoding(fmt))
    for tname, (target, shards, v3_only, stages, plain) in TARGETS.items():
      if v3_only and fmt != 3:
        continue
      name = f"v{fmt}_{tname}"
      runs = []
      for budget, extra in [("small", ["--max-mem", SMALL_MAX_MEM]),
                            ("default", [])]:
        args = ["rechunk", src,
                os.path.join(out, "xbeam", f"{name}.{budget}.zarr"),
                "--target-chunks", target, "--quiet", *extra]
        if shards:
          args += ["--shards", shards]
        runs.append({
            "budget": budget,
            "out": args[2],
            "args": args,
            # `xbeam <args> --dry-run` prints the plan into this file
            "plan": os.path.join(out, "xbeam", f"{name}.{budget}.plan.txt"),
        })
      transposed = None
      if tname == "pencil":
        # --transpose: `packed` (lon, lat, time) is written (time, lat, lon)
        out_t = os.path.join(out, "xbeam", f"{name}.transposed.zarr")
        transposed = {"order": TRANSPOSE, "out": out_t,
                      "args": ["rechunk", src, out_t, "--target-chunks",
                               target, "--transpose", TRANSPOSE, "--quiet",
                               "--max-mem", SMALL_MAX_MEM]}
      jobs.append({
          "name": name, "format": fmt, "src": src, "target": target,
          "transposed": transposed,
          "chunks": expected_chunks(target),
          "shards": parse_shards(shards) if shards else None,
          "stages": stages,
          "beam": plain and os.path.join(out, "beam", f"{name}.zarr"),
          "beam_encoded": os.path.join(out, "beam", f"{name}.encoded.zarr"),
          "runs": runs,
      })
  with open(os.path.join(out, "jobs.json"), "w") as f:
    json.dump(jobs, f, indent=1)
  print(f"wrote 2 source stores and {len(jobs)} rechunk jobs to {out}")


# ---------------------------------------------------------------- xarray-beam


def cf_encoding(ds):
  """The source's CF encoding, as `encoding=` for ChunksToZarr."""
  enc = {}
  for name, var in ds.variables.items():
    e = {k: var.encoding[k] for k in ENCODING_KEYS if k in var.encoding}
    if e:
      enc[name] = e
  return enc


def run_xarray_beam(jobs):
  """Every job in one pipeline: as is, and with the source's encoding."""
  import logging
  logging.getLogger().setLevel(logging.ERROR)
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions
  import xarray_beam as xbeam

  options = PipelineOptions(["--runner=DirectRunner",
                             "--direct_running_mode=in_memory",
                             "--direct_num_workers=1"])
  with warnings.catch_warnings():
    # xarray's FutureWarning about combine's compat default, from inside
    # xarray-beam's ConsolidateChunks, and zarr's note on v3 consolidated
    # metadata: neither is about xbeam
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", UserWarning)
    with beam.Pipeline(options=options) as p:
      for job in jobs:
        source, source_chunks = xbeam.open_zarr(job["src"])
        if source_chunks != SOURCE_CHUNKS:
          fail(f"{job['name']}: xarray-beam reads source chunks "
               f"{source_chunks}, expected {SOURCE_CHUNKS}")
        template = xbeam.make_template(source)
        itemsize = max(v.dtype.itemsize for v in template.data_vars.values())
        chunks = job["chunks"]
        write = job["shards"] and {**chunks, **job["shards"]} or chunks
        for tag, out, encoding in [("plain", job["beam"], None),
                                   ("encoded", job["beam_encoded"],
                                    cf_encoding(source))]:
          if not out:
            continue
          _ = (
              p
              | f"{job['name']} {tag} read" >> xbeam.DatasetToChunks(
                  source, source_chunks, split_vars=True)
              | f"{job['name']} {tag} rechunk" >> xbeam.Rechunk(
                  source.sizes, source_chunks, write, itemsize=itemsize,
                  max_mem=BEAM_MAX_MEM)
              | f"{job['name']} {tag} write" >> xbeam.ChunksToZarr(
                  out, template, chunks, zarr_shards=job["shards"],
                  zarr_format=job["format"], encoding=encoding)
          )


# ---------------------------------------------------------------- check


def zarr_meta(store, name):
  """(dtype, fill_value, chunks, shards, codecs) from the array's metadata."""
  path = os.path.join(store, name)
  if os.path.exists(os.path.join(path, ".zarray")):
    m = json.load(open(os.path.join(path, ".zarray")))
    return {"dtype": m["dtype"], "fill_value": m["fill_value"],
            "chunks": tuple(m["chunks"]), "shards": None,
            "codecs": m.get("compressor")}
  m = json.load(open(os.path.join(path, "zarr.json")))
  chunks, shards = tuple(m["chunk_grid"]["configuration"]["chunk_shape"]), None
  codecs = m.get("codecs", [])
  for c in codecs:
    if c["name"] == "sharding_indexed":
      shards, chunks = chunks, tuple(c["configuration"]["chunk_shape"])
      codecs = c["configuration"]["codecs"]
  return {"dtype": m["data_type"], "fill_value": m["fill_value"],
          "chunks": chunks, "shards": shards, "codecs": codecs}


def same(a, b):
  if isinstance(a, float) and isinstance(b, float) and np.isnan(a) \
      and np.isnan(b):
    return True
  if isinstance(a, np.generic) or isinstance(b, np.generic):
    return np.asarray(a).dtype == np.asarray(b).dtype and (
        a == b or (np.isnan(a) and np.isnan(b)))
  return a == b and type(a) is type(b)


def encoding_diff(a, b):
  """{key: (a, b)} where two variables' CF encodings differ."""
  out = {}
  for key in ENCODING_KEYS:
    va, vb = a.encoding.get(key), b.encoding.get(key)
    if key == "dtype":
      va, vb = str(va), str(vb)
    if not same(va, vb):
      out[key] = (va, vb)
  return out


def open_quietly(path):
  """Opens a store as a user would, with warnings as errors."""
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    ds = xr.open_zarr(path)
    chunks = {n: v.encoding.get("chunks") for n, v in ds.variables.items()}
    return ds.load(), chunks


def open_raw(path):
  return xr.open_zarr(path, decode_cf=False, mask_and_scale=False).load()


def identical(tag, a, b):
  try:
    xr.testing.assert_identical(a, b)
  except AssertionError as e:
    fail(f"{tag}: not identical:\n{e}")


def check_consolidated(tag, path, fmt, names):
  if fmt == 2:
    meta = os.path.join(path, ".zmetadata")
    if not os.path.exists(meta):
      fail(f"{tag}: no .zmetadata")
      return
    listed = {k.split("/")[0] for k in json.load(open(meta))["metadata"]
              if "/" in k}
  else:
    root = json.load(open(os.path.join(path, "zarr.json")))
    listed = set((root.get("consolidated_metadata") or {}).get("metadata", {}))
  if listed != set(names):
    fail(f"{tag}: consolidated metadata lists {sorted(listed)}, "
         f"expected {sorted(names)}")


def check_plan(tag, plan_path, stages):
  """The small budget gives a plan with `stages` stages doing work."""
  text = open(plan_path).read()
  working = [l for l in text.splitlines()
             if l.startswith("stage ") and "nothing to do" not in l
             and ":" in l]
  if len(working) < stages:
    fail(f"{tag}: the 2 MiB plan should have {stages} stages doing work, "
         f"got:\n{text}")


def store_files(path):
  out = {}
  for root, _, files in os.walk(path):
    for f in files:
      full = os.path.join(root, f)
      out[os.path.relpath(full, path)] = open(full, "rb").read()
  return out


def beam_notes(job, src):
  """What xarray-beam without encoding= writes differently (note 1)."""
  name = job["name"]
  beam, _ = open_quietly(job["beam"])
  identical(f"{name}: xarray-beam (no encoding=) vs source", src, beam)
  for v in sorted(src.variables):
    d = encoding_diff(src[v], beam[v])
    if d:
      print(f"  note {name}/{v}: xarray-beam without encoding= writes "
            + ", ".join(f"{k} {b!r} (source {a!r})" for k, (a, b) in d.items()))
  return beam


def check_job(job):
  name, fmt = job["name"], job["format"]
  src = xr.open_zarr(job["src"]).load()
  src_raw = open_raw(job["src"])
  beam = beam_notes(job, src) if job["beam"] else None
  beam_enc, _ = open_quietly(job["beam_encoded"])
  beam_enc_raw = open_raw(job["beam_encoded"])
  identical(f"{name}: xarray-beam vs source", src, beam_enc)
  chunks, shards = job["chunks"], job["shards"]
  for v in src.coords:
    if v not in src.indexes:
      b = zarr_meta(job["beam_encoded"], v)["chunks"]
      print(f"  note {name}/{v}: xarray-beam chunks the non-index coordinate "
            f"{b}; xbeam writes it whole")

  stores = []
  for run in job["runs"]:
    tag = f"{name}.{run['budget']}"
    path = run["out"]
    if run["budget"] == "small":
      check_plan(tag, run["plan"], job["stages"])
    try:
      ours, our_chunks = open_quietly(path)
    except Exception as e:  # a warning is an error here
      fail(f"{tag}: xarray.open_zarr failed or warned: {e!r}")
      continue
    ours_raw = open_raw(path)
    identical(f"{tag} vs source", src, ours)
    identical(f"{tag} vs xarray-beam", beam_enc, ours)
    if beam is not None:
      identical(f"{tag} vs xarray-beam without encoding=", beam, ours)
    identical(f"{tag} raw (undecoded) vs source", src_raw, ours_raw)
    identical(f"{tag} raw (undecoded) vs xarray-beam", beam_enc_raw, ours_raw)
    if list(ours.data_vars) != list(src.data_vars):
      fail(f"{tag}: data variables {list(ours.data_vars)} != "
           f"{list(src.data_vars)}")
    for v in sorted(src.variables):
      check_variable(tag, path, job, v, src, beam_enc, ours, our_chunks)
    check_consolidated(tag, path, fmt, list(src.variables))
    stores.append((tag, path))
  if len(stores) == 2:
    (ta, a), (tb, b) = stores
    fa, fb = store_files(a), store_files(b)
    if fa != fb:
      diff = sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))
      fail(f"{ta} and {tb} differ in {diff[:8]}")
  check_transposed(job, src, beam_enc)
  v = next(iter(src.data_vars))
  ours, theirs = (zarr_meta(job["runs"][0]["out"], v)["codecs"],
                  zarr_meta(job["beam_encoded"], v)["codecs"])
  if ours != theirs:
    print(f"  note {name}: codecs xbeam {ours} (the source's), "
          f"xarray-beam {theirs} (zarr-python's default)")
  print(f"ok  {name}: {len(stores)} xbeam stores compared with the source "
        f"and xarray-beam", flush=True)


def check_transposed(job, src, beam_enc):
  """`xbeam rechunk --transpose`: xarray's ds.transpose of the source (and
  of xarray-beam's output), with the source's CF encoding, chunked as asked
  along each dimension wherever it now is."""
  t = job.get("transposed")
  if not t:
    return
  tag = f"{job['name']}.transposed"
  order = t["order"].split(",")
  try:
    ours, our_chunks = open_quietly(t["out"])
  except Exception as e:  # a warning is an error here
    fail(f"{tag}: xarray.open_zarr failed or warned: {e!r}")
    return
  identical(f"{tag} vs source transposed", src.transpose(*order), ours)
  identical(f"{tag} vs xarray-beam transposed", beam_enc.transpose(*order),
            ours)
  if src["packed"].dims == ours["packed"].dims:
    fail(f"{tag}: packed kept its dimensions {src['packed'].dims}")
  for v in src.data_vars:
    d = encoding_diff(src[v], ours[v])
    if d:
      fail(f"{tag}/{v}: CF encoding differs from the source: {d}")
    want = tuple(job["chunks"][d] for d in ours[v].dims)
    if tuple(our_chunks[v]) != want:
      fail(f"{tag}/{v}: xarray reads chunks {our_chunks[v]}, asked {want}")
  print(f"ok  {tag}: dimensions {tuple(ours['packed'].dims)} as asked",
        flush=True)


def check_variable(tag, path, job, v, src, beam_enc, ours, our_chunks):
  """One variable of one xbeam store: CF encoding, on-disk dtype and fill
  value against the source's and xarray-beam's; chunks as asked."""
  for other, what in [(src, "source"), (beam_enc, "xarray-beam")]:
    d = encoding_diff(other[v], ours[v])
    if d:
      fail(f"{tag}/{v}: CF encoding differs from {what}: {d}")
  mine = zarr_meta(path, v)
  for other, what in [(job["src"], "source"),
                      (job["beam_encoded"], "xarray-beam")]:
    theirs = zarr_meta(other, v)
    for k in ["dtype", "fill_value"]:
      if mine[k] != theirs[k]:
        fail(f"{tag}/{v}: on-disk {k} {mine[k]!r}, {what} {theirs[k]!r}")
  chunks, shards = job["chunks"], job["shards"]
  if v in src.data_vars:
    want = tuple(chunks[d] for d in src[v].dims)
    want_shards = shards and tuple({**chunks, **shards}[d] for d in src[v].dims)
    beam_meta = zarr_meta(job["beam_encoded"], v)
    if (mine["chunks"], mine["shards"]) != (want, want_shards):
      fail(f"{tag}/{v}: chunks {mine['chunks']} shards {mine['shards']}, "
           f"asked {want} shards {want_shards}")
    if (beam_meta["chunks"], beam_meta["shards"]) != (want, want_shards):
      fail(f"{job['name']}/{v}: xarray-beam chunks {beam_meta['chunks']} "
           f"shards {beam_meta['shards']}, asked {want}")
    if tuple(our_chunks[v]) != want:
      fail(f"{tag}/{v}: xarray reads chunks {our_chunks[v]}, asked {want}")
  else:
    whole = tuple(src.sizes[d] for d in src[v].dims)
    if mine["chunks"] != whole or mine["shards"] is not None:
      fail(f"{tag}/{v}: coordinate chunks {mine['chunks']} shards "
           f"{mine['shards']}, expected whole {whole}")


def beam(out):
  import time
  jobs = json.load(open(os.path.join(out, "jobs.json")))
  start = time.perf_counter()
  run_xarray_beam(jobs)
  runs = sum(1 + bool(j["beam"]) for j in jobs)
  print(f"xarray-beam ran {runs} rechunks in "
        f"{time.perf_counter() - start:.1f} s", flush=True)
  sys.exit(1 if failures else 0)


def check(out):
  jobs = json.load(open(os.path.join(out, "jobs.json")))
  for job in jobs:
    check_job(job)
  print(f"rechunk interop: {len(jobs)} jobs, {len(failures)} failures")
  sys.exit(1 if failures else 0)


def main():
  commands = {"make": make, "beam": beam, "check": check}
  if len(sys.argv) != 3 or sys.argv[1] not in commands:
    sys.exit(__doc__)
  commands[sys.argv[1]](sys.argv[2])


if __name__ == "__main__":
  main()
