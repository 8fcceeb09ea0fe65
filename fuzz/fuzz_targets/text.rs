//! Text decoders: properties, offset msgIds, UNIQ_KEYs, heartbeat JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rmq_protocol::header::HeartbeatData;
use rmq_protocol::id::UniqIdParts;
use rmq_protocol::message::decode_properties;
use rmq_protocol::OffsetMessageId;

fuzz_target!(|data: &[u8]| {
    let _ = HeartbeatData::decode(data);
    let text = String::from_utf8_lossy(data);
    let _ = decode_properties(&text);
    if let Ok(id) = OffsetMessageId::decode(&text) {
        assert_eq!(OffsetMessageId::decode(&id.encode()).expect("own output parses"), id);
    }
    let _ = UniqIdParts::parse(&text);
});
