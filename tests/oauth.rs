//! OAuth 2.0 logins end to end: `mailbeacon login` as a user runs it over SSH (the device flow,
//! and the browser flow with PKCE finished by the loopback redirect or by a pasted address),
//! then the daemon logging in to a real Dovecot that checks every token at the tests' fake
//! authorization server (tests/common/fake_oauth.rs) — with XOAUTH2 and with OAUTHBEARER, an
//! access token going stale while the daemon idles, SIGKILL right after a refresh rotated the
//! token, and a revoked grant (announced in chat with the command that fixes it). No token ever
//! shows in a log, a status, an error or a notice.

mod browser;
mod daemon;

use crate::common::config::Config;
use crate::common::daemon::{wait_until, BIN};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::FakeDiscord;
use crate::common::fake_oauth::FakeOAuth;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// alice's INBOX with `auth = "oauth2"` and these `[account.oauth2]` keys, one webhook.
fn config(tag: &str, dovecot: &Dovecot, oauth2: &str, webhook: &str) -> Config {
    Config::temp(tag, dovecot)
        .without("password")
        .account(&format!("auth = \"oauth2\"\n[account.oauth2]\n{oauth2}"))
        .webhook(webhook)
}

/// `mailbeacon login home` running, its stdout read line by line.
struct Login {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Login {
    fn start(config: &Path) -> Login {
        let mut child = Command::new(BIN)
            .args(["login", "home", "--config"])
            .arg(config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run mailbeacon login");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for out in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Login {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line (from now on) that satisfies `want`.
    fn line(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line.clone());
            if want(&line) {
                return line;
            }
        }
        panic!("login never printed {what}:\n{}", self.seen.join("\n"));
    }

    fn paste(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{text}").expect("paste");
    }

    /// Waits for the exit; its success and everything it printed.
    fn finish(mut self) -> (bool, String) {
        let status = self.child.wait().expect("wait for login");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        (status.success(), self.seen.join("\n"))
    }
}

/// Runs the device flow as a user would: reads the code it prints and approves it at the fake
/// after `approve_after`. Returns what `login` printed.
fn device_login(config: &Path, oauth: &FakeOAuth, approve_after: Duration) -> String {
    let mut login = Login::start(config);
    let code_line = login.line("the code", |l| l.contains("Enter the code"));
    let code = code_line
        .split_whitespace()
        .last()
        .expect("a code")
        .to_string();
    std::thread::sleep(approve_after);
    oauth.approve(&code);
    let (ok, text) = login.finish();
    assert!(ok, "login failed:\n{text}");
    text
}

/// Waits until a mail with `subject` reached the webhook.
fn delivered(discord: &FakeDiscord, subject: &str, secs: u64) {
    wait_until(Duration::from_secs(secs), subject, || {
        discord
            .delivered_titles("hookTOKEN")
            .iter()
            .any(|t| t.contains(subject))
    });
}

fn grant_file(config: &Config) -> std::path::PathBuf {
    let text = config.text();
    let state = text
        .lines()
        .find_map(|l| l.strip_prefix("state_dir = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("state_dir");
    Path::new(state).join("oauth/home.json")
}

/// The `login` transcript of docs/configuration.md is what `login` prints: each of its lines, up to where the
/// account's own values begin, starts a line of the real run's output.
fn readme_transcript_matches(output: &str) {
    const DOC: &str = include_str!("../docs/configuration.md");
    let block = DOC
        .split("sudo mailbeacon login work --config /etc/mailbeacon/mailbeacon.toml\n```\n```\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the login transcript of docs/configuration.md");
    let variable = [
        " work",
        "https://",
        "ABCD",
        "/var/lib",
        "outlook.office365.com",
        "15 minutes",
    ];
    let mut checked = 0;
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let cut = variable
            .iter()
            .filter_map(|v| line.find(v))
            .min()
            .unwrap_or(line.len());
        let fixed = &line[..cut];
        assert!(
            output.lines().any(|l| l.starts_with(fixed)),
            "docs/configuration.md shows {line:?}, but login printed no line starting {fixed:?}:\n{output}"
        );
        checked += 1;
    }
    assert!(checked >= 6, "{block}");
}
