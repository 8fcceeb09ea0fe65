//! A fleet of mock brokers and one mock name server in their own process, for measuring a producer at
//! scale without counting the mocks' memory and CPU as the producer's.
//!
//! `mock-fleet BROKERS TOPICS` starts BROKERS brokers (`broker-0`..) and one more, `broker-silent`, and a
//! name server whose route for topic `S<n>` (n < TOPICS) names brokers `n % BROKERS` and
//! `(n + 1) % BROKERS`, 4 queues each, and whose route for `Silent` names only `broker-silent`, which
//! never answers a send. Every other request is answered SUCCESS. It prints `namesrv <addr>` and serves
//! until its standard input closes. Loopback only.

use std::io::{BufRead, Write};
use std::sync::Arc;

use rmq_protocol::route::{BrokerData, QueueData, TopicRouteData};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_testkit::{Action, MockServer, error, ok, route_response, send_ok};

fn broker(name: &str, addr: &str, route: &mut TopicRouteData) {
    let mut b = BrokerData {
        broker_name: name.into(),
        cluster: "fleet".into(),
        ..Default::default()
    };
    b.broker_addrs.insert(0, addr.into());
    route.broker_datas.push(b);
    route.queue_datas.push(QueueData {
        broker_name: name.into(),
        perm: 6,
        read_queue_nums: 4,
        write_queue_nums: 4,
        topic_sys_flag: 0,
    });
}

fn usage() -> ! {
    eprintln!("usage: mock-fleet BROKERS TOPICS");
    std::process::exit(2);
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, topics] = args.as_slice() else {
        usage()
    };
    let (Ok(brokers), Ok(topics)) = (brokers.parse::<usize>(), topics.parse::<usize>()) else {
        usage()
    };
    if brokers == 0 {
        usage();
    }
    let answer = |r: &RemotingCommand| match r.request_code() {
        RequestCode::SEND_MESSAGE_V2 | RequestCode::SEND_BATCH_MESSAGE => {
            vec![Action::Respond(send_ok(0, 1))]
        }
        _ => vec![Action::Respond(ok())],
    };
    let fleet: Vec<MockServer> = (0..brokers)
        .map(|_| MockServer::start(answer))
        .collect::<Result<_, _>>()?;
    let silent = MockServer::start(|r: &RemotingCommand| match r.request_code() {
        RequestCode::SEND_MESSAGE_V2 => vec![Action::Never],
        _ => vec![Action::Respond(ok())],
    })?;
    let addrs: Arc<Vec<String>> = Arc::new(fleet.iter().map(MockServer::addr).collect());
    let silent_addr = silent.addr();
    let namesrv = MockServer::start(move |r: &RemotingCommand| {
        let topic = r.ext_fields.get("topic").unwrap_or("");
        let mut route = TopicRouteData::default();
        if topic == "Silent" {
            broker("broker-silent", &silent_addr, &mut route);
        } else if let Some(n) = topic
            .strip_prefix('S')
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n < topics)
        {
            for b in [n % brokers, (n + 1) % brokers] {
                if route
                    .broker_datas
                    .iter()
                    .all(|d| d.broker_name != format!("broker-{b}"))
                {
                    broker(&format!("broker-{b}"), &addrs[b], &mut route);
                }
            }
        } else {
            return vec![Action::Respond(error(
                ResponseCode::TOPIC_NOT_EXIST,
                "No topic route info",
            ))];
        }
        vec![Action::Respond(route_response(&route))]
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "namesrv {}", namesrv.addr())?;
    out.flush()?;
    drop(out);
    // Serve until the parent closes our input.
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
    drop(namesrv);
    drop(silent);
    drop(fleet);
    Ok(())
}
