//! The `cdev` indicator where the GPIO chip is missing: `run` and `check --probe` exit 1 with a
//! message that names the chip and lists what was found, never a panic. (Machines running the
//! tests have no `/dev/gpiochip*`, or none with this label.)

use crate::common::daemon::{cli, temp_dir};

const LABEL: &str = "pinctrl-mailbeacon-test";

/// Loopback endpoints nothing listens on: the IMAP and sink probes fail at once.
fn config() -> std::path::PathBuf {
    let dir = temp_dir("gpio");
    let text = format!(
        r#"
state_dir = "{state}"
[[account]]
name = "home"
host = "127.0.0.1"
port = 1
tls = "none"
username = "me"
password = "x"
[[sink]]
name = "alerts"
kind = "webhook"
url = "http://127.0.0.1:1/api/webhooks/1/TOKEN"
[[bucket]]
name = "unknown"
sinks = ["alerts"]
[indicator]
backend = "cdev"
chip = "{LABEL}"
led = {{ line = 17 }}
buzzer = {{ line = 27 }}
"#,
        state = dir.join("state").display()
    );
    let path = dir.join("c.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn has_gpio_chips() -> bool {
    std::fs::read_dir("/dev").is_ok_and(|d| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("gpiochip"))
    })
}

/// The message for a missing chip: exact where this machine has no GPIO at all.
fn assert_names_the_missing_chip(text: &str) {
    let head = format!("no GPIO chip labelled {LABEL} (found: ");
    assert!(text.contains(&head), "{text}");
    if !has_gpio_chips() {
        assert!(
            text.contains(&format!("{head}none); this machine has no /dev/gpiochip*")),
            "{text}"
        );
    }
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn run_without_the_chip_exits_1_naming_it() {
    let out = cli(&config(), &["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("mailbeacon: indicator: "), "{stderr}");
    assert_names_the_missing_chip(&stderr);
}

#[test]
fn check_probe_reports_the_missing_chip() {
    let out = cli(&config(), &["check", "--probe"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("FAIL gpio: "))
        .unwrap_or_else(|| panic!("no FAIL gpio line in:\n{stdout}"));
    assert_names_the_missing_chip(line);
}
