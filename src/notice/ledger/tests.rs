//! The no-noise rules over explicit instants: blips, reminders, ends, restarts.

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
fn a_spool_level_is_over_below_the_level_without_waiting_for_an_empty_spool() {
    let mut l = Ledger::default();
    let backlog = |on: bool| {
        let t = Trouble {
            key: "spool backlog".into(),
            level: Pattern::Backlog,
            what: "Spool past its warning level (50 mails)".into(),
            detail: "60 mails pending".into(),
            remedy: "status".into(),
            sink: None,
            holds: Holds::All,
        };
        let j = if on {
            Judgement::Trouble(t)
        } else {
            Judgement::Clear
        };
        ("spool backlog".to_string(), j)
    };
    let said = run(
        &mut l,
        &[
            (0, backlog(true), 60),
            (200, backlog(true), 70),
            (300, backlog(false), 40),
            (420, backlog(false), 40),
        ],
    );
    assert_eq!(
        said[1],
        (
            420,
            Kind::Recovery {
                lasted: 300,
                held: Some(70),
                pending: Some(40)
            }
        )
    );
}

#[test]
fn only_what_was_announced_is_durable() {
    let mut l = Ledger::default();
    run(&mut l, &[(0, dead(), 1)]);
    assert!(
        l.durable().announced.is_empty(),
        "a trouble not yet announced needs no write"
    );
    run(&mut l, &[(200, dead(), 1)]);
    let snapshot = l.durable();
    assert_eq!(snapshot.announced.len(), 1);
    run(&mut l, &[(201, dead(), 9)]);
    assert_eq!(
        l.durable(),
        snapshot,
        "a growing count is no reason to write"
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

fn imap(what: &str) -> (String, Judgement) {
    (
        "imap home/INBOX".into(),
        Judgement::Trouble(Trouble {
            key: "imap home/INBOX".into(),
            level: Pattern::Dead,
            what: format!("IMAP home/INBOX: {what}"),
            detail: String::new(),
            remedy: String::new(),
            sink: None,
            holds: Holds::Server,
        }),
    )
}

#[test]
fn another_state_of_an_announced_condition_is_announced_once_it_lasts() {
    let mut l = Ledger::default();
    let mut said = Vec::new();
    let mut step = |l: &mut Ledger, t: i64, j: (String, Judgement)| {
        for n in l.step(&[j], &|_| None, t, RULES) {
            said.push((t, n.kind, n.trouble.what, n.since));
        }
    };
    step(&mut l, 0, imap("unreachable"));
    step(&mut l, 130, imap("unreachable"));
    // Back for a moment, refusing the login, then unreachable again: nothing to tell.
    step(&mut l, 200, imap("login refused"));
    step(&mut l, 250, imap("unreachable"));
    step(&mut l, 400, imap("unreachable"));
    // Then refusing the login for good: told once, after notify_after, as of when it began.
    step(&mut l, 500, imap("login refused"));
    step(&mut l, 600, imap("login refused"));
    step(&mut l, 620, imap("login refused"));
    step(&mut l, 700, imap("login refused"));
    let saved = serde_json::to_string(&l).unwrap();
    let mut back: Ledger = serde_json::from_str(&saved).unwrap();
    step(
        &mut back,
        900,
        ("imap home/INBOX".into(), Judgement::Unknown),
    );
    step(&mut back, 910, imap("login refused"));
    step(&mut back, 2000, imap("login refused"));
    let what = |s: &str| format!("IMAP home/INBOX: {s}");
    assert_eq!(
        said,
        vec![
            (130, Kind::Trouble, what("unreachable"), 0),
            (620, Kind::Trouble, what("login refused"), 500),
        ],
        "one announcement per lasting state, none again after a restart"
    );
}
