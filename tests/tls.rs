//! Self-signed home servers, against a real Dovecot whose certificate is the one
//! `openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost` makes (CA:TRUE, no
//! subjectAltName): given as `ca_file` it is trusted as the server's own, a pinned
//! `tls_fingerprint` is trusted whatever its issuer, a wrong pin is refused with both
//! fingerprints, and `check --probe` shows the fingerprint OpenSSL computes — trusted or not —
//! with a sentence saying what to do when it is refused.

use crate::common::config::Config;
use crate::common::daemon::{cli, send, wait_until};
use crate::common::dovecot::{Dovecot, PASSWORD};
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use std::path::Path;
use std::time::Duration;

/// `sha256:AB:CD:…` of a PEM certificate, as `openssl x509 -fingerprint -sha256` prints it.
fn openssl_fingerprint(pem: &Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(pem)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let (_, hex) = text
        .trim()
        .split_once('=')
        .expect("openssl's fingerprint line");
    format!("sha256:{hex}")
}

/// `check --probe` on `config`: whether it passed, and what it printed.
fn probe(config: &Config) -> (bool, String) {
    let out = cli(&config.write(), &["check", "--probe"]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Mail sent to alice's INBOX reaches the webhook `token`.
fn delivers(dovecot: &Dovecot, discord: &FakeDiscord, token: &str, subject: &str) -> bool {
    send(dovecot, subject);
    discord.wait_until(Duration::from_secs(20), |d| {
        d.delivered_titles(token)
            .iter()
            .any(|t| t.contains(subject))
    })
}

#[test]
fn a_one_liner_certificate_given_as_ca_file_is_trusted_and_mail_is_delivered() {
    let dovecot = Dovecot::start_one_liner();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "oneTOKEN", Behaviour::Ok);
    // The certificate names localhost only (its CN): the host the user connects to.
    let daemon = Config::temp("tls-one-liner", &dovecot)
        .account("host = \"localhost\"")
        .webhook(&url)
        .start_watching();
    assert!(
        delivers(&dovecot, &discord, "oneTOKEN", "Home server mail"),
        "{}",
        daemon.log_text()
    );
}

#[test]
fn a_pinned_fingerprint_is_trusted_without_ca_file_and_mail_is_delivered() {
    let dovecot = Dovecot::start_one_liner();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "pinTOKEN", Behaviour::Ok);
    let pin = openssl_fingerprint(&dovecot.ca_file());
    // No ca_file, and host 127.0.0.1, a name the certificate does not hold: the pin alone
    // identifies the server. Lower case without colons, as some tools print it.
    let written = pin
        .replace(':', "")
        .to_lowercase()
        .replacen("sha256", "sha256:", 1);
    let daemon = Config::temp("tls-pin", &dovecot)
        .without("ca_file")
        .account(&format!("tls_fingerprint = \"{written}\""))
        .webhook(&url)
        .start_watching();
    assert!(
        delivers(&dovecot, &discord, "pinTOKEN", "Pinned mail"),
        "{}",
        daemon.log_text()
    );
}

#[test]
fn a_wrong_pin_is_refused_naming_both_fingerprints_in_status_and_probe() {
    let dovecot = Dovecot::start_one_liner();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "wrongTOKEN", Behaviour::Ok);
    let real = openssl_fingerprint(&dovecot.ca_file());
    let wrong = format!("sha256:{}", ["5A"; 32].join(":"));
    let config = Config::temp("tls-wrong-pin", &dovecot)
        .without("ca_file")
        .account(&format!("tls_fingerprint = \"{wrong}\""))
        .webhook(&url);
    let expected = format!("has fingerprint {real}, not the pinned {wrong}");

    let daemon = config.start();
    wait_until(Duration::from_secs(30), "tls_failed in status", || {
        daemon.status()["accounts"][0]["state"] == "tls_failed"
    });
    let status = daemon.status();
    let error = status["accounts"][0]["last_error"].as_str().unwrap_or("");
    assert!(error.contains(&expected), "{status}");
    assert!(error.contains("check --probe"), "{error}");
    assert!(!error.contains(PASSWORD), "{error}");
    assert_eq!(status["indicator"]["pattern"], "dead", "{status}");
    assert!(
        daemon.log_text().contains(&expected),
        "{}",
        daemon.log_text()
    );

    let (passed, text) = probe(&config);
    assert!(!passed, "{text}");
    assert!(
        text.contains(&format!(
            "info imap home: certificate {real} (CN=localhost, self-signed"
        )) && text.contains(&format!(
            "FAIL imap home: TLS: the server's certificate {expected}"
        )),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(
        discord.posts_to("wrongTOKEN").is_empty(),
        "a probe never posts"
    );
}

#[test]
fn check_probe_shows_the_fingerprint_and_says_what_to_do_when_refused() {
    let dovecot = Dovecot::start_one_liner();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "probeTOKEN", Behaviour::Ok);
    let fingerprint = openssl_fingerprint(&dovecot.ca_file());
    let home = |tag: &str| Config::temp(tag, &dovecot).webhook(&url);

    let (passed, text) = probe(&home("tls-probe-ok").account("host = \"localhost\""));
    assert!(passed, "{text}");
    assert!(
        text.contains(&format!(
            "ok   imap home: certificate {fingerprint} (CN=localhost, self-signed, valid "
        )) && text.contains("ok   imap home/INBOX"),
        "{text}"
    );

    let starttls = format!(
        "host = \"localhost\"\nport = {}\ntls = \"starttls\"",
        dovecot.imap_port()
    );
    let (passed, text) = probe(&home("tls-probe-starttls").account(&starttls));
    assert!(
        passed && text.contains(&format!("ok   imap home: certificate {fingerprint}")),
        "{text}"
    );

    // Not given: refused as what it is, with the remedy, and the fingerprint to pin.
    let untrusted = home("tls-probe-untrusted")
        .without("ca_file")
        .account("host = \"localhost\"");
    let (passed, text) = probe(&untrusted);
    assert!(!passed, "{text}");
    assert!(
        text.contains(&format!("info imap home: certificate {fingerprint}"))
            && text.contains(
                "FAIL imap home: TLS: the server's certificate (CN=localhost) is a CA certificate"
            )
            && text.contains("give that certificate itself as ca_file")
            && text.contains(&format!("tls_fingerprint = \"{fingerprint}\"")),
        "{text}"
    );

    // Given, but connected to by a name it does not hold.
    let (passed, text) = probe(&home("tls-probe-name"));
    assert!(!passed, "{text}");
    assert!(
        text.contains(
            "FAIL imap home: TLS: the server's certificate is for localhost, not for \"127.0.0.1\""
        ) && text.contains("set host to a name the certificate holds"),
        "{text}"
    );
}
