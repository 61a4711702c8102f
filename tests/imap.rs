//! IMAP connection paths against a real Dovecot: implicit TLS and STARTTLS with a private trust
//! anchor, an untrusted certificate (never a fallback to plaintext), a refused password — each
//! reported as its own kind by `check --probe`, and by the daemon's health and LED.

use crate::common::config::Config;
use crate::common::daemon::{cli, wait_until};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
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

/// A server that takes the connection and then says nothing (a hung proxy, a half-dead server)
/// must not hold up a stop: SIGTERM ends the daemon within seconds, not after the account's
/// 60 s read timeout (systemd would have waited, then killed it), and the LED is left dark.
#[test]
fn a_silent_server_does_not_hold_up_a_stop() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let ok = discord.webhook("1", "okTOKEN", Behaviour::Ok);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a silent server");
    let port = silent.local_addr().expect("its port").port();
    let (tx, accepted) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Holds every connection open without a byte, for as long as the test runs.
        let mut held = Vec::new();
        for conn in silent.incoming().flatten() {
            held.push(conn);
            let _ = tx.send(());
        }
    });
    let mut daemon = Config::temp("silent", &dovecot)
        .account(&format!("port = {port}\ntimeout = \"60s\""))
        .webhook(&ok)
        .start();
    accepted
        .recv_timeout(Duration::from_secs(30))
        .expect("the daemon connects to the silent server");
    // Well into the TLS handshake, which the server never answers.
    std::thread::sleep(Duration::from_secs(1));
    let asked = std::time::Instant::now();
    daemon.signal(libc::SIGTERM);
    let code = daemon.wait_exit(Duration::from_secs(10));
    let took = asked.elapsed();
    assert_eq!(code, Some(0), "{}", daemon.log_text());
    assert!(
        took < Duration::from_secs(5),
        "stopping took {took:?}:\n{}",
        daemon.log_text()
    );
    let last_led = daemon
        .trace_edges()
        .into_iter()
        .rfind(|(_, pin, _)| pin == "led");
    assert!(
        last_led.as_ref().is_some_and(|(_, _, level)| *level == 0),
        "LED left lit: {last_led:?}"
    );
}
