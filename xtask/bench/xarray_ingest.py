#!/usr/bin/env python
"""The xarray baseline of `cargo xtask bench ingest`: NetCDF files to one
Zarr store as users write it,

    ds = xr.open_mfdataset(sorted(files), combine="nested", concat_dim="time")
    ds.chunk({"time": <first file's length>}).to_zarr(out, zarr_format=3)

on dask's threaded scheduler with 2 threads. (`open_mfdataset` gives one
dask chunk per file; Zarr needs regular chunks, so without the `.chunk`
months of other lengths are refused.) Prints `RESULT {"seconds": ...}`.

  python xarray_ingest.py --input DIR --output OUT.zarr [--threads 2]
"""
import argparse
import glob
import json
import os
import shutil
import time

import dask
import xarray as xr


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--input", required=True)
  p.add_argument("--output", required=True)
  p.add_argument("--threads", type=int, default=2)
  a = p.parse_args()
  if os.path.exists(a.output):
    shutil.rmtree(a.output)
  files = sorted(glob.glob(os.path.join(a.input, "*.nc")))
  start = time.perf_counter()
  with dask.config.set(scheduler="threads", num_workers=a.threads):
    ds = xr.open_mfdataset(files, combine="nested", concat_dim="time",
                           data_vars="minimal", coords="minimal",
                           compat="override")
    first = xr.open_dataset(files[0]).sizes["time"]
    ds.chunk({"time": first}).to_zarr(a.output, zarr_format=3, mode="w")
  seconds = time.perf_counter() - start
  print("RESULT " + json.dumps({"seconds": seconds, "files": len(files)}))


if __name__ == "__main__":
  main()
