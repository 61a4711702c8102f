//! Secrets never leave (docs/design.md invariant 8): every failure path runs with known, distinctive
//! secret values at debug log level — a refused IMAP password, a TLS failure, webhooks answering
//! 401, 403, 404, 429 and 5xx, a bot whose channel is forbidden and a bot whose token is
//! refused, invalid configs that carry secrets — and the daemon's log and the output of
//! `check`, `check --probe`, `status`, `status --json`, `spool dump` and `spool show` (with the
//! daemon running and stopped) are searched for each secret, raw and URL-encoded. OAuth grants
//! and client secrets get the same search, and so does the heartbeat URL (a monitor that
//! refuses every connection) while health notices are posted.

use crate::common::daemon::{mail, temp_dir, wait_until, Daemon, BIN};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const IMAP_WRONG: &str = "imapPW+Kx7/q=Zz9";
const IMAP_TLS: &str = "tlsPW+Vb2/w=Qa1";
const BOT_FORBIDDEN: &str = "MTAxBOT.leakGk9.zZ_w";
const BOT_REFUSED: &str = "MTAyBOT.leakRf4.yY_q";
/// The heartbeat URL's token part (a healthchecks.io UUID, an Uptime Kuma push token).
const HEARTBEAT: &str = "hbLeak-7Qx2+Wm9";
/// Webhook tokens, one per failing answer.
const HOOKS: &[(&str, &str, u16)] = &[
    ("s401", "leakTok401-Qm3vZ8", 401),
    ("s403", "leakTok403-Qm3vZ8", 403),
    ("s404", "leakTok404-Qm3vZ8", 404),
    ("s429", "leakTok429-Qm3vZ8", 429),
    ("s5xx", "leakTok5xx-Qm3vZ8", 502),
];

fn secrets() -> Vec<String> {
    let mut all = vec![IMAP_WRONG, IMAP_TLS, BOT_FORBIDDEN, BOT_REFUSED, HEARTBEAT];
    all.extend(HOOKS.iter().map(|h| h.1));
    let mut out = Vec::new();
    for s in all {
        out.push(s.to_string());
        out.push(url_encoded(s));
    }
    out
}

fn url_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs the CLI at debug level; stdout and stderr together.
fn run(config: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .env("MAILBEACON_LOG", "debug")
        .env_remove("RUNTIME_DIRECTORY")
        .output()
        .expect("run mailbeacon");
    format!(
        "$ mailbeacon {} (exit {:?})\n{}{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_no_secret(what: &str, text: &str) {
    for s in secrets() {
        assert!(!text.contains(&s), "{what} leaks {s:?}:\n{text}");
    }
}

fn pipeline_config(dir: &Path, dovecot: &Dovecot, discord: &FakeDiscord) -> String {
    let mut sinks = String::new();
    for (name, token, http) in HOOKS {
        let url = discord.webhook(&http.to_string(), token, Behaviour::Ok);
        sinks.push_str(&format!(
            "[[sink]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"{url}\"\n\n"
        ));
    }
    for (name, token) in [("botF", BOT_FORBIDDEN), ("botR", BOT_REFUSED)] {
        let channel = if name == "botF" { "611" } else { "612" };
        sinks.push_str(&format!(
            "[[sink]]\nname = \"{name}\"\nkind = \"bot\"\nchannel_id = \"{channel}\"\n\
             token = \"{token}\"\napi_base = \"{}/api/v10\"\n\n",
            discord.base()
        ));
    }
    std::fs::write(dir.join("wrong.pass"), format!("{IMAP_WRONG}\n")).unwrap();
    format!(
        r#"
state_dir = "{state}"

[[account]]
name = "good"
host = "127.0.0.1"
port = {port}
username = "alice"
password = "secret"
ca_file = "{ca}"

[[account]]
name = "wrongpw"
host = "127.0.0.1"
port = {port}
username = "bob"
password_file = "{dir}/wrong.pass"
ca_file = "{ca}"

[[account]]
name = "untrusted"
host = "127.0.0.1"
port = {port}
username = "bob"
password = "{IMAP_TLS}"

{sinks}
[[bucket]]
name = "unknown"
sinks = ["s401", "s403", "s404", "s429", "s5xx", "botF", "botR"]

[indicator]
backend = "sim"
trace = "{dir}/led.jsonl"

[notices]
notify_after = "2s"

[heartbeat]
url = "http://127.0.0.1:{closed}/api/push/{hb}?status=up"
style = "uptime-kuma"
every = "1s"
"#,
        closed = crate::common::notices::closed_port(),
        hb = url_encoded(HEARTBEAT),
        state = dir.join("state").display(),
        dir = dir.display(),
        port = dovecot.imaps_port(),
        ca = dovecot.ca_file().display(),
    )
}

fn set_failures(discord: &FakeDiscord) {
    for (_, token, http) in HOOKS {
        let b = match http {
            429 => Behaviour::RateLimited {
                retry_after: 30.0,
                scope: "user",
                global: false,
            },
            404 => Behaviour::Status {
                http: 404,
                code: 10015,
            },
            502 => Behaviour::Status { http: 502, code: 0 },
            _ => Behaviour::Status {
                http: *http,
                code: 50013,
            },
        };
        discord.set_behaviour(token, b);
    }
    discord.bot(BOT_FORBIDDEN);
    discord.channel(
        "611",
        Behaviour::Status {
            http: 403,
            code: 50001,
        },
    );
    discord.channel("612", Behaviour::Ok);
}

/// `sink probe` for every sink: through the daemon's socket while it runs, with the config's
/// own secrets when it does not.
fn probe_every_sink(config: &Path, seen: &mut String) {
    let names = HOOKS.iter().map(|(name, _, _)| *name);
    for name in names.chain(["botF", "botR"]) {
        seen.push_str(&run(config, &["sink", "probe", name]));
    }
}

#[test]
fn no_failure_path_shows_a_secret_anywhere() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let dir = temp_dir("secrets");
    let text = pipeline_config(&dir, &dovecot, &discord);
    set_failures(&discord);
    let mut daemon = Daemon::start(&dir, &text);
    wait_until(
        Duration::from_secs(20),
        "alice's INBOX to be watched",
        || daemon.status()["accounts"][0]["state"] == "idle",
    );
    dovecot.deliver(
        "alice",
        "INBOX",
        &mail(
            "A <a@example.org>",
            "Leak probe",
            "body",
            "leak@example.org",
        ),
    );
    let states = |key: &str| -> Vec<String> {
        daemon.status()[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["state"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let mut seen_states = std::collections::BTreeSet::new();
    wait_until(Duration::from_secs(90), "every failure to show", || {
        seen_states.extend(states("accounts"));
        seen_states.extend(states("sinks"));
        [
            "auth_failed",
            "tls_failed",
            "dead",
            "rate_limited",
            "retrying",
        ]
        .iter()
        .all(|s| seen_states.contains(*s))
    });

    let mut seen = String::new();
    let config = daemon.config.clone();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["spool", "dump"],
        &["spool", "ls"],
        &["spool", "show", "0"],
        &["check"],
        &["check", "--probe"],
    ] {
        seen.push_str(&run(&config, args));
    }
    probe_every_sink(&config, &mut seen);
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(15)), Some(0));
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["spool", "dump"],
        &["spool", "show", "0"],
    ] {
        seen.push_str(&run(&config, args));
    }
    probe_every_sink(&config, &mut seen);
    // The paths were really taken: each failure is named somewhere.
    for kind in [
        "heartbeat: the monitor did not acknowledge",
        "notice (trouble)",
        "HTTP 401",
        "HTTP 403",
        "HTTP 404",
        "HTTP 502",
        "429",
        "auth_failed",
        "tls_failed",
    ] {
        assert!(
            seen.contains(kind) || daemon.log_text().contains(kind),
            "{kind} never shown:\n{seen}"
        );
    }
    assert_no_secret("the CLI", &seen);
    assert_no_secret("the daemon's log", &daemon.log_text());
}

#[test]
fn invalid_configs_never_echo_a_secret() {
    let dir = temp_dir("secrets-config");
    let token = HOOKS[0].1;
    let cases = [
        // Plain http to a host that is not loopback.
        format!("url = \"http://example.com/api/webhooks/1/{token}\""),
        // Not a webhook path.
        format!("url = \"https://discord.com/api/hooks/x/{token}\""),
        // A typo next to the secret: TOML errors quote the line they stop at.
        format!("url = \"https://discord.com/api/webhooks/1/{token}\"\nurll = \"{token}\""),
        // Two sources for one secret.
        format!("url = \"https://discord.com/api/webhooks/1/{token}\"\nurl_file = \"/nonexistent/{token}\""),
        // A broken TOML string holding the secret.
        format!("url = \"https://discord.com/api/webhooks/1/{token}"),
        // A heartbeat URL that is no URL.
        format!("url = \"https://discord.com/api/webhooks/1/x\"\n[heartbeat]\nurl = \"hc-ping.com/{HEARTBEAT}\""),
    ];
    for (i, sink) in cases.iter().enumerate() {
        let text = format!(
            "state_dir = \"{}\"\n[[account]]\nname = \"a\"\nhost = \"127.0.0.1\"\nusername = \"u\"\n\
             password = \"{IMAP_WRONG}\"\n[[sink]]\nname = \"s\"\nkind = \"webhook\"\n{sink}\n\
             [[bucket]]\nname = \"unknown\"\nsinks = [\"s\"]\n",
            dir.join("state").display()
        );
        let path = dir.join(format!("bad{i}.toml"));
        std::fs::write(&path, text).unwrap();
        for args in [
            &["check"][..],
            &["check", "--probe"],
            &["status"],
            &["spool", "dump"],
        ] {
            let out = run(&path, args);
            assert!(out.contains("(exit Some(78))"), "case {i}: {out}");
            assert_no_secret(&format!("case {i}"), &out);
        }
    }
}

/// OAuth: a stored grant the provider refuses (and whose refusal echoes the refresh token, as a
/// careless provider might), an access token the server refuses, and an inline client secret —
/// none of them shows in the log, `status`, `check --probe` or a dump.
#[test]
fn oauth_tokens_and_the_client_secret_never_show() {
    const REFRESH: &str = "RT-leak+Zq8/x=Lw3";
    const ACCESS: &str = "AT-leak+Pp4/k=Ty6";
    const CLIENT_SECRET: &str = "CS-leak+Hh2/r=Uu5";
    let oauth = crate::common::fake_oauth::FakeOAuth::start(Duration::from_secs(3600));
    let dovecot = Dovecot::start_oauth2(&oauth.url("/introspect"), "xoauth2 oauthbearer");
    let discord = FakeDiscord::start();
    let hook = discord.webhook("1", "okHookTok-Qm3vZ8", Behaviour::Ok);
    let dir = temp_dir("secrets-oauth");
    // A grant left from an earlier sign-in: still "valid" by its expiry, unknown to the server.
    let grant = dir.join("state/oauth/home.json");
    std::fs::create_dir_all(grant.parent().unwrap()).unwrap();
    let far = chrono::Utc::now().timestamp() + 3600;
    std::fs::write(
        &grant,
        format!(r#"{{"version":1,"refresh_token":"{REFRESH}","access_token":"{ACCESS}","expires_at":{far}}}"#),
    )
    .unwrap();
    let text = crate::common::config::Config::new(&dir, &dovecot)
        .without("password")
        .account(&format!(
            "auth = \"oauth2\"\n[account.oauth2]\n{}client_secret = \"{CLIENT_SECRET}\"",
            oauth.device_keys()
        ))
        .webhook(&hook)
        .text();
    let daemon = Daemon::start(&dir, &text);
    wait_until(Duration::from_secs(30), "auth_failed", || {
        daemon.status()["accounts"][0]["state"] == "auth_failed"
    });
    let refreshes = oauth.calls("refresh_token");
    assert_eq!(
        refreshes.len(),
        1,
        "refused token, one refresh: {refreshes:?}"
    );
    assert_eq!(refreshes[0].refresh_token.as_deref(), Some(REFRESH));
    let mut seen = String::new();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["spool", "dump"],
        &["check"],
        &["check", "--probe"],
    ] {
        seen.push_str(&run(&daemon.config, args));
    }
    assert!(
        seen.contains("invalid_grant"),
        "the refusal was shown:\n{seen}"
    );
    for s in [REFRESH, ACCESS, CLIENT_SECRET] {
        for form in [s.to_string(), url_encoded(s)] {
            assert!(!seen.contains(&form), "the CLI leaks {form:?}:\n{seen}");
            let log = daemon.log_text();
            assert!(!log.contains(&form), "the log leaks {form:?}:\n{log}");
        }
    }
}
