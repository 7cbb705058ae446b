//! Integration tests of xbeam-chunk: xarray-beam conformance cases, the data
//! model, serde, `Display` snapshots and property tests.

mod cftime;
mod codec;
mod common;
mod conformance;
mod display;
mod model;
mod normalize;
mod props;
mod wire;
