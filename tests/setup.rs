//! `mailbeacon setup` answered as a user would, through a pseudo-terminal: a self-signed home
//! server (the test Dovecot) with a wrong password first, a webhook of the fake Discord with one
//! test message, VIP and payment buckets, no LED. The config it writes passes
//! `check --probe` and the daemon started on it delivers the next mail. Re-run scripted with
//! `--yes`, setup keeps what it does not ask about; a scripted run missing an answer names the
//! flag and writes nothing.

mod oauth;
mod scripted;
mod terminal;

use crate::common::daemon::BIN;
use crate::common::dovecot::Dovecot;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `mailbeacon setup --yes` for the config `dir/mailbeacon.toml`, its state in `dir/state`,
/// with alice's self-signed Dovecot as the server ("other") and no LED; stdin closed.
fn scripted_setup(dir: &Path, dovecot: &Dovecot) -> Command {
    let path = |name: &str| dir.join(name).to_str().expect("utf-8").to_string();
    let mut command = Command::new(BIN);
    command
        .args(["setup", "--yes", "--config", &path("mailbeacon.toml")])
        .args(["--state-dir", &path("state"), "--provider", "other"])
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &dovecot.imaps_port().to_string(),
        ])
        .arg("--ca-file")
        .arg(dovecot.ca_file())
        .args(["--gpio", "none"])
        .stdin(Stdio::null());
    command
}
