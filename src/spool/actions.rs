//! Actions owed on the server after delivery (a bucket's `after_delivery`): the `actions` tree.
//!
//! - An action is written in the same transaction that records the acknowledgement which makes
//!   its item `delivered` (the last of its sinks), and flushed with it: no action without an
//!   acknowledged delivery, and no acknowledged delivery whose action a crash could forget.
//!   It is owed once per item: an item becomes delivered once (a delivered item never returns
//!   to pending), and its key is the item's id.
//! - It leaves the tree only when the server has done it ([`Spool::action_done`], flushed), or
//!   when it can never be done (the folder's UIDVALIDITY changed: its UID may name another mail).
//! - A record carries everything the action needs (account, folder, UIDVALIDITY, UID), so
//!   retention may prune the item meanwhile.
//!
//! Layout: key item id (u64 BE), value JSON [`Action`].

use super::{decode, encode, Item, Spool, SpoolError, TxResult};
use crate::config::AfterDelivery;
use serde::{Deserialize, Serialize};
use sled::transaction::TransactionalTree;

/// One action owed on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Its key: the id of the item it follows (a salvaged spool gives it a fresh one).
    pub item: u64,
    pub bucket: String,
    pub account: String,
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: u32,
    pub action: AfterDelivery,
    /// Unix seconds of the acknowledgement that made it owed.
    pub owed_at: i64,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    /// A move without `MOVE`: the copy is made, the original not yet expunged. Retries go on
    /// from there instead of copying again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub copied: bool,
}

impl Action {
    /// The action `after` owed for `item`, acknowledged at `at`.
    pub(crate) fn owed(item: &Item, after: AfterDelivery, at: i64) -> Action {
        Action {
            item: item.id,
            bucket: item.bucket.clone(),
            account: item.account.clone(),
            folder: item.folder.clone(),
            uidvalidity: item.uidvalidity,
            uid: item.uid,
            action: after,
            owed_at: at,
            attempts: 0,
            last_error: None,
            copied: false,
        }
    }
}

/// Writes the action a delivered item owes on the server, if its bucket asks for one and none
/// is owed for it yet (see this module's documentation).
pub(super) fn owe(
    actions: &TransactionalTree,
    item: &Item,
    after: Option<AfterDelivery>,
    at: i64,
) -> TxResult<()> {
    let Some(after) = after else {
        return Ok(());
    };
    let key = item.id.to_be_bytes();
    if actions.get(key)?.is_none() {
        actions.insert(&key, encode(&Action::owed(item, after, at)))?;
    }
    Ok(())
}

impl Spool {
    /// Up to `limit` owed actions, oldest item first.
    pub(crate) fn actions(&self, limit: usize) -> Result<Vec<Action>, SpoolError> {
        self.actions
            .iter()
            .take(limit)
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    /// How many actions are owed.
    pub(crate) fn actions_owed(&self) -> usize {
        self.actions.len()
    }

    /// The server did `action` (or it can never be done): it is no longer owed. Made durable
    /// (sled's flush and an fsync, as every durability point), so a restart, even after a
    /// power cut, does not do it again.
    pub(crate) fn action_done(&self, action: &Action) -> Result<(), SpoolError> {
        self.actions.remove(action.item.to_be_bytes())?;
        self.durable()
    }

    /// Keeps what an attempt learnt (`attempts`, `last_error`, `copied`). Made durable when the
    /// copy of a move was made: a restart, even after a power cut, must not copy again.
    pub(crate) fn action_tried(&self, action: &Action) -> Result<(), SpoolError> {
        let value = encode(action);
        // An action done meanwhile is not brought back.
        self.actions
            .fetch_and_update(action.item.to_be_bytes(), |old| old.map(|_| value.clone()))?;
        if action.copied {
            self.durable()?;
        }
        Ok(())
    }
}
