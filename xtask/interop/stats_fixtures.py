#!/usr/bin/env python
"""`xbeam climatology` and `xbeam stats` against xarray (and xarray-beam).

  python stats_fixtures.py make DIR    # source stores + DIR/jobs.json
  python stats_fixtures.py check DIR   # the comparison

Between `make` and `check`, `cargo xtask interop` (interop_stats.rs) runs
every xbeam command that jobs.json lists.

`make` writes, with xarray, one Zarr v2 store per calendar (standard,
noleap, 360_day), and two of several years for the window over many
years (see source_years: 4 years, and 6 years whose every day is gathered
into sums before the window starts): 3-hourly time over 14 months from 2003-11-01 (2004 is
a leap year in the standard calendar), lat 9, lon 7, chunked time=40 (no
chunk divides a month or a day), with NaNs:

  t2m     (time, lat, lon) float32
  packed  (lon, time, lat) int16 on disk (scale_factor, add_offset,
                           _FillValue): statistics of the decoded values
  orog    (lat, lon)       float64, no time: kept unchanged, as xarray
  gmean   (time,)          float64, a series
  band    (time,)          a string coordinate ("a", "b", "c" in turn)

`check` opens each output in xarray (warnings are errors) and compares it
with xarray's own computation, to rtol 1e-6 in float64 terms, NaNs where
xarray has them, same dims (and order), same output dtypes and group
coordinates:

- ds.groupby(<groupers>).<stat>() (transposed to xbeam's order: group
  dims first, then the others in source order) for month × hour, season, dayofyear,
  year × month (mean, std with ddof 0 and 1, var, min, max, sum, count);
- the CF climatology bounds of the month × hour mean;
- ds.groupby("band") (a 1-D coordinate's values) and, in the standard
  calendar, the ISO week (ds.time.dt.isocalendar().week);
- ds.resample(time=...).<stat>() for 1D, 6h and 1MS;
- ds.rolling(time=8).<stat>() and ds.rolling(time=6, center=True,
  min_periods=3).mean() (chunks read with halos; NaN edges as xarray);
- exact quantiles: ds.groupby("time.month").quantile([.1, .5, .9]) and
  ds.quantile(.5, dim=["time", "lat"]) beside a mean;
- ds.<stat>(dim=[...]) and ds.weighted(cos(lat)).<stat>(dim=[...]);
- `--window 61` (WeatherBench 2's climatology) against a re-implementation
  of weatherbench2.utils.compute_rolling_stat in xarray: per hour, the
  years stacked by day of year, day 366 of common years filled from day
  365, the day axis padded by wrapping, rolling(dayofyear=61,
  center=True).construct("window"), weighted by the triangular weights
  over (window, year), mean and std, and the weighted quantiles
  (window.weighted(weights).quantile(q, dim=("window", "year")), as
  WeatherBench 2's SEEPS climatology takes them);
- on the standard store, the month mean also equals xarray-beam's
  Mean.PerKey (split into time steps, rekeyed by month, as
  ../shared/bench/xbeam_climatology.py).
"""
import json
import os
import sys
import warnings

import numpy as np
import xarray as xr

CALENDARS = ["standard", "noleap", "360_day"]

# (name, command, flags, how xarray computes it)
JOBS = [
    ("month_mean", "climatology", ["--groupby", "time.month"],
     {"groupby": ["time.month"], "stats": ["mean"]}),
    ("month_hour_mean", "climatology", ["--groupby", "time.month,time.hour"],
     {"groupby": ["time.month", "time.hour"], "stats": ["mean"]}),
    ("season_stats", "climatology",
     ["--groupby", "time.season", "--stat", "mean,std,min,max,count,sum"],
     {"groupby": ["time.season"],
      "stats": ["mean", "std", "min", "max", "count", "sum"]}),
    ("doy_var_ddof1", "climatology",
     ["--groupby", "time.dayofyear", "--stat", "var,std", "--ddof", "1"],
     {"groupby": ["time.dayofyear"], "stats": ["var", "std"], "ddof": 1}),
    ("year_month_max", "climatology",
     ["--groupby", "time.year,time.month", "--stat", "max,count"],
     {"groupby": ["time.year", "time.month"], "stats": ["max", "count"]}),
    ("time_mean_std", "stats", ["--over", "time", "--stat", "mean,std"],
     {"over": ["time"], "stats": ["mean", "std"]}),
    ("area_mean_weighted", "stats",
     ["--over", "lat,lon", "--weights", "lat=cos", "--stat", "mean,std,sum"],
     {"over": ["lat", "lon"], "weights": "lat", "stats": ["mean", "std", "sum"]}),
    ("all_dims_weighted", "stats",
     ["--over", "time,lat", "--weights", "lat=cos"],
     {"over": ["time", "lat"], "weights": "lat", "stats": ["mean"]}),
    ("band_mean_std", "climatology", ["--groupby", "band", "--stat", "mean,std"],
     {"groupby": ["band"], "stats": ["mean", "std"]}),
    ("week_mean", "climatology", ["--groupby", "time.week"],
     {"groupby": ["time.week"], "stats": ["mean"], "calendars": ["standard"]}),
    ("daily", "resample", ["--time", "1D", "--stat", "mean,max,count"],
     {"resample": "1D", "stats": ["mean", "max", "count"]}),
    ("six_hourly", "resample", ["--time", "6h", "--stat", "sum,min"],
     {"resample": "6h", "stats": ["sum", "min"]}),
    ("monthly", "resample", ["--time", "1MS", "--stat", "mean,std"],
     {"resample": "1MS", "stats": ["mean", "std"]}),
    ("month_quantiles", "climatology",
     ["--groupby", "time.month", "--quantiles", "0.1,0.5,0.9"],
     {"groupby": ["time.month"], "stats": [], "quantiles": [0.1, 0.5, 0.9]}),
    ("median_and_mean", "stats", ["--over", "time,lat", "--stat", "mean", "--quantiles", "0.5"],
     {"over": ["time", "lat"], "stats": ["mean"], "quantiles": [0.5]}),
    ("rolling_8", "rolling", ["--window", "8", "--stat", "mean,std,min,max,sum"],
     {"rolling": {"time": 8}, "stats": ["mean", "std", "min", "max", "sum"]}),
    ("rolling_6_centred", "rolling",
     ["--window", "6", "--center", "--min-periods", "3"],
     {"rolling": {"time": 6, "center": True, "min_periods": 3}, "stats": ["mean"]}),
    ("wb2_window", "climatology",
     ["--groupby", "time.hour,time.dayofyear", "--window", "61", "--stat", "mean,std"],
     {"window": 61, "stats": ["mean", "std"]}),
    # over 4 years and 4 months: days of many steps are gathered into sums
    ("wb2_window_years", "climatology",
     ["--groupby", "time.hour,time.dayofyear", "--window", "61", "--stat", "mean,std"],
     {"window": 61, "stats": ["mean", "std"], "source": "years"}),
    # over 6 years and 4 months: every day is gathered into its sums, each
    # chunk read once in storage order, before the window starts
    ("wb2_window_decades", "climatology",
     ["--groupby", "time.hour,time.dayofyear", "--window", "61", "--stat", "mean,std"],
     {"window": 61, "stats": ["mean", "std"], "source": "decades"}),
    ("wb2_window_quantiles", "climatology",
     ["--groupby", "time.hour,time.dayofyear", "--window", "61", "--quantiles", "0.1,0.5,0.9"],
     # (xarray's weighted quantile loops in Python: one calendar here,
     # all three over years below)
     {"window": 61, "stats": [], "quantiles": [0.1, 0.5, 0.9], "calendars": ["standard"]}),
    ("wb2_window_years_quantiles", "climatology",
     ["--groupby", "time.hour,time.dayofyear", "--window", "31", "--quantiles", "0.05,0.95"],
     {"window": 31, "stats": [], "quantiles": [0.05, 0.95], "source": "years"}),
]


def source(calendar):
  times = xr.date_range("2003-11-01", periods=8 * 427, freq="3h",
                        calendar=calendar, use_cftime=calendar != "standard")
  nt, nlat, nlon = len(times), 9, 7
  rng = np.random.default_rng(7)
  t2m = (280 + 10 * rng.standard_normal((nt, nlat, nlon))).astype("float32")
  t2m[rng.random(t2m.shape) < 0.03] = np.nan
  t2m[:, 0, 0] = np.nan  # an all-NaN column
  packed = (5 + rng.standard_normal((nlon, nt, nlat))).astype("float64")
  packed[rng.random(packed.shape) < 0.05] = np.nan
  lat = np.linspace(80, -80, nlat)
  ds = xr.Dataset(
      {
          "t2m": (("time", "lat", "lon"), t2m, {"units": "K", "long_name": "2 m temperature"}),
          "packed": (("lon", "time", "lat"), packed, {"units": "m s-1"}),
          "orog": (("lat", "lon"), rng.random((nlat, nlon)) * 1000.0),
          "gmean": (("time",), rng.standard_normal(nt)),
      },
      coords={"time": times, "lat": lat, "lon": np.arange(nlon) * 50.0,
              "band": ("time", np.array(["a", "b", "c"])[np.arange(nt) % 3])},
      attrs={"title": "stats interop"},
  )
  ds["packed"].encoding = {"dtype": "int16", "scale_factor": 0.001,
                           "add_offset": 5.0, "_FillValue": -32768}
  return ds.chunk({"time": 40})


def source_years(calendar, end="2008"):
  """6-hourly from 2003-11-01 to `end`-02-28, lat 3, lon 2, chunked
  time=97, with NaNs: t2m float32 (to 2008, an hour of most days of Nov ..
  Feb has 5 steps, of Mar .. Oct 4: xbeam gathers a day into sums when a
  group's steps take more than 16 bytes an element, so the first are
  gathered and the others read step by step; to 2010, every day has 6 or
  more, all gathered before the window starts) and gmean float64
  (gathered)."""
  times = xr.date_range("2003-11-01", f"{end}-02-28T18:00", freq="6h",
                        calendar=calendar, use_cftime=calendar != "standard")
  nt, nlat, nlon = len(times), 3, 2
  rng = np.random.default_rng(11)
  t2m = (280 + 10 * rng.standard_normal((nt, nlat, nlon))).astype("float32")
  t2m[rng.random(t2m.shape) < 0.03] = np.nan
  ds = xr.Dataset(
      {
          "t2m": (("time", "lat", "lon"), t2m, {"units": "K"}),
          "gmean": (("time",), rng.standard_normal(nt)),
      },
      coords={"time": times, "lat": np.linspace(60, -60, nlat), "lon": np.arange(nlon) * 90.0},
      attrs={"title": "stats interop, years"},
  )
  return ds.chunk({"time": 97})


def source_path(d, cal, how):
  """The store a job reads."""
  kind = how.get("source")
  return os.path.join(d, f"{cal}.{kind}.zarr" if kind else f"{cal}.zarr")


def expected(ds, how):
  stats = how["stats"]
  ddof = how.get("ddof", 0)
  out = {}
  if "quantiles" in how:
    q = how["quantiles"]
    with warnings.catch_warnings():  # numpy warns of the all-NaN column
      warnings.simplefilter("ignore", RuntimeWarning)
      if "window" in how:
        r = wb2_window(ds, how["window"], "quantile", q)
      elif "groupby" in how:
        r = ds.groupby(how["groupby"]).quantile(q).compute()
      else:
        r = ds.quantile(q, dim=how["over"]).compute()
    for v in r.data_vars:
      out[v if not stats else f"{v}_quantile"] = r[v]
  for stat in stats:
    kw = {"ddof": ddof} if stat in ("std", "var") else {}
    if "rolling" in how:
      r = getattr(ds.rolling(**how["rolling"]), stat)()
    elif "window" in how:
      r = wb2_window(ds, how["window"], stat)
    elif "resample" in how:
      r = getattr(ds.resample(time=how["resample"]), stat)(**kw)
    elif how.get("groupby") == ["time.week"]:
      r = getattr(ds.groupby(ds.time.dt.isocalendar().week), stat)(**kw)
    elif "groupby" in how:
      r = getattr(ds.groupby(how["groupby"]), stat)(**kw)
    elif "weights" in how:
      # xarray's weighted refuses variables without every dim: left out
      # here (xbeam reduces them over the dims they have)
      has = [v for v in ds.data_vars if set(how["over"]) <= set(ds[v].dims)]
      w = np.cos(np.deg2rad(ds[how["weights"]]))
      r = getattr(ds[has].weighted(w), stat)(dim=how["over"])
    else:
      r = getattr(ds, stat)(dim=how["over"], **kw)
    for v in r.data_vars:
      out[v if len(stats) + ("quantiles" in how) == 1 else f"{v}_{stat}"] = r[v]
  return out


def wb2_window(ds, width, stat, q=None):
  """WeatherBench 2's compute_hourly_stat / compute_rolling_stat on the
  variables with time, with every day of the longest year present on the
  wrapped axis; results at the days present."""
  import cftime
  cal = ds.time.dt.calendar
  def days_in(y):
    return 360 if cal == "360_day" else 366 if cftime.is_leap_year(int(y), cal) else 365
  years = np.unique(ds.time.dt.year.values)
  period = max(days_in(y) for y in years)
  half = width // 2
  weights = np.concatenate([np.linspace(0, 1, half + 1), np.linspace(1, 0, half + 1)[1:]])
  weights = xr.DataArray(weights / weights.mean(), dims=["window"])
  timed = ds[[v for v in ds.data_vars if "time" in ds[v].dims]].drop_vars("band", errors="ignore")
  hours = []
  for hour in np.unique(ds.time.dt.hour.values):
    at = timed.isel(time=(timed.time.dt.hour == hour).values)
    stacked = []
    for y in years:
      one = at.isel(time=(at.time.dt.year == y).values)
      one = one.assign_coords(time=one.time.dt.dayofyear.values).rename(time="dayofyear")
      one = one.reindex(dayofyear=np.arange(1, period + 1))
      if period == 366 and days_in(y) == 365:
        one = one.map(lambda a: xr.where(a.dayofyear == 366, a.sel(dayofyear=365, drop=True),
                                         a).transpose(*a.dims))
      stacked.append(one.drop_vars("dayofyear"))
    stacked = xr.concat(stacked, dim="year")
    padded = stacked.pad(dayofyear=half, mode="wrap")
    window = padded.rolling(dayofyear=width, center=True).construct("window")
    args = () if q is None else (q,)
    r = getattr(window.weighted(weights), stat)(*args, dim=("window", "year"))
    r = r.isel(dayofyear=slice(half, -half)).assign_coords(dayofyear=np.arange(1, period + 1))
    hours.append(r.expand_dims(hour=[hour]))
  r = xr.concat(hours, dim="hour")
  present = set(ds.time.dt.dayofyear.values.tolist())
  if period == 366 and any(days_in(y) == 365 and 365 in
                           ds.time.dt.dayofyear.values[(ds.time.dt.year == y).values]
                           for y in years):
    present.add(366)
  return r.sel(dayofyear=sorted(present))


def make(d):
  os.makedirs(d, exist_ok=True)
  jobs = []
  for cal in CALENDARS:
    source(cal).to_zarr(os.path.join(d, f"{cal}.zarr"), mode="w", zarr_format=2,
                        consolidated=True)
    source_years(cal).to_zarr(os.path.join(d, f"{cal}.years.zarr"), mode="w",
                              zarr_format=2, consolidated=True)
    source_years(cal, "2010").to_zarr(os.path.join(d, f"{cal}.decades.zarr"), mode="w",
                                      zarr_format=2, consolidated=True)
    for name, cmd, flags, how in JOBS:
      if cal not in how.get("calendars", CALENDARS):
        continue
      src = source_path(d, cal, how)
      out = os.path.join(d, f"{cal}.{name}.zarr")
      jobs.append({"args": [cmd, src, out, "--overwrite", "--quiet", *flags]})
  with open(os.path.join(d, "jobs.json"), "w") as f:
    json.dump(jobs, f, indent=1)


def compare(name, got, want, want64, order):
  # the dims are the group dims, then the others in source order (xarray
  # moves the group dims where time was, or to the end without time)
  assert got.dims == order, f"{name}: dims {got.dims} != {order}"
  assert set(got.dims) == set(want.dims), f"{name}: dims {got.dims} vs xarray's {want.dims}"
  assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != {want.dtype}"
  g, w = got.values, want64.transpose(*got.dims).values
  if w.dtype.kind in "fc":
    np.testing.assert_allclose(g.astype("float64"), w.astype("float64"),
                               rtol=1e-6, atol=1e-9, equal_nan=True, err_msg=name)
  else:
    np.testing.assert_array_equal(g, w, err_msg=name)


def beam_month_mean(src, out):
  """xarray-beam's month mean of t2m, written to `out` and opened."""
  import apache_beam as beam
  import xarray_beam as xbeam

  def rekey(key, chunk):
    month = chunk.time.dt.month.item()
    return (key.with_offsets(time=None, month=month - 1),
            chunk.squeeze("time", drop=True).expand_dims(month=[month]))

  ds, chunks = xbeam.open_zarr(src)
  ds = ds[["t2m"]]
  months = np.unique(ds.time.dt.month.values)
  assert list(months) == list(range(1, 13)), months
  template = (xbeam.make_template(ds).isel(time=0, drop=True)
              .expand_dims(month=months))
  with warnings.catch_warnings():  # Beam's own warnings are not ours
    warnings.simplefilter("ignore")
    with beam.Pipeline(runner="DirectRunner") as p:
      _ = (p | xbeam.DatasetToChunks(ds, chunks) | xbeam.SplitChunks({"time": 1})
           | beam.MapTuple(rekey) | xbeam.Mean.PerKey()
           | xbeam.ChunksToZarr(out, template, {"month": 1}, zarr_format=2))
  return xr.open_zarr(out).load()


def check(d):
  warnings.simplefilter("error")
  n = 0
  for cal in CALENDARS:
    sources = {}
    for name, _, _, how in JOBS:
      if cal not in how.get("calendars", CALENDARS):
        continue
      src = source_path(d, cal, how)
      if src not in sources:
        sources[src] = xr.open_zarr(src).load()
      ds = sources[src]
      path = os.path.join(d, f"{cal}.{name}.zarr")
      got = xr.open_zarr(path).load()
      want = expected(ds, how)
      # values from float64 data: xarray sums float32 in float32, xbeam in f64
      ds64 = ds.map(lambda x: x.astype("float64") if x.dtype == "float32" else x)
      # (a windowed quantile is float64 from float32 values alike)
      want64 = want if "window" in how and "quantiles" in how else expected(ds64, how)
      extra = set(got.data_vars) - set(want)
      for v in sorted(extra):
        # variables xarray's weighted drops (no reduced dim): kept unchanged
        assert "weights" in how or "window" in how, f"{cal}.{name}: unexpected {v}"
      for v, w in want.items():
        assert v in got.data_vars, f"{cal}.{name}: missing {v} (has {list(got.data_vars)})"
        outputs = len(how["stats"]) + ("quantiles" in how)
        base = v.rsplit("_", 1)[0] if outputs > 1 else v
        groups = tuple(g.split(".")[-1] for g in how.get("groupby", []))
        groups += ("time",) if "resample" in how else ("hour", "dayofyear") if "window" in how else ()
        reduced = set(how.get("over", [])) | ({"time"} if groups else set())
        quantile = ("quantile",) if "quantile" in w.dims else ()
        order = groups + quantile + tuple(d for d in ds[base].dims if d not in reduced)
        compare(f"{cal}.{name}.{v}", got[v], w, want64[v], order)
        n += 1
      for c in got.coords:
        if c in want[next(iter(want))].coords and c in got.dims:
          np.testing.assert_array_equal(got[c].values, want[next(iter(want))][c].values,
                                        err_msg=f"{cal}.{name} coord {c}")
      assert got.attrs == ds.attrs, f"{cal}.{name}: global attrs"
      if name == "month_hour_mean":
        # CF climatology bounds: each group's first and last time
        b = got["climatology_bounds"]
        assert b.dims == ("month", "hour", "nv"), b.dims
        assert got["month"].attrs["climatology"] == "climatology_bounds"
        t = ds.time.groupby(["time.month", "time.hour"])
        for k, f in enumerate([t.min, t.max]):
          want = f().transpose("month", "hour").values
          assert (b.values[..., k] == want).all(), f"{cal}.{name}: climatology bounds"
      if ("groupby" in how or "window" in how) and "mean" in how["stats"]:
        v = "t2m" if len(how["stats"]) == 1 else "t2m_mean"
        assert "time: mean" in got[v].attrs.get("cell_methods", ""), got[v].attrs
  beam = beam_month_mean(os.path.join(d, "standard.zarr"), os.path.join(d, "beam.zarr"))
  ours = xr.open_zarr(os.path.join(d, "standard.month_mean.zarr")).load()
  np.testing.assert_allclose(ours.t2m.values.astype("float64"), beam.t2m.values,
                             rtol=1e-6, equal_nan=True, err_msg="xarray-beam Mean.PerKey")
  print(f"stats interop: {n} variables equal to xarray's; the month mean equals xarray-beam's")


if __name__ == "__main__":
  {"make": make, "check": check}[sys.argv[1]](sys.argv[2])
