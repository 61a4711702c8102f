//! The keys of the index trees (`owed`, `pending`, `counts`), and their upkeep inside a
//! transaction (see the layout in the module documentation).

use super::{blocks, Item, State, TxResult};
use crate::config::Severity;
use sled::transaction::TransactionalTree;

pub(super) fn key2(a: &str, b: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + 1 + b.len());
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b);
    k
}

/// The run of `owed` that holds an item for a sink: severity, then bucket; its blocks then
/// run by age.
pub(super) fn owed_run(sink: &str, item: &Item) -> Vec<u8> {
    let mut k = key2(sink, &[rank(item.severity)]);
    k.extend_from_slice(item.bucket.as_bytes());
    k.push(0);
    k
}

/// Records that `sink` owes `item` a delivery (`on`) or no longer does, inside a transaction.
pub(super) fn owe(owed: &TransactionalTree, sink: &str, item: &Item, on: bool) -> TxResult<()> {
    blocks::mark(owed, &owed_run(sink, item), item.id, on)
}

/// Records that `item` is pending (`on`) or no longer is, inside a transaction.
pub(super) fn mark_pending(pending: &TransactionalTree, item: &Item, on: bool) -> TxResult<()> {
    blocks::mark(pending, &key2(&item.bucket, &[]), item.id, on)
}

fn rank(severity: Option<Severity>) -> u8 {
    severity.map_or(0, |s| s as u8)
}

/// Splits the part of an `owed` key (or an old `queue` key) after `sink \0` into (rank,
/// bucket, the 8-byte number at the end: a block in `owed`, an id in `queue`).
pub(super) fn parse_owed_tail(tail: &[u8]) -> Option<(u8, &[u8], u64)> {
    let (&rank, rest) = tail.split_first()?;
    let bucket_end = rest.len().checked_sub(9)?;
    (rest[bucket_end] == 0).then_some(())?;
    Some((rank, &rest[..bucket_end], id_from_suffix(rest)?))
}

pub(super) fn id_from_suffix(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

/// Adds `delta` to the count of `bucket`'s items in `state`.
pub(super) fn bump(
    counts: &TransactionalTree,
    bucket: &str,
    state: State,
    delta: i64,
) -> TxResult<()> {
    let key = key2(bucket, state.as_str().as_bytes());
    let current = counts
        .get(&key)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes);
    let next = current.saturating_add_signed(delta);
    counts.insert(key, &next.to_be_bytes())?;
    Ok(())
}
