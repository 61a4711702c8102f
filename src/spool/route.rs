//! Which owed items a sink takes next, and deliveries added after spooling (failover).
//!
//! [`Spool::pending_where`] lets a sink pass over buckets it must not drain yet (a digest
//! bucket between digests) without reading their items: it reads one head per bucket run.
//! [`Spool::hand_over`] adds a delivery to another sink to items still pending, in one
//! transaction with their `owed` bits and the bytes the spool holds, flushed: a crash leaves
//! each item owed to the fallback sink or not, never half.

use super::{
    blocks, bound, encode, key2, owe, parse_owed_tail, Delivery, Item, Role, Spool, SpoolError,
    State,
};
use sled::Transactional;

impl Spool {
    /// Up to `limit` items that `sink` still owes, all of one bucket: among the bucket runs that
    /// `eligible(bucket, oldest owed id)` accepts, the one of the most urgent (lowest severity
    /// rank), oldest owed item, and that bucket's items of the same severity, oldest first.
    /// Reads one key per bucket run plus the batch, however long the backlog.
    pub(crate) fn pending_where(
        &self,
        sink: &str,
        limit: usize,
        eligible: &dyn Fn(&str, u64) -> bool,
    ) -> Result<Vec<Item>, SpoolError> {
        let prefix = key2(sink, &[]);
        // The head of each eligible bucket's run at the most urgent rank: (rank, id, run prefix).
        let mut best: Option<(u8, u64, Vec<u8>)> = None;
        let mut from = prefix.clone();
        while let Some(kv) = self.owed.range(from.clone()..).next() {
            let (k, v) = kv?;
            let Some(tail) = k.strip_prefix(prefix.as_slice()) else {
                break;
            };
            let head = parse_owed_tail(tail).zip(blocks::first_id(&k, &v));
            let Some(((rank, bucket, _), id)) = head else {
                // Not a key this version writes: step over it.
                from = [k.as_ref(), &[0]].concat();
                continue;
            };
            if best.as_ref().is_some_and(|b| rank > b.0) {
                break;
            }
            let run = [prefix.as_slice(), &[rank], bucket, &[0]].concat();
            let better = best.as_ref().is_none_or(|b| id < b.1);
            if better && eligible(&String::from_utf8_lossy(bucket), id) {
                best = Some((rank, id, run.clone()));
            }
            // The first key past this bucket's run: its terminating 0 raised to 1.
            from = run;
            if let Some(last) = from.last_mut() {
                *last = 1;
            }
        }
        let mut out = Vec::new();
        let Some((_, _, run)) = best else {
            return Ok(out);
        };
        for id in blocks::ids(&self.owed, run, 0) {
            if let Some(item) = self.get(id?)? {
                out.push(item);
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Up to `limit` pending items of `bucket` with an id of at least `from`, oldest first.
    pub(crate) fn pending_in(
        &self,
        bucket: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<Item>, SpoolError> {
        let mut out = Vec::new();
        for id in blocks::ids(&self.pending, key2(bucket, &[]), from) {
            if out.len() >= limit {
                break;
            }
            if let Some(item) = self.get(id?)? {
                out.push(item);
            }
        }
        Ok(out)
    }

    /// Makes every item of `ids` that is still pending owed to `sink` as well (role
    /// `fallback`), unless it already is. Returns how many items it changed; flushed.
    pub(crate) fn hand_over(&self, ids: &[u64], sink: &str) -> Result<usize, SpoolError> {
        let trees = (&self.items, &self.ledger, &self.owed, &self.counts);
        let added = trees.transaction(|(items_t, ledger_t, owed_t, counts_t)| {
            let mut added = 0;
            for id in ids {
                let idb = id.to_be_bytes();
                let Some((mut item, cost)) = self.bodies.item_tx(items_t, ledger_t, *id)? else {
                    continue;
                };
                if item.state() != State::Pending || item.delivery(sink).is_some() {
                    continue;
                }
                item.deliveries.push(Delivery::owed(sink, Role::Fallback));
                owe(owed_t, sink, &item, true)?;
                let encoded = encode(&item);
                bound::restate(counts_t, cost, encoded.len(), &item)?;
                items_t.insert(&idb, encoded)?;
                super::ledger::settle(ledger_t, &item)?;
                added += 1;
            }
            Ok(added)
        })?;
        if added > 0 {
            self.durable()?;
        }
        Ok(added)
    }
}
