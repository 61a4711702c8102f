//! The spool: every mail, in every bucket, made durable before any delivery is attempted.
//!
//! # Invariants (docs/design.md 1–3, in the spool's words)
//! - `ingest` writes a batch of items *and* the mailbox cursor that covers them in one sled
//!   transaction, then makes it durable — sled's flush and an `fsync` of the files sled wrote
//!   ([`durable`]) — and only then returns. The IMAP watcher fetches again only after `ingest`
//!   returned, so the cursor on disk never points past a mail that is not on disk, even after a
//!   power cut.
//! - A delivery leaves `pending` only through `record(.., Update::Delivered)` with Discord's
//!   message id; that change is made durable the same way before `record` returns. It is
//!   written as one small `ledger` entry, not a rewrite of the item ([`ledger`]). The
//!   acknowledgement that makes an item `delivered` writes, in the same transaction, the action
//!   its bucket asks for on the server after delivery (`actions.rs`), as the caller passed it
//!   with the update ([`FollowUps`]): the spool records delivery policy, it does not decide it.
//! - Nothing is deleted except delivered items by retention (`retention.rs`) and one item by an
//!   operator's explicit `drop` (`admin.rs`). Pending and dead items are never pruned; a spool
//!   at its size bound refuses new mail instead (`bound.rs`), so the cursor stays.
//!
//! # Layout (one sled database, seven trees, and the body log)
//! | tree      | key                                  | value                       |
//! |-----------|--------------------------------------|-----------------------------|
//! | `items`   | id (u64 BE)                          | a pointer to the JSON [`Item`], deflated ([`codec`]), in the body log ([`bodies`]); or that record itself |
//! | `ledger`  | id (u64 BE) sink                     | a [`Delivery`] in a few bytes (`ledger/entry.rs`), over the item's |
//! | `owed`    | sink `\0` rank bucket `\0` id / 64   | u64 BE map of ids owed to the sink ([`blocks`]) |
//! | `pending` | bucket `\0` id / 64                  | u64 BE map of pending ids ([`blocks`]) |
//! | `counts`  | bucket `\0` state; `\0bytes`         | u64 BE; the size held       |
//! | `cursors` | account `\0` folder                  | JSON [`Cursor`]             |
//! | `actions` | item id (u64 BE)                     | JSON [`Action`]: owed on the server after delivery ([`actions`]) |
//! The body log, `bodies/`, holds each new item's record, appended once by ingest and synced
//! before the transaction that points to it commits; an item rewritten in place (a handover,
//! an audit mirror, a retry) and every item from before the log keep the record in sled.
//! Ids come from sled's monotonic id generator, so key order is spool order (oldest first).
//! `owed` and `pending` let a sink find its work and `status` find the oldest pending item
//! without reading the whole spool; `counts` makes per-bucket totals O(1). A rescan recognises
//! mail spooled before by fingerprints made from the items themselves ([`recognise`]).
//!
//! Spools written before this layout had a `queue` tree (one key per owed delivery), an `open`
//! tree (one key per pending item) and a `seen` tree (one key per item): opening such a spool
//! moves `queue` into `owed` and `open` into `pending` in atomic batches and drops all three
//! (see [`Spool::migrate_indexes`]). Every key costs resident memory in sled.
//!
//! An `owed` key's rank is one byte, the item's severity at spool time (0 = P0 … 3 = P3; items
//! from a version that recorded no severity rank 0: they are the oldest). So a sink's keys run
//! by severity, then bucket, then age, and [`Spool::pending_for`] finds the most urgent, oldest
//! owed item with one seek per bucket of that severity and reads its bucket's run: P0 drains
//! before P1, oldest first, and one batch never mixes buckets. Bucket and sink names hold no
//! `\0` (the config refuses them).
//!
//! # Where it lives
//! - what is stored: [`Item`], [`Delivery`], [`Cursor`] and the spool's record of a mail,
//!   [`Mail`] (`item.rs`), as records are encoded (`codec.rs`); keys and index upkeep
//!   (`keys.rs`, `blocks.rs`); per-sink delivery entries over an item (`ledger.rs`,
//!   `ledger/entry.rs`); errors (`error.rs`);
//! - opening: sled's lock, the cursor witness, older layouts (`open.rs`, `witness.rs`,
//!   `migrate.rs`); durability points (`durable.rs`);
//! - writing: new mail with its cursor (`ingest.rs`, `bodies.rs`, `recognise.rs`, `bound.rs`), delivery
//!   results (`record.rs`), handovers to a fallback sink (`route.rs`), actions after delivery
//!   (`actions.rs`), retention (`retention.rs`), the operator's retry and drop (`admin.rs`);
//! - reading: items, owed work, totals (`query.rs`), cursors (`cursors.rs`);
//! - tools: `salvage.rs` (rebuilding a damaged spool), `selftest.rs`.

mod actions;
mod admin;
mod blocks;
mod bodies;
mod bound;
mod codec;
mod cursors;
mod durable;
mod error;
mod ingest;
mod item;
mod keys;
mod ledger;
mod migrate;
mod open;
mod query;
mod recognise;
mod record;
mod retention;
mod route;
mod salvage;
pub(crate) mod selftest;
mod witness;

pub use actions::Action;
pub(crate) use admin::{Dropped, Retried};
pub use error::SpoolError;
pub use ingest::NewItem;
pub(crate) use item::fingerprint;
pub use item::{Attachment, Cursor, Delivery, Item, Mail, Role, State};
pub use query::BucketStats;
pub use record::{Entry, FollowUps, Update};
pub(crate) use salvage::{rebuild, salvage};

use codec::{decode, encode};
use keys::{bump, id_from_suffix, key2, mark_pending, owe, owed_run, parse_owed_tail};
use sled::transaction::ConflictableTransactionError;

#[derive(Clone)]
pub struct Spool {
    db: sled::Db,
    items: sled::Tree,
    ledger: sled::Tree,
    owed: sled::Tree,
    pending: sled::Tree,
    counts: sled::Tree,
    cursors: sled::Tree,
    actions: sled::Tree,
    recognised: std::sync::Arc<recognise::Recognised>,
    /// `spool_max_mb` in bytes, shared by every clone; `u64::MAX` when unbounded.
    limit: std::sync::Arc<std::sync::atomic::AtomicU64>,
    witness: std::sync::Arc<witness::Witness>,
    files: std::sync::Arc<durable::Files>,
    bodies: std::sync::Arc<bodies::Bodies>,
}

type TxResult<T> = Result<T, ConflictableTransactionError<SpoolError>>;

/// `items`, `ledger`, `owed`, `pending`, `counts`: what a change to deliveries touches.
type DeliveryTrees<'a> = (
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
);

impl Spool {
    /// The trees a change to an item's deliveries touches, for one transaction.
    fn delivery_trees(&self) -> DeliveryTrees<'_> {
        (
            &self.items,
            &self.ledger,
            &self.owed,
            &self.pending,
            &self.counts,
        )
    }

    /// A durability point: sled's flush, then an fsync of what it wrote (see [`durable`]).
    pub fn flush(&self) -> Result<(), SpoolError> {
        self.durable()
    }

    fn durable(&self) -> Result<(), SpoolError> {
        self.db.flush()?;
        self.files.sync()
    }

    /// For the daemon, once the spool is open: sled's log cached a page at a time, so that its
    /// small appends dirty 4 KiB pages rather than the large folios of Linux 6.16 and later
    /// (see [`durable`], "Page cache"). Returns how many descriptors of the log took the advice.
    pub fn cache_log_by_page(&self) -> usize {
        self.files.cache_by_page()
    }
}

#[cfg(test)]
mod format_tests;
#[cfg(test)]
mod migrate_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tools_tests;
