//! The IMAP watcher: one blocking thread per (account, folder) that connects, examines the
//! folder read-only, and waits for mail above the cursor — with IDLE when the server offers
//! it, renewed every `idle_renew`, and a reconciliation poll every `poll_interval` regardless,
//! so a silently dropped IDLE costs at most one poll interval. Each chunk of mail is
//! summarised, triaged and handed to [`Spool::ingest`] together with the cursor that covers
//! it; the next fetch happens only after that transaction is on disk (invariant 2). Messages
//! are fetched with `BODY.PEEK` (never sets `\Seen`) and at most 64 KiB each.

pub mod connect;

pub use connect::{login, login_until, tls_config, ImapError, Session};

use crate::config::{Account, Bucket, Mode, StartAt};
use crate::dispatch::backoff;
use crate::health::{AccountState, Event};
use crate::mail::{summarize, Summary};
use crate::spool::{Cursor, NewItem, Spool};
use crate::stop::Stop;
use crate::triage::Triage;
use crate::watchdog::Beat;
use chrono::{DateTime, Utc};
use imap::extensions::idle::WaitOutcome;
use imap::types::UnsolicitedResponse;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc::UnboundedSender, Notify};

/// UIDs per `UID FETCH` and per spool transaction: one fsync covers a chunk, not each mail.
pub const CHUNK: usize = 50;
const FETCH_ITEMS: &str = "(UID RFC822.SIZE BODY.PEEK[]<0.65536>)";
/// After a UIDVALIDITY change, mail received this long before the cursor was last written is
/// rescanned too (clock skew between server and board); older mail was spooled or skipped.
const RESCAN_MARGIN: chrono::TimeDelta = chrono::TimeDelta::days(1);
/// After a UIDVALIDITY change, old mail may be copied back into the mailbox for a while (a
/// server migration, a restored backup): for this long, polls skip mail already spooled too.
const REPOPULATION_WINDOW: Duration = Duration::from_secs(24 * 3600);

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
    /// Checked in before every step that could block, with that step's bound.
    pub beat: Beat,
}

/// What a watcher carries from one connection to the next.
#[derive(Default)]
struct Carry {
    /// Connection failures in a row; reset by a successful poll.
    failures: u32,
    /// Until when polls skip mail already spooled (after a UIDVALIDITY change).
    dedup_until: Option<Instant>,
}

/// Why an IDLE wait ended.
enum Woke {
    /// The server announced new mail.
    Mail,
    /// The wait ran out: time to renew IDLE or to poll.
    Quiet,
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

    /// Checks in with the watchdog before a step that waits `wait` and then talks to the
    /// server: each exchange is bounded by the read timeout; slack covers a slow link.
    fn alive_for(&self, wait: Duration) {
        self.beat
            .within(wait + self.account.timeout * 3 + Duration::from_secs(10));
    }

    /// Runs until `stop`; never returns early on errors, it backs off and reconnects.
    pub fn run(self, stop: Stop) {
        let mut carry = Carry::default();
        while !stop.is_stopped() {
            // A retry keeps showing the failure it retries (no flicker back to "connecting").
            if carry.failures == 0 {
                self.report(AccountState::Connecting, None, None);
            }
            // Connect, TLS, greeting, login, EXAMINE: a handful of bounded exchanges.
            self.alive_for(self.account.timeout * 2);
            match self.session(&stop, &mut carry) {
                Ok(()) => break,
                // Stopping shuts the session's socket down; that is not a failure.
                Err(_) if stop.is_stopped() => break,
                Err(e) => {
                    carry.failures += 1;
                    // Refused credentials will not fix themselves quickly: at least a minute.
                    let floor = if matches!(e, ImapError::Auth(_)) {
                        Duration::from_secs(60)
                    } else {
                        Duration::ZERO
                    };
                    let wait = backoff(carry.failures, fastrand::f64()).max(floor);
                    log::error!("imap {}: {e}; reconnecting in {wait:?}", self.label());
                    self.report(e.state(), Some(e.to_string()), None);
                    self.alive_for(wait);
                    if stop.sleep(wait) {
                        break;
                    }
                }
            }
        }
        self.beat.waiting();
        log::info!("imap {}: stopped", self.label());
    }

    fn session(&self, stop: &Stop, carry: &mut Carry) -> Result<(), ImapError> {
        // Held for the whole session: a stop ends any read from the server at once.
        let (mut s, _interrupt) = login_until(&self.account, &self.tls, stop)?;
        let idle = self.account.idle
            && s.capabilities()
                .map_err(ImapError::from_imap)?
                .has_str("IDLE");
        if self.account.idle && !idle {
            log::info!(
                "imap {}: the server does not offer IDLE; polling every {:?}",
                self.label(),
                self.account.poll_interval
            );
        }
        let mailbox = s.examine(&self.folder).map_err(|e| match e {
            imap::Error::No(no) => {
                ImapError::Mailbox(format!("{}: {}", self.folder, no.information))
            }
            other => ImapError::from_imap(other),
        })?;
        let uidvalidity = mailbox
            .uid_validity
            .ok_or_else(|| ImapError::Protocol("server sent no UIDVALIDITY".into()))?;
        let top = match mailbox.uid_next {
            Some(next) => next.saturating_sub(1),
            None => highest_uid(&mut s)?,
        };
        let stored = self
            .spool
            .cursor(&self.account.name, &self.folder)
            .map_err(|e| self.spool_error(e))?;
        let mut cursor = match stored {
            Some(c) if c.uidvalidity == uidvalidity => c,
            other => {
                let Some(c) = self.start(&mut s, other, uidvalidity, top, stop)? else {
                    return Ok(());
                };
                if other.is_some() {
                    carry.dedup_until = Some(Instant::now() + REPOPULATION_WINDOW);
                }
                c
            }
        };
        let mut poll_now = true;
        let mut next_poll = Instant::now();
        while !stop.is_stopped() {
            if poll_now {
                self.report(AccountState::Polling, None, Some(cursor));
                let dedup = carry.dedup_until.is_some_and(|t| Instant::now() < t);
                if !self.poll(&mut s, &mut cursor, dedup, stop)? {
                    break;
                }
                carry.failures = 0;
                next_poll = Instant::now() + self.account.poll_interval;
            }
            self.report(AccountState::Idle, None, Some(cursor));
            let until_poll = next_poll.saturating_duration_since(Instant::now());
            self.alive_for(if idle {
                until_poll.min(self.account.idle_renew)
            } else {
                until_poll
            });
            poll_now = if idle {
                match self.idle_until(&mut s, next_poll)? {
                    Woke::Mail => true,
                    Woke::Quiet => {
                        // The renewal's DONE went unanswered silently if the link died; NOOP
                        // makes a dead connection an error now rather than at the next poll.
                        s.noop().map_err(ImapError::from_imap)?;
                        Instant::now() >= next_poll
                    }
                }
            } else {
                if stop.sleep(next_poll.saturating_duration_since(Instant::now())) {
                    break;
                }
                true
            };
        }
        let _ = s.logout();
        Ok(())
    }

    /// Where a mailbox without a usable cursor starts: its first run (`start_at`, `backfill`)
    /// or, after a UIDVALIDITY change, a rescan of the mail that may have arrived since the
    /// cursor was last written, skipping what is already spooled. Writes and returns the new
    /// cursor; `None` when stopped meanwhile.
    fn start(
        &self,
        s: &mut Session,
        old: Option<Cursor>,
        uidvalidity: u32,
        top: u32,
        stop: &Stop,
    ) -> Result<Option<Cursor>, ImapError> {
        let (criteria, since) = match old {
            Some(old) => {
                let written = self
                    .spool
                    .cursor_written_at(&self.account.name, &self.folder)
                    .map_err(|e| self.spool_error(e))?;
                let since = written
                    .and_then(|t| DateTime::from_timestamp(t, 0))
                    .map(|t| t - RESCAN_MARGIN);
                log::warn!(
                    "imap {}: UIDVALIDITY changed {} → {uidvalidity}; rescanning mail received {}, skipping mail already spooled",
                    self.label(),
                    old.uidvalidity,
                    since.map_or("at any time".to_string(), |t| format!("since {}", t.to_rfc3339())),
                );
                (Some("ALL"), since)
            }
            None => {
                let since = self
                    .account
                    .backfill
                    .and_then(|b| chrono::TimeDelta::from_std(b).ok())
                    .map(|b| Utc::now() - b);
                let criteria = match self.account.start_at {
                    StartAt::Now => None,
                    StartAt::Unseen => Some("UNSEEN"),
                    StartAt::All => Some("ALL"),
                };
                log::info!(
                    "imap {}: first run, start_at {:?}{}",
                    self.label(),
                    self.account.start_at,
                    since.map_or(String::new(), |t| format!(
                        ", mail received since {}",
                        t.to_rfc3339()
                    )),
                );
                (criteria, since)
            }
        };
        let mut last_uid = top;
        if let Some(criteria) = criteria {
            match self.backfill(s, uidvalidity, criteria, since, stop)? {
                Some(highest) => last_uid = last_uid.max(highest),
                None => return Ok(None),
            }
        }
        let cursor = Cursor {
            uidvalidity,
            last_uid,
        };
        self.write(Some(cursor), uidvalidity, &[], false, stop)?;
        log::info!(
            "imap {}: watching for mail after uid {last_uid}",
            self.label()
        );
        Ok(Some(cursor))
    }

    /// Spools the mail matching `criteria` and received at or after `since`, skipping mail
    /// already spooled; the cursor stays. Returns the highest UID the search saw (mail up to it
    /// has been dealt with), or `None` when stopped meanwhile.
    fn backfill(
        &self,
        s: &mut Session,
        uidvalidity: u32,
        criteria: &str,
        since: Option<DateTime<Utc>>,
        stop: &Stop,
    ) -> Result<Option<u32>, ImapError> {
        // SEARCH SINCE compares dates in the server's zone: ask a day early, then filter exactly.
        let query = match since {
            Some(t) => format!(
                "{criteria} SINCE {}",
                (t - chrono::TimeDelta::days(1)).format("%d-%b-%Y")
            ),
            None => criteria.to_string(),
        };
        self.alive_for(Duration::from_secs(60));
        let mut uids: Vec<u32> = s
            .uid_search(&query)
            .map_err(ImapError::from_imap)?
            .into_iter()
            .collect();
        uids.sort_unstable();
        let highest = uids.last().copied().unwrap_or(0);
        if let Some(t) = since {
            self.alive_for(Duration::from_secs(60) + Duration::from_millis(2 * uids.len() as u64));
            uids = received_since(s, &uids, t)?;
        }
        log::info!(
            "imap {}: {} mail(s) to spool from before the cursor",
            self.label(),
            uids.len()
        );
        if !self.fetch_and_spool(s, &uids, uidvalidity, None, true, stop)? {
            return Ok(None);
        }
        Ok(Some(highest))
    }

    /// One IDLE command, ended by new mail, by `idle_renew`, by the next reconciliation poll
    /// being due, or by a stop (which shuts the session's socket down, see [`login_until`]: the
    /// error that follows is ignored by [`Watcher::run`]).
    fn idle_until(&self, s: &mut Session, until: Instant) -> Result<Woke, ImapError> {
        let wait = until
            .saturating_duration_since(Instant::now())
            .min(self.account.idle_renew)
            .max(Duration::from_secs(1));
        // The imap crate panics on one malformed answer to IDLE; that must not end the thread.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut idle = s.idle();
            idle.timeout(wait).keepalive(false);
            idle.wait_while(|r| {
                !matches!(
                    r,
                    UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
                )
            })
        }));
        match outcome {
            Ok(Ok(WaitOutcome::MailboxChanged)) => Ok(Woke::Mail),
            Ok(Ok(WaitOutcome::TimedOut)) => Ok(Woke::Quiet),
            Ok(Err(e)) => Err(ImapError::from_imap(e)),
            Err(_) => Err(ImapError::Protocol(
                "the server answered IDLE in a way this client does not understand".into(),
            )),
        }
    }

    /// Fetches and spools everything above the cursor (with `dedup`, skipping mail already
    /// spooled). Returns false when stopped meanwhile.
    fn poll(
        &self,
        s: &mut Session,
        cursor: &mut Cursor,
        dedup: bool,
        stop: &Stop,
    ) -> Result<bool, ImapError> {
        self.alive_for(Duration::ZERO);
        let found = s
            .uid_search(format!("UID {}:*", cursor.last_uid.saturating_add(1)))
            .map_err(ImapError::from_imap)?;
        // `N:*` always matches the highest UID, even when it is below N.
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > cursor.last_uid).collect();
        uids.sort_unstable();
        let uidvalidity = cursor.uidvalidity;
        self.fetch_and_spool(s, &uids, uidvalidity, Some(cursor), dedup, stop)
    }

    /// Fetches `uids` (ascending) in chunks and spools each chunk durably before the next
    /// fetch. With a cursor, each chunk moves it in the same transaction; without one (mail
    /// below the cursor) mail already spooled is skipped. Returns false when stopped meanwhile.
    fn fetch_and_spool(
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
            // Up to 50 × 64 KiB: allow a slow link (16 KiB/s) on top of the read timeouts.
            self.alive_for(Duration::from_secs(200));
            let fetches = s
                .uid_fetch(uid_set(chunk), FETCH_ITEMS)
                .map_err(ImapError::from_imap)?;
            let mut items = Vec::with_capacity(chunk.len());
            for f in fetches.iter() {
                let Some(uid) = f.uid.filter(|u| chunk.binary_search(u).is_ok()) else {
                    continue;
                };
                items.push(self.item(uid, f.body()));
            }
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

    /// A spool failure as this watcher's error; a damaged spool also stops the daemon.
    fn spool_error(&self, e: crate::spool::SpoolError) -> ImapError {
        if e.is_damaged() {
            let _ = self.health.send(Event::SpoolDamaged(e.to_string()));
        }
        ImapError::Protocol(format!("spool: {e}"))
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
            severity: self
                .buckets
                .iter()
                .find(|b| b.name == bucket)
                .map_or(crate::config::Severity::P3, |b| b.severity),
            uid,
            summary,
            sinks,
        }
    }

    /// Spools a chunk (moving the cursor to `next`, or as a backfill without one, which always
    /// skips mail already spooled; with a cursor, `dedup` asks for that too); while the
    /// disk is full, waits (mail stays on the server, the cursor stays put) and retries.
    /// Returns false when stopped meanwhile.
    fn write(
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

/// The highest UID in the selected mailbox, for servers that do not say UIDNEXT.
fn highest_uid(s: &mut Session) -> Result<u32, ImapError> {
    let found = s.uid_search("UID *").map_err(ImapError::from_imap)?;
    Ok(found.into_iter().max().unwrap_or(0))
}

/// Those of `uids` (ascending) whose INTERNALDATE is at or after `since`.
fn received_since(
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
