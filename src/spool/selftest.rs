//! `mailbeacon selftest`: the spool exercised end to end on *this* machine — this CPU, this
//! build, this filesystem — in a fresh directory, through the same [`Spool`] calls the daemon
//! makes. It needs no config, network or hardware, so it is what CI runs on the ARM binaries
//! under qemu-user, and what an operator runs after copying the binary onto a new board
//! (`--dir` on the SD card's filesystem).
//!
//! The checks run in order and stop at the first failure, because each builds on the one
//! before (nothing can be read back from a spool that did not open). The directory is removed
//! afterwards, pass or fail.

use super::{Cursor, NewItem, Spool, SpoolError, State, Update};
use std::fmt::Display;
use std::path::{Path, PathBuf};

/// What one check found (`Ok`), or why it failed (`Err`).
pub(crate) type Outcome = Result<String, String>;

const ACCOUNT: &str = "selftest";
const FOLDER: &str = "INBOX";
const CURSOR: Cursor = Cursor {
    uidvalidity: 42,
    last_uid: 3,
};
/// An RFC 2047 subject: decoding it proves the mail parser's charset tables made it into the
/// binary.
const SUBJECT: &str = "Grüße ✓";
const MAIL: &[u8] = b"From: Alice <alice@example.net>\r\nTo: ops@example.net\r\n\
Subject: =?UTF-8?B?R3LDvMOfZSDinJM=?=\r\nMessage-ID: <selftest-1@mailbeacon>\r\n\
Date: Tue, 01 Sep 2026 10:00:00 +0000\r\n\r\nThe spool keeps this.\r\n";

/// The state the checks share: the spool directory, the open spool, the ids written.
struct Run {
    dir: PathBuf,
    spool: Option<Spool>,
    ids: Vec<u64>,
}

type Check = fn(&mut Run) -> Outcome;

const CHECKS: [(&str, Check); 7] = [
    ("open", open),
    ("ingest", ingest),
    ("pending", pending),
    ("record", record),
    ("rescan", rescan),
    ("lock", lock),
    ("reopen", reopen),
];

/// Runs every check in a fresh spool under `parent`, calling `report` with each check's name
/// and outcome as it finishes, then removes the spool (reported as `cleanup`). Returns whether
/// every check passed.
pub(crate) fn run(parent: &Path, report: &mut dyn FnMut(&str, &Outcome)) -> bool {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = parent.join(format!(
        "mailbeacon-selftest-{}-{nanos}",
        std::process::id()
    ));
    let mut state = Run {
        dir,
        spool: None,
        ids: Vec::new(),
    };
    let mut passed = true;
    for (name, check) in CHECKS {
        let outcome = check(&mut state);
        report(name, &outcome);
        if outcome.is_err() {
            passed = false;
            break;
        }
    }
    // sled holds the directory open until the spool is dropped.
    drop(state.spool.take());
    if state.dir.exists() {
        let cleanup = std::fs::remove_dir_all(&state.dir)
            .map(|()| format!("removed {}", state.dir.display()))
            .map_err(|e| format!("cannot remove {}: {e}", state.dir.display()));
        passed &= cleanup.is_ok();
        report("cleanup", &cleanup);
    }
    passed
}

fn err(e: impl Display) -> String {
    e.to_string()
}

fn ensure(holds: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if holds {
        Ok(())
    } else {
        Err(what())
    }
}

impl Run {
    fn spool(&self) -> Result<&Spool, String> {
        self.spool
            .as_ref()
            .ok_or_else(|| "no spool open".to_string())
    }

    fn open_again(&self) -> Result<Spool, SpoolError> {
        Spool::open(&self.dir.join("spool"), 1 << 20)
    }
}

fn new_item(uid: u32, bucket: &str, sinks: &[&str]) -> NewItem {
    let mut summary = crate::mail::summarize(MAIL);
    if uid != 1 {
        summary.message_id = Some(format!("selftest-{uid}@mailbeacon"));
    }
    NewItem {
        bucket: bucket.to_string(),
        uid,
        mail: (&summary).into(),
        sinks: sinks.iter().map(|s| s.to_string()).collect(),
        severity: crate::config::Severity::P2,
    }
}

fn open(run: &mut Run) -> Outcome {
    // A directory that already exists is not fresh: refuse rather than test someone's data.
    std::fs::create_dir(&run.dir).map_err(|e| format!("{}: {e}", run.dir.display()))?;
    run.spool = Some(run.open_again().map_err(err)?);
    Ok(format!("fresh spool in {}", run.dir.display()))
}

fn ingest(run: &mut Run) -> Outcome {
    let spool = run.spool()?;
    let parsed = crate::mail::summarize(MAIL);
    ensure(parsed.subject == SUBJECT, || {
        format!(
            "the subject decoded as {:?}, not {SUBJECT:?}",
            parsed.subject
        )
    })?;
    let items = [
        new_item(1, "alerts", &["a", "b"]),
        new_item(2, "alerts", &["a"]),
        new_item(3, "held", &[]),
    ];
    let ids = spool
        .ingest(ACCOUNT, FOLDER, CURSOR, &items, false)
        .map_err(err)?;
    ensure(
        ids.len() == 3 && ids.windows(2).all(|w| w[0] < w[1]),
        || format!("expected 3 ascending ids, got {ids:?}"),
    )?;
    let cursor = spool.cursor(ACCOUNT, FOLDER).map_err(err)?;
    ensure(cursor == Some(CURSOR), || {
        format!("cursor reads back as {cursor:?}")
    })?;
    run.ids = ids;
    Ok(format!(
        "3 mails (subject {SUBJECT:?}) and cursor {}:{} in one transaction",
        CURSOR.uidvalidity, CURSOR.last_uid
    ))
}

/// The ids `sink` still owes, oldest first.
fn owed(spool: &Spool, sink: &str) -> Result<Vec<u64>, String> {
    Ok(spool
        .pending_for(sink, 10)
        .map_err(err)?
        .iter()
        .map(|i| i.id)
        .collect())
}

fn pending(run: &mut Run) -> Outcome {
    let spool = run.spool()?;
    let (a, b) = (owed(spool, "a")?, owed(spool, "b")?);
    ensure(a == run.ids[..2] && b == run.ids[..1], || {
        format!(
            "sink a owes {a:?} and b owes {b:?}; expected {:?} and {:?}",
            &run.ids[..2],
            &run.ids[..1]
        )
    })?;
    let first = spool.get(run.ids[0]).map_err(err)?;
    ensure(first.as_ref().is_some_and(|i| i.subject == SUBJECT), || {
        format!("item {} reads back as {first:?}", run.ids[0])
    })?;
    Ok("sink a owes 2 mails, sink b owes 1, oldest first".to_string())
}

fn delivered(id: &str) -> Update {
    Update::Delivered {
        message_id: id.to_string(),
        at: chrono::Utc::now().timestamp(),
    }
}

fn record(run: &mut Run) -> Outcome {
    let spool = run.spool()?;
    let (first, second) = (run.ids[0], run.ids[1]);
    let failed = Update::Failed {
        error: "HTTP 500".to_string(),
    };
    spool
        .record("a", &[(first, delivered("m-1a")), (second, failed)])
        .map_err(err)?;
    let still_owed = spool.pending_for("a", 10).map_err(err)?;
    let retried = still_owed
        .first()
        .and_then(|i| i.delivery("a"))
        .is_some_and(|d| d.attempts == 1 && d.last_error.as_deref() == Some("HTTP 500"));
    ensure(still_owed.len() == 1 && retried, || {
        format!("after one ack and one failure sink a owes {still_owed:?}")
    })?;
    // Delivered means every sink acknowledged: sink b still owes the first mail.
    let state = |id| -> Result<Option<State>, String> {
        Ok(spool.get(id).map_err(err)?.map(|i| i.state()))
    };
    ensure(state(first)? == Some(State::Pending), || {
        "a mail was marked delivered before every sink acknowledged it".to_string()
    })?;
    spool
        .record("b", &[(first, delivered("m-1b"))])
        .map_err(err)?;
    ensure(state(first)? == Some(State::Delivered), || {
        "a mail acknowledged by every sink is not delivered".to_string()
    })?;
    let stats = spool.stats("alerts").map_err(err)?;
    ensure((stats.pending, stats.delivered) == (1, 1), || {
        format!("bucket alerts counts {stats:?}, expected 1 pending and 1 delivered")
    })?;
    Ok("an ack delivers, a failure keeps the mail pending with its error".to_string())
}

fn rescan(run: &mut Run) -> Outcome {
    let spool = run.spool()?;
    let again = [new_item(1, "alerts", &["a", "b"])];
    let written = spool
        .ingest(ACCOUNT, FOLDER, CURSOR, &again, true)
        .map_err(err)?;
    ensure(written.is_empty(), || {
        format!("a mail spooled before was spooled again as {written:?}")
    })?;
    Ok("a mail seen before is not spooled twice after a UIDVALIDITY change".to_string())
}

fn lock(run: &mut Run) -> Outcome {
    match run.open_again() {
        Err(SpoolError::Locked { .. }) => {
            Ok("a second open is refused: one writer at a time".to_string())
        }
        Err(e) => Err(format!("a second open failed otherwise: {e}")),
        Ok(_) => Err("a second open succeeded: the directory lock does not work here".to_string()),
    }
}

fn reopen(run: &mut Run) -> Outcome {
    drop(run.spool.take());
    let spool = run.open_again().map_err(err)?;
    let cursor = spool.cursor(ACCOUNT, FOLDER).map_err(err)?;
    let stats = spool.stats("alerts").map_err(err)?;
    let a = owed(&spool, "a")?;
    let message_id = spool
        .get(run.ids[0])
        .map_err(err)?
        .and_then(|i| i.delivery("b").and_then(|d| d.message_id.clone()));
    ensure(
        cursor == Some(CURSOR)
            && (stats.pending, stats.delivered) == (1, 1)
            && a == run.ids[1..2]
            && message_id.as_deref() == Some("m-1b"),
        || {
            format!(
                "after reopening: cursor {cursor:?}, alerts {stats:?}, sink a owes {a:?}, \
                 message id {message_id:?}"
            )
        },
    )?;
    // Ids must keep growing across restarts: key order is spool order.
    let next = spool
        .ingest(
            ACCOUNT,
            FOLDER,
            Cursor {
                last_uid: 4,
                ..CURSOR
            },
            &[new_item(4, "alerts", &["a"])],
            false,
        )
        .map_err(err)?;
    let last = run.ids.iter().max().copied().unwrap_or(0);
    ensure(next.first().is_some_and(|&id| id > last), || {
        format!("a new id {next:?} does not come after {last}")
    })?;
    run.spool = Some(spool);
    Ok("cursor, mails, acks and counts survive a reopen; new ids follow the old".to_string())
}
