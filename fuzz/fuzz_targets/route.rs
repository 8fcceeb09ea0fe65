//! Route JSON in either dialect; what parses must survive a standard-JSON round trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rmq_protocol::TopicRouteData;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = TopicRouteData::decode(data) {
        assert_eq!(TopicRouteData::decode(&r.encode()).expect("own output parses"), r);
    }
});
