//! Asynchronous sends without an async runtime: wait on the handles, run a tiny executor, or use a callback.
//!
//! `cargo run -p rmq-examples --example async_send`

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use rmq::prelude::*;

/// The smallest executor: polls one future, parking the thread until it is woken.
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut f = std::pin::pin!(f);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

fn main() -> Result<(), ProducerError> {
    let mut config = ProducerConfig::from_env()?;
    config.producer_group = "async_group".into();
    let producer = Producer::new(config)?;
    producer.start()?;

    // Many sends in flight at once, then collect the outcomes.
    let handles: Vec<_> = (0..100)
        .map(|i| producer.send_async(&Message::new("AsyncTopic", format!("m{i}"))))
        .collect();
    let stored = handles
        .into_iter()
        .filter(|h| {
            h.wait_timeout(std::time::Duration::from_secs(5))
                .is_some_and(|r| r.is_ok())
        })
        .count();
    println!("{stored} of 100 stored");

    // The same handle is a std Future for any executor.
    let r = block_on(producer.send_async(&Message::new("AsyncTopic", "awaited")))?;
    println!("awaited: {}", r.msg_id);

    // Or a callback (it runs on an rmq thread: keep it short).
    let (tx, rx) = std::sync::mpsc::channel();
    producer.send_async_callback(&Message::new("AsyncTopic", "callback"), move |r| {
        let _ = tx.send(r.map(|r| r.msg_id));
    });
    println!(
        "callback: {:?}",
        rx.recv()
            .map_err(|_| ProducerError::State("callback dropped"))?
    );
    producer.shutdown();
    Ok(())
}
