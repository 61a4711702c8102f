//! What `spool ls`, `spool dump` and `spool show` list: one record per item, the filter, and the
//! walk over the spool that the daemon and the CLI share.

use crate::spool::{Item, Spool, SpoolError, State};
use crate::time::rfc3339;
use serde::{Deserialize, Serialize};

/// One `spool dump` line: docs/design.md's fields, plus the per-sink detail.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DumpRecord {
    pub(crate) id: u64,
    pub(crate) bucket: String,
    pub(crate) account: String,
    pub(crate) folder: String,
    pub(crate) uidvalidity: u32,
    pub(crate) uid: u32,
    pub(crate) message_id: Option<String>,
    pub(crate) from: String,
    pub(crate) subject: String,
    pub(crate) date: Option<String>,
    pub(crate) spooled_at: String,
    pub(crate) snippet: String,
    pub(crate) state: State,
    pub(crate) attempts: u32,
    pub(crate) last_error: Option<String>,
    pub(crate) delivered_at: Option<String>,
    pub(crate) discord_message_ids: Vec<String>,
    pub(crate) parse_error: Option<String>,
    pub(crate) deliveries: Vec<crate::spool::Delivery>,
}

impl From<Item> for DumpRecord {
    fn from(i: Item) -> DumpRecord {
        let state = i.state();
        let mut ids: Vec<String> = i
            .deliveries
            .iter()
            .filter_map(|d| d.message_id.clone())
            .collect();
        ids.dedup();
        DumpRecord {
            state,
            attempts: i.deliveries.iter().map(|d| d.attempts).sum(),
            last_error: i.deliveries.iter().rev().find_map(|d| d.last_error.clone()),
            delivered_at: (state == State::Delivered)
                .then(|| i.deliveries.iter().filter_map(|d| d.delivered_at).max())
                .flatten()
                .map(rfc3339),
            discord_message_ids: ids,
            id: i.id,
            bucket: i.bucket,
            account: i.account,
            folder: i.folder,
            uidvalidity: i.uidvalidity,
            uid: i.uid,
            message_id: i.message_id,
            from: i.from,
            subject: i.subject,
            date: i.date,
            spooled_at: rfc3339(i.spooled_at),
            snippet: i.snippet,
            parse_error: i.parse_error,
            deliveries: i.deliveries,
        }
    }
}

/// Which items `spool ls` / `spool dump` show.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Filter {
    pub(crate) bucket: Option<String>,
    /// `None` means every state.
    pub(crate) state: Option<State>,
    /// Only items spooled at or after this time (Unix seconds).
    #[serde(default)]
    pub(crate) since: Option<i64>,
}

impl Filter {
    pub(crate) fn accepts(&self, i: &Item) -> bool {
        self.bucket.as_ref().is_none_or(|b| *b == i.bucket)
            && self.state.is_none_or(|s| s == i.state())
            && self.since.is_none_or(|t| i.spooled_at >= t)
    }
}

/// One record of a listing: an item the filter accepts, or one that could not be read.
pub(crate) enum Listed {
    Record(Box<DumpRecord>),
    /// A record that does not decode, reported and skipped: it must not hide the rest.
    Unreadable(String),
}

/// Every item `filter` accepts, in spool order, read lazily (memory stays bounded however
/// large the spool); the daemon and the CLI without a daemon list the same way.
pub(crate) fn list(
    spool: &Spool,
    filter: &Filter,
    each: &mut dyn FnMut(Listed) -> std::io::Result<()>,
) -> std::io::Result<()> {
    for item in spool.iter() {
        match item {
            Ok(item) if filter.accepts(&item) => {
                each(Listed::Record(Box::new(DumpRecord::from(item))))?
            }
            Ok(_) => {}
            Err(e @ SpoolError::Corrupt { .. }) => each(Listed::Unreadable(e.to_string()))?,
            Err(e) => return Err(std::io::Error::other(e)),
        }
    }
    Ok(())
}

/// One `spool ls` row.
pub(crate) fn ls_row(r: &DumpRecord) -> String {
    let subject = crate::text::ellipsize(&r.subject.replace(['\n', '\r', '\t'], " "), 48);
    let from = crate::text::ellipsize(&r.from, 32);
    format!(
        "{:>20}  {:<10} {:<9} {:>3}  {:<20}  {:<32}  {}",
        r.id,
        r.bucket,
        r.state.as_str(),
        r.attempts,
        r.spooled_at,
        from,
        subject
    )
}

pub(crate) fn ls_header() -> String {
    format!(
        "{:>20}  {:<10} {:<9} {:>3}  {:<20}  {:<32}  {}",
        "ID", "BUCKET", "STATE", "TRY", "SPOOLED", "FROM", "SUBJECT"
    )
}
