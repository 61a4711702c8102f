//! `spool dump` streams: the CLI's and the daemon's peak memory stay bounded however many
//! items the spool holds, both offline (the CLI reads the spool) and through the control
//! socket (the daemon reads it, the CLI relays). For the million-item figure:
//! `MAILBEACON_DUMP_ITEMS=1000000 cargo test --release --test integration dump_memory:: -- --nocapture`;
//! the default keeps CI quick. What is asserted: every item arrives, and the CLI relaying the
//! daemon's stream holds nothing. The peaks of the offline CLI and of the daemon at half the
//! dump and at its end are printed, not asserted: sled's own memory grows while an iterator
//! walks the tree. Last, the daemon is checked to have opted out of transparent huge pages.

use crate::common::daemon::{temp_dir, wait_until, Daemon, BIN};
use mailbeacon::config::Severity;
use mailbeacon::spool::Mail;
use mailbeacon::spool::{Cursor, NewItem, Spool};
use std::process::{Command, Stdio};
use std::time::Duration;

/// What the relaying CLI may use: far below the items' size (over 100 MiB at the default count);
/// most of it is the debug binary itself.
const RELAY_KIB: i64 = 24 * 1024;
/// How much the relaying CLI may grow over the second half of the dump: it holds one line.
const GROWTH_KIB: i64 = 2 * 1024;

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
                mail: Mail {
                    from: "Sender <s@example.org>".into(),
                    subject: format!("Mail number {u}"),
                    message_id: Some(format!("{u}@example.org")),
                    snippet: "A line of text such as a mail begins with. ".repeat(4),
                    ..Mail::default()
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

/// The peak memory (VmHWM, KiB) of the processes watched, once half the lines were read and
/// at the end.
struct Peaks {
    half: Vec<i64>,
    end: Vec<i64>,
}

/// Runs `spool dump`, counting its lines, sampling the peak memory of the CLI and of `also`
/// (the daemon) while it runs: a streaming dump stops growing once sled's cache is warm, so
/// the second half of the dump adds next to nothing, whereas holding the items would double.
fn dump(config: &std::path::Path, also: Option<i32>) -> (u64, Peaks) {
    let mut child = Command::new(BIN)
        .args(["spool", "dump", "--config"])
        .arg(config)
        .env_remove("RUNTIME_DIRECTORY")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pids: Vec<i32> = [Some(child.id() as i32), also]
        .into_iter()
        .flatten()
        .collect();
    let mut out = child.stdout.take().unwrap();
    // Read while it runs: the child's rusage would include the parent's memory at fork time.
    let sample = || pids.iter().map(|p| peak_kib(*p)).collect::<Vec<_>>();
    let (mut lines, mut half, mut end) = (0u64, None, sample());
    let total = u64::from(items());
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let now = sample();
        if now.iter().all(|k| *k > 0) {
            end = now;
        }
        if half.is_none() && lines >= total / 2 {
            half = Some(end.clone());
        }
        let n = std::io::Read::read(&mut out, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
    assert!(child.wait().unwrap().success());
    let half = half.unwrap_or_else(|| end.clone());
    (lines, Peaks { half, end })
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

    let spool_kib = dir_kib(&dir.join("state/spool"));
    let (lines, p) = dump(&config, None);
    eprintln!(
        "offline: {lines} items ({spool_kib} KiB of spool); CLI peak RSS {} KiB at half, {} KiB at the end",
        p.half[0], p.end[0]
    );
    assert_eq!(lines, u64::from(n));
    // Not asserted: sled itself grows while one iterator walks the whole tree (about 20 MiB
    // over the second half of 100,000 items, in debug builds); mailbeacon holds one item.

    let daemon = Daemon::start(&dir, &text);
    wait_until(Duration::from_secs(20), "the daemon answering", || {
        daemon.try_status().is_some()
    });
    let (lines, p) = dump(&daemon.config, Some(daemon.pid()));
    eprintln!(
        "via the daemon: {lines} items; CLI peak RSS {} -> {} KiB, daemon {} -> {} KiB (half -> end)",
        p.half[0], p.end[0], p.half[1], p.end[1]
    );
    assert_eq!(lines, u64::from(n));
    assert!(
        p.end[0] < RELAY_KIB && p.end[0] - p.half[0] < GROWTH_KIB,
        "the relaying CLI holds nothing: {} KiB at half, {} KiB at the end",
        p.half[0],
        p.end[0]
    );
}

/// The daemon turns transparent huge pages off for itself (src/daemon/memory.rs): on a kernel
/// where they are `always` on, they tripled its peak memory on the emulated Pi 3B.
#[test]
fn the_daemon_runs_without_transparent_huge_pages() {
    let dovecot = crate::common::dovecot::Dovecot::start();
    let discord = crate::common::fake_discord::FakeDiscord::start();
    let url = discord.webhook("1", "thpTOKEN", crate::common::fake_discord::Behaviour::Ok);
    let daemon = crate::common::config::Config::temp("thp", &dovecot)
        .webhook(&url)
        .start_watching();
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid()))
        .expect("the daemon's /proc status");
    assert!(
        status.lines().any(|l| l == "THP_enabled:\t0"),
        "transparent huge pages still allowed:\n{status}"
    );
}
