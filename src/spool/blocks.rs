//! The compact indexes, `pending` and `owed`: a set of item ids under one key prefix, 64 ids to
//! a sled key.
//!
//! A key is the prefix (`bucket \0` in `pending`; `sink \0 rank bucket \0` in `owed`) and the
//! block number (id / 64, u64 BE); its value is a 64-bit map (u64 BE) of the ids of that block
//! in the set. Ids of one batch are consecutive, so a backlog of 100,000 items of one bucket
//! takes about 1,600 keys instead of 100,000. sled keeps a few hundred bytes of state for every
//! page of every tree, and a page holds at most 16 keys: one key per item cost ~2 MB of resident
//! memory per 100,000 per index, and more as sled's segment cleaner pulled those pages back in.
//! Blocks are changed inside the callers' transactions, so an index never disagrees with the
//! items. A block whose map empties is removed.

use super::{SpoolError, TxResult};
use sled::transaction::TransactionalTree;

const SPAN: u64 = 64;

fn block_key(prefix: &[u8], block: u64) -> Vec<u8> {
    [prefix, &block.to_be_bytes()].concat()
}

fn bits(v: Option<sled::IVec>) -> u64 {
    v.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes)
}

/// Puts `id` in the set under `prefix` (`on`) or takes it out, inside a transaction.
pub(super) fn mark(tree: &TransactionalTree, prefix: &[u8], id: u64, on: bool) -> TxResult<()> {
    let key = block_key(prefix, id / SPAN);
    let old = bits(tree.get(&key)?);
    let bit = 1u64 << (id % SPAN);
    let new = if on { old | bit } else { old & !bit };
    if new == old {
        return Ok(());
    }
    if new == 0 {
        tree.remove(key)?;
    } else {
        tree.insert(key, &new.to_be_bytes())?;
    }
    Ok(())
}

/// The oldest id of a block: `key` ends in the block number, `value` is its map.
pub(super) fn first_id(key: &[u8], value: &[u8]) -> Option<u64> {
    let block = super::id_from_suffix(key)?;
    let map = u64::from_be_bytes(value.try_into().ok()?);
    (map != 0).then(|| block * SPAN + u64::from(map.trailing_zeros()))
}

/// The ids in the set under `prefix` from `from` on, oldest first, read a block at a time.
pub(super) fn ids(
    tree: &sled::Tree,
    prefix: Vec<u8>,
    from: u64,
) -> impl Iterator<Item = Result<u64, SpoolError>> {
    let start = block_key(&prefix, from / SPAN);
    tree.range(start..)
        .take_while(move |kv| kv.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
        .flat_map(move |kv| -> Vec<Result<u64, SpoolError>> {
            let (k, v) = match kv {
                Ok(kv) => kv,
                Err(e) => return vec![Err(e.into())],
            };
            let Some(block) = super::id_from_suffix(&k) else {
                return Vec::new();
            };
            let map = bits(Some(v));
            (0..SPAN)
                .filter(|bit| map & (1 << bit) != 0)
                .map(|bit| block * SPAN + bit)
                .filter(|id| *id >= from)
                .map(Ok)
                .collect()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sled::Transactional;

    #[test]
    fn ids_come_back_in_order_and_empty_blocks_go() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("pending").unwrap();
        let set = |ids: &[u64], on: bool| {
            (&tree,)
                .transaction(|(t,)| {
                    for id in ids {
                        mark(t, b"b\0", *id, on)?;
                    }
                    Ok::<_, sled::transaction::ConflictableTransactionError<SpoolError>>(())
                })
                .unwrap();
        };
        set(&[3, 64, 63, 200, 0], true);
        set(&[7], true);
        (&tree,)
            .transaction(|(t,)| mark(t, b"other\0", 5, true))
            .unwrap();
        let all = |from| -> Vec<u64> {
            ids(&tree, b"b\0".to_vec(), from)
                .map(Result::unwrap)
                .collect()
        };
        assert_eq!(all(0), [0, 3, 7, 63, 64, 200]);
        assert_eq!(all(8), [63, 64, 200]);
        assert_eq!(all(201), Vec::<u64>::new());
        set(&[200], false);
        assert_eq!(all(0), [0, 3, 7, 63, 64]);
        assert_eq!(
            tree.len(),
            3,
            "the block of 200 emptied and went; b's two and other's one"
        );
        set(&[99], false);
        assert_eq!(
            all(0),
            [0, 3, 7, 63, 64],
            "clearing an absent id changes nothing"
        );
    }
}
