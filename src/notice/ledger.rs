//! The ledger: what has been announced, since when, and what is owed next — the no-noise rules
//! as one pure state machine over explicit instants (Unix seconds), so they are unit-tested
//! without a clock.
//!
//! Per condition: a trouble seen for the first time is noted, not told; once it lasted
//! `notify_after` it is announced (one notice); while it lasts a reminder follows every
//! `remind_every`; when it turns into another state of the same condition (an IMAP server
//! unreachable, then refusing the login) that lasts `notify_after`, the new state is announced
//! as such, with its own remedy; once it has been gone for `notify_after` (and, for a sink,
//! its backlog has drained, or [`DRAIN_WAIT`] passed) its end is told once. A trouble that
//! ends before it was announced is forgotten without a word. Conditions that are not known yet
//! change nothing.
//!
//! The ledger is what survives a restart (src/notice/store.rs): an announced trouble that is
//! still there after a restart is not announced again.

use super::{Holds, Judgement, Trouble};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// How long a revived sink's backlog may take to drain before its end is told anyway.
const DRAIN_WAIT: i64 = 600;

/// The timing rules, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rules {
    pub(crate) notify_after: i64,
    pub(crate) remind_every: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) trouble: Trouble,
    /// When the trouble was first seen.
    pub(crate) since: i64,
    pub(crate) announced_at: Option<i64>,
    pub(crate) reminded_at: Option<i64>,
    /// The headline last announced (`None` in a ledger from before it was kept).
    #[serde(default)]
    pub(crate) told: Option<String>,
    /// When the present headline began, if it is not the one first seen.
    #[serde(default)]
    pub(crate) changed_since: Option<i64>,
    /// The sinks the announcement went to: its end is told there too.
    #[serde(default)]
    pub(crate) channels: Vec<String>,
    /// The most mails it held back at once.
    #[serde(default)]
    pub(crate) held: u64,
    /// Seen gone since; told once that lasts.
    pub(crate) clear_since: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ledger {
    #[serde(default)]
    pub(crate) entries: BTreeMap<String, Entry>,
    /// The local date (`2026-12-04`) of the last daily summary.
    #[serde(default)]
    pub(crate) daily_last: Option<String>,
}

/// The part of the ledger a restart needs ([`Ledger::durable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Durable {
    pub(crate) announced: Vec<Announced>,
    pub(crate) daily_last: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Announced {
    pub(crate) key: String,
    pub(crate) at: i64,
    pub(crate) reminded_at: Option<i64>,
    pub(crate) clear_since: Option<i64>,
    pub(crate) channels: Vec<String>,
    pub(crate) told: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Trouble,
    Reminder,
    /// `held`: the most mails it held back (`None`: mail waited on the server);
    /// `pending`: how many of those are still pending as it is told.
    Recovery {
        lasted: i64,
        held: Option<u64>,
        pending: Option<u64>,
    },
}

/// One notice to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notice {
    pub(crate) kind: Kind,
    pub(crate) trouble: Trouble,
    pub(crate) since: i64,
    /// For an end: the sinks the announcement went to.
    pub(crate) channels: Vec<String>,
}

impl Ledger {
    /// Applies one round of judgements at `now`; `pending` counts what a trouble holds back
    /// now. Returns the notices owed, in a stable order.
    pub(crate) fn step(
        &mut self,
        observed: &[(String, Judgement)],
        pending: &dyn Fn(&Holds) -> Option<u64>,
        now: i64,
        rules: Rules,
    ) -> Vec<Notice> {
        self.judge(observed, pending, now);
        self.owed(pending, now, rules)
    }

    /// Records one round of judgements at `now`: troubles seen, conditions cleared, and
    /// conditions the configuration no longer has.
    fn judge(
        &mut self,
        observed: &[(String, Judgement)],
        pending: &dyn Fn(&Holds) -> Option<u64>,
        now: i64,
    ) {
        let judged: HashSet<&str> = observed.iter().map(|(k, _)| k.as_str()).collect();
        for (key, j) in observed {
            match j {
                Judgement::Trouble(t) => self.seen(key, t, pending(&t.holds), now),
                Judgement::Clear => self.gone(key, now),
                Judgement::Unknown => {}
            }
        }
        // A condition the configuration no longer has (a removed sink) is over.
        let removed: Vec<String> = self
            .entries
            .keys()
            .filter(|k| !judged.contains(k.as_str()))
            .cloned()
            .collect();
        for key in removed {
            self.gone(&key, now);
        }
    }

    /// The notices owed at `now`: announcements, changes, reminders and recoveries; a
    /// recovered condition leaves the ledger.
    fn owed(
        &mut self,
        pending: &dyn Fn(&Holds) -> Option<u64>,
        now: i64,
        rules: Rules,
    ) -> Vec<Notice> {
        let mut out = Vec::new();
        let mut over = Vec::new();
        for (key, e) in self.entries.iter_mut() {
            let changed = e.told.as_ref().is_some_and(|t| *t != e.trouble.what);
            let state_since = e.changed_since.unwrap_or(e.since);
            match (e.announced_at, e.clear_since) {
                (None, None) if now - e.since >= rules.notify_after => {
                    e.announced_at = Some(now);
                    e.told = Some(e.trouble.what.clone());
                    out.push(notice(e, Kind::Trouble));
                }
                // Another state of an announced condition, lasting: a new announcement (its
                // own remedy), and the reminders count from it.
                (Some(_), None) if changed && now - state_since >= rules.notify_after => {
                    e.reminded_at = Some(now);
                    e.told = Some(e.trouble.what.clone());
                    out.push(Notice {
                        since: state_since,
                        ..notice(e, Kind::Trouble)
                    });
                }
                (Some(at), None) if now - e.reminded_at.unwrap_or(at) >= rules.remind_every => {
                    e.reminded_at = Some(now);
                    out.push(notice(e, Kind::Reminder));
                }
                (Some(_), Some(clear)) if now - clear >= rules.notify_after => {
                    let still = pending(&e.trouble.holds);
                    // Only a revived sink has a backlog of its own to drain before "all
                    // delivered" is true; a spool level is over once it is below the level.
                    let drained =
                        !matches!(e.trouble.holds, Holds::Sink(_)) || still.is_none_or(|n| n == 0);
                    if drained || now - clear >= rules.notify_after + DRAIN_WAIT {
                        let kind = Kind::Recovery {
                            lasted: clear - e.since,
                            held: still.map(|_| e.held),
                            pending: still,
                        };
                        out.push(notice(e, kind));
                        over.push(key.clone());
                    }
                }
                _ => {}
            }
        }
        for key in over {
            self.entries.remove(&key);
        }
        out
    }

    /// Records where an announcement went, for its end.
    pub(crate) fn sent_to(&mut self, key: &str, channels: &[String]) {
        if let Some(e) = self.entries.get_mut(key) {
            e.channels = channels.to_vec();
        }
    }

    /// The troubles that have lasted `notify_after` and still do, worst first: what the
    /// heartbeat reports.
    pub(crate) fn current(&self) -> Vec<&Trouble> {
        let mut v: Vec<&Trouble> = self
            .entries
            .values()
            .filter(|e| e.announced_at.is_some() && e.clear_since.is_none())
            .map(|e| &e.trouble)
            .collect();
        v.sort_by_key(|t| std::cmp::Reverse(t.level));
        v
    }

    /// What must survive a restart: the announced troubles and where they stand, and the
    /// date of the last daily summary. The rest (a trouble not yet announced, its changing
    /// detail) is not worth a write to an SD card every second.
    pub(crate) fn durable(&self) -> Durable {
        let announced = self
            .entries
            .iter()
            .filter_map(|(k, e)| {
                Some(Announced {
                    key: k.clone(),
                    at: e.announced_at?,
                    reminded_at: e.reminded_at,
                    clear_since: e.clear_since,
                    channels: e.channels.clone(),
                    told: e.told.clone(),
                })
            })
            .collect();
        Durable {
            announced,
            daily_last: self.daily_last.clone(),
        }
    }

    fn seen(&mut self, key: &str, t: &Trouble, holding: Option<u64>, now: i64) {
        let e = self
            .entries
            .entry(key.to_string())
            .or_insert_with(|| Entry {
                trouble: t.clone(),
                since: now,
                announced_at: None,
                reminded_at: None,
                told: None,
                changed_since: None,
                channels: Vec::new(),
                held: 0,
                clear_since: None,
            });
        if e.trouble.what != t.what {
            e.changed_since = Some(now);
        }
        e.trouble = t.clone();
        e.clear_since = None;
        e.held = e.held.max(holding.unwrap_or(0));
    }

    fn gone(&mut self, key: &str, now: i64) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        if e.announced_at.is_none() {
            self.entries.remove(key);
        } else if e.clear_since.is_none() {
            e.clear_since = Some(now);
        }
    }
}

fn notice(e: &Entry, kind: Kind) -> Notice {
    Notice {
        kind,
        trouble: e.trouble.clone(),
        since: e.since,
        channels: e.channels.clone(),
    }
}

#[cfg(test)]
mod tests;
