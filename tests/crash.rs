//! Crash safety with real processes. The daemon is SIGKILLed at random moments while mail
//! arrives and a flaky sink delivers; afterwards every mail must have been delivered at least
//! once and spooled exactly once. A second test kills a process the instant `Spool::ingest`
//! returned and checks that the items and the cursor survived: the cursor never runs ahead of
//! what is on disk.

mod common;

use common::daemon::{mail, temp_dir, wait_until, Daemon};
use common::dovecot::Dovecot;
use common::fake_discord::{Behaviour, FakeDiscord};
use mailbeacon::mail::Summary;
use mailbeacon::spool::{Cursor, NewItem, Spool};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

fn config(dir: &std::path::Path, dovecot: &Dovecot, url: &str) -> String {
    format!(
        r#"
state_dir = "{state}"
[[account]]
name = "home"
host = "127.0.0.1"
port = {port}
username = "alice"
password = "secret"
ca_file = "{ca}"
poll_interval = "300ms"
[[sink]]
name = "flaky"
kind = "webhook"
url = "{url}"
[[bucket]]
name = "unknown"
sinks = ["flaky"]
"#,
        state = dir.join("state").display(),
        port = dovecot.imaps_port(),
        ca = dovecot.ca_file().display(),
    )
}

#[test]
fn sigkill_at_random_moments_loses_nothing() {
    let kills: usize = std::env::var("MAILBEACON_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(12);
    let mails: usize = (kills * 5).max(40);
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("300", "flakyTOKEN", Behaviour::FlakyEvery(3));
    let dir = temp_dir("crash");
    let mut daemon = Daemon::start(&dir, &config(&dir, &dovecot, &url));
    wait_until(Duration::from_secs(20), "the mailbox to be watched", || {
        daemon.status()["accounts"][0]["state"] == "idle"
    });

    let feeder = std::thread::scope(|scope| {
        let feeder = scope.spawn(|| {
            for i in 0..mails {
                dovecot.deliver(
                    "alice",
                    "INBOX",
                    &mail(
                        "Sender <s@example.org>",
                        &format!("Crash mail {i:03}"),
                        "x",
                        &format!("crash{i}@example.org"),
                    ),
                );
                std::thread::sleep(Duration::from_millis(fastrand::u64(20..120)));
            }
        });
        for _ in 0..kills {
            std::thread::sleep(Duration::from_millis(fastrand::u64(50..900)));
            daemon.kill9();
            daemon.spawn();
        }
        feeder.join()
    });
    feeder.expect("feeder");

    wait_until(
        Duration::from_secs(120),
        "every mail spooled and delivered",
        || {
            let dump = daemon.dump();
            dump.len() >= mails && dump.iter().all(|r| r["state"] == "delivered")
        },
    );
    let dump = daemon.dump();
    assert_eq!(dump.len(), mails, "each mail spooled exactly once");
    let titles = discord.delivered_titles("flakyTOKEN");
    let mut lost = Vec::new();
    let mut duplicates = 0;
    for i in 0..mails {
        let t = format!("Crash mail {i:03}");
        match titles.iter().filter(|x| **x == t).count() {
            0 => lost.push(t),
            n => duplicates += n - 1,
        }
    }
    eprintln!("kill soak: {kills} kills, {mails} mails, {} acknowledged posts, {duplicates} duplicate deliveries ({:.2} per kill), {} lost", discord.posts_to("flakyTOKEN").len(), duplicates as f64 / kills as f64, lost.len());
    assert!(lost.is_empty(), "lost after {kills} SIGKILLs: {lost:?}");
}

/// Child side: ingest one batch with its cursor, say so, then wait to be killed.
#[test]
#[ignore = "run as a child process by ingest_is_on_disk_when_it_returns"]
fn ingest_child() {
    let Some(dir) = std::env::var_os("MB_INGEST_CHILD") else {
        return;
    };
    let spool = Spool::open(std::path::Path::new(&dir), 1 << 20).expect("open");
    let items: Vec<NewItem> = (1..=20)
        .map(|uid| NewItem {
            bucket: "b".into(),
            severity: mailbeacon::config::Severity::P3,
            uid,
            summary: Summary {
                subject: format!("m{uid}"),
                ..Summary::default()
            },
            sinks: vec!["s".into()],
        })
        .collect();
    spool
        .ingest(
            "home",
            "INBOX",
            Cursor {
                uidvalidity: 9,
                last_uid: 20,
            },
            &items,
            false,
        )
        .expect("ingest");
    println!("INGESTED");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn ingest_is_on_disk_when_it_returns() {
    for round in 0..5 {
        let dir = temp_dir(&format!("ingest-{round}"));
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "ingest_child",
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("MB_INGEST_CHILD", &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("INGESTED") {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "child ended before ingesting"
            );
        }
        // Killed the instant ingest returned: no chance for sled's background flush.
        child.kill().unwrap();
        child.wait().unwrap();
        let spool = Spool::open(&dir, 1 << 20).unwrap();
        assert_eq!(
            spool.cursor("home", "INBOX").unwrap(),
            Some(Cursor {
                uidvalidity: 9,
                last_uid: 20
            })
        );
        assert_eq!(
            spool.iter().count(),
            20,
            "round {round}: the cursor covers items that are not on disk"
        );
    }
}
