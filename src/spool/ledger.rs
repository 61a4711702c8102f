//! The delivery ledger: where an item stands with one sink, written apart from the item.
//!
//! An item's record holds the mail (summary, snippet, attachments list) and one [`Delivery`]
//! per sink; rewriting all of it to mark one delivery done cost an SD card three times what
//! spooling the mail did. So [`Spool::record`](super::Spool::record) writes only the changed
//! delivery, under `id ‖ sink` in the `ledger` tree, and every read of an item lays its ledger
//! entries over the deliveries of its record ([`overlay`]). An entry, where there is one, is
//! the truth for that (item, sink).
//!
//! A change that rewrites the whole item anyway (a delivery added by failover or an audit
//! mirror, `spool retry`) writes it with every delivery as it stands and removes its entries
//! ([`settle`]); removing an item removes its entries. A spool written before the ledger
//! existed has none and reads as it always did. An older version would not see the entries
//! and would send delivered mail again: no downgrade past this layout.

use super::{Delivery, Item, SpoolError, TxResult};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

mod entry;

/// `id ‖ sink`: an item's entries are adjacent, in spool order.
fn key(id: u64, sink: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + sink.len());
    k.extend_from_slice(&id.to_be_bytes());
    k.extend_from_slice(sink.as_bytes());
    k
}

fn lay(item: &mut Item, at: usize, entry: Delivery) {
    if let Some(d) = item.deliveries.get_mut(at) {
        if d.sink == entry.sink {
            *d = entry;
        }
    }
}

/// Lays the ledger's entries for `item` over its deliveries.
pub(super) fn overlay(ledger: &sled::Tree, item: &mut Item) -> Result<(), SpoolError> {
    for at in 0..item.deliveries.len() {
        let sink = &item.deliveries[at].sink;
        let k = key(item.id, sink);
        if let Some(v) = ledger.get(&k)? {
            let entry = entry::decode(&k, sink, &v)?;
            lay(item, at, entry);
        }
    }
    Ok(())
}

/// [`overlay`] inside a transaction.
pub(super) fn overlay_tx(ledger: &TransactionalTree, item: &mut Item) -> TxResult<()> {
    for at in 0..item.deliveries.len() {
        let sink = &item.deliveries[at].sink;
        let k = key(item.id, sink);
        if let Some(v) = ledger.get(&k)? {
            let entry = entry::decode(&k, sink, &v).map_err(ConflictableTransactionError::Abort)?;
            lay(item, at, entry);
        }
    }
    Ok(())
}

/// Records where `item` stands with `sink` (a delivery its record already lists).
pub(super) fn put_tx(ledger: &TransactionalTree, item: &Item, sink: &str) -> TxResult<()> {
    if let Some(d) = item.delivery(sink) {
        ledger.insert(key(item.id, sink), entry::encode(d))?;
    }
    Ok(())
}

/// The item's record now holds every delivery as it stands (or the item is gone): its
/// entries go.
pub(super) fn settle(ledger: &TransactionalTree, item: &Item) -> TxResult<()> {
    for d in &item.deliveries {
        ledger.remove(key(item.id, &d.sink))?;
    }
    Ok(())
}

/// Reads `item`'s entries from another spool's ledger (salvage), ignoring any it cannot read:
/// the delivery then counts as owed and is sent again rather than lost.
pub(super) fn overlay_lenient(ledger: &sled::Tree, item: &mut Item) {
    for at in 0..item.deliveries.len() {
        let sink = &item.deliveries[at].sink;
        let k = key(item.id, sink);
        if let Some(entry) = ledger
            .get(&k)
            .ok()
            .flatten()
            .and_then(|v| entry::decode(&k, sink, &v).ok())
        {
            lay(item, at, entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Cursor, NewItem, Spool, State, Update};
    use crate::spool::Mail;

    fn spool(tag: &str) -> (Spool, std::path::PathBuf) {
        let d = std::env::temp_dir().join(format!(
            "mb-ledger-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        (Spool::open(&d, 1 << 20).unwrap(), d)
    }

    fn ingest(spool: &Spool, uid: u32, sinks: &[&str]) -> u64 {
        let new = NewItem {
            bucket: "b".into(),
            severity: crate::config::Severity::P3,
            uid,
            mail: Mail {
                subject: format!("mail {uid}"),
                snippet: "x".repeat(1500),
                ..Mail::default()
            },
            sinks: sinks.iter().map(|s| s.to_string()).collect(),
        };
        let cursor = Cursor {
            uidvalidity: 1,
            last_uid: uid,
        };
        spool.ingest("a", "INBOX", cursor, &[new], false).unwrap()[0]
    }

    fn delivered(id: &str) -> Update {
        Update::Delivered {
            message_id: id.into(),
            at: 1_700_000_000,
        }
    }

    #[test]
    fn a_delivery_is_a_small_ledger_entry_and_the_item_record_stays_as_spooled() {
        let (spool, d) = spool("small");
        let id = ingest(&spool, 1, &["s", "t"]);
        let record = spool.items.get(id.to_be_bytes()).unwrap().unwrap();
        spool.record("s", &[(id, delivered("m1"))]).unwrap();
        assert_eq!(
            spool.items.get(id.to_be_bytes()).unwrap().unwrap(),
            record,
            "the item's record is not rewritten"
        );
        let entry = spool.ledger.get(super::key(id, "s")).unwrap().unwrap();
        assert!(entry.len() < 200, "{} bytes", entry.len());
        let item = spool.get(id).unwrap().unwrap();
        assert_eq!(item.delivery("s").unwrap().state, State::Delivered);
        assert_eq!(
            item.delivery("s").unwrap().message_id.as_deref(),
            Some("m1")
        );
        assert_eq!(item.state(), State::Pending, "t still owes it");
        spool.record("t", &[(id, delivered("m2"))]).unwrap();
        drop(spool);
        let spool = Spool::open(&d, 1 << 20).unwrap();
        let item = spool.iter().next().unwrap().unwrap();
        assert_eq!(item.state(), State::Delivered);
        assert_eq!(spool.stats("b").unwrap().delivered, 1);
        assert!(spool.pending_for("s", 10).unwrap().is_empty());
    }

    #[test]
    fn removing_or_rewriting_an_item_removes_its_entries() {
        let (spool, _d) = spool("settle");
        let kept = ingest(&spool, 1, &["s"]);
        let dead = ingest(&spool, 2, &["s"]);
        spool.record("s", &[(kept, delivered("m1"))]).unwrap();
        let error = "refused".to_string();
        spool
            .record("s", &[(dead, Update::DeadLetter { error })])
            .unwrap();
        assert_eq!(spool.ledger.len(), 2);
        // `spool retry` rewrites the item whole: it owes the delivery again.
        spool.retry(dead).unwrap();
        assert_eq!(spool.ledger.len(), 1);
        let item = spool.get(dead).unwrap().unwrap();
        assert_eq!(item.state(), State::Pending);
        // Retention removes the delivered item and its entry.
        let pruned = spool.prune_delivered(i64::MAX).unwrap();
        assert_eq!(pruned.items, 1);
        assert_eq!(spool.ledger.len(), 0);
        assert!(spool.get(kept).unwrap().is_none());
    }
}
