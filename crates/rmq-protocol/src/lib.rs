//! # rmq-protocol
//!
//! A sans-I/O codec for the Apache RocketMQ **remoting** protocol (the TCP protocol of the classic Java
//! client, not the v5 gRPC one), byte-compatible with the Java classes it mirrors.
//!
//! **Contract.** This crate has no sockets, threads, clock reads, logging or randomness: only bytes in and
//! bytes out. Time is passed in where an algorithm needs it ([`UniqIdGenerator::next_id`]). Any tool can
//! depend on it alone. Nothing that arrives as bytes can make it panic; every refusal is a typed error.
//!
//! What is here:
//! - [`RemotingCommand`] and [`FrameDecoder`]: frames with JSON or ROCKETMQ binary headers, incremental
//!   decoding on `BytesMut` with a frame limit checked before allocating, zero-copy bodies.
//! - [`code`]: request, response and language codes, serialize types and MQVersion ordinals as open enums.
//! - [`header`]: typed headers (route, send V1/V2, send response, heartbeat, unregister, transactions, max
//!   offset) to and from ext fields.
//! - [`route`]: route data in standard JSON and in fastjson's unquoted-key dialect.
//! - [`Message`] with its properties codec and names, [`batch`] bodies, the [`store`] format, [`id`]s,
//!   [`validate`] rules, and [`compress`]ion.
//!
//! ```
//! use bytes::BytesMut;
//! use rmq_protocol::header::GetRouteInfoRequestHeader;
//! use rmq_protocol::{FrameDecoder, RemotingCommand, RequestCode};
//!
//! let req = RemotingCommand::with_header(
//!     RequestCode::GET_ROUTEINFO_BY_TOPIC,
//!     &GetRouteInfoRequestHeader::new("TopicTest"),
//! )
//! .with_opaque(1);
//! let mut wire = BytesMut::new();
//! req.encode(&mut wire).unwrap();
//! let back = FrameDecoder::default().decode(&mut wire).unwrap().unwrap();
//! let header: GetRouteInfoRequestHeader = back.decode_header().unwrap();
//! assert_eq!(header.topic, "TopicTest");
//! ```

#![forbid(unsafe_code)]

pub mod acl;
pub mod batch;
pub mod code;
mod command;
pub mod compress;
mod error;
pub mod header;
pub mod id;
mod map;
pub mod message;
pub mod namespace;
pub mod proxy;
mod reader;
pub mod route;
pub mod store;
mod text;
pub mod validate;

pub use code::{LanguageCode, MqVersion, RequestCode, ResponseCode, SerializeType};
pub use command::{
    DEFAULT_MAX_FRAME, FLAG_ONEWAY, FLAG_RESPONSE, FrameDecoder, MAX_HEADER_LEN, RemotingCommand,
};
pub use error::{DecodeError, EncodeError, HeaderError, ValidationError};
pub use id::{OffsetMessageId, UniqIdGenerator};
pub use map::StringMap;
pub use message::Message;
pub use route::TopicRouteData;
pub use store::{MessageExt, decode_store_message};
pub use text::{MsgId, Name};

/// The name of the default topic whose route serves topics the broker will auto-create.
pub const AUTO_CREATE_TOPIC: &str = "TBW102";
