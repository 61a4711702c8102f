//! The spool through its own calls: ingest with its cursor, delivery records, rescans, the lock,
//! disk errors and the order a sink is handed its mail.

use super::*;
use crate::spool::Mail;
use std::path::{Path, PathBuf};

pub(super) fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "mb-spool-{tag}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub(super) fn mail(uid: u32, bucket: &str, sinks: &[&str]) -> NewItem {
    NewItem {
        bucket: bucket.into(),
        severity: crate::config::Severity::P3,
        uid,
        mail: Mail {
            subject: format!("mail {uid}"),
            message_id: Some(format!("{uid}@x")),
            ..Mail::default()
        },
        sinks: sinks.iter().map(|s| s.to_string()).collect(),
    }
}

pub(super) const CUR: Cursor = Cursor {
    uidvalidity: 7,
    last_uid: 3,
};

#[test]
fn ingest_writes_items_and_cursor_together() {
    let d = dir("ingest");
    let spool = Spool::open(&d, 1 << 20).unwrap();
    assert_eq!(spool.cursor("a", "INBOX").unwrap(), None);
    let ids = spool
        .ingest(
            "a",
            "INBOX",
            CUR,
            &[mail(2, "b", &["s"]), mail(3, "b", &["s", "t"])],
            false,
        )
        .unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(spool.cursor("a", "INBOX").unwrap(), Some(CUR));
    let st = spool.stats("b").unwrap();
    assert_eq!((st.pending, st.delivered, st.dead), (2, 0, 0));
    assert!(st.oldest_pending_at.is_some());
    drop(spool);
    // Reopened, everything is still there.
    let spool = Spool::open(&d, 1 << 20).unwrap();
    assert_eq!(spool.cursor("a", "INBOX").unwrap(), Some(CUR));
    assert_eq!(spool.iter().count(), 2);
    assert_eq!(spool.pending_for("t", 10).unwrap().len(), 1);
}

/// The daemon's page-cache advice reaches sled's own descriptor of its log (ours alone would
/// leave sled's reads reading ahead), and the spool works on after it.
#[test]
fn the_page_cache_advice_reaches_sleds_descriptor_and_changes_nothing_else() {
    let d = dir("advice");
    let spool = Spool::open(&d, 1 << 20).unwrap();
    spool
        .ingest("a", "INBOX", CUR, &[mail(2, "b", &["s"])], false)
        .unwrap();
    let advised = spool.cache_log_by_page();
    assert!(
        advised >= 2,
        "advised {advised} descriptors of sled's log; ours and sled's are open"
    );
    spool
        .ingest(
            "a",
            "INBOX",
            Cursor {
                uidvalidity: 7,
                last_uid: 4,
            },
            &[mail(4, "b", &["s"])],
            false,
        )
        .unwrap();
    drop(spool);
    let spool = Spool::open(&d, 1 << 20).unwrap();
    assert_eq!(spool.iter().count(), 2);
    assert_eq!(spool.pending_for("s", 10).unwrap().len(), 2);
}

#[test]
fn an_item_is_delivered_only_when_every_sink_acknowledged() {
    let spool = Spool::open(&dir("record"), 1 << 20).unwrap();
    let ids = spool
        .ingest("a", "INBOX", CUR, &[mail(3, "b", &["s", "t"])], false)
        .unwrap();
    let id = ids[0];
    spool
        .record(
            "s",
            &[(
                id,
                Update::Failed {
                    error: "HTTP 500".into(),
                },
            )],
        )
        .unwrap();
    let item = spool.get(id).unwrap().unwrap();
    assert_eq!(item.state(), State::Pending);
    assert_eq!(item.delivery("s").unwrap().attempts, 1);
    spool
        .record(
            "s",
            &[(
                id,
                Update::Delivered {
                    message_id: "m1".into(),
                    at: 5,
                },
            )],
        )
        .unwrap();
    assert!(spool.pending_for("s", 10).unwrap().is_empty());
    assert_eq!(spool.stats("b").unwrap().pending, 1);
    spool
        .record(
            "t",
            &[(
                id,
                Update::Delivered {
                    message_id: "m2".into(),
                    at: 6,
                },
            )],
        )
        .unwrap();
    let st = spool.stats("b").unwrap();
    assert_eq!(
        (st.pending, st.delivered, st.oldest_pending_at),
        (0, 1, None)
    );
    // A late repeat changes nothing.
    spool
        .record("t", &[(id, Update::DeadLetter { error: "x".into() })])
        .unwrap();
    assert_eq!(spool.get(id).unwrap().unwrap().state(), State::Delivered);
}

#[test]
fn dead_letters_leave_the_queue_but_stay_visible() {
    let spool = Spool::open(&dir("dead"), 1 << 20).unwrap();
    let id = spool
        .ingest("a", "INBOX", CUR, &[mail(1, "b", &["s"])], false)
        .unwrap()[0];
    spool
        .record(
            "s",
            &[(
                id,
                Update::DeadLetter {
                    error: "400 50035".into(),
                },
            )],
        )
        .unwrap();
    let st = spool.stats("b").unwrap();
    assert_eq!((st.pending, st.dead), (0, 1));
    assert_eq!(spool.get(id).unwrap().unwrap().state(), State::Dead);
    assert!(spool.pending_for("s", 10).unwrap().is_empty());
}

#[test]
fn rescan_skips_mail_already_spooled() {
    let spool = Spool::open(&dir("rescan"), 1 << 20).unwrap();
    spool
        .ingest(
            "a",
            "INBOX",
            CUR,
            &[mail(1, "b", &["s"]), mail(2, "b", &["s"])],
            false,
        )
        .unwrap();
    let next = Cursor {
        uidvalidity: 8,
        last_uid: 3,
    };
    let ids = spool
        .ingest(
            "a",
            "INBOX",
            next,
            &[
                mail(1, "b", &["s"]),
                mail(2, "b", &["s"]),
                mail(3, "b", &["s"]),
            ],
            true,
        )
        .unwrap();
    assert_eq!(ids.len(), 1, "only the new mail is spooled");
    assert_eq!(spool.cursor("a", "INBOX").unwrap(), Some(next));
    assert_eq!(spool.stats("b").unwrap().pending, 3);
}

#[test]
fn a_rescan_remembers_across_batches_and_a_reopen_and_keeps_mailboxes_apart() {
    let d = dir("rescan-long");
    let spool = Spool::open(&d, 1 << 20).unwrap();
    spool
        .ingest("a", "INBOX", CUR, &[mail(1, "b", &["s"])], false)
        .unwrap();
    // Another mailbox's mail 2 is not this mailbox's mail 2.
    spool
        .ingest("a", "Archive", CUR, &[mail(2, "b", &["s"])], false)
        .unwrap();
    let rescan = |spool: &Spool, uids: &[u32]| -> Vec<u32> {
        let items: Vec<NewItem> = uids.iter().map(|u| mail(*u, "b", &["s"])).collect();
        let ids = spool.backfill("a", "INBOX", 8, &items).unwrap();
        ids.iter()
            .map(|id| spool.get(*id).unwrap().unwrap().uid)
            .collect()
    };
    assert_eq!(
        rescan(&spool, &[1, 2, 2]),
        [2],
        "mail 2 met twice in one batch is spooled once"
    );
    assert_eq!(
        rescan(&spool, &[2, 3]),
        [3],
        "the first batch's mail is known to the second"
    );
    drop(spool);
    let spool = Spool::open(&d, 1 << 20).unwrap();
    assert_eq!(
        rescan(&spool, &[1, 2, 3, 4]),
        [4],
        "a reopened spool reads them from the items"
    );
    assert_eq!(spool.stats("b").unwrap().pending, 5);
}

#[test]
fn a_second_opener_is_told_the_spool_is_locked() {
    let d = dir("lock");
    let _first = Spool::open(&d, 1 << 20).unwrap();
    // sled's lock is per process (fcntl), so probe it from a child process.
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "spool::tests::lock_probe_child",
            "--nocapture",
            "--include-ignored",
        ])
        .env("MB_LOCK_PROBE", &d)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("LOCKED"), "{text}");
}

#[test]
#[ignore = "run by a_second_opener_is_told_the_spool_is_locked in a child process"]
fn lock_probe_child() {
    if let Some(d) = std::env::var_os("MB_LOCK_PROBE") {
        match Spool::open(Path::new(&d), 1 << 20) {
            Err(SpoolError::Locked { .. }) => println!("LOCKED"),
            Err(e) => println!("OTHER {e}"),
            Ok(_) => println!("OPENED"),
        }
    }
}

#[test]
fn fingerprints_prefer_the_message_id() {
    let a = Mail {
        message_id: Some("x@y".into()),
        ..Mail::default()
    };
    assert_eq!(fingerprint(&a), "m:x@y");
    let b = Mail {
        subject: "s".into(),
        ..Mail::default()
    };
    let c = Mail {
        subject: "t".into(),
        ..Mail::default()
    };
    assert_ne!(fingerprint(&b), fingerprint(&c));
    assert_eq!(fingerprint(&b), fingerprint(&b.clone()));
}

#[test]
fn a_full_or_read_only_disk_is_recognised_even_in_sleds_copied_errors() {
    use std::io::{Error, ErrorKind};
    // sled returns its stored error as a copy that keeps the kind but loses the errno.
    for kind in [
        ErrorKind::StorageFull,
        ErrorKind::ReadOnlyFilesystem,
        ErrorKind::QuotaExceeded,
    ] {
        let e = SpoolError::from(sled::Error::Io(Error::new(kind, "copied")));
        assert!(e.is_disk_full(), "{kind:?}");
    }
    let e = SpoolError::from(sled::Error::Io(Error::from_raw_os_error(28)));
    assert!(e.is_disk_full());
    let e = SpoolError::from(sled::Error::Io(Error::other("bad sector")));
    assert!(!e.is_disk_full());
}

fn urgent(uid: u32, bucket: &str, severity: crate::config::Severity) -> NewItem {
    NewItem {
        severity,
        ..mail(uid, bucket, &["s"])
    }
}

pub(super) fn subjects(items: &[Item]) -> Vec<String> {
    items.iter().map(|i| i.subject.clone()).collect()
}

#[test]
fn a_sink_gets_the_most_urgent_oldest_mail_first_one_bucket_per_batch() {
    use crate::config::Severity::{P0, P1, P3};
    let spool = Spool::open(&dir("priority"), 1 << 20).unwrap();
    // Spooled in this order: old noise in two P3 buckets, then a P1, then P0s in two buckets.
    let mails = [
        urgent(1, "noise", P3),
        urgent(2, "news", P3),
        urgent(3, "noise", P3),
        urgent(4, "billing", P1),
        urgent(5, "pager", P0),
        urgent(6, "alarm", P0),
        urgent(7, "pager", P0),
    ];
    spool.ingest("a", "INBOX", CUR, &mails, false).unwrap();
    let mut order = Vec::new();
    loop {
        let batch = spool.pending_for("s", 10).unwrap();
        if batch.is_empty() {
            break;
        }
        assert!(
            batch.iter().all(|i| i.bucket == batch[0].bucket),
            "one bucket per batch"
        );
        order.push(subjects(&batch));
        let done: Vec<_> = batch
            .iter()
            .map(|i| {
                let update = Update::Delivered {
                    message_id: "m".into(),
                    at: 1,
                };
                (i.id, update)
            })
            .collect();
        spool.record("s", &done).unwrap();
    }
    assert_eq!(
        order,
        vec![
            vec!["mail 5", "mail 7"], // P0, its oldest bucket first, both of its mails
            vec!["mail 6"],           // the other P0 bucket
            vec!["mail 4"],           // P1
            vec!["mail 1", "mail 3"], // P3, oldest bucket first
            vec!["mail 2"],
        ]
    );
}

#[test]
fn a_batch_is_bounded_and_the_rest_follows() {
    let spool = Spool::open(&dir("limit"), 1 << 20).unwrap();
    let mails: Vec<NewItem> = (1..=25).map(|u| mail(u, "b", &["s"])).collect();
    spool.ingest("a", "INBOX", CUR, &mails, false).unwrap();
    let first = spool.pending_for("s", 10).unwrap();
    assert_eq!(first.len(), 10);
    assert_eq!(first[0].subject, "mail 1");
    assert_eq!(first[9].subject, "mail 10");
}
