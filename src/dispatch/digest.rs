//! Digest buckets: when their mail is due, and the operator's "digest now".
//!
//! A digest bucket's mail waits in the spool, pending, until a digest is due, then goes out as
//! digest messages; each mail leaves `pending` only when the message listing it is
//! acknowledged, so a crash between POST and answer repeats a digest line, never loses one.
//!
//! The schedule is the wall clock, not a timer: digests are due at every multiple of
//! `digest_every` since the Unix epoch (UTC: `"1h"` on the hour, `"1d"` at midnight UTC). A
//! mail is due once a boundary passed after it was spooled. Nothing is stored: after a restart
//! the digest that fell due while the agent was down goes out at once. `digest now` moves the
//! boundary of a bucket to the present, once.

use crate::config::{Bucket, Mode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The most mails one digest pass reads; a longer backlog takes another pass.
pub(crate) const BATCH: usize = 200;

/// The latest boundary at or before `now_ms` (milliseconds since the epoch).
pub(crate) fn boundary_ms(every: Duration, now_ms: i64) -> i64 {
    let every = (every.as_millis() as i64).max(1);
    now_ms.div_euclid(every) * every
}

/// The next boundary after `now_ms`.
pub(crate) fn next_boundary_ms(every: Duration, now_ms: i64) -> i64 {
    boundary_ms(every, now_ms) + (every.as_millis() as i64).max(1)
}

/// Whether a mail spooled at `spooled_at` (Unix seconds) is due in a digest at `now_ms`, given
/// the latest "digest now" for its bucket (`forced`, Unix seconds).
pub(crate) fn due(every: Duration, now_ms: i64, forced: Option<i64>, spooled_at: i64) -> bool {
    spooled_at.saturating_mul(1000) < boundary_ms(every, now_ms)
        || forced.is_some_and(|f| spooled_at <= f)
}

/// Whether `sink` sends `bucket`'s mail as digests: it is one of the bucket's own sinks (a
/// fallback or audit sink gets mail at once) and the bucket is in digest mode.
pub(crate) fn digests(bucket: &Bucket, sink: &str) -> Option<Duration> {
    (bucket.mode == Mode::Digest && bucket.sinks.iter().any(|s| s == sink))
        .then_some(bucket.digest_every)
        .flatten()
}

/// A digest bucket's totals as health should judge them: mail waiting for its digest is
/// scheduled, not a backlog. While the oldest pending mail's digest is not due yet, nothing of
/// the bucket counts (all later mail is younger); once it is due, everything counts and its age
/// runs from the moment it fell due, so only a digest that does not go out raises the LED.
pub(crate) fn as_health_sees(
    mut stats: crate::spool::BucketStats,
    every: Duration,
    now: i64,
) -> crate::spool::BucketStats {
    if let Some(spooled) = stats.oldest_pending_at {
        let due = next_boundary_ms(every, spooled.saturating_mul(1000)).div_euclid(1000);
        if due > now {
            stats.pending = 0;
            stats.oldest_pending_at = None;
        } else {
            stats.oldest_pending_at = Some(due);
        }
    }
    stats
}

/// The digest buckets "digest now [BUCKET]" names: `bucket`, or every digest bucket.
pub(crate) fn named(buckets: &[Bucket], bucket: Option<&str>) -> Result<Vec<String>, String> {
    match bucket {
        Some(name) => match buckets.iter().find(|b| b.name == name) {
            None => Err(format!(
                "no bucket is named {name:?} (buckets: {})",
                buckets
                    .iter()
                    .map(|b| b.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Some(b) if b.mode != Mode::Digest => Err(format!(
                "bucket {name:?} is not in digest mode (its mail is not held for a digest)"
            )),
            Some(b) => Ok(vec![b.name.clone()]),
        },
        None => {
            let all: Vec<String> = buckets
                .iter()
                .filter(|b| b.mode == Mode::Digest)
                .map(|b| b.name.clone())
                .collect();
            if all.is_empty() {
                Err("no bucket has mode = \"digest\"".to_string())
            } else {
                Ok(all)
            }
        }
    }
}

/// The "digest now" requests and the bells of the delivery loops (by sink name), shared by
/// the control socket and every pipeline (kept across reloads). A loop that owes another sink
/// an audit line rings that sink's bell too.
#[derive(Default)]
pub struct Digests {
    /// Bucket → Unix seconds of the latest "digest now": mail spooled until then is due.
    forced: Mutex<HashMap<String, i64>>,
    wakes: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Digests {
    /// Makes the mail of `buckets` spooled until `now` due at once, and wakes every loop.
    pub(crate) fn flush_now(&self, buckets: &[String], now: i64) {
        if let Ok(mut f) = self.forced.lock() {
            for b in buckets {
                f.insert(b.clone(), now);
            }
        }
        self.ring_all();
    }

    /// Wakes every delivery loop (e.g. after `spool retry` put mail back to pending).
    pub(crate) fn ring_all(&self) {
        if let Ok(w) = self.wakes.lock() {
            w.values().for_each(|n| n.notify_one());
        }
    }

    pub(crate) fn forced(&self, bucket: &str) -> Option<i64> {
        self.forced.lock().ok()?.get(bucket).copied()
    }

    /// The bells of the loops of a new pipeline.
    pub(crate) fn set_wakes(&self, wakes: HashMap<String, Arc<Notify>>) {
        if let Ok(mut w) = self.wakes.lock() {
            *w = wakes;
        }
    }

    /// Wakes the loop of `sink` (new work for it in the spool).
    pub(crate) fn ring(&self, sink: &str) {
        if let Some(n) = self.wakes.lock().ok().and_then(|w| w.get(sink).cloned()) {
            n.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn mail_is_due_once_a_boundary_passed_after_it_was_spooled() {
        let ten = 10 * 3600;
        // Spooled at 10:20, asked at 10:59: not yet; at 11:00: due.
        assert!(!due(HOUR, (ten + 59 * 60) * 1000, None, ten + 20 * 60));
        assert!(due(HOUR, (ten + 3600) * 1000, None, ten + 20 * 60));
        // Spooled on the boundary itself waits for the next one.
        assert!(!due(HOUR, (ten + 1800) * 1000, None, ten));
        assert!(due(HOUR, (ten + 3600) * 1000, None, ten));
    }

    #[test]
    fn digest_now_makes_what_was_spooled_until_then_due() {
        let t = 10 * 3600 + 600;
        assert!(due(HOUR, (t + 5) * 1000, Some(t), t));
        assert!(!due(HOUR, (t + 5) * 1000, Some(t), t + 1));
    }

    #[test]
    fn mail_waiting_for_its_digest_is_no_backlog_until_the_digest_is_late() {
        let stats = |oldest| crate::spool::BucketStats {
            name: "news".into(),
            pending: 40,
            delivered: 0,
            dead: 0,
            oldest_pending_at: Some(oldest),
        };
        let day = Duration::from_secs(86_400);
        let seen = as_health_sees(stats(86_400 + 60), day, 86_400 + 7 * 3600);
        assert_eq!((seen.pending, seen.oldest_pending_at), (0, None));
        let late = as_health_sees(stats(86_400 + 60), day, 2 * 86_400 + 7 * 3600);
        assert_eq!(
            (late.pending, late.oldest_pending_at),
            (40, Some(2 * 86_400))
        );
    }

    #[test]
    fn the_next_boundary_is_the_next_multiple() {
        assert_eq!(next_boundary_ms(HOUR, 3_600_000 * 5 + 1), 3_600_000 * 6);
        assert_eq!(next_boundary_ms(Duration::from_secs(2), 1_000), 2_000);
    }
}
