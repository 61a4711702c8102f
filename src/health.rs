//! Health: one pure reducer over events from every component, and the pattern it implies.
//!
//! Every failure the agent can observe — a dead sink, an IMAP login that keeps failing, a spool
//! past its thresholds, a full disk — arrives here as an [`Event`] and changes [`Health`]; the
//! LED/buzzer, `status`, the log and the systemd status line all read the result (invariant 5).
//! No I/O and no clock: the caller passes `now`.

mod reasons;
mod reports;

pub use reports::{HeartbeatReport, LastNotice, NoticeReport};

use crate::spool::{BucketStats, Cursor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    Connecting,
    Idle,
    Polling,
    Backoff,
    AuthFailed,
    TlsFailed,
    /// The folder does not exist (or may not be examined) on the server.
    MailboxMissing,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkState {
    Ok,
    Retrying,
    RateLimited,
    Dead,
}

/// Every sink's standing with Discord as one: `rate_limited` while a global 429 pauses them,
/// `paused` while the invalid-request count is at its limit, `banned` while Cloudflare bans the IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DiscordState {
    #[default]
    Ok,
    RateLimited,
    Paused,
    Banned,
}

/// The dispatchers' shared guard, as health and `status` see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiscordHealth {
    pub state: DiscordState,
    /// 401, 403 and non-shared 429 answers in the last 10 minutes, all sinks together.
    pub invalid_requests: u64,
    /// The count at which every sink pauses.
    pub limit: u64,
    /// Unix seconds when the pause of every sink ends, if one is on (and known).
    pub paused_until: Option<i64>,
}

/// What the LED and buzzer show; worst wins. `Selftest` is shown by the indicator at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    Off,
    Selftest,
    Ok,
    Backlog,
    Dead,
    Alarm,
}

impl Pattern {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Pattern::Off => "off",
            Pattern::Selftest => "selftest",
            Pattern::Ok => "ok",
            Pattern::Backlog => "backlog",
            Pattern::Dead => "dead",
            Pattern::Alarm => "alarm",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Event {
    Account {
        account: String,
        folder: String,
        state: AccountState,
        error: Option<String>,
        cursor: Option<Cursor>,
    },
    Sink {
        name: String,
        state: SinkState,
        error: Option<String>,
        delivered: bool,
    },
    Spool(Vec<BucketStats>),
    /// The spool was reopened on a writable disk: every writer's disk trouble is over.
    SpoolReopened,
    /// A spool record does not decode or sled reports corruption: the daemon stops (waiting
    /// cannot help) and the operator salvages.
    SpoolDamaged(String),
    /// The spool was found damaged at start and rebuilt from what was readable (docs/design.md
    /// invariant 9): shown until the daemon restarts, as an alarm when mail was unreadable.
    SpoolRebuilt {
        notice: String,
        unreadable: u64,
    },
    Discord(DiscordHealth),
    /// From one writer of the spool (`imap home/INBOX`, `sink alerts`): `Some(reason)` while it
    /// cannot write (disk full, read-only), `None` once it can. Each writer clears only its own.
    Disk {
        writer: String,
        full: Option<String>,
    },
    /// From one IMAP watcher: `Some(reason)` while the spool, at its size bound
    /// (`spool_max_mb`), refuses its mail; `None` once it took it.
    SpoolFull {
        writer: String,
        full: Option<String>,
    },
    /// The configuration was (re)loaded: forget accounts and sinks it no longer names.
    Configured {
        mailboxes: Vec<(String, String)>,
        sinks: Vec<String>,
        thresholds: Thresholds,
    },
    Stopping,
    /// The notice sender's latest report (src/notice/run.rs).
    Notices(NoticeReport),
    /// The heartbeat's latest report (src/heartbeat.rs).
    Heartbeat(HeartbeatReport),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Thresholds {
    pub spool_warn: u64,
    pub spool_alarm: u64,
    pub pending_age_alarm_s: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct AccountHealth {
    pub state: AccountState,
    pub last_ok: Option<i64>,
    pub last_error: Option<String>,
    /// When `last_error` was reported.
    pub last_error_at: Option<i64>,
    /// When the watcher was back to watching after `last_error`; `None` while it is current.
    pub recovered_at: Option<i64>,
    pub cursor: Option<Cursor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SinkHealth {
    pub state: SinkState,
    pub last_error: Option<String>,
    pub last_success: Option<i64>,
}

impl AccountHealth {
    fn new(state: AccountState) -> AccountHealth {
        AccountHealth {
            state,
            last_ok: None,
            last_error: None,
            last_error_at: None,
            recovered_at: None,
            cursor: None,
        }
    }

    /// A watcher's report: its state, an error (which starts a new trouble), its cursor.
    fn apply(
        &mut self,
        state: AccountState,
        error: Option<String>,
        cursor: Option<Cursor>,
        now: i64,
    ) {
        self.state = state;
        if state == AccountState::Idle {
            self.last_ok = Some(now);
            if self.last_error.is_some() && self.recovered_at.is_none() {
                self.recovered_at = Some(now);
            }
        }
        if error.is_some() {
            self.last_error = error;
            self.last_error_at = Some(now);
            self.recovered_at = None;
        }
        if cursor.is_some() {
            self.cursor = cursor;
        }
    }
}

impl SinkHealth {
    fn new(state: SinkState) -> SinkHealth {
        SinkHealth {
            state,
            last_error: None,
            last_success: None,
        }
    }

    /// A delivery loop's report: its state, whether it just delivered, its last error.
    fn apply(&mut self, state: SinkState, error: Option<String>, delivered: bool, now: i64) {
        self.state = state;
        if delivered {
            self.last_success = Some(now);
        }
        if error.is_some() {
            self.last_error = error;
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    pub(crate) accounts: BTreeMap<(String, String), AccountHealth>,
    pub(crate) sinks: BTreeMap<String, SinkHealth>,
    pub(crate) buckets: Vec<BucketStats>,
    /// Writers that currently cannot write the spool, with the reason.
    pub(crate) disk: BTreeMap<String, String>,
    /// Watchers whose mail the spool refuses at its size bound, with the reason.
    pub(crate) full: BTreeMap<String, String>,
    /// Why the spool is damaged, once any component found it so.
    pub(crate) damaged: Option<String>,
    /// What a rebuild at start did, and how many records it could not read.
    pub(crate) rebuilt: Option<(String, u64)>,
    pub(crate) stopping: bool,
    pub(crate) thresholds: Thresholds,
    pub(crate) discord: DiscordHealth,
    /// The last notice and the counts; `None` before the first.
    pub(crate) notices: Option<NoticeReport>,
    /// The last heartbeat; `None` without one.
    pub(crate) heartbeat: Option<HeartbeatReport>,
}

impl Health {
    /// Reduces one event into the state.
    pub(crate) fn apply(&mut self, event: Event, now: i64) {
        match event {
            Event::Account {
                account,
                folder,
                state,
                error,
                cursor,
            } => self
                .accounts
                .entry((account, folder))
                .or_insert_with(|| AccountHealth::new(state))
                .apply(state, error, cursor, now),
            Event::Sink {
                name,
                state,
                error,
                delivered,
            } => self
                .sinks
                .entry(name)
                .or_insert_with(|| SinkHealth::new(state))
                .apply(state, error, delivered, now),
            Event::Spool(stats) => self.buckets = stats,
            Event::SpoolReopened => {
                self.disk.clear();
                self.full.clear();
            }
            Event::SpoolFull { writer, full } => match full {
                Some(reason) => {
                    self.full.insert(writer, reason);
                }
                None => {
                    self.full.remove(&writer);
                }
            },
            Event::Discord(d) => self.discord = d,
            Event::SpoolDamaged(reason) => {
                self.damaged.get_or_insert(reason);
            }
            Event::SpoolRebuilt { notice, unreadable } => {
                self.rebuilt = Some((notice, unreadable));
            }
            Event::Disk { writer, full } => match full {
                Some(reason) => {
                    self.disk.insert(writer, reason);
                }
                None => {
                    self.disk.remove(&writer);
                }
            },
            Event::Configured {
                mailboxes,
                sinks,
                thresholds,
            } => {
                self.accounts.retain(|k, _| mailboxes.contains(k));
                self.sinks.retain(|k, _| sinks.contains(k));
                self.thresholds = thresholds;
            }
            Event::Stopping => self.stopping = true,
            Event::Notices(r) => self.notices = Some(r),
            Event::Heartbeat(r) => self.heartbeat = Some(r),
        }
    }

    pub(crate) fn pending(&self) -> u64 {
        self.buckets.iter().map(|b| b.pending).sum()
    }
}

#[cfg(test)]
mod tests;
