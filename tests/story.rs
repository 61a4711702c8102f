//! The headline test: the 403 story that lost three weeks of mail, re-enacted against a real
//! Dovecot, a fake Discord and the real binary. 20 mails arrive while the `unknown` bucket's
//! webhook answers 403: none may be lost, the sink must show dead in `status` and on the LED,
//! the dead webhook must not be hammered, and after the URL is rotated and the daemon gets
//! SIGHUP, every mail must arrive exactly once at the right sink. Meanwhile the user hears of
//! it where they are: the dead webhook is announced once in the working `#alerts` channel, and
//! its end, with the mails it held, once more.

use crate::common::config::Config;
use crate::common::daemon::{blinks, cli, mail, temp_dir, wait_until};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use crate::common::notices::{description, mail_titles, notices_to, title};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// alice's INBOX with her password in a file; Stripe and the boss to `alerts`, everything
/// else to `noise`, whose URL lives in a file so it can be rotated; a buzzer and spool levels.
fn config(dir: &Path, dovecot: &Dovecot, alerts: &str, noise: &str) -> Config {
    let pass = write(dir, "imap.pass", "secret\n");
    let noise_file = write(dir, "noise.url", &format!("{noise}\n"));
    Config::new(dir, dovecot)
        .account(&format!("password_file = \"{}\"", pass.display()))
        .sinks(&format!(
            r#"
[[sink]]
name = "alerts"
kind = "webhook"
url = "{alerts}"

[[sink]]
name = "noise"
kind = "webhook"
url_file = "{noise_file}"
probe_every = "3s"
"#,
            noise_file = noise_file.display(),
        ))
        .buckets(
            r#"
[[bucket]]
name = "vip"
severity = "P1"
sinks = ["alerts"]
rules = [{ from = '(?i)boss@corp\.example' }]

[[bucket]]
name = "stripe"
severity = "P2"
sinks = ["alerts"]
rules = [{ from = '@stripe\.com>?$' }, { subject = '(?i)payment' }]

[[bucket]]
name = "unknown"
severity = "P3"
sinks = ["noise"]

[indicator]
buzzer = { line = 27 }
spool_warn = 50
spool_alarm = 500

[notices]
notify_after = "2s"
"#,
        )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Narration for `cargo test --test integration story:: -- --nocapture`.
fn say(text: &str) {
    eprintln!("story: {text}");
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn a_403_webhook_loses_nothing_and_is_seen_at_once() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let alerts = discord.webhook("100", "alertsTOKEN", Behaviour::Ok);
    let noise_old = discord.webhook(
        "200",
        "noiseOLDTOKEN",
        Behaviour::Status {
            http: 403,
            code: 50013,
        },
    );
    let dir = temp_dir("story");
    say("a private Dovecot and a Discord stand-in are up; the `unknown` bucket's webhook answers 403");
    let mut daemon = config(&dir, &dovecot, &alerts, &noise_old).start_watching();

    say("mailbeacon runs and watches alice's INBOX; now 20 unclassified mails and 2 Stripe mails arrive");
    // Twenty unclassified mails and two Stripe receipts arrive.
    for i in 0..20 {
        dovecot.deliver(
            "alice",
            "INBOX",
            &mail(
                "Newsletter <news@example.org>",
                &format!("Story mail {i:02}"),
                "Hello",
                &format!("story{i}@example.org"),
            ),
        );
    }
    dovecot.deliver(
        "alice",
        "INBOX",
        &mail(
            "Stripe <receipts@stripe.com>",
            "Receipt one",
            "paid",
            "r1@stripe.com",
        ),
    );
    dovecot.deliver(
        "alice",
        "INBOX",
        &mail(
            "Billing <x@example.com>",
            "Payment failed",
            "card",
            "r2@example.com",
        ),
    );

    // Nothing is lost: all 22 are in the spool; the 20 wait in `pending`.
    wait_until(Duration::from_secs(30), "22 mails in the spool", || {
        daemon.dump().len() == 22
    });
    wait_until(Duration::from_secs(30), "the noise sink to be dead", || {
        daemon.sink_state("noise") == "dead"
    });
    let dead_seen_at = now();
    say("all 22 mails are in the spool; `status` shows the noise sink dead");
    let dump = daemon.dump();
    let unknown: Vec<_> = dump.iter().filter(|r| r["bucket"] == "unknown").collect();
    assert_eq!(unknown.len(), 20);
    assert!(
        unknown.iter().all(|r| r["state"] == "pending"),
        "a failed POST never marks delivered"
    );
    assert!(unknown
        .iter()
        .any(|r| r["last_error"].as_str().unwrap_or("").contains("403")));
    let status = daemon.status();
    assert_eq!(status["indicator"]["pattern"], "dead", "{status}");
    let noise = status["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "noise")
        .unwrap()
        .clone();
    assert!(
        noise["last_error"].as_str().unwrap().contains("50013"),
        "{noise}"
    );
    assert!(
        !status.to_string().contains("noiseOLDTOKEN"),
        "no secret in status"
    );

    // Other sinks keep working meanwhile: the Stripe bucket reached its channel.
    wait_until(Duration::from_secs(20), "stripe mail delivered", || {
        mail_titles(&discord, "alertsTOKEN").len() == 2
    });

    // The user hears of it in the channel that still works, once `notify_after` (2 s) passed.
    wait_until(
        Duration::from_secs(20),
        "the dead noise webhook announced in #alerts",
        || !notices_to(&discord, "alertsTOKEN").is_empty(),
    );
    let notice = &notices_to(&discord, "alertsTOKEN")[0];
    assert_eq!(title(notice), "Sink noise is dead");
    assert!(
        description(notice).contains("50013")
            && description(notice).contains("systemctl reload mailbeacon"),
        "what and the remedy: {}",
        description(notice)
    );
    assert_eq!(
        notice.body["allowed_mentions"],
        serde_json::json!({ "parse": [] }),
        "a notice pings nobody"
    );
    say("#alerts got one notice: the noise webhook is dead, with the remedy");

    // The LED shows the dead pattern (4 Hz) and the buzzer chirped.
    // (Mail now arrives within the boot self-test, so the pattern may start after it ends.)
    let fast = || {
        blinks(
            &daemon.trace_edges(),
            "led",
            dead_seen_at - 1.0,
            125.0,
            250.0,
            4,
        )
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !fast() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let edges = daemon.trace_edges();
    assert!(fast(), "LED does not blink fast: {edges:?}");
    assert!(
        edges.iter().filter(|e| e.1 == "buzzer" && e.2 == 1).count() >= 2,
        "boot chirp and dead chirp: {edges:?}"
    );

    // The dead webhook was not hammered: one post, then slow probes only (not one per mail per poll).
    std::thread::sleep(Duration::from_secs(3));
    let posts = discord.posts_to("noiseOLDTOKEN").len();
    let all = discord
        .requests()
        .iter()
        .filter(|r| r.path.contains("noiseOLDTOKEN"))
        .count();
    assert!(posts <= 2, "{posts} posts to a dead webhook");
    assert!(all <= 6, "{all} requests to a dead webhook");

    say(&format!("the LED blinks the dead pattern; the dead webhook saw {posts} post(s) and {all} request(s) in all"));
    // One notice per state change: nothing more while it lasts (remind_every is 6 h), and
    // nothing at all to the dead webhook.
    assert_eq!(
        notices_to(&discord, "alertsTOKEN").len(),
        1,
        "one announcement"
    );
    assert!(discord
        .posts_to("noiseOLDTOKEN")
        .iter()
        .all(|r| !crate::common::notices::is_notice(r)));
    // The operator rotates the webhook URL and reloads.
    let noise_new = discord.webhook("201", "noiseNEWTOKEN", Behaviour::Ok);
    write(&dir, "noise.url", &format!("{noise_new}\n"));
    daemon.signal(libc::SIGHUP);
    wait_until(Duration::from_secs(30), "the backlog to drain", || {
        daemon.dump().iter().all(|r| r["state"] == "delivered")
    });

    say("the webhook URL was rotated and the daemon got SIGHUP: the backlog drained");
    // Its end is told where it was announced, once, with how many mails it held.
    wait_until(
        Duration::from_secs(30),
        "the recovery notice in #alerts",
        || notices_to(&discord, "alertsTOKEN").len() >= 2,
    );
    let over = &notices_to(&discord, "alertsTOKEN")[1];
    assert_eq!(title(over), "Over: Sink noise is dead");
    assert!(
        description(over).contains("20 mails held back meanwhile; all delivered now"),
        "{}",
        description(over)
    );
    say(&format!(
        "#alerts got the recovery notice: {}",
        description(over)
    ));
    // Every mail arrived exactly once, at the right sink.
    let titles = discord.delivered_titles("noiseNEWTOKEN");
    for i in 0..20 {
        let t = format!("Story mail {i:02}");
        assert_eq!(
            titles.iter().filter(|x| **x == t).count(),
            1,
            "{t} in {titles:?}"
        );
    }
    assert_eq!(titles.len(), 20);
    let mut stripe = mail_titles(&discord, "alertsTOKEN");
    stripe.sort();
    assert_eq!(stripe, vec!["Payment failed", "Receipt one"]);
    assert!(discord.delivered_titles("noiseOLDTOKEN").is_empty());
    assert!(
        discord.posts_to("noiseNEWTOKEN").len() <= 4,
        "a backlog of 20 drains in batches"
    );
    assert!(
        discord
            .requests()
            .iter()
            .all(|r| r.path.starts_with("/api/v10/")),
        "URLs normalised to v10"
    );
    for p in discord.posts_to("noiseNEWTOKEN") {
        assert_eq!(
            p.body["allowed_mentions"],
            serde_json::json!({ "parse": [] })
        );
        assert_eq!(p.query_param("wait"), Some("true"));
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        notices_to(&discord, "alertsTOKEN").len(),
        2,
        "one announcement and one recovery, no more"
    );
    assert!(notices_to(&discord, "noiseNEWTOKEN").is_empty());
    let status = daemon.status();
    assert_eq!(status["notices"]["last_kind"], "resolved", "{status}");
    assert_eq!(
        status["notices"]["last_delivered_to"],
        serde_json::json!(["alerts"])
    );
    let dump = daemon.dump();
    assert!(dump.iter().all(|r| r["discord_message_ids"]
        .as_array()
        .is_some_and(|a| a.len() == 1)));
    wait_until(
        Duration::from_secs(5),
        "status to show the sink alive",
        || daemon.sink_state("noise") == "ok",
    );

    // Mail on the server was only peeked at.
    for uid in dovecot.uids("alice", "INBOX") {
        assert!(
            !dovecot.is_seen("alice", "INBOX", uid),
            "uid {uid} marked \\Seen"
        );
    }

    say("every mail arrived exactly once at the right sink; none was marked \\Seen on the server");
    // SIGTERM: clean exit 0, LED off at the end.
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(15)), Some(0));
    let last_led = daemon
        .trace_edges()
        .into_iter()
        .rfind(|e| e.1 == "led")
        .unwrap();
    assert_eq!(last_led.2, 0, "LED ends off");
    let log = daemon.log_text();
    assert!(
        !log.contains("noiseOLDTOKEN")
            && !log.contains("noiseNEWTOKEN")
            && !log.contains("secret\n"),
        "secrets in the log"
    );

    // With the daemon gone, the CLI reads the spool itself.
    let out = cli(&daemon.config, &["status", "--json"]);
    assert!(out.status.success());
    let offline: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(offline["indicator"]["pattern"], "off");
    assert_eq!(
        offline["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["delivered"].as_u64().unwrap())
            .sum::<u64>(),
        22
    );
    say("SIGTERM: clean exit 0, LED off; try `mailbeacon spool dump --config <dir>/mailbeacon.toml`");
    say(&format!("this run's files: {}", dir.display()));
}
