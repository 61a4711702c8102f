use super::*;
use crate::mail::Summary;

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "mb-spool-{tag}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn mail(uid: u32, bucket: &str, sinks: &[&str]) -> NewItem {
    NewItem {
        bucket: bucket.into(),
        uid,
        summary: Summary {
            subject: format!("mail {uid}"),
            message_id: Some(format!("{uid}@x")),
            ..Summary::default()
        },
        sinks: sinks.iter().map(|s| s.to_string()).collect(),
    }
}

const CUR: Cursor = Cursor {
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
    let a = Summary {
        message_id: Some("x@y".into()),
        ..Summary::default()
    };
    assert_eq!(fingerprint(&a), "m:x@y");
    let b = Summary {
        subject: "s".into(),
        ..Summary::default()
    };
    let c = Summary {
        subject: "t".into(),
        ..Summary::default()
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
