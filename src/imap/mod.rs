//! The IMAP watcher: one blocking thread per (account, folder) that connects, examines the
//! folder read-only, and waits for mail above the cursor — with IDLE when the server offers
//! it, renewed every `idle_renew`, and a reconciliation poll every `poll_interval` regardless,
//! so a silently dropped IDLE costs at most one poll interval. Every IDLE ends in a catch-up
//! search, and an `EXISTS` with a new count in any answer brings a search at once, so mail a
//! server announces only outside IDLE is late by at most `idle_renew`. Fetching and spooling
//! (invariant 2) live in `fetch.rs`; what servers do beyond RFC 3501 in `quirks.rs`.

pub mod action;
pub(crate) mod connect;
mod fetch;
pub(crate) mod part;
pub(crate) mod quirks;
pub(crate) mod structure;

pub use connect::tls_config;
pub use connect::ImapError;
pub(crate) use connect::{login, login_until, Session};

use crate::backoff::backoff;
use crate::config::{Account, Bucket, StartAt};
use crate::health::{AccountState, Event};
use crate::spool::{Cursor, Spool};
use crate::stop::Stop;
use crate::triage::Triage;
use crate::watchdog::Beat;
use chrono::{DateTime, Utc};
use fetch::{highest_uid, received_since};
use imap::types::UnsolicitedResponse;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc::UnboundedSender, Notify};

/// UIDs per `UID FETCH` and per spool transaction: one fsync covers a chunk, not each mail.
pub const CHUNK: usize = 50;
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
    /// Set when the server's answer to `ID` could not be read: it is not sent again.
    skip_id: bool,
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
                    let (state, floor) = quirks::after(&e);
                    let wait = backoff(carry.failures, fastrand::f64()).max(floor);
                    log::error!("imap {}: {e}; reconnecting in {wait:?}", self.label());
                    self.report(state, Some(e.to_string()), None);
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
        let caps = self.patiently(&mut s, stop, |s| s.capabilities())?;
        let idle = self.account.idle && caps.has_str("IDLE");
        let id = caps.has_str("ID");
        drop(caps);
        if id && !carry.skip_id {
            self.introduce(&mut s, carry)?;
        }
        if self.account.idle && !idle {
            log::info!(
                "imap {}: the server does not offer IDLE; polling every {:?}",
                self.label(),
                self.account.poll_interval
            );
        }
        loop {
            let Some((cursor, exists)) = self.open(&mut s, carry, stop)? else {
                return Ok(());
            };
            if !self.watch(&mut s, cursor, exists, idle, carry, stop)? {
                break;
            }
        }
        let _ = s.logout();
        Ok(())
    }

    /// A refused EXAMINE: the folder is missing (or not ours to read).
    fn missing(&self, e: imap::Error) -> ImapError {
        match e {
            imap::Error::No(no) => {
                ImapError::Mailbox(format!("{}: {}", self.folder, no.information))
            }
            other => ImapError::from_imap(other),
        }
    }

    /// The folder examined again at a reconciliation poll; its message count while it is the
    /// folder the cursor belongs to, `None` once it was re-created (a new UIDVALIDITY). Some
    /// servers go on serving a session the folder it had open after that folder was deleted
    /// and made anew (Cyrus the deleted one, Courier the new one under the old UIDVALIDITY):
    /// only a fresh EXAMINE shows the change.
    fn reexamine(
        &self,
        s: &mut Session,
        cursor: Cursor,
        stop: &Stop,
    ) -> Result<Option<u32>, ImapError> {
        let mailbox =
            self.patiently_as(s, stop, |s| s.examine(&self.folder), |e| self.missing(e))?;
        if mailbox.uid_validity == Some(cursor.uidvalidity) {
            return Ok(Some(mailbox.exists));
        }
        log::warn!(
            "imap {}: the folder was re-created while watched (UIDVALIDITY {} → {}); opening it again",
            self.label(),
            cursor.uidvalidity,
            mailbox.uid_validity.map_or("none".to_string(), |v| v.to_string())
        );
        Ok(None)
    }

    /// Examines the folder and finds the cursor to watch from (starting or rescanning the
    /// mailbox when there is none for its UIDVALIDITY); with the folder's message count.
    /// `None` when stopped meanwhile.
    fn open(
        &self,
        s: &mut Session,
        carry: &mut Carry,
        stop: &Stop,
    ) -> Result<Option<(Cursor, u32)>, ImapError> {
        let mailbox =
            self.patiently_as(s, stop, |s| s.examine(&self.folder), |e| self.missing(e))?;
        let uidvalidity = mailbox
            .uid_validity
            .ok_or_else(|| ImapError::Protocol("server sent no UIDVALIDITY".into()))?;
        let top = match mailbox.uid_next {
            Some(next) => next.saturating_sub(1),
            None => highest_uid(s, mailbox.exists)?,
        };
        let stored = self
            .spool
            .cursor(&self.account.name, &self.folder)
            .map_err(|e| self.spool_error(e))?;
        let cursor = match stored {
            Some(c) if c.uidvalidity == uidvalidity => c,
            other => {
                let Some(c) = self.start(s, other, uidvalidity, top, stop)? else {
                    return Ok(None);
                };
                if other.is_some() {
                    carry.dedup_until = Some(Instant::now() + REPOPULATION_WINDOW);
                }
                c
            }
        };
        Ok(Some((cursor, mailbox.exists)))
    }

    /// Watches the open folder until stopped (false) or until it was re-created and must be
    /// opened again (true): a poll, then IDLE (or a sleep) until the next one. `exists` is the
    /// folder's message count as the server last reported it: a larger count in any response
    /// is new mail.
    fn watch(
        &self,
        s: &mut Session,
        mut cursor: Cursor,
        mut exists: u32,
        idle: bool,
        carry: &mut Carry,
        stop: &Stop,
    ) -> Result<bool, ImapError> {
        let mut next_poll = Instant::now();
        let mut fresh = true;
        while !stop.is_stopped() {
            // A reconciliation poll when due, else the catch-up after an IDLE: the same search.
            let due = Instant::now() >= next_poll;
            if due {
                self.report(AccountState::Polling, None, Some(cursor));
                if !fresh {
                    match self.reexamine(s, cursor, stop)? {
                        Some(count) => exists = count,
                        None => return Ok(true),
                    }
                }
            }
            fresh = false;
            let dedup = carry.dedup_until.is_some_and(|t| Instant::now() < t);
            if !self.poll(s, &mut cursor, &mut exists, dedup, stop)? {
                break;
            }
            carry.failures = 0;
            if due {
                next_poll = Instant::now() + self.account.poll_interval;
            }
            // Mail announced while the poll fetched (Courier tells of new mail in the answer
            // to any command): fetched now, not after the next wait.
            if announced(s, &mut exists) {
                continue;
            }
            self.report(AccountState::Idle, None, Some(cursor));
            let until_poll = next_poll.saturating_duration_since(Instant::now());
            if idle {
                self.alive_for(until_poll.min(self.account.idle_renew));
                // Every IDLE, however it ends, is followed by the catch-up search above: new
                // mail a server reports only in its answer to DONE (Courier with
                // IMAP_ENHANCEDIDLE=0), which the imap crate reads and drops, is found then,
                // within `idle_renew`; and a link that died silently is an error now.
                self.idle_until(s, next_poll, &mut exists)?;
            } else {
                self.alive_for(until_poll);
                if stop.sleep(until_poll) {
                    break;
                }
            }
        }
        Ok(false)
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

    /// One IDLE command, ended by new mail (an `EXISTS` with a new count), by `idle_renew`,
    /// by the next reconciliation poll being due, or by a stop (which shuts the session's
    /// socket down, see [`login_until`]: the error that follows is ignored by
    /// [`Watcher::run`]). Unsolicited `FETCH` responses (iCloud sends flag changes) and a
    /// repeated count do not end it: no wake-up storm.
    fn idle_until(
        &self,
        s: &mut Session,
        until: Instant,
        exists: &mut u32,
    ) -> Result<(), ImapError> {
        let wait = until
            .saturating_duration_since(Instant::now())
            .min(self.account.idle_renew)
            .max(Duration::from_secs(1));
        let mut count = *exists;
        // The imap crate panics on one malformed answer to IDLE; that must not end the thread.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut idle = s.idle();
            idle.timeout(wait).keepalive(false);
            idle.wait_while(|r| match r {
                UnsolicitedResponse::Exists(n) if n != count => {
                    count = n;
                    false
                }
                UnsolicitedResponse::Expunge(_) => {
                    count = count.saturating_sub(1);
                    true
                }
                _ => true,
            })
        }));
        *exists = count;
        match outcome {
            Ok(Ok(_)) => Ok(()),
            // The wait itself turns a quiet IDLE into `TimedOut`: a read that timed out here was
            // IDLE's start. Microsoft tells of new mail before its `+` when mail arrives just
            // then; the imap crate, finding no `+`, reads on for IDLE's end until `timeout`, and
            // its `DONE` on dropping the handle ends the IDLE cleanly. The catch-up search that
            // follows every IDLE finds the mail; a link that died fails that search instead.
            Ok(Err(imap::Error::Io(io))) if connect::is_timeout(&io) => {
                log::warn!(
                    "imap {}: the server did not answer IDLE with its + within {}; it may \
                     have told of new mail before its + to IDLE (Microsoft does): searching",
                    self.label(),
                    connect::within(&self.account.timeout)
                );
                Ok(())
            }
            Ok(Err(e)) => Err(ImapError::from_imap(e)),
            Err(_) => Err(ImapError::Protocol(
                "the server answered IDLE in a way this client does not understand".into(),
            )),
        }
    }

    /// Fetches and spools everything above the cursor (with `dedup`, skipping mail already
    /// spooled); `exists` takes the count the search's answer reports. The search is sent raw
    /// so that its tagged `OK` can be read: Gmail's `[THROTTLED]` there is waited out before
    /// the fetch. Returns false when stopped meanwhile.
    fn poll(
        &self,
        s: &mut Session,
        cursor: &mut Cursor,
        exists: &mut u32,
        dedup: bool,
        stop: &Stop,
    ) -> Result<bool, ImapError> {
        self.alive_for(Duration::ZERO);
        // Whatever was announced before this search, the search covers.
        let _ = announced(s, exists);
        let query = format!("UID SEARCH UID {}:*", cursor.last_uid.saturating_add(1));
        let (answer, _) = self.patiently(s, stop, |s| s.run(&query))?;
        let found = quirks::read_search(&answer)
            .ok_or_else(|| ImapError::Protocol("unreadable answer to UID SEARCH".into()))?;
        if let Some(n) = found.exists {
            *exists = n.saturating_sub(found.expunged);
        }
        if let Some(pause) = found.pause {
            self.throttled(pause, "[THROTTLED] in its answer to UID SEARCH", stop)?;
        }
        // `N:*` always matches the highest UID, even when it is below N.
        let mut uids: Vec<u32> = found
            .uids
            .into_iter()
            .filter(|u| *u > cursor.last_uid)
            .collect();
        uids.sort_unstable();
        uids.dedup();
        let uidvalidity = cursor.uidvalidity;
        self.fetch_and_spool(s, &uids, uidvalidity, Some(cursor), dedup, stop)
    }

    /// A spool failure as this watcher's error; a damaged spool also stops the daemon.
    fn spool_error(&self, e: crate::spool::SpoolError) -> ImapError {
        if e.is_damaged() {
            let _ = self.health.send(Event::SpoolDamaged(e.to_string()));
        }
        ImapError::Protocol(format!("spool: {e}"))
    }
}

/// Takes the responses the server sent beside the answers to earlier commands; true when an
/// `EXISTS` there counts more mail than `exists` (which takes the new count).
fn announced(s: &mut Session, exists: &mut u32) -> bool {
    let mut more = false;
    for r in s.take_all_unsolicited() {
        match r {
            UnsolicitedResponse::Exists(n) => {
                more |= n > *exists;
                *exists = n;
            }
            UnsolicitedResponse::Expunge(_) => *exists = exists.saturating_sub(1),
            // Flag changes (iCloud), RECENT, notices: nothing to fetch.
            _ => {}
        }
    }
    more
}
