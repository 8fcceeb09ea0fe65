//! Heartbeats: every master broker of the cached routes learns the producer group, periodically (all
//! brokers at once, not one after another), as soon as a route names a broker not greeted yet, and the
//! brokers are told when the producer leaves (UNREGISTER_CLIENT).

use std::collections::HashSet;

use parking_lot::Mutex;
use rmq_protocol::header::{HeartbeatData, UnregisterClientRequestHeader};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use tracing::{debug, warn};

use crate::core::Core;

/// The brokers greeted with a heartbeat since start.
#[derive(Debug, Default)]
pub(crate) struct Heartbeats {
    greeted: Mutex<HashSet<String>>,
}

fn data(core: &Core) -> HeartbeatData {
    HeartbeatData::producer(
        core.client_id().to_owned(),
        [core.config().producer_group.clone()],
    )
}

fn judge(addr: &str, r: Result<RemotingCommand, rmq_remoting::RemotingError>) -> bool {
    match r {
        Ok(r) if r.response_code() == ResponseCode::SUCCESS => true,
        Ok(r) => {
            warn!(broker = %addr, code = %r.response_code(), "heartbeat refused");
            false
        }
        Err(e) => {
            warn!(broker = %addr, error = %e, "heartbeat failed");
            false
        }
    }
}

/// Sends a heartbeat to every master broker of the cached routes, concurrently, and waits for the
/// answers. Returns `(succeeded, failed)`.
pub(crate) fn heartbeat_all(core: &Core) -> (usize, usize) {
    let data = data(core);
    let timeout = core.config().mq_client_api_timeout;
    let addrs = core.routes().broker_addrs(true);
    core.heartbeats()
        .greeted
        .lock()
        .extend(addrs.iter().cloned());
    let pending: Vec<_> = addrs
        .into_iter()
        .map(|addr| {
            let f = core
                .remoting()
                .invoke_async(&addr, data.to_request(), timeout);
            (addr, f)
        })
        .collect();
    let (mut ok, mut failed) = (0, 0);
    for (addr, f) in pending {
        if judge(&addr, f.wait()) {
            ok += 1;
        } else {
            failed += 1;
        }
    }
    core.counters().record_heartbeats(ok, failed);
    (ok, failed)
}

/// Greets the master brokers of the cached routes that have had no heartbeat yet, without waiting for
/// their answers (a route just fetched names them; a send to them may follow at once).
pub(crate) fn greet_new_brokers(core: &Core) {
    let fresh: Vec<String> = {
        let mut greeted = core.heartbeats().greeted.lock();
        core.routes()
            .broker_addrs(true)
            .into_iter()
            .filter(|a| greeted.insert(a.clone()))
            .collect()
    };
    if fresh.is_empty() {
        return;
    }
    let data = data(core);
    for addr in fresh {
        let counters = core.counters().clone();
        let a = addr.clone();
        core.remoting().invoke_async_callback(
            &addr,
            data.to_request(),
            core.config().mq_client_api_timeout,
            move |r| {
                let ok = judge(&a, r);
                counters.record_heartbeats(usize::from(ok), usize::from(!ok));
            },
        );
    }
}

/// Tells every broker of the cached routes that the producer leaves, concurrently, waiting for the
/// answers (each at most `mq_client_api_timeout`).
pub(crate) fn unregister_all(core: &Core) {
    let header = UnregisterClientRequestHeader {
        client_id: core.client_id().to_owned(),
        producer_group: Some(core.config().producer_group.clone()),
        consumer_group: None,
    };
    let pending: Vec<_> = core
        .routes()
        .broker_addrs(false)
        .into_iter()
        .map(|addr| {
            let req = RemotingCommand::with_header(RequestCode::UNREGISTER_CLIENT, &header);
            let f = core
                .remoting()
                .invoke_async(&addr, req, core.config().mq_client_api_timeout);
            (addr, f)
        })
        .collect();
    for (addr, f) in pending {
        if let Err(e) = f.wait() {
            debug!(broker = %addr, error = %e, "unregister failed");
        }
    }
}
