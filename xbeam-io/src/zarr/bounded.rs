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
//! variable-length types (strings) have no size known before decoding and
//! are decoded by zarrs as before.

use std::borrow::Cow;
use std::io::Read;
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

fn too_large(found: &str, limit: u64) -> CodecError {
    CodecError::Other(format!(
        "{found}, expected {limit} bytes once decoded (a corrupt chunk or a decompression bomb; decoding stopped there)"
    ))
}

/// Reads `reader` to its end, or fails once it yields more than `limit`
/// bytes.
fn read_bounded(reader: impl Read, limit: u64) -> Result<Vec<u8>, CodecError> {
    // the limit comes from metadata: grow past 64 MiB only as data comes
    let mut out = Vec::with_capacity(usize::try_from(limit.min(64 << 20)).unwrap_or(0));
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| CodecError::IOError(Arc::new(e)))?;
    if out.len() as u64 > limit {
        return Err(too_large(
            "the chunk decompresses to more bytes than it holds",
            limit,
        ));
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
        let Some(limit) = decoded_representation.size() else {
            return self
                .inner
                .decode(encoded_value, decoded_representation, options);
        };
        let bytes: &[u8] = &encoded_value;
        let out = match self.kind {
            Kind::Gzip => read_bounded(flate2::read::GzDecoder::new(bytes), limit)?,
            Kind::Zlib => read_bounded(flate2::read::ZlibDecoder::new(bytes), limit)?,
            Kind::Zstd => {
                let decoder = zstd::stream::read::Decoder::with_buffer(bytes)
                    .map_err(|e| CodecError::IOError(Arc::new(e)))?;
                read_bounded(decoder, limit)?
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
        if let (Some(limit), Some(n)) = (decoded_representation.size(), encoded_value.get(4..8)) {
            let claimed = u32::from_le_bytes([n[0], n[1], n[2], n[3]]);
            if u64::from(claimed) > limit {
                return Err(too_large(
                    &format!("the chunk's blosc header says it decompresses to {claimed} bytes"),
                    limit,
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
        let e = read_bounded(flate2::read::GzDecoder::new(&bomb[..]), 4000).unwrap_err();
        assert!(
            e.to_string()
                .contains("more bytes than it holds, expected 4000 bytes"),
            "{e}"
        );
        let ok = gzip(&[7u8; 4000]);
        assert_eq!(
            read_bounded(flate2::read::GzDecoder::new(&ok[..]), 4000).unwrap(),
            vec![7u8; 4000]
        );
    }
}
