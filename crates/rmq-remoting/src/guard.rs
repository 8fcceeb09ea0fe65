//! Running user code (callbacks, request handlers, hooks) on the client's own threads: a panic in it is
//! caught, logged and counted here, so it never unwinds through a reader, writer, timer or worker thread
//! that every other request depends on.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::error;

/// Panics caught in user code, process-wide.
static CAUGHT: AtomicU64 = AtomicU64::new(0);

/// Runs `f` (user code, named `what` in the log). `None`: it panicked; the panic was logged and counted.
pub fn run_user_code<R>(what: &'static str, f: impl FnOnce() -> R) -> Option<R> {
    // AssertUnwindSafe: after a panic nothing of `f`'s captures is used again by the caller; the state
    // `f` may have left half-changed is the user's own.
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(payload) => {
            CAUGHT.fetch_add(1, Ordering::Relaxed);
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(not a string)".to_owned());
            error!(what, panic = %message, "user code panicked; caught, the thread goes on");
            None
        }
    }
}

/// How many panics [`run_user_code`] has caught in this process (callbacks of `invoke_async_callback`,
/// request handlers, hooks, and the producer's callbacks that run through it).
pub fn user_code_panics() -> u64 {
    CAUGHT.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_caught_and_counted() {
        let before = user_code_panics();
        assert_eq!(run_user_code("test", || 7), Some(7));
        let r: Option<()> = run_user_code("test", || panic!("boom"));
        assert_eq!(r, None);
        assert!(user_code_panics() > before);
    }
}
