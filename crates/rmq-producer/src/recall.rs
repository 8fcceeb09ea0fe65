//! Recall: withdrawing a timer message before its time (RECALL_MESSAGE, Apache RocketMQ 5.3.2+ with
//! `recallMessageEnable=true`), blocking or as a future.

use std::sync::Arc;

use rmq_protocol::header::{RecallHandle, RecallMessageRequestHeader};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode, ValidationError};
use rmq_remoting::RemotingError;

use crate::core::Core;
use crate::error::ProducerError;
use crate::future::Pending;
use crate::workers::Closed;

/// A recall checked and ready: the request, the broker it goes to, the message it names.
struct Recall {
    topic: String,
    handle: RecallHandle,
    request: RemotingCommand,
}

/// Checks `handle` against `topic` (no I/O) and builds the request.
fn prepare(core: &Core, topic: &str, handle: &str) -> Result<Recall, ProducerError> {
    core.check_running()?;
    let config = core.config();
    let h = RecallHandle::decode(handle)?;
    let wire = config.wire_name(topic);
    if h.topic != wire {
        return Err(ProducerError::Validation(ValidationError::RecallHandle {
            handle: h.topic,
            reason: "the handle names another topic",
        }));
    }
    let header = RecallMessageRequestHeader {
        producer_group: Some(config.wire_group().into_owned()),
        topic: wire.to_string(),
        recall_handle: handle.to_owned(),
        broker_name: Some(h.broker_name.clone()),
    };
    Ok(Recall {
        topic: wire.into_owned(),
        request: RemotingCommand::with_header(RequestCode::RECALL_MESSAGE, &header),
        handle: h,
    })
}

/// The recalled message's UNIQ_KEY from the broker's answer.
fn answer(
    handle: RecallHandle,
    resp: Result<RemotingCommand, RemotingError>,
) -> Result<String, ProducerError> {
    let resp = resp?;
    if resp.response_code() != ResponseCode::SUCCESS {
        return Err(ProducerError::Broker {
            broker: handle.broker_name,
            code: resp.response_code(),
            remark: resp.remark,
        });
    }
    Ok(resp
        .ext_fields
        .get("msgId")
        .map_or(handle.message_id, str::to_owned))
}

/// [`crate::Producer::recall`].
pub(crate) fn recall(core: &Core, topic: &str, handle: &str) -> Result<String, ProducerError> {
    send_blocking(core, prepare(core, topic, handle)?)
}

/// Sends `r` and waits for the answer (fetching the route and connecting if needed).
fn send_blocking(core: &Core, r: Recall) -> Result<String, ProducerError> {
    core.ensure_route(&r.topic)?;
    let addr = core.routes().master_of(&r.topic, &r.handle.broker_name)?;
    let timeout = core.config().send_msg_timeout;
    answer(
        r.handle,
        core.remoting().invoke_sync(&addr, r.request, timeout),
    )
}

/// [`crate::Producer::recall_async`]: sent from this thread when the route is cached and the broker
/// connected, else from the pool (which may fetch the route and connect).
pub(crate) fn recall_async(core: &Arc<Core>, topic: &str, handle: &str) -> Pending<String> {
    let r = match prepare(core, topic, handle) {
        Ok(r) => r,
        Err(e) => return Pending::ready(Err(e)),
    };
    let (future, cell) = Pending::new();
    let timeout = core.config().send_msg_timeout;
    // Sent from here when the route is cached and its broker connected; else (or should the
    // connection be gone by now) from the pool.
    let r = match core.routes().master_of(&r.topic, &r.handle.broker_name) {
        Ok(addr) => {
            let sent = core.remoting().invoke_async_callback_connected(
                &addr,
                r.request,
                timeout,
                (cell.clone(), r.handle.clone()),
                |(done, handle), resp| {
                    done.complete(answer(handle, resp), || {});
                },
            );
            match sent {
                Ok(()) => return future,
                Err((request, _)) => Recall {
                    request: *request,
                    ..r
                },
            }
        }
        Err(_) => r,
    };
    let c = core.clone();
    core.pool().push(Box::new(move |closed: Closed| {
        let r = if closed.0 {
            Err(ProducerError::State("shut down"))
        } else {
            send_blocking(&c, r)
        };
        cell.complete(r, || {});
    }));
    future
}
