//! IMAP server quirks against the real daemon, with a scripted IMAP server playing the servers
//! Dovecot cannot imitate (tests/common/scripted_imap.rs) and the fake Discord: Courier's
//! default IDLE still brings mail within `idle_renew`; Microsoft's suggested backoff and
//! Gmail's `[THROTTLED]` are waited out on the same connection; `{0}` bodies, a UID left out
//! of a `FETCH` answer and a UID expunged meanwhile lose no mail and block nothing; iCloud's
//! unsolicited `FETCH` during IDLE wakes nothing; Microsoft's `EXISTS` before IDLE's `+` brings
//! the mail on the same connection; `ID` is sent when offered; a server that stops
//! answering reads as a timeout in words, and as past once the account recovered.

use crate::common::daemon::{cli, mail, temp_dir, wait_until, Daemon};
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use crate::common::scripted_imap::{Quirks, ScriptedImap};
use std::time::{Duration, Instant};

const TOKEN: &str = "quirksTOKEN";

/// The daemon watching the scripted server's INBOX (IDLE renewed every 10 s, a poll only every
/// 15 minutes), every mail to one webhook; returned once the mailbox is watched.
fn start(tag: &str, server: &ScriptedImap, discord: &FakeDiscord, keys: &str) -> Daemon {
    let dir = temp_dir(tag);
    let url = discord.webhook("1", TOKEN, Behaviour::Ok);
    let config = format!(
        r#"state_dir = "{state}"

[[account]]
name = "home"
host = "127.0.0.1"
port = {port}
tls = "none"
username = "alice"
password = "scripted-PASSWORD"
folders = ["INBOX"]
poll_interval = "15m"
idle_renew = "10s"
{keys}

[[sink]]
name = "alerts"
kind = "webhook"
url = "{url}"

[[bucket]]
name = "unknown"
sinks = ["alerts"]

[indicator]
backend = "sim"
trace = "{trace}"
"#,
        state = dir.join("state").display(),
        port = server.port,
        trace = dir.join("led.jsonl").display(),
    );
    Daemon::start(&dir, &config)
}

fn wait_watching(daemon: &Daemon) {
    wait_until(Duration::from_secs(30), "the mailbox to be watched", || {
        daemon
            .try_status()
            .is_some_and(|s| s["accounts"][0]["state"] == "idle")
    });
}

/// Mails with these subjects.
fn mails(subjects: &[&str]) -> Vec<Vec<u8>> {
    subjects
        .iter()
        .map(|s| mail("Sender <s@example.org>", s, "hello", &s.replace(' ', ".")))
        .collect()
}

/// Waits until Discord has every one of `subjects` as an embed title; panics with what it has.
fn wait_delivered(discord: &FakeDiscord, daemon: &Daemon, subjects: &[&str], within: Duration) {
    let arrived = discord.wait_until(within, |d| {
        let titles = d.delivered_titles(TOKEN);
        subjects.iter().all(|s| titles.iter().any(|t| t == s))
    });
    assert!(
        arrived,
        "delivered {:?}, expected {subjects:?}:\n{}",
        discord.delivered_titles(TOKEN),
        daemon.log_text()
    );
}

#[test]
fn courier_default_idle_mail_arrives_within_idle_renew_not_at_the_poll() {
    let server = ScriptedImap::start(Quirks {
        courier_idle: true,
        ..Quirks::default()
    });
    let discord = FakeDiscord::start();
    let daemon = start("courier", &server, &discord, "");
    wait_watching(&daemon);
    let sent = Instant::now();
    server.add(mails(&["Courier news"]));
    // Told only in the answer to DONE: the next IDLE renewal (10 s), not the 15-minute poll.
    wait_delivered(
        &discord,
        &daemon,
        &["Courier news"],
        Duration::from_secs(25),
    );
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(server.connections(), 1, "{}", daemon.log_text());
}

#[test]
fn microsofts_suggested_backoff_is_waited_out_on_the_same_connection() {
    let server = ScriptedImap::start(Quirks::default());
    let discord = FakeDiscord::start();
    let daemon = start("backoff", &server, &discord, "");
    wait_watching(&daemon);
    let throttled = "Request is throttled. Suggested Backoff Time: 2000 milliseconds";
    server.set(|q| q.refuse_searches = vec![throttled.to_string()]);
    let before = server.commands("UID SEARCH").len();
    server.add(mails(&["After the backoff"]));
    wait_delivered(
        &discord,
        &daemon,
        &["After the backoff"],
        Duration::from_secs(20),
    );

    let searches = server.commands("UID SEARCH");
    let (refused, retry) = (&searches[before], &searches[before + 1]);
    let waited = retry.at - refused.at;
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(5),
        "the retry came {waited:?} after the refusal"
    );
    // One connection, one retry: no reconnect, no storm.
    assert_eq!(server.connections(), 1, "{}", daemon.log_text());
    let storm = searches
        .iter()
        .filter(|s| s.at > refused.at && s.at < retry.at);
    assert_eq!(storm.count(), 0);
    let log = daemon.log_text();
    assert!(
        log.contains("throttles this client") && log.contains("waiting 2s as it asks"),
        "{log}"
    );
}

#[test]
fn gmails_throttled_ok_is_waited_out_before_the_next_command() {
    let server = ScriptedImap::start(Quirks::default());
    let discord = FakeDiscord::start();
    let daemon = start("throttled", &server, &discord, "");
    wait_watching(&daemon);
    server.set(|q| q.throttled_ok = true);
    server.add(mails(&["Slowly now"]));
    wait_delivered(&discord, &daemon, &["Slowly now"], Duration::from_secs(40));

    let seen = server.seen();
    let search = seen
        .iter()
        .rposition(|s| s.command.starts_with("UID SEARCH"))
        .and_then(|i| {
            seen[..=i]
                .iter()
                .rposition(|s| s.command.starts_with("UID SEARCH UID"))
        })
        .expect("a search");
    let fetch = seen[search..]
        .iter()
        .find(|s| s.command.starts_with("UID FETCH"))
        .expect("the fetch after it");
    let paused = fetch.at - seen[search].at;
    assert!(paused >= Duration::from_secs(14), "paused only {paused:?}");
    assert_eq!(server.connections(), 1);
    assert!(daemon.log_text().contains("[THROTTLED]"));
}

#[test]
fn empty_bodies_in_a_multi_message_fetch_are_fetched_again_and_delivered_readable() {
    let server = ScriptedImap::start(Quirks {
        empty_bodies: true,
        ..Quirks::default()
    });
    let discord = FakeDiscord::start();
    let daemon = start("emptybodies", &server, &discord, "");
    wait_watching(&daemon);
    let subjects = ["Body one", "Body two", "Body three"];
    server.add(mails(&subjects));
    wait_delivered(&discord, &daemon, &subjects, Duration::from_secs(20));
    let titles = discord.delivered_titles(TOKEN);
    assert_eq!(titles.len(), 3, "each mail once: {titles:?}");
    assert!(
        server
            .commands("UID FETCH")
            .iter()
            .any(|c| c.command.starts_with("UID FETCH 1,2,3")),
        "one multi-message fetch first"
    );
    let dump = daemon.dump();
    assert!(
        dump.iter()
            .all(|i| i["bucket"] == "unknown" && i["snippet"] != ""),
        "{dump:?}"
    );
}

#[test]
fn a_uid_left_out_or_expunged_loses_no_mail_and_blocks_nothing() {
    let server = ScriptedImap::start(Quirks {
        omit_once: true,
        ..Quirks::default()
    });
    let discord = FakeDiscord::start();
    let daemon = start("omitted", &server, &discord, "");
    wait_watching(&daemon);
    server.add(mails(&["Kept one", "Kept two", "Left out once"]));
    wait_delivered(
        &discord,
        &daemon,
        &["Kept one", "Kept two", "Left out once"],
        Duration::from_secs(20),
    );

    // UID 4 is gone by the time it is fetched: skipped, and the mail after it still comes.
    server.set(|q| q.vanishing = Some(4));
    server.add(mails(&["Expunged meanwhile"]));
    wait_until(Duration::from_secs(30), "the cursor past uid 4", || {
        daemon.status()["accounts"][0]["last_uid"] == 4
    });
    server.set(|q| q.vanishing = None);
    server.add(mails(&["After the gap"]));
    wait_delivered(
        &discord,
        &daemon,
        &["After the gap"],
        Duration::from_secs(20),
    );
    let titles = discord.delivered_titles(TOKEN);
    assert_eq!(titles.len(), 4, "{titles:?}");
    assert_eq!(daemon.status()["accounts"][0]["last_uid"], 5);
    assert!(daemon
        .log_text()
        .contains("uid 4 was expunged before it could be fetched"));
}

#[test]
fn an_icloud_like_server_gets_an_id_and_its_flag_updates_wake_nothing() {
    let server = ScriptedImap::start(Quirks {
        unsolicited_fetch: true,
        offer_id: true,
        ..Quirks::default()
    });
    let discord = FakeDiscord::start();
    let daemon = start("icloud", &server, &discord, "");
    wait_watching(&daemon);
    let ids = server.commands("ID ");
    assert_eq!(ids.len(), 1, "{:?}", server.seen());
    assert!(
        ids[0]
            .command
            .starts_with("ID (\"name\" \"mailbeacon\" \"version\""),
        "{:?}",
        ids[0]
    );

    // Ten flag updates a second for three seconds: still the same IDLE.
    let idles = server.commands("IDLE").len();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        server.commands("IDLE").len(),
        idles,
        "woken by flag updates"
    );
    server.add(mails(&["Through the noise"]));
    wait_delivered(
        &discord,
        &daemon,
        &["Through the noise"],
        Duration::from_secs(5),
    );
    assert_eq!(server.connections(), 1, "{}", daemon.log_text());
}

#[test]
fn a_server_that_stops_answering_reads_as_a_timeout_and_then_as_past() {
    let server = ScriptedImap::start(Quirks {
        silent_first: true,
        ..Quirks::default()
    });
    let discord = FakeDiscord::start();
    let daemon = start("timeout", &server, &discord, "timeout = \"2s\"");
    wait_until(Duration::from_secs(20), "the timeout in status", || {
        let a = &daemon.status()["accounts"][0];
        a["state"] == "backoff"
            && a["last_error"] == "no answer from the server within 2s"
            && a["recovered_at"].is_null()
    });
    wait_watching(&daemon);
    let status = daemon.status();
    let account = &status["accounts"][0];
    assert_eq!(account["last_error"], "no answer from the server within 2s");
    assert!(account["last_error_at"].is_string(), "{account}");
    assert!(account["recovered_at"].is_string(), "{account}");
    let table = cli(&daemon.config, &["status"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("no answer from the server within 2s (recovered "),
        "{table}"
    );
    let log = daemon.log_text();
    assert!(log.contains("no answer from the server within 2s"), "{log}");
    assert!(!log.contains("os error 11"), "{log}");
    assert!(!log.contains("scripted-PASSWORD"));
}

/// Microsoft can tell of new mail before its `+` to IDLE. The imap crate then waits for IDLE's
/// end that never comes, until `timeout`; the daemon takes that for what it is, ends the IDLE
/// and searches on the same connection: the mail arrives within `timeout`, the account is not
/// shown in error, and nothing reconnects.
#[test]
fn exists_before_idles_continuation_brings_the_mail_on_the_same_connection() {
    let server = ScriptedImap::start(Quirks::default());
    let discord = FakeDiscord::start();
    let daemon = start("early-exists", &server, &discord, "timeout = \"3s\"");
    wait_watching(&daemon);
    let subject = "Told before the plus";
    server.set(|q| q.exists_before_idle = mails(&[subject]).pop());
    // The next IDLE starts at the 10 s renewal; then up to `timeout` (3 s) for its `+`.
    wait_delivered(&discord, &daemon, &[subject], Duration::from_secs(30));
    wait_watching(&daemon);
    let status = daemon.status();
    assert_eq!(
        status["accounts"][0]["last_error"],
        serde_json::Value::Null,
        "{status}"
    );
    assert_eq!(server.connections(), 1, "{}", daemon.log_text());
    assert!(
        daemon.log_text().contains("before its + to IDLE"),
        "{}",
        daemon.log_text()
    );
}
