//! `mailbeacon selftest`: the spool check CI runs on the ARM binaries under qemu-user, here on
//! the host binary. It passes in a writable directory and leaves nothing behind, and it fails
//! (exit 1, a FAIL line) where no spool can be made.

use crate::common::daemon::{temp_dir, BIN};
use std::process::Command;

fn selftest(dir: &std::path::Path) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(["selftest", "--dir"])
        .arg(dir)
        .output()
        .expect("run mailbeacon selftest");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn selftest_passes_every_check_and_cleans_up() {
    let dir = temp_dir("selftest");
    let (code, stdout, stderr) = selftest(&dir);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for check in [
        "open", "ingest", "pending", "record", "rescan", "lock", "reopen", "cleanup",
    ] {
        assert!(
            stdout.contains(&format!("ok   spool {check}: ")),
            "no passing {check} line in:\n{stdout}"
        );
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.trim_end().ends_with("selftest passed"), "{stdout}");
    let left: Vec<_> = std::fs::read_dir(&dir).expect("read dir").collect();
    assert!(
        left.is_empty(),
        "selftest left {left:?} in {}",
        dir.display()
    );
}

#[test]
fn selftest_fails_where_no_spool_can_be_made() {
    // A regular file where a directory should be: fails for root too.
    let file = temp_dir("selftest-file").join("not-a-dir");
    std::fs::write(&file, b"").expect("write file");
    let (code, stdout, stderr) = selftest(&file);
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("FAIL spool open: "), "{stdout}");
    assert!(!stdout.contains("selftest passed"), "{stdout}");
    assert!(stderr.contains("selftest failed"), "{stderr}");
}
