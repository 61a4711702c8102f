//! Opening the spool: sled's lock waited for, the trees opened, the cursor witness checked,
//! an older layout migrated.

use super::{bodies, durable, key2, witness, Spool, SpoolError};
use std::path::Path;

/// How long [`Spool::open`] waits for sled's lock on the directory.
pub(super) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

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
            bodies: std::sync::Arc::new(bodies::Bodies::open(dir)?),
            db,
        };
        spool.check_witness()?;
        spool.remember_cursors()?;
        spool.migrate_indexes()?;
        Ok(spool)
    }

    /// Fails when a mailbox the witness remembers has no cursor: the files lost what they had.
    fn check_witness(&self) -> Result<(), SpoolError> {
        let missing = self.witness.missing(|a, f| {
            self.cursors
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
        Ok(())
    }

    /// Writes every mailbox with a cursor to the witness (see [`witness`]).
    pub(super) fn remember_cursors(&self) -> Result<(), SpoolError> {
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
}
