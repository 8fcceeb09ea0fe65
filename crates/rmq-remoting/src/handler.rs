//! Handlers for requests the server sends to the client (CHECK_TRANSACTION_STATE, PUSH_REPLY_MESSAGE_TO_CLIENT).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use rmq_protocol::RemotingCommand;

/// Handles one kind of server-initiated request. Runs on the connection's reader thread: it must not
/// block (hand long work to your own thread). Return the response for a two-way request, or `None`; the
/// response's opaque and flag are set for you, and nothing is sent for a oneway request.
pub trait RequestHandler: Send + Sync {
    /// Handles `request` from the server at `addr`.
    fn handle(&self, addr: &str, request: RemotingCommand) -> Option<RemotingCommand>;
}

impl<F> RequestHandler for F
where
    F: Fn(&str, RemotingCommand) -> Option<RemotingCommand> + Send + Sync,
{
    fn handle(&self, addr: &str, request: RemotingCommand) -> Option<RemotingCommand> {
        self(addr, request)
    }
}

#[derive(Default)]
pub(crate) struct Handlers {
    by_code: RwLock<HashMap<i32, Arc<dyn RequestHandler>>>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handlers")
            .field("codes", &self.by_code.read().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Handlers {
    pub(crate) fn register(&self, code: i32, handler: Arc<dyn RequestHandler>) {
        self.by_code.write().insert(code, handler);
    }

    pub(crate) fn get(&self, code: i32) -> Option<Arc<dyn RequestHandler>> {
        self.by_code.read().get(&code).cloned()
    }
}
