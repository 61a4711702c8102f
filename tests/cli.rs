//! The command line as an operator meets it: exit codes (78 for a bad config, 2 for usage),
//! errors that name the file and key, no secret in any output, and the spool readable without
//! a daemon.

mod common;

use common::daemon::{cli, temp_dir, Daemon, BIN};
use std::process::Command;

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
