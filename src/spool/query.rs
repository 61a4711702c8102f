//! Reading the spool: items, owed work and per-bucket totals, from the indexes where they can.

use super::{blocks, key2, ledger, Item, Spool, SpoolError, State};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketStats {
    pub name: String,
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
    /// Unix seconds when the oldest pending item was spooled.
    pub oldest_pending_at: Option<i64>,
}

impl Spool {
    /// Up to `limit` items that `sink` still owes, all of one bucket: the bucket of the most
    /// urgent (lowest severity rank), oldest owed item, and that bucket's items of the same
    /// severity, oldest first. See [`Spool::pending_where`].
    pub(crate) fn pending_for(&self, sink: &str, limit: usize) -> Result<Vec<Item>, SpoolError> {
        self.pending_where(sink, limit, &|_, _| true)
    }

    pub(crate) fn get(&self, id: u64) -> Result<Option<Item>, SpoolError> {
        let key = id.to_be_bytes();
        match self.items.get(key)? {
            Some(v) => self.read(&key, &v).map(Some),
            None => Ok(None),
        }
    }

    /// An item's record with its ledger entries laid over it.
    pub(super) fn read(&self, key: &[u8], value: &[u8]) -> Result<Item, SpoolError> {
        let mut item = self.bodies.item(key, value)?;
        ledger::overlay(&self.ledger, &mut item)?;
        Ok(item)
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
    pub(crate) fn bucket_stats<'a>(
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
    pub(crate) fn bucket_names(&self) -> Result<Vec<String>, SpoolError> {
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
}
