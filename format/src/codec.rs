//! Compression of a batch's records section, for [`crate::records`]. Decoding is bounded by the
//! caller's `max_uncompressed_bytes` so a few hostile bytes cannot expand into gigabytes.

use std::io::{Read, Write};

use crate::batch::Compression;
use crate::error::FormatError;

/// The xerial snappy-java stream header the Java client writes before its snappy blocks.
const XERIAL_MAGIC: [u8; 8] = *b"\x82SNAPPY\0";
/// Magic plus the version and minimum-compatible-version ints.
const XERIAL_HEADER_LEN: usize = 16;
/// snappy-java's default block size; Java consumers read any size, this just matches them.
const XERIAL_BLOCK_LEN: usize = 32 * 1024;
/// zstd's own default window limit (128 MiB), stated so the memory bound is visible here. A
/// smaller limit would reject valid streams: streaming compressors (zstd-jni, librdkafka) do not
/// know the content size up front and pick the window from the level alone.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

fn codec_error(codec: Compression) -> impl Fn(std::io::Error) -> FormatError {
    move |e| FormatError::Codec {
        codec,
        message: e.to_string(),
    }
}

/// Decompresses `data` (a records section) into at most `limit` bytes.
pub(crate) fn decompress(
    codec: Compression,
    data: &[u8],
    limit: usize,
) -> Result<Vec<u8>, FormatError> {
    match codec {
        Compression::None => {
            if data.len() > limit {
                return Err(FormatError::TooLarge { limit });
            }
            Ok(data.to_vec())
        }
        // Multi-member, as some gzip writers emit more than one member.
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(data), codec, limit),
        Compression::Snappy => decompress_snappy(data, limit),
        Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(data), codec, limit),
        Compression::Zstd => {
            let mut decoder =
                zstd::stream::read::Decoder::with_buffer(data).map_err(codec_error(codec))?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(codec_error(codec))?;
            read_bounded(decoder, codec, limit)
        }
    }
}

/// Reads a decoder to its end, failing as soon as it yields more than `limit` bytes.
fn read_bounded(
    reader: impl Read,
    codec: Compression,
    limit: usize,
) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(codec_error(codec))?;
    if out.len() > limit {
        return Err(FormatError::TooLarge { limit });
    }
    Ok(out)
}

/// Accepts both snappy flavours Kafka clients send: xerial-framed (Java) and raw (librdkafka).
fn decompress_snappy(data: &[u8], limit: usize) -> Result<Vec<u8>, FormatError> {
    if !data.starts_with(&XERIAL_MAGIC) {
        let mut out = Vec::new();
        raw_snappy_into(data, limit, &mut out)?;
        return Ok(out);
    }
    let Some(mut rest) = data.get(XERIAL_HEADER_LEN..) else {
        return Err(snappy_error("truncated xerial header"));
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(snappy_error("truncated xerial block length"));
        };
        let len = usize::try_from(i32::from_be_bytes(*len))
            .map_err(|_| snappy_error("negative xerial block length"))?;
        let Some(block) = tail.get(..len) else {
            return Err(snappy_error("truncated xerial block"));
        };
        raw_snappy_into(block, limit, &mut out)?;
        rest = &tail[len..];
    }
    Ok(out)
}

/// Decompresses one raw snappy block onto `out`, checking its declared length against what is
/// left of `limit` before allocating.
fn raw_snappy_into(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), FormatError> {
    let err = |e: snap::Error| snappy_error(&e.to_string());
    let len = snap::raw::decompress_len(block).map_err(err)?;
    if len > limit.saturating_sub(out.len()) {
        return Err(FormatError::TooLarge { limit });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(err)?;
    out.truncate(start + written);
    Ok(())
}

fn snappy_error(message: &str) -> FormatError {
    FormatError::Codec {
        codec: Compression::Snappy,
        message: message.to_string(),
    }
}

/// Compresses a records section the way the Java client does (xerial framing for snappy).
pub(crate) fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, FormatError> {
    let err = codec_error(codec);
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(data).map_err(&err)?;
            encoder.finish().map_err(&err)
        }
        Compression::Snappy => {
            let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + data.len());
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for block in data.chunks(XERIAL_BLOCK_LEN) {
                let compressed = encoder
                    .compress_vec(block)
                    .map_err(|e| snappy_error(&e.to_string()))?;
                let len =
                    i32::try_from(compressed.len()).map_err(|_| snappy_error("block too large"))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&compressed);
            }
            Ok(out)
        }
        Compression::Lz4 => {
            let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
            encoder.write_all(data).map_err(&err)?;
            encoder.finish().map_err(|e| FormatError::Codec {
                codec,
                message: e.to_string(),
            })
        }
        Compression::Zstd => zstd::stream::encode_all(data, 3).map_err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn roundtrip_every_codec() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for codec in ALL {
            let packed = compress(codec, &data).unwrap();
            assert_eq!(
                decompress(codec, &packed, data.len()).unwrap(),
                data,
                "{codec:?}"
            );
            assert_eq!(
                decompress(codec, &packed, data.len() - 1),
                Err(FormatError::TooLarge {
                    limit: data.len() - 1
                }),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn snappy_accepts_raw_and_xerial() {
        let data = b"hello hello hello hello snappy".repeat(5000);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        let xerial = compress(Compression::Snappy, &data).unwrap();
        assert!(xerial.starts_with(&XERIAL_MAGIC));
        assert!(!raw.starts_with(&XERIAL_MAGIC));
        // More than one xerial block, so the block loop is exercised.
        assert!(data.len() > 2 * XERIAL_BLOCK_LEN);
        assert_eq!(decompress_snappy(&raw, usize::MAX).unwrap(), data);
        assert_eq!(decompress_snappy(&xerial, usize::MAX).unwrap(), data);
    }

    #[test]
    fn xerial_garbage_rejected() {
        let mut bad = XERIAL_MAGIC.to_vec();
        bad.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        bad.extend_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(
            decompress_snappy(&bad, 100),
            Err(FormatError::Codec { .. })
        ));
        let mut long = XERIAL_MAGIC.to_vec();
        long.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        long.extend_from_slice(&1000i32.to_be_bytes());
        long.extend_from_slice(&[1, 2, 3]);
        assert!(matches!(
            decompress_snappy(&long, 100),
            Err(FormatError::Codec { .. })
        ));
        assert!(decompress_snappy(&XERIAL_MAGIC, 100).is_err());
    }

    #[test]
    fn decompression_bombs_bounded() {
        // 16 MiB of zeros shrinks at least tenfold with every codec.
        let zeros = vec![0u8; 16 << 20];
        let limit = 1 << 20;
        for codec in ALL {
            if codec == Compression::None {
                continue;
            }
            let bomb = compress(codec, &zeros).unwrap();
            assert!(bomb.len() < zeros.len() / 10, "{codec:?} {}", bomb.len());
            assert_eq!(
                decompress(codec, &bomb, limit),
                Err(FormatError::TooLarge { limit }),
                "{codec:?}"
            );
        }
        // A raw snappy header that claims nearly 4 GiB is refused before allocating.
        let claim = [0x80, 0x80, 0x80, 0x80, 0x0f];
        assert_eq!(
            decompress(Compression::Snappy, &claim, limit),
            Err(FormatError::TooLarge { limit })
        );
    }

    #[test]
    fn garbage_is_an_error_for_every_codec() {
        let garbage = [0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02];
        for codec in ALL {
            if codec == Compression::None {
                continue;
            }
            assert!(decompress(codec, &garbage, 1 << 20).is_err(), "{codec:?}");
        }
    }
}
