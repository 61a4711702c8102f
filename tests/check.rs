//! `check --probe` as an operator runs it after editing the config: one line per check, a
//! warning for every file holding a secret that others can read (the config itself when a
//! secret is inline, a password file), and exit 1 when a probe fails.

use crate::common::daemon::{cli, temp_dir};
use crate::common::dovecot::{Dovecot, PASSWORD};
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn setup(dir: &Path, dovecot: &Dovecot, url: &str) -> std::path::PathBuf {
    let pass = dir.join("imap.pass");
    std::fs::write(&pass, format!("{PASSWORD}\n")).unwrap();
    let config = dir.join("mailbeacon.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{state}\"\n[[account]]\nname = \"home\"\nhost = \"127.0.0.1\"\n\
             port = {port}\nusername = \"alice\"\npassword_file = \"{pass}\"\nca_file = \"{ca}\"\n\
             [[sink]]\nname = \"alerts\"\nkind = \"webhook\"\nurl = \"{url}\"\n\
             [[bucket]]\nname = \"unknown\"\nsinks = [\"alerts\"]\n",
            state = dir.join("state").display(),
            port = dovecot.imaps_port(),
            pass = pass.display(),
            ca = dovecot.ca_file().display(),
        ),
    )
    .unwrap();
    config
}

fn probe(config: &Path) -> (Option<i32>, String) {
    let out = cli(config, &["check", "--probe"]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn secrets_readable_by_others_are_warned_about_and_tight_ones_pass() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "permTOKEN", Behaviour::Ok);
    let dir = temp_dir("check-perms");
    let config = setup(&dir, &dovecot, &url);
    let pass = dir.join("imap.pass");

    chmod(&config, 0o644);
    chmod(&pass, 0o604);
    let (code, out) = probe(&config);
    assert_eq!(code, Some(0), "warnings do not fail the check:\n{out}");
    let warns: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("warn perms"))
        .collect();
    assert_eq!(warns.len(), 2, "{out}");
    assert!(
        warns[0].contains("the config (sink[0] (alerts).url inline)")
            && warns[0].contains("mode 0644: every user on this machine can read it"),
        "{out}"
    );
    assert!(
        warns[1].contains("account[0] (home).password_file") && warns[1].contains("0604"),
        "{out}"
    );
    assert!(out.contains("ok   imap home/INBOX"), "{out}");
    assert!(out.contains("ok   sink alerts answers"), "{out}");

    chmod(&config, 0o600);
    chmod(&pass, 0o640); // group root: the package's own setting is root:mailbeacon
    let (code, out) = probe(&config);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("warn perms"), "{out}");
    assert!(
        out.contains("ok   perms account[0] (home).password_file"),
        "{out}"
    );
    assert!(out.contains("(mode 0600)"), "{out}");
}

#[test]
fn a_failing_probe_exits_1_and_says_which() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook(
        "2",
        "goneTOKEN",
        Behaviour::Status {
            http: 404,
            code: 10015,
        },
    );
    let dir = temp_dir("check-fail");
    let config = setup(&dir, &dovecot, &url);
    chmod(&config, 0o600);
    let (code, out) = probe(&config);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("ok   imap home/INBOX"), "{out}");
    assert!(
        out.contains("FAIL sink alerts: HTTP 404 (code 10015"),
        "{out}"
    );
    assert!(out.contains("1 check(s) failed"), "{out}");
    // Without --probe nothing is contacted and the config is fine.
    assert!(cli(&config, &["check"]).status.success());
}
