//! Store-format records (CHECK_TRANSACTION_STATE bodies).
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rmq_protocol::decode_store_message;

fuzz_target!(|data: &[u8]| {
    let _ = decode_store_message(&Bytes::copy_from_slice(data));
});
