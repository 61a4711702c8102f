//! Recognising mail spooled before: the rescan after a UIDVALIDITY change and a backfill must
//! not spool a mail twice.
//!
//! Nothing is stored for it: a mail's fingerprint ([`super::fingerprint`]) is made from fields
//! its item keeps, so the first rescanning write for a mailbox reads the items once and keeps
//! the SHA-256 (first 16 bytes) of each fingerprint of that mailbox in memory, ~20 bytes per
//! item, while the rescan lasts. The next ordinary ingest of the mailbox ends the rescan and
//! frees the set; removing items (retention, `spool drop`) drops every set, to be read again.
//! A stored index of fingerprints cost one sled key per item, and sled keeps resident state
//! for every key of every tree whether it is read or not.

use super::{Item, Spool, SpoolError};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

type Mailbox = (String, String);

/// The fingerprint sets of the mailboxes being rescanned.
#[derive(Default)]
pub(super) struct Recognised {
    sets: Mutex<HashMap<Mailbox, HashSet<u128>>>,
}

/// A fingerprint in 16 bytes: SHA-256, so hostile mail cannot make two fingerprints collide.
pub(super) fn digest(fingerprint: &str) -> u128 {
    let d = ring::digest::digest(&ring::digest::SHA256, fingerprint.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&d.as_ref()[..16]);
    u128::from_be_bytes(first)
}

impl Recognised {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Mailbox, HashSet<u128>>> {
        // A panic while holding the lock leaves only a cache behind: use it anyway.
        self.sets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the set of a mailbox out (its one watcher writes it); `None` when not held.
    pub(super) fn take(&self, account: &str, folder: &str) -> Option<HashSet<u128>> {
        self.lock()
            .remove(&(account.to_string(), folder.to_string()))
    }

    pub(super) fn put(&self, account: &str, folder: &str, set: HashSet<u128>) {
        self.lock()
            .insert((account.to_string(), folder.to_string()), set);
    }

    /// Ends a mailbox's rescan, or every one (`None`) when items went.
    pub(super) fn forget(&self, mailbox: Option<(&str, &str)>) {
        let mut sets = self.lock();
        match mailbox {
            Some((a, f)) if !sets.is_empty() => {
                sets.remove(&(a.to_string(), f.to_string()));
            }
            Some(_) => {}
            None => sets.clear(),
        }
    }
}

impl Spool {
    /// The fingerprint set of a mailbox: held from an earlier write of this rescan, or read
    /// from the items.
    pub(super) fn known(&self, account: &str, folder: &str) -> Result<HashSet<u128>, SpoolError> {
        if let Some(set) = self.recognised.take(account, folder) {
            return Ok(set);
        }
        let mut set = HashSet::new();
        for item in self.iter() {
            let item: Item = item?;
            if item.account == account && item.folder == folder {
                set.insert(digest(&item.fingerprint()));
            }
        }
        Ok(set)
    }
}
