//! rmq-remoting against the real servers.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use rmq_it::Cluster;
use rmq_protocol::header::GetRouteInfoRequestHeader;
use rmq_protocol::{
    AUTO_CREATE_TOPIC, RemotingCommand, RequestCode, ResponseCode, SerializeType, TopicRouteData,
};
use rmq_remoting::{RemotingClient, RemotingConfig};

#[test]
fn route_request_through_the_connection_layer() {
    let Some(c) = Cluster::from_env("route_request_through_the_connection_layer") else {
        return;
    };
    for ty in [SerializeType::JSON, SerializeType::ROCKETMQ] {
        let client = RemotingClient::new(RemotingConfig {
            serialize_type: ty,
            ..Default::default()
        })
        .unwrap();
        let ns = c.namesrv.to_string();
        // Many concurrent requests on one connection, answered by the real name server.
        let futures: Vec<_> = (0..64)
            .map(|_| {
                let req = RemotingCommand::with_header(
                    RequestCode::GET_ROUTEINFO_BY_TOPIC,
                    &GetRouteInfoRequestHeader::new(AUTO_CREATE_TOPIC),
                );
                client.invoke_async(&ns, req, Duration::from_secs(5))
            })
            .collect();
        for f in futures {
            let resp = f.wait().unwrap();
            assert_eq!(
                resp.response_code(),
                ResponseCode::SUCCESS,
                "{ty}: {:?}",
                resp.remark
            );
            let route = TopicRouteData::decode(&resp.body).unwrap();
            assert_eq!(route.broker_datas.len(), c.brokers);
        }
        assert_eq!(client.connection_count(), 1);
        client.shutdown();
    }
}
