//! OAuth 2.0 logins end to end: `mailbeacon login` as a user runs it over SSH (the device flow,
//! and the browser flow with PKCE finished by the loopback redirect or by a pasted address),
//! then the daemon logging in to a real Dovecot that checks every token at the tests' fake
//! authorization server (tests/common/fake_oauth.rs) — with XOAUTH2 and with OAUTHBEARER, an
//! access token going stale while the daemon idles, SIGKILL right after a refresh rotated the
//! token, and a revoked grant (announced in chat with the command that fixes it). No token ever
//! shows in a log, a status, an error or a notice.

use crate::common::config::Config;
use crate::common::daemon::{cli, send, temp_dir, wait_until, BIN};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use crate::common::fake_oauth::FakeOAuth;
use crate::common::notices::{description, notices_to, title};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
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

#[test]
fn device_login_then_the_daemon_delivers_with_xoauth2() {
    let oauth = FakeOAuth::start(Duration::from_secs(3600));
    let dovecot = Dovecot::start_oauth2(&oauth.url("/introspect"), "xoauth2");
    let discord = FakeDiscord::start();
    let hook = discord.webhook("1", "hookTOKEN", Behaviour::Ok);
    let config = config("oauth-device", &dovecot, &oauth.device_keys(), &hook);
    let path = config.write();

    // Approved only after a `slow_down` and an `authorization_pending` answer.
    oauth.slow_down_once();
    let text = device_login(&path, &oauth, Duration::from_secs(8));
    assert!(
        text.contains(&format!("open  {}", oauth.url("/device"))),
        "{text}"
    );
    assert!(
        text.contains("ok   signed in: the grant is stored in"),
        "{text}"
    );
    assert!(
        text.contains("ok   imap home: logged in to 127.0.0.1 as alice"),
        "{text}"
    );
    let polls = oauth.calls(DEVICE);
    let answers: Vec<_> = polls.iter().map(|c| c.error.as_deref()).collect();
    assert_eq!(
        answers,
        [Some("slow_down"), Some("authorization_pending"), None],
        "polls as RFC 8628 says: at the interval, slower after slow_down"
    );
    // The interval was 1 s; after slow_down it is 6 s (a slow machine only makes it longer).
    let gap = polls[1].at - polls[0].at;
    assert!(
        gap >= Duration::from_millis(5500),
        "polled again after {gap:?}"
    );

    readme_transcript_matches(&text);

    let grant = grant_file(&config);
    let mode = std::fs::metadata(&grant)
        .expect("grant stored")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", grant.display());

    let daemon = config.start_watching();
    send(&dovecot, "over xoauth2");
    delivered(&discord, "over xoauth2", 20);
    for (what, text) in [
        ("login's output", text),
        ("the daemon's log", daemon.log_text()),
        ("status", daemon.status().to_string()),
        ("the dump", format!("{:?}", daemon.dump())),
    ] {
        oauth.assert_no_token_in(what, &text);
    }
}

#[test]
fn oauthbearer_a_stale_token_is_renewed_and_a_kill_after_rotation_loses_nothing() {
    let oauth = FakeOAuth::start(Duration::from_secs(3600));
    let dovecot = Dovecot::start_oauth2(&oauth.url("/introspect"), "oauthbearer");
    let discord = FakeDiscord::start();
    let hook = discord.webhook("1", "hookTOKEN", Behaviour::Ok);
    let config = config("oauth-bearer", &dovecot, &oauth.device_keys(), &hook);
    device_login(&config.write(), &oauth, Duration::ZERO);
    let mut daemon = config.start_watching();
    send(&dovecot, "first");
    delivered(&discord, "first", 20);
    assert!(
        oauth.calls("refresh_token").is_empty(),
        "a fresh token needs no refresh"
    );

    // The token goes stale while the daemon idles; the server restarts, the daemon reconnects:
    // refused once, renewed, logged in; the mail that came meanwhile is delivered.
    oauth.deactivate_access_tokens();
    dovecot.restart();
    send(&dovecot, "after the restart");
    delivered(&discord, "after the restart", 40);
    let refreshes = oauth.calls("refresh_token");
    assert_eq!(refreshes.len(), 1, "{refreshes:?}");
    assert_eq!(refreshes[0].error, None);
    assert!(
        daemon.log_text().contains("renewing it once"),
        "{}",
        daemon.log_text()
    );

    // SIGKILL at once after the next refresh rotated the refresh token: the new one was on
    // disk before it was used, so the next start renews with it and logs in.
    oauth.deactivate_access_tokens();
    dovecot.restart();
    wait_until(Duration::from_secs(40), "the second refresh", || {
        oauth.calls("refresh_token").len() == 2
    });
    daemon.kill9();
    send(&dovecot, "after the kill");
    oauth.deactivate_access_tokens();
    daemon.spawn();
    delivered(&discord, "after the kill", 40);
    let refreshes = oauth.calls("refresh_token");
    assert!(
        refreshes.iter().all(|c| c.error.is_none()),
        "every refresh presented the newest refresh token: {refreshes:?}"
    );
    oauth.assert_no_token_in("the daemon's log", &daemon.log_text());
}

#[test]
fn a_revoked_grant_is_auth_failed_with_the_remedy_and_the_endpoint_is_not_hammered() {
    let oauth = FakeOAuth::start(Duration::from_secs(3600));
    let dovecot = Dovecot::start_oauth2(&oauth.url("/introspect"), "xoauth2 oauthbearer");
    let discord = FakeDiscord::start();
    let hook = discord.webhook("1", "hookTOKEN", Behaviour::Ok);
    let config = config("oauth-revoked", &dovecot, &oauth.device_keys(), &hook)
        .sinks("[notices]\nnotify_after = \"2s\"");
    let path = config.write();

    // Before any sign-in: the remedy is named at once.
    let probe = cli(&path, &["check", "--probe"]);
    let text = String::from_utf8_lossy(&probe.stdout).to_string();
    assert!(!probe.status.success(), "{text}");
    assert!(
        text.contains("FAIL imap home: login refused: no OAuth grant is stored for account home")
            && text.contains("run `mailbeacon login home`"),
        "{text}"
    );

    device_login(&path, &oauth, Duration::ZERO);
    let daemon = config.start_watching();
    oauth.revoke_all();
    dovecot.restart();
    wait_until(Duration::from_secs(40), "auth_failed", || {
        daemon.status()["accounts"][0]["state"] == "auth_failed"
    });
    let status = daemon.status();
    let error = status["accounts"][0]["last_error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        error.contains("refused the stored OAuth grant")
            && error.contains("run `mailbeacon login home`"),
        "{status}"
    );
    assert_eq!(status["indicator"]["pattern"], "dead", "{status}");

    // Refused logins back off for at least a minute: no second refresh within 15 s.
    let after = oauth.calls("refresh_token").len();
    std::thread::sleep(Duration::from_secs(15));
    assert_eq!(
        oauth.calls("refresh_token").len(),
        after,
        "the token endpoint was asked again"
    );
    assert!(after <= 1, "{:?}", oauth.calls("refresh_token"));

    // The user away from home hears of it in the channel, with what to run (after, when
    // Dovecot's restart took longer than notify_after, a notice that it was unreachable).
    let refused = || {
        notices_to(&discord, "hookTOKEN")
            .into_iter()
            .find(|n| title(n) == "IMAP home/INBOX: login refused")
    };
    wait_until(
        Duration::from_secs(20),
        "the refused grant announced",
        || refused().is_some(),
    );
    let notice = &refused().unwrap();
    let said = description(notice);
    assert!(
        said.contains("refused the stored OAuth grant")
            && said.contains("run `mailbeacon login home`")
            && !said.contains("password"),
        "{said}"
    );
    oauth.assert_no_token_in("the notice", &notice.body.to_string());

    let probe = cli(&path, &["check", "--probe"]);
    let text = String::from_utf8_lossy(&probe.stdout).to_string();
    assert!(
        !probe.status.success()
            && text.contains("invalid_grant")
            && text.contains("run `mailbeacon login home`"),
        "{text}"
    );
    for (what, text) in [
        ("check --probe", text),
        ("the daemon's log", daemon.log_text()),
        ("status", status.to_string()),
    ] {
        oauth.assert_no_token_in(what, &text);
    }
}

/// A free loopback port for the browser flow's redirect.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Runs the browser flow: opens the printed address at the fake (which approves at once and
/// answers with the redirect) and hands the redirect back with `finish`.
fn browser_login(path: &Path, finish: impl FnOnce(&mut Login, String)) -> (bool, String) {
    let mut login = Login::start(path);
    let url = login.line("the authorization address", |l| l.contains("/authorize?"));
    login.line("that it waits", |l| {
        l.starts_with("Waiting for the redirect")
    });
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let answer = agent.get(url.trim()).call().expect("open the address");
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a redirect")
        .to_string();
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    finish(&mut login, location);
    login.finish()
}

#[test]
fn browser_login_with_pkce_finishes_by_redirect_or_by_a_pasted_address() {
    let oauth = FakeOAuth::start(Duration::from_secs(3600));
    let dovecot = Dovecot::start_oauth2(&oauth.url("/introspect"), "xoauth2 oauthbearer");
    let discord = FakeDiscord::start();
    let hook = discord.webhook("1", "hookTOKEN", Behaviour::Ok);
    let dir = temp_dir("oauth-browser");
    let secret = dir.join("client.secret");
    std::fs::write(&secret, "CLIENT-SECRET-9\n").expect("secret");
    let keys = format!(
        "client_id = \"{}\"\nclient_secret_file = \"{}\"\nauthorize_url = \"{}\"\ntoken_url = \"{}\"\nscopes = [\"imap\"]\nredirect_port = {}\n",
        crate::common::fake_oauth::CLIENT_ID,
        secret.display(),
        oauth.url("/authorize"),
        oauth.url("/token"),
        free_port()
    );
    let config = Config::new(&dir, &dovecot)
        .without("password")
        .account(&format!("auth = \"oauth2\"\n[account.oauth2]\n{keys}"))
        .webhook(&hook);
    let path = config.write();

    // The address pasted back, as after a browser on another machine failed to load it.
    let (ok, text) = browser_login(&path, |login, location| login.paste(&location));
    assert!(ok && text.contains("ok   imap home: logged in"), "{text}");
    assert!(text.contains("code_challenge_method=S256"), "{text}");

    // The redirect reaching the loopback port (a browser here, or an SSH port forward).
    let (ok, text) = browser_login(&path, |_, location| {
        let body = ureq::get(&location)
            .call()
            .expect("the redirect")
            .into_body()
            .read_to_string()
            .expect("body");
        assert!(body.contains("signed in"), "{body}");
    });
    assert!(ok && text.contains("ok   signed in"), "{text}");

    // A pasted address of another sign-in is refused, and nothing is stored over the grant.
    let (ok, text) = browser_login(&path, |login, location| {
        login.paste(&location.replace("state=", "state=x"))
    });
    assert!(!ok && text.contains("belongs to another sign-in"), "{text}");
    let exchanges = oauth.calls("authorization_code");
    assert_eq!(exchanges.len(), 2, "{exchanges:?}");
    assert!(
        exchanges.iter().all(|c| c.error.is_none()),
        "PKCE verified: {exchanges:?}"
    );
    assert!(!text.contains("CLIENT-SECRET-9"), "{text}");
    oauth.assert_no_token_in("login's output", &text);
}

/// Microsoft answers a login it throttles with `NO … Suggested Backoff Time`: that is no
/// refused token, so the daemon neither renews the token (a rotation for nothing) nor shows
/// `auth_failed`; it waits as asked and logs in.
#[test]
fn a_throttled_oauth_login_waits_and_renews_nothing() {
    use crate::common::scripted_imap::{Quirks, ScriptedImap};
    let oauth = FakeOAuth::start(Duration::from_secs(3600));
    let server = ScriptedImap::start(Quirks {
        xoauth2: true,
        refuse_auth: Some("Request is throttled. Suggested Backoff Time: 3000 milliseconds".into()),
        ..Quirks::default()
    });
    let discord = FakeDiscord::start();
    let hook = discord.webhook("1", "hookTOKEN", Behaviour::Ok);
    let dir = temp_dir("oauth-throttled");
    let grant = dir.join("state/oauth/home.json");
    std::fs::create_dir_all(grant.parent().unwrap()).unwrap();
    let far = chrono::Utc::now().timestamp() + 3600;
    std::fs::write(
        &grant,
        format!(
            r#"{{"version":1,"refresh_token":"RT-0","access_token":"AT-0","expires_at":{far}}}"#
        ),
    )
    .unwrap();
    let config = format!(
        "state_dir = \"{}\"\n[[account]]\nname = \"home\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"alice\"\nauth = \"oauth2\"\n[account.oauth2]\n{}\n[[sink]]\nname = \"alerts\"\nkind = \"webhook\"\nurl = \"{hook}\"\n[[bucket]]\nname = \"unknown\"\nsinks = [\"alerts\"]\n",
        dir.join("state").display(),
        server.port,
        oauth.device_keys()
    );
    let daemon = crate::common::daemon::Daemon::start(&dir, &config);
    let mut states = std::collections::BTreeSet::new();
    wait_until(
        Duration::from_secs(30),
        "logged in after the throttle",
        || {
            let status = daemon.status();
            states.insert(
                status["accounts"][0]["state"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            );
            status["accounts"][0]["state"] == "idle"
        },
    );
    assert!(!states.contains("auth_failed"), "{states:?}");
    assert!(
        oauth.calls("refresh_token").is_empty(),
        "a throttle renews no token"
    );
    let logins = server.commands("(sasl response)");
    assert_eq!(logins.len(), 2, "{logins:?}");
    let waited = logins[1].at - logins[0].at;
    assert!(waited >= Duration::from_millis(2900), "waited {waited:?}");
}
