//! Body compression as the Java producer does it: bodies of at least [`DEFAULT_COMPRESS_THRESHOLD`] bytes
//! are compressed (zlib level 5 by default) and the sysFlag gains `COMPRESSED | type` (0x301 for zlib).
//! Decompression is bounded, so a hostile body cannot make us allocate without limit.

use std::io::{Read, Write};

use crate::error::{DecodeError, EncodeError};
use crate::message::sys_flag;

/// Bodies of at least this many bytes are compressed (Java's `compressMsgBodyOverHowmuch`, compared with
/// `>=`).
pub const DEFAULT_COMPRESS_THRESHOLD: usize = 4096;
/// Java's default compression level.
pub const DEFAULT_COMPRESS_LEVEL: u32 = 5;

/// A compression algorithm and its sysFlag bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CompressionType {
    /// zlib (RFC 1950), Java's default. sysFlag type 0x300.
    #[default]
    Zlib,
    /// LZ4 frame format. sysFlag type 0x100. Needs the `lz4` feature.
    Lz4,
    /// Zstandard. sysFlag type 0x200. Needs the `zstd` feature.
    Zstd,
}

impl CompressionType {
    /// The compression type bits (without [`sys_flag::COMPRESSED`]).
    pub fn flag_bits(self) -> i32 {
        match self {
            CompressionType::Zlib => sys_flag::COMPRESSION_ZLIB,
            CompressionType::Lz4 => sys_flag::COMPRESSION_LZ4,
            CompressionType::Zstd => sys_flag::COMPRESSION_ZSTD,
        }
    }

    /// The type named by a sysFlag's type bits; 0 means zlib, as in Java (pre-4.9.4 producers set only
    /// the COMPRESSED bit).
    pub fn from_sys_flag(flag: i32) -> Option<Self> {
        match flag & sys_flag::COMPRESSION_TYPE_MASK {
            0 | sys_flag::COMPRESSION_ZLIB => Some(CompressionType::Zlib),
            sys_flag::COMPRESSION_LZ4 => Some(CompressionType::Lz4),
            sys_flag::COMPRESSION_ZSTD => Some(CompressionType::Zstd),
            _ => None,
        }
    }

    /// The codec named `name` (`zlib`, `lz4`, `zstd`; any case).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "zlib" => Some(CompressionType::Zlib),
            "lz4" => Some(CompressionType::Lz4),
            "zstd" => Some(CompressionType::Zstd),
            _ => None,
        }
    }

    /// The codec's name: `zlib`, `lz4` or `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            CompressionType::Zlib => "zlib",
            CompressionType::Lz4 => "lz4",
            CompressionType::Zstd => "zstd",
        }
    }
}

/// Whether a body of `len` bytes is compressed under `threshold` (`len >= threshold`).
pub fn should_compress(len: usize, threshold: usize) -> bool {
    len >= threshold
}

/// Compresses `body` with `ty` at `level`. Returns the bytes and the sysFlag bits to OR into the header
/// (`COMPRESSED | type`).
pub fn compress(
    body: &[u8],
    ty: CompressionType,
    level: u32,
) -> Result<(Vec<u8>, i32), EncodeError> {
    let bits = sys_flag::COMPRESSED | ty.flag_bits();
    let io = |e: std::io::Error| EncodeError::Compress(e.to_string());
    let out = match ty {
        CompressionType::Zlib => {
            let mut enc = flate2::write::ZlibEncoder::new(
                Vec::with_capacity(body.len() / 2 + 64),
                flate2::Compression::new(level.min(9)),
            );
            enc.write_all(body).map_err(io)?;
            enc.finish().map_err(io)?
        }
        #[cfg(feature = "lz4")]
        CompressionType::Lz4 => {
            let mut enc =
                lz4_flex::frame::FrameEncoder::new(Vec::with_capacity(body.len() / 2 + 64));
            enc.write_all(body).map_err(io)?;
            enc.finish()
                .map_err(|e| EncodeError::Compress(e.to_string()))?
        }
        #[cfg(feature = "zstd")]
        CompressionType::Zstd => zstd::bulk::compress(body, level as i32).map_err(io)?,
        #[allow(unreachable_patterns)]
        other => {
            return Err(EncodeError::Compress(format!(
                "{} support is not built in; enable the `{}` feature of rmq-protocol",
                other.name(),
                other.name()
            )));
        }
    };
    Ok((out, bits))
}

/// Reads at most `limit` bytes from `r`, failing if there are more.
fn read_bounded<R: Read>(r: R, limit: usize, kind: &'static str) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let mut limited = r.take(limit as u64 + 1);
    limited
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Decompress {
            kind,
            message: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(DecodeError::DecompressedTooLarge { limit });
    }
    Ok(out)
}

/// Decompresses `body` according to `sys_flag`, producing at most `limit` bytes. A body whose sysFlag
/// lacks the COMPRESSED bit is returned as is.
pub fn decompress(body: &[u8], flag: i32, limit: usize) -> Result<Vec<u8>, DecodeError> {
    if flag & sys_flag::COMPRESSED == 0 {
        return Ok(body.to_vec());
    }
    let ty = CompressionType::from_sys_flag(flag).ok_or(DecodeError::UnsupportedCompression {
        sys_flag: flag,
        hint: "",
    })?;
    match ty {
        CompressionType::Zlib => read_bounded(flate2::read::ZlibDecoder::new(body), limit, "zlib"),
        #[cfg(feature = "lz4")]
        CompressionType::Lz4 => {
            read_bounded(lz4_flex::frame::FrameDecoder::new(body), limit, "lz4")
        }
        #[cfg(feature = "zstd")]
        CompressionType::Zstd => {
            let err = |e: std::io::Error| DecodeError::Decompress {
                kind: "zstd",
                message: e.to_string(),
            };
            let mut dec = zstd::stream::read::Decoder::new(body).map_err(err)?;
            // The window a frame may ask for, bounded by the output it may produce (twice `limit`, so
            // a frame of up to `limit` bytes with its size in the header always fits): zstd's own
            // ceiling is 128 MiB, which a hostile frame would make the decoder allocate.
            dec.window_log_max(zstd_window_log(limit)).map_err(err)?;
            read_bounded(dec, limit, "zstd")
        }
        #[allow(unreachable_patterns)]
        other => Err(DecodeError::UnsupportedCompression {
            sys_flag: flag,
            hint: match other {
                CompressionType::Lz4 => " (enable the `lz4` feature of rmq-protocol)",
                _ => " (enable the `zstd` feature of rmq-protocol)",
            },
        }),
    }
}

/// log2 of the largest zstd window [`decompress`] accepts for an output of at most `limit` bytes: the
/// power of two at or above twice `limit`, within zstd's 10..=27.
#[cfg(feature = "zstd")]
fn zstd_window_log(limit: usize) -> u32 {
    let want = limit.saturating_mul(2).max(1);
    (usize::BITS - (want - 1).leading_zeros()).clamp(10, 27)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..10_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect()
    }

    #[test]
    fn zlib_is_java_compatible() {
        let body = sample();
        let (z, bits) = compress(&body, CompressionType::Zlib, DEFAULT_COMPRESS_LEVEL).unwrap();
        assert_eq!(bits, 0x301); // java_vectors.txt: COMPRESSED|ZLIB = 769
        // An RFC 1950 zlib stream with the same header as Java's Deflater(5) (derived_vectors.txt: 785e);
        // the deflate bytes themselves may differ from Java's zlib, which no reader depends on.
        assert_eq!(&z[..2], &[0x78, 0x5e]);
        assert_eq!(decompress(&z, bits, body.len()).unwrap(), body);
        assert_eq!(
            decompress(&z, sys_flag::COMPRESSED, body.len()).unwrap(),
            body
        ); // pre-4.9.4 flag
    }

    #[test]
    fn threshold_is_inclusive() {
        assert!(!should_compress(4095, DEFAULT_COMPRESS_THRESHOLD));
        assert!(should_compress(4096, DEFAULT_COMPRESS_THRESHOLD));
    }

    #[test]
    fn bombs_and_garbage_are_refused() {
        let zeros = vec![0u8; 1 << 20];
        let (z, bits) = compress(&zeros, CompressionType::Zlib, 9).unwrap();
        assert!(z.len() < 4096);
        assert_eq!(
            decompress(&z, bits, 1000),
            Err(DecodeError::DecompressedTooLarge { limit: 1000 })
        );
        assert!(matches!(
            decompress(b"not zlib", 0x301, 1000),
            Err(DecodeError::Decompress { .. })
        ));
        assert!(matches!(
            decompress(b"x", sys_flag::COMPRESSED | 0x400, 1000),
            Err(DecodeError::UnsupportedCompression { .. })
        ));
        assert_eq!(decompress(b"plain", 0, 1).unwrap(), b"plain");
    }

    #[cfg(feature = "lz4")]
    #[test]
    fn lz4_round_trip() {
        let body = sample();
        let (c, bits) = compress(&body, CompressionType::Lz4, 0).unwrap();
        assert_eq!(bits, 0x101);
        assert_eq!(&c[..4], &[0x04, 0x22, 0x4d, 0x18]); // LZ4 frame magic
        assert_eq!(decompress(&c, bits, body.len()).unwrap(), body);
    }

    /// Before: a frame declaring a 128 MiB window (zstd's ceiling) was decoded, its window allocated,
    /// whatever the output limit. Now a window above the limit's is refused.
    #[cfg(feature = "zstd")]
    #[test]
    fn a_zstd_window_beyond_the_limit_is_refused() {
        use std::io::Write;
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.include_contentsize(false).unwrap();
        enc.window_log(27).unwrap();
        enc.long_distance_matching(true).unwrap();
        enc.write_all(&[7u8; 1024]).unwrap();
        let frame = enc.finish().unwrap();
        let flag = sys_flag::COMPRESSED | CompressionType::Zstd.flag_bits();
        let e = decompress(&frame, flag, 4 << 20).unwrap_err();
        assert!(
            matches!(e, DecodeError::Decompress { kind: "zstd", .. }),
            "{e}"
        );
        // The same bytes with a window that fits are fine.
        let (small, bits) = compress(&[7u8; 1024], CompressionType::Zstd, 3).unwrap();
        assert_eq!(decompress(&small, bits, 4 << 20).unwrap(), vec![7u8; 1024]);
        assert_eq!(zstd_window_log(4 << 20), 23);
        assert_eq!(zstd_window_log(0), 10);
        assert_eq!(zstd_window_log(usize::MAX), 27);
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn zstd_round_trip() {
        let body = sample();
        let (c, bits) = compress(&body, CompressionType::Zstd, 3).unwrap();
        assert_eq!(bits, 0x201);
        assert_eq!(&c[..4], &[0x28, 0xb5, 0x2f, 0xfd]); // zstd frame magic
        assert_eq!(decompress(&c, bits, body.len()).unwrap(), body);
    }

    #[cfg(not(feature = "lz4"))]
    #[test]
    fn missing_feature_is_explained() {
        let e = compress(b"x", CompressionType::Lz4, 0).unwrap_err();
        assert!(e.to_string().contains("`lz4` feature"), "{e}");
        let e = decompress(b"x", 0x101, 10).unwrap_err();
        assert!(e.to_string().contains("`lz4` feature"), "{e}");
    }
}
