//! Crash safety with real processes. The daemon is SIGKILLed while mail arrives and a flaky
//! sink delivers — at random instants, just after a mail lands (during the watcher's fetch and
//! spool transaction) and the instant a POST reaches Discord (before its answer is read);
//! afterwards every mail must have been delivered at least once, spooled exactly once, and no
//! kill may repeat more than one Discord message (the POST it interrupted, with its batch of
//! embeds). `MAILBEACON_KILLS` sets the number of kills (12).
//! A second test kills a process the instant `Spool::ingest` returned and checks that the
//! items and the cursor survived: the cursor never runs ahead of what is on disk.

use crate::common::config::Config;
use crate::common::daemon::{mail, temp_dir, wait_until};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use mailbeacon::spool::Mail;
use mailbeacon::spool::{Cursor, NewItem, Spool};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Every mail to the `flaky` webhook at `url`; polls 300 ms apart, so kills land mid-fetch.
fn config(dir: &std::path::Path, dovecot: &Dovecot, url: &str) -> Config {
    Config::new(dir, dovecot)
        .account("poll_interval = \"300ms\"")
        .sinks(&format!(
            "[[sink]]\nname = \"flaky\"\nkind = \"webhook\"\nurl = \"{url}\""
        ))
        .buckets("[[bucket]]\nname = \"unknown\"\nsinks = [\"flaky\"]")
}

/// Where a kill lands. Each kill takes the next of these in turn.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Moment {
    /// Anywhere: a random instant 50–900 ms after the last restart.
    Random,
    /// 0–40 ms after a mail was saved into the watched folder: while the watcher hears of it,
    /// fetches it and writes it with its cursor in one spool transaction.
    Ingest,
    /// The instant the fake Discord receives a request, before it answers: the message exists
    /// in the channel but the daemon has not read the answer or recorded the delivery.
    Post,
}

const MOMENTS: [Moment; 3] = [Moment::Random, Moment::Ingest, Moment::Post];

#[test]
fn sigkill_at_random_moments_loses_nothing() {
    let kills: usize = std::env::var("MAILBEACON_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(12);
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("300", "flakyTOKEN", Behaviour::FlakyEvery(3));
    let dir = temp_dir("crash");
    let mut daemon = config(&dir, &dovecot, &url).start_watching();

    // Mail numbers are handed out by one counter: the feeder and the `Ingest` kills both deliver.
    let next = AtomicUsize::new(0);
    let feeding = AtomicBool::new(true);
    let deliver = || {
        let i = next.fetch_add(1, Ordering::SeqCst);
        let raw = mail(
            "Sender <s@example.org>",
            &format!("Crash mail {i:04}"),
            "x",
            &format!("crash{i}@example.org"),
        );
        dovecot.deliver("alice", "INBOX", &raw);
    };
    let mut landed = [0usize; 3];
    let mut missed_posts = 0;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while feeding.load(Ordering::SeqCst) {
                deliver();
                std::thread::sleep(Duration::from_millis(fastrand::u64(20..120)));
            }
        });
        for k in 0..kills {
            let moment = MOMENTS[k % MOMENTS.len()];
            match moment {
                Moment::Random => std::thread::sleep(Duration::from_millis(fastrand::u64(50..900))),
                Moment::Ingest => {
                    deliver();
                    std::thread::sleep(Duration::from_millis(fastrand::u64(0..40)));
                }
                Moment::Post => {
                    let before = discord.request_count();
                    let t = Instant::now();
                    while discord.request_count() == before && t.elapsed() < Duration::from_secs(5)
                    {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    if discord.request_count() == before {
                        missed_posts += 1;
                    }
                }
            }
            daemon.kill9();
            landed[k % MOMENTS.len()] += 1;
            daemon.spawn();
        }
        feeding.store(false, Ordering::SeqCst);
    });
    let mails = next.load(Ordering::SeqCst);

    wait_until(
        Duration::from_secs(300),
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
        let t = format!("Crash mail {i:04}");
        match titles.iter().filter(|x| **x == t).count() {
            0 => lost.push(t),
            n => duplicates += n - 1,
        }
    }
    let posts = discord.posts_to("flakyTOKEN");
    let failed = posts.iter().filter(|r| r.status >= 500).count();
    // A message that repeats mail an earlier message already showed: a POST sent again because
    // the kill came before its answer was recorded. One POST carries a batch of embeds.
    let mut shown = std::collections::HashSet::new();
    let mut repeated = 0;
    for post in posts.iter().filter(|r| (200..300).contains(&r.status)) {
        let titles = post.embed_titles();
        if titles.iter().any(|t| shown.contains(t)) {
            repeated += 1;
        }
        shown.extend(titles);
    }
    eprintln!(
        "kill soak: {kills} SIGKILLs ({} at random instants, {} during ingest, {} during a POST{}), \
         {mails} mails, {} POSTs ({failed} answered 500 by the flaky sink), \
         {repeated} messages repeated ({:.2} per kill) holding {duplicates} duplicate mails \
         ({:.2} per kill), {} lost",
        landed[0],
        landed[1],
        landed[2],
        if missed_posts > 0 {
            format!(", {missed_posts} of which saw no POST within 5 s")
        } else {
            String::new()
        },
        posts.len(),
        repeated as f64 / kills.max(1) as f64,
        duplicates as f64 / kills.max(1) as f64,
        lost.len()
    );
    assert!(lost.is_empty(), "lost after {kills} SIGKILLs: {lost:?}");
    // A kill can interrupt at most the one POST in flight: Discord created the message, the
    // spool never heard. More repeats than kills means something re-sends delivered mail.
    assert!(
        repeated <= kills,
        "{repeated} messages repeated after {kills} kills: more than one per kill"
    );
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
            mail: Mail {
                subject: format!("m{uid}"),
                ..Mail::default()
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
                "crash::ingest_child",
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
