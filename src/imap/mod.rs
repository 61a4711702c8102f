//! The IMAP watcher: one blocking thread per (account, folder) that connects, examines the
//! folder read-only, and polls for mail above the cursor. Each chunk of mail is summarised,
//! triaged and handed to [`Spool::ingest`] together with the cursor that covers it; the next
//! fetch happens only after that transaction is on disk (invariant 2). Messages are fetched with
//! `BODY.PEEK` (never sets `\Seen`) and at most 64 KiB each.

pub mod connect;

pub use connect::{login, tls_config, ImapError, Session};

use crate::config::{Account, Bucket, Mode};
use crate::dispatch::backoff;
use crate::health::{AccountState, Event};
use crate::mail::{summarize, Summary};
use crate::spool::{Cursor, NewItem, Spool};
use crate::stop::Stop;
use crate::triage::Triage;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc::UnboundedSender, Notify};

/// UIDs per `UID FETCH` and per spool transaction: one fsync covers a chunk, not each mail.
pub const CHUNK: usize = 50;
const FETCH_ITEMS: &str = "(UID RFC822.SIZE BODY.PEEK[]<0.65536>)";

pub struct Watcher {
    pub account: Account,
    pub folder: String,
    pub spool: Spool,
    pub triage: Arc<Triage>,
    pub buckets: Arc<Vec<Bucket>>,
    pub health: UnboundedSender<Event>,
    /// Every dispatcher's bell, rung after mail is spooled.
    pub wakes: Vec<Arc<Notify>>,
    pub tls: Arc<rustls::ClientConfig>,
}

impl Watcher {
    fn report(&self, state: AccountState, error: Option<String>, cursor: Option<Cursor>) {
        let _ = self.health.send(Event::Account {
            account: self.account.name.clone(),
            folder: self.folder.clone(),
            state,
            error,
            cursor,
        });
    }

    fn label(&self) -> String {
        format!("{}/{}", self.account.name, self.folder)
    }

    /// Runs until `stop`; never returns early on errors, it backs off and reconnects.
    pub fn run(self, stop: Stop) {
        let mut failures = 0u32;
        while !stop.is_stopped() {
            self.report(AccountState::Connecting, None, None);
            match self.session(&stop, &mut failures) {
                Ok(()) => break,
                Err(e) => {
                    failures += 1;
                    // Refused credentials will not fix themselves quickly: at least a minute.
                    let floor = if matches!(e, ImapError::Auth(_)) {
                        Duration::from_secs(60)
                    } else {
                        Duration::ZERO
                    };
                    let wait = backoff(failures, fastrand::f64()).max(floor);
                    log::error!("imap {}: {e}; reconnecting in {wait:?}", self.label());
                    self.report(e.state(), Some(e.to_string()), None);
                    if stop.sleep(wait) {
                        break;
                    }
                }
            }
        }
        log::info!("imap {}: stopped", self.label());
    }

    fn session(&self, stop: &Stop, failures: &mut u32) -> Result<(), ImapError> {
        let mut s = login(&self.account, &self.tls)?;
        let mailbox = s.examine(&self.folder).map_err(|e| match e {
            imap::Error::No(no) => {
                ImapError::Mailbox(format!("{}: {}", self.folder, no.information))
            }
            other => ImapError::from_imap(other),
        })?;
        let uidvalidity = mailbox
            .uid_validity
            .ok_or_else(|| ImapError::Protocol("server sent no UIDVALIDITY".into()))?;
        let (mut cursor, mut rescan) = match self
            .spool
            .cursor(&self.account.name, &self.folder)
            .map_err(spool_error)?
        {
            Some(c) if c.uidvalidity == uidvalidity => (c, false),
            Some(c) => {
                log::warn!("imap {}: UIDVALIDITY changed {} → {uidvalidity}; rescanning, skipping mail already spooled", self.label(), c.uidvalidity);
                (
                    Cursor {
                        uidvalidity,
                        last_uid: 0,
                    },
                    true,
                )
            }
            None => {
                // First run starts at UIDNEXT: mail already there is not news.
                let start = Cursor {
                    uidvalidity,
                    last_uid: mailbox.uid_next.unwrap_or(1).saturating_sub(1),
                };
                self.spool
                    .ingest(&self.account.name, &self.folder, start, &[], false)
                    .map_err(spool_error)?;
                log::info!(
                    "imap {}: first run, starting after uid {}",
                    self.label(),
                    start.last_uid
                );
                (start, false)
            }
        };
        loop {
            self.report(AccountState::Polling, None, Some(cursor));
            if !self.poll(&mut s, &mut cursor, rescan, stop)? {
                break;
            }
            rescan = false;
            *failures = 0;
            self.report(AccountState::Idle, None, Some(cursor));
            if stop.sleep(self.account.poll_interval) {
                break;
            }
        }
        let _ = s.logout();
        Ok(())
    }

    /// Fetches and spools everything above the cursor. Returns false when stopped meanwhile.
    fn poll(
        &self,
        s: &mut Session,
        cursor: &mut Cursor,
        rescan: bool,
        stop: &Stop,
    ) -> Result<bool, ImapError> {
        let found = s
            .uid_search(format!("UID {}:*", cursor.last_uid.saturating_add(1)))
            .map_err(ImapError::from_imap)?;
        // `N:*` always matches the highest UID, even when it is below N.
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > cursor.last_uid).collect();
        uids.sort_unstable();
        for chunk in uids.chunks(CHUNK) {
            let set = chunk
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let fetches = s
                .uid_fetch(&set, FETCH_ITEMS)
                .map_err(ImapError::from_imap)?;
            let mut items = Vec::with_capacity(chunk.len());
            for f in fetches.iter() {
                let Some(uid) = f.uid.filter(|u| chunk.binary_search(u).is_ok()) else {
                    continue;
                };
                items.push(self.item(uid, f.body()));
            }
            let next = Cursor {
                uidvalidity: cursor.uidvalidity,
                last_uid: chunk.last().copied().unwrap_or(cursor.last_uid),
            };
            if !self.ingest(next, &items, rescan, stop)? {
                return Ok(false);
            }
            *cursor = next;
            log::info!(
                "imap {}: spooled {} mail(s), uid {}..={}",
                self.label(),
                items.len(),
                chunk[0],
                next.last_uid
            );
            for w in &self.wakes {
                w.notify_one();
            }
        }
        Ok(true)
    }

    /// Summarises and triages one mail; hostile bytes cannot take the loop down.
    fn item(&self, uid: u32, body: Option<&[u8]>) -> NewItem {
        let summary = match body {
            Some(raw) => std::panic::catch_unwind(|| summarize(raw)).unwrap_or_else(|_| Summary {
                parse_error: Some("the parser failed on this mail".into()),
                ..Summary::default()
            }),
            None => Summary {
                parse_error: Some("the server returned no body".into()),
                ..Summary::default()
            },
        };
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
            uid,
            summary,
            sinks,
        }
    }

    /// Spools a chunk; while the disk is full, waits (mail stays on the server, the cursor
    /// stays put) and retries. Returns false when stopped meanwhile.
    fn ingest(
        &self,
        next: Cursor,
        items: &[NewItem],
        rescan: bool,
        stop: &Stop,
    ) -> Result<bool, ImapError> {
        let mut was_full = false;
        loop {
            match self
                .spool
                .ingest(&self.account.name, &self.folder, next, items, rescan)
            {
                Ok(_) => {
                    if was_full {
                        log::info!(
                            "imap {}: spool writable again; ingestion resumes",
                            self.label()
                        );
                        let _ = self.health.send(Event::Disk {
                            writer: format!("imap {}", self.label()),
                            full: None,
                        });
                    }
                    return Ok(true);
                }
                Err(e) if e.is_disk_full() => {
                    if !was_full {
                        log::error!(
                            "imap {}: {e}; ingestion stopped, mail stays on the server",
                            self.label()
                        );
                        let _ = self.health.send(Event::Disk {
                            writer: format!("imap {}", self.label()),
                            full: Some(e.to_string()),
                        });
                    }
                    was_full = true;
                    if stop.sleep(Duration::from_secs(5)) {
                        return Ok(false);
                    }
                }
                Err(e) => return Err(spool_error(e)),
            }
        }
    }
}

fn spool_error(e: crate::spool::SpoolError) -> ImapError {
    ImapError::Protocol(format!("spool: {e}"))
}
