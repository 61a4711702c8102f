//! Fetching mail and spooling it: each chunk of UIDs is fetched with `BODY.PEEK` (never sets
//! `\Seen`, at most 64 KiB a mail), summarised, triaged and handed to [`Spool::ingest`]
//! together with the cursor that covers it, and the next fetch waits until that transaction is
//! on disk (invariant 2). Every UID of a chunk ends spooled or shown to be gone before the
//! cursor passes it: servers do not always answer a multi-message `FETCH` in full (a `{0}`
//! body where `RFC822.SIZE` says there is one; Microsoft announcing a UID before it can be
//! fetched; a UID left out of the answer), so such a UID is fetched again, alone, and a UID
//! still missing is skipped only when `UID SEARCH` says the server no longer has it.

use super::{ImapError, Session, Watcher, CHUNK};
use crate::config::Mode;
use crate::health::Event;
use crate::mail::{summarize, Summary};
use crate::spool::{Cursor, NewItem};
use crate::stop::Stop;
use chrono::{DateTime, Utc};
use imap::types::Fetch;
use std::time::Duration;

/// BODYSTRUCTURE lists the attachments without downloading them (src/imap/structure.rs).
const FETCH_ITEMS: &str = "(UID RFC822.SIZE BODYSTRUCTURE BODY.PEEK[]<0.65536>)";
/// The same without BODYSTRUCTURE, for an answer the parser cannot read: a mail is never held
/// back for the sake of its attachment list.
const FETCH_PLAIN: &str = "(UID RFC822.SIZE BODY.PEEK[]<0.65536>)";
/// Pauses before each lone re-fetch of a UID the chunk's answer did not bring readable: at
/// once (a `{0}` body in a multi-message answer), then twice more for a mailbox still making
/// the mail fetchable.
const REFETCH_PAUSES: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_secs(1),
    Duration::from_secs(3),
];

/// What became of a UID the chunk's answer did not bring readable.
enum Settled {
    /// Spool this (readable, or as unreadable as the server keeps it).
    Mail(Box<NewItem>),
    /// The server no longer has the UID (expunged since the search): nothing to spool.
    Gone,
    /// Stopped meanwhile.
    Stopped,
}

/// Whether a `FETCH` response brought the mail: a body, empty only when the mail is empty.
fn readable(f: &Fetch<'_>) -> bool {
    match f.body() {
        Some(body) => !body.is_empty() || f.size == Some(0),
        None => false,
    }
}

impl Watcher {
    /// Fetches `uids` (ascending) in chunks and spools each chunk durably before the next
    /// fetch. With a cursor, each chunk moves it in the same transaction; without one (mail
    /// below the cursor) mail already spooled is skipped. Returns false when stopped meanwhile.
    pub(super) fn fetch_and_spool(
        &self,
        s: &mut Session,
        uids: &[u32],
        uidvalidity: u32,
        mut cursor: Option<&mut Cursor>,
        dedup: bool,
        stop: &Stop,
    ) -> Result<bool, ImapError> {
        let mut done = 0;
        for chunk in uids.chunks(CHUNK) {
            let Some(items) = self.fetch_chunk(s, chunk, stop)? else {
                return Ok(false);
            };
            // Every UID of the chunk is in `items` or gone from the server: the cursor may pass.
            let next = cursor.as_ref().map(|c| Cursor {
                uidvalidity: c.uidvalidity,
                last_uid: chunk.last().copied().unwrap_or(c.last_uid),
            });
            if !self.write(next, uidvalidity, &items, dedup, stop)? {
                return Ok(false);
            }
            if let (Some(c), Some(next)) = (cursor.as_deref_mut(), next) {
                *c = next;
            }
            done += chunk.len();
            if uids.len() <= CHUNK {
                log::info!(
                    "imap {}: spooled {} mail(s), uid {}..={}",
                    self.label(),
                    items.len(),
                    chunk[0],
                    chunk[chunk.len() - 1]
                );
            } else if done % (20 * CHUNK) == 0 || done == uids.len() {
                log::info!(
                    "imap {}: spooled {done}/{} mail(s)",
                    self.label(),
                    uids.len()
                );
            }
            for w in &self.wakes {
                w.notify_one();
            }
            if stop.is_stopped() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One chunk's items, in UID order: each UID of `chunk` that the server still has, read
    /// from the chunk's answer or from a lone re-fetch. `None` when stopped meanwhile.
    fn fetch_chunk(
        &self,
        s: &mut Session,
        chunk: &[u32],
        stop: &Stop,
    ) -> Result<Option<Vec<NewItem>>, ImapError> {
        // Up to 50 × 64 KiB: allow a slow link (16 KiB/s) on top of the read timeouts.
        self.alive_for(Duration::from_secs(200));
        let fetches = self.fetch(s, &uid_set(chunk), stop)?;
        let mut items: Vec<NewItem> = Vec::with_capacity(chunk.len());
        for f in fetches.iter().filter(|f| readable(f)) {
            let Some(uid) = f.uid.filter(|u| chunk.binary_search(u).is_ok()) else {
                continue;
            };
            if !items.iter().any(|i| i.uid == uid) {
                items.push(self.item(uid, f.body(), f.bodystructure()));
            }
        }
        drop(fetches);
        let unread: Vec<u32> = chunk
            .iter()
            .copied()
            .filter(|u| !items.iter().any(|i| i.uid == *u))
            .collect();
        for uid in unread {
            match self.settle(s, uid, stop)? {
                Settled::Mail(item) => items.push(*item),
                Settled::Gone => {}
                Settled::Stopped => return Ok(None),
            }
        }
        items.sort_by_key(|i| i.uid);
        Ok(Some(items))
    }

    /// A UID the chunk's answer left out or brought without its body: fetched again, alone, a
    /// few times; then, if still not readable, either shown gone by `UID SEARCH` (skipped,
    /// logged) or spooled as the server keeps it (the fallback bucket says it read badly),
    /// so one broken mail cannot hold every later mail back.
    fn settle(&self, s: &mut Session, uid: u32, stop: &Stop) -> Result<Settled, ImapError> {
        let mut seen_bodiless = false;
        for pause in REFETCH_PAUSES {
            self.alive_for(pause);
            if stop.sleep(pause) {
                return Ok(Settled::Stopped);
            }
            self.alive_for(Duration::ZERO);
            let fetches = self.fetch(s, &uid.to_string(), stop)?;
            let Some(f) = fetches.iter().find(|f| f.uid == Some(uid)) else {
                continue;
            };
            if readable(f) {
                log::info!(
                    "imap {}: uid {uid} came back without its body; fetched alone, it did",
                    self.label()
                );
                let item = self.item(uid, f.body(), f.bodystructure());
                return Ok(Settled::Mail(Box::new(item)));
            }
            seen_bodiless = true;
        }
        let still = self.patiently(s, stop, |s| s.uid_search(format!("UID {uid}")))?;
        if !still.contains(&uid) {
            log::warn!(
                "imap {}: uid {uid} was expunged before it could be fetched; skipped",
                self.label()
            );
            return Ok(Settled::Gone);
        }
        log::warn!(
            "imap {}: uid {uid} still {} after {} tries; spooled as unreadable",
            self.label(),
            if seen_bodiless {
                "comes without its body"
            } else {
                "is left out of every answer"
            },
            REFETCH_PAUSES.len() + 1
        );
        Ok(Settled::Mail(Box::new(self.item(uid, None, None))))
    }

    /// `UID FETCH set` with the attachment list, or without it when the server's answer with
    /// BODYSTRUCTURE cannot be parsed (a hostile mail can make a server describe it oddly).
    fn fetch(
        &self,
        s: &mut Session,
        set: &str,
        stop: &Stop,
    ) -> Result<imap::types::Fetches, ImapError> {
        match self.patiently(s, stop, |s| s.uid_fetch(set, FETCH_ITEMS)) {
            Err(ImapError::Protocol(why)) => {
                log::warn!(
                    "imap {}: the answer with BODYSTRUCTURE was not understood ({why}); \
                     fetching uid {set} without it (no attachments listed)",
                    self.label()
                );
                self.patiently(s, stop, |s| s.uid_fetch(set, FETCH_PLAIN))
            }
            other => other,
        }
    }

    /// Summarises and triages one mail; hostile bytes cannot take the loop down.
    pub(super) fn item(
        &self,
        uid: u32,
        body: Option<&[u8]>,
        structure: Option<&imap_proto::types::BodyStructure<'_>>,
    ) -> NewItem {
        let mut summary = match body {
            Some(raw) => std::panic::catch_unwind(|| summarize(raw)).unwrap_or_else(|_| Summary {
                parse_error: Some("the parser failed on this mail".into()),
                ..Summary::default()
            }),
            None => Summary {
                parse_error: Some("the server returned no body".into()),
                ..Summary::default()
            },
        };
        if let Some(bs) = structure {
            summary.attachments =
                std::panic::catch_unwind(|| super::structure::attachments(bs)).unwrap_or_default();
        }
        let bucket = if summary.parse_error.is_some() {
            self.triage.fallback()
        } else {
            // Only the headers some rule names, read beside the summary (the spool keeps none).
            let names = self.triage.header_names();
            let headers = body
                .and_then(|raw| {
                    std::panic::catch_unwind(|| crate::mail::header_values(raw, names)).ok()
                })
                .unwrap_or_default();
            self.triage.bucket_for(&crate::triage::Fields {
                headers: &headers,
                ..summary.fields()
            })
        };
        if let Some(why) = &summary.parse_error {
            log::warn!(
                "imap {}: uid {uid} read badly ({why}); spooled in {bucket}",
                self.label()
            );
        }
        let sinks = self
            .buckets
            .iter()
            .find(|b| b.name == bucket)
            .filter(|b| b.mode != Mode::Hold)
            .map(|b| b.sinks.clone())
            .unwrap_or_default();
        NewItem {
            bucket: bucket.to_string(),
            severity: self
                .buckets
                .iter()
                .find(|b| b.name == bucket)
                .map_or(crate::config::Severity::P3, |b| b.severity),
            uid,
            mail: (&summary).into(),
            sinks,
        }
    }

    /// Spools a chunk (moving the cursor to `next`, or as a backfill without one, which always
    /// skips mail already spooled; with a cursor, `dedup` asks for that too); while the
    /// disk is full, waits (mail stays on the server, the cursor stays put) and retries.
    /// Returns false when stopped meanwhile.
    pub(super) fn write(
        &self,
        next: Option<Cursor>,
        uidvalidity: u32,
        items: &[NewItem],
        dedup: bool,
        stop: &Stop,
    ) -> Result<bool, ImapError> {
        let (account, folder) = (&self.account.name, &self.folder);
        // Set while the spool refuses: the event that said so (a full disk, or the spool at its
        // size bound), so the same kind is cleared when it takes the chunk.
        let mut refused: Option<fn(String, Option<String>) -> Event> = None;
        loop {
            let written = match next {
                Some(cursor) => self.spool.ingest(account, folder, cursor, items, dedup),
                None => self.spool.backfill(account, folder, uidvalidity, items),
            };
            match written {
                Ok(_) => {
                    if let Some(event) = refused {
                        log::info!(
                            "imap {}: spool takes mail again; ingestion resumes",
                            self.label()
                        );
                        let _ = self
                            .health
                            .send(event(format!("imap {}", self.label()), None));
                    }
                    return Ok(true);
                }
                Err(e) if e.is_disk_full() || e.is_full() => {
                    if refused.is_none() {
                        log::error!(
                            "imap {}: {e}; ingestion stopped, mail stays on the server",
                            self.label()
                        );
                        let event: fn(String, Option<String>) -> Event = if e.is_full() {
                            |writer, full| Event::SpoolFull { writer, full }
                        } else {
                            |writer, full| Event::Disk { writer, full }
                        };
                        let _ = self
                            .health
                            .send(event(format!("imap {}", self.label()), Some(e.to_string())));
                        refused = Some(event);
                    }
                    self.alive_for(Duration::from_secs(5));
                    if stop.sleep(Duration::from_secs(5)) {
                        return Ok(false);
                    }
                }
                Err(e) => return Err(self.spool_error(e)),
            }
        }
    }
}

/// `1,2,5` for a `UID FETCH`.
fn uid_set(uids: &[u32]) -> String {
    let mut set = String::with_capacity(uids.len() * 8);
    for (i, uid) in uids.iter().enumerate() {
        if i > 0 {
            set.push(',');
        }
        set.push_str(&uid.to_string());
    }
    set
}

/// The highest UID in the selected mailbox of `exists` messages, for servers that do not say
/// UIDNEXT: the UID of the last message (`FETCH * (UID)`). Courier answers `UID SEARCH UID *`
/// with nothing, which read as 0 would make a first run spool the whole folder.
pub(super) fn highest_uid(s: &mut Session, exists: u32) -> Result<u32, ImapError> {
    if exists == 0 {
        return Ok(0);
    }
    let last = s.fetch("*", "(UID)").map_err(ImapError::from_imap)?;
    let by_fetch = last.iter().filter_map(|f| f.uid).max();
    if let Some(uid) = by_fetch {
        return Ok(uid);
    }
    let found = s.uid_search("UID *").map_err(ImapError::from_imap)?;
    let highest = found.into_iter().max();
    if highest.is_none() {
        // Watching from 0 repeats what is there rather than never watching at all.
        log::warn!(
            "imap: the server names no UID for any of {exists} message(s); watching from uid 0"
        );
    }
    Ok(highest.unwrap_or(0))
}

/// Those of `uids` (ascending) whose INTERNALDATE is at or after `since`.
pub(super) fn received_since(
    s: &mut Session,
    uids: &[u32],
    since: DateTime<Utc>,
) -> Result<Vec<u32>, ImapError> {
    let mut keep = Vec::new();
    for chunk in uids.chunks(500) {
        let fetches = s
            .uid_fetch(uid_set(chunk), "(UID INTERNALDATE)")
            .map_err(ImapError::from_imap)?;
        for f in fetches.iter() {
            if let (Some(uid), Some(date)) = (f.uid, f.internal_date()) {
                if date >= since && chunk.binary_search(&uid).is_ok() {
                    keep.push(uid);
                }
            }
        }
    }
    keep.sort_unstable();
    keep.dedup();
    Ok(keep)
}
