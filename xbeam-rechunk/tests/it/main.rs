//! Integration tests of xbeam-rechunk: one test binary, one module per
//! concern.

mod irregular;
mod properties;
mod report;
