//! Retention: delivered items stay `keep_delivered` (default 30 days) after their last
//! acknowledgement, then go. Pending and dead items are never pruned — they are mail nobody has
//! seen yet. Items held by a `hold` bucket (no sink) count as delivered from their spool time.
//! A delivered item whose audit line is still owed stays past its time until the line is sent
//! (an audit sink down for a month keeps its record whole); only the size bound takes it.
//!
//! Pruning walks `items` from the oldest and stops at the first item spooled after the cutoff
//! (an item cannot be acknowledged before it was spooled), so a pass reads only the old end of
//! the spool, and deletes in transactions of [`BATCH`] items: memory stays bounded by one batch
//! however large the spool. At the size bound, [`Spool::prune_for_room`] removes delivered
//! items oldest first even before their time, because delivered mail is already in Discord
//! and new mail is not anywhere yet.

use super::bodies::{stored_len, Pointer};
use super::{bound, owe, Item, Role, Spool, SpoolError, State};
use sled::Transactional;

const BATCH: usize = 500;

/// What a pruning pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pruned {
    pub items: u64,
    pub bytes: u64,
}

/// When an item was last acknowledged; its spool time for an item no sink owes.
fn settled_at(item: &Item) -> i64 {
    item.deliveries
        .iter()
        .filter_map(|d| d.delivered_at)
        .max()
        .unwrap_or(item.spooled_at)
}

/// Whether an audit sink still owes this item its line.
fn audit_owed(item: &Item) -> bool {
    item.deliveries
        .iter()
        .any(|d| d.role == Some(Role::Audit) && d.state == State::Pending)
}

impl Spool {
    /// Removes delivered items acknowledged before `cutoff` (Unix seconds) whose audit line,
    /// if any, is no longer owed.
    pub(crate) fn prune_delivered(&self, cutoff: i64) -> Result<Pruned, SpoolError> {
        self.prune_while(
            |item, _| Some(settled_at(item) < cutoff && !audit_owed(item)),
            cutoff,
        )
    }

    /// Removes delivered items, oldest first, until the spool holds at most `target` bytes.
    pub(crate) fn prune_for_room(&self, target: u64) -> Result<Pruned, SpoolError> {
        if self.held_bytes()? <= target {
            return Ok(Pruned::default());
        }
        self.prune_while(|_, held| (held > target).then_some(true), i64::MAX)
    }

    /// Walks items oldest first while their spool time is before `until`; removes delivered
    /// ones `pick` accepts (given the bytes still held); stops when `pick` says `None`.
    fn prune_while(
        &self,
        pick: impl Fn(&Item, u64) -> Option<bool>,
        until: i64,
    ) -> Result<Pruned, SpoolError> {
        let mut total = Pruned::default();
        let mut from = Vec::new();
        loop {
            let mut held = self.held_bytes()?;
            let mut batch = Vec::new();
            let mut done = true;
            for kv in self.items.range(from.clone()..) {
                let (k, v) = kv?;
                from = [k.as_ref(), &[0]].concat();
                let item = self.read(&k, &v)?;
                if item.spooled_at >= until {
                    break;
                }
                if item.state() != State::Delivered {
                    continue;
                }
                match pick(&item, held) {
                    None => break,
                    Some(false) => continue,
                    Some(true) => {
                        held = held.saturating_sub(bound::footprint(stored_len(&v), &item));
                        batch.push(item.id);
                    }
                }
                if batch.len() >= BATCH {
                    done = false;
                    break;
                }
            }
            let removed = self.remove(&batch, Some(State::Delivered))?;
            total.items += removed.items;
            total.bytes += removed.bytes;
            if done || batch.is_empty() {
                if total.items > 0 {
                    self.collect_bodies();
                }
                return Ok(total);
            }
        }
    }

    /// Removes items and every index entry of theirs in one transaction, then flushes. With
    /// `only`, an item in another state (changed since it was picked) is left alone.
    pub(super) fn remove(&self, ids: &[u64], only: Option<State>) -> Result<Pruned, SpoolError> {
        if ids.is_empty() {
            return Ok(Pruned::default());
        }
        let trees = self.delivery_trees();
        let removed = trees.transaction(|(items_t, ledger_t, owed_t, pending_t, counts_t)| {
            let mut removed = Pruned::default();
            for id in ids {
                let idb = id.to_be_bytes();
                let Some((item, cost)) = self.bodies.item_tx(items_t, ledger_t, *id)? else {
                    continue;
                };
                let state = item.state();
                if only.is_some_and(|s| s != state) {
                    continue;
                }
                items_t.remove(&idb)?;
                super::ledger::settle(ledger_t, &item)?;
                for d in item.deliveries.iter().filter(|d| d.state == State::Pending) {
                    owe(owed_t, &d.sink, &item, false)?;
                }
                super::mark_pending(pending_t, &item, false)?;
                super::bump(counts_t, &item.bucket, state, -1)?;
                bound::grow(counts_t, -(cost as i64))?;
                removed.items += 1;
                removed.bytes += cost;
            }
            Ok(removed)
        })?;
        self.durable()?;
        // A rescan reads its fingerprints afresh: these items are no longer there to match.
        self.recognised.forget(None);
        Ok(removed)
    }

    /// Deletes the body log's segments no item points into any more (`bodies.rs`), found by one
    /// scan of the `items` tree: once after a prune or a drop, not per batch. The items' removal
    /// is durable already; a failure here only leaves garbage for the next time, so it is
    /// logged, not returned.
    pub(super) fn collect_bodies(&self) {
        let scan = || {
            let mut live = std::collections::HashSet::new();
            for kv in self.items.iter() {
                let (_, v) = kv?;
                if let Some(p) = Pointer::parse(&v) {
                    live.insert(p.segment);
                }
            }
            Ok(live)
        };
        match self.bodies.collect(scan) {
            Ok(0) => {}
            Ok(n) => log::info!("spool: deleted {n} segment(s) of the body log nothing needs"),
            Err(e) => log::warn!("spool: cannot clear the body log of pruned mail: {e}"),
        }
    }
}
