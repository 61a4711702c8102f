//! The provider table of docs/configuration.md and its example configs are what `check` does: each row's
//! `provider` fills in that host and that kind of login, every preset the binary knows is in
//! the table, the Microsoft and Google examples load as written, and keys written in the
//! config win over the preset.

use crate::common::daemon::{cli, temp_dir};
use std::path::{Path, PathBuf};

const DOC: &str = include_str!("../docs/configuration.md");

struct Row {
    provider: String,
    host: String,
    login: String,
}

/// The rows of the table under "## Mail providers and signing in".
fn rows() -> Vec<Row> {
    let section = DOC
        .split("## Mail providers and signing in")
        .nth(1)
        .expect("docs/configuration.md's provider section");
    let table = section
        .split("| provider | host | login | what you need |")
        .nth(1)
        .expect("the provider table");
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            Row {
                provider: cells[1].trim_matches('`').to_string(),
                host: cells[2].to_string(),
                login: cells[3].to_string(),
            }
        })
        .collect()
}

/// A config with `account` (an `[[account]]` table) and one webhook.
fn write(dir: &Path, account: &str) -> PathBuf {
    let pass = dir.join("app.pass");
    std::fs::write(&pass, "app-password\n").unwrap();
    let text = format!(
        "state_dir = \"{}\"\n{}\n[[sink]]\nname = \"alerts\"\nkind = \"webhook\"\nurl = \"https://discord.com/api/webhooks/1/tok\"\n[[bucket]]\nname = \"unknown\"\nsinks = [\"alerts\"]\n",
        dir.join("state").display(),
        account.replace("PASS", &pass.display().to_string())
    );
    let path = dir.join("mailbeacon.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn check(path: &Path) -> (bool, String) {
    let out = cli(path, &["check"]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn every_row_of_the_readme_table_is_what_check_prints() {
    let rows = rows();
    assert!(rows.len() >= 6, "{} rows", rows.len());
    for row in &rows {
        let dir = temp_dir(&format!("provider-{}", row.provider));
        let login = match row.login.as_str() {
            "password" => "password_file = \"PASS\"".to_string(),
            "OAuth 2.0" => "[account.oauth2]\nclient_id = \"my-client\"".to_string(),
            other => panic!("login kind {other:?} in the table of docs/configuration.md"),
        };
        let account = format!(
            "[[account]]\nname = \"home\"\nprovider = \"{}\"\nusername = \"me@example.com\"\n{login}",
            row.provider
        );
        let (ok, text) = check(&write(&dir, &account));
        let how = if row.login == "password" {
            "password"
        } else {
            "OAuth 2.0 at Microsoft"
        };
        let want = format!("ok   account home: {}, implicit TLS, {how}", row.host);
        assert!(
            ok && text.contains(&want),
            "{}: want {want:?} in:\n{text}",
            row.provider
        );
        if row.login != "password" {
            assert!(
                text.contains("warn account home: not signed in yet: run `mailbeacon login home`"),
                "{text}"
            );
        }
    }

    // Every preset the binary knows is a row of the table.
    let dir = temp_dir("provider-unknown");
    let (ok, text) = check(&write(
        &dir,
        "[[account]]\nname = \"home\"\nprovider = \"nope\"\nusername = \"u\"\npassword = \"p\"",
    ));
    assert!(!ok, "{text}");
    let known = text
        .split("is not one of ")
        .nth(1)
        .expect("the list of presets");
    for name in known.trim().split(", ") {
        assert!(
            rows.iter().any(|r| r.provider == name),
            "{name} is not in the table of docs/configuration.md"
        );
    }
}

/// The ```toml blocks of docs/configuration.md's provider section.
fn examples() -> Vec<String> {
    let section = DOC
        .split("## Mail providers and signing in")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the provider section");
    section
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readme_examples_for_microsoft_and_google_load_as_written() {
    let blocks = examples();
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    let dir = temp_dir("provider-examples");
    let secret = dir.join("google.secret");
    std::fs::write(&secret, "GOCSPX-secret\n").unwrap();
    let (ok, text) = check(&write(&dir, &blocks[0]));
    assert!(
        ok && text.contains("ok   account work: outlook.office365.com:993, implicit TLS, OAuth 2.0 at Microsoft (device code sign-in) (provider office365)"),
        "{text}"
    );
    let google = blocks[1].replace(
        "/etc/mailbeacon/google.secret",
        &secret.display().to_string(),
    );
    let (ok, text) = check(&write(&dir, &google));
    assert!(
        ok && text.contains("ok   account gmail: imap.gmail.com:993, implicit TLS, OAuth 2.0 at Google (browser sign-in) (provider gmail)"),
        "{text}"
    );
}

#[test]
fn keys_in_the_config_win_and_a_missing_client_id_says_how_to_get_one() {
    let dir = temp_dir("provider-override");
    let (ok, text) = check(&write(
        &dir,
        "[[account]]\nname = \"home\"\nprovider = \"fastmail\"\nhost = \"mail.example.net\"\nport = 1993\nusername = \"u\"\npassword_file = \"PASS\"",
    ));
    assert!(
        ok && text.contains("ok   account home: mail.example.net:1993, implicit TLS, password"),
        "{text}"
    );

    let (ok, text) = check(&write(
        &dir,
        "[[account]]\nname = \"work\"\nprovider = \"outlook\"\nusername = \"u@outlook.com\"",
    ));
    assert!(!ok, "{text}");
    assert!(
        text.contains("account[0] (work).oauth2.client_id: missing: register an application")
            && text.contains("Allow public client flows"),
        "{text}"
    );

    let (ok, text) = check(&write(
        &dir,
        "[[account]]\nname = \"home\"\nprovider = \"gmail\"\nusername = \"u@gmail.com\"",
    ));
    assert!(
        !ok && text.contains("Gmail needs an app password"),
        "{text}"
    );
}
