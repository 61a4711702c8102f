//! The spool's size bound (`spool_max_mb`). The spool counts the bytes it holds — each item's
//! record plus a fixed allowance for its index keys — in the `counts` tree under `\0bytes`,
//! updated in the same transaction as the records, so the figure is exact after a crash.
//! sled's files on disk are larger (its log keeps old versions until it compacts) and do not
//! shrink when items go (sled reuses the space), which is why the bound counts what the spool
//! holds rather than measuring the directory: pruning must be able to bring it back under.
//!
//! At the bound, [`Spool::ingest`] and [`Spool::backfill`] refuse with [`SpoolError::Full`]
//! *before* writing anything: the IMAP watcher then waits as it does on a full disk (the
//! cursor stays, mail stays on the server) and retries. Recording deliveries is never refused,
//! so delivery goes on and frees room (delivered items can be pruned).

use super::{Item, Spool, SpoolError, TxResult};
use sled::transaction::TransactionalTree;
use std::sync::atomic::Ordering;

const KEY: &[u8] = b"\0bytes";

/// What one item costs: its record, plus an allowance for its index keys (`items`, `owed`,
/// `pending`). The allowance is the one set when the spool had four keys per item: changing it
/// would let the figure of a spool written before drift as its items go.
pub(super) fn footprint(encoded_len: usize, item: &Item) -> u64 {
    (encoded_len + 96 + 32 * item.deliveries.len()) as u64
}

fn read(v: Option<sled::IVec>) -> Option<u64> {
    v.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(u64::from_be_bytes)
}

/// Adds `delta` to the bytes held, inside a transaction over `counts`.
pub(super) fn grow(counts: &TransactionalTree, delta: i64) -> TxResult<()> {
    if delta == 0 {
        return Ok(());
    }
    let held = read(counts.get(KEY)?).unwrap_or(0);
    counts.insert(KEY, &held.saturating_add_signed(delta).to_be_bytes())?;
    Ok(())
}

/// Moves the bytes held from an item's `before` cost ([`footprint`] as it was stored) to the
/// cost of `after` encoded as `encoded_len`, inside a transaction over `counts`.
pub(super) fn restate(
    counts: &TransactionalTree,
    before: u64,
    encoded_len: usize,
    after: &Item,
) -> TxResult<()> {
    grow(counts, footprint(encoded_len, after) as i64 - before as i64)
}

impl Spool {
    /// Sets the bound in bytes (`u64::MAX`: none); shared by every clone of this spool.
    pub(crate) fn set_size_limit(&self, bytes: u64) {
        self.limit.store(bytes, Ordering::Relaxed);
    }

    pub(crate) fn size_limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// The bytes the spool holds (see the module documentation).
    pub(crate) fn held_bytes(&self) -> Result<u64, SpoolError> {
        Ok(read(self.counts.get(KEY)?).unwrap_or(0))
    }

    /// Whether new mail may be written; [`SpoolError::Full`] at the bound.
    pub(super) fn check_room(&self) -> Result<(), SpoolError> {
        let limit = self.size_limit();
        if limit == u64::MAX {
            return Ok(());
        }
        let used = self.held_bytes()?;
        if used >= limit {
            return Err(SpoolError::Full { used, limit });
        }
        Ok(())
    }

    /// Counts the bytes held by reading every item once, for a spool written by a version that
    /// did not count them. Reads one item at a time; does nothing when the count exists.
    pub(crate) fn count_bytes_if_missing(&self) -> Result<(), SpoolError> {
        if self.counts.get(KEY)?.is_some() {
            return Ok(());
        }
        let mut held = 0u64;
        for kv in self.items.iter() {
            let (k, v) = kv?;
            let item: Item = self.bodies.item(&k, &v)?;
            held += footprint(super::bodies::stored_len(&v), &item);
        }
        // Compare-and-swap: an item ingested meanwhile would have created the key.
        let _ =
            self.counts
                .compare_and_swap(KEY, None as Option<&[u8]>, Some(&held.to_be_bytes()))?;
        Ok(())
    }
}

impl SpoolError {
    /// The spool is at its size bound: ingestion waits, and resumes once room is made.
    pub(crate) fn is_full(&self) -> bool {
        matches!(self, SpoolError::Full { .. })
    }
}
