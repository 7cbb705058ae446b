//! zarrs arrays opened from their metadata: reading a region with its CF
//! decoding ([`Opened`]) and writing one ([`Writer`], [`write_region`]).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::{json, Value};
use xbeam_chunk::{Array, DType, Element};
use zarrs::array::codec::{ShardingCodecOptions, SubchunkWriteOrder};
use zarrs::array::{
    Array as ZArray, ArrayBytes, ArrayMetadata, ArraySubset, CodecOptions, CodecSpecificOptions,
};

use super::bytes::{from_bytes, from_vlen, to_bytes};
use super::fill::base64_encode;
use super::meta::{ArrayInfo, Stored, ZarrFormat};
use crate::cf::coding::Coding;
use crate::IoError;

pub(super) use super::store::Store;

pub(super) fn open_store(path: &Path) -> Result<Arc<Store>, IoError> {
    Store::new(path).map(Arc::new)
}

pub(super) fn zarrs_array(
    store: &Arc<Store>,
    root: &Path,
    info: &ArrayInfo,
) -> Result<ZArray<Store>, IoError> {
    super::bounded::register();
    let path = root.join(&info.name);
    let mut doc = info.meta.clone();
    if doc.get("fill_value").is_none_or(Value::is_null) {
        // zarrs needs a fill value; xarray's v2 arrays often have none
        doc["fill_value"] = match info.stored {
            s if s.is_string() => json!(""),
            Stored::Plain(DType::Bool) => json!(false),
            s if s.is_float() => json!("NaN"),
            _ => json!(0),
        };
    }
    if let Stored::Bytes(n) = info.stored {
        // zarrs has no fixed-width byte strings: the same bytes as raw bits
        match info.format {
            ZarrFormat::V2 => {
                doc["dtype"] = json!(format!("|V{n}"));
                doc["fill_value"] = json!(base64_encode(&vec![0u8; n]));
            }
            ZarrFormat::V3 => {
                doc["data_type"] = json!(format!("r{}", 8 * n));
                doc["fill_value"] = json!(vec![0u8; n]);
            }
        }
    }
    let open = |doc: Value| {
        let metadata = match info.format {
            ZarrFormat::V2 => serde_json::from_value(doc).map(ArrayMetadata::V2),
            ZarrFormat::V3 => serde_json::from_value(doc).map(ArrayMetadata::V3),
        }
        .map_err(|e| IoError::json(path.display(), "invalid array metadata", e))?;
        ZArray::new_with_metadata(store.clone(), &format!("/{}", info.name), metadata)
            .map_err(|e| IoError::zarr(path.display(), "cannot open array", e))
    };
    let v2_blosc = info.format == ZarrFormat::V2
        && doc.pointer("/compressor/id").and_then(Value::as_str) == Some("blosc");
    let mut array = open(doc.clone())?;
    if v2_blosc {
        // zarrs builds a v2 array's blosc codec itself, past the codec
        // registry: named so that the bounded one is found (this document
        // is zarrs' only; the store's metadata are written by xbeam)
        doc["compressor"]["id"] = json!(super::bounded::V2_BLOSC);
        doc["compressor"]["typesize"] = match array.data_type().size() {
            zarrs::metadata::DataTypeSize::Fixed(n) => json!(n),
            zarrs::metadata::DataTypeSize::Variable => Value::Null,
        };
        array = open(doc)?;
    }
    // Inner chunks go into a shard in C order (zarr-python uses Morton
    // order, which zarrs does not offer): zarrs' default appends them as its
    // threads finish, so the same data made different shard files.
    let order = ShardingCodecOptions::default().with_subchunk_write_order(SubchunkWriteOrder::C);
    Ok(array.with_codec_specific_options(&CodecSpecificOptions::default().with_option(order)))
}

pub(super) fn write_options() -> CodecOptions {
    CodecOptions::default().with_store_empty_chunks(true)
}

/// One opened array with its CF coding.
pub(super) struct Opened {
    pub(super) array: ZArray<Store>,
    pub(super) coding: Coding,
    pub(super) info: ArrayInfo,
    /// The store's root directory.
    pub(super) root: std::path::PathBuf,
}

impl Opened {
    /// Reads and decodes `ranges` (one per dimension).
    pub(super) fn read(&self, root: &Path, ranges: &[Range<u64>]) -> Result<Array, IoError> {
        let shape: Vec<usize> = ranges.iter().map(|r| (r.end - r.start) as usize).collect();
        let at = |e: IoError| e.at(root.join(&self.info.name).display());
        let raw = match self.info.stored {
            Stored::Plain(DType::F32) => self.read_slabs::<f32>(ranges, &shape),
            Stored::Plain(DType::F64) => self.read_slabs::<f64>(ranges, &shape),
            Stored::Plain(DType::I8) => self.read_slabs::<i8>(ranges, &shape),
            Stored::Plain(DType::I16) => self.read_slabs::<i16>(ranges, &shape),
            Stored::Plain(DType::I32) => self.read_slabs::<i32>(ranges, &shape),
            Stored::Plain(DType::I64) => self.read_slabs::<i64>(ranges, &shape),
            Stored::Plain(DType::U8) => self.read_slabs::<u8>(ranges, &shape),
            Stored::Plain(DType::U16) => self.read_slabs::<u16>(ranges, &shape),
            Stored::Plain(DType::U32) => self.read_slabs::<u32>(ranges, &shape),
            Stored::Plain(DType::U64) => self.read_slabs::<u64>(ranges, &shape),
            _ => self.read_whole(ranges, &shape),
        }
        .map_err(at)?;
        self.coding.decode(raw).map_err(at)
    }

    fn retrieve(&self, ranges: &[Range<u64>]) -> Result<ArrayBytes<'static>, IoError> {
        let subset = ArraySubset::new_with_ranges(ranges);
        self.array
            .retrieve_array_subset(&subset)
            .map_err(|e| self.explain(&subset, ranges, e))
    }

    /// A failed read said in terms of the chunk that failed: its key, the
    /// bytes it must decode to and the bytes its file holds (found by
    /// reading the region's chunks one by one, on the error path only).
    fn explain(
        &self,
        subset: &ArraySubset,
        ranges: &[Range<u64>],
        e: zarrs::array::ArrayError,
    ) -> IoError {
        let whole = || IoError::zarr("", format!("cannot read {ranges:?}"), e);
        let Ok(Some(chunks)) = self.array.chunks_in_array_subset(subset) else {
            return whole();
        };
        for indices in &chunks.indices() {
            let Err(failed) = self.array.retrieve_chunk::<ArrayBytes<'static>>(&indices) else {
                continue;
            };
            let key = self.array.chunk_key(&indices);
            let elements: u64 = self
                .array
                .chunk_shape(&indices)
                .map_or(0, |s| s.iter().map(|n| n.get()).product());
            let expected = if self.info.stored == Stored::VString {
                format!("{elements} values of variable length once decoded")
            } else {
                let bytes = elements * self.info.stored.itemsize() as u64;
                format!("{bytes} bytes once decoded, {elements} elements")
            };
            let file = self
                .root
                .join(key.as_str())
                .metadata()
                .map_or_else(|_| "no file".to_owned(), |m| format!("{} bytes", m.len()));
            return IoError::zarr(
                "",
                format!(
                    "cannot read chunk {} (expected {expected}; its file holds {file})",
                    key.as_str()
                ),
                failed,
            );
        }
        whole()
    }

    /// Any type, in one piece.
    fn read_whole(&self, ranges: &[Range<u64>], shape: &[usize]) -> Result<Array, IoError> {
        match self.retrieve(ranges)? {
            ArrayBytes::Fixed(b) => from_bytes(&b, self.info.stored, shape),
            ArrayBytes::Variable(v) => {
                let offsets: &[usize] = v.offsets();
                from_vlen(v.bytes(), offsets, shape)
            }
            ArrayBytes::Optional(_) => Err(IoError::Invalid(
                "optional data types are not supported".into(),
            )),
        }
    }

    /// Numbers, decoded one row of chunks (along the first dimension) at a
    /// time in parallel, each copied once into its place in the output:
    /// decoding the whole region into one buffer and converting it would
    /// write all of it to fresh memory twice.
    fn read_slabs<T: Element + bytemuck::Pod>(
        &self,
        ranges: &[Range<u64>],
        shape: &[usize],
    ) -> Result<Array, IoError> {
        let n: usize = shape.iter().product();
        if ranges.is_empty() || n == 0 {
            return self.read_whole(ranges, shape);
        }
        let step = self.info.shards.as_ref().unwrap_or(&self.info.chunks)[0].max(1);
        let mut bounds = Vec::new();
        let mut at = ranges[0].start;
        while at < ranges[0].end {
            let next = ((at / step + 1) * step).min(ranges[0].end);
            bounds.push(at..next);
            at = next;
        }
        if bounds.len() < 2 {
            return self.read_whole(ranges, shape);
        }
        let row: usize = shape[1..].iter().product();
        let mut out: Vec<T> = xbeam_chunk::codec::reusable_zeroed(n);
        let mut slices = Vec::with_capacity(bounds.len());
        let mut rest: &mut [T] = &mut out;
        for b in &bounds {
            let (head, tail) = rest.split_at_mut((b.end - b.start) as usize * row);
            slices.push(head);
            rest = tail;
        }
        slices
            .into_par_iter()
            .zip(bounds)
            .try_for_each(|(slice, b)| -> Result<(), IoError> {
                let mut sub = ranges.to_vec();
                sub[0] = b;
                match self.retrieve(&sub)? {
                    ArrayBytes::Fixed(bytes) if bytes.len() == std::mem::size_of_val(slice) => {
                        bytemuck::cast_slice_mut::<T, u8>(slice).copy_from_slice(&bytes);
                        Ok(())
                    }
                    _ => Err(IoError::Invalid(format!(
                        "decoded chunk data of {sub:?} does not fit {}",
                        self.info.stored.numpy_name()
                    ))),
                }
            })?;
        Ok(Array::from_vec(shape.to_vec(), out)?)
    }
}

/// One array a sink writes chunks to.
pub(super) struct Writer {
    pub(super) array: ZArray<Store>,
    pub(super) coding: Coding,
    /// How elements are stored.
    pub(super) stored: Stored,
    pub(super) dims: Vec<String>,
}

/// Encodes `values` and writes them at `ranges` of the array.
pub(super) fn write_region(
    root: &Path,
    w: &Writer,
    ranges: &[Range<u64>],
    values: &Array,
) -> Result<(), IoError> {
    let path = root.join(w.array.path().as_str().trim_start_matches('/'));
    let at = |e: IoError| e.at(path.display());
    if ranges.iter().any(|r| r.start == r.end) {
        return Ok(());
    }
    let stored = w.coding.encode(values).map_err(at)?.to_standard_layout();
    let bytes = to_bytes(&stored, w.stored).map_err(at)?;
    let subset = ArraySubset::new_with_ranges(ranges);
    w.array
        .store_array_subset_opt(&subset, ArrayBytes::new_flen(bytes), &write_options())
        .map_err(|e| IoError::zarr(path.display(), format!("cannot write {ranges:?}"), e))
}
