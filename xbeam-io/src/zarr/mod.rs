//! Zarr v2 and v3 stores: open and read ([`open_zarr`]), set up and write
//! ([`setup_zarr`], [`ZarrSink`]), check ([`verify`]) and append
//! ([`append_dim`]).

mod append;
mod array;
mod cf;
mod meta;
mod open;
mod setup;
mod sink;
mod verify;

use xbeam_chunk::DType;

pub use append::append_dim;
pub use meta::{ArrayInfo, ZarrFormat};
pub use open::{open_zarr, ZarrSource};
pub use setup::{setup_zarr, SetupOptions};
pub use sink::ZarrSink;
pub use verify::{verify, MissingChunk};

/// The dtype NumPy (and so xarray) shows for decoded values of `dtype`:
/// `float32`, `int16`, `datetime64[ns]` for NumPy's calendars, `object` for
/// other calendars and for strings.
///
/// ```
/// use xbeam_chunk::calendar::{Calendar, TimeUnit};
/// use xbeam_chunk::DType;
/// assert_eq!(xbeam_io::numpy_dtype(DType::DateTime(TimeUnit::Hours, Calendar::Standard)), "datetime64[ns]");
/// assert_eq!(xbeam_io::numpy_dtype(DType::DateTime(TimeUnit::Days, Calendar::NoLeap)), "object");
/// ```
pub fn numpy_dtype(dtype: DType) -> String {
    match dtype {
        DType::DateTime(_, c) if c.is_numpy_compatible() => "datetime64[ns]".into(),
        DType::DateTime(..) | DType::String => "object".into(),
        DType::TimeDelta(_) => "timedelta64[ns]".into(),
        other => other.name(),
    }
}
