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
//!   its bucket asks for on the server after delivery (`actions.rs`).
//! - Nothing is deleted except delivered items by retention (`retention.rs`) and one item by an
//!   operator's explicit `drop` (`admin.rs`). Pending and dead items are never pruned; a spool
//!   at its size bound refuses new mail instead (`bound.rs`), so the cursor stays.
//!
//! # Layout (one sled database, six trees)
//! | tree      | key                                  | value                       |
//! |-----------|--------------------------------------|-----------------------------|
//! | `items`   | id (u64 BE)                          | JSON [`Item`]               |
//! | `ledger`  | id (u64 BE) sink                     | JSON [`Delivery`], over the item's |
//! | `owed`    | sink `\0` rank bucket `\0` id / 64   | u64 BE map of ids owed to the sink ([`blocks`]) |
//! | `pending` | bucket `\0` id / 64                  | u64 BE map of pending ids ([`blocks`]) |
//! | `counts`  | bucket `\0` state; `\0bytes`         | u64 BE; the size held       |
//! | `cursors` | account `\0` folder                  | JSON [`Cursor`]             |
//! | `actions` | item id (u64 BE)                     | JSON [`Action`]: owed on the server after delivery ([`actions`]) |
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

mod actions;
mod admin;
mod blocks;
mod bound;
mod durable;
mod item;
mod ledger;
mod recognise;
mod retention;
mod route;
mod salvage;
pub mod selftest;
mod witness;

pub use actions::Action;
pub use admin::{Dropped, Retried};
pub use item::{fingerprint, Attachment, Cursor, Delivery, Item, Mail, NewItem, Role, State};
pub use retention::Pruned;
pub use salvage::{rebuild, salvage, Salvaged};

use crate::config::{AfterDelivery, Severity};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path} is in use by another process (a running daemon?)")]
    Locked { path: PathBuf },
    #[error("cannot open spool {path}: {source}")]
    Open { path: PathBuf, source: sled::Error },
    #[error("spool disk full or read-only: {0}")]
    DiskFull(std::io::Error),
    #[error("spool storage error: {0}")]
    Storage(sled::Error),
    #[error("spool full: it holds {:.1} MiB, spool_max_mb allows {:.1}; ingestion waits, mail stays on the server", *used as f64 / 1048576.0, *limit as f64 / 1048576.0)]
    Full { used: u64, limit: u64 },
    #[error("spool record {key} does not decode: {reason}")]
    Corrupt { key: String, reason: String },
}

impl SpoolError {
    fn from_sled(e: sled::Error) -> SpoolError {
        match e {
            // sled hands out copies of a stored error that keep the kind but not the errno.
            sled::Error::Io(io)
                if matches!(io.raw_os_error(), Some(28 | 30 | 122))
                    || matches!(
                        io.kind(),
                        std::io::ErrorKind::StorageFull
                            | std::io::ErrorKind::ReadOnlyFilesystem
                            | std::io::ErrorKind::QuotaExceeded
                    ) =>
            {
                SpoolError::DiskFull(io)
            }
            other => SpoolError::Storage(other),
        }
    }

    /// ENOSPC, EROFS, EDQUOT: ingestion must stop and alarm, and resume when space returns.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, SpoolError::DiskFull(_))
    }

    /// The spool's files are damaged (sled reports corruption, or a record does not decode):
    /// waiting or restarting cannot help; `spool salvage` can.
    pub fn is_damaged(&self) -> bool {
        let sled_damage = |e: &sled::Error| match e {
            sled::Error::Corruption { .. } => true,
            sled::Error::Io(io) => matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        };
        match self {
            SpoolError::Corrupt { .. } => true,
            SpoolError::Open { source, .. } | SpoolError::Storage(source) => sled_damage(source),
            _ => false,
        }
    }
}

impl From<sled::Error> for SpoolError {
    fn from(e: sled::Error) -> Self {
        SpoolError::from_sled(e)
    }
}

impl From<TransactionError<SpoolError>> for SpoolError {
    fn from(e: TransactionError<SpoolError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => SpoolError::from_sled(e),
        }
    }
}

/// How a delivery attempt changes one item for one sink.
#[derive(Debug, Clone)]
pub enum Update {
    Delivered { message_id: String, at: i64 },
    Failed { error: String },
    DeadLetter { error: String },
}

/// What delivering an item makes owed next, as the caller's config decides it: the spool
/// records what it is told (see [`Spool::record`]).
#[derive(Debug, Clone, Default)]
pub struct FollowUps {
    /// The sink owed a one-line mirror of the delivery (the bucket's audit sink).
    pub audit: Option<String>,
    /// The action owed on the server once the item is delivered everywhere.
    pub after_delivery: Option<AfterDelivery>,
}

/// One item's delivery result as [`Spool::record`] takes it: `(id, update)`, which owes
/// nothing more, or `(id, update, follow_ups)`.
pub trait Entry {
    fn id(&self) -> u64;
    fn update(&self) -> &Update;
    fn follow_ups(&self) -> &FollowUps;
}

/// The follow-ups of an update that owes nothing more.
static NOTHING: FollowUps = FollowUps {
    audit: None,
    after_delivery: None,
};

impl Entry for (u64, Update) {
    fn id(&self) -> u64 {
        self.0
    }
    fn update(&self) -> &Update {
        &self.1
    }
    fn follow_ups(&self) -> &FollowUps {
        &NOTHING
    }
}

impl Entry for (u64, Update, FollowUps) {
    fn id(&self) -> u64 {
        self.0
    }
    fn update(&self) -> &Update {
        &self.1
    }
    fn follow_ups(&self) -> &FollowUps {
        &self.2
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketStats {
    pub name: String,
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
    /// Unix seconds when the oldest pending item was spooled.
    pub oldest_pending_at: Option<i64>,
}

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
}

/// How long [`Spool::open`] waits for sled's lock on the directory.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

type TxResult<T> = Result<T, ConflictableTransactionError<SpoolError>>;

/// `items`, `ledger`, `owed`, `pending`, `counts`: what a change to deliveries touches.
type DeliveryTrees<'a> = (
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
);

fn key2(a: &str, b: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + 1 + b.len());
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b);
    k
}

/// The run of `owed` that holds an item for a sink: severity, then bucket; its blocks then
/// run by age.
fn owed_run(sink: &str, item: &Item) -> Vec<u8> {
    let mut k = key2(sink, &[rank(item.severity)]);
    k.extend_from_slice(item.bucket.as_bytes());
    k.push(0);
    k
}

/// Records that `sink` owes `item` a delivery (`on`) or no longer does, inside a transaction.
fn owe(owed: &TransactionalTree, sink: &str, item: &Item, on: bool) -> TxResult<()> {
    blocks::mark(owed, &owed_run(sink, item), item.id, on)
}

/// Records that `item` is pending (`on`) or no longer is, inside a transaction.
fn mark_pending(pending: &TransactionalTree, item: &Item, on: bool) -> TxResult<()> {
    blocks::mark(pending, &key2(&item.bucket, &[]), item.id, on)
}

fn rank(severity: Option<Severity>) -> u8 {
    severity.map_or(0, |s| s as u8)
}

/// Splits the part of an `owed` key (or an old `queue` key) after `sink \0` into (rank,
/// bucket, the 8-byte number at the end: a block in `owed`, an id in `queue`).
fn parse_owed_tail(tail: &[u8]) -> Option<(u8, &[u8], u64)> {
    let (&rank, rest) = tail.split_first()?;
    let bucket_end = rest.len().checked_sub(9)?;
    (rest[bucket_end] == 0).then_some(())?;
    Some((rank, &rest[..bucket_end], id_from_suffix(rest)?))
}

fn id_from_suffix(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

fn decode<T: serde::de::DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, SpoolError> {
    serde_json::from_slice(bytes).map_err(|e| SpoolError::Corrupt {
        key: String::from_utf8_lossy(key).escape_debug().to_string(),
        reason: e.to_string(),
    })
}

/// A cursor as stored: the cursor's own fields plus when it was written, so readers that
/// decode a plain [`Cursor`] keep working.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredCursor {
    #[serde(flatten)]
    cursor: Cursor,
    #[serde(default)]
    at: Option<i64>,
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own plain structs to JSON cannot fail (no maps with non-string keys).
    serde_json::to_vec(value).unwrap_or_default()
}

impl Spool {
    /// Opens (or creates) the spool in `dir`. Fails with [`SpoolError::Locked`] when another
    /// process holds it.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(dir).map_err(|e| SpoolError::Open {
            path: dir.to_path_buf(),
            source: e.into(),
        })?;
        // sled lets go of its file lock when its last internal handle goes, which can be a
        // moment after this process dropped its own spool (a reopen): a lock held that long is
        // waited for, a lock another process holds is reported after the wait.
        let started = std::time::Instant::now();
        let db = loop {
            match durable::config(dir, cache_bytes).open() {
                Ok(db) => break db,
                Err(sled::Error::Io(io)) if io.to_string().contains("could not acquire lock") => {
                    if started.elapsed() >= LOCK_WAIT {
                        return Err(SpoolError::Locked {
                            path: dir.to_path_buf(),
                        });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(other) => {
                    return Err(SpoolError::Open {
                        path: dir.to_path_buf(),
                        source: other,
                    })
                }
            }
        };
        let tree = |name: &str| db.open_tree(name);
        let spool = Spool {
            items: tree("items")?,
            ledger: tree("ledger")?,
            owed: tree("owed")?,
            pending: tree("pending")?,
            counts: tree("counts")?,
            cursors: tree("cursors")?,
            actions: tree("actions")?,
            recognised: Default::default(),
            limit: std::sync::Arc::new(u64::MAX.into()),
            witness: std::sync::Arc::new(witness::Witness::load(dir)?),
            files: std::sync::Arc::new(durable::Files::open(dir)?),
            db,
        };
        let missing = spool.witness.missing(|a, f| {
            spool
                .cursors
                .contains_key(key2(a, f.as_bytes()))
                .unwrap_or(false)
        });
        if !missing.is_empty() {
            return Err(SpoolError::Corrupt {
                key: "cursors".into(),
                reason: format!(
                    "the spool lost the cursor of {} that it had (truncated or rolled-back files?)",
                    missing.join(", ")
                ),
            });
        }
        spool.remember_cursors()?;
        spool.migrate_indexes()?;
        Ok(spool)
    }

    /// Moves a spool of an older layout to this one, flushed before the spool is used:
    /// - each key of `queue` (`sink \0 rank bucket \0 id`, or from older versions still
    ///   `sink \0 id`) becomes a bit in `owed`, and each key of `open` (`bucket \0 id`) a bit
    ///   in `pending`, in transactions of 1,000 keys that set the bits and remove the keys
    ///   together: a crash part-way leaves every entry in one index or the other, and the next
    ///   open finishes the move;
    /// - `seen` is dropped: fingerprints now come from the items.
    fn migrate_indexes(&self) -> Result<(), SpoolError> {
        let names = self.db.tree_names();
        let has = |name: &str| names.iter().any(|n| n.as_ref() == name.as_bytes());
        if !["queue", "open", "seen"].iter().any(|n| has(n)) {
            return Ok(());
        }
        if has("queue") {
            let moved = self.move_index("queue", &self.owed, |key| {
                let Some(sep) = key.iter().position(|b| *b == 0) else {
                    return Ok(None);
                };
                let (sink, tail) = (&key[..sep], &key[sep + 1..]);
                if let Some((rank, bucket, id)) = parse_owed_tail(tail) {
                    let run = [sink, &[0, rank], bucket, &[0]].concat();
                    return Ok(Some((run, id)));
                }
                // The oldest form, `sink \0 id`: rank and bucket come from the item (an item
                // no longer there is owed nothing; one that does not decode stops the open).
                let Ok(id) = <[u8; 8]>::try_from(tail).map(u64::from_be_bytes) else {
                    return Ok(None);
                };
                let sink = String::from_utf8_lossy(sink);
                Ok(self.get(id)?.map(|item| (owed_run(&sink, &item), id)))
            })?;
            log::info!("spool: {moved} queue entries moved to the compact index");
        }
        if has("open") {
            let moved = self.move_index("open", &self.pending, |key| {
                let sep = key.iter().position(|b| *b == 0);
                Ok(sep
                    .zip(id_from_suffix(key))
                    .map(|(sep, id)| (key[..=sep].to_vec(), id)))
            })?;
            log::info!("spool: {moved} pending entries moved to the compact index");
        }
        if has("seen") {
            self.db.drop_tree("seen")?;
        }
        self.durable()?;
        Ok(())
    }

    /// Moves every key of the old tree `name` into the block index `to` as the (prefix, id)
    /// that `entry` makes of it (a key it makes nothing of is dropped), then drops `name`.
    /// Returns how many keys it moved.
    fn move_index(
        &self,
        name: &str,
        to: &sled::Tree,
        entry: impl Fn(&[u8]) -> Result<Option<(Vec<u8>, u64)>, SpoolError>,
    ) -> Result<usize, SpoolError> {
        let old = self.db.open_tree(name)?;
        let mut moved = 0;
        loop {
            let keys = old
                .iter()
                .keys()
                .take(1_000)
                .collect::<Result<Vec<_>, _>>()?;
            if keys.is_empty() {
                break;
            }
            let entries = keys
                .iter()
                .map(|k| entry(k))
                .collect::<Result<Vec<_>, _>>()?;
            (&old, to).transaction(|(old_t, to_t)| {
                for (k, e) in keys.iter().zip(&entries) {
                    if let Some((prefix, id)) = e {
                        blocks::mark(to_t, prefix, *id, true)?;
                    }
                    old_t.remove(k)?;
                }
                Ok(())
            })?;
            moved += keys.len();
        }
        self.durable()?;
        self.db.drop_tree(name)?;
        Ok(moved)
    }

    pub fn cursor(&self, account: &str, folder: &str) -> Result<Option<Cursor>, SpoolError> {
        let key = key2(account, folder.as_bytes());
        self.cursors
            .get(&key)?
            .map(|v| decode(&key, &v))
            .transpose()
    }

    /// When the cursor of this mailbox was last written (Unix seconds); `None` for cursors
    /// written before this was recorded. Bounds the rescan after a UIDVALIDITY change.
    pub fn cursor_written_at(
        &self,
        account: &str,
        folder: &str,
    ) -> Result<Option<i64>, SpoolError> {
        let key = key2(account, folder.as_bytes());
        let stored: Option<StoredCursor> = self
            .cursors
            .get(&key)?
            .map(|v| decode(&key, &v))
            .transpose()?;
        Ok(stored.and_then(|s| s.at))
    }

    /// Every cursor: `(account, folder, cursor)`.
    pub fn cursors(&self) -> Result<Vec<(String, String, Cursor)>, SpoolError> {
        let mut out = Vec::new();
        for kv in self.cursors.iter() {
            let (k, v) = kv?;
            let text = String::from_utf8_lossy(&k);
            let (account, folder) = text.split_once('\0').unwrap_or((&text, ""));
            out.push((account.to_string(), folder.to_string(), decode(&k, &v)?));
        }
        Ok(out)
    }

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
        self.write_items(
            account,
            folder,
            cursor.uidvalidity,
            Some(cursor),
            items,
            rescan,
        )
    }

    /// Spools mail from below the cursor (a first-run backfill, a rescan after a UIDVALIDITY
    /// change) without moving the cursor, skipping mail already spooled for this mailbox, so a
    /// crash part-way and a second pass add nothing twice. Flushed before it returns.
    pub fn backfill(
        &self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
        items: &[NewItem],
    ) -> Result<Vec<u64>, SpoolError> {
        self.write_items(account, folder, uidvalidity, None, items, true)
    }

    fn write_items(
        &self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
        cursor: Option<Cursor>,
        items: &[NewItem],
        rescan: bool,
    ) -> Result<Vec<u64>, SpoolError> {
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
        let mailbox = item::Mailbox {
            account,
            folder,
            uidvalidity,
        };
        let trees = (
            &self.items,
            &self.owed,
            &self.pending,
            &self.counts,
            &self.cursors,
        );
        let (written, digests) =
            trees.transaction(|(items_t, owed_t, pending_t, counts_t, cursors_t)| {
                let (mut written, mut bytes, mut digests) = (Vec::new(), 0, HashSet::new());
                for (new, &id) in items.iter().zip(&ids) {
                    let mail = new.mail();
                    if let Some(known) = &known {
                        let d = recognise::digest(&fingerprint(&mail));
                        if known.contains(&d) || !digests.insert(d) {
                            continue;
                        }
                    }
                    let item = new.record(mail, id, now, &mailbox);
                    let idb = id.to_be_bytes();
                    let encoded = encode(&item);
                    bytes += bound::footprint(encoded.len(), &item);
                    items_t.insert(&idb, encoded)?;
                    for d in &item.deliveries {
                        owe(owed_t, &d.sink, &item, true)?;
                    }
                    let state = item.state();
                    if state == State::Pending {
                        mark_pending(pending_t, &item, true)?;
                    }
                    bump(counts_t, &item.bucket, state, 1)?;
                    written.push(id);
                }
                if let Some(cursor) = cursor {
                    let stored = StoredCursor {
                        cursor,
                        at: Some(now),
                    };
                    cursors_t.insert(key2(account, folder.as_bytes()), encode(&stored))?;
                }
                bound::grow(counts_t, bytes as i64)?;
                Ok((written, digests))
            })?;
        self.durable()?;
        if let Some(mut known) = known {
            known.extend(digests);
            self.recognised.put(account, folder, known);
        }
        if cursor.is_some() {
            // The mail is durable already; a witness not written is written by a later ingest.
            if let Err(e) = self.witness.remember([(account, folder)]) {
                log::warn!("spool: cannot note {account}/{folder} in the cursor witness: {e}");
            }
        }
        Ok(written)
    }

    /// Up to `limit` items that `sink` still owes, all of one bucket: the bucket of the most
    /// urgent (lowest severity rank), oldest owed item, and that bucket's items of the same
    /// severity, oldest first. See [`Spool::pending_where`].
    pub fn pending_for(&self, sink: &str, limit: usize) -> Result<Vec<Item>, SpoolError> {
        self.pending_where(sink, limit, &|_, _| true)
    }

    pub fn get(&self, id: u64) -> Result<Option<Item>, SpoolError> {
        let key = id.to_be_bytes();
        match self.items.get(key)? {
            Some(v) => self.read(&key, &v).map(Some),
            None => Ok(None),
        }
    }

    /// An item's record with its ledger entries laid over it.
    fn read(&self, key: &[u8], value: &[u8]) -> Result<Item, SpoolError> {
        let mut item: Item = decode(key, value)?;
        ledger::overlay(&self.ledger, &mut item)?;
        Ok(item)
    }

    /// Applies delivery results of `sink` to items, and what each delivery makes owed next
    /// ([`FollowUps`], as the caller decided it), in one transaction; made durable when any
    /// item left `pending` here. Each entry is an `(id, update)`, or an
    /// `(id, update, follow_ups)`:
    /// - an item delivered here for the first time (not itself as an audit mirror) gets a
    ///   one-line mirror owed to `follow_ups.audit`, when that names another sink not listed
    ///   yet;
    /// - an item this update makes `delivered` owes `follow_ups.after_delivery` on the server
    ///   ([`actions`]).
    pub fn record<E: Entry>(&self, sink: &str, updates: &[E]) -> Result<(), SpoolError> {
        let (items, ledger, owed, pending, counts) = self.delivery_trees();
        let trees = (items, ledger, owed, pending, counts, &self.actions);
        let settled = trees.transaction(
            |(items_t, ledger_t, owed_t, pending_t, counts_t, actions_t)| {
                let mut settled = false;
                for entry in updates {
                    let (id, update, then) = (entry.id(), entry.update(), entry.follow_ups());
                    let idb = id.to_be_bytes();
                    let Some(bytes) = items_t.get(idb)? else {
                        continue;
                    };
                    let mut item: Item =
                        decode(&idb, &bytes).map_err(ConflictableTransactionError::Abort)?;
                    ledger::overlay_tx(ledger_t, &mut item)?;
                    let before = item.state();
                    let cost = bound::footprint(bytes.len(), &item);
                    let Some(d) = item.delivery_mut(sink) else {
                        continue;
                    };
                    if d.state != State::Pending {
                        continue;
                    }
                    d.attempts += 1;
                    match update {
                        Update::Delivered { message_id, at } => {
                            d.state = State::Delivered;
                            d.message_id = Some(message_id.clone());
                            d.delivered_at = Some(*at);
                        }
                        Update::Failed { error } => d.last_error = Some(error.clone()),
                        Update::DeadLetter { error } => {
                            d.state = State::Dead;
                            d.last_error = Some(error.clone());
                        }
                    }
                    let mirrored = d.role != Some(Role::Audit);
                    if d.state != State::Pending {
                        owe(owed_t, sink, &item, false)?;
                        settled = true;
                    }
                    let mut added = false;
                    if mirrored && matches!(update, Update::Delivered { .. }) {
                        if let Some(a) = then.audit.as_deref().filter(|a| *a != sink) {
                            if item.delivery(a).is_none() {
                                item.deliveries.push(Delivery::owed(a, Role::Audit));
                                owe(owed_t, a, &item, true)?;
                                added = true;
                            }
                        }
                    }
                    let after = item.state();
                    if after != before {
                        bump(counts_t, &item.bucket, before, -1)?;
                        bump(counts_t, &item.bucket, after, 1)?;
                        if after != State::Pending {
                            mark_pending(pending_t, &item, false)?;
                        }
                        if let (State::Delivered, Update::Delivered { at, .. }) = (after, update) {
                            let action = then.after_delivery.clone();
                            actions::owe(actions_t, &item, action, *at)?;
                        }
                    }
                    if added {
                        // The record lists a new delivery: rewritten whole, its entries settled.
                        let encoded = encode(&item);
                        bound::restate(counts_t, cost, encoded.len(), &item)?;
                        items_t.insert(&idb, encoded)?;
                        ledger::settle(ledger_t, &item)?;
                    } else {
                        ledger::put_tx(ledger_t, &item, sink)?;
                    }
                }
                Ok(settled)
            },
        )?;
        if settled {
            self.durable()?;
        }
        Ok(())
    }

    /// Per-bucket totals and the oldest pending item's spool time, from the indexes.
    pub fn stats(&self, bucket: &str) -> Result<BucketStats, SpoolError> {
        let count = |state: State| -> Result<u64, SpoolError> {
            Ok(self
                .counts
                .get(key2(bucket, state.as_str().as_bytes()))?
                .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
                .map_or(0, u64::from_be_bytes))
        };
        let oldest = match blocks::ids(&self.pending, key2(bucket, &[]), 0).next() {
            Some(id) => self.get(id?)?.map(|i| i.spooled_at),
            None => None,
        };
        Ok(BucketStats {
            name: bucket.to_string(),
            pending: count(State::Pending)?,
            delivered: count(State::Delivered)?,
            dead: count(State::Dead)?,
            oldest_pending_at: oldest,
        })
    }

    /// Totals of the `configured` buckets, in that order, then of any bucket the spool still
    /// holds from an older config.
    pub fn bucket_stats<'a>(
        &self,
        configured: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<BucketStats>, SpoolError> {
        let mut names: Vec<String> = configured.into_iter().map(str::to_string).collect();
        for n in self.bucket_names()? {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        names.iter().map(|n| self.stats(n)).collect()
    }

    /// Every bucket name that has ever held an item, from the counters.
    pub fn bucket_names(&self) -> Result<Vec<String>, SpoolError> {
        let mut names: Vec<String> = Vec::new();
        for kv in self.counts.iter() {
            let (k, _) = kv?;
            let name =
                String::from_utf8_lossy(k.split(|b| *b == 0).next().unwrap_or(&[])).to_string();
            // The empty name holds the spool's own counters (`bound`), not a bucket.
            if !name.is_empty() && names.last() != Some(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// All items in spool order, read lazily: memory stays bounded however large the spool.
    pub fn iter(&self) -> impl Iterator<Item = Result<Item, SpoolError>> + '_ {
        self.items.iter().map(|kv| {
            let (k, v) = kv?;
            self.read(&k, &v)
        })
    }

    /// Writes every mailbox with a cursor to the witness (see [`witness`]).
    fn remember_cursors(&self) -> Result<(), SpoolError> {
        let mut mailboxes = Vec::new();
        for kv in self.cursors.iter() {
            let (k, _) = kv?;
            if let Some(sep) = k.iter().position(|b| *b == 0) {
                let account = String::from_utf8_lossy(&k[..sep]).to_string();
                let folder = String::from_utf8_lossy(&k[sep + 1..]).to_string();
                mailboxes.push((account, folder));
            }
        }
        self.witness
            .remember(mailboxes.iter().map(|(a, f)| (a.as_str(), f.as_str())))
    }

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
}

fn bump(counts: &TransactionalTree, bucket: &str, state: State, delta: i64) -> TxResult<()> {
    let key = key2(bucket, state.as_str().as_bytes());
    let current = counts
        .get(&key)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes);
    let next = current.saturating_add_signed(delta);
    counts.insert(key, &next.to_be_bytes())?;
    Ok(())
}

#[cfg(test)]
mod format_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tools_tests;
