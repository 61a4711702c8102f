//! The command line as an operator meets it: exit codes (78 for a bad config, 2 for usage),
//! errors that name the file and key, no secret in any output, and the spool readable without
//! a daemon.

use crate::common::config::Config;
use crate::common::daemon::{cli, mail, temp_dir, wait_until, Daemon, BIN};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use std::process::Command;
use std::time::Duration;

fn config(extra_account: &str, url: &str) -> String {
    format!(
        r#"
state_dir = "STATE"
[[account]]
name = "home"
host = "imap.example.net"
username = "me"
password = "hunter2-SECRET"
{extra_account}
[[sink]]
name = "alerts"
kind = "webhook"
url = "{url}"
[[bucket]]
name = "vip"
sinks = ["alerts"]
rules = [{{ from = 'boss@' }}]
[[bucket]]
name = "unknown"
sinks = ["alerts"]
"#
    )
}

const URL: &str = "https://discord.com/api/webhooks/123/TOKEN-SECRET";

fn write(tag: &str, text: &str) -> std::path::PathBuf {
    let dir = temp_dir(tag);
    let path = dir.join("c.toml");
    std::fs::write(
        &path,
        text.replace("STATE", &dir.join("state").display().to_string()),
    )
    .unwrap();
    path
}

#[test]
fn a_bad_config_exits_78_naming_file_and_key() {
    for (tag, text, key) in [
        ("typo", config("folderz = [\"INBOX\"]", URL), "folderz"),
        (
            "regex",
            config("", URL).replace("'boss@'", "'(boss'"),
            "rules[0].from",
        ),
        (
            "http",
            config("", "http://discord.example/api/webhooks/1/TOKEN-SECRET"),
            "url",
        ),
        (
            "file",
            config("", URL).replace(
                "password = \"hunter2-SECRET\"",
                "password_file = \"/nonexistent/pass\"",
            ),
            "password_file",
        ),
    ] {
        let path = write(tag, &text);
        // `status` reads no secrets (it must work from an SSH shell without the service's
        // credentials), so a missing secret file fails `check` and `run` only.
        let commands: &[&[&str]] = if tag == "file" {
            &[&["check"], &["run"]]
        } else {
            &[&["check"], &["run"], &["status"]]
        };
        for args in commands {
            let out = cli(&path, args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(78), "{tag} {args:?}: {err}");
            assert!(err.contains("c.toml") && err.contains(key), "{tag}: {err}");
            assert!(
                !err.contains("SECRET"),
                "{tag}: a secret in the error: {err}"
            );
        }
    }
}

#[test]
fn check_warns_about_rules_that_can_never_match_and_still_passes() {
    // `later` repeats vip's rule (shadowed), and its header pattern matches no text at all.
    let text = config("", URL).replace(
        "[[bucket]]\nname = \"unknown\"",
        "[[bucket]]\nname = \"later\"\nsinks = [\"alerts\"]\n\
         rules = [{ from = 'boss@' }, { headers = { X-Priority = '[^\\s\\S]' } }]\n\
         [[bucket]]\nname = \"unknown\"",
    );
    let path = write("warn", &text);
    let out = cli(&path, &["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let warnings: Vec<&str> = stdout.lines().filter(|l| l.starts_with("warn ")).collect();
    assert_eq!(
        warnings,
        [
            "warn bucket[1] (later).rules[0]: can never match: bucket[0] (vip).rules[0] matches every mail this rule matches, and buckets are tried in file order",
            "warn bucket[1] (later).rules[1].headers.X-Priority: can never match: the pattern matches no text at all",
            "warn bucket[1] (later): no mail can reach this bucket: none of its rules can ever match",
        ],
        "{stdout}"
    );
    // A sound config says nothing of the kind.
    let out = cli(&write("sound", &config("", URL)), &["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.lines().any(|l| l.starts_with("warn ")), "{stdout}");
}

#[test]
fn check_refuses_a_header_pattern_that_does_not_compile() {
    let text = config("", URL).replace(
        "rules = [{ from = 'boss@' }]",
        "rules = [{ from = 'boss@' }, { headers = { \"List-Id\" = '(news' } }]",
    );
    let out = cli(&write("hdr-regex", &text), &["check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("c.toml: bucket[0] (vip).rules[1].headers.List-Id: regex does not compile"),
        "{err}"
    );
}

#[test]
fn status_works_without_the_service_credentials() {
    let text = config("", URL)
        .replace(
            "password = \"hunter2-SECRET\"",
            "credential = \"imap-password\"",
        )
        .replace(
            &format!("url = \"{URL}\""),
            "url_file = \"/root-only/alerts.url\"",
        );
    let path = write("creds", &text);
    let out = Command::new(BIN)
        .args(["status", "--config"])
        .arg(&path)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CREDENTIALS_DIRECTORY"));
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(BIN).arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .args(["spool", "dump", "--state", "lost"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("mailbeacon"));
}

#[test]
fn without_a_daemon_the_cli_reads_the_spool_itself() {
    let path = write("offline", &config("", URL));
    let out = cli(&path, &["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&path, &["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let status: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status["indicator"]["pattern"], "off");
    assert_eq!(status["running"], false);
    assert_eq!(status["buckets"].as_array().unwrap().len(), 2);
    assert!(!text.contains("SECRET"));
    let out = cli(&path, &["status"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("agent not running")
            && table.contains("home/INBOX")
            && !table.contains("SECRET"),
        "{table}"
    );
    let out = cli(&path, &["spool", "ls"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("SUBJECT"));
    let out = cli(&path, &["spool", "dump", "--state", "pending"]);
    assert!(out.status.success() && out.stdout.is_empty());
    let out = cli(&path, &["spool", "show", "42"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no item 42"));
}

#[test]
fn an_ssh_shell_finds_a_daemon_that_listens_in_its_runtime_directory() {
    // Under systemd the socket is in $RUNTIME_DIRECTORY, which a login shell does not have.
    let dir = temp_dir("runtime");
    let runtime = dir.join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    let text = config("", URL)
        .replace(
            "host = \"imap.example.net\"",
            "host = \"127.0.0.1\"\nport = 1\ntls = \"none\"",
        )
        .replace("STATE", &dir.join("state").display().to_string());
    let mut daemon = Daemon::start_with_env(
        &dir,
        &text,
        &[("RUNTIME_DIRECTORY", runtime.to_str().unwrap())],
    );
    assert!(runtime.join("control.sock").exists());
    let status = daemon.status();
    assert_eq!(status["running"], true, "{status}");
    daemon.signal(libc::SIGTERM);
    assert_eq!(
        daemon.wait_exit(std::time::Duration::from_secs(10)),
        Some(0)
    );
    assert!(
        !runtime.join("control.sock").exists() && !dir.join("state/control.sock").exists(),
        "socket and link removed on a clean stop"
    );
}

#[test]
fn the_shipped_example_config_is_valid() {
    let out = Command::new(BIN)
        .args(["check", "--config", "board/mailbeacon.example.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("4 bucket(s)"), "{text}");
}

/// A config for the tools tests: one mailbox on a real Dovecot, one webhook on the fake Discord.
fn live_config(dir: &std::path::Path, dovecot: &Dovecot, url: &str) -> Config {
    Config::new(dir, dovecot)
        .sinks(&format!(
            "[[sink]]\nname = \"alerts\"\nkind = \"webhook\"\nurl = \"{url}\"\nprobe_every = \"1s\""
        ))
        .buckets("[[bucket]]\nname = \"unknown\"\nsinks = [\"alerts\"]")
}

fn run_ok(config: &std::path::Path, args: &[&str]) -> String {
    let out = cli(config, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn ids_in(config: &std::path::Path, args: &[&str]) -> Vec<u64> {
    run_ok(config, args)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

fn state_of(config: &std::path::Path, id: u64) -> String {
    let out = run_ok(config, &["spool", "show", &id.to_string()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["state"].as_str().unwrap().to_string()
}

#[test]
fn spool_tools_and_sink_probe_work_with_the_daemon_running_and_stopped() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    // Every POST answers 400: each mail is dead-lettered (kept, visible, retryable).
    let refused = Behaviour::Status {
        http: 400,
        code: 50035,
    };
    let url = discord.webhook("300", "toolsTOKEN", refused);
    let dir = temp_dir("tools");
    // `start_at = "now"`: only mail that arrives once the mailbox is watched.
    let mut daemon = live_config(&dir, &dovecot, &url).start_watching();
    let config = daemon.config.clone();
    for i in 0..4 {
        let m = mail(
            "A <a@example.org>",
            &format!("Tool mail {i}"),
            "x",
            &format!("t{i}@x"),
        );
        dovecot.deliver("alice", "INBOX", &m);
    }
    wait_until(Duration::from_secs(30), "4 dead items", || {
        ids_in(&config, &["spool", "dump", "--state", "dead"]).len() == 4
    });
    let ids = ids_in(&config, &["spool", "dump"]);

    // With the daemon: --since filters by spool time.
    assert_eq!(
        ids_in(&config, &["spool", "dump", "--since", "1h"]).len(),
        4
    );
    assert!(ids_in(&config, &["spool", "dump", "--since", "2999-01-01"]).is_empty());
    // drop says what it would drop, and drops only with --yes.
    let out = cli(&config, &["spool", "drop", &ids[0].to_string()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("would drop item {}", ids[0])) && err.contains("Tool mail 0"),
        "{err}"
    );
    assert_eq!(
        ids_in(&config, &["spool", "dump"]).len(),
        4,
        "nothing dropped without --yes"
    );
    run_ok(&config, &["spool", "drop", &ids[0].to_string(), "--yes"]);
    assert_eq!(ids_in(&config, &["spool", "dump"]), &ids[1..]);
    // retry ID: the idle sink takes it up at once (its own recheck is 30 s away).
    discord.set_behaviour("toolsTOKEN", Behaviour::Ok);
    let said = run_ok(&config, &["spool", "retry", &ids[1].to_string()]);
    assert!(said.contains("pending again for alerts"), "{said}");
    wait_until(
        Duration::from_secs(15),
        "the retried item delivered",
        || state_of(&config, ids[1]) == "delivered",
    );
    let shown = run_ok(&config, &["spool", "show", &ids[1].to_string()]);
    assert!(
        shown.contains("\"attempts\": 2"),
        "the dead-lettering attempt is kept, plus the one that delivered: {shown}"
    );
    let out = run_ok(&config, &["sink", "probe", "alerts"]);
    assert!(out.contains("sink alerts: ok (HTTP 200)"), "{out}");
    assert!(!out.contains("toolsTOKEN"));
    let out = cli(&config, &["sink", "probe", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));

    // Stopped: the same commands on the spool itself.
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(15)), Some(0));
    assert_eq!(
        ids_in(&config, &["spool", "dump", "--since", "1h"]).len(),
        3
    );
    assert!(ids_in(
        &config,
        &["spool", "dump", "--since", "2999-01-01T00:00:00Z"]
    )
    .is_empty());
    let said = run_ok(&config, &["spool", "retry", &ids[2].to_string()]);
    assert!(said.contains("pending again"), "{said}");
    let out = cli(&config, &["spool", "retry", &ids[1].to_string()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a delivered item is not retried"
    );
    let said = run_ok(
        &config,
        &["spool", "retry", "--bucket", "unknown", "--state", "dead"],
    );
    assert!(
        said.starts_with("1 dead item(s) of bucket unknown"),
        "{said}"
    );
    assert_eq!(
        ids_in(&config, &["spool", "dump", "--state", "pending"]),
        &ids[2..]
    );
    let out = cli(&config, &["spool", "drop", &ids[3].to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let out = cli(&config, &["spool", "retry"]);
    assert_eq!(out.status.code(), Some(2), "retry needs a target");
    let out = run_ok(&config, &["sink", "probe", "alerts"]);
    assert!(out.contains("ok (HTTP 200)"), "{out}");
    discord.set_behaviour(
        "toolsTOKEN",
        Behaviour::Status {
            http: 403,
            code: 50013,
        },
    );
    let out = cli(&config, &["sink", "probe", "alerts"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("sink alerts: dead: HTTP 403") && !err.contains("toolsTOKEN"),
        "{err}"
    );
    assert!(
        discord
            .posts_to("toolsTOKEN")
            .iter()
            .all(|r| r.status != 403),
        "probing posts nothing"
    );

    // Started again, the daemon delivers what was retried while it was stopped.
    discord.set_behaviour("toolsTOKEN", Behaviour::Ok);
    let _daemon = Daemon::start(&dir, &std::fs::read_to_string(&config).unwrap());
    wait_until(
        Duration::from_secs(30),
        "the offline retries delivered",
        || ids_in(&config, &["spool", "dump", "--state", "delivered"]).len() == 3,
    );
    let titles = discord.delivered_titles("toolsTOKEN");
    for i in 1..4 {
        let n = titles
            .iter()
            .filter(|t| t.contains(&format!("Tool mail {i}")))
            .count();
        assert_eq!(n, 1, "mail {i} delivered once: {titles:?}");
    }
    let said = run_ok(&config, &["spool", "retry", "--state", "dead"]);
    assert!(said.starts_with("0 dead item(s)"), "{said}");
}
