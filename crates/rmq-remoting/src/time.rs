//! Deadlines from durations callers choose: `Instant + Duration` panics on overflow, and a caller may well
//! pass `Duration::MAX` for "no limit".

use std::time::{Duration, Instant};

/// About a century: the horizon of a deadline asked for as "forever".
const HORIZON: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + timeout`, saturating at a far future instant instead of overflowing.
pub fn deadline_after(now: Instant, timeout: Duration) -> Instant {
    now.checked_add(timeout.min(HORIZON))
        .or_else(|| now.checked_add(Duration::from_secs(3600)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates() {
        let now = Instant::now();
        assert_eq!(
            deadline_after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        assert!(deadline_after(now, Duration::MAX) > now + Duration::from_secs(3600));
    }
}
