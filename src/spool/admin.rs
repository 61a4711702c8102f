//! What an operator does to the spool by hand: `spool retry` puts dead-lettered deliveries
//! back in their sinks' queues, `spool drop` removes one item. Both are single transactions
//! over every tree they touch, flushed before they return, like everything else here.
//!
//! A retried delivery keeps its `attempts` and `last_error`: they are the item's history (how
//! often and why Discord refused it), and the next attempt overwrites `last_error` anyway.

use super::{owe, Item, Spool, SpoolError, State};
use sled::Transactional;

const BATCH: usize = 500;

/// What `retry` did to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Retried {
    /// No item with this id.
    Missing,
    /// Nothing dead-lettered: the item is in this state.
    NotDead(State),
    /// These sinks owe the item again.
    Requeued { sinks: Vec<String> },
}

/// What `drop` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dropped {
    Missing,
    Dropped(Box<Item>),
}

impl Spool {
    /// Puts every dead-lettered delivery of item `id` back to pending.
    pub(crate) fn retry(&self, id: u64) -> Result<Retried, SpoolError> {
        let mut out = self.requeue(&[id])?;
        Ok(out.pop().unwrap_or(Retried::Missing))
    }

    /// Retries every dead item (of `bucket`, or of all buckets); returns how many. Reads the
    /// spool once, requeueing in batches: memory stays bounded however many there are.
    pub(crate) fn retry_dead(&self, bucket: Option<&str>) -> Result<u64, SpoolError> {
        let mut n = 0;
        let mut batch = Vec::new();
        for item in self.iter() {
            let item = item?;
            if item.state() == State::Dead && bucket.is_none_or(|b| b == item.bucket) {
                batch.push(item.id);
            }
            if batch.len() >= BATCH {
                n += self.count_requeued(&std::mem::take(&mut batch))?;
            }
        }
        n += self.count_requeued(&batch)?;
        Ok(n)
    }

    fn count_requeued(&self, ids: &[u64]) -> Result<u64, SpoolError> {
        let done = self.requeue(ids)?;
        Ok(done
            .iter()
            .filter(|r| matches!(r, Retried::Requeued { .. }))
            .count() as u64)
    }

    fn requeue(&self, ids: &[u64]) -> Result<Vec<Retried>, SpoolError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let trees = self.delivery_trees();
        let out = trees.transaction(|(items_t, ledger_t, owed_t, pending_t, counts_t)| {
            let mut out = Vec::new();
            for id in ids {
                let idb = id.to_be_bytes();
                let Some((mut item, cost)) = self.bodies.item_tx(items_t, ledger_t, *id)? else {
                    out.push(Retried::Missing);
                    continue;
                };
                let before = item.state();
                let mut sinks = Vec::new();
                for d in item
                    .deliveries
                    .iter_mut()
                    .filter(|d| d.state == State::Dead)
                {
                    d.state = State::Pending;
                    sinks.push(d.sink.clone());
                }
                if sinks.is_empty() {
                    out.push(Retried::NotDead(before));
                    continue;
                }
                for s in &sinks {
                    owe(owed_t, s, &item, true)?;
                }
                let after = item.state();
                super::bump(counts_t, &item.bucket, before, -1)?;
                super::bump(counts_t, &item.bucket, after, 1)?;
                if after == State::Pending {
                    super::mark_pending(pending_t, &item, true)?;
                }
                let encoded = super::encode(&item);
                super::bound::restate(counts_t, cost, encoded.len(), &item)?;
                items_t.insert(&idb, encoded)?;
                super::ledger::settle(ledger_t, &item)?;
                out.push(Retried::Requeued { sinks });
            }
            Ok(out)
        })?;
        self.durable()?;
        Ok(out)
    }

    /// Removes item `id` whatever its state (the operator asked for it by id).
    pub(crate) fn drop_item(&self, id: u64) -> Result<Dropped, SpoolError> {
        let Some(item) = self.get(id)? else {
            return Ok(Dropped::Missing);
        };
        self.remove(&[id], None)?;
        self.collect_bodies();
        Ok(Dropped::Dropped(Box::new(item)))
    }
}
