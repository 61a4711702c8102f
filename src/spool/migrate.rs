//! Moving a spool of an older layout (`queue`, `open` and `seen` trees) to this one.

use super::{blocks, id_from_suffix, owed_run, parse_owed_tail, Spool, SpoolError};
use sled::Transactional;

impl Spool {
    /// Moves a spool of an older layout to this one, flushed before the spool is used:
    /// - each key of `queue` (`sink \0 rank bucket \0 id`, or from older versions still
    ///   `sink \0 id`) becomes a bit in `owed`, and each key of `open` (`bucket \0 id`) a bit
    ///   in `pending`, in transactions of 1,000 keys that set the bits and remove the keys
    ///   together: a crash part-way leaves every entry in one index or the other, and the next
    ///   open finishes the move;
    /// - `seen` is dropped: fingerprints now come from the items.
    pub(super) fn migrate_indexes(&self) -> Result<(), SpoolError> {
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
}
