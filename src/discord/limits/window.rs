//! The sliding window that counts Discord's invalid requests (401, 403, non-shared 429) over
//! the last 10 minutes. Pure: the caller passes `now`.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Instants of events within the last `span` (Discord's invalid requests: 10 minutes).
#[derive(Debug)]
pub(super) struct SlidingWindow {
    span: Duration,
    events: VecDeque<Instant>,
}

/// More events than any limit we allow are not worth remembering.
const WINDOW_CAP: usize = 20_000;

impl SlidingWindow {
    pub(super) fn new(span: Duration) -> SlidingWindow {
        SlidingWindow {
            span,
            events: VecDeque::new(),
        }
    }

    pub(super) fn note(&mut self, now: Instant) {
        self.expire(now);
        if self.events.len() >= WINDOW_CAP {
            self.events.pop_front();
        }
        self.events.push_back(now);
    }

    pub(super) fn count(&mut self, now: Instant) -> usize {
        self.expire(now);
        self.events.len()
    }

    /// When fewer than `limit` events will be left in the window (`now` if that is already so).
    pub(super) fn below_at(&mut self, limit: usize, now: Instant) -> Instant {
        self.expire(now);
        let n = self.events.len();
        if n < limit {
            return now;
        }
        // The oldest n - limit + 1 events must leave; the last of them leaves at this instant.
        self.events
            .get(n - limit.max(1))
            .map_or(now, |t| *t + self.span)
    }

    fn expire(&mut self, now: Instant) {
        while self.events.front().is_some_and(|t| *t + self.span <= now) {
            self.events.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn the_window_forgets_after_its_span_and_says_when_it_drops_below_a_limit() {
        let t0 = Instant::now();
        let mut w = SlidingWindow::new(s(600));
        for i in 0..5 {
            w.note(t0 + s(i * 10));
        }
        assert_eq!(w.count(t0 + s(45)), 5);
        // Below 3 once the third event (t0 + 20 s) has left: t0 + 620 s.
        assert_eq!(w.below_at(3, t0 + s(45)), t0 + s(620));
        assert_eq!(w.below_at(6, t0 + s(45)), t0 + s(45), "already below");
        assert_eq!(w.count(t0 + s(600)), 4, "the first left at exactly 600 s");
        assert_eq!(w.count(t0 + s(640)), 0);
    }
}
