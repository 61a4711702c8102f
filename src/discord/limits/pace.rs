//! Pacing arithmetic, pure (the caller passes `now`): the per-(bucket, webhook/channel) budgets
//! read from `X-RateLimit-*` headers.
//!
//! Discord limits each route per top-level resource: the bucket hash of `X-RateLimit-Bucket`
//! is shared by every webhook, so a budget is keyed on (bucket, resource). The bucket of a
//! route is learned from its first answer; until then the route itself stands in.

use super::Route;
use crate::discord::Pace;
use std::collections::HashMap;
use tokio::time::Instant;

/// What one (bucket, resource) still allows before it resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Budget {
    remaining: u64,
    reset_at: Instant,
}

/// The bucket a budget belongs to: the hash Discord named for a route, or the route itself
/// until an answer named one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Bucket {
    Named(String),
    Unnamed(Route),
}

/// Request budgets per (bucket, resource); a request is taken from its budget before it is
/// sent, and the answer's headers set the budget anew.
#[derive(Debug, Default)]
pub(super) struct Pacer {
    /// (route, resource) → the bucket hash Discord named for it.
    buckets: HashMap<(Route, String), String>,
    budgets: HashMap<(Bucket, String), Budget>,
}

impl Pacer {
    fn key(&self, route: Route, resource: &str) -> (Bucket, String) {
        let bucket = self
            .buckets
            .get(&(route, resource.to_string()))
            .map_or(Bucket::Unnamed(route), |b| Bucket::Named(b.clone()));
        (bucket, resource.to_string())
    }

    /// Takes one request from the budget of `route` on `resource`: `Err(until)` when none is
    /// left before `until`.
    pub(super) fn take(
        &mut self,
        route: Route,
        resource: &str,
        now: Instant,
    ) -> Result<(), Instant> {
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
    pub(super) fn observe(&mut self, route: Route, resource: &str, pace: &Pace, now: Instant) {
        if let Some(bucket) = &pace.bucket {
            self.buckets
                .insert((route, resource.to_string()), bucket.clone());
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
    pub(super) fn exhausted(&mut self, route: Route, resource: &str, until: Instant) {
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
    use std::time::Duration;
    use Route::{Get, Post};

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
    fn nothing_left_means_waiting_for_the_reset() {
        let t0 = Instant::now();
        let mut p = Pacer::default();
        assert_eq!(p.take(Post, "webhook 1", t0), Ok(()), "unknown: go");
        p.observe(Post, "webhook 1", &pace("b1", 1, s(2)), t0);
        assert_eq!(p.take(Post, "webhook 1", t0), Ok(()), "one left");
        assert_eq!(p.take(Post, "webhook 1", t0), Err(t0 + s(2)), "taken");
        assert_eq!(p.take(Post, "webhook 1", t0 + s(2)), Ok(()), "reset");
        p.observe(Post, "webhook 1", &pace("b1", 0, s(1)), t0 + s(3));
        assert_eq!(
            p.take(Post, "webhook 1", t0 + s(3)),
            Err(t0 + s(4)),
            "Remaining: 0 waits Reset-After"
        );
    }

    #[test]
    fn budgets_are_per_bucket_and_resource() {
        let t0 = Instant::now();
        let mut p = Pacer::default();
        p.observe(Post, "webhook 1", &pace("b1", 0, s(2)), t0);
        assert!(p.take(Post, "webhook 1", t0).is_err());
        assert_eq!(p.take(Post, "webhook 2", t0), Ok(()), "another webhook");
        assert_eq!(p.take(Get, "webhook 1", t0), Ok(()), "another route");
        // Two sinks on the same webhook share its budget once the bucket is known.
        p.observe(Post, "webhook 2", &pace("b1", 3, s(2)), t0);
        p.exhausted(Post, "webhook 2", t0 + s(5));
        assert_eq!(p.take(Post, "webhook 2", t0 + s(4)), Err(t0 + s(5)));
    }
}
