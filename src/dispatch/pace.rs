//! Pacing arithmetic, pure (the caller passes `now`): the per-(bucket, webhook/channel) budgets
//! read from `X-RateLimit-*` headers, and the sliding window that counts invalid requests.
//!
//! Discord limits each route per top-level resource: the bucket hash of `X-RateLimit-Bucket`
//! is shared by every webhook, so a budget is keyed on (bucket, resource). The bucket of a
//! route is learned from its first answer; until then the route's own name stands in.

use crate::discord::Pace;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// Instants of events within the last `span` (Discord's invalid requests: 10 minutes).
#[derive(Debug)]
pub struct SlidingWindow {
    span: Duration,
    events: VecDeque<Instant>,
}

/// More events than any limit we allow are not worth remembering.
const WINDOW_CAP: usize = 20_000;

impl SlidingWindow {
    pub fn new(span: Duration) -> SlidingWindow {
        SlidingWindow {
            span,
            events: VecDeque::new(),
        }
    }

    pub fn note(&mut self, now: Instant) {
        self.expire(now);
        if self.events.len() >= WINDOW_CAP {
            self.events.pop_front();
        }
        self.events.push_back(now);
    }

    pub fn count(&mut self, now: Instant) -> usize {
        self.expire(now);
        self.events.len()
    }

    /// When fewer than `limit` events will be left in the window (`now` if that is already so).
    pub fn below_at(&mut self, limit: usize, now: Instant) -> Instant {
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

/// What one (bucket, resource) still allows before it resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Budget {
    remaining: u64,
    reset_at: Instant,
}

/// Request budgets per (bucket, resource); a request is taken from its budget before it is
/// sent, and the answer's headers set the budget anew.
#[derive(Debug, Default)]
pub struct Pacer {
    /// (route, resource) → the bucket hash Discord named for it.
    buckets: HashMap<(String, String), String>,
    budgets: HashMap<(String, String), Budget>,
}

impl Pacer {
    fn key(&self, route: &str, resource: &str) -> (String, String) {
        let bucket = self
            .buckets
            .get(&(route.to_string(), resource.to_string()))
            .cloned()
            .unwrap_or_else(|| route.to_string());
        (bucket, resource.to_string())
    }

    /// Takes one request from the budget of `route` on `resource`: `Err(until)` when none is
    /// left before `until`.
    pub fn take(&mut self, route: &str, resource: &str, now: Instant) -> Result<(), Instant> {
        let key = self.key(route, resource);
        match self.budgets.get_mut(&key) {
            Some(b) if b.reset_at <= now => {
                self.budgets.remove(&key);
                Ok(())
            }
            Some(b) if b.remaining == 0 => Err(b.reset_at),
            Some(b) => {
                b.remaining -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Learns the bucket and the budget from an answer's headers.
    pub fn observe(&mut self, route: &str, resource: &str, pace: &Pace, now: Instant) {
        if let Some(bucket) = &pace.bucket {
            self.buckets
                .insert((route.to_string(), resource.to_string()), bucket.clone());
        }
        if let (Some(remaining), Some(reset_after)) = (pace.remaining, pace.reset_after) {
            let key = self.key(route, resource);
            self.budgets.insert(
                key,
                Budget {
                    remaining,
                    reset_at: now + reset_after,
                },
            );
        }
        self.budgets.retain(|_, b| b.reset_at > now);
    }

    /// A 429 on this route: nothing more until `until`.
    pub fn exhausted(&mut self, route: &str, resource: &str, until: Instant) {
        let key = self.key(route, resource);
        self.budgets.insert(
            key,
            Budget {
                remaining: 0,
                reset_at: until,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn pace(bucket: &str, remaining: u64, reset_after: Duration) -> Pace {
        Pace {
            bucket: Some(bucket.into()),
            remaining: Some(remaining),
            reset_after: Some(reset_after),
            channel: None,
        }
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

    #[test]
    fn nothing_left_means_waiting_for_the_reset() {
        let t0 = Instant::now();
        let mut p = Pacer::default();
        assert_eq!(p.take("POST", "webhook 1", t0), Ok(()), "unknown: go");
        p.observe("POST", "webhook 1", &pace("b1", 1, s(2)), t0);
        assert_eq!(p.take("POST", "webhook 1", t0), Ok(()), "one left");
        assert_eq!(p.take("POST", "webhook 1", t0), Err(t0 + s(2)), "taken");
        assert_eq!(p.take("POST", "webhook 1", t0 + s(2)), Ok(()), "reset");
        p.observe("POST", "webhook 1", &pace("b1", 0, s(1)), t0 + s(3));
        assert_eq!(
            p.take("POST", "webhook 1", t0 + s(3)),
            Err(t0 + s(4)),
            "Remaining: 0 waits Reset-After"
        );
    }

    #[test]
    fn budgets_are_per_bucket_and_resource() {
        let t0 = Instant::now();
        let mut p = Pacer::default();
        p.observe("POST", "webhook 1", &pace("b1", 0, s(2)), t0);
        assert!(p.take("POST", "webhook 1", t0).is_err());
        assert_eq!(p.take("POST", "webhook 2", t0), Ok(()), "another webhook");
        assert_eq!(p.take("GET", "webhook 1", t0), Ok(()), "another route");
        // Two sinks on the same webhook share its budget once the bucket is known.
        p.observe("POST", "webhook 2", &pace("b1", 3, s(2)), t0);
        p.exhausted("POST", "webhook 2", t0 + s(5));
        assert_eq!(p.take("POST", "webhook 2", t0 + s(4)), Err(t0 + s(5)));
    }
}
