//! IMAP connection paths against a real Dovecot: implicit TLS and STARTTLS with a private trust
//! anchor, an untrusted certificate (never a fallback to plaintext), a refused password — each
//! reported as its own kind by `check --probe`, and by the daemon's health and LED.

mod common;

use common::config::Config;
use common::daemon::{cli, wait_until};
use common::dovecot::Dovecot;
use common::fake_discord::{Behaviour, FakeDiscord};
use std::time::Duration;

/// `check --probe` on `config`: whether it passed, and what it said.
fn probe(config: Config) -> (bool, String) {
    let out = cli(&config.write(), &["check", "--probe"]);
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
    let home = |tag| Config::temp(tag, &dovecot);

    let (passed, text) = probe(home("implicit").webhook(&ok));
    assert!(
        passed && text.contains("ok   imap home/INBOX") && text.contains("ok   sink alerts"),
        "{text}"
    );
    assert!(
        discord.posts_to("okTOKEN").is_empty(),
        "a probe never posts"
    );

    let starttls = format!("port = {}\ntls = \"starttls\"", dovecot.imap_port());
    let (passed, text) = probe(home("starttls").account(&starttls).webhook(&ok));
    assert!(passed && text.contains("ok   imap home/INBOX"), "{text}");

    let (passed, text) = probe(home("untrusted").without("ca_file").webhook(&ok));
    assert!(!passed && text.contains("FAIL imap home: TLS"), "{text}");

    let wrong = home("password").account("password = \"wrong-PASSWORD\"");
    let (passed, text) = probe(wrong.webhook(&ok));
    assert!(
        !passed && text.contains("FAIL imap home: login refused"),
        "{text}"
    );
    assert!(!text.contains("wrong-PASSWORD"), "{text}");

    let (passed, text) = probe(home("sink").webhook(&gone));
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
    let daemon = Config::temp("authfail", &dovecot)
        .account("password = \"wrong\"")
        .webhook(&ok)
        .start();
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
