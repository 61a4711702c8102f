//! IMAP connection paths against a real Dovecot: implicit TLS and STARTTLS with a private trust
//! anchor, an untrusted certificate (never a fallback to plaintext), a refused password — each
//! reported as its own kind by `check --probe`, and by the daemon's health and LED.

mod common;

use common::daemon::{cli, temp_dir, wait_until, Daemon};
use common::dovecot::Dovecot;
use common::fake_discord::{Behaviour, FakeDiscord};
use std::time::Duration;

fn config(dir: &std::path::Path, account: &str, sink_url: &str) -> String {
    format!(
        r#"
state_dir = "{state}"
[[account]]
name = "home"
host = "127.0.0.1"
username = "alice"
{account}
[[sink]]
name = "alerts"
kind = "webhook"
url = "{sink_url}"
[[bucket]]
name = "unknown"
sinks = ["alerts"]
[indicator]
backend = "sim"
trace = "{trace}"
"#,
        state = dir.join("state").display(),
        trace = dir.join("led.jsonl").display(),
    )
}

fn probe(tag: &str, account: &str, sink_url: &str) -> (bool, String) {
    let dir = temp_dir(tag);
    let path = dir.join("c.toml");
    std::fs::write(&path, config(&dir, account, sink_url)).unwrap();
    let out = cli(&path, &["check", "--probe"]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn check_probe_tells_each_failure_apart() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let ok = discord.webhook("1", "okTOKEN", Behaviour::Ok);
    let gone = discord.webhook(
        "2",
        "goneTOKEN",
        Behaviour::Status {
            http: 404,
            code: 10015,
        },
    );
    let ca = dovecot.ca_file().display().to_string();
    let (imaps, imap) = (dovecot.imaps_port(), dovecot.imap_port());

    let (passed, text) = probe(
        "implicit",
        &format!("port = {imaps}\npassword = \"secret\"\nca_file = \"{ca}\""),
        &ok,
    );
    assert!(
        passed && text.contains("ok   imap home/INBOX") && text.contains("ok   sink alerts"),
        "{text}"
    );
    assert!(
        discord.posts_to("okTOKEN").is_empty(),
        "a probe never posts"
    );

    let (passed, text) = probe(
        "starttls",
        &format!("port = {imap}\ntls = \"starttls\"\npassword = \"secret\"\nca_file = \"{ca}\""),
        &ok,
    );
    assert!(passed && text.contains("ok   imap home/INBOX"), "{text}");

    let (passed, text) = probe(
        "untrusted",
        &format!("port = {imaps}\npassword = \"secret\""),
        &ok,
    );
    assert!(!passed && text.contains("FAIL imap home: TLS"), "{text}");

    let (passed, text) = probe(
        "password",
        &format!("port = {imaps}\npassword = \"wrong-PASSWORD\"\nca_file = \"{ca}\""),
        &ok,
    );
    assert!(
        !passed && text.contains("FAIL imap home: login refused"),
        "{text}"
    );
    assert!(!text.contains("wrong-PASSWORD"), "{text}");

    let (passed, text) = probe(
        "sink",
        &format!("port = {imaps}\npassword = \"secret\"\nca_file = \"{ca}\""),
        &gone,
    );
    assert!(
        !passed && text.contains("FAIL sink alerts: HTTP 404 (code 10015"),
        "{text}"
    );
    assert!(!text.contains("goneTOKEN"), "{text}");
}

#[test]
fn a_refused_login_shows_as_auth_failed_and_on_the_led() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let ok = discord.webhook("1", "okTOKEN", Behaviour::Ok);
    let dir = temp_dir("authfail");
    let account = format!(
        "port = {}\npassword = \"wrong\"\nca_file = \"{}\"",
        dovecot.imaps_port(),
        dovecot.ca_file().display()
    );
    let daemon = Daemon::start(&dir, &config(&dir, &account, &ok));
    wait_until(Duration::from_secs(30), "auth_failed in status", || {
        daemon.status()["accounts"][0]["state"] == "auth_failed"
    });
    let status = daemon.status();
    assert_eq!(status["indicator"]["pattern"], "dead", "{status}");
    assert!(
        status["accounts"][0]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("login refused"),
        "{status}"
    );
}
