//! The command line's argument handling: usage errors exit with 2, failed operations with 1 and say why.

use std::process::Command;

fn rmq(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(args)
        .env_remove("RMQ_NAMESRV_ADDR")
        .env_remove("RMQ_BROKER_ADDR_OVERRIDE")
        .env("NAMESRV_ADDR", "127.0.0.1:1")
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn usage_errors_exit_with_2() {
    for args in [
        &["frobnicate"][..],
        &["send"],
        &["send", "--topic", "T", "--count", "0", "--body", "x"],
        &["send", "--topic", "T", "--body", "x", "--file", "f"],
        &["send", "--topic", "T", "--body", "x", "--prop", "novalue"],
        &["bench", "produce", "--mode", "sideways"],
        &["bench", "produce", "-w", "0"],
        &["route"],
        &["route", "T", "--broker-addr-override", "10.0.0.1:10911"],
    ] {
        let (code, text) = rmq(args);
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(
            text.contains("Usage") || text.contains("error") || text.contains("invalid"),
            "{args:?}: {text}"
        );
    }
}

#[test]
fn failures_exit_with_1_and_name_the_cause() {
    let (code, text) = rmq(&["send", "--topic", "T"]);
    assert_eq!(code, 1);
    assert!(text.contains("--body"), "{text}");
    let (code, text) = rmq(&["send", "--topic", "bad topic!", "--body", "x"]);
    assert_eq!(code, 1);
    assert!(text.contains("validation error"), "{text}");
    // NAMESRV_ADDR is used when --namesrv is absent: nothing listens on port 1.
    let (code, text) = rmq(&["send", "--topic", "T", "--body", "x"]);
    assert_eq!(code, 1);
    assert!(text.contains("127.0.0.1:1"), "{text}");
    let (code, text) = rmq(&[
        "send",
        "--topic",
        "T",
        "--body",
        "x",
        "--prop",
        "UNIQ_KEY=1",
    ]);
    assert_eq!(code, 1);
    assert!(text.contains("reserved"), "{text}");
}

#[test]
fn help_lists_the_commands() {
    let (code, text) = rmq(&["--help"]);
    assert_eq!(code, 0);
    for c in ["send", "route", "bench"] {
        assert!(text.contains(c), "{text}");
    }
}

#[test]
fn route_shows_the_dialed_and_the_advertised_broker_address() {
    use rmq_testkit::{Action, MockServer, ok};
    let broker = MockServer::start(|_: &rmq_protocol::RemotingCommand| vec![Action::Respond(ok())])
        .expect("broker");
    // Advertised: a loopback port nothing listens on; dialed: the mock.
    let ns = namesrv_routing_to("127.0.0.1:1");
    let dial = broker.addr();
    let (code, text) = rmq(&[
        "route",
        "T",
        "--namesrv",
        &ns.addr(),
        "--broker-addr-override",
        &format!("127.0.0.1:1={dial}"),
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("0={dial} (advertised 127.0.0.1:1)")),
        "{text}"
    );
    assert!(text.contains("1 master(s) answered"), "{text}");
}

#[test]
fn the_secret_key_is_never_printed() {
    use rmq_protocol::ResponseCode;
    use rmq_testkit::{Action, MockServer, error};
    // A name server that refuses as a 5.x broker does when the signature is wrong.
    let ns = MockServer::start(|_: &rmq_protocol::RemotingCommand| {
        vec![Action::Respond(error(
            ResponseCode::NO_PERMISSION,
            "check signature failed.",
        ))]
    })
    .expect("name server");
    let secret = "Sup3r-Secret-Value";
    let run = |args: &[&str], env_secret: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rmq"));
        cmd.args(args).env_remove("RMQ_SECRET_KEY");
        if env_secret {
            cmd.env("RMQ_SECRET_KEY", secret)
                .env("RMQ_ACCESS_KEY", "ak");
        }
        let out = cmd.output().expect("runs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let addr = ns.addr();
    let send = ["send", "--topic", "T", "--body", "x", "--namesrv", &addr];
    let mut flags = vec!["--access-key", "ak", "--secret-key", secret];
    flags.extend(send);
    for (text, what) in [
        (run(&flags, false), "send with flags"),
        (run(&send, true), "send with RMQ_SECRET_KEY"),
        (run(&["--help"], true), "--help with RMQ_SECRET_KEY"),
        (run(&["send", "--help"], true), "send --help"),
    ] {
        assert!(!text.is_empty(), "{what}: no output");
        assert!(!text.contains(secret), "{what} printed the secret: {text}");
    }
    // And the access key alone is a usage error that does not echo anything secret.
    let text = run(
        &["--access-key", "ak", "route", "T", "--namesrv", &addr],
        false,
    );
    assert!(text.contains("--secret-key"), "{text}");
}

/// A mock broker answering sends with SEND_OK, and a name server routing every topic to it.
fn mock_cluster() -> (rmq_testkit::MockServer, rmq_testkit::MockServer) {
    use rmq_protocol::{RemotingCommand, RequestCode};
    use rmq_testkit::{Action, MockServer, ok, send_ok};
    let broker = MockServer::start(|r: &RemotingCommand| {
        if r.request_code() == RequestCode::SEND_MESSAGE_V2 {
            vec![Action::Respond(send_ok(0, 1))]
        } else {
            vec![Action::Respond(ok())]
        }
    })
    .expect("broker");
    let ns = namesrv_routing_to(&broker.addr());
    (broker, ns)
}

/// A mock name server whose route for every topic names one broker, `broker-a`, at `addr`.
fn namesrv_routing_to(addr: &str) -> rmq_testkit::MockServer {
    use rmq_protocol::RemotingCommand;
    use rmq_protocol::route::{BrokerData, QueueData, TopicRouteData};
    use rmq_testkit::{Action, MockServer, route_response};
    let mut route = TopicRouteData::default();
    let mut b = BrokerData {
        broker_name: "broker-a".into(),
        cluster: "C".into(),
        ..Default::default()
    };
    b.broker_addrs.insert(0, addr.to_owned());
    route.broker_datas.push(b);
    route.queue_datas.push(QueueData {
        broker_name: "broker-a".into(),
        perm: 6,
        read_queue_nums: 1,
        write_queue_nums: 1,
        topic_sys_flag: 0,
    });
    MockServer::start(move |_: &RemotingCommand| vec![Action::Respond(route_response(&route))])
        .expect("name server")
}

#[test]
fn bench_writes_a_plot() {
    let (_broker, ns) = mock_cluster();
    let path = std::env::temp_dir().join(format!("rmq-plot-{}.svg", std::process::id()));
    let (code, text) = rmq(&[
        "bench",
        "produce",
        "--namesrv",
        &ns.addr(),
        "--mode",
        "async",
        "--duration",
        "2",
        "--warmup",
        "10",
        "--plot",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    let svg = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(svg.starts_with("<svg"), "{svg}");
    assert_eq!(svg.matches("<polyline").count(), 3, "{svg}");
    assert!(text.contains("Send TPS"), "{text}");
}

#[test]
fn send_reads_one_message_per_line_of_stdin() {
    use rmq_protocol::RequestCode;
    use std::io::Write as _;
    let (broker, ns) = mock_cluster();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(["send", "--topic", "T", "--stdin", "--namesrv", &ns.addr()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"first\n\nsecond\nthird\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("SendOk")).count(),
        3,
        "{text}"
    );
    let bodies: Vec<Vec<u8>> = broker
        .received()
        .into_iter()
        .filter(|r| r.request_code() == RequestCode::SEND_MESSAGE_V2)
        .map(|r| r.body.to_vec())
        .collect();
    assert_eq!(
        bodies,
        [b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]
    );
    let (code, text) = rmq(&["send", "--topic", "T", "--stdin", "--body", "x"]);
    assert_eq!(code, 2, "{text}");
}
