//! Health: one pure reducer over events from every component, and the pattern it implies.
//!
//! Every failure the agent can observe — a dead sink, an IMAP login that keeps failing, a spool
//! past its thresholds, a full disk — arrives here as an [`Event`] and changes [`Health`]; the
//! LED/buzzer, `status`, the log and the systemd status line all read the result (invariant 5).
//! No I/O and no clock: the caller passes `now`.

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
    pub fn as_str(self) -> &'static str {
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
pub struct AccountHealth {
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
pub struct SinkHealth {
    pub state: SinkState,
    pub last_error: Option<String>,
    pub last_success: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    pub accounts: BTreeMap<(String, String), AccountHealth>,
    pub sinks: BTreeMap<String, SinkHealth>,
    pub buckets: Vec<BucketStats>,
    /// Writers that currently cannot write the spool, with the reason.
    pub disk: BTreeMap<String, String>,
    /// Watchers whose mail the spool refuses at its size bound, with the reason.
    pub full: BTreeMap<String, String>,
    /// Why the spool is damaged, once any component found it so.
    pub damaged: Option<String>,
    /// What a rebuild at start did, and how many records it could not read.
    pub rebuilt: Option<(String, u64)>,
    pub stopping: bool,
    pub thresholds: Thresholds,
    pub discord: DiscordHealth,
    /// The last notice and the counts; `None` before the first.
    pub notices: Option<NoticeReport>,
    /// The last heartbeat; `None` without one.
    pub heartbeat: Option<HeartbeatReport>,
}

impl Health {
    pub fn apply(&mut self, event: Event, now: i64) {
        match event {
            Event::Account {
                account,
                folder,
                state,
                error,
                cursor,
            } => {
                let entry = self
                    .accounts
                    .entry((account, folder))
                    .or_insert(AccountHealth {
                        state,
                        last_ok: None,
                        last_error: None,
                        last_error_at: None,
                        recovered_at: None,
                        cursor: None,
                    });
                entry.state = state;
                if state == AccountState::Idle {
                    entry.last_ok = Some(now);
                    if entry.last_error.is_some() && entry.recovered_at.is_none() {
                        entry.recovered_at = Some(now);
                    }
                }
                if error.is_some() {
                    entry.last_error = error;
                    entry.last_error_at = Some(now);
                    entry.recovered_at = None;
                }
                if cursor.is_some() {
                    entry.cursor = cursor;
                }
            }
            Event::Sink {
                name,
                state,
                error,
                delivered,
            } => {
                let entry = self.sinks.entry(name).or_insert(SinkHealth {
                    state,
                    last_error: None,
                    last_success: None,
                });
                entry.state = state;
                if delivered {
                    entry.last_success = Some(now);
                }
                if error.is_some() {
                    entry.last_error = error;
                }
            }
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

    pub fn pending(&self) -> u64 {
        self.buckets.iter().map(|b| b.pending).sum()
    }

    fn oldest_pending_age(&self, now: i64) -> Option<i64> {
        self.buckets
            .iter()
            .filter_map(|b| b.oldest_pending_at)
            .min()
            .map(|t| now - t)
    }

    /// The worst condition, as docs/design.md's table orders them.
    pub fn pattern(&self, now: i64) -> Pattern {
        self.reasons(now).first().map_or(Pattern::Ok, |(p, _)| *p)
    }

    /// Every condition that is not ok, worst first, each with a sentence for people.
    pub fn reasons(&self, now: i64) -> Vec<(Pattern, String)> {
        let t = self.thresholds;
        let mut out = Vec::new();
        if self.stopping {
            out.push((Pattern::Off, "stopping".to_string()));
            return out;
        }
        if let Some((writer, reason)) = self.disk.iter().next() {
            out.push((
                Pattern::Alarm,
                format!("spool cannot be written ({writer}): {reason}"),
            ));
        }
        if let Some((writer, reason)) = self.full.iter().next() {
            out.push((Pattern::Alarm, format!("{reason} ({writer})")));
        }
        if let Some((notice, unreadable)) = &self.rebuilt {
            // Unreadable mail needs the user; a rebuild that kept everything is only news.
            let pattern = if *unreadable > 0 {
                Pattern::Alarm
            } else {
                Pattern::Backlog
            };
            out.push((pattern, notice.clone()));
        }
        let pending = self.pending();
        if t.spool_alarm > 0 && pending > t.spool_alarm {
            out.push((
                Pattern::Alarm,
                format!("{pending} mails pending (alarm above {})", t.spool_alarm),
            ));
        }
        if let Some(age) = self
            .oldest_pending_age(now)
            .filter(|a| t.pending_age_alarm_s > 0 && *a > t.pending_age_alarm_s)
        {
            out.push((Pattern::Alarm, format!("oldest pending mail waits {age} s")));
        }
        if let Some(why) = self.discord_reason() {
            out.push(why);
        }
        for (name, s) in &self.sinks {
            if s.state == SinkState::Dead {
                out.push((
                    Pattern::Dead,
                    format!(
                        "sink {name} dead: {}",
                        s.last_error.as_deref().unwrap_or("unreachable")
                    ),
                ));
            }
        }
        for ((account, folder), a) in &self.accounts {
            if matches!(
                a.state,
                AccountState::Backoff
                    | AccountState::AuthFailed
                    | AccountState::TlsFailed
                    | AccountState::MailboxMissing
                    | AccountState::Error
            ) {
                let state = serde_json::to_value(a.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                out.push((
                    Pattern::Dead,
                    format!(
                        "imap {account}/{folder} {state}: {}",
                        a.last_error.as_deref().unwrap_or("down")
                    ),
                ));
            }
        }
        if t.spool_warn > 0 && pending > t.spool_warn {
            out.push((Pattern::Backlog, format!("{pending} mails pending")));
        }
        for (name, s) in &self.sinks {
            if matches!(s.state, SinkState::Retrying | SinkState::RateLimited) {
                out.push((
                    Pattern::Backlog,
                    format!(
                        "sink {name} {}",
                        if s.state == SinkState::Retrying {
                            "retrying"
                        } else {
                            "rate limited"
                        }
                    ),
                ));
            }
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.0));
        out
    }

    /// A pause of every sink: a ban or the invalid-request limit is as bad as a dead sink (no
    /// mail reaches Discord for minutes); a global rate limit is a backlog.
    fn discord_reason(&self) -> Option<(Pattern, String)> {
        let d = &self.discord;
        let until = d.paused_until.map_or(String::new(), |t| {
            format!(" until {}", crate::time::rfc3339(t))
        });
        match d.state {
            DiscordState::Ok => None,
            DiscordState::Banned => Some((
                Pattern::Dead,
                format!("Discord/Cloudflare banned this IP (error 1015): every sink paused{until}"),
            )),
            DiscordState::Paused => Some((
                Pattern::Dead,
                format!(
                    "every sink paused{until}: {} invalid requests (401/403/429) in 10 min, limit {}",
                    d.invalid_requests, d.limit
                ),
            )),
            DiscordState::RateLimited => Some((
                Pattern::Backlog,
                format!("every sink paused{until}: Discord's global rate limit"),
            )),
        }
    }

    /// One line for the systemd status and the journal.
    pub fn summary(&self, now: i64) -> String {
        let reasons = self.reasons(now);
        let pending = self.pending();
        match reasons.first() {
            None => format!(
                "ok: {pending} pending, {} sinks, {} mailboxes",
                self.sinks.len(),
                self.accounts.len()
            ),
            Some((p, why)) if reasons.len() == 1 => format!("{}: {why}", p.as_str()),
            Some((p, why)) => format!("{}: {why} (+{} more)", p.as_str(), reasons.len() - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        spool_warn: 5,
        spool_alarm: 10,
        pending_age_alarm_s: 3600,
    };

    fn health() -> Health {
        let mut h = Health::default();
        h.apply(
            Event::Configured {
                mailboxes: vec![("a".into(), "INBOX".into())],
                sinks: vec!["s".into()],
                thresholds: T,
            },
            0,
        );
        h
    }

    fn sink(state: SinkState) -> Event {
        Event::Sink {
            name: "s".into(),
            state,
            error: Some("HTTP 403".into()),
            delivered: false,
        }
    }

    fn pending(n: u64, oldest: i64) -> Event {
        Event::Spool(vec![BucketStats {
            name: "b".into(),
            pending: n,
            delivered: 0,
            dead: 0,
            oldest_pending_at: Some(oldest),
        }])
    }

    #[test]
    fn nothing_wrong_is_ok() {
        assert_eq!(health().pattern(0), Pattern::Ok);
    }

    #[test]
    fn worst_wins() {
        let mut h = health();
        h.apply(sink(SinkState::Retrying), 0);
        assert_eq!(h.pattern(0), Pattern::Backlog);
        h.apply(sink(SinkState::Dead), 0);
        assert_eq!(h.pattern(0), Pattern::Dead);
        assert!(
            h.summary(0).contains("sink s dead: HTTP 403"),
            "{}",
            h.summary(0)
        );
        h.apply(pending(11, 0), 0);
        assert_eq!(h.pattern(0), Pattern::Alarm);
        h.apply(pending(1, 0), 0);
        assert_eq!(h.pattern(0), Pattern::Dead);
        assert_eq!(h.pattern(3601), Pattern::Alarm, "too old");
        h.apply(Event::Stopping, 0);
        assert_eq!(h.pattern(0), Pattern::Off);
    }

    #[test]
    fn imap_trouble_and_full_disks_show() {
        let mut h = health();
        let acct = |state| Event::Account {
            account: "a".into(),
            folder: "INBOX".into(),
            state,
            error: Some("bad password".into()),
            cursor: None,
        };
        h.apply(acct(AccountState::AuthFailed), 0);
        assert_eq!(h.pattern(0), Pattern::Dead);
        let row = |h: &Health| h.accounts[&("a".into(), "INBOX".into())].clone();
        assert_eq!(
            (row(&h).last_error_at, row(&h).recovered_at),
            (Some(0), None)
        );
        let recovered = Event::Account {
            account: "a".into(),
            folder: "INBOX".into(),
            state: AccountState::Idle,
            error: None,
            cursor: None,
        };
        h.apply(recovered, 7);
        assert_eq!(h.pattern(0), Pattern::Ok);
        assert_eq!(row(&h).last_ok, Some(7));
        assert_eq!(row(&h).recovered_at, Some(7), "the old error is past");
        let disk = |writer: &str, full: Option<&str>| Event::Disk {
            writer: writer.into(),
            full: full.map(str::to_string),
        };
        h.apply(disk("imap a/INBOX", Some("No space left on device")), 0);
        h.apply(disk("sink s", Some("No space left on device")), 0);
        assert_eq!(h.pattern(0), Pattern::Alarm);
        h.apply(disk("imap a/INBOX", None), 0);
        assert_eq!(h.pattern(0), Pattern::Alarm, "the sink has not written yet");
        h.apply(disk("sink s", None), 0);
        assert_eq!(h.pattern(0), Pattern::Ok);
        let full = |full: Option<&str>| Event::SpoolFull {
            writer: "imap a/INBOX".into(),
            full: full.map(str::to_string),
        };
        h.apply(full(Some("spool full")), 0);
        assert_eq!(h.pattern(0), Pattern::Alarm);
        assert!(
            h.summary(0).contains("spool full (imap a/INBOX)"),
            "{}",
            h.summary(0)
        );
        h.apply(full(None), 0);
        assert_eq!(h.pattern(0), Pattern::Ok);
    }

    #[test]
    fn backlog_is_above_the_warn_threshold() {
        let mut h = health();
        h.apply(pending(5, 0), 0);
        assert_eq!(h.pattern(0), Pattern::Ok);
        h.apply(pending(6, 0), 0);
        assert_eq!(h.pattern(0), Pattern::Backlog);
    }

    #[test]
    fn a_ban_or_the_invalid_request_limit_shows_dead_a_global_limit_backlog() {
        let mut h = health();
        let discord = |state| {
            Event::Discord(DiscordHealth {
                state,
                invalid_requests: 4,
                limit: 100,
                paused_until: Some(0),
            })
        };
        h.apply(discord(DiscordState::Banned), 0);
        assert_eq!(h.pattern(0), Pattern::Dead);
        assert!(h.summary(0).contains("banned"), "{}", h.summary(0));
        h.apply(discord(DiscordState::Paused), 0);
        assert_eq!(h.pattern(0), Pattern::Dead);
        h.apply(discord(DiscordState::RateLimited), 0);
        assert_eq!(h.pattern(0), Pattern::Backlog);
        h.apply(discord(DiscordState::Ok), 0);
        assert_eq!(h.pattern(0), Pattern::Ok);
    }

    #[test]
    fn a_reload_forgets_removed_parts() {
        let mut h = health();
        h.apply(sink(SinkState::Dead), 0);
        h.apply(
            Event::Configured {
                mailboxes: vec![],
                sinks: vec![],
                thresholds: T,
            },
            0,
        );
        assert_eq!(h.pattern(0), Pattern::Ok);
    }
}
