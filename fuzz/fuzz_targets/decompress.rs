//! Compressed bodies: decompression never exceeds its limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rmq_protocol::compress::decompress;

fuzz_target!(|data: &[u8]| {
    for flag in [0x301, 0x101, 0x201, 0x1] {
        if let Ok(out) = decompress(data, flag, 1 << 16) {
            assert!(out.len() <= 1 << 16);
        }
    }
});
