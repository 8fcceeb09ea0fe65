//! Frames with either header type, fed in two pieces; a decoded command must re-encode and decode equal.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rmq_protocol::FrameDecoder;

fuzz_target!(|data: &[u8]| {
    let dec = FrameDecoder::new(64 * 1024);
    let split = data.first().map_or(0, |b| *b as usize).min(data.len());
    let mut buf = BytesMut::from(&data[..split]);
    let mut rest = &data[split..];
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(cmd)) => {
                if let Ok(again) = cmd.to_bytes() {
                    let mut b = BytesMut::from(&again[..]);
                    let back = dec.decode(&mut b).expect("re-encoded frame decodes").expect("complete");
                    assert_eq!(back.code, cmd.code);
                    assert_eq!(back.opaque, cmd.opaque);
                    assert_eq!(back.body, cmd.body);
                }
            }
            Ok(None) if !rest.is_empty() => {
                buf.extend_from_slice(rest);
                rest = &[];
            }
            Ok(None) | Err(_) => break,
        }
    }
});
