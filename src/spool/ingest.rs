//! Ingest: new mail and the cursor that covers it, written in one transaction and made
//! durable before the watcher fetches again (docs/design.md 1, 2).

use super::bodies::Pointer;
use super::cursors::StoredCursor;
use super::{
    bound, bump, encode, fingerprint, key2, mark_pending, owe, recognise, Cursor, Delivery, Item,
    Mail, Spool, SpoolError, State, TxResult,
};
use crate::config::Severity;
use sled::transaction::TransactionalTree;
use sled::Transactional;
use std::collections::HashSet;

/// What the IMAP side hands the spool: an item without its id and time yet, with the
/// [`Mail`] the reader of mail made of what it read (the spool knows no mail parsing).
#[derive(Debug, Clone)]
pub struct NewItem {
    pub bucket: String,
    /// The bucket's severity: P0 mail is delivered before P1 mail, and so on.
    pub severity: Severity,
    pub uid: u32,
    pub mail: Mail,
    pub sinks: Vec<String>,
}

impl NewItem {
    /// The record of this mail as the spool writes it: `id`, spooled at `now` from `mailbox`,
    /// owed to each of its sinks, nothing tried yet.
    pub(super) fn record(&self, id: u64, now: i64, mailbox: &Mailbox<'_>) -> Item {
        let Mail {
            message_id,
            from,
            subject,
            date,
            snippet,
            parse_error,
            attachments,
        } = self.mail.clone();
        Item {
            id,
            bucket: self.bucket.clone(),
            severity: Some(self.severity),
            account: mailbox.account.to_string(),
            folder: mailbox.folder.to_string(),
            uidvalidity: mailbox.uidvalidity,
            uid: self.uid,
            message_id,
            from,
            subject,
            date,
            spooled_at: now,
            snippet,
            parse_error,
            attachments,
            deliveries: self
                .sinks
                .iter()
                .map(|s| Delivery {
                    sink: s.clone(),
                    state: State::Pending,
                    attempts: 0,
                    last_error: None,
                    delivered_at: None,
                    message_id: None,
                    role: None,
                })
                .collect(),
        }
    }
}

/// The mailbox a batch of mail was fetched from.
pub(super) struct Mailbox<'a> {
    pub account: &'a str,
    pub folder: &'a str,
    pub uidvalidity: u32,
}

impl Spool {
    /// Writes `items` and the `cursor` covering them in one transaction and flushes it to disk.
    /// With `rescan` set (after a UIDVALIDITY change) a mail whose fingerprint is already in the
    /// spool for this mailbox is skipped. Returns the ids of the items written.
    pub fn ingest(
        &self,
        account: &str,
        folder: &str,
        cursor: Cursor,
        items: &[NewItem],
        rescan: bool,
    ) -> Result<Vec<u64>, SpoolError> {
        let mailbox = Mailbox {
            account,
            folder,
            uidvalidity: cursor.uidvalidity,
        };
        self.write_items(&mailbox, Some(cursor), items, rescan)
    }

    /// Spools mail from below the cursor (a first-run backfill, a rescan after a UIDVALIDITY
    /// change) without moving the cursor, skipping mail already spooled for this mailbox, so a
    /// crash part-way and a second pass add nothing twice. Flushed before it returns.
    pub(crate) fn backfill(
        &self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
        items: &[NewItem],
    ) -> Result<Vec<u64>, SpoolError> {
        let mailbox = Mailbox {
            account,
            folder,
            uidvalidity,
        };
        self.write_items(&mailbox, None, items, true)
    }

    /// [`Spool::ingest`] with the cursor, [`Spool::backfill`] without.
    fn write_items(
        &self,
        mailbox: &Mailbox<'_>,
        cursor: Option<Cursor>,
        items: &[NewItem],
        rescan: bool,
    ) -> Result<Vec<u64>, SpoolError> {
        let (account, folder) = (mailbox.account, mailbox.folder);
        self.check_room()?;
        let now = chrono::Utc::now().timestamp();
        let ids = items
            .iter()
            .map(|_| self.db.generate_id())
            .collect::<Result<Vec<_>, _>>()?;
        // A rescan skips mail already spooled for this mailbox, and a mail met twice in it.
        let known = if rescan {
            Some(self.known(account, folder)?)
        } else {
            self.recognised.forget(Some((account, folder)));
            None
        };
        let mut digests = HashSet::new();
        let mut chosen = Vec::with_capacity(items.len());
        for (new, &id) in items.iter().zip(&ids) {
            if let Some(known) = &known {
                let d = recognise::digest(&fingerprint(&new.mail));
                if known.contains(&d) || !digests.insert(d) {
                    continue;
                }
            }
            chosen.push(new.record(id, now, mailbox));
        }
        // The records go to the body log, durable before the transaction that points to them
        // commits; the writer is held until that transaction is durable too (`bodies.rs`).
        let records = super::codec::encode_all(&chosen);
        let mut log = self.bodies.writer()?;
        let pointers = log.append(&records)?;
        let trees = (
            &self.items,
            &self.owed,
            &self.pending,
            &self.counts,
            &self.cursors,
        );
        let written = trees.transaction(|(items_t, owed_t, pending_t, counts_t, cursors_t)| {
            let (mut written, mut bytes) = (Vec::new(), 0);
            for (item, pointer) in chosen.iter().zip(&pointers) {
                bytes += write_item((items_t, owed_t, pending_t, counts_t), item, pointer)?;
                written.push(item.id);
            }
            if let Some(cursor) = cursor {
                let stored = StoredCursor {
                    cursor,
                    at: Some(now),
                };
                cursors_t.insert(key2(account, folder.as_bytes()), encode(&stored))?;
            }
            bound::grow(counts_t, bytes as i64)?;
            Ok(written)
        })?;
        self.durable()?;
        drop(log);
        self.remember_written(
            account,
            folder,
            known.map(|k| (k, digests)),
            cursor.is_some(),
        );
        Ok(written)
    }

    /// After a durable write to the mailbox: a rescan's fingerprints, the `known` ones and the
    /// `new` ones, kept for its next batch; a mailbox whose cursor moved noted in the witness.
    fn remember_written(
        &self,
        account: &str,
        folder: &str,
        rescanned: Option<(HashSet<u128>, HashSet<u128>)>,
        cursor_moved: bool,
    ) {
        if let Some((mut known, new)) = rescanned {
            known.extend(new);
            self.recognised.put(account, folder, known);
        }
        if cursor_moved {
            // The mail is durable already; a witness not written is written by a later ingest.
            if let Err(e) = self.witness.remember([(account, folder)]) {
                log::warn!("spool: cannot note {account}/{folder} in the cursor witness: {e}");
            }
        }
    }
}

/// Writes a new `item` (a `pointer` to its record in the body log) and its index entries
/// (`items`, `owed`, `pending`, `counts`) in an ingest's transaction; returns the room it
/// takes ([`bound::footprint`]).
fn write_item(
    (items, owed, pending, counts): (
        &TransactionalTree,
        &TransactionalTree,
        &TransactionalTree,
        &TransactionalTree,
    ),
    item: &Item,
    pointer: &Pointer,
) -> TxResult<u64> {
    let bytes = bound::footprint(pointer.len as usize, item);
    items.insert(&item.id.to_be_bytes(), &pointer.encode())?;
    for d in &item.deliveries {
        owe(owed, &d.sink, item, true)?;
    }
    let state = item.state();
    if state == State::Pending {
        mark_pending(pending, item, true)?;
    }
    bump(counts, &item.bucket, state, 1)?;
    Ok(bytes)
}
