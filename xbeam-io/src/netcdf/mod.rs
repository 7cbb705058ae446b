//! NetCDF input: classic (CDF-1, CDF-2, CDF-5) and NetCDF-4 files read by
//! the pure-Rust `netcdf-reader` crate, decoded by the same CF code as
//! Zarr ([`crate::cf`]).
//!
//! - [`expand_pattern`]: the files a glob, a directory or a list names.
//! - [`open_netcdf`]: many files as one [`NetcdfSource`], concatenated
//!   along a dimension and merged across variables, each file decoded with
//!   its own encoding and the store's encoding chosen to hold every value
//!   exactly.
//!
//! `file` holds what is one file's (header to JSON attributes, raw reads of
//! a region); `source` the many-file dataset and its reconciliation.

mod file;
mod pattern;
mod source;

pub use pattern::expand_pattern;
pub use source::{open_netcdf, NetcdfSource};
