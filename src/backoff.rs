//! How long to wait after repeated transient failures — of a Discord sink, an IMAP connection,
//! a token endpoint: one rule, so every retry loop of the agent backs off alike.

use std::time::Duration;

/// Backoff after `failures` consecutive transient failures: 1 s doubling to 5 min, scaled by
/// `jitter` ∈ [0, 1) into [50 %, 100 %) so many agents do not retry in step.
pub(crate) fn backoff(failures: u32, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let base = Duration::from_secs(1u64 << exp).min(Duration::from_secs(300));
    base.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_five_minutes_with_jitter() {
        assert_eq!(backoff(1, 0.999_999).as_millis(), 999);
        assert_eq!(backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(4, 0.0), Duration::from_secs(4));
        assert_eq!(backoff(40, 0.0), Duration::from_secs(150));
        assert!(backoff(40, 0.999) < Duration::from_secs(300));
    }
}
