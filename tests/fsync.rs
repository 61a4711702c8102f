//! The spool's durability points, seen at the syscall level: this test runs the test binary
//! again (its `fsync::spool_exercise` alone) under `strace -f -y -e trace=fsync,fdatasync,sync_file_range,write` as a spool
//! exercise (ingests of chunks of mail with their cursor, then recorded deliveries, each framed
//! by a marker written to stderr). Each ingest and each record must reach an `fsync` or
//! `fdatasync` of sled's `db` file on the same thread, after sled's last `sync_file_range`
//! (which persists neither metadata nor the device's cache) and before it returns; and the
//! syncs must count per chunk, not per mail. strace is installed when missing
//! (`.ci/apt-install`).

use mailbeacon::config::Severity;
use mailbeacon::spool::{Cursor, NewItem, Spool, Update};
use std::path::Path;
use std::process::Command;

/// Set in the child: the spool directory the exercise writes.
const CHILD: &str = "MAILBEACON_FSYNC_CHILD";
const CHUNKS: u32 = 8;
const PER_CHUNK: u32 = 25;

fn item(uid: u32) -> NewItem {
    let raw = format!(
        "From: Shop <orders@example.net>\r\nSubject: mail {uid}\r\n\
         Message-ID: <fsync-{uid}@example.net>\r\n\r\nbody\r\n"
    );
    NewItem {
        bucket: "unknown".to_string(),
        severity: Severity::P3,
        uid,
        mail: (&mailbeacon::mail::summarize(raw.as_bytes())).into(),
        sinks: vec!["alerts".to_string()],
    }
}

/// Writes a marker with one `write(2, …)`, so strace shows where each operation begins and ends.
fn mark(what: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("@@ {what}\n").as_bytes());
}

/// The child's exercise; does nothing in a plain test run.
#[test]
fn spool_exercise() {
    let Some(dir) = std::env::var_os(CHILD) else {
        return;
    };
    let spool = Spool::open(Path::new(&dir), 1 << 20).expect("open spool");
    let mut chunks = Vec::new();
    for c in 0..CHUNKS {
        let items: Vec<NewItem> = (1..=PER_CHUNK).map(|n| item(c * PER_CHUNK + n)).collect();
        let cursor = Cursor {
            uidvalidity: 1,
            last_uid: (c + 1) * PER_CHUNK,
        };
        mark(&format!("begin ingest {c}"));
        let ids = spool
            .ingest("home", "INBOX", cursor, &items, false)
            .expect("ingest");
        mark(&format!("end ingest {c}"));
        chunks.push(ids);
    }
    for (c, ids) in chunks.iter().enumerate() {
        let updates: Vec<(u64, Update)> = ids
            .iter()
            .map(|&id| {
                let message_id = format!("m{id}");
                (id, Update::Delivered { message_id, at: 0 })
            })
            .collect();
        mark(&format!("begin record {c}"));
        spool.record("alerts", &updates).expect("record");
        mark(&format!("end record {c}"));
    }
}

/// One traced call: the thread, whether it is a real sync of the `db` file (`fsync` or
/// `fdatasync`), sled's `sync_file_range`, or a marker.
enum Call {
    Sync,
    Range,
    Mark(String),
}

fn parse(line: &str) -> Option<(String, Call)> {
    let (tid, rest) = line.split_once(' ')?;
    let rest = rest.trim_start();
    let call = if (rest.starts_with("fdatasync(") || rest.starts_with("fsync("))
        && rest.contains("/db>")
    {
        Call::Sync
    } else if rest.starts_with("sync_file_range(") {
        Call::Range
    } else if rest.starts_with("write(2") && rest.contains("\"@@ ") {
        let text = rest.split("\"@@ ").nth(1)?.split("\\n").next()?;
        Call::Mark(text.to_string())
    } else {
        return None;
    };
    Some((tid.to_string(), call))
}

#[test]
fn every_ingest_and_record_ends_in_an_fsync_per_chunk() {
    if Command::new("strace").arg("-V").output().is_err() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/apt-install");
        let status = Command::new(script)
            .arg("strace")
            .status()
            .expect("run .ci/apt-install");
        assert!(status.success(), "installing strace failed");
    }
    let dir = std::env::temp_dir().join(format!("mb-fsync-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let trace = dir.with_extension("strace");
    let out = Command::new("strace")
        .args([
            "-f",
            "-y",
            "-qq",
            "-e",
            "trace=fsync,fdatasync,sync_file_range,write",
        ])
        .args(["-e", "signal=none", "-s", "64", "-o"])
        .arg(&trace)
        .arg(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "fsync::spool_exercise",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, &dir)
        .output()
        .expect("run strace");
    assert!(
        out.status.success(),
        "the traced exercise failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&trace).expect("read the trace");
    let mut open: Option<(String, String, Option<bool>)> = None; // (tid, op, synced after range)
    let mut done = Vec::new();
    let mut syncs_in_ops = 0;
    for (tid, call) in text.lines().filter_map(parse) {
        match (call, &mut open) {
            (Call::Mark(m), _) if m.starts_with("begin ") => {
                open = Some((tid, m["begin ".len()..].to_string(), None));
            }
            (Call::Mark(m), Some((_, op, synced))) if m.starts_with("end ") => {
                assert_eq!(&m["end ".len()..], op.as_str(), "markers out of order");
                done.push((op.clone(), *synced == Some(true)));
                open = None;
            }
            (Call::Sync, Some((t, _, synced))) if *t == tid => {
                syncs_in_ops += 1;
                *synced = Some(true);
            }
            (Call::Range, Some((t, _, synced))) if *t == tid => *synced = Some(false),
            _ => {}
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let ops = 2 * CHUNKS as usize;
    let mails = (CHUNKS * PER_CHUNK) as usize;
    eprintln!(
        "fsync: {ops} operations on {mails} mails: {syncs_in_ops} fsync/fdatasync of the db file"
    );
    assert_eq!(done.len(), ops, "every operation traced: {done:?}\n{text}");
    let unsynced: Vec<_> = done.iter().filter(|(_, s)| !s).map(|(op, _)| op).collect();
    assert!(
        unsynced.is_empty(),
        "no fsync/fdatasync of the db file after sled's last sync_file_range in: {unsynced:?}"
    );
    // Per chunk, not per mail: one (at most a few) per operation, far fewer than the mails.
    assert!(
        syncs_in_ops <= 2 * ops && syncs_in_ops < mails / 4,
        "{syncs_in_ops} syncs for {ops} operations on {mails} mails"
    );
}
