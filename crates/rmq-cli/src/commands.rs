//! `rmq send` and `rmq route`.

use rmq::prelude::*;
use rmq::producer::ProducerError;
use rmq::protocol::route::perm;

use crate::{Cluster, SendArgs};

/// A failure with its kind, for the exit message.
pub(crate) fn describe(e: &ProducerError) -> String {
    let kind = match e {
        ProducerError::Config { .. } => "config",
        ProducerError::State(_) => "state",
        ProducerError::Validation(_) | ProducerError::QueueTopicMismatch { .. } => "validation",
        ProducerError::RouteNotFound { .. } | ProducerError::Route(_) => "route",
        ProducerError::Broker { .. } | ProducerError::BadResponse { .. } => "broker",
        ProducerError::AttemptsExhausted { .. } => "attempts exhausted",
        ProducerError::Overloaded { .. } => "overloaded",
        ProducerError::Denied { .. } => "access",
        ProducerError::Remoting(_) => "remoting",
        _ => "send",
    };
    format!("{kind} error: {e}")
}

fn started(c: &Cluster, group: &str) -> Result<Producer, String> {
    let p = Producer::new(c.config(group)).map_err(|e| describe(&e))?;
    p.start().map_err(|e| describe(&e))?;
    Ok(p)
}

pub(crate) fn send(c: &Cluster, a: SendArgs) -> Result<(), String> {
    // The message of `body`, with the keys, tag and properties given.
    let message = |body: bytes::Bytes| -> Result<Message, String> {
        let mut msg = Message::new(a.topic.clone(), body);
        if !a.keys.is_empty() {
            msg.set_keys(&a.keys);
        }
        if let Some(t) = &a.tags {
            msg.set_tags(t);
        }
        for (k, v) in &a.props {
            msg.put_user_property(k, v)
                .map_err(|e| format!("validation error: {e}"))?;
        }
        Ok(msg)
    };
    let bodies: Box<dyn Iterator<Item = Result<bytes::Bytes, String>>> =
        match (&a.body, &a.file, a.stdin) {
            (Some(b), _, _) => {
                let b = bytes::Bytes::from(b.clone());
                Box::new(std::iter::repeat_n(Ok(b), a.count as usize))
            }
            (None, Some(f), _) => {
                let b: bytes::Bytes = std::fs::read(f)
                    .map_err(|e| format!("cannot read {}: {e}", f.display()))?
                    .into();
                Box::new(std::iter::repeat_n(Ok(b), a.count as usize))
            }
            // One message per line of standard input (empty lines skipped), as they arrive.
            (None, None, true) => Box::new(
                std::io::stdin()
                    .lines()
                    .map(|l| l.map_err(|e| format!("cannot read standard input: {e}")))
                    .filter(|l| l.as_ref().map_or(true, |l| !l.is_empty()))
                    .map(|l| l.map(bytes::Bytes::from)),
            ),
            (None, None, false) => {
                return Err("give the body with --body TEXT, --file PATH or --stdin".into());
            }
        };
    // Refuse a bad property before connecting.
    message(bytes::Bytes::from_static(b"x"))?;
    let p = started(c, &a.group)?;
    let mut failure = None;
    for body in bodies {
        let sent = body
            .and_then(&message)
            .and_then(|m| p.send_sync(&m).map_err(|e| describe(&e)));
        match sent {
            Ok(r) => println!(
                "{:?} msgId={} offsetMsgId={} broker={} queue={} offset={} attempts={}",
                r.status,
                r.msg_id,
                r.offset_msg_id,
                r.broker_name,
                r.queue_id,
                r.queue_offset,
                r.attempts
            ),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    p.shutdown();
    failure.map_or(Ok(()), Err)
}

pub(crate) fn route(c: &Cluster, topic: &str) -> Result<(), String> {
    let p = started(c, "rmq_cli_route")?;
    let result = (|| {
        let (route, derived) = p.topic_route(topic).map_err(|e| describe(&e))?;
        println!("name server route for {topic}:");
        println!(
            "{}",
            serde_json::to_string_pretty(&*route).map_err(|e| e.to_string())?
        );
        if derived {
            println!(
                "(the topic does not exist yet: this is the TBW102 route; the broker creates the topic on the first send)"
            );
        }
        println!("\nbrokers:");
        for b in &route.broker_datas {
            let addrs: Vec<String> = b
                .broker_addrs
                .iter()
                .map(|(id, a)| match c.advertised(a) {
                    Some(adv) => format!("{id}={a} (advertised {adv})"),
                    None => format!("{id}={a}"),
                })
                .collect();
            println!(
                "  {} (cluster {}): {}",
                b.broker_name,
                b.cluster,
                addrs.join(" ")
            );
        }
        for q in &route.queue_datas {
            println!(
                "  {}: perm {} ({}) read {} write {}",
                q.broker_name,
                q.perm,
                perm::to_string(q.perm),
                q.read_queue_nums,
                q.write_queue_nums
            );
        }
        let queues = p.fetch_publish_queues(topic).map_err(|e| describe(&e))?;
        println!("\npublish queues ({}):", queues.len());
        for q in &queues {
            let addr = route
                .broker(&q.broker_name)
                .and_then(|b| b.master_addr())
                .unwrap_or("-");
            println!("  {} queue {} master {addr}", q.broker_name, q.queue_id);
        }
        let (ok, failed) = p.send_heartbeat_to_all_broker();
        println!("\nheartbeat: {ok} master(s) answered, {failed} failed");
        for b in p.get_stats().router.brokers {
            println!(
                "  {}: {:?}, {} ok / {} failed attempts",
                b.broker, b.state, b.successes, b.failures
            );
        }
        Ok(())
    })();
    p.shutdown();
    result
}
