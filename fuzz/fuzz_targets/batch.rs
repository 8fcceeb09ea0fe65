//! Batch bodies; what decodes must encode back to the same bytes' messages.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rmq_protocol::batch::{decode_batch, encode_batch};

fuzz_target!(|data: &[u8]| {
    if let Ok(msgs) = decode_batch("T", &Bytes::copy_from_slice(data)) {
        if let Ok(again) = encode_batch(&msgs) {
            assert_eq!(decode_batch("T", &again).expect("own output decodes"), msgs);
        }
    }
});
