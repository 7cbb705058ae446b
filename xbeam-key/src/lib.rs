//! Chunk keys and chunk-grid arithmetic for xbeam.
//!
//! A pipeline over a large dataset moves `(Key, chunk)` pairs. The [`Key`]
//! says where the chunk sits in the full dataset (element offsets per
//! dimension) and which variables it holds; a [`ChunkGrid`] says which chunks
//! exist. Everything here is pure arithmetic, with no arrays and no IO.
//!
//! ```
//! use xbeam_key::{ChunkGrid, ChunkSpec, Key};
//!
//! // 10 time steps in chunks of 4 (the last is 2), the whole of `lat` at once.
//! let grid = ChunkGrid::new([("time", 10), ("lat", 3)], [("time", ChunkSpec::Size(4))])?;
//! let keys: Vec<Key> = grid.keys().collect();
//! assert_eq!(keys.len(), 3);
//! assert_eq!(keys[2].to_string(), "Key(offsets={'time': 8, 'lat': 0})");
//! assert_eq!(grid.chunk_size("time", 8)?, 2);
//!
//! // Re-splitting a chunk cuts at absolute multiples of the new size.
//! assert_eq!(ChunkSpec::Size(3).split_bounds(4, 8), vec![(4, 6), (6, 8)]);
//! # Ok::<(), xbeam_key::KeyError>(())
//! ```

mod error;
mod grid;
mod key;
pub mod repr;
mod spec;

pub use error::KeyError;
pub use grid::{
    chunk_offsets, offset_to_index, offsets_to_slices, row_major_strides, unravel, ChunkGrid,
    ChunkSpec, MAX_CHUNKS_PER_DIM,
};
pub use key::{Key, Offsets, VarSet};
pub use spec::{parse_bytes, to_human_size, to_human_size_up, ChunkRequest, ChunksRequest};
