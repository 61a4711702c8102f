//! The per-mailbox cursors, as stored and as read.

use super::{decode, key2, Cursor, Spool, SpoolError};

/// A cursor as stored: the cursor's own fields plus when it was written, so readers that
/// decode a plain [`Cursor`] keep working.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct StoredCursor {
    #[serde(flatten)]
    pub cursor: Cursor,
    #[serde(default)]
    pub at: Option<i64>,
}

impl Spool {
    pub fn cursor(&self, account: &str, folder: &str) -> Result<Option<Cursor>, SpoolError> {
        let key = key2(account, folder.as_bytes());
        self.cursors
            .get(&key)?
            .map(|v| decode(&key, &v))
            .transpose()
    }

    /// When the cursor of this mailbox was last written (Unix seconds); `None` for cursors
    /// written before this was recorded. Bounds the rescan after a UIDVALIDITY change.
    pub(crate) fn cursor_written_at(
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
    pub(crate) fn cursors(&self) -> Result<Vec<(String, String, Cursor)>, SpoolError> {
        let mut out = Vec::new();
        for kv in self.cursors.iter() {
            let (k, v) = kv?;
            let text = String::from_utf8_lossy(&k);
            let (account, folder) = text.split_once('\0').unwrap_or((&text, ""));
            out.push((account.to_string(), folder.to_string(), decode(&k, &v)?));
        }
        Ok(out)
    }
}
