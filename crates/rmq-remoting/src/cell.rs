//! [`Completion`]: a value delivered exactly once to whoever waits for it: a blocked thread, a polled
//! future (any executor, no runtime) or a callback. Every pending outcome in rmq is one of these: a
//! request's response, a send's result, a reply, a place in a producer's in-flight bound.

use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// A callback that takes the value instead of a waiter.
type OnDone<T> = Box<dyn FnOnce(T) + Send + 'static>;

struct State<T> {
    value: Option<T>,
    done: bool,
    waker: Option<Waker>,
    /// The callback and the label its panics are reported under.
    callback: Option<(&'static str, OnDone<T>)>,
}

/// How [`Completion::complete`] went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completed {
    /// The completion had its value already; this one was dropped.
    AlreadyDone,
    /// The value was stored for a waiter (woken) or given to the callback, which returned.
    Delivered,
    /// The callback panicked (caught, logged and counted by [`crate::run_user_code`]).
    CallbackPanicked,
}

/// One value, delivered once. Share it in an `Arc` between the side that completes it and the side
/// that waits: [`Completion::wait_until`] from a thread, [`Completion::poll_take`] from a future, or a
/// callback given at creation.
pub struct Completion<T> {
    state: Mutex<State<T>>,
    /// Set once the value is delivered, for lock-free checks while spinning.
    done: AtomicBool,
    cond: Condvar,
}

impl<T> std::fmt::Debug for Completion<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("done", &self.is_done())
            .finish()
    }
}

impl<T> Default for Completion<T> {
    fn default() -> Self {
        Completion::new()
    }
}

impl<T> Completion<T> {
    /// A completion whose value a waiter or a future takes.
    pub fn new() -> Completion<T> {
        Completion {
            state: Mutex::new(State {
                value: None,
                done: false,
                waker: None,
                callback: None,
            }),
            done: AtomicBool::new(false),
            cond: Condvar::new(),
        }
    }

    /// A completion whose value goes to `callback`, run on the completing thread; a panic in it is
    /// caught and reported under `label`.
    pub fn with_callback(
        label: &'static str,
        callback: impl FnOnce(T) + Send + 'static,
    ) -> Completion<T> {
        let c = Completion::new();
        c.state.lock().callback = Some((label, Box::new(callback)));
        c
    }

    /// Delivers `value` if nothing was delivered before. `before` runs exactly when this call delivers,
    /// before any waiter, waker or callback sees the value (to give back a resource first).
    pub fn complete(&self, value: T, before: impl FnOnce()) -> Completed {
        let mut st = self.state.lock();
        if st.done {
            return Completed::AlreadyDone;
        }
        st.done = true;
        before();
        if let Some((label, cb)) = st.callback.take() {
            drop(st);
            self.done.store(true, Ordering::Release);
            // The callback is the user's: its panic must not unwind through a reader or timer thread.
            return match crate::guard::run_user_code(label, || cb(value)) {
                Some(()) => Completed::Delivered,
                None => Completed::CallbackPanicked,
            };
        }
        st.value = Some(value);
        let waker = st.waker.take();
        drop(st);
        self.done.store(true, Ordering::Release);
        self.cond.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
        Completed::Delivered
    }

    /// Whether the value was delivered (it may have been taken since).
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Polls on the CPU for at most `limit` until the value is delivered (worth it only when it is
    /// expected within microseconds).
    pub fn spin(&self, limit: Duration) {
        let until = Instant::now() + limit;
        while !self.is_done() && Instant::now() < until {
            std::hint::spin_loop();
        }
    }

    /// Blocks until the value is delivered or `deadline` passes (`None`: no deadline).
    /// `Poll::Pending`: the deadline passed first; `Poll::Ready(None)`: delivered, but taken already
    /// (by another waiter or the callback).
    pub fn wait_until(&self, deadline: Option<Instant>) -> Poll<Option<T>> {
        let mut st = self.state.lock();
        while !st.done {
            match deadline {
                None => self.cond.wait(&mut st),
                Some(d) => {
                    if self.cond.wait_until(&mut st, d).timed_out() && !st.done {
                        return Poll::Pending;
                    }
                }
            }
        }
        Poll::Ready(st.value.take())
    }

    /// The future side: the value once delivered (`Ready(None)` if it was taken already); until then
    /// `cx`'s waker is kept and woken at delivery.
    pub fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut st = self.state.lock();
        if st.done {
            return Poll::Ready(st.value.take());
        }
        match &st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn delivered_once_to_a_waiting_thread() {
        let c = Arc::new(Completion::new());
        let c2 = c.clone();
        let t = std::thread::spawn(move || c2.wait_until(None));
        assert_eq!(c.complete(1, || {}), Completed::Delivered);
        assert_eq!(
            c.complete(2, || panic!("before runs only once")),
            Completed::AlreadyDone
        );
        assert_eq!(t.join().unwrap(), Poll::Ready(Some(1)));
        assert_eq!(c.wait_until(None), Poll::Ready(None), "taken already");
    }

    #[test]
    fn a_deadline_ends_the_wait() {
        let c = Completion::<u8>::new();
        let t0 = Instant::now();
        assert_eq!(
            c.wait_until(Some(t0 + Duration::from_millis(20))),
            Poll::Pending
        );
        assert!(t0.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn a_callback_takes_the_value_and_its_panic_is_caught() {
        let seen = Arc::new(AtomicUsize::new(0));
        let s = seen.clone();
        let c = Completion::with_callback("test", move |v: usize| {
            s.store(v, Ordering::SeqCst);
        });
        assert_eq!(c.complete(7, || {}), Completed::Delivered);
        assert_eq!(seen.load(Ordering::SeqCst), 7);
        let p = Completion::with_callback("test", |_: u8| panic!("user code"));
        assert_eq!(p.complete(1, || {}), Completed::CallbackPanicked);
    }

    #[test]
    fn a_polled_future_is_woken() {
        struct Flag(AtomicBool);
        impl std::task::Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let c = Completion::new();
        assert_eq!(c.poll_take(&mut cx), Poll::Pending);
        c.complete("v", || {});
        assert!(flag.0.load(Ordering::SeqCst));
        assert_eq!(c.poll_take(&mut cx), Poll::Ready(Some("v")));
    }
}
