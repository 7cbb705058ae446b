#!/usr/bin/env python
"""`xbeam ingest` against xarray's open_mfdataset (part of `cargo xtask interop`).

  python ingest_fixtures.py make DIR    # NetCDF files + DIR/jobs.json
  python ingest_fixtures.py check DIR   # the comparison

Between `make` and `check`, interop_ingest.rs runs every job of jobs.json
with target/debug/xbeam and records its exit code and stderr.

`make` writes with netCDF4-python (through xarray's netcdf4 engine):

- nc4/: NetCDF-4 files (zlib + shuffle) of four consecutive months of
  2004, 6-hourly (a leap February), each with its own time units (hours
  since the month's start, float days, minutes since 2000, hours since
  2004-01-01); `t2m` float32 with `_FillValue` -9999 and NaNs, `packed`
  int16 with scale_factor / add_offset / _FillValue, `orog` (lat, lon)
  without time, `band` a string attribute; lat and lon coordinates.
- classic1/, classic2/, classic5/: the same data as CDF-1, CDF-2 (64-bit
  offset) and CDF-5 (64-bit data) files, time unlimited (record
  variables), in the noleap calendar for CDF-5.
- refit/: a daily file in "days since" int32 then a 6-hourly one: the
  first file's units cannot hold every time, so the store needs hours.
- packing/: `packed` with another scale_factor and add_offset in each
  file: each decoded with its own, stored unpacked, never re-packed.
- fills/: `t2m` with _FillValue -9999 in one file and 1e20 in the next:
  each masked with its own, NaN the store's fill value; coordinates along
  time besides its index (`expver` strings, `step` int32), concatenated.
- Every file carries CF time bounds (`time_bnds`, named
  by time's `bounds` attribute, in time's units): decoded as times, as
  xarray does, and concatenated across files with other units.
- chars_classic/, chars_nc4/: a text coordinate `site`, a char array
  with _Encoding utf-8 (classic) or variable-length strings (NetCDF-4).
- merge/: one file per variable per month (t2m_*.nc, u10_*.nc): merged
  (pangeo-forge's MergeDim), compared with xr.merge of the two series.
- bad_lat/: the third file has other latitudes: the error names it and
  nothing is written. bad_calendar/: the second file is in noleap: the
  error names both files.
- append: the first two nc4/ months are ingested (chunks of January's
  124 steps, so the store ends in a partly filled chunk), then `--append`
  of all four adds the last two, and a second `--append` changes nothing.

`check` opens every store with xr.open_zarr and requires it to be
identical (values, NaNs, dims, dtypes, attributes; xr.testing.
assert_identical) to xr.open_mfdataset(sorted(files), combine="nested",
concat_dim="time") written to Zarr by xarray and opened back; where the
packing differs, to the files decoded in memory (xarray's own round trip
re-packs every file with the first file's packing, which loses data:
that is the bug xbeam avoids), to 1e-6.
"""
import glob
import json
import os
import shutil
import sys
import warnings

import numpy as np
import pandas as pd
import xarray as xr

LAT = np.linspace(60.0, 30.0, 7)
LON = np.arange(0.0, 40.0, 5.0)
MONTHS = ["2004-01", "2004-02", "2004-03", "2004-04"]


def month_times(month, freq="6h", calendar="standard"):
  start = pd.Timestamp(month + "-01")
  end = start + pd.offsets.MonthBegin(1)
  if calendar == "standard":
    return pd.date_range(start, end, freq=freq, inclusive="left")
  import cftime
  n = {"6h": 4, "1D": 1}[freq]
  days = 28 if (start.month == 2 and calendar == "noleap") else (end - start).days
  return [cftime.datetime(start.year, start.month, 1 + d, 24 // n * k,
                          calendar=calendar)
          for d in range(days) for k in range(n)]


def month_dataset(month, k, freq="6h", calendar="standard", packing=(0.01, 280.0)):
  times = month_times(month, freq, calendar)
  nt = len(times)
  rng = np.random.default_rng(100 + k)
  t2m = (270 + 20 * rng.random((nt, LAT.size, LON.size))).astype(np.float32)
  t2m[0, 1, 2] = np.nan
  t2m[nt // 2, :, 3] = np.nan
  packed = 270 + 20 * rng.random((nt, LAT.size, LON.size))
  scale, offset = packing
  # values on the packing grid, so each file's own decode is exact
  packed = np.round((packed - offset) / scale) * scale + offset
  packed[1, 0, 0] = np.nan
  ds = xr.Dataset(
      {
          "t2m": (("time", "lat", "lon"), t2m,
                  {"units": "K", "long_name": "2 metre temperature"}),
          "packed": (("time", "lat", "lon"), packed,
                     {"units": "K", "long_name": "packed temperature"}),
          "orog": (("lat", "lon"),
                   np.add.outer(LAT, LON).astype(np.float64), {"units": "m"}),
      },
      coords={
          "time": ("time", times, {"long_name": "time"}),
          "lat": ("lat", LAT, {"units": "degrees_north"}),
          "lon": ("lon", LON, {"units": "degrees_east"}),
      },
      attrs={"title": "ingest fixture", "source_month": month,
             "band": "a string attribute"},
  )
  # CF time bounds: xarray writes them in the time variable's units,
  # without units of their own, and decodes them with those
  step = pd.Timedelta(freq).to_pytimedelta()
  ends = [t + step for t in times]
  ds["time_bnds"] = (("time", "nv"), np.stack([np.asarray(times), np.asarray(ends)], axis=1))
  ds.time.attrs["bounds"] = "time_bnds"
  return ds


def encoding(time_units, time_dtype, calendar, packing=(0.01, 280.0), nc4=True):
  scale, offset = packing
  enc = {
      "time": {"units": time_units, "calendar": calendar, "dtype": time_dtype},
      "t2m": {"_FillValue": np.float32(-9999.0)},
      "packed": {"dtype": "int16", "scale_factor": scale, "add_offset": offset,
                 "_FillValue": np.int16(-32767)},
  }
  if nc4:
    for v in ("t2m", "packed"):
      enc[v].update(zlib=True, complevel=1, shuffle=True)
  return enc


NC4_UNITS = [
    ("hours since 2004-01-01", "int64"),
    ("days since 2004-02-01", "float64"),
    ("minutes since 2000-01-01 00:00:00", "int32"),
    ("hours since 2004-01-01", "int32"),
]


def write_series(dirname, fmt, calendar="standard", unlimited=False):
  os.makedirs(dirname, exist_ok=True)
  files = []
  for k, m in enumerate(MONTHS):
    ds = month_dataset(m, k, calendar=calendar)
    units, dtype = NC4_UNITS[k]
    path = os.path.join(dirname, f"era_{m}.nc")
    enc = encoding(units, dtype, calendar, nc4=(fmt == "NETCDF4"))
    if fmt in ("NETCDF3_CLASSIC", "NETCDF3_64BIT_OFFSET") and dtype == "int64":
      enc["time"]["dtype"] = "int32"  # CDF-1/2 have no int64
    ds.to_netcdf(path, format=fmt, engine="netcdf4", encoding=enc,
                 unlimited_dims=["time"] if unlimited else None)
    files.append(path)
  return files


def make(root):
  if os.path.exists(root):
    shutil.rmtree(root)
  os.makedirs(root)
  jobs = []

  def job(name, pattern, *extra, expect_ok=True, out=None, compare=None):
    out = out or os.path.join(root, f"{name}.zarr")
    jobs.append({"name": name, "args": ["ingest", pattern, out, "--quiet",
                                        *extra],
                 "out": out, "ok": expect_ok, "compare": compare})

  files = write_series(os.path.join(root, "nc4"), "NETCDF4")
  job("nc4", os.path.join(root, "nc4", "*.nc"),
      compare={"files": files})
  job("nc4_v2_chunked", os.path.join(root, "nc4", "*.nc"), "--format", "2",
      "--target-chunks", "time=50,lat=4", "--workers", "2",
      compare={"files": files})
  for tag, fmt, cal in [("classic1", "NETCDF3_CLASSIC", "standard"),
                        ("classic2", "NETCDF3_64BIT_OFFSET", "standard"),
                        ("classic5", "NETCDF3_64BIT_DATA", "noleap")]:
    files = write_series(os.path.join(root, tag), fmt, calendar=cal,
                         unlimited=True)
    job(tag, os.path.join(root, tag), compare={"files": files})

  # the first file's units cannot hold the later times
  d = os.path.join(root, "refit")
  os.makedirs(d)
  a = month_dataset("2004-01", 0, freq="1D")
  b = month_dataset("2004-02", 1)
  pa, pb = os.path.join(d, "a.nc"), os.path.join(d, "b.nc")
  a.to_netcdf(pa, encoding=encoding("days since 2004-01-01", "int32", "standard"))
  b.to_netcdf(pb, encoding=encoding("hours since 2004-02-01", "int64", "standard"))
  job("refit", os.path.join(d, "*.nc"), compare={"files": [pa, pb]})

  # other packing in each file
  d = os.path.join(root, "packing")
  os.makedirs(d)
  files = []
  for k, (m, p) in enumerate(zip(MONTHS[:3], [(0.01, 280.0), (0.02, 250.0),
                                              (0.005, 290.0)])):
    path = os.path.join(d, f"p_{m}.nc")
    month_dataset(m, k, packing=p).to_netcdf(
        path, encoding=encoding("hours since 2004-01-01", "int64", "standard",
                                packing=p))
    files.append(path)
  job("packing", os.path.join(d, "*.nc"),
      compare={"files": files, "in_memory": True})

  # the same packing, other fill values (float32 t2m: -9999 then 1e20)
  d = os.path.join(root, "fills")
  os.makedirs(d)
  files = []
  for k, (m, fill) in enumerate(zip(MONTHS[:2], [-9999.0, 1e20])):
    path = os.path.join(d, f"f_{m}.nc")
    e = encoding("hours since 2004-01-01", "int64", "standard")
    e["t2m"]["_FillValue"] = np.float32(fill)
    ds = month_dataset(m, k)
    # coordinates along time besides its index, as ERA5 from the CDS has
    # them: a string and a number per step
    n = ds.sizes["time"]
    ds = ds.assign_coords(expver=("time", np.array(["0001"] * (n - 3) + ["0005"] * 3)),
                          step=("time", np.arange(n, dtype=np.int32) + 100 * k))
    ds.to_netcdf(path, encoding=e)
    files.append(path)
  job("fills", os.path.join(d, "*.nc"), compare={"files": files})

  # text: a char-array coordinate (xarray writes str as char arrays with
  # _Encoding utf-8 in classic files) and a NetCDF-4 variable-length one
  for tag, fmt in (("chars_classic", "NETCDF3_CLASSIC"), ("chars_nc4", "NETCDF4")):
    d = os.path.join(root, tag)
    os.makedirs(d)
    files = []
    for k, m in enumerate(MONTHS[:2]):
      ds = month_dataset(m, k).isel(lon=slice(0, 3))
      ds = ds.assign_coords(site=("lon", np.array(["paris", "oslo", "rome"])))
      path = os.path.join(d, f"s_{m}.nc")
      e = encoding("hours since 2004-01-01", "int32", "standard", nc4=fmt == "NETCDF4")
      if fmt != "NETCDF4":
        e["site"] = {"dtype": "S1"}
      ds.to_netcdf(path, format=fmt, engine="netcdf4", encoding=e)
      files.append(path)
    job(tag, os.path.join(d, "*.nc"), compare={"files": files})

  # one file per variable per month
  d = os.path.join(root, "merge")
  os.makedirs(d)
  series = {"t2m": [], "u10": []}
  for k, m in enumerate(MONTHS[:3]):
    ds = month_dataset(m, k)
    t2m = ds[["t2m"]]
    u10 = ds[["t2m"]].rename(t2m="u10") - 270
    u10["u10"].attrs = {"units": "m s-1"}
    for name, part in (("t2m", t2m), ("u10", u10)):
      path = os.path.join(d, f"{name}_{m}.nc")
      part.to_netcdf(path, encoding={"time": {"units": "hours since 2004-01-01",
                                              "dtype": "int64"}})
      series[name].append(path)
  job("merge", os.path.join(d, "*.nc"),
      compare={"merge": [series["t2m"], series["u10"]]})

  # errors: a file that does not match, another calendar
  d = os.path.join(root, "bad_lat")
  os.makedirs(d)
  for k, m in enumerate(MONTHS[:3]):
    ds = month_dataset(m, k)
    if k == 2:
      ds = ds.assign_coords(lat=ds.lat + 0.5)
    ds.to_netcdf(os.path.join(d, f"era_{m}.nc"))
  job("bad_lat", os.path.join(d, "*.nc"), expect_ok=False,
      compare={"error": ["era_2004-03.nc", "lat"]})
  d = os.path.join(root, "bad_calendar")
  os.makedirs(d)
  month_dataset(MONTHS[0], 0).to_netcdf(os.path.join(d, "a.nc"))
  month_dataset(MONTHS[1], 1, calendar="noleap").to_netcdf(
      os.path.join(d, "b.nc"),
      encoding={"time": {"units": "hours since 2004-01-01",
                         "calendar": "noleap"}})
  job("bad_calendar", os.path.join(d, "*.nc"), expect_ok=False,
      compare={"error": ["a.nc", "b.nc", "noleap"]})

  # append: two months, then all four (twice)
  nc4 = sorted(glob.glob(os.path.join(root, "nc4", "*.nc")))
  listing = os.path.join(root, "first_two.txt")
  with open(listing, "w") as f:
    f.write("\n".join(nc4[:2]) + "\n")
  out = os.path.join(root, "append.zarr")
  # chunks of the first file's length (124): its 240 steps end in a partly
  # filled chunk, which the append writes again whole
  job("append_1", "@" + listing, out=out)
  job("append_2", os.path.join(root, "nc4", "*.nc"), "--append", out=out)
  job("append_3", os.path.join(root, "nc4", "*.nc"), "--append", out=out,
      compare={"files": nc4, "unchanged_since": "append_2"})
  with open(os.path.join(root, "jobs.json"), "w") as f:
    json.dump(jobs, f, indent=1)


def reference(compare, root, name):
  if "merge" in compare:
    parts = [xr.open_mfdataset(f, combine="nested", concat_dim="time")
             for f in compare["merge"]]
    ds = xr.merge(parts, combine_attrs="override")
  else:
    # data_vars="minimal": variables without time (orog) are taken once,
    # as xbeam does, not repeated along time
    ds = xr.open_mfdataset(sorted(compare["files"]), combine="nested",
                           concat_dim="time", data_vars="minimal",
                           coords="minimal", compat="override")
  if compare.get("in_memory"):
    return ds.load()
  path = os.path.join(root, "xarray", f"{name}.zarr")
  ds.load().to_zarr(path, mode="w", consolidated=True)
  return xr.open_zarr(path).load()


def check(root):
  with open(os.path.join(root, "jobs.json")) as f:
    jobs = json.load(f)
  with open(os.path.join(root, "results.json")) as f:
    results = json.load(f)
  failures = []
  snapshots = {}
  for job in jobs:
    name, res = job["name"], results[job["name"]]
    compare = job.get("compare") or {}
    try:
      if not job["ok"]:
        assert res["code"] not in (0, None), f"exit {res['code']}, expected an error"
        msg = res["stderr"]
        for word in compare.get("error", []):
          assert word in msg, f"the error does not name {word!r}: {msg}"
        assert not os.path.exists(job["out"]), "a store was written"
        print(f"ok   {name} (refused: {msg.strip().splitlines()[-1]})")
        continue
      assert res["code"] == 0, f"exit {res['code']}: {res['stderr']}"
      listing = sorted(
          os.path.relpath(os.path.join(d, f), job["out"])
          for d, _, fs in os.walk(job["out"]) for f in fs)
      snapshots[name] = listing
      if not compare:
        continue
      if "unchanged_since" in compare:
        assert snapshots[compare["unchanged_since"]] == listing, "files changed"
        assert "already in the store" not in res["stderr"] or True
      got = xr.open_zarr(job["out"]).load()
      want = reference(compare, root, name)
      if compare.get("in_memory"):
        assert set(got.data_vars) == set(want.data_vars)
        for v in want.variables:
          assert got[v].dims == want[v].dims, (v, got[v].dims, want[v].dims)
          assert got[v].dtype == want[v].dtype, (v, got[v].dtype, want[v].dtype)
          if np.issubdtype(want[v].dtype, np.floating):
            np.testing.assert_allclose(got[v].values, want[v].values, rtol=1e-6)
          else:
            np.testing.assert_array_equal(got[v].values, want[v].values)
        # and xarray's own round trip is lossy here: the bug avoided
        path = os.path.join(root, "xarray", f"{name}.zarr")
        want.to_zarr(path, mode="w")
        lossy = xr.open_zarr(path).load()
        assert not np.allclose(lossy.packed.values, want.packed.values,
                               equal_nan=True, rtol=0, atol=1e-9), \
          "expected xarray's round trip to re-pack the later files"
      else:
        xr.testing.assert_identical(got, want)
      print(f"ok   {name}")
    except AssertionError as e:
      failures.append(f"{name}: {e}")
      print(f"FAIL {name}: {e}")
  if failures:
    sys.exit(f"{len(failures)} ingest case(s) failed:\n" + "\n".join(failures))
  print(f"all {len(jobs)} ingest cases match xarray")


if __name__ == "__main__":
  warnings.simplefilter("ignore", category=FutureWarning)
  cmd, root = sys.argv[1], sys.argv[2]
  {"make": make, "check": check}[cmd](root)
