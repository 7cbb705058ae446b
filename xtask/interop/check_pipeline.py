#!/usr/bin/env python
"""Check an xbeam pipeline's output against the same computation in xarray.

  python check_pipeline.py FIXTURE.zarr OUT.zarr [FIXTURE.zarr OUT.zarr ...]

OUT.zarr was written by `interop_pipeline FIXTURE.zarr OUT.zarr` (the xbeam
example): DatasetToChunks -> t32 - 273.15 with units 'degC' -> ChunksToZarr.
Here xarray opens the fixture, does the same conversion, opens OUT.zarr with
default options (warnings are errors) and asserts the two are identical.
"""
import sys
import warnings

import numpy as np
import xarray as xr


def expected(fixture):
  ds = xr.open_zarr(fixture, chunks=None).load()
  t = ds["t32"]
  celsius = (t - 273.15).assign_attrs({**t.attrs, "units": "degC"})
  return ds.assign(t32=celsius)


def check(fixture, out):
  want = expected(fixture)
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    got = xr.open_zarr(out).load()
  xr.testing.assert_identical(want, got)
  if got["t32"].dtype != np.float32:
    raise AssertionError(f"{out}: t32 is {got['t32'].dtype}, expected float32")
  if not np.isnan(got["t32"].values).any():
    raise AssertionError(f"{out}: the fixture's NaN values were lost")
  print(f"pipeline output {out} is identical to xarray's conversion of {fixture}")


def main():
  args = sys.argv[1:]
  if not args or len(args) % 2:
    sys.exit(__doc__)
  for fixture, out in zip(args[::2], args[1::2]):
    check(fixture, out)


if __name__ == "__main__":
  main()
