#!/usr/bin/env python
"""xarray + dask (2 threads) reading and writing the same Zarr store that the
xbeam `zarr_1gb` criterion benchmarks use: the baseline for `cargo xtask bench`.

  python xarray_zarr_io.py STORE [--repeat 3]

Prints one JSON line: best-of-N seconds for read (open_zarr + load) and write
(to_zarr of the loaded dataset, same chunks and codec) and the bytes.
"""
import argparse
import json
import shutil
import time

import dask
import xarray as xr


def main():
  p = argparse.ArgumentParser()
  p.add_argument("store")
  p.add_argument("--repeat", type=int, default=3)
  a = p.parse_args()
  dask.config.set(scheduler="threads", num_workers=2)
  best_read = best_write = float("inf")
  out = a.store.rstrip("/") + ".xarray-write.zarr"
  for _ in range(a.repeat):
    t0 = time.perf_counter()
    ds = xr.open_zarr(a.store).load()
    best_read = min(best_read, time.perf_counter() - t0)
  nbytes = int(sum(ds[v].nbytes for v in ds.data_vars))
  src = xr.open_zarr(a.store)
  for _ in range(a.repeat):
    shutil.rmtree(out, ignore_errors=True)
    chunked = ds.chunk({d: c[0] for d, c in src.chunks.items()})
    enc = {v: {"compressors": src[v].encoding.get("compressors")} for v in ds.data_vars}
    t0 = time.perf_counter()
    chunked.to_zarr(out, mode="w", encoding=enc,
                    zarr_format=src.encoding.get("zarr_format", 2) if hasattr(src, "encoding") else 2)
    best_write = min(best_write, time.perf_counter() - t0)
  shutil.rmtree(out, ignore_errors=True)
  print(json.dumps({"read_s": best_read, "write_s": best_write, "bytes": nbytes}))


if __name__ == "__main__":
  main()
