//! Heartbeats: every master broker of the cached routes learns the producer group, periodically (all
//! brokers at once, not one after another), as soon as a route names a broker not greeted yet, and the
//! brokers are told when the producer leaves (UNREGISTER_CLIENT).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rmq_protocol::header::{HeartbeatData, UnregisterClientRequestHeader};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::{RemotingClient, RemotingError};
use tracing::{debug, warn};

use crate::routes::Routes;
use crate::stats::Counters;

/// What heartbeats say and to whom they went.
#[derive(Debug)]
pub(crate) struct Heartbeats {
    data: HeartbeatData,
    unregister: UnregisterClientRequestHeader,
    timeout: Duration,
    counters: Arc<Counters>,
    /// The brokers greeted since start.
    greeted: Mutex<HashSet<String>>,
}

fn judge(addr: &str, r: Result<RemotingCommand, RemotingError>) -> bool {
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

impl Heartbeats {
    /// Heartbeats of `client_id` for `group`, each call bounded by `timeout`, counted in `counters`.
    pub(crate) fn new(
        client_id: &str,
        group: &str,
        timeout: Duration,
        counters: Arc<Counters>,
    ) -> Heartbeats {
        Heartbeats {
            data: HeartbeatData::producer(client_id.to_owned(), [group.to_owned()]),
            unregister: UnregisterClientRequestHeader {
                client_id: client_id.to_owned(),
                producer_group: Some(group.to_owned()),
                consumer_group: None,
            },
            timeout,
            counters,
            greeted: Mutex::new(HashSet::new()),
        }
    }

    /// Sends a heartbeat to every master broker of `routes`, concurrently, and waits for the answers.
    /// Returns `(succeeded, failed)`.
    pub(crate) fn round(&self, remoting: &RemotingClient, routes: &Routes) -> (usize, usize) {
        let masters = routes.masters();
        self.greeted.lock().extend(masters.keys().cloned());
        let pending: Vec<_> = masters
            .iter()
            .map(|(addr, names)| {
                let f = remoting.invoke_async(addr, self.data.to_request(), self.timeout);
                (addr, names, f)
            })
            .collect();
        let (mut ok, mut failed) = (0, 0);
        let now = std::time::Instant::now();
        for (addr, names, f) in pending {
            if judge(addr, f.wait()) {
                ok += 1;
                // A broker that answers a heartbeat is reachable: its breaker, if open, turns half-open.
                for broker in names {
                    routes.router().health().report_reachable(broker, now);
                }
            } else {
                failed += 1;
            }
        }
        self.counters.record_heartbeats(ok, failed);
        (ok, failed)
    }

    /// Greets the brokers among `masters` that have had no heartbeat yet, without waiting for their
    /// answers (a route just fetched names them; a send to them may follow at once).
    pub(crate) fn greet_new(
        &self,
        remoting: &RemotingClient,
        masters: impl IntoIterator<Item = String>,
    ) {
        let fresh: Vec<String> = {
            let mut greeted = self.greeted.lock();
            masters
                .into_iter()
                .filter(|a| greeted.insert(a.clone()))
                .collect()
        };
        for addr in fresh {
            let counters = self.counters.clone();
            let a = addr.clone();
            remoting.invoke_async_callback(&addr, self.data.to_request(), self.timeout, move |r| {
                let ok = judge(&a, r);
                counters.record_heartbeats(usize::from(ok), usize::from(!ok));
            });
        }
    }

    /// Tells every broker of `routes` that the producer leaves, concurrently, waiting for the answers.
    pub(crate) fn unregister_all(&self, remoting: &RemotingClient, routes: &Routes) {
        let pending: Vec<_> = routes
            .broker_addrs(false)
            .into_iter()
            .map(|addr| {
                let req =
                    RemotingCommand::with_header(RequestCode::UNREGISTER_CLIENT, &self.unregister);
                let f = remoting.invoke_async(&addr, req, self.timeout);
                (addr, f)
            })
            .collect();
        for (addr, f) in pending {
            if let Err(e) = f.wait() {
                debug!(broker = %addr, error = %e, "unregister failed");
            }
        }
    }
}
