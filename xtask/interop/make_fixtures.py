#!/usr/bin/env python
"""Write the Zarr fixtures that xbeam must read, with xarray and zarr-python.

  python make_fixtures.py OUTDIR

Each fixture is OUTDIR/<name>.zarr; OUTDIR/fixtures.json lists them with how
they were written. `compare.py` later opens each with xarray and compares it
value for value with what xbeam decoded.
"""
import json
import os
import shutil
import sys
import warnings

import cftime
import numcodecs
import numpy as np
import pandas as pd
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

ATTRS = {
    "title": "xbeam interop fixture",
    "int_attr": 42,
    "neg_int": -7,
    "float_attr": 2.5,
    "bool_attr": True,
    "list_attr": [1, 2, 3],
    "float_list": [0.5, 1.5],
    "str_list": ["a", "b"],
    "nested": {"a": 1, "b": [1, "x"]},
    "unicode": "température °C",
    "none_attr": None,
    "empty_list": [],
}


def base_dataset(calendar="standard"):
  rng = np.random.default_rng(0)
  nt, ny, nx = 10, 4, 6
  if calendar == "standard":
    time = pd.date_range("2000-01-01", periods=nt, freq="6h")
  else:
    time = xr.date_range("2000-02-27", periods=nt, freq="12h",
                         calendar=calendar, use_cftime=True)
  t32 = rng.standard_normal((nt, ny, nx)).astype(np.float32) + 280
  t32[0, 0, 0] = np.nan
  t32[3, 2, 1] = np.nan
  f64 = rng.standard_normal((nt, ny, nx))
  f64[1, 1, 1] = np.nan
  ints = rng.integers(-1000, 1000, size=(nt, ny, nx)).astype(np.int32)
  i64 = rng.integers(-2**40, 2**40, size=(ny, nx)).astype(np.int64)
  u8 = rng.integers(0, 255, size=(nx,)).astype(np.uint8)
  packed = (rng.standard_normal((nt, ny, nx)) * 10 + 15).round(2)
  packed[2, 0, 0] = np.nan
  ds = xr.Dataset(
      {
          "t32": (("time", "lat", "lon"), t32,
                  {"units": "K", "long_name": "temperature", **ATTRS}),
          "f64": (("time", "lat", "lon"), f64, {"units": "1"}),
          "i32": (("time", "lat", "lon"), ints),
          "i64": (("lat", "lon"), i64),
          "u8": (("lon",), u8, {"flag": 1}),
          "packed": (("time", "lat", "lon"), packed, {"units": "degC"}),
          "flag": ((), np.int8(3)),
          "masked": (("lat", "lon"), np.where(rng.random((ny, nx)) < 0.3, np.nan,
                                              rng.integers(0, 100, (ny, nx))),
                     {"comment": "int16 on disk with _FillValue -1"}),
      },
      coords={
          "time": ("time", time, {"long_name": "time"}),
          "lat": ("lat", np.linspace(45.0, 30.0, ny), {"units": "degrees_north"}),
          "lon": ("lon", np.arange(nx) * 1.5, {"units": "degrees_east"}),
          "station": ("lon", np.array([f"st{i}" for i in range(nx)])),
          "code": ("lat", np.array([b"a", b"bb", b"ccc", b"dd"])),
          "area": (("lat", "lon"), rng.random((ny, nx)) * 100, {"units": "km2"}),
      },
      attrs=ATTRS,
  )
  return ds


def encoding(fmt, codec, time_units="hours since 2000-01-01", calendar=None):
  enc = {
      "packed": {"dtype": "int16", "scale_factor": 0.01, "add_offset": 15.0,
                 "_FillValue": -32768},
      "time": {"units": time_units, "dtype": "int64"},
  }
  if calendar:
    enc["time"]["calendar"] = calendar
  enc["i64"] = {"chunks": (2, 3)}
  enc["masked"] = {"chunks": (2, 3), "dtype": "int16", "_FillValue": -1}
  enc["u8"] = {"chunks": (3,)}
  for v in ["t32", "f64", "i32", "packed"]:
    e = enc.setdefault(v, {})
    e["chunks"] = (4, 2, 3)
    if fmt == 2:
      c = {
          "blosc": numcodecs.Blosc("lz4", 5, numcodecs.Blosc.SHUFFLE),
          "zstd": numcodecs.Zstd(level=3),
          "gzip": numcodecs.GZip(level=5),
          "zlib": numcodecs.Zlib(level=5),
          "none": None,
      }[codec]
      e["compressors"] = [c] if c else None
    else:
      e["compressors"] = {
          "blosc": [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")],
          "zstd": [ZstdCodec(level=3)],
          "gzip": [GzipCodec(level=5)],
          "none": None,
      }[codec]
  return enc


def main():
  out = sys.argv[1]
  if os.path.exists(out):
    shutil.rmtree(out)
  os.makedirs(out)
  listing = []

  def write(name, ds, fmt, consolidated=True, **kw):
    path = os.path.join(out, name + ".zarr")
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      ds.to_zarr(path, mode="w", zarr_format=fmt, consolidated=consolidated, **kw)
    listing.append({"name": name, "path": path, "format": fmt,
                    "consolidated": consolidated})

  ds = base_dataset()
  for fmt in (2, 3):
    for codec in ("blosc", "zstd", "gzip") + (("zlib",) if fmt == 2 else ()):
      write(f"v{fmt}_{codec}", ds, fmt, encoding=encoding(fmt, codec))
    write(f"v{fmt}_unconsolidated", ds, fmt, consolidated=False,
          encoding=encoding(fmt, "none"))
    nl = base_dataset("noleap")
    write(f"v{fmt}_noleap", nl, fmt,
          encoding=encoding(fmt, "blosc", "days since 2000-01-01", "noleap"))
  # v2 with '/' dimension separator
  enc = encoding(2, "blosc")
  for v in ["t32", "f64", "i32", "packed"]:
    enc[v]["chunk_key_encoding"] = {"name": "v2", "configuration": {"separator": "/"}}
  write("v2_slash", ds, 2, encoding=enc)
  # v3 sharded: chunks (2,2,3) inside shards (4,4,6)
  enc = encoding(3, "zstd")
  for v in ["t32", "f64", "i32", "packed"]:
    enc[v]["chunks"] = (2, 2, 3)
    enc[v]["shards"] = (4, 4, 6)
  write("v3_sharded", ds, 3, encoding=enc)
  # a v3 store written by zarr-python directly with a '/' separator default
  with open(os.path.join(out, "fixtures.json"), "w") as f:
    json.dump(listing, f, indent=1)
  print(f"wrote {len(listing)} fixtures to {out}")


if __name__ == "__main__":
  main()
