#!/usr/bin/env python
"""Writes the small NetCDF files xbeam-io's tests read (committed beside this
script; run it again with the interop virtualenv's Python to remake them):

  target/interop-venv/bin/python xbeam-io/tests/data/netcdf/make.py

Every set holds two files of one variable t (time, lat, lon) float32 with
t = 1000 * time index + 10 * lat index + lon index (the index along the whole
concatenated time axis), _FillValue -9999 and a NaN at [1, 0, 0]; a packed
int16 variable p = 0.5 * (time index) + 100 on the same grid; lat (3) and
lon (4) coordinates. File a has 5 steps 6 hours apart from 2004-01-01 in
"hours since 2004-01-01" (int64), file b the next 4 steps in
"days since 2004-01-02" (float64, 0.25, 0.5, ...):

  nc4/     NetCDF-4, zlib + shuffle, chunks (2, 3, 4)
  contig/  NetCDF-4, contiguous (no compression)
  classic/ CDF-1 and CDF-5 (a.nc is CDF-1, b.nc CDF-5), time unlimited
           (record variables, interleaved in the file)
  classic_fixed/ CDF-2 and CDF-1, time a fixed dimension
  bad/     a second file whose lat differs
  noleap/  a second file in the noleap calendar
"""
import os

import numpy as np
import pandas as pd
import xarray as xr

HERE = os.path.dirname(os.path.abspath(__file__))
LAT = np.array([10.0, 20.0, 30.0])
LON = np.array([0.0, 90.0, 180.0, 270.0])


def part(start, n, lat=LAT):
  idx = np.arange(start, start + n)
  t = (1000.0 * idx[:, None, None] + 10.0 * np.arange(3)[None, :, None]
       + np.arange(4)[None, None, :]).astype(np.float32)
  if start == 0:
    t[1, 0, 0] = np.nan
  p = np.broadcast_to((0.5 * idx + 100.0)[:, None, None], (n, 3, 4)).copy()
  times = pd.Timestamp("2004-01-01") + pd.to_timedelta(6 * idx, unit="h")
  return xr.Dataset(
      {"t": (("time", "lat", "lon"), t, {"units": "K"}),
       "p": (("time", "lat", "lon"), p, {"long_name": "packed"})},
      coords={"time": times, "lat": ("lat", lat, {"units": "degrees_north"}),
              "lon": ("lon", LON, {"units": "degrees_east"})},
      attrs={"title": "xbeam-io test file"})


def enc(units, dtype, zlib, calendar="standard"):
  e = {"time": {"units": units, "dtype": dtype, "calendar": calendar},
       "t": {"_FillValue": np.float32(-9999.0)},
       "p": {"dtype": "int16", "scale_factor": 0.5, "add_offset": 100.0,
             "_FillValue": np.int16(-32767)}}
  if zlib:
    for v in ("t", "p"):
      e[v].update(zlib=True, shuffle=True, chunksizes=(2, 3, 4))
  return e


def write(name, fmt_a="NETCDF4", fmt_b="NETCDF4", zlib=False, lat_b=LAT,
          cal_b="standard", unlimited=False):
  d = os.path.join(HERE, name)
  os.makedirs(d, exist_ok=True)
  kw = {"unlimited_dims": ["time"]} if unlimited else {}
  tdt = "int32" if fmt_a in ("NETCDF3_CLASSIC", "NETCDF3_64BIT_OFFSET") else "int64"
  part(0, 5).to_netcdf(os.path.join(d, "a.nc"), format=fmt_a, engine="netcdf4",
                       encoding=enc("hours since 2004-01-01", tdt, zlib), **kw)
  b = part(5, 4, lat=lat_b)
  if cal_b != "standard":
    import cftime
    b = b.assign_coords(time=[cftime.DatetimeNoLeap(2004, 1, 2, 6 * k + 6) if k < 3 else cftime.DatetimeNoLeap(2004, 1, 3, 0)
                              for k in range(4)])
  b.to_netcdf(os.path.join(d, "b.nc"), format=fmt_b, engine="netcdf4",
              encoding=enc("days since 2004-01-02", "float64", zlib, cal_b), **kw)


write("nc4", zlib=True)
write("contig")
write("classic", fmt_a="NETCDF3_CLASSIC", fmt_b="NETCDF3_64BIT_DATA",
      unlimited=True)
write("classic_fixed", fmt_a="NETCDF3_64BIT_OFFSET", fmt_b="NETCDF3_CLASSIC")
write("bad", lat_b=LAT + 1)
write("noleap", cal_b="noleap")
