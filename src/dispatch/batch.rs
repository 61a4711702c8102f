//! What a delivery loop sends next: a push batch (one embed per mail), a digest (mail listed
//! as lines, only once its digest is due) or audit lines (a mirror of deliveries elsewhere).

use super::digest::{self, due};
use super::failover::is_audit;
use super::Dispatcher;
use crate::config::Bucket;
use crate::discord::render::digest::{render_audit, render_digest, AUDIT_LINES};
use crate::discord::render::MAX_EMBEDS;
use crate::discord::{render, Level, Message};
use crate::health::Event;
use crate::spool::{Item, Spool, SpoolError};
use std::collections::HashMap;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Push,
    Digest,
    Audit,
}

pub(crate) struct Batch {
    pub items: Vec<Item>,
    pub kind: Kind,
}

impl Batch {
    pub(crate) fn render(&self, bucket: Option<&Bucket>) -> Message {
        match self.kind {
            Kind::Push => render(bucket, &self.items, Level::Full),
            Kind::Digest => render_digest(bucket, &self.items),
            Kind::Audit => render_audit(&self.items),
        }
    }
}

/// The owed items `sink` sends next, all of one bucket; digest buckets only when due.
pub(crate) fn choose(
    spool: &Spool,
    sink: &str,
    buckets: &[Bucket],
    forced: &HashMap<String, i64>,
    now_ms: i64,
) -> Result<Batch, SpoolError> {
    let every = |bucket: &str| {
        buckets
            .iter()
            .find(|b| b.name == bucket)
            .and_then(|b| digest::digests(b, sink))
    };
    let eligible = |bucket: &str, head: u64| -> bool {
        let Some(every) = every(bucket) else {
            return true;
        };
        match spool.get(head) {
            Ok(Some(item)) => {
                is_audit(&item, sink)
                    || due(every, now_ms, forced.get(bucket).copied(), item.spooled_at)
            }
            // Unreadable here, unreadable in the batch: let the batch say so.
            _ => true,
        }
    };
    let mut items = spool.pending_where(sink, MAX_EMBEDS.max(AUDIT_LINES), &eligible)?;
    let Some(first) = items.first() else {
        return Ok(Batch {
            items,
            kind: Kind::Push,
        });
    };
    let audit = is_audit(first, sink);
    let kind = if audit {
        Kind::Audit
    } else if every(&first.bucket).is_some() {
        let bucket = first.bucket.clone();
        items = spool.pending_where(sink, digest::BATCH, &|b, _| b == bucket)?;
        Kind::Digest
    } else {
        Kind::Push
    };
    // One message carries one kind: a push batch never carries an audit line.
    items.retain(|i| is_audit(i, sink) == audit);
    Ok(Batch { items, kind })
}

impl Dispatcher {
    /// The next batch, read on a blocking thread; `None` when the spool cannot be read.
    pub(super) async fn next_batch(&self) -> Option<Batch> {
        let (spool, sink) = (self.spool.clone(), self.sink.name().to_string());
        let buckets = self.buckets.clone();
        let forced: HashMap<String, i64> = buckets
            .iter()
            .filter_map(|b| Some((b.name.clone(), self.digests.forced(&b.name)?)))
            .collect();
        let now_ms = chrono::Utc::now().timestamp_millis();
        match self
            .blocking(move || choose(&spool, &sink, &buckets, &forced, now_ms))
            .await?
        {
            Ok(batch) => Some(batch),
            Err(e) => {
                log::error!("sink {}: cannot read the spool: {e}", self.sink.name());
                if e.is_damaged() {
                    let _ = self.health.send(Event::SpoolDamaged(e.to_string()));
                }
                None
            }
        }
    }

    /// When the next digest of a bucket this sink serves falls due (far away when none).
    pub(super) fn next_digest(&self) -> Instant {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let wait_ms = self
            .buckets
            .iter()
            .filter_map(|b| digest::digests(b, self.sink.name()))
            .map(|every| digest::next_boundary_ms(every, now_ms) - now_ms)
            .min()
            .unwrap_or(86_400_000);
        // A little past the boundary, so the wall clock has surely crossed it.
        Instant::now() + std::time::Duration::from_millis(wait_ms.max(0) as u64 + 20)
    }
}
