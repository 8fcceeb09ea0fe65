//! Encodes a route request and a SEND_MESSAGE_V2 request with both header types and prints the frames in
//! hex, then decodes them again. Run with `cargo run -p rmq-examples --example encode_frames`.

use bytes::BytesMut;
use rmq::protocol::header::{
    GetRouteInfoRequestHeader, SendMessageRequestHeader, SendMessageRequestHeaderV2,
};
use rmq::protocol::{FrameDecoder, Message, RemotingCommand, RequestCode, SerializeType};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut msg = Message::new("TopicTest", "Hello");
    msg.set_tags("TagA");
    let send = SendMessageRequestHeaderV2(SendMessageRequestHeader {
        producer_group: "PG".into(),
        topic: msg.topic.clone(),
        born_timestamp: 1_700_000_000_000,
        properties: Some(msg.encoded_properties()),
        broker_name: Some("broker-a".into()),
        ..Default::default()
    });
    let commands = [
        RemotingCommand::with_header(
            RequestCode::GET_ROUTEINFO_BY_TOPIC,
            &GetRouteInfoRequestHeader::new("TopicTest"),
        ),
        RemotingCommand::with_header(RequestCode::SEND_MESSAGE_V2, &send)
            .with_body(msg.body.clone()),
    ];
    for (i, cmd) in commands.into_iter().enumerate() {
        for ty in [SerializeType::JSON, SerializeType::ROCKETMQ] {
            let cmd = cmd.clone().with_opaque(i as i32).with_serialize_type(ty);
            let mut wire = BytesMut::new();
            cmd.encode(&mut wire)?;
            println!(
                "{} {ty} ({} bytes): {}",
                cmd.request_code(),
                wire.len(),
                hex(&wire)
            );
            let back = FrameDecoder::default()
                .decode(&mut wire)?
                .ok_or("incomplete frame")?;
            assert_eq!(back, cmd);
        }
    }
    Ok(())
}
