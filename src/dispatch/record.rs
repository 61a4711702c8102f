//! Recording what Discord answered: the delivery (with the audit line and the after-delivery
//! action it makes owed) in one spool transaction, and a spool that cannot be written told to
//! health.

use super::Dispatcher;
use crate::config::Bucket;
use crate::health::Event;
use crate::spool::{Entry, FollowUps, Item, SpoolError, Update};
use std::sync::atomic::Ordering;

/// What a delivery of a mail of `bucket` makes owed: the audit line and the action after
/// delivery its config asks for.
fn follow_ups(buckets: &[Bucket], bucket: &str) -> FollowUps {
    buckets
        .iter()
        .find(|b| b.name == bucket)
        .map(|b| FollowUps {
            audit: b.audit.clone(),
            after_delivery: b.after_delivery.clone(),
        })
        .unwrap_or_default()
}

impl Dispatcher {
    pub(super) async fn record(&self, updates: Vec<(u64, Update)>) -> bool {
        self.record_with(updates, false).await
    }

    /// Records deliveries of `items`, with the audit mirror and the action after delivery
    /// that each one's bucket owes, at once.
    pub(super) async fn record_delivered(
        &self,
        updates: Vec<(u64, Update)>,
        items: &[Item],
    ) -> bool {
        let bucket = |id: u64| items.iter().find(|i| i.id == id).map(|i| i.bucket.as_str());
        let updates: Vec<(u64, Update, FollowUps)> = updates
            .into_iter()
            .map(|(id, update)| {
                let then = bucket(id).map(|b| follow_ups(&self.buckets, b));
                (id, update, then.unwrap_or_default())
            })
            .collect();
        self.record_with(updates, true).await
    }

    async fn record_with<E: Entry + Send + 'static>(&self, updates: Vec<E>, mirror: bool) -> bool {
        let (spool, name) = (self.spool.clone(), self.sink.name().to_string());
        let rings: Vec<String> = self
            .buckets
            .iter()
            .filter_map(|b| b.audit.clone())
            .collect();
        let result = self.blocking(move || spool.record(&name, &updates)).await;
        if mirror && matches!(result, Some(Ok(()))) {
            rings.iter().for_each(|a| self.digests.ring(a));
            if self.buckets.iter().any(|b| b.after_delivery.is_some()) {
                self.after.notify_one();
            }
        }
        match result {
            Some(Ok(())) => {
                if self.disk_full.swap(false, Ordering::Relaxed) {
                    log::info!("sink {}: spool writable again", self.sink.name());
                    self.report_disk(None);
                }
                true
            }
            Some(Err(e)) => {
                self.spool_trouble(&e);
                false
            }
            None => false,
        }
    }

    pub(super) fn report_disk(&self, full: Option<String>) {
        let _ = self.health.send(Event::Disk {
            writer: format!("sink {}", self.sink.name()),
            full,
        });
    }

    pub(super) fn spool_trouble(&self, e: &SpoolError) {
        log::error!(
            "sink {}: cannot record a delivery in the spool: {e}",
            self.sink.name()
        );
        if e.is_damaged() {
            let _ = self.health.send(Event::SpoolDamaged(e.to_string()));
        }
        if e.is_disk_full() {
            self.disk_full.store(true, Ordering::Relaxed);
            self.report_disk(Some(e.to_string()));
        }
    }
}
