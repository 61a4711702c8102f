//! `mailbeacon demo`, the README's first command, run as CI runs it (stdout not a terminal, so
//! no live redraw): it must reach its summary with nothing lost and nobody pinged, and leave
//! nothing behind — also when it is interrupted with Ctrl-C midway.

use crate::common::daemon::BIN;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The `demo folder: PATH` line.
fn folder_of(out: &str) -> PathBuf {
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("demo folder: "))
        .unwrap_or_else(|| panic!("no demo folder line in:\n{out}"));
    PathBuf::from(line)
}

/// Processes whose command line names `dir` (the demo's daemon and Dovecot).
fn processes_in(dir: &std::path::Path) -> Vec<String> {
    let needle = dir.to_string_lossy().to_string();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(&needle) {
                found.push(cmd);
            }
        }
    }
    found
}

fn wait_gone(dir: &std::path::Path) -> Vec<String> {
    for _ in 0..50 {
        if processes_in(dir).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    processes_in(dir)
}

#[test]
fn the_demo_tells_the_story_to_the_end_and_loses_nothing() {
    let out = Command::new(BIN)
        .args(["demo", "--plain"])
        .env_remove("RUNTIME_DIRECTORY")
        .output()
        .expect("run mailbeacon demo");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for part in [
        "sent: 8",
        "spooled: 8",
        "delivered: 8",
        "lost: 0",
        "pings: 0",
    ] {
        assert!(stdout.contains(part), "no {part:?} in:\n{stdout}");
    }
    // The story was shown, not skipped: the sink died, the LED said so, the backlog drained.
    assert!(stdout.contains("HTTP 403 (code 50013"), "{stdout}");
    assert!(stdout.contains("[LED] dead"), "{stdout}");
    assert!(
        stdout.contains("The backlog drained to the new webhook: 2 mail(s)"),
        "{stdout}"
    );
    // The dead webhook was announced in the channel that still works, and its end.
    assert!(
        stdout.contains("📣 Sink noise is dead — HTTP 403"),
        "{stdout}"
    );
    assert!(
        stdout.contains("📣 Over: Sink noise is dead — It lasted")
            && stdout.contains("2 mails held back meanwhile; all delivered now"),
        "{stdout}"
    );
    assert!(stdout.contains("spool dump --config"), "{stdout}");
    assert!(
        !stdout.contains('\x1b'),
        "no terminal escapes in plain mode"
    );
    let dir = folder_of(&stdout);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert_eq!(wait_gone(&dir), Vec::<String>::new(), "processes left");
}

#[test]
fn ctrl_c_midway_stops_everything_and_removes_the_folder() {
    let mut child = Command::new(BIN)
        .args(["demo", "--plain"])
        .env_remove("RUNTIME_DIRECTORY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mailbeacon demo");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let mut dir = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if dir.is_none() && line.contains("demo folder: ") {
            dir = Some(folder_of(&line));
        }
        if line.contains("Five mails arrive") {
            break;
        }
    }
    let dir = dir.unwrap_or_else(|| panic!("no folder line in:\n{seen}"));
    assert!(
        !processes_in(&dir).is_empty(),
        "the daemon and Dovecot should run now"
    );
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{seen}{rest:?}\n{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert_eq!(wait_gone(&dir), Vec::<String>::new(), "processes left");
}
