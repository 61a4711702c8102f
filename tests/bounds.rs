//! Retention, the spool's size bound and the metrics file, in the real daemon against a real
//! Dovecot and the fake Discord: delivered mail goes after `keep_delivered` while pending mail
//! stays; a spool at `spool_max_mb` stops ingestion (cursor unmoved, mail on the server, LED
//! alarm) and resumes by itself once delivered mail can be pruned, losing nothing.

use crate::common::config::Config;
use crate::common::daemon::{mail, temp_dir, wait_until, Daemon};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use std::path::Path;
use std::time::Duration;

const DEAD: Behaviour = Behaviour::Status {
    http: 403,
    code: 50013,
};

/// Mail from the boss to `alerts`, the rest to `noise`, which is probed every second or two
/// while it is dead; the test's own `top` keys.
fn config(dir: &Path, dovecot: &Dovecot, alerts: &str, noise: &str, top: &str) -> Config {
    Config::new(dir, dovecot)
        .top(top)
        .sinks(&format!(
            r#"
[[sink]]
name = "alerts"
kind = "webhook"
url = "{alerts}"
[[sink]]
name = "noise"
kind = "webhook"
url = "{noise}"
probe_every = "1s"
probe_max = "2s"
"#
        ))
        .buckets(
            r#"
[[bucket]]
name = "vip"
sinks = ["alerts"]
rules = [{ from = 'boss@' }]
[[bucket]]
name = "unknown"
sinks = ["noise"]
"#,
        )
}

fn count(daemon: &Daemon, bucket: &str, state: &str) -> usize {
    daemon
        .dump()
        .iter()
        .filter(|r| r["bucket"] == bucket && r["state"] == state)
        .count()
}

fn metrics(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn delivered_mail_is_pruned_pending_mail_stays_and_metrics_tell() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let alerts = discord.webhook("1", "alertsTOKEN", Behaviour::Ok);
    let noise = discord.webhook("2", "noiseTOKEN", DEAD);
    let dir = temp_dir("retention");
    let prom = dir.join("mailbeacon.prom");
    let top = format!(
        "keep_delivered = \"1s\"\nmetrics_file = \"{}\"\nmetrics_every = \"1s\"",
        prom.display()
    );
    let mut daemon = config(&dir, &dovecot, &alerts, &noise, &top).start_watching();
    for i in 0..2 {
        let boss = mail(
            "Boss <boss@corp>",
            &format!("Boss {i}"),
            "x",
            &format!("b{i}@x"),
        );
        dovecot.deliver("alice", "INBOX", &boss);
        let other = mail(
            "N <n@x.org>",
            &format!("Noise {i}"),
            "x",
            &format!("n{i}@x"),
        );
        dovecot.deliver("alice", "INBOX", &other);
    }
    wait_until(Duration::from_secs(30), "both boss mails delivered", || {
        discord.delivered_titles("alertsTOKEN").len() == 2
    });
    wait_until(Duration::from_secs(15), "metrics to count them", || {
        metrics(&prom)
            .lines()
            .any(|l| l == r#"mailbeacon_delivered_mails_total{sink="alerts"} 2"#)
    });
    let text = metrics(&prom);
    for line in [
        r#"mailbeacon_sink_state{sink="noise",state="dead"} 1"#,
        r#"mailbeacon_sink_state{sink="alerts",state="ok"} 1"#,
        r#"mailbeacon_spool_items{bucket="unknown",state="pending"} 2"#,
        r#"mailbeacon_imap_state{account="home",folder="INBOX",state="idle"} 1"#,
        r#"mailbeacon_indicator_pattern{pattern="dead"} 1"#,
        "mailbeacon_up 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
    assert!(
        text.contains(r#"mailbeacon_deliveries_total{sink="noise",outcome="dead"} 1"#),
        "{text}"
    );
    let polled = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                r#"mailbeacon_imap_last_success_timestamp_seconds{account="home",folder="INBOX"} "#,
            )
        })
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    assert!(polled > 1_700_000_000, "{text}");
    assert!(
        !text.contains("TOKEN") && !text.contains("secret"),
        "{text}"
    );

    // Delivered mail goes once keep_delivered has passed; pending mail never does.
    wait_until(Duration::from_secs(20), "the delivered mail pruned", || {
        count(&daemon, "vip", "delivered") == 0
    });
    // The prune is visible in the spool an instant before its log line is written.
    wait_until(Duration::from_secs(5), "the prune logged", || {
        daemon.log_text().contains("pruned 2 delivered item(s)")
    });
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        count(&daemon, "unknown", "pending"),
        2,
        "{:?}",
        daemon.dump()
    );
    let status = daemon.status();
    let vip = &status["buckets"][0];
    assert_eq!(
        (vip["name"].as_str(), vip["delivered"].as_u64()),
        (Some("vip"), Some(0))
    );

    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(15)), Some(0));
    assert!(metrics(&prom).lines().any(|l| l == "mailbeacon_up 0"));
}

#[test]
fn a_full_spool_stops_ingestion_loses_nothing_and_resumes_by_itself() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let alerts = discord.webhook("1", "alertsTOKEN", Behaviour::Ok);
    let noise = discord.webhook("2", "noiseTOKEN", DEAD);
    let dir = temp_dir("bound");
    // About 2 KiB: a handful of small mails.
    let top = "spool_max_mb = 0.002";
    let daemon = config(&dir, &dovecot, &alerts, &noise, top).start_watching();
    let full = || {
        daemon.status()["summary"]
            .as_str()
            .unwrap_or("")
            .contains("spool full")
    };
    // In waves, so the bound is crossed by one fetch at most and the next one is refused.
    let mut sent = 0;
    while sent < 20 && !full() {
        for _ in 0..4 {
            let m = mail(
                "N <n@x.org>",
                &format!("Bound {sent:02}"),
                "x",
                &format!("m{sent}@x"),
            );
            dovecot.deliver("alice", "INBOX", &m);
            sent += 1;
        }
        wait_until(
            Duration::from_secs(20),
            "the wave spooled or refused",
            || full() || daemon.dump().len() == sent,
        );
    }
    wait_until(Duration::from_secs(10), "the spool full", full);
    let status = daemon.status();
    assert_eq!(status["indicator"]["pattern"], "alarm", "{status}");
    let spooled = daemon.dump().len();
    assert!(
        spooled < sent,
        "{spooled} of {sent} spooled: ingestion stopped"
    );
    assert_eq!(
        status["accounts"][0]["last_uid"].as_u64(),
        Some(spooled as u64),
        "the cursor covers only what is spooled: {status}"
    );
    assert_eq!(
        dovecot.uids("alice", "INBOX").len(),
        sent,
        "the rest is still on the server"
    );
    assert!(daemon
        .log_text()
        .contains("ingestion stopped, mail stays on the server"));

    // The webhook comes back: mail is delivered, delivered mail is pruned to make room, and
    // ingestion resumes without anyone touching the daemon.
    discord.set_behaviour("noiseTOKEN", Behaviour::Ok);
    wait_until(Duration::from_secs(90), "every mail delivered", || {
        discord.delivered_titles("noiseTOKEN").len() >= sent
    });
    let titles = discord.delivered_titles("noiseTOKEN");
    for i in 0..sent {
        let n = titles
            .iter()
            .filter(|t| t.contains(&format!("Bound {i:02}")))
            .count();
        assert_eq!(n, 1, "mail {i} delivered exactly once: {titles:?}");
    }
    wait_until(Duration::from_secs(15), "the alarm over", || !full());
    let status = daemon.status();
    assert_eq!(
        status["accounts"][0]["last_uid"].as_u64(),
        Some(sent as u64),
        "{status}"
    );
    assert!(
        daemon.log_text().contains("pruned"),
        "room was made by pruning delivered mail"
    );
}
