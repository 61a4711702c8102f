//! A witness, outside sled, of the mailboxes the spool holds a cursor for.
//!
//! sled recovers a log cut short by dropping what it cannot read, silently: a truncated or
//! rolled-back spool opens as a smaller or even an empty one. An empty spool has no cursors,
//! and a mailbox without a cursor starts over "from now" — the mail in between would be lost
//! without a word. So each mailbox is written to `mailbeacon.cursors` beside sled's files
//! (synced, atomically replaced) once its first cursor is flushed, and a spool that lacks a
//! cursor its witness names is refused as damaged. Only new mailboxes write the file.

use super::SpoolError;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const FILE: &str = "mailbeacon.cursors";

pub(super) struct Witness {
    path: PathBuf,
    known: Mutex<BTreeSet<(String, String)>>,
}

pub(super) fn io_error(e: std::io::Error) -> SpoolError {
    if matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull
            | std::io::ErrorKind::ReadOnlyFilesystem
            | std::io::ErrorKind::QuotaExceeded
    ) {
        SpoolError::DiskFull(e)
    } else {
        SpoolError::Storage(sled::Error::Io(e))
    }
}

impl Witness {
    /// Reads the witness in `dir` (none yet: an empty one).
    pub(super) fn load(dir: &Path) -> Result<Witness, SpoolError> {
        let path = dir.join(FILE);
        let known = match std::fs::read(&path) {
            Ok(bytes) => {
                let list: Vec<(String, String)> =
                    serde_json::from_slice(&bytes).map_err(|e| SpoolError::Corrupt {
                        key: FILE.into(),
                        reason: e.to_string(),
                    })?;
                list.into_iter().collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(io_error(e)),
        };
        Ok(Witness {
            path,
            known: Mutex::new(known),
        })
    }

    /// Mailboxes the witness names that `has` says the spool has no cursor for.
    pub(super) fn missing(&self, has: impl Fn(&str, &str) -> bool) -> Vec<String> {
        self.known
            .lock()
            .map(|k| {
                k.iter()
                    .filter(|(a, f)| !has(a, f))
                    .map(|(a, f)| format!("{a}/{f}"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Adds mailboxes; rewrites the file only when one is new (or there is no file yet).
    pub(super) fn remember<'a>(
        &self,
        mailboxes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), SpoolError> {
        let Ok(mut known) = self.known.lock() else {
            return Ok(());
        };
        let added: Vec<(String, String)> = mailboxes
            .into_iter()
            .map(|(a, f)| (a.to_string(), f.to_string()))
            .filter(|m| known.insert(m.clone()))
            .collect();
        if added.is_empty() && self.path.exists() {
            return Ok(());
        }
        let list: Vec<&(String, String)> = known.iter().collect();
        let bytes = serde_json::to_vec(&list).unwrap_or_default();
        let tmp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| {
            // Forget what was not written, so the next ingest writes it again.
            for m in &added {
                known.remove(m);
            }
            io_error(e)
        })
    }
}
