#!/usr/bin/env python
"""Re-writes every NetCDF file of SRC into DST with zlib (level 1) and
shuffle, chunked (24, lat, lon) along (time, latitude, longitude) as
ERA5-like files usually are: the compressed variant of `cargo xtask bench
ingest`.

  python nc_zlib.py SRC DST
"""
import glob
import os
import sys

import xarray as xr


def main():
  src, dst = sys.argv[1], sys.argv[2]
  os.makedirs(dst, exist_ok=True)
  for path in sorted(glob.glob(os.path.join(src, "*.nc"))):
    with xr.open_dataset(path) as ds:
      ds.load()
      enc = {}
      for name, var in ds.data_vars.items():
        chunks = tuple(24 if d == "time" else n for d, n in zip(var.dims, var.shape))
        enc[name] = {"zlib": True, "complevel": 1, "shuffle": True,
                     "chunksizes": chunks}
      enc["time"] = dict(ds.time.encoding)
      enc["time"] = {k: v for k, v in enc["time"].items()
                     if k in ("units", "calendar", "dtype")}
      ds.to_netcdf(os.path.join(dst, os.path.basename(path)), encoding=enc,
                   format="NETCDF4", engine="netcdf4")


if __name__ == "__main__":
  main()
