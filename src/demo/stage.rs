//! The demo's stage: a private folder, a Dovecot, the Discord stand-in and the real daemon
//! (this same binary, `run`), all torn down by `Drop` — daemon first (SIGTERM: LED off), then
//! Dovecot, then the folder (unless `--keep`). The sample mail and the config live here too.

use super::dovecot::Dovecot;
use super::process::{self, spawn_tied};
use super::standin::StandIn;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) const USER: &str = "demo";
/// The demo's webhooks: `alerts` (VIP, Stripe, customers) and `noise` (everything else); the
/// noise webhook is later "rotated" to a new id and token.
pub(crate) const ALERTS: (&str, &str) = ("1001", "demoAlertsToken");
pub(crate) const NOISE: (&str, &str) = ("2002", "demoNoiseToken");
pub(crate) const NOISE_ROTATED: (&str, &str) = ("2003", "demoNoiseRotatedToken");

pub(crate) struct Stage {
    pub(crate) dir: PathBuf,
    pub(crate) config: PathBuf,
    pub(crate) trace: PathBuf,
    keep: bool,
    daemon: Option<Child>,
    pub(crate) standin: StandIn,
    pub(crate) dovecot: Option<Dovecot>,
}

impl Stage {
    /// Makes the folder, starts Dovecot and the stand-in, writes the config and its secret files.
    pub(crate) fn build(keep: bool) -> Result<Stage, String> {
        let dir = process::unique_dir("mbdemo").map_err(|e| format!("temp folder: {e}"))?;
        let mut stage = Stage {
            config: dir.join("mailbeacon.toml"),
            trace: dir.join("led.jsonl"),
            dir,
            keep,
            daemon: None,
            standin: StandIn::start().map_err(|e| format!("Discord stand-in: {e}"))?,
            dovecot: None,
        };
        let password = format!("demo-{:016x}", fastrand::u64(..));
        let dovecot = Dovecot::start_in(stage.dir.join("imap"), &[USER], &password, "")?;
        let alerts = stage.standin.webhook(ALERTS.0, ALERTS.1);
        let noise = stage.standin.webhook(NOISE.0, NOISE.1);
        stage.secret_file("imap.pass", &password)?;
        stage.secret_file("alerts.url", &alerts)?;
        stage.secret_file("noise.url", &noise)?;
        // The CA beside the config, so the CLI still reads the config once Dovecot is gone.
        let ca = stage.dir.join("ca.pem");
        std::fs::copy(dovecot.ca_file(), &ca).map_err(|e| format!("copy the CA: {e}"))?;
        let text = config_text(&stage.dir, dovecot.imaps_port(), &ca);
        std::fs::write(&stage.config, text).map_err(|e| format!("write config: {e}"))?;
        stage.dovecot = Some(dovecot);
        Ok(stage)
    }

    /// Writes a file only its owner reads (as an operator should keep secrets).
    pub(crate) fn secret_file(&self, name: &str, value: &str) -> Result<(), String> {
        let path = self.dir.join(name);
        std::fs::write(&path, format!("{value}\n"))
            .and_then(|_| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)))
            .map_err(|e| format!("write {}: {e}", path.display()))
    }

    /// Starts `mailbeacon run` (this binary) on the demo config; its log goes to `daemon.log`.
    pub(crate) fn start_daemon(&mut self) -> Result<(), String> {
        let exe = std::env::current_exe().map_err(|e| format!("own binary: {e}"))?;
        let log = std::fs::File::create(self.dir.join("daemon.log"))
            .map_err(|e| format!("daemon.log: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.arg("run")
            .arg("--config")
            .arg(&self.config)
            .env("MAILBEACON_LOG", "info")
            .env_remove("RUNTIME_DIRECTORY")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        self.daemon = Some(spawn_tied(cmd).map_err(|e| format!("start the daemon: {e}"))?);
        Ok(())
    }

    /// Sends `signal` to the daemon.
    pub(crate) fn signal(&self, signal: libc::c_int) {
        if let Some(child) = &self.daemon {
            process::signal(child, signal);
        }
    }

    /// The daemon's exit code if it has exited (it should not, until told to).
    pub(crate) fn daemon_exited(&mut self) -> Option<i32> {
        let child = self.daemon.as_mut()?;
        match child.try_wait() {
            Ok(Some(s)) => Some(s.code().unwrap_or(-1)),
            _ => None,
        }
    }

    /// SIGTERM and wait (SIGKILL after 15 s); the exit code, if it exited by itself.
    pub(crate) fn stop_daemon(&mut self) -> Option<i32> {
        let mut child = self.daemon.take()?;
        process::terminate(&mut child, Duration::from_secs(15)).and_then(|s| s.code())
    }

    /// The last lines of the daemon's log (to explain a failure).
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.stop_daemon();
        self.dovecot = None;
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn config_text(dir: &Path, port: u16, ca: &Path) -> String {
    format!(
        r#"# mailbeacon demo: a private Dovecot and a Discord stand-in, both on 127.0.0.1
state_dir = "{dir}/state"

[[account]]
name = "demo"
host = "127.0.0.1"
port = {port}
tls = "implicit"
username = "{USER}"
password_file = "{dir}/imap.pass"
ca_file = "{ca}"
folders = ["INBOX"]
poll_interval = "1m"

[[sink]]
name = "alerts"
kind = "webhook"
url_file = "{dir}/alerts.url"

[[sink]]
name = "noise"
kind = "webhook"
url_file = "{dir}/noise.url"

[[bucket]]
name = "vip"
severity = "P1"
sinks = ["alerts"]
rules = [{{ from = '(?i)boss@corp\.example' }}]

[[bucket]]
name = "stripe"
severity = "P2"
sinks = ["alerts"]
rules = [{{ from = '@stripe\.com>?$' }}]

[[bucket]]
name = "customers"
severity = "P2"
sinks = ["alerts"]
rules = [{{ subject = '(?i)\b(question|inquiry|order)\b' }}]

[[bucket]]
name = "unknown"
severity = "P3"
sinks = ["noise"]

[indicator]
backend = "sim"
trace = "{dir}/led.jsonl"
buzzer = {{ line = 27 }}

# Trouble is told in the channels that still work once it lasted this long (default 2 min).
[notices]
notify_after = "3s"
"#,
        dir = dir.display(),
        ca = ca.display(),
    )
}

/// One sample mail: (what it is, From, Subject, body).
pub(crate) type Sample = (&'static str, &'static str, &'static str, &'static str);

/// The first wave: one of each kind.
pub(crate) const FIRST_WAVE: &[Sample] = &[
    (
        "a Stripe receipt",
        "Stripe <receipts@stripe.com>",
        "Your receipt from Acme Cloud #2291-4410",
        "Amount paid: $49.00. Thanks for your business.",
    ),
    (
        "a customer inquiry",
        "Dana Whitfield <dana@shop.example>",
        "Question about my order #5521",
        "Hi, my order has not shipped yet. Can you check?",
    ),
    (
        "a VIP",
        "The Boss <boss@corp.example>",
        "Board meeting moved to 9:00 tomorrow",
        "Please bring the Q3 numbers.",
    ),
    (
        "an unclassified pitch",
        "Growth Team <hello@leads.example>",
        "10x your pipeline with AI-sourced leads",
        "Book a call this week and get 30% off.",
    ),
    (
        "a hostile subject",
        "Mallory <m@evil.example>",
        "@everyone URGENT: wire $5,000 now <@&123456789>",
        "Click [here](https://evil.example) **now**.",
    ),
];

/// Mail that arrives while the noise webhook answers 403.
pub(crate) const SECOND_WAVE: &[Sample] = &[
    (
        "a newsletter",
        "Weekly Digest <news@digest.example>",
        "This week: 12 links you missed",
        "Read online.",
    ),
    (
        "a webinar invitation",
        "Events <events@saas.example>",
        "Webinar: scaling your inbox",
        "Save your seat.",
    ),
    (
        "another Stripe receipt",
        "Stripe <receipts@stripe.com>",
        "Your receipt from Acme Cloud #2291-4411",
        "Amount paid: $12.00.",
    ),
];

/// The raw RFC 5322 text of a sample.
pub(crate) fn raw(sample: &Sample, n: usize) -> Vec<u8> {
    let (_, from, subject, body) = sample;
    let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S +0000");
    format!(
        "From: {from}\r\nTo: {USER}@home.example\r\nSubject: {subject}\r\nDate: {date}\r\n\
         Message-ID: <demo-{n}-{}@mailbeacon.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\
         \r\n{body}\r\n",
        std::process::id()
    )
    .into_bytes()
}
