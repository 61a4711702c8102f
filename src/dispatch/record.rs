//! Recording what Discord answered: the delivery (with the audit line and the after-delivery
//! action it makes owed) in one spool transaction, and a spool that cannot be written told to
//! health.

use super::Dispatcher;
use crate::health::Event;
use crate::spool::{SpoolError, Update};
use std::sync::atomic::Ordering;

impl Dispatcher {
    pub(super) async fn record(&self, updates: Vec<(u64, Update)>) -> bool {
        self.record_with(updates, false).await
    }

    /// Records deliveries, and the audit mirror each bucket with an `audit` sink owes, at once.
    pub(super) async fn record_delivered(&self, updates: Vec<(u64, Update)>) -> bool {
        self.record_with(updates, true).await
    }

    pub(super) async fn record_with(&self, updates: Vec<(u64, Update)>, mirror: bool) -> bool {
        let (spool, name) = (self.spool.clone(), self.sink.name().to_string());
        let buckets = self.buckets.clone();
        let audit = move |bucket: &str| -> Option<String> {
            buckets
                .iter()
                .find(|b| b.name == bucket && mirror)
                .and_then(|b| b.audit.clone())
        };
        let buckets = self.buckets.clone();
        let after_delivery = move |bucket: &str| {
            buckets
                .iter()
                .find(|b| b.name == bucket && mirror)
                .and_then(|b| b.after_delivery.clone())
        };
        let rings: Vec<String> = self
            .buckets
            .iter()
            .filter_map(|b| b.audit.clone())
            .collect();
        let result = self
            .blocking(move || spool.record_followed(&name, &updates, &audit, &after_delivery))
            .await;
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
