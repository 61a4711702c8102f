//! Retention, the size bound, retry and drop, against a real sled spool.

use super::*;
use crate::spool::Mail;

fn spool(tag: &str) -> Spool {
    let d = std::env::temp_dir().join(format!(
        "mb-spool-tools-{tag}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    Spool::open(&d, 1 << 20).unwrap()
}

fn mail(uid: u32, bucket: &str, sinks: &[&str]) -> NewItem {
    NewItem {
        bucket: bucket.into(),
        severity: crate::config::Severity::P3,
        uid,
        mail: Mail {
            subject: format!("mail {uid}"),
            message_id: Some(format!("{uid}@x")),
            snippet: "x".repeat(200),
            ..Mail::default()
        },
        sinks: sinks.iter().map(|s| s.to_string()).collect(),
    }
}

fn ingest(spool: &Spool, uids: std::ops::RangeInclusive<u32>, sinks: &[&str]) -> Vec<u64> {
    let items: Vec<NewItem> = uids.clone().map(|u| mail(u, "b", sinks)).collect();
    let cursor = Cursor {
        uidvalidity: 7,
        last_uid: *uids.end(),
    };
    spool.ingest("a", "INBOX", cursor, &items, false).unwrap()
}

fn deliver(spool: &Spool, ids: &[u64], at: i64) {
    let updates: Vec<(u64, Update)> = ids
        .iter()
        .map(|&id| {
            (
                id,
                Update::Delivered {
                    message_id: format!("m{id}"),
                    at,
                },
            )
        })
        .collect();
    spool.record("s", &updates).unwrap();
}

/// One item's acknowledgement by Discord.
fn acknowledged(id: u64) -> Vec<(u64, Update)> {
    vec![(
        id,
        Update::Delivered {
            message_id: format!("m{id}"),
            at: 100,
        },
    )]
}

/// `updates`, each owing `then` when it delivers.
fn owing(updates: Vec<(u64, Update)>, then: &FollowUps) -> Vec<(u64, Update, FollowUps)> {
    updates
        .into_iter()
        .map(|(id, update)| (id, update, then.clone()))
        .collect()
}

/// What a bucket with the audit sink `log` owes after a delivery.
fn audited() -> FollowUps {
    FollowUps {
        audit: Some("log".into()),
        ..FollowUps::default()
    }
}

fn states(spool: &Spool) -> Vec<(u32, State)> {
    spool
        .iter()
        .map(|i| i.unwrap())
        .map(|i| (i.uid, i.state()))
        .collect()
}

/// What the items cost by the size bound's own measure, read from the items themselves.
fn cost_of_items(spool: &Spool) -> u64 {
    spool
        .items
        .iter()
        .map(|kv| {
            let (k, v) = kv.unwrap();
            let item: Item = spool.bodies.item(&k, &v).unwrap();
            bound::footprint(super::bodies::stored_len(&v), &item)
        })
        .sum()
}

#[test]
fn the_bytes_held_follow_every_kind_of_write() {
    let spool = spool("held");
    let ids = ingest(&spool, 1..=6, &["s"]);
    let check = |what: &str| {
        assert_eq!(
            spool.held_bytes().unwrap(),
            cost_of_items(&spool),
            "after {what}"
        );
    };
    check("ingest");
    let done = |id: u64| {
        (
            id,
            Update::Delivered {
                message_id: format!("m{id}"),
                at: 1,
            },
            audited(),
        )
    };
    spool.record("s", &[done(ids[0]), done(ids[1])]).unwrap();
    check("a delivery that adds an audit line");
    let failed = Update::Failed {
        error: "a long error ".repeat(20),
    };
    spool.record("s", &[(ids[2], failed)]).unwrap();
    check("a failure");
    assert_eq!(spool.hand_over(&ids[2..4], "backup").unwrap(), 2);
    check("a handover to the fallback");
    let dead = Update::DeadLetter {
        error: "400".into(),
    };
    spool.record("s", &[(ids[4], dead)]).unwrap();
    spool.retry(ids[4]).unwrap();
    check("a retry");
    spool.drop_item(ids[5]).unwrap();
    spool.prune_for_room(0).unwrap();
    check("pruning");
}

#[test]
fn retention_prunes_only_delivered_items_past_their_time() {
    let spool = spool("retention");
    let ids = ingest(&spool, 1..=4, &["s"]);
    deliver(&spool, &ids[..1], 100);
    deliver(&spool, &ids[1..2], 10_000);
    spool
        .record(
            "s",
            &[(
                ids[2],
                Update::DeadLetter {
                    error: "400".into(),
                },
            )],
        )
        .unwrap();
    let before = spool.held_bytes().unwrap();
    // Everything was spooled "now"; a cutoff in the future reaches every item.
    let cutoff = chrono::Utc::now().timestamp() + 10;
    let pruned = spool.prune_delivered(5_000.min(cutoff)).unwrap();
    assert_eq!(pruned.items, 0, "spooled after the cutoff: not reached yet");
    let pruned = spool.prune_delivered(cutoff).unwrap();
    assert_eq!(
        pruned.items, 2,
        "both delivered items acknowledged before {cutoff}"
    );
    assert_eq!(states(&spool), [(3, State::Dead), (4, State::Pending)]);
    let st = spool.stats("b").unwrap();
    assert_eq!((st.pending, st.delivered, st.dead), (1, 0, 1));
    assert_eq!(spool.held_bytes().unwrap(), before - pruned.bytes);
    // The pending item is still owed, the dead one still retryable.
    assert_eq!(spool.pending_for("s", 10).unwrap().len(), 1);
    assert_eq!(
        spool.retry(ids[2]).unwrap(),
        Retried::Requeued {
            sinks: vec!["s".into()]
        }
    );
}

#[test]
fn retention_keeps_an_item_until_its_audit_line_is_sent_unless_room_is_needed() {
    let spool = spool("retention-audit");
    let ids = ingest(&spool, 1..=3, &["s"]);
    for id in &ids {
        spool
            .record("s", &owing(acknowledged(*id), &audited()))
            .unwrap();
    }
    assert_eq!(spool.pending_for("log", 10).unwrap().len(), 3);
    let cutoff = chrono::Utc::now().timestamp() + 10;
    assert_eq!(
        spool.prune_delivered(cutoff).unwrap().items,
        0,
        "delivered long ago, but the audit lines are still owed"
    );
    spool.record("log", &acknowledged(ids[0])).unwrap();
    assert_eq!(spool.prune_delivered(cutoff).unwrap().items, 1);
    assert_eq!(spool.get(ids[0]).unwrap(), None);
    // At the size bound an owed audit line does not hold the room: delivered mail goes.
    assert_eq!(spool.prune_for_room(0).unwrap().items, 2);
    assert_eq!(spool.pending_for("log", 10).unwrap().len(), 0);
}

#[test]
fn at_the_bound_ingestion_is_refused_until_delivered_mail_is_pruned() {
    let spool = spool("bound");
    let ids = ingest(&spool, 1..=10, &["s"]);
    let held = spool.held_bytes().unwrap();
    assert!(held > 10 * 200, "{held}");
    spool.set_size_limit(held);
    let cursor = Cursor {
        uidvalidity: 7,
        last_uid: 11,
    };
    let refused = spool.ingest("a", "INBOX", cursor, &[mail(11, "b", &["s"])], false);
    assert!(
        matches!(refused, Err(SpoolError::Full { .. })),
        "{refused:?}"
    );
    assert_eq!(spool.cursor("a", "INBOX").unwrap().unwrap().last_uid, 10);
    // Nothing delivered: nothing may go to make room.
    assert_eq!(spool.prune_for_room(held / 2).unwrap().items, 0);
    assert_eq!(states(&spool).len(), 10);
    // Deliveries are still recorded at the bound; then the oldest delivered make room.
    deliver(&spool, &ids[..6], 1);
    let pruned = spool.prune_for_room(held / 2).unwrap().items as usize;
    assert!((5..=6).contains(&pruned), "{pruned} pruned");
    assert!(spool.held_bytes().unwrap() <= held / 2);
    // The oldest delivered went, and only delivered mail.
    let left = states(&spool);
    assert_eq!(left.len(), 10 - pruned);
    assert_eq!(left[0].0, 1 + pruned as u32);
    assert_eq!(left.iter().filter(|(_, s)| *s == State::Pending).count(), 4);
    spool
        .ingest("a", "INBOX", cursor, &[mail(11, "b", &["s"])], false)
        .unwrap();
    assert_eq!(spool.cursor("a", "INBOX").unwrap().unwrap().last_uid, 11);
}

#[test]
fn the_byte_count_is_rebuilt_for_an_old_spool_and_survives_reopening() {
    let d = std::env::temp_dir().join(format!("mb-spool-count-{}", fastrand::u64(..)));
    let held = {
        let spool = Spool::open(&d, 1 << 20).unwrap();
        let ids = ingest(&spool, 1..=5, &["s"]);
        deliver(&spool, &ids, 1);
        let held = spool.held_bytes().unwrap();
        // As a version that did not count would have left it.
        spool.counts.remove(b"\0bytes").unwrap();
        spool.flush().unwrap();
        held
    };
    let spool = Spool::open(&d, 1 << 20).unwrap();
    assert_eq!(spool.held_bytes().unwrap(), 0);
    assert_eq!(
        spool.bucket_names().unwrap(),
        ["b"],
        "the counter is no bucket"
    );
    spool.count_bytes_if_missing().unwrap();
    assert_eq!(spool.held_bytes().unwrap(), held);
}

#[test]
fn retry_puts_dead_letters_back_keeping_their_history() {
    let spool = spool("retry");
    let ids = ingest(&spool, 1..=3, &["s"]);
    for &id in &ids[..2] {
        spool
            .record(
                "s",
                &[(
                    id,
                    Update::DeadLetter {
                        error: "400 too long".into(),
                    },
                )],
            )
            .unwrap();
    }
    assert_eq!(
        spool.retry(ids[2]).unwrap(),
        Retried::NotDead(State::Pending)
    );
    assert_eq!(spool.retry(999).unwrap(), Retried::Missing);
    assert_eq!(spool.retry_dead(Some("other")).unwrap(), 0);
    assert_eq!(spool.retry_dead(Some("b")).unwrap(), 2);
    let item = spool.get(ids[0]).unwrap().unwrap();
    let d = item.delivery("s").unwrap();
    assert_eq!((d.state, d.attempts), (State::Pending, 1));
    assert_eq!(d.last_error.as_deref(), Some("400 too long"));
    let st = spool.stats("b").unwrap();
    assert_eq!((st.pending, st.dead), (3, 0));
    assert_eq!(spool.pending_for("s", 10).unwrap().len(), 3);
}

#[test]
fn drop_removes_an_item_and_every_trace_of_it() {
    let spool = spool("drop");
    let ids = ingest(&spool, 1..=2, &["s"]);
    let before = spool.held_bytes().unwrap();
    match spool.drop_item(ids[0]).unwrap() {
        Dropped::Dropped(item) => assert_eq!(item.uid, 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(spool.drop_item(ids[0]).unwrap(), Dropped::Missing);
    assert_eq!(states(&spool), [(2, State::Pending)]);
    assert_eq!(spool.stats("b").unwrap().pending, 1);
    let owed: Vec<u64> = spool
        .pending_for("s", 10)
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(owed, [ids[1]]);
    assert!(spool.held_bytes().unwrap() < before);
    // After a UIDVALIDITY change both mails are met again: only the dropped one is spooled.
    let again = [mail(1, "b", &["s"]), mail(2, "b", &["s"])];
    let written = spool.backfill("a", "INBOX", 8, &again).unwrap();
    assert_eq!(written.len(), 1, "its fingerprint went with it");
    assert_eq!(spool.get(written[0]).unwrap().unwrap().uid, 1);
}

#[test]
fn an_action_is_owed_once_when_the_last_sink_acknowledges_and_forgotten_when_done() {
    use crate::config::AfterDelivery;
    let spool = spool("actions");
    let ids = ingest(&spool, 1..=3, &["s", "t"]);
    let seen = FollowUps {
        after_delivery: Some(AfterDelivery::Seen),
        ..FollowUps::default()
    };
    let failed = |id: u64| {
        vec![(
            id,
            Update::Failed {
                error: "HTTP 503".into(),
            },
        )]
    };
    let record = |sink: &str, updates: &[(u64, Update)]| {
        spool.record(sink, &owing(updates.to_vec(), &seen)).unwrap()
    };
    // Pending mail owes nothing: one sink of two acknowledged, one failed, one dead-lettered.
    record("s", &acknowledged(ids[0]));
    record("s", &failed(ids[1]));
    let dead = vec![(
        ids[2],
        Update::DeadLetter {
            error: "400".into(),
        },
    )];
    record("s", &dead);
    record("t", &acknowledged(ids[2]));
    assert_eq!(spool.actions_owed(), 0);
    // The last acknowledgement makes it owed, once, whatever is recorded after.
    record("t", &acknowledged(ids[0]));
    record("t", &acknowledged(ids[0]));
    let owed = spool.actions(10).unwrap();
    assert_eq!(owed.len(), 1);
    let mut action = owed[0].clone();
    assert_eq!((action.uid, action.uidvalidity), (1, 7));
    assert_eq!(
        (action.account.as_str(), action.folder.as_str()),
        ("a", "INBOX")
    );
    assert_eq!(action.action, AfterDelivery::Seen);
    // Attempts are kept; a done action is gone, and a late attempt does not bring it back.
    action.attempts = 1;
    action.copied = true;
    spool.action_tried(&action).unwrap();
    assert_eq!(spool.actions(10).unwrap(), vec![action.clone()]);
    spool.action_done(&action).unwrap();
    spool.action_tried(&action).unwrap();
    assert_eq!(spool.actions_owed(), 0);
    // The same delivery without a bucket asking owes nothing.
    let plain = ingest(&spool, 4..=4, &["s"]);
    spool.record("s", &acknowledged(plain[0])).unwrap();
    assert_eq!(spool.actions_owed(), 0);
}

#[test]
fn pruning_deletes_the_body_log_segments_no_item_needs_and_keeps_the_rest() {
    let d = std::env::temp_dir().join(format!(
        "mb-spool-tools-bodies-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let segments = || {
        let mut names: Vec<String> = std::fs::read_dir(d.join("bodies"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        names
    };
    // Each open writes a segment of its own: three opens, three segments.
    let mut ids = Vec::new();
    for uids in [1..=3, 4..=6, 7..=8] {
        let spool = Spool::open(&d, 1 << 20).unwrap();
        ids.extend(ingest(&spool, uids, &["s"]));
    }
    let spool = Spool::open(&d, 1 << 20).unwrap();
    assert_eq!(segments().len(), 3);
    let (first, second) = (segments()[0].clone(), segments()[1].clone());
    // Everything delivered but uid 5, in the second segment.
    let delivered: Vec<u64> = ids.iter().copied().filter(|&id| id != ids[4]).collect();
    deliver(&spool, &delivered, 1_000);
    assert_eq!(spool.prune_delivered(i64::MAX).unwrap().items, 7);
    assert!(!segments().contains(&first), "{:?}", segments());
    assert!(segments().contains(&second), "{:?}", segments());
    assert_eq!(spool.get(ids[4]).unwrap().unwrap().subject, "mail 5");
    assert_eq!(spool.pending_for("s", 10).unwrap().len(), 1);
    // Once uid 5 goes too, nothing is left in the log but what a later write starts.
    deliver(&spool, &ids[4..5], 1_000);
    assert_eq!(spool.prune_delivered(i64::MAX).unwrap().items, 1);
    assert_eq!(segments(), Vec::<String>::new());
    let more = ingest(&spool, 9..=9, &["s"]);
    assert_eq!(segments().len(), 1);
    assert_eq!(spool.get(more[0]).unwrap().unwrap().subject, "mail 9");
    drop(spool);
    let _ = std::fs::remove_dir_all(&d);
}
