//! Opening a spool of an older layout: its `queue`, `open` and `seen` trees moved into the
//! block indexes (see [`Spool::migrate_indexes`]), in batches, losing no owed delivery.

use super::open::LOCK_WAIT;
use super::tests::{dir, mail, subjects, CUR};
use super::*;
use std::path::Path;

#[test]
fn a_spool_of_the_older_layout_moves_its_indexes_on_open() {
    let d = dir("layout");
    let ids = {
        let spool = Spool::open(&d, 1 << 20).unwrap();
        let batch: Vec<NewItem> = (1..=150).map(|u| mail(u, "b", &["s"])).collect();
        spool.ingest("a", "INBOX", CUR, &batch, false).unwrap()
    };
    // Rewrite the pending index as the older version kept it: one `open` key per pending
    // item, and a `seen` tree.
    {
        let db = raw_db(&d);
        let pending = db.open_tree("pending").unwrap();
        pending.clear().unwrap();
        let open = db.open_tree("open").unwrap();
        for id in &ids[10..] {
            open.insert(key2("b", &id.to_be_bytes()), &[]).unwrap();
        }
        db.open_tree("seen")
            .unwrap()
            .insert(b"a\0INBOX\0m:1@x", &ids[0].to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let spool = Spool::open(&d, 1 << 20).unwrap();
    let names = spool.db.tree_names();
    assert!(!names
        .iter()
        .any(|n| n.as_ref() == b"open" || n.as_ref() == b"seen"));
    let listed: Vec<u64> = spool
        .pending_in("b", 0, 1_000)
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(listed, ids[10..], "every pending key moved, in order");
    let oldest = spool.get(ids[10]).unwrap().unwrap().spooled_at;
    assert_eq!(spool.stats("b").unwrap().oldest_pending_at, Some(oldest));
    // Settling an item clears its bit.
    spool
        .record(
            "s",
            &[(
                ids[10],
                Update::Delivered {
                    message_id: "m".into(),
                    at: 1,
                },
            )],
        )
        .unwrap();
    assert_eq!(spool.pending_in("b", 0, 1).unwrap()[0].id, ids[11]);
    assert_eq!(
        spool
            .pending_in("b", ids[100], 2)
            .unwrap()
            .iter()
            .map(|i| i.id)
            .collect::<Vec<_>>(),
        ids[100..102]
    );
}

/// The spool's sled database opened directly, as an older version would; waits, as
/// [`Spool::open`] does, for the lock a just-dropped spool can hold a moment longer.
fn raw_db(d: &Path) -> sled::Db {
    let started = std::time::Instant::now();
    loop {
        match sled::open(d) {
            Ok(db) => return db,
            Err(e) if started.elapsed() < LOCK_WAIT => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("open {}: {e}", d.display()),
        }
    }
}

/// How many deliveries `owed` holds: the bits set in all its blocks.
fn owed_count(spool: &Spool) -> u32 {
    spool
        .owed
        .iter()
        .values()
        .map(|v| u64::from_be_bytes(v.unwrap().as_ref().try_into().unwrap()).count_ones())
        .sum()
}

/// Replaces the spool's `owed` index with a `queue` tree of the older layout, with the keys
/// `key(sink, item)` makes for each (sink, id) of `owed`, as the older version kept them.
fn as_queue(d: &Path, owed: &[(&str, u64)], key: impl Fn(&str, &Item) -> Vec<u8>) {
    let db = raw_db(d);
    db.open_tree("owed").unwrap().clear().unwrap();
    let items = db.open_tree("items").unwrap();
    let bodies = super::bodies::Bodies::open(d).unwrap();
    let queue = db.open_tree("queue").unwrap();
    for (sink, id) in owed {
        let idb = id.to_be_bytes();
        let item: Item = bodies
            .item(&idb, &items.get(idb).unwrap().unwrap())
            .unwrap();
        queue.insert(key(sink, &item), &[]).unwrap();
    }
    db.flush().unwrap();
}

/// The queue key of the version before `owed`: `sink \0 rank bucket \0 id`.
fn ranked_key(sink: &str, item: &Item) -> Vec<u8> {
    [owed_run(sink, item), item.id.to_be_bytes().to_vec()].concat()
}

/// The queue key of the oldest versions: `sink \0 id`.
fn plain_key(sink: &str, item: &Item) -> Vec<u8> {
    key2(sink, &item.id.to_be_bytes())
}

#[test]
fn queue_keys_of_an_older_version_are_moved_and_still_drain() {
    let d = dir("migrate");
    let ids = {
        let spool = Spool::open(&d, 1 << 20).unwrap();
        let mails = [mail(1, "b", &["s"]), mail(2, "b", &["s"])];
        let ids = spool.ingest("a", "INBOX", CUR, &mails, false).unwrap();
        // Make both look like the oldest version wrote them: no severity.
        for id in &ids {
            let item = spool.get(*id).unwrap().unwrap();
            let mut json = serde_json::to_value(&item).unwrap();
            json.as_object_mut().unwrap().remove("severity");
            spool
                .items
                .insert(id.to_be_bytes(), serde_json::to_vec(&json).unwrap())
                .unwrap();
        }
        spool.flush().unwrap();
        ids
    };
    as_queue(&d, &[("s", ids[0]), ("s", ids[1])], plain_key);
    let spool = Spool::open(&d, 1 << 20).unwrap();
    assert!(!spool.db.tree_names().iter().any(|n| n.as_ref() == b"queue"));
    let owed = spool.pending_for("s", 10).unwrap();
    assert_eq!(subjects(&owed), vec!["mail 1", "mail 2"]);
    let done = vec![(
        ids[0],
        Update::Delivered {
            message_id: "m".into(),
            at: 1,
        },
    )];
    spool.record("s", &done).unwrap();
    assert_eq!(
        subjects(&spool.pending_for("s", 10).unwrap()),
        vec!["mail 2"]
    );
    assert_eq!(
        owed_count(&spool),
        1,
        "the delivered item is no longer owed"
    );
}

#[test]
fn a_queue_key_whose_item_does_not_decode_stops_the_move_and_keeps_the_key() {
    let d = dir("migrate-corrupt");
    let id = {
        let spool = Spool::open(&d, 1 << 20).unwrap();
        let ids = spool
            .ingest("a", "INBOX", CUR, &[mail(1, "b", &["s"])], false)
            .unwrap();
        ids[0]
    };
    as_queue(&d, &[("s", id)], plain_key);
    {
        let db = raw_db(&d);
        let items = db.open_tree("items").unwrap();
        items.insert(id.to_be_bytes(), b"{not json").unwrap();
        db.flush().unwrap();
    }
    let opened = Spool::open(&d, 1 << 20);
    assert!(
        matches!(opened, Err(SpoolError::Corrupt { .. })),
        "{:?}",
        opened.err()
    );
    let db = raw_db(&d);
    assert_eq!(
        db.open_tree("queue").unwrap().len(),
        1,
        "the owed delivery is not dropped"
    );
}

#[test]
fn queue_keys_of_every_form_and_sink_are_moved_in_batches() {
    let d = dir("migrate-mixed");
    let (ids, keys) = {
        let spool = Spool::open(&d, 1 << 20).unwrap();
        let mails: Vec<NewItem> = (1..=1_500)
            .map(|u| mail(u, if u % 3 == 0 { "c" } else { "b" }, &["s", "s2", "t"]))
            .collect();
        let ids = spool.ingest("a", "INBOX", CUR, &mails, false).unwrap();
        assert_eq!(owed_count(&spool), 4_500);
        let keys: Vec<(&str, u64)> = ["s", "s2", "t"]
            .into_iter()
            .flat_map(|s| ids.iter().map(move |id| (s, *id)))
            .collect();
        (ids, keys)
    };
    // Sinks "s" and "t" have keys of the version before for their first 700 mails and of the
    // oldest form for the rest; "s2" (which sorts between them) has only the oldest form.
    let older = |sink: &str, item: &Item| {
        if sink != "s2" && item.uid <= 700 {
            ranked_key(sink, item)
        } else {
            plain_key(sink, item)
        }
    };
    as_queue(&d, &keys, older);
    let spool = Spool::open(&d, 1 << 20).unwrap();
    assert!(!spool.db.tree_names().iter().any(|n| n.as_ref() == b"queue"));
    assert_eq!(owed_count(&spool), 4_500, "no delivery lost or doubled");
    for sink in ["s", "s2", "t"] {
        let first = spool.pending_for(sink, 3).unwrap();
        assert_eq!(subjects(&first), ["mail 1", "mail 2", "mail 4"], "{sink}");
        let c: Vec<u64> = spool
            .pending_where(sink, 2_000, &|bucket, _| bucket == "c")
            .unwrap()
            .iter()
            .map(|i| i.id)
            .collect();
        let want: Vec<u64> = ids.iter().skip(2).step_by(3).copied().collect();
        assert_eq!(c, want, "{sink}: bucket c whole and in order");
    }
}
