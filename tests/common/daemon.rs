//! The real `mailbeacon` binary under test: spawn it with a config, talk to it through its own
//! CLI (status, spool dump), send it real signals, read its sim LED trace.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mailbeacon");

/// A small mail with `subject` delivered to alice's INBOX (its Message-ID made from the subject).
pub fn send(dovecot: &crate::common::dovecot::Dovecot, subject: &str) {
    let id = format!("{}@example.org", subject.replace(' ', "."));
    dovecot.deliver(
        "alice",
        "INBOX",
        &mail("Sender <s@example.org>", subject, "hello", &id),
    );
}

/// A fresh directory under the system temp dir, removed by nobody (CI machines are thrown away
/// and a failed test's files help debugging).
pub fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let d = std::env::temp_dir().join(format!("mailbeacon-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Polls `cond` every 100 ms until it holds or `timeout` passes; panics naming `what`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {timeout:?} waiting for: {what}");
}

/// A plain RFC 5322 message.
pub fn mail(from: &str, subject: &str, body: &str, id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: alice@example.net\r\nSubject: {subject}\r\nDate: Tue, 01 Sep 2026 10:00:00 +0000\r\nMessage-ID: <{id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Runs the CLI with `args` (the config path is appended).
pub fn cli(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUNTIME_DIRECTORY")
        .output()
        .expect("run mailbeacon")
}

pub struct Daemon {
    child: Option<Child>,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    pub trace: PathBuf,
    /// Extra environment for the daemon (not for the CLI).
    pub env: Vec<(String, String)>,
}

impl Daemon {
    /// Writes `config_text` to `dir/mailbeacon.toml` and starts `mailbeacon run`.
    pub fn start(dir: &Path, config_text: &str) -> Daemon {
        Daemon::start_with_env(dir, config_text, &[])
    }

    /// `start` with extra environment variables for the daemon process.
    pub fn start_with_env(dir: &Path, config_text: &str, env: &[(&str, &str)]) -> Daemon {
        let config = dir.join("mailbeacon.toml");
        std::fs::write(&config, config_text).expect("write config");
        let mut d = Daemon {
            child: None,
            dir: dir.to_path_buf(),
            config,
            log: dir.join("daemon.log"),
            trace: dir.join("led.jsonl"),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        d.spawn();
        d
    }

    /// Starts the binary again with the same config (after a kill).
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&self.config)
            .env_remove("RUNTIME_DIRECTORY")
            .env_remove("NOTIFY_SOCKET")
            .env("MAILBEACON_LOG", "debug")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mailbeacon");
        self.child = Some(child);
        wait_until(
            Duration::from_secs(20),
            "the control socket to answer",
            || self.try_status().is_some_and(|s| s["running"] == true) || self.exited().is_some(),
        );
        if let Some(code) = self.exited() {
            panic!(
                "mailbeacon exited early with {code:?}:\n{}",
                self.log_text()
            );
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The exit code if the process has ended.
    pub fn exited(&mut self) -> Option<Option<i32>> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
            .map(|s| s.code())
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(code) = self.exited() {
                self.child = None;
                return code;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "mailbeacon did not exit within {timeout:?}:\n{}",
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn try_status(&self) -> Option<Value> {
        let out = cli(&self.config, &["status", "--json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    pub fn status(&self) -> Value {
        let out = cli(&self.config, &["status", "--json"]);
        assert!(
            out.status.success(),
            "status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }

    /// `spool dump` as parsed JSON lines.
    pub fn dump(&self) -> Vec<Value> {
        dump(&self.config)
    }

    pub fn sink_state(&self, name: &str) -> String {
        let s = self.status();
        s["sinks"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == name))
            .map_or(String::new(), |x| {
                x["state"].as_str().unwrap_or("").to_string()
            })
    }

    /// LED/buzzer edges from the sim trace: (t, pin, level).
    pub fn trace_edges(&self) -> Vec<(f64, String, u8)> {
        std::fs::read_to_string(&self.trace)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| {
                (
                    v["t"].as_f64().unwrap_or(0.0),
                    v["pin"].as_str().unwrap_or("").to_string(),
                    v["level"].as_u64().unwrap_or(9) as u8,
                )
            })
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn dump(config: &Path) -> Vec<Value> {
    let out = cli(config, &["spool", "dump"]);
    assert!(
        out.status.success(),
        "spool dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("dump line is JSON"))
        .collect()
}

/// Whether `edges` of `pin` since `since` contain `n` consecutive on-phases about `on_ms` long,
/// spaced about `period_ms` apart: the shape of a blink pattern.
pub fn blinks(
    edges: &[(f64, String, u8)],
    pin: &str,
    since: f64,
    on_ms: f64,
    period_ms: f64,
    n: usize,
) -> bool {
    let e: Vec<&(f64, String, u8)> = edges
        .iter()
        .filter(|x| x.1 == pin && x.0 >= since)
        .collect();
    let mut run = 0;
    for w in e.windows(3) {
        let (a, b, c) = (w[0], w[1], w[2]);
        if a.2 == 1 && b.2 == 0 && c.2 == 1 {
            let on = (b.0 - a.0) * 1000.0;
            let period = (c.0 - a.0) * 1000.0;
            if (on - on_ms).abs() < on_ms * 0.5 && (period - period_ms).abs() < period_ms * 0.5 {
                run += 1;
                if run >= n {
                    return true;
                }
                continue;
            }
        }
        if a.2 == 1 {
            run = 0;
        }
    }
    false
}
