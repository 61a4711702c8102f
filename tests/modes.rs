//! Bucket modes and routes with the real binary, a real Dovecot and the fake Discord: a digest
//! bucket holds its mail until `digest now` (over the control socket) sends it as one listing,
//! a hold bucket only spools, a dead sink's bucket fails over to its fallback, and an audit sink
//! mirrors every delivery in one line.

use crate::common::config::start_watching;
use crate::common::daemon::{cli, send, wait_until, Daemon};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use serde_json::Value;
use std::time::{Duration, Instant};

fn webhook(name: &str, url: &str) -> String {
    format!(
        "[[sink]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"{url}\"\nprobe_every = \"1s\"\n"
    )
}

fn bucket_stats(daemon: &Daemon, name: &str) -> Value {
    daemon.status()["buckets"]
        .as_array()
        .and_then(|a| a.iter().find(|b| b["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_digest_bucket_holds_its_mail_until_digest_now_and_a_hold_bucket_only_spools() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("800", "digestTOKEN", Behaviour::Ok);
    let buckets = r#"
[[bucket]]
name = "news"
mode = "digest"
digest_every = "1d"
sinks = ["main"]
rules = [{ subject = '^News ' }]

[[bucket]]
name = "held"
mode = "hold"
rules = [{ subject = '^Held ' }]

[[bucket]]
name = "other"
sinks = ["main"]

[indicator]
spool_warn = 1
spool_alarm = 50
"#;
    let daemon = start_watching("digest", &dovecot, &webhook("main", &url), buckets);
    for s in [
        "News one",
        "News two",
        "News three",
        "Held secret",
        "Other now",
    ] {
        send(&dovecot, s);
    }
    assert!(discord.wait_until(Duration::from_secs(20), |d| {
        d.delivered_titles("digestTOKEN") == ["Other now"]
    }));
    wait_until(Duration::from_secs(10), "three news mails spooled", || {
        bucket_stats(&daemon, "news")["pending"] == 3
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        discord.posts_to("digestTOKEN").len(),
        1,
        "a digest bucket's mail waits for its digest"
    );
    // Mail waiting for its digest is scheduled, not a backlog: the LED is calm once "Other
    // now" is recorded (three pending mails are past `spool_warn = 1`). The record of that
    // delivery may lag Discord's view on a loaded machine (its fsync), hence a wait, not a look.
    let calm = Instant::now();
    let mut status = daemon.status();
    while status["indicator"]["pattern"] != "ok" && calm.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
        status = daemon.status();
    }
    assert_eq!(status["indicator"]["pattern"], "ok", "{status:#}");
    assert_eq!(bucket_stats(&daemon, "news")["pending"], 3, "{status:#}");
    // Held mail is in the spool, readable over SSH, and owed to no sink.
    let held: Vec<Value> = daemon
        .dump()
        .into_iter()
        .filter(|r| r["bucket"] == "held")
        .collect();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["subject"], "Held secret");
    assert_eq!(held[0]["deliveries"], serde_json::json!([]));

    let refused = cli(&daemon.config, &["digest", "now", "held"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("not in digest mode"));
    let out = cli(&daemon.config, &["digest", "now", "news"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("digest of bucket news: 3 pending mail(s)"),
        "{}",
        text(&out)
    );
    assert!(discord.wait_until(Duration::from_secs(10), |d| {
        d.posts_to("digestTOKEN").len() == 2
    }));
    wait_until(Duration::from_secs(5), "the digest acknowledged", || {
        bucket_stats(&daemon, "news")["pending"] == 0
    });
    let digest = discord.posts_to("digestTOKEN")[1].body.clone();
    assert_eq!(digest["embeds"][0]["title"], "Digest · news · 3 mails");
    let lines = digest["embeds"][0]["description"].as_str().unwrap_or("");
    for s in ["News one", "News two", "News three"] {
        assert_eq!(lines.matches(s).count(), 1, "{lines}");
    }
    assert!(!lines.contains("Held"), "held mail is never posted");

    daemon.signal(libc::SIGTERM);
    let mut daemon = daemon;
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)), Some(0));
    let offline = cli(&daemon.config, &["digest", "now"]);
    assert_eq!(offline.status.code(), Some(1));
    assert!(
        text(&offline).contains("the daemon is not running")
            && text(&offline).contains("no digest was sent"),
        "{}",
        text(&offline)
    );
}

#[test]
fn a_dead_sinks_bucket_fails_over_and_every_delivery_is_mirrored_to_the_audit_sink() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let main = discord.webhook("801", "mainTOKEN", Behaviour::Ok);
    let pager = discord.webhook("802", "pagerTOKEN", Behaviour::Ok);
    let log = discord.webhook("803", "logTOKEN", Behaviour::Ok);
    let sinks = [
        webhook("main", &main),
        webhook("pager", &pager),
        webhook("log", &log),
    ]
    .concat();
    let buckets = r#"
[[bucket]]
name = "urgent"
severity = "P0"
sinks = ["main"]
fallback = "pager"
audit = "log"
"#;
    let daemon = start_watching("failover", &dovecot, &sinks, buckets);
    send(&dovecot, "Disk failing");
    assert!(discord.wait_until(Duration::from_secs(20), |d| {
        d.delivered_titles("mainTOKEN") == ["Disk failing"]
    }));
    assert!(
        discord.wait_until(Duration::from_secs(10), |d| {
            d.posts_to("logTOKEN").iter().any(|p| p.status == 200)
        }),
        "the audit line"
    );
    let line = discord.posts_to("logTOKEN")[0].body["content"].clone();
    assert_eq!(line.as_str().map(|l| l.lines().count()), Some(1), "{line}");
    assert!(
        line.as_str()
            .is_some_and(|l| l.starts_with("✓ urgent → main: ") && l.contains("Disk failing")),
        "{line}"
    );
    assert!(
        discord.posts_to("pagerTOKEN").is_empty(),
        "no failover while main lives"
    );

    discord.delete_webhook("mainTOKEN");
    send(&dovecot, "Raid degraded");
    assert!(
        discord.wait_until(Duration::from_secs(30), |d| {
            d.delivered_titles("pagerTOKEN") == ["Raid degraded"]
        }),
        "the fallback gets the mail main cannot take: {:?}",
        discord.delivered_titles("pagerTOKEN")
    );
    wait_until(
        Duration::from_secs(10),
        "the audit line of the failover",
        || {
            discord
                .posts_to("logTOKEN")
                .iter()
                .any(|p| p.status == 200 && p.raw_body.contains("urgent → pager: "))
        },
    );
    let item = daemon
        .dump()
        .into_iter()
        .find(|r| r["subject"] == "Raid degraded")
        .expect("spooled");
    assert_eq!(item["state"], "pending", "main still owes it: {item}");
    assert_eq!(daemon.sink_state("main"), "dead");
    // main comes back: it delivers what it owes, once.
    discord.webhook("801", "mainTOKEN", Behaviour::Ok);
    assert!(discord.wait_until(Duration::from_secs(30), |d| {
        d.delivered_titles("mainTOKEN") == ["Disk failing", "Raid degraded"]
    }));
    assert_eq!(discord.delivered_titles("pagerTOKEN"), ["Raid degraded"]);
}

#[test]
fn a_crash_between_a_digest_post_and_its_answer_repeats_the_digest_and_loses_nothing() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("810", "crashTOKEN", Behaviour::Ok);
    let buckets = "[[bucket]]\nname = \"news\"\nmode = \"digest\"\ndigest_every = \"1d\"\nsinks = [\"main\"]\n";
    let mut daemon = start_watching("digest-crash", &dovecot, &webhook("main", &url), buckets);
    for s in ["News alpha", "News beta", "News gamma"] {
        send(&dovecot, s);
    }
    wait_until(Duration::from_secs(20), "three mails spooled", || {
        bucket_stats(&daemon, "news")["pending"] == 3
    });
    // Discord answers after 3 s: the daemon dies while its digest is in flight.
    discord.set_slow(Some(Duration::from_secs(3)));
    let out = cli(&daemon.config, &["digest", "now", "news"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::thread::sleep(Duration::from_secs(1));
    daemon.kill9();
    discord.set_slow(None);
    daemon.spawn();
    assert_eq!(
        bucket_stats(&daemon, "news")["pending"],
        3,
        "no answer, no delivery"
    );
    let out = cli(&daemon.config, &["digest", "now", "news"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_until(Duration::from_secs(20), "the digest acknowledged", || {
        bucket_stats(&daemon, "news")["pending"] == 0
    });
    let listings: Vec<String> = discord
        .posts_to("crashTOKEN")
        .iter()
        .filter(|p| p.status == 200)
        .map(|p| {
            p.body["embeds"][0]["description"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        listings.len(),
        2,
        "the lost answer's digest, then its repeat"
    );
    for l in &listings {
        for s in ["News alpha", "News beta", "News gamma"] {
            assert!(l.contains(s), "every listing has every mail: {l}");
        }
    }
}
