#!/usr/bin/env python
"""Check xbeam against xarray, both directions.

  python compare.py DIR

DIR holds fixtures.json (from make_fixtures.py), <name>.dump.json (what xbeam
decoded from each fixture, from `interop dump`) and copies/<name>.<tag>.zarr
(each fixture re-written by xbeam, from `interop copy`).

1. xbeam reads xarray: every variable's dims, dtype, attributes, coordinate
   status and values equal what xarray.open_zarr decodes.
2. xarray reads xbeam: every copy opens with default options and no warnings,
   and is identical (xarray.testing.assert_identical) to the fixture; packing,
   time units and calendars are kept in the encoding.
Exits non-zero with a message per failure.
"""
import glob
import json
import math
import os
import sys
import warnings

import numpy as np
import xarray as xr

failures = []


def fail(msg):
  failures.append(msg)
  print("FAIL", msg)


def dtype_name(var):
  d = var.dtype
  if d.kind in "USO":
    return "object"
  if d.kind == "M":
    return "datetime64[ns]"
  return d.name


def iso(x):
  if isinstance(x, np.datetime64):
    s = str(np.datetime_as_string(x, unit="s"))
    return s
  return (f"{x.year:04d}-{x.month:02d}-{x.day:02d}T{x.hour:02d}:{x.minute:02d}"
          f":{x.second:02d}")


def norm_time(s):
  if s is None:
    return None
  return s if "T" in s else s + "T00:00:00"


def same_values(name, var, expected):
  vals = var.values.ravel()
  if len(vals) != len(expected):
    fail(f"{name}: {len(expected)} values from xbeam, {len(vals)} from xarray")
    return
  kind = var.dtype.kind
  for i, (a, b) in enumerate(zip(vals, expected)):
    if kind == "M" or (kind == "O" and not isinstance(a, str)):
      ok = iso(a) == norm_time(b)
    elif kind in "US" or isinstance(a, (str, bytes)):
      ok = (a.decode() if isinstance(a, bytes) else a) == b
    elif kind == "f":
      ok = (b is None and math.isnan(a)) or (b is not None and
                                              float(a) == float(b))
    else:
      ok = a == b
    if not ok:
      fail(f"{name}[{i}]: xarray {a!r}, xbeam {b!r}")
      return


def check_dump(fx, out):
  ds = xr.open_zarr(fx["path"], chunks=None, consolidated=fx["consolidated"])
  dump = json.load(open(os.path.join(out, fx["name"] + ".dump.json")))
  tag = fx["name"]
  if dump["format"] != fx["format"]:
    fail(f"{tag}: format {dump['format']} != {fx['format']}")
  if dump["attrs"] != ds.attrs:
    fail(f"{tag}: attrs {dump['attrs']} != {ds.attrs}")
  names = set(ds.variables)
  if set(dump["vars"]) != names:
    fail(f"{tag}: variables {sorted(dump['vars'])} != {sorted(names)}")
    return
  for name in sorted(names):
    var, got = ds[name].variable, dump["vars"][name]
    where = f"{tag}/{name}"
    if tuple(got["dims"]) != var.dims:
      fail(f"{where}: dims {got['dims']} != {var.dims}")
    if got["dtype"] != dtype_name(var):
      fail(f"{where}: dtype {got['dtype']} != {dtype_name(var)}")
    if got["attrs"] != var.attrs:
      fail(f"{where}: attrs {got['attrs']} != {var.attrs}")
    if got["coord"] != (name in ds.coords):
      fail(f"{where}: coordinate {got['coord']} != {name in ds.coords}")
    same_values(where, var, got["values"])


def check_copy(fx, copy):
  tag = os.path.basename(copy)
  original = xr.open_zarr(fx["path"], chunks=None,
                          consolidated=fx["consolidated"]).load()
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
      ours = xr.open_zarr(copy).load()
    except Exception as e:  # warnings are errors here
      fail(f"{tag}: xarray.open_zarr failed or warned: {e!r}")
      return
  try:
    xr.testing.assert_identical(original, ours)
  except AssertionError as e:
    fail(f"{tag}: not identical to {fx['name']}:\n{e}")
  for name in ["packed", "time", "masked"]:
    if name not in original.variables:
      continue
    a, b = original[name].encoding, ours[name].encoding
    for key in ["dtype", "scale_factor", "add_offset", "_FillValue", "units",
                "calendar"]:
      va, vb = a.get(key), b.get(key)
      if key == "units" and va and vb:
        va, vb = va.split(" since ")[0], vb.split(" since ")[0]
      if isinstance(va, float) and isinstance(vb, float) and math.isnan(va) \
          and math.isnan(vb):
        continue
      if va != vb:
        fail(f"{tag}/{name}: encoding {key} {va!r} != {vb!r}")


def check_generated(out):
  """`xbeam generate` output against xarray, and `xbeam info --json --stats`
  against statistics computed by xarray."""
  path = os.path.join(out, "copies", "generated.zarr")
  info = json.load(open(os.path.join(out, "generated.info.json")))
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    ds = xr.open_zarr(path).load()
  if info["format"] != 3:
    fail(f"generated: format {info['format']}")
  if info["dims"] != dict(ds.sizes):
    fail(f"generated: dims {info['dims']} != {dict(ds.sizes)}")
  for group in ["coords", "data_vars"]:
    names = set(getattr(ds, group))
    if set(info[group]) != names:
      fail(f"generated: {group} {sorted(info[group])} != {sorted(names)}")
  for name, v in list(info["data_vars"].items()) + list(info["coords"].items()):
    var = ds[name]
    if v["dtype"] != dtype_name(var):
      fail(f"generated/{name}: dtype {v['dtype']} != {dtype_name(var)}")
    if v["attrs"] != var.attrs:
      fail(f"generated/{name}: attrs {v['attrs']} != {var.attrs}")
    st = v["stats"]
    vals = var.values
    if vals.dtype.kind == "M":
      lo, hi = iso(vals.min()), iso(vals.max())
      if (st["min"], st["max"]) != (lo, hi):
        fail(f"generated/{name}: min/max {st['min']}/{st['max']} != {lo}/{hi}")
      continue
    valid = ~np.isnan(vals) if vals.dtype.kind == "f" else np.ones(vals.shape, bool)
    want = {"count": int(valid.sum()), "nan_count": int((~valid).sum()),
            "min": float(np.nanmin(vals)), "max": float(np.nanmax(vals)),
            "mean": float(np.nanmean(vals.astype(np.float64)))}
    for k, w in want.items():
      g = st[k]
      if not math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-9):
        fail(f"generated/{name}: {k} {g} != {w}")
  if info["data_vars"]["temperature"]["chunks"] != [7, 3, 19, 36]:
    fail(f"generated: chunks {info['data_vars']['temperature']['chunks']}")


def check_generated_copy(out):
  """`xbeam copy` of the generated store (to v2, zstd, 14-hour chunks)
  opens in xarray identical to the store it copied."""
  path = os.path.join(out, "copies", "generated.copy.zarr")
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    original = xr.open_zarr(os.path.join(out, "copies", "generated.zarr")).load()
    copy = xr.open_zarr(path)
    chunks = dict(copy.chunks)
    copy = copy.load()
  try:
    xr.testing.assert_identical(original, copy)
  except AssertionError as e:
    fail(f"generated.copy: not identical to generated: {e}")
  if chunks.get("time", (None,))[0] != 14:
    fail(f"generated.copy: time chunks {chunks.get('time')}")
  meta = json.load(open(os.path.join(path, "temperature", ".zarray")))
  if meta["compressor"]["id"] != "zstd":
    fail(f"generated.copy: compressor {meta['compressor']}")


def main():
  out = sys.argv[1]
  fixtures = json.load(open(os.path.join(out, "fixtures.json")))
  by_name = {f["name"]: f for f in fixtures}
  for fx in fixtures:
    check_dump(fx, out)
  check_generated(out)
  check_generated_copy(out)
  copies = sorted(glob.glob(os.path.join(out, "copies", "v*.zarr")))
  for copy in copies:
    name = os.path.basename(copy).split(".")[0]
    check_copy(by_name[name], copy)
  print(f"compared {len(fixtures)} fixtures read by xbeam and {len(copies)} "
        f"stores written by xbeam: {len(failures)} failures")
  sys.exit(1 if failures else 0)


if __name__ == "__main__":
  main()
