//! Decompression that stops at the chunk's size: zarrs' `gzip`, `zlib`,
//! `zstd` and `blosc` codecs, each wrapped so that decoding a chunk can
//! never produce more bytes than the chunk holds once decoded.
//!
//! zarrs decodes a chunk whole and checks its length afterwards, so a
//! 9 MB gzip chunk of 2 GiB of zeros (a decompression bomb, or plain
//! corruption) took 2 GiB, twice over with the error path's second read
//! (4.2 GB peak RSS for a 4 kB chunk). Here the decoder reads at most one
//! byte past the expected size and fails there, naming both sizes; a blosc
//! chunk whose header claims more bytes than expected fails before
//! anything is allocated, and partial reads of blosc chunks use blosc's own
//! partial decoder, which decompresses only the blocks a read needs.
//! Configuration and encoding are zarrs' own codec's.
//!
//! The wrappers are registered once per process with zarrs' runtime codec
//! registry, which takes precedence over its built-in codecs. Chunks of
//! variable-length types (strings) have no size known before decoding:
//! theirs is bounded by the process's read limits ([`set_memory_budget`]),
//! as is every chunk file read.

use std::borrow::Cow;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};

use zarrs::array::codec::api::{
    register_codec_v2, register_codec_v3, ArrayBytesRaw, BytesPartialDecoderTraits,
    BytesRepresentation, BytesToBytesCodecTraits, Codec, CodecError, CodecMetadataOptions,
    CodecOptions, CodecRuntimePluginV2, CodecRuntimePluginV3, CodecTraits, CodecTraitsV2,
    CodecTraitsV3, PartialDecoderCapability, PartialEncoderCapability, RecommendedConcurrency,
};
use zarrs::array::codec::{BloscCodec, GzipCodec, ZlibCodec, ZstdCodec};
use zarrs::metadata::v2::MetadataV2;
use zarrs::metadata::v3::MetadataV3;
use zarrs::metadata::Configuration;
use zarrs::plugin::{ExtensionName, PluginCreateError, ZarrVersion};

/// The most bytes one chunk file read may take: the whole budget.
static FILE_LIMIT: AtomicU64 = AtomicU64::new(1 << 30);
/// The most bytes one variable-length chunk may decompress to: the
/// budget's share of one worker.
static VARIABLE_LIMIT: AtomicU64 = AtomicU64::new(1 << 28);

/// Sets the process's read limits from its memory budget: no chunk file
/// larger than `max_mem` bytes is read (no chunk that size could be held
/// in the budget), and a chunk of variable-length values (strings, whose
/// decoded size is not known before decoding) may decompress to at most
/// `max_mem / workers` bytes (at least 1 MiB), so that every worker
/// decoding one at once stays within the budget. Beyond either, the read
/// fails with an error naming the chunk and the limit. The CLI sets this
/// from `--max-mem` and `--workers`; by default the limits are those of a
/// 1 GiB budget over 4 workers.
///
/// ```
/// xbeam_io::set_memory_budget(512 << 20, 2);
/// assert_eq!(xbeam_io::read_limits(), (512 << 20, 256 << 20));
/// xbeam_io::set_memory_budget(1 << 30, 4);
/// ```
pub fn set_memory_budget(max_mem: u64, workers: usize) {
    let workers = u64::try_from(workers.max(1)).unwrap_or(u64::MAX);
    FILE_LIMIT.store(max_mem.max(1 << 20), Ordering::Relaxed);
    VARIABLE_LIMIT.store((max_mem / workers).max(1 << 20), Ordering::Relaxed);
}

/// The process's read limits ([`set_memory_budget`]): the largest chunk
/// file read, and the most bytes a variable-length chunk decompresses to.
///
/// ```
/// let (file, variable) = xbeam_io::read_limits();
/// assert!(variable <= file);
/// ```
pub fn read_limits() -> (u64, u64) {
    (
        FILE_LIMIT.load(Ordering::Relaxed),
        VARIABLE_LIMIT.load(Ordering::Relaxed),
    )
}

/// The limit of one decode: the chunk's decoded size when it is known,
/// else the variable-length limit; and whether it is the latter.
fn decode_limit(decoded: &BytesRepresentation) -> (u64, bool) {
    decoded
        .size()
        .map_or_else(|| (read_limits().1, true), |n| (n, false))
}

/// Which compressor a [`Bounded`] wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gzip,
    Zlib,
    Zstd,
    Blosc,
}

/// zarrs' codec `inner`, with a decode bounded by the decoded size.
#[derive(Debug)]
struct Bounded {
    inner: Arc<dyn BytesToBytesCodecTraits>,
    kind: Kind,
}

/// The compressor id a v2 array's `blosc` is given in the metadata handed
/// to zarrs, which otherwise builds that codec itself, past the registry;
/// its configuration carries the data type's size as `typesize` (for the
/// shuffle, as zarrs does).
pub(crate) const V2_BLOSC: &str = "xbeam.blosc";

/// Registers the bounded codecs (once per process).
pub(crate) fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (kind, v3, v2) in [
            (Kind::Gzip, "gzip", "gzip"),
            (Kind::Zlib, "numcodecs.zlib", "zlib"),
            (Kind::Zstd, "zstd", "zstd"),
            (Kind::Blosc, "blosc", "blosc"),
        ] {
            register_codec_v3(CodecRuntimePluginV3::new(
                move |name| name == v3,
                move |m: &MetadataV3| wrap(kind, create_v3(kind, m)),
            ));
            register_codec_v2(CodecRuntimePluginV2::new(
                move |name| name == v2 || (kind == Kind::Blosc && name == V2_BLOSC),
                move |m: &MetadataV2| wrap(kind, create_v2(kind, m)),
            ));
        }
    });
}

fn create_v3(kind: Kind, m: &MetadataV3) -> Result<Codec, PluginCreateError> {
    match kind {
        Kind::Gzip => <GzipCodec as CodecTraitsV3>::create(m),
        Kind::Zlib => <ZlibCodec as CodecTraitsV3>::create(m),
        Kind::Zstd => <ZstdCodec as CodecTraitsV3>::create(m),
        Kind::Blosc => <BloscCodec as CodecTraitsV3>::create(m),
    }
}

fn create_v2(kind: Kind, m: &MetadataV2) -> Result<Codec, PluginCreateError> {
    match kind {
        Kind::Gzip => <GzipCodec as CodecTraitsV2>::create(m),
        Kind::Zlib => <ZlibCodec as CodecTraitsV2>::create(m),
        Kind::Zstd => <ZstdCodec as CodecTraitsV2>::create(m),
        Kind::Blosc if m.id() == V2_BLOSC => v2_blosc(m),
        Kind::Blosc => <BloscCodec as CodecTraitsV2>::create(m),
    }
}

/// zarrs' own construction of a v2 array's blosc codec, the data type's
/// size taken from the configuration's `typesize`.
fn v2_blosc(m: &MetadataV2) -> Result<Codec, PluginCreateError> {
    use zarrs::metadata::DataTypeSize;
    use zarrs::metadata_ext::codec::blosc::{
        codec_blosc_v2_numcodecs_to_v3, BloscCodecConfigurationNumcodecs, BloscShuffleModeNumcodecs,
    };
    let mut conf: serde_json::Map<String, serde_json::Value> = m
        .configuration()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let typesize = conf.remove("typesize").and_then(|v| v.as_u64());
    let numcodecs: BloscCodecConfigurationNumcodecs =
        serde_json::from_value(serde_json::Value::Object(conf))
            .map_err(|e| PluginCreateError::Other(e.to_string()))?;
    let size = match (&numcodecs.shuffle, typesize) {
        (BloscShuffleModeNumcodecs::NoShuffle, _) | (_, None) => None,
        (_, Some(n)) => Some(DataTypeSize::Fixed(usize::try_from(n).unwrap_or(1))),
    };
    let v3 = codec_blosc_v2_numcodecs_to_v3(&numcodecs, size);
    let codec = BloscCodec::new_with_configuration(&v3)?;
    Ok(Codec::BytesToBytes(Arc::new(codec)))
}

fn wrap(kind: Kind, codec: Result<Codec, PluginCreateError>) -> Result<Codec, PluginCreateError> {
    Ok(match codec? {
        Codec::BytesToBytes(inner) if kind == Kind::Blosc => {
            Codec::BytesToBytes(Arc::new(BoundedBlosc { inner }))
        }
        Codec::BytesToBytes(inner) => Codec::BytesToBytes(Arc::new(Bounded { inner, kind })),
        other => other,
    })
}

fn too_large(found: &str, limit: u64, variable: bool) -> CodecError {
    if variable {
        return CodecError::Other(format!(
            "{found}: more than the {limit} bytes a chunk of variable-length values may take once decoded under this memory budget (raise --max-mem if the chunk is sound; decoding stopped there)"
        ));
    }
    CodecError::Other(format!(
        "{found}, expected {limit} bytes once decoded (a corrupt chunk or a decompression bomb; decoding stopped there)"
    ))
}

/// Reads `reader` to its end, or fails once it yields more than `limit`
/// bytes.
fn read_bounded(
    reader: impl Read,
    (limit, variable): (u64, bool),
    encoded: usize,
) -> Result<Vec<u8>, CodecError> {
    // a fixed size comes from metadata: grow past 64 MiB only as data
    // comes; a variable one is guessed from the encoded size
    let start = if variable {
        (encoded as u64).saturating_mul(4).min(limit)
    } else {
        limit
    };
    let mut out = Vec::with_capacity(usize::try_from(start.min(64 << 20)).unwrap_or(0));
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| CodecError::IOError(Arc::new(e)))?;
    if out.len() as u64 > limit {
        let found = if variable {
            "the chunk decompresses to more bytes"
        } else {
            "the chunk decompresses to more bytes than it holds"
        };
        return Err(too_large(found, limit, variable));
    }
    Ok(out)
}

/// zarrs' blosc codec, with the header's claimed size checked before a
/// whole chunk is decoded. Partial reads go to blosc's own partial decoder,
/// which decompresses only the blocks a read needs (each bounded by the
/// read), as before the wrapping.
#[derive(Debug)]
struct BoundedBlosc {
    inner: Arc<dyn BytesToBytesCodecTraits>,
}

/// The trait methods both wrappers hand to zarrs' codec, and their own
/// `$extra` ones (`decode`, and blosc's `partial_decoder`).
macro_rules! wrapper {
    ($t:ty; $($extra:tt)*) => {
        impl ExtensionName for $t {
            fn name(&self, version: ZarrVersion) -> Option<Cow<'static, str>> {
                self.inner.name(version)
            }
        }

        impl CodecTraits for $t {
            fn as_any(&self) -> &dyn std::any::Any {
                self.inner.as_any()
            }

            fn configuration(
                &self,
                version: ZarrVersion,
                options: &CodecMetadataOptions,
            ) -> Option<Configuration> {
                self.inner.configuration(version, options)
            }

            fn partial_decoder_capability(&self) -> PartialDecoderCapability {
                self.inner.partial_decoder_capability()
            }

            fn partial_encoder_capability(&self) -> PartialEncoderCapability {
                self.inner.partial_encoder_capability()
            }
        }

        impl BytesToBytesCodecTraits for $t {
            fn into_dyn(self: Arc<Self>) -> Arc<dyn BytesToBytesCodecTraits> {
                self as Arc<dyn BytesToBytesCodecTraits>
            }

            fn recommended_concurrency(
                &self,
                decoded_representation: &BytesRepresentation,
            ) -> Result<RecommendedConcurrency, CodecError> {
                self.inner.recommended_concurrency(decoded_representation)
            }

            fn encoded_representation(
                &self,
                decoded_representation: &BytesRepresentation,
            ) -> BytesRepresentation {
                self.inner.encoded_representation(decoded_representation)
            }

            fn encode<'a>(
                &self,
                decoded_value: ArrayBytesRaw<'a>,
                options: &CodecOptions,
            ) -> Result<ArrayBytesRaw<'a>, CodecError> {
                self.inner.encode(decoded_value, options)
            }

            $($extra)*
        }
    };
}

wrapper! {
    Bounded;
    fn decode<'a>(
        &self,
        encoded_value: ArrayBytesRaw<'a>,
        decoded_representation: &BytesRepresentation,
        options: &CodecOptions,
    ) -> Result<ArrayBytesRaw<'a>, CodecError> {
        let limit = decode_limit(decoded_representation);
        let bytes: &[u8] = &encoded_value;
        let out = match self.kind {
            Kind::Gzip => read_bounded(flate2::read::GzDecoder::new(bytes), limit, bytes.len())?,
            Kind::Zlib => read_bounded(flate2::read::ZlibDecoder::new(bytes), limit, bytes.len())?,
            Kind::Zstd => {
                let decoder = zstd::stream::read::Decoder::with_buffer(bytes)
                    .map_err(|e| CodecError::IOError(Arc::new(e)))?;
                read_bounded(decoder, limit, bytes.len())?
            }
            // blosc is wrapped by `BoundedBlosc`
            Kind::Blosc => {
                return self
                    .inner
                    .decode(encoded_value, decoded_representation, options)
            }
        };
        Ok(Cow::Owned(out))
    }
}

wrapper! {
    BoundedBlosc;
    fn partial_decoder(
        self: Arc<Self>,
        input_handle: Arc<dyn BytesPartialDecoderTraits>,
        decoded_representation: &BytesRepresentation,
        options: &CodecOptions,
    ) -> Result<Arc<dyn BytesPartialDecoderTraits>, CodecError> {
        self.inner
            .clone()
            .partial_decoder(input_handle, decoded_representation, options)
    }

    fn decode<'a>(
        &self,
        encoded_value: ArrayBytesRaw<'a>,
        decoded_representation: &BytesRepresentation,
        options: &CodecOptions,
    ) -> Result<ArrayBytesRaw<'a>, CodecError> {
        // the header's uncompressed size (bytes 4..8), before blosc
        // allocates it
        if let Some(n) = encoded_value.get(4..8) {
            let (limit, variable) = decode_limit(decoded_representation);
            let claimed = u32::from_le_bytes([n[0], n[1], n[2], n[3]]);
            if u64::from(claimed) > limit {
                return Err(too_large(
                    &format!("the chunk's blosc header says it decompresses to {claimed} bytes"),
                    limit,
                    variable,
                ));
            }
        }
        self.inner
            .decode(encoded_value, decoded_representation, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_stream_longer_than_the_chunk_stops_one_byte_past_it() {
        let bomb = gzip(&vec![0u8; 1 << 24]);
        let e =
            read_bounded(flate2::read::GzDecoder::new(&bomb[..]), (4000, false), 0).unwrap_err();
        assert!(
            e.to_string()
                .contains("more bytes than it holds, expected 4000 bytes"),
            "{e}"
        );
        let ok = gzip(&[7u8; 4000]);
        assert_eq!(
            read_bounded(flate2::read::GzDecoder::new(&ok[..]), (4000, false), 0).unwrap(),
            vec![7u8; 4000]
        );
    }
}
