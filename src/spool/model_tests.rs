//! The spool against a plain in-memory model: random sequences of ingest, delivery, failure,
//! dead-lettering, retry, drop, prune and reopen, after each of which the indexes (`counts`,
//! `pending`, `owed`) answer exactly what the model says — per-bucket totals, which items a
//! sink is handed and in what order, each item's state.

use super::*;
use crate::spool::Mail;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const BUCKETS: [&str; 3] = ["vip", "shop", "rest"];
const SINKS: [&str; 2] = ["alerts", "noise"];

#[derive(Debug, Clone)]
enum Op {
    /// `n` mails into bucket `bucket`, owed to the sinks whose bit is set in `sinks`.
    Ingest {
        bucket: usize,
        sinks: u8,
        n: u8,
    },
    /// A sink takes up to `limit` items and Discord acknowledges them all.
    Deliver {
        sink: usize,
        limit: u8,
    },
    /// A sink takes one item and its POST fails transiently.
    Fail {
        sink: usize,
    },
    /// A sink takes one item and Discord refuses it for good.
    DeadLetter {
        sink: usize,
    },
    /// The operator retries the `nth` item (of all, in id order, wrapping).
    Retry {
        nth: u8,
    },
    /// The operator drops the `nth` item.
    Drop {
        nth: u8,
    },
    /// Retention removes what was acknowledged before `back` steps ago.
    Prune {
        back: u8,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 1..4u8, 1..5u8).prop_map(|(bucket, sinks, n)| Op::Ingest { bucket, sinks, n }),
        4 => (0..2usize, 1..6u8).prop_map(|(sink, limit)| Op::Deliver { sink, limit }),
        1 => (0..2usize).prop_map(|sink| Op::Fail { sink }),
        2 => (0..2usize).prop_map(|sink| Op::DeadLetter { sink }),
        2 => any::<u8>().prop_map(|nth| Op::Retry { nth }),
        1 => any::<u8>().prop_map(|nth| Op::Drop { nth }),
        1 => (0..20u8).prop_map(|back| Op::Prune { back }),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Owed {
    Pending,
    /// Acknowledged at this step.
    Delivered(i64),
    Dead,
}

#[derive(Debug, Clone)]
struct Modelled {
    bucket: usize,
    sinks: BTreeMap<&'static str, Owed>,
}

impl Modelled {
    fn state(&self) -> State {
        if self.sinks.values().any(|o| *o == Owed::Dead) {
            State::Dead
        } else if self.sinks.values().any(|o| *o == Owed::Pending) {
            State::Pending
        } else {
            State::Delivered
        }
    }
}

/// What the spool should hold: items by id.
#[derive(Default)]
struct Model {
    items: BTreeMap<u64, Modelled>,
}

impl Model {
    /// The ids `sink` should be handed: the oldest owed item's bucket (the most urgent
    /// severity first: bucket 0 is P0 …), that bucket's owed items oldest first. An item
    /// another sink dead-lettered is still owed here.
    fn owed_by(&self, sink: &str, limit: usize) -> Vec<u64> {
        let owed = |m: &Modelled| m.sinks.get(sink) == Some(&Owed::Pending);
        let first = self
            .items
            .iter()
            .filter(|(_, m)| owed(m))
            .min_by_key(|(id, m)| (m.bucket, **id));
        let Some((_, first)) = first else {
            return Vec::new();
        };
        self.items
            .iter()
            .filter(|(_, m)| m.bucket == first.bucket && owed(m))
            .map(|(id, _)| *id)
            .take(limit)
            .collect()
    }

    fn nth(&self, nth: u8) -> Option<u64> {
        let n = self.items.len();
        (n > 0)
            .then(|| self.items.keys().nth(usize::from(nth) % n).copied())
            .flatten()
    }
}

fn severity(bucket: usize) -> crate::config::Severity {
    use crate::config::Severity::*;
    [P0, P1, P3][bucket]
}

fn dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "mb-spool-model-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ))
}

/// Runs `ops` against a fresh spool and the model, comparing after every step.
fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let d = dir();
    let result = steps(&d, ops);
    let _ = std::fs::remove_dir_all(&d);
    result
}

fn steps(d: &Path, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut spool = Spool::open(d, 1 << 20).map_err(fail)?;
    let mut model = Model::default();
    let mut uid = 0u32;
    // Acknowledgement times are steps counted from well after every spool time (which is the
    // wall clock), as retention compares the two.
    let t0 = chrono::Utc::now().timestamp() + 1_000;
    for (step, op) in ops.iter().enumerate() {
        let step = t0 + step as i64;
        if let Op::Reopen = op {
            drop(spool);
            spool = Spool::open(d, 1 << 20).map_err(fail)?;
        }
        apply(&spool, &mut model, &mut uid, step, op)?;
        compare(&spool, &model, op)?;
    }
    Ok(())
}

fn fail(e: SpoolError) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

fn apply(
    spool: &Spool,
    model: &mut Model,
    uid: &mut u32,
    step: i64,
    op: &Op,
) -> Result<(), TestCaseError> {
    match *op {
        Op::Ingest { bucket, sinks, n } => {
            let owed: Vec<&'static str> = SINKS
                .iter()
                .enumerate()
                .filter(|(i, _)| sinks & (1 << i) != 0)
                .map(|(_, s)| *s)
                .collect();
            let items: Vec<NewItem> = (0..n)
                .map(|_| {
                    *uid += 1;
                    NewItem {
                        bucket: BUCKETS[bucket].into(),
                        severity: severity(bucket),
                        uid: *uid,
                        mail: Mail {
                            subject: format!("mail {uid}"),
                            message_id: Some(format!("{uid}@model")),
                            ..Mail::default()
                        },
                        sinks: owed.iter().map(|s| s.to_string()).collect(),
                    }
                })
                .collect();
            let cursor = Cursor {
                uidvalidity: 1,
                last_uid: *uid,
            };
            let ids = spool
                .ingest("a", "INBOX", cursor, &items, false)
                .map_err(fail)?;
            prop_assert_eq!(ids.len(), usize::from(n));
            for id in ids {
                let sinks = owed.iter().map(|s| (*s, Owed::Pending)).collect();
                model.items.insert(id, Modelled { bucket, sinks });
            }
            prop_assert_eq!(spool.cursor("a", "INBOX").map_err(fail)?, Some(cursor));
        }
        Op::Deliver { sink, limit } => {
            let sink = SINKS[sink];
            let handed = handed(spool, model, sink, usize::from(limit))?;
            let updates: Vec<(u64, Update)> = handed
                .iter()
                .map(|id| {
                    let message_id = format!("m{id}");
                    (
                        *id,
                        Update::Delivered {
                            message_id,
                            at: step,
                        },
                    )
                })
                .collect();
            spool.record(sink, &updates).map_err(fail)?;
            for id in handed {
                if let Some(m) = model.items.get_mut(&id) {
                    m.sinks.insert(sink, Owed::Delivered(step));
                }
            }
        }
        Op::Fail { sink } => {
            let sink = SINKS[sink];
            let handed = handed(spool, model, sink, 1)?;
            let updates: Vec<(u64, Update)> = handed
                .iter()
                .map(|id| {
                    (
                        *id,
                        Update::Failed {
                            error: "HTTP 502".into(),
                        },
                    )
                })
                .collect();
            spool.record(sink, &updates).map_err(fail)?;
        }
        Op::DeadLetter { sink } => {
            let sink = SINKS[sink];
            let handed = handed(spool, model, sink, 1)?;
            let updates: Vec<(u64, Update)> = handed
                .iter()
                .map(|id| {
                    (
                        *id,
                        Update::DeadLetter {
                            error: "HTTP 400".into(),
                        },
                    )
                })
                .collect();
            spool.record(sink, &updates).map_err(fail)?;
            for id in handed {
                if let Some(m) = model.items.get_mut(&id) {
                    m.sinks.insert(sink, Owed::Dead);
                }
            }
        }
        Op::Retry { nth } => {
            let Some(id) = model.nth(nth) else {
                prop_assert_eq!(spool.retry(1 << 40).map_err(fail)?, Retried::Missing);
                return Ok(());
            };
            let retried = spool.retry(id).map_err(fail)?;
            let m = model
                .items
                .get_mut(&id)
                .ok_or_else(|| TestCaseError::fail("model"))?;
            if m.state() == State::Dead {
                let requeued: Vec<String> = m
                    .sinks
                    .iter_mut()
                    .filter(|(_, o)| **o == Owed::Dead)
                    .map(|(s, o)| {
                        *o = Owed::Pending;
                        s.to_string()
                    })
                    .collect();
                prop_assert_eq!(retried, Retried::Requeued { sinks: requeued });
            } else {
                prop_assert_eq!(retried, Retried::NotDead(m.state()));
            }
        }
        Op::Drop { nth } => {
            let Some(id) = model.nth(nth) else {
                return Ok(());
            };
            let dropped = spool.drop_item(id).map_err(fail)?;
            prop_assert!(
                matches!(dropped, Dropped::Dropped(ref i) if i.id == id),
                "{dropped:?}"
            );
            model.items.remove(&id);
        }
        Op::Prune { back } => {
            let cutoff = step - i64::from(back);
            let pruned = spool.prune_delivered(cutoff).map_err(fail)?;
            let gone: Vec<u64> = model
                .items
                .iter()
                .filter(|(_, m)| {
                    m.state() == State::Delivered
                        && m.sinks
                            .values()
                            .filter_map(|o| match o {
                                Owed::Delivered(at) => Some(*at),
                                _ => None,
                            })
                            .max()
                            .is_some_and(|at| at < cutoff)
                })
                .map(|(id, _)| *id)
                .collect();
            prop_assert_eq!(pruned.items, gone.len() as u64);
            for id in gone {
                model.items.remove(&id);
            }
        }
        // Done by `run`, which owns the handle.
        Op::Reopen => {}
    }
    Ok(())
}

/// What `pending_for` hands `sink`, checked against the model.
fn handed(
    spool: &Spool,
    model: &Model,
    sink: &str,
    limit: usize,
) -> Result<Vec<u64>, TestCaseError> {
    let got: Vec<u64> = spool
        .pending_for(sink, limit)
        .map_err(fail)?
        .iter()
        .map(|i| i.id)
        .collect();
    prop_assert_eq!(&got, &model.owed_by(sink, limit), "handed to {}", sink);
    Ok(got)
}

fn compare(spool: &Spool, model: &Model, after: &Op) -> Result<(), TestCaseError> {
    for (b, name) in BUCKETS.iter().enumerate() {
        let st = spool.stats(name).map_err(fail)?;
        let count = |s: State| {
            model
                .items
                .values()
                .filter(|m| m.bucket == b && m.state() == s)
                .count() as u64
        };
        prop_assert_eq!(
            (st.pending, st.delivered, st.dead),
            (
                count(State::Pending),
                count(State::Delivered),
                count(State::Dead)
            ),
            "bucket {} after {:?}",
            name,
            after
        );
        prop_assert_eq!(st.oldest_pending_at.is_some(), count(State::Pending) > 0);
    }
    let mut seen = 0;
    for item in spool.iter() {
        let item = item.map_err(fail)?;
        let m = model
            .items
            .get(&item.id)
            .ok_or_else(|| TestCaseError::fail(format!("item {} is not in the model", item.id)))?;
        prop_assert_eq!(
            item.state(),
            m.state(),
            "item {} after {:?}",
            item.id,
            after
        );
        seen += 1;
    }
    prop_assert_eq!(seen, model.items.len());
    for sink in SINKS {
        let owed = model.owed_by(sink, 1000);
        let got = spool.pending_for(sink, 1000).map_err(fail)?;
        prop_assert_eq!(
            got.iter().map(|i| i.id).collect::<Vec<_>>(),
            owed,
            "{} after {:?}",
            sink,
            after
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn the_spool_answers_what_a_plain_model_says(ops in proptest::collection::vec(op(), 1..40)) {
        run(&ops)?;
    }
}
