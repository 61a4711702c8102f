//! `mailbeacon setup` signing an OAuth account in through the fake authorization server.

use super::{mode, scripted_setup};
use crate::common::daemon::{temp_dir, wait_until, Daemon};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use crate::common::fake_oauth::FakeOAuth;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn setup_signs_an_oauth_account_in_and_the_daemon_delivers_with_the_grant() {
    let oauth = FakeOAuth::start(Duration::from_secs(3600));
    let dovecot = Dovecot::start_oauth2(&oauth.url("/introspect"), "xoauth2");
    let discord = FakeDiscord::start();
    let url = discord.webhook("1403", "setuptoken-oauth", Behaviour::Ok);
    let channel = discord.webhook_channel("setuptoken-oauth");
    let dir = temp_dir("setup-oauth");
    let config = dir.join("mailbeacon.toml");
    std::fs::write(dir.join("given-webhook"), &url).expect("write");
    let path = |name: &str| dir.join(name).to_str().expect("utf-8").to_string();
    let mut child = scripted_setup(&dir, &dovecot)
        .args(["--username", "alice", "--auth", "oauth2"])
        .args(["--client-id", crate::common::fake_oauth::CLIENT_ID])
        .args(["--oauth-device-url", &oauth.url("/devicecode")])
        .args(["--oauth-token-url", &oauth.url("/token")])
        .args(["--oauth-scopes", "offline_access, imap"])
        .args([
            "--webhook-file",
            &path("given-webhook"),
            "--buckets",
            "none",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run setup");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // The user reads the code off the terminal and approves it on their phone.
    let mut shown = String::new();
    let code = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("setup showed no code:\n{shown}"));
        shown.push_str(&line);
        shown.push('\n');
        if line.contains("Enter the code") {
            break line.split_whitespace().last().expect("a code").to_string();
        }
    };
    oauth.approve(&code);
    let out = child.wait_with_output().expect("setup ends");
    for line in lines.try_iter() {
        shown.push_str(&line);
        shown.push('\n');
    }
    assert!(
        out.status.success(),
        "{shown}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        shown.contains("ok   imap home: logged in to 127.0.0.1 as alice"),
        "{shown}"
    );
    oauth.assert_no_token_in("setup's output", &shown);
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains("auth = \"oauth2\""), "{text}");
    let grant = dir.join("state/oauth/home.json");
    assert_eq!(mode(&grant), 0o600, "the grant is private");

    let daemon = Daemon::start(&dir, &text);
    crate::common::config::wait_watching(&daemon);
    dovecot.deliver(
        "alice",
        "INBOX",
        &crate::common::daemon::mail(
            "Ann <ann@example.com>",
            "Signed in by setup",
            "Hi.",
            "<o1@example.com>",
        ),
    );
    wait_until(Duration::from_secs(30), "the mail in the channel", || {
        discord
            .titles_in(&channel)
            .iter()
            .any(|t| t.contains("Signed in by setup"))
    });
}
