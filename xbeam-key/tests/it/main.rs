//! Integration tests of xbeam-key: conformance cases of xarray-beam and
//! property tests of the grid arithmetic.

mod grid;
mod props;
mod spec;
