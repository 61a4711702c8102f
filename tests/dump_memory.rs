//! `spool dump` streams: the CLI's and the daemon's peak memory stay bounded however many
//! items the spool holds, both offline (the CLI reads the spool) and through the control
//! socket (the daemon reads it, the CLI relays). `MAILBEACON_DUMP_ITEMS=1000000 cargo test
//! --release --test dump_memory -- --nocapture` for the million-item figure; the default keeps
//! CI quick. Opening a sled spool costs memory of its own (its buffers and page table, which
//! grows with the spool whatever is read), so the offline figure is compared with `status`
//! opening the same spool: what `dump` adds is what streaming costs.

mod common;

use common::daemon::{temp_dir, wait_until, Daemon, BIN};
use mailbeacon::config::Severity;
use mailbeacon::mail::Summary;
use mailbeacon::spool::{Cursor, NewItem, Spool};
use std::process::{Command, Stdio};
use std::time::Duration;

/// What streaming may add: sled's page cache (`spool_cache_mb`, 16 MiB) and buffers, far
/// below the items' size (over 100 MiB at the default count).
const LIMIT_KIB: i64 = 64 * 1024;

fn items() -> u32 {
    std::env::var("MAILBEACON_DUMP_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn fill(dir: &std::path::Path, n: u32) {
    let spool = Spool::open(dir, 16 << 20).unwrap();
    let mut uid = 0;
    while uid < n {
        let batch: Vec<NewItem> = (uid + 1..=(uid + 1000).min(n))
            .map(|u| NewItem {
                bucket: "unknown".into(),
                severity: Severity::P3,
                uid: u,
                summary: Summary {
                    from: "Sender <s@example.org>".into(),
                    subject: format!("Mail number {u}"),
                    message_id: Some(format!("{u}@example.org")),
                    snippet: "A line of text such as a mail begins with. ".repeat(4),
                    ..Summary::default()
                },
                sinks: vec!["alerts".into()],
            })
            .collect();
        uid += batch.len() as u32;
        let cursor = Cursor {
            uidvalidity: 1,
            last_uid: uid,
        };
        spool
            .ingest("home", "INBOX", cursor, &batch, false)
            .unwrap();
    }
}

/// Runs `spool dump` (or another command), counting its lines; returns (lines, the child's
/// peak RSS in KiB).
fn run(config: &std::path::Path, args: &[&str]) -> (u64, i64) {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUNTIME_DIRECTORY")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut out = child.stdout.take().unwrap();
    // The child's own high-water mark, read while it runs (its rusage would include the
    // parent's memory at fork time).
    let (mut lines, mut peak) = (0u64, 0);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        peak = peak.max(peak_kib(pid));
        let n = std::io::Read::read(&mut out, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
    assert!(child.wait().unwrap().success());
    (lines, peak)
}

fn dir_kib(dir: &std::path::Path) -> i64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len() as i64 / 1024)
        .sum()
}

fn peak_kib(pid: i32) -> i64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn dump_memory_stays_bounded_offline_and_through_the_daemon() {
    let n = items();
    let dir = temp_dir("dump-memory");
    fill(&dir.join("state/spool"), n);
    let text = format!(
        r#"
state_dir = "{state}"
[[account]]
name = "home"
host = "127.0.0.1"
port = 1
tls = "none"
username = "me"
password = "pw"
[[sink]]
name = "alerts"
kind = "webhook"
url = "http://127.0.0.1:1/api/webhooks/1/T"
[[bucket]]
name = "unknown"
mode = "hold"
"#,
        state = dir.join("state").display()
    );
    let config = dir.join("c.toml");
    std::fs::write(&config, &text).unwrap();

    let (_, open_kib) = run(&config, &["status", "--json"]);
    let (lines, cli_kib) = run(&config, &["spool", "dump"]);
    let spool_kib = dir_kib(&dir.join("state/spool"));
    eprintln!("offline: {lines} items dumped ({spool_kib} KiB of spool), CLI peak RSS {cli_kib} KiB; `status` on the same spool {open_kib} KiB");
    assert_eq!(lines, u64::from(n));
    assert!(
        cli_kib - open_kib < LIMIT_KIB,
        "offline dump peaked at {cli_kib} KiB, {open_kib} KiB for opening the spool"
    );

    let daemon = Daemon::start(&dir, &text);
    wait_until(Duration::from_secs(20), "the daemon answering", || {
        daemon.try_status().is_some()
    });
    let before = peak_kib(daemon.pid());
    let (lines, cli_kib) = run(&daemon.config, &["spool", "dump"]);
    let after = peak_kib(daemon.pid());
    eprintln!(
        "via the daemon: {lines} items, CLI peak RSS {cli_kib} KiB, daemon peak RSS {before} -> {after} KiB"
    );
    assert_eq!(lines, u64::from(n));
    assert!(
        cli_kib < LIMIT_KIB,
        "the relaying CLI peaked at {cli_kib} KiB"
    );
    assert!(
        after - before < LIMIT_KIB,
        "the daemon grew from {before} to {after} KiB"
    );
}
