//! A damaged spool, with the real binary: a record that does not decode, a `conf` file sled
//! refuses, a truncated log. What a user would notice is asserted: a spool sled refuses at start
//! that can be rebuilt without losing a cursor is rebuilt by the daemon itself; otherwise the
//! daemon exits at once with a message naming the remedy and exit code 65 (which the systemd
//! unit does not restart), the damaged files are left as they were, `spool ls`/`dump` report the
//! bad record and show the rest, and `spool salvage` copies every readable item and cursor into
//! a fresh spool, moves the damaged one aside, and the daemon then delivers what was pending.

use crate::common::config::Config;
use crate::common::daemon::{cli, temp_dir, wait_until, Daemon, BIN};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use mailbeacon::config::Severity;
use mailbeacon::spool::Mail;
use mailbeacon::spool::{Cursor, NewItem, Spool};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const DAMAGED: i32 = 65;
const MAILS: usize = 6;

fn config(dir: &Path, dovecot: &Dovecot, url: &str) -> String {
    Config::new(dir, dovecot)
        .account("poll_interval = \"2s\"")
        .webhook(url)
        .text()
}

fn spool_dir(dir: &Path) -> PathBuf {
    dir.join("state").join("spool")
}

/// A spool holding `MAILS` pending mails ("Damage 0" … ) and the mailbox's cursor.
fn fill_spool(dir: &Path, dovecot: &Dovecot) {
    let spool = Spool::open(&spool_dir(dir), 1 << 20).expect("open spool");
    let items: Vec<NewItem> = (0..MAILS)
        .map(|i| NewItem {
            bucket: "unknown".into(),
            severity: Severity::P3,
            uid: i as u32 + 1,
            mail: Mail {
                from: "d@example.org".into(),
                subject: format!("Damage {i}"),
                message_id: Some(format!("damage{i}@x")),
                ..Mail::default()
            },
            sinks: vec!["alerts".into()],
        })
        .collect();
    let cursor = Cursor {
        uidvalidity: dovecot.uidvalidity("alice", "INBOX"),
        last_uid: MAILS as u32,
    };
    spool
        .ingest("home", "INBOX", cursor, &items, false)
        .expect("ingest");
    spool.flush().expect("flush");
}

/// Overwrites the oldest item's record with bytes that are not an item.
fn corrupt_oldest_item(dir: &Path) {
    let db = sled::open(spool_dir(dir)).expect("sled");
    let items = db.open_tree("items").expect("items");
    let (key, _) = items.first().expect("read").expect("an item");
    items.insert(key, &b"\xff{not an item"[..]).expect("insert");
    db.flush().expect("flush");
}

/// Flips a byte of the oldest item's record in the body log (the first record of its only
/// segment: ingest appends in spool order), as a bad SD card block would.
fn corrupt_oldest_body(dir: &Path) {
    let bodies = spool_dir(dir).join("bodies");
    let segments: Vec<PathBuf> = std::fs::read_dir(&bodies)
        .expect("the body log")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    let mut bytes = std::fs::read(&segments[0]).expect("read segment");
    bytes[3] ^= 0x20;
    std::fs::write(&segments[0], bytes).expect("write segment");
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The files of the spool directory with their sizes and contents: "left as it was".
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push((p.clone(), std::fs::read(&p).expect("read")));
            }
        }
    }
    files.sort();
    files
}

/// `mailbeacon run`, expected to end by itself within 30 s: its exit code and stderr.
fn run_until_exit(config: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(config)
        .env_remove("RUNTIME_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mailbeacon");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(status)) = child.try_wait() {
            let mut log = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut log);
            }
            return (status.code(), log);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("mailbeacon kept running on a damaged spool");
}

/// Starts the daemon on the damaged spool: it must exit 65 at once, say what to do, and leave
/// the files as they were. Started twice: a restart meets the same refusal, not a wipe.
fn refuses_to_run(dir: &Path, config_text: &str, discord: &FakeDiscord) {
    let before = snapshot(&spool_dir(dir));
    let config = dir.join("mailbeacon.toml");
    std::fs::write(&config, config_text).expect("config");
    for _ in 0..2 {
        let (code, log) = run_until_exit(&config);
        assert_eq!(code, Some(DAMAGED), "exit code for a damaged spool\n{log}");
        assert!(log.contains("spool salvage"), "the remedy is named\n{log}");
    }
    assert!(discord.delivered_titles("dmgTOKEN").is_empty());
    let after = snapshot(&spool_dir(dir));
    assert_eq!(before.len(), after.len(), "no file added or removed");
    let changed: Vec<_> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|(b, a)| format!("{} ({} -> {} bytes)", b.0.display(), b.1.len(), a.1.len()))
        .collect();
    assert!(
        changed.is_empty(),
        "the damaged spool is left untouched: {changed:?}"
    );
}

/// Runs `spool salvage`; returns its output. The damaged spool must be kept aside, whole.
fn salvage(dir: &Path, config: &Path) -> String {
    let before = snapshot(&spool_dir(dir));
    let out = cli(config, &["spool", "salvage"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "salvage failed: {stdout}{stderr}");
    let aside: Vec<PathBuf> = std::fs::read_dir(dir.join("state"))
        .expect("state dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("spool.damaged-"))
        .collect();
    assert_eq!(
        aside.len(),
        1,
        "the damaged spool is moved aside: {aside:?}"
    );
    let kept: Vec<Vec<u8>> = snapshot(&aside[0]).into_iter().map(|(_, b)| b).collect();
    let was: Vec<Vec<u8>> = before.into_iter().map(|(_, b)| b).collect();
    assert!(kept == was, "the damaged spool is kept byte for byte");
    stdout
}

/// After a salvage the daemon runs and delivers every readable pending mail.
fn delivers_after_salvage(dir: &Path, config_text: &str, discord: &FakeDiscord, expect: usize) {
    let daemon = Daemon::start(dir, config_text);
    wait_until(Duration::from_secs(30), "salvaged mail delivered", || {
        discord.delivered_titles("dmgTOKEN").len() >= expect
    });
    let mut titles = discord.delivered_titles("dmgTOKEN");
    titles.sort();
    titles.dedup();
    assert_eq!(titles.len(), expect, "{titles:?}\n{}", daemon.log_text());
    assert_eq!(daemon.status()["running"], true);
}

#[test]
fn a_record_that_does_not_decode_stops_the_daemon_and_salvage_keeps_the_rest() {
    one_record_damaged("damage-record", corrupt_oldest_item, "does not decode");
}

/// The same for a record whose bytes in the body log changed: its checksum tells.
#[test]
fn a_record_damaged_in_the_body_log_is_found_by_its_checksum_and_the_rest_kept() {
    one_record_damaged(
        "damage-body",
        corrupt_oldest_body,
        "is not what was written (CRC)",
    );
}

/// The oldest of the spool's items made unreadable by `corrupt`: every tool names it (`says`)
/// and exits 65, the daemon refuses the spool, salvage keeps every other mail and delivers it.
fn one_record_damaged(tag: &str, corrupt: fn(&Path), says: &str) {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "dmgTOKEN", Behaviour::Ok);
    let dir = temp_dir(tag);
    let config_text = config(&dir, &dovecot, &url);
    let config = dir.join("mailbeacon.toml");
    std::fs::write(&config, &config_text).expect("config");
    fill_spool(&dir, &dovecot);
    corrupt(&dir);

    // ls and dump show every readable item, name the bad one, and say so in the exit code.
    let out = cli(&config, &["spool", "ls"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(DAMAGED), "{stdout}{stderr}");
    assert!(stderr.contains(says), "{stderr}");
    assert!(stderr.contains("spool salvage"), "{stderr}");
    for i in 1..MAILS {
        assert!(stdout.contains(&format!("Damage {i}")), "{stdout}");
    }
    let out = cli(&config, &["spool", "dump"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(DAMAGED));
    assert_eq!(stdout.lines().count(), MAILS - 1, "{stdout}");

    refuses_to_run(&dir, &config_text, &discord);

    let report = salvage(&dir, &config);
    assert!(
        report.contains(&format!(
            "copied {} item(s) and 1 cursor(s); unreadable: 1",
            MAILS - 1
        )),
        "{report}"
    );
    let out = cli(&config, &["spool", "ls"]);
    assert!(out.status.success(), "the fresh spool reads cleanly");
    delivers_after_salvage(&dir, &config_text, &discord, MAILS - 1);
}

/// A spool sled refuses at start (here its `conf` file) that can be rebuilt without losing a
/// cursor is rebuilt by the daemon itself (docs/design.md invariant 9): no operator, the damaged
/// spool kept aside byte for byte, the log and the status say what happened, every pending mail
/// is delivered. The offline tools still report the damage (exit 65): only the daemon rebuilds.
#[test]
fn a_conf_file_sled_refuses_is_rebuilt_at_start_without_an_operator() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "dmgTOKEN", Behaviour::Ok);
    let dir = temp_dir("damage-conf");
    let config_text = config(&dir, &dovecot, &url);
    let config = dir.join("mailbeacon.toml");
    std::fs::write(&config, &config_text).expect("config");
    fill_spool(&dir, &dovecot);
    std::fs::write(spool_dir(&dir).join("conf"), b"\x00garbage\xff").expect("damage conf");

    let out = cli(&config, &["spool", "ls"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(DAMAGED), "{stdout}{stderr}");
    let before: Vec<Vec<u8>> = snapshot(&spool_dir(&dir))
        .into_iter()
        .map(|(_, b)| b)
        .collect();

    let daemon = Daemon::start(&dir, &config_text);
    wait_until(
        Duration::from_secs(30),
        "the pending mail delivered",
        || discord.delivered_titles("dmgTOKEN").len() >= MAILS,
    );
    let log = daemon.log_text();
    let said =
        format!("rebuilt at start: {MAILS} item(s) and 1 cursor(s) copied, 0 record(s) unreadable");
    assert!(log.contains(&said), "{log}");
    let status = daemon.status().to_string();
    assert!(
        status.contains("rebuilt at start"),
        "the status says so: {status}"
    );
    let mut titles = discord.delivered_titles("dmgTOKEN");
    titles.sort();
    titles.dedup();
    assert_eq!(titles.len(), MAILS, "{titles:?}");
    let aside: Vec<PathBuf> = std::fs::read_dir(dir.join("state"))
        .expect("state dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("spool.damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "the damaged spool is kept aside: {aside:?}");
    let kept: Vec<Vec<u8>> = snapshot(&aside[0]).into_iter().map(|(_, b)| b).collect();
    assert!(kept == before, "the damaged spool is kept byte for byte");
}

#[test]
fn a_truncated_log_never_runs_silently_on_a_partial_spool() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "dmgTOKEN", Behaviour::Ok);
    let dir = temp_dir("damage-truncated");
    let config_text = config(&dir, &dovecot, &url);
    let config = dir.join("mailbeacon.toml");
    std::fs::write(&config, &config_text).expect("config");
    fill_spool(&dir, &dovecot);
    let db = spool_dir(&dir).join("db");
    let len = std::fs::metadata(&db).expect("db").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .expect("open db");
    file.set_len(len / 3).expect("truncate");
    drop(file);

    let out = cli(&config, &["spool", "ls"]);
    let (stdout, stderr) = text(&out);
    eprintln!(
        "ls on a truncated spool: {:?}\n{stdout}{stderr}",
        out.status
    );
    assert_eq!(out.status.code(), Some(DAMAGED), "{stdout}{stderr}");
    // The mail's records are in the body log, so sled's log is small and a third of it holds
    // not even the trees: sled's recovery creates them at the first open and records them in a
    // snapshot at the second, then opens change nothing. The daemon must change nothing more.
    let again = cli(&config, &["spool", "ls"]);
    assert_eq!(again.status.code(), Some(DAMAGED), "{:?}", text(&again));
    refuses_to_run(&dir, &config_text, &discord);
    let report = salvage(&dir, &config);
    assert!(
        report.contains("the cursor of home/INBOX is lost"),
        "{report}"
    );
}
