//! The ledger: what has been announced, since when, and what is owed next — the no-noise rules
//! as one pure state machine over explicit instants (Unix seconds), so they are unit-tested
//! without a clock.
//!
//! Per condition: a trouble seen for the first time is noted, not told; once it lasted
//! `notify_after` it is announced (one notice); while it lasts a reminder follows every
//! `remind_every`; once it has been gone for `notify_after` (and, for a sink, its backlog has
//! drained, or [`DRAIN_WAIT`] passed) its end is told once. A trouble that ends before it was
//! announced is forgotten without a word. Conditions that are not known yet change nothing.
//!
//! The ledger is what survives a restart (src/notice/store.rs): an announced trouble that is
//! still there after a restart is not announced again.

use super::{Holds, Judgement, Trouble};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// How long a revived sink's backlog may take to drain before its end is told anyway.
pub const DRAIN_WAIT: i64 = 600;

/// The timing rules, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub notify_after: i64,
    pub remind_every: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub trouble: Trouble,
    /// When the trouble was first seen.
    pub since: i64,
    pub announced_at: Option<i64>,
    pub reminded_at: Option<i64>,
    /// The sinks the announcement went to: its end is told there too.
    #[serde(default)]
    pub channels: Vec<String>,
    /// The most mails it held back at once.
    #[serde(default)]
    pub held: u64,
    /// Seen gone since; told once that lasts.
    pub clear_since: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    #[serde(default)]
    pub entries: BTreeMap<String, Entry>,
    /// The local date (`2026-12-04`) of the last daily summary.
    #[serde(default)]
    pub daily_last: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
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
pub struct Notice {
    pub kind: Kind,
    pub trouble: Trouble,
    pub since: i64,
    /// For an end: the sinks the announcement went to.
    pub channels: Vec<String>,
}

impl Ledger {
    /// Applies one round of judgements at `now`; `pending` counts what a trouble holds back
    /// now. Returns the notices owed, in a stable order.
    pub fn step(
        &mut self,
        observed: &[(String, Judgement)],
        pending: &dyn Fn(&Holds) -> Option<u64>,
        now: i64,
        rules: Rules,
    ) -> Vec<Notice> {
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
        let mut out = Vec::new();
        let mut over = Vec::new();
        for (key, e) in self.entries.iter_mut() {
            match (e.announced_at, e.clear_since) {
                (None, None) if now - e.since >= rules.notify_after => {
                    e.announced_at = Some(now);
                    out.push(notice(e, Kind::Trouble));
                }
                (Some(at), None) if now - e.reminded_at.unwrap_or(at) >= rules.remind_every => {
                    e.reminded_at = Some(now);
                    out.push(notice(e, Kind::Reminder));
                }
                (Some(_), Some(clear)) if now - clear >= rules.notify_after => {
                    let still = pending(&e.trouble.holds);
                    let drained = still.is_none_or(|n| n == 0);
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
    pub fn sent_to(&mut self, key: &str, channels: &[String]) {
        if let Some(e) = self.entries.get_mut(key) {
            e.channels = channels.to_vec();
        }
    }

    /// The troubles that have lasted `notify_after` and still do, worst first: what the
    /// heartbeat reports.
    pub fn current(&self) -> Vec<&Trouble> {
        let mut v: Vec<&Trouble> = self
            .entries
            .values()
            .filter(|e| e.announced_at.is_some() && e.clear_since.is_none())
            .map(|e| &e.trouble)
            .collect();
        v.sort_by_key(|t| std::cmp::Reverse(t.level));
        v
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
                channels: Vec::new(),
                held: 0,
                clear_since: None,
            });
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
mod tests {
    use super::*;
    use crate::health::Pattern;

    const RULES: Rules = Rules {
        notify_after: 120,
        remind_every: 6 * 3600,
    };

    fn dead() -> (String, Judgement) {
        (
            "sink noise".into(),
            Judgement::Trouble(Trouble {
                key: "sink noise".into(),
                level: Pattern::Dead,
                what: "Sink noise is dead".into(),
                detail: "HTTP 403".into(),
                remedy: "rotate".into(),
                sink: Some("noise".into()),
                holds: Holds::Sink("noise".into()),
            }),
        )
    }

    fn clear() -> (String, Judgement) {
        ("sink noise".into(), Judgement::Clear)
    }

    fn kinds(n: &[Notice]) -> Vec<Kind> {
        n.iter().map(|n| n.kind.clone()).collect()
    }

    /// Steps the ledger through `(second, judgement, pending)` and collects every notice with
    /// its second.
    fn run(l: &mut Ledger, script: &[(i64, (String, Judgement), u64)]) -> Vec<(i64, Kind)> {
        let mut out = Vec::new();
        for (t, j, p) in script {
            let p = *p;
            for n in l.step(std::slice::from_ref(j), &|_| Some(p), *t, RULES) {
                out.push((*t, n.kind));
            }
        }
        out
    }

    #[test]
    fn a_blip_shorter_than_notify_after_says_nothing() {
        let mut l = Ledger::default();
        let said = run(
            &mut l,
            &[
                (0, dead(), 3),
                (60, dead(), 3),
                (119, clear(), 0),
                (500, clear(), 0),
            ],
        );
        assert_eq!(said, vec![]);
        assert!(l.entries.is_empty());
    }

    #[test]
    fn one_announcement_then_reminders_only_every_remind_every() {
        let mut l = Ledger::default();
        let mut script = vec![(0, dead(), 1)];
        script.extend((1..=2200).map(|i| (i * 20, dead(), 5)));
        let said = run(&mut l, &script);
        // Announced at 120 s; reminded at 120 + 6 h and 120 + 12 h; nothing in between.
        assert_eq!(
            said,
            vec![
                (120, Kind::Trouble),
                (120 + 6 * 3600, Kind::Reminder),
                (120 + 12 * 3600, Kind::Reminder)
            ]
        );
    }

    #[test]
    fn the_end_is_told_once_with_how_long_and_how_many_once_the_backlog_drained() {
        let mut l = Ledger::default();
        let said = run(
            &mut l,
            &[
                (0, dead(), 2),
                (130, dead(), 20),
                (1000, clear(), 20),
                (1200, clear(), 4),
                (1300, clear(), 0),
                (1400, clear(), 0),
            ],
        );
        assert_eq!(
            said,
            vec![
                (130, Kind::Trouble),
                (
                    1300,
                    Kind::Recovery {
                        lasted: 1000,
                        held: Some(20),
                        pending: Some(0)
                    }
                )
            ]
        );
        assert!(l.entries.is_empty());
    }

    #[test]
    fn a_backlog_that_does_not_drain_is_told_after_the_drain_wait() {
        let mut l = Ledger::default();
        let said = run(
            &mut l,
            &[
                (0, dead(), 9),
                (200, dead(), 9),
                (300, clear(), 9),
                (300 + 120 + DRAIN_WAIT, clear(), 7),
            ],
        );
        assert_eq!(
            said[1].1,
            Kind::Recovery {
                lasted: 300,
                held: Some(9),
                pending: Some(7)
            }
        );
    }

    #[test]
    fn a_flap_while_announced_is_no_end_and_no_new_announcement() {
        let mut l = Ledger::default();
        let said = run(
            &mut l,
            &[
                (0, dead(), 1),
                (200, dead(), 1),
                (300, clear(), 0),
                (350, dead(), 1),
                (600, dead(), 1),
            ],
        );
        assert_eq!(said, vec![(200, Kind::Trouble)]);
    }

    #[test]
    fn what_is_not_known_yet_changes_nothing() {
        let mut l = Ledger::default();
        let unknown = ("sink noise".to_string(), Judgement::Unknown);
        let said = run(
            &mut l,
            &[
                (0, dead(), 1),
                (200, dead(), 1),
                (300, unknown.clone(), 0),
                (900, unknown, 0),
            ],
        );
        assert_eq!(said, vec![(200, Kind::Trouble)]);
        assert!(l.entries["sink noise"].clear_since.is_none());
    }

    #[test]
    fn a_restart_does_not_announce_again() {
        let mut l = Ledger::default();
        run(&mut l, &[(0, dead(), 1), (200, dead(), 1)]);
        let saved = serde_json::to_string(&l).unwrap();
        let mut back: Ledger = serde_json::from_str(&saved).unwrap();
        let unknown = ("sink noise".to_string(), Judgement::Unknown);
        let said = run(
            &mut back,
            &[(300, unknown, 0), (310, dead(), 1), (5000, dead(), 1)],
        );
        assert_eq!(said, vec![]);
    }

    #[test]
    fn a_condition_the_config_no_longer_has_ends() {
        let mut l = Ledger::default();
        run(&mut l, &[(0, dead(), 0), (200, dead(), 0)]);
        let said = l.step(&[], &|_| Some(0), 300, RULES);
        assert!(said.is_empty());
        let said = l.step(&[], &|_| None, 500, RULES);
        assert_eq!(
            kinds(&said),
            vec![Kind::Recovery {
                lasted: 300,
                held: None,
                pending: None
            }]
        );
    }

    #[test]
    fn the_heartbeat_sees_only_announced_troubles() {
        let mut l = Ledger::default();
        run(&mut l, &[(0, dead(), 0)]);
        assert!(l.current().is_empty());
        run(&mut l, &[(200, dead(), 0)]);
        assert_eq!(l.current().len(), 1);
    }
}
