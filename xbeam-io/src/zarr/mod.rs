//! Zarr v2 and v3 stores: open and read ([`open_zarr`]), set up and write
//! ([`setup_zarr`], [`ZarrSink`]), check ([`verify()`]), append
//! ([`append_dim`]) and flush to disk ([`sync_store`]).

mod append;
mod array;
mod bounded;
mod bytes;
mod coding;
mod fill;
mod manifest;
mod meta;
mod open;
mod setup;
mod sink;
mod store;
mod verify;

pub use append::append_dim;
pub use bounded::{read_limits, set_memory_budget};
pub use manifest::{
    is_manifest_file, manifest_status, skipped_on_resume, ManifestStatus, MANIFEST,
};
pub use meta::{ArrayInfo, ZarrFormat};
pub use open::{open_zarr, ZarrSource};
pub use setup::{setup_zarr, zarr_chunk_size, SetupOptions};
pub use sink::ZarrSink;
pub use store::{free_space, partial_of, sync_store, PARTIAL_SUFFIX};
pub use verify::{verify, ChunkProblem, Problem, Verified, LISTED_PROBLEMS, MAX_CHUNKS};
