//! The limit Discord does not announce: about 30 messages per 60 s per channel, shared by every
//! webhook posting into it, answered with a `shared`-scope 429 (no header warns of it before).
//! Pure; the guard passes `now`.
//!
//! It is learned from the 429 itself: the messages accepted since the first one of the current
//! window are the limit, and the 429's `retry_after` says when the window ends, so the window
//! runs from that first message to then. From then on each window of that length takes at most
//! that many messages, and the next waits (with a small margin) for the window to pass, so a
//! steady backlog meets one shared 429 per sink while the limit holds, not one per window. A
//! later 429 teaches the limit again; without one for [`MAX_WINDOW`] the limit is forgotten.

use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// A window longer than this is not Discord's channel limit (60 s): start counting afresh.
const MAX_WINDOW: Duration = Duration::from_secs(600);

#[derive(Debug, Default, Clone, Copy)]
struct Learned {
    limit: Option<u32>,
    window: Option<Duration>,
    /// The first message accepted in the current window.
    start: Option<Instant>,
    count: u32,
    /// When the last `shared` 429 taught the limit: forgotten [`MAX_WINDOW`] later, so a limit
    /// learned while other webhooks crowded the channel does not slow this one for ever.
    learned_at: Option<Instant>,
}

/// Slack past the learned end of a window: our clock starts a little before Discord's.
fn margin(window: Duration) -> Duration {
    window / 50 + Duration::from_millis(20)
}

impl Learned {
    fn window_over(&self, now: Instant) -> bool {
        match (self.start, self.window) {
            (Some(s), Some(w)) => now >= s + w + margin(w),
            (Some(s), None) => now >= s + MAX_WINDOW,
            (None, _) => true,
        }
    }
}

/// Learned shared limits per webhook/channel.
#[derive(Debug, Default)]
pub struct SharedLimits {
    by: HashMap<String, Learned>,
}

impl SharedLimits {
    /// When a message to `resource` may go, if not now.
    pub fn wait(&mut self, resource: &str, now: Instant) -> Option<Instant> {
        let l = self.by.get_mut(resource)?;
        if l.learned_at.is_some_and(|t| now >= t + MAX_WINDOW) {
            *l = Learned::default();
            return None;
        }
        if l.window_over(now) {
            l.start = None;
            l.count = 0;
            return None;
        }
        let (limit, window, start) = (l.limit?, l.window?, l.start?);
        (l.count >= limit).then(|| start + window + margin(window))
    }

    /// A message to `resource` was accepted at `now`.
    pub fn sent(&mut self, resource: &str, now: Instant) {
        let l = self.by.entry(resource.to_string()).or_default();
        if l.window_over(now) {
            l.start = Some(now);
            l.count = 0;
        }
        l.count += 1;
    }

    /// A `shared` 429 for `resource` at `now`: learn the limit and the window.
    pub fn limited(&mut self, resource: &str, now: Instant, retry_after: Duration) {
        let l = self.by.entry(resource.to_string()).or_default();
        if let Some(start) = l.start.filter(|_| l.count > 0) {
            let window = (now + retry_after).saturating_duration_since(start);
            if window <= MAX_WINDOW {
                l.limit = Some(l.count);
                l.window = Some(window);
                l.learned_at = Some(now);
            }
        }
        l.start = None;
        l.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn after_one_shared_429_each_window_takes_the_limit_then_waits() {
        let mut s = SharedLimits::default();
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        for i in 0..30 {
            assert_eq!(s.wait("w", ms(i * 10)), None, "nothing known yet");
            s.sent("w", ms(i * 10));
        }
        // The 31st at 300 ms: the window (from 0) ends at 3 s.
        s.limited("w", ms(300), Duration::from_millis(2700));
        // After the wait, a new window: 30 go, the 31st waits for its end plus the margin.
        for i in 0..30 {
            assert_eq!(s.wait("w", ms(3000 + i * 10)), None);
            s.sent("w", ms(3000 + i * 10));
        }
        let until = s.wait("w", ms(3300)).expect("the 31st waits");
        assert_eq!(until, ms(3000 + 3000 + 80));
        assert_eq!(s.wait("w", ms(6080)), None, "a new window");
        assert_eq!(s.wait("other", ms(3300)), None, "per webhook");
    }

    #[tokio::test(start_paused = true)]
    async fn a_limit_is_forgotten_ten_minutes_after_the_last_shared_429() {
        let mut s = SharedLimits::default();
        let t0 = Instant::now();
        s.sent("w", t0);
        s.limited("w", t0 + Duration::from_secs(1), Duration::from_secs(40));
        let later = t0 + Duration::from_secs(50);
        s.sent("w", later);
        assert!(s.wait("w", later).is_some(), "one per 41 s, as learned");
        let much_later = t0 + Duration::from_secs(700);
        s.sent("w", much_later);
        s.sent("w", much_later);
        assert_eq!(s.wait("w", much_later), None);
    }
}
