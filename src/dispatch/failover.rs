//! Failover and escalation: a bucket's `fallback` sink gets its mail when every sink of the
//! bucket is dead, and (P0/P1 buckets with `escalate_after`) a mail that waited longer than
//! that.
//!
//! Handing over adds a delivery to the fallback sink to the spooled item (role `fallback`), in
//! one flushed transaction, and rings the fallback's loop, which delivers it like any other
//! mail. The bucket's own sinks still owe the mail: a sink that comes back delivers it too, so
//! its channel's record stays complete, and the mail stays `pending` until it has.

use crate::config::{Bucket, Severity};
use crate::spool::{Item, Role, Spool, State};
use crate::stop::Stop;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How often the watcher looks.
const EVERY: Duration = Duration::from_millis(500);
/// Items read per look and bucket.
const CHUNK: usize = 500;

/// The sinks whose loops say they are dead, shared by every loop of a pipeline.
#[derive(Default)]
pub struct DeadSinks(Mutex<HashSet<String>>);

impl DeadSinks {
    pub(crate) fn set(&self, sink: &str, dead: bool) {
        if let Ok(mut s) = self.0.lock() {
            if dead {
                s.insert(sink.to_string());
            } else {
                s.remove(sink);
            }
        }
    }

    pub(crate) fn all_dead(&self, sinks: &[String]) -> bool {
        self.0
            .lock()
            .is_ok_and(|s| !sinks.is_empty() && sinks.iter().all(|n| s.contains(n)))
    }
}

/// Why a bucket's mail goes to its fallback now, if it does: every sink dead (all its pending
/// mail), or escalation (mail spooled at or before the returned Unix second).
fn reason(bucket: &Bucket, dead: &DeadSinks, now: i64) -> Option<(Option<i64>, &'static str)> {
    bucket.fallback.as_ref()?;
    if dead.all_dead(&bucket.sinks) {
        return Some((None, "every sink of the bucket is dead"));
    }
    let after = bucket
        .escalate_after
        .filter(|_| bucket.severity <= Severity::P1)?;
    Some((
        Some(now - after.as_secs() as i64),
        "waited longer than escalate_after",
    ))
}

/// Whether one of the bucket's own sinks still owes `item`.
fn owed_by_own_sink(item: &Item, bucket: &Bucket) -> bool {
    item.deliveries
        .iter()
        .any(|d| d.state == State::Pending && d.role.is_none() && bucket.sinks.contains(&d.sink))
}

/// One look at every bucket with a fallback; `scanned` remembers, per bucket, the id after the
/// newest item already considered, so a long backlog is read once, not every half second.
fn look(
    buckets: &[Bucket],
    spool: &Spool,
    dead: &DeadSinks,
    wakes: &HashMap<String, Arc<Notify>>,
    scanned: &mut HashMap<String, u64>,
) {
    let now = chrono::Utc::now().timestamp();
    for b in buckets {
        let (Some((until, why)), Some(fallback)) = (reason(b, dead, now), b.fallback.as_ref())
        else {
            continue;
        };
        loop {
            let from = scanned.get(&b.name).copied().unwrap_or(0);
            let items = match spool.pending_in(&b.name, from, CHUNK) {
                Ok(items) => items,
                Err(e) => {
                    log::error!("bucket {}: failover cannot read the spool: {e}", b.name);
                    return;
                }
            };
            let ready: Vec<&Item> = items
                .iter()
                .take_while(|i| until.is_none_or(|u| i.spooled_at <= u))
                .collect();
            let Some(last) = ready.last().map(|i| i.id) else {
                break;
            };
            let ids: Vec<u64> = ready
                .iter()
                .filter(|i| owed_by_own_sink(i, b) && i.delivery(fallback).is_none())
                .map(|i| i.id)
                .collect();
            match spool.hand_over(&ids, fallback) {
                Ok(0) => {}
                Ok(n) => {
                    log::warn!(
                        "bucket {}: {why}; {n} mail(s) handed to fallback sink {fallback}",
                        b.name
                    );
                    if let Some(w) = wakes.get(fallback) {
                        w.notify_one();
                    }
                }
                Err(e) => {
                    log::error!(
                        "bucket {}: cannot hand mail to fallback sink {fallback}: {e}",
                        b.name
                    );
                    return;
                }
            }
            scanned.insert(b.name.clone(), last.saturating_add(1));
            if ready.len() < items.len() || items.len() < CHUNK {
                break;
            }
        }
    }
}

/// Watches the buckets that have a fallback until stopped.
pub(crate) async fn watch(
    buckets: Arc<Vec<Bucket>>,
    spool: Spool,
    dead: Arc<DeadSinks>,
    wakes: HashMap<String, Arc<Notify>>,
    stop: Stop,
) {
    if !buckets.iter().any(|b| b.fallback.is_some()) {
        return;
    }
    let scanned = Arc::new(Mutex::new(HashMap::new()));
    let wakes = Arc::new(wakes);
    loop {
        tokio::select! {
            _ = stop.wait() => break,
            _ = tokio::time::sleep(EVERY) => {}
        }
        let (b, s, d, w, sc) = (
            buckets.clone(),
            spool.clone(),
            dead.clone(),
            wakes.clone(),
            scanned.clone(),
        );
        let _ = tokio::task::spawn_blocking(move || {
            if let Ok(mut sc) = sc.lock() {
                look(&b, &s, &d, &w, &mut sc);
            }
        })
        .await;
    }
}

/// Whether `sink` owes `item` only as its audit mirror.
pub(crate) fn is_audit(item: &Item, sink: &str) -> bool {
    item.delivery(sink)
        .is_some_and(|d| d.role == Some(Role::Audit))
}
