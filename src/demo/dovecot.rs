//! A real, private Dovecot (2.3) on 127.0.0.1: the demo's mail server, and the engine of the
//! integration tests' fixture (`tests/common/dovecot.rs` wraps this with panics).
//!
//! An instance lives in a folder its caller made (config, TLS key pair, passwd file, maildirs,
//! base_dir, state_dir, log) and listens on two free loopback ports: `imaps` (implicit TLS) and
//! plaintext `imap`. The master runs in the foreground (`dovecot -F`) in its own process group,
//! tied to this process by a parent-death signal ([`super::process::spawn_tied`]). `stop()` and
//! `Drop` send SIGTERM, wait for the master (SIGKILL after 10 s), end its stragglers and wait
//! until both ports are closed; `Drop` also removes the folder (unless `MAILBEACON_KEEP_DOVECOT`).
//!
//! Needs root (mail is owned by the `dovecot` user, logins run as `dovenull`).

use super::process::{find_bin, group_has_live_members, lock, spawn_tied};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const START_ATTEMPTS: u32 = 8;

pub struct Dovecot {
    dir: PathBuf,
    conf: PathBuf,
    imaps_port: u16,
    imap_port: u16,
    /// Unique `login_greeting`; proves that the port answering is this instance.
    token: String,
    /// Settings added inside `protocol imap { }` (e.g. a capability list without IDLE).
    extra: String,
    /// OAuth 2.0 logins: the token introspection URL and the SASL mechanisms to offer.
    oauth2: Option<(String, String)>,
    cert: CertKind,
    child: Mutex<Option<Child>>,
}

/// The kind of server certificate an instance makes for itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CertKind {
    /// CN=localhost, SAN DNS:localhost and IP:127.0.0.1, CA:FALSE, EKU serverAuth: what a
    /// careful administrator makes.
    #[default]
    Server,
    /// What the common `openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost`
    /// one-liner makes: basicConstraints CA:TRUE and no subjectAltName (connect to `localhost`).
    OneLiner,
}

enum LaunchError {
    PortClash(String),
    Other(String),
}

/// What a launch needs that may be missing on a fresh machine.
pub const BINARIES: &[&str] = &["dovecot", "doveadm", "openssl"];

impl Dovecot {
    /// Starts a Dovecot in `dir` (an empty folder, traversable by the `dovecot` users) with
    /// these users, all with `password`, and returns once the `imaps` port accepts connections
    /// and the plaintext port greets with this instance's greeting (the auth process is up).
    /// On failure the folder is removed and the error carries Dovecot's log.
    pub(crate) fn start_in(
        dir: PathBuf,
        users: &[&str],
        password: &str,
        extra: &str,
    ) -> Result<Dovecot, String> {
        Dovecot::launch_in(dir, users, password, extra, CertKind::Server, None)
    }

    /// [`Dovecot::start_in`] with a certificate of this kind.
    pub fn start_in_with(
        dir: PathBuf,
        users: &[&str],
        password: &str,
        extra: &str,
        cert: CertKind,
    ) -> Result<Dovecot, String> {
        Dovecot::launch_in(dir, users, password, extra, cert, None)
    }

    /// [`Dovecot::start_in`] that also takes OAuth 2.0 bearer tokens with the SASL
    /// `mechanisms` given (`"xoauth2 oauthbearer"`), each checked by POSTing it to
    /// `introspection_url` (Dovecot's `oauth2` passdb, RFC 7662 style): a token the endpoint
    /// calls `active` logs in as its `username`.
    pub fn start_oauth2_in(
        dir: PathBuf,
        users: &[&str],
        password: &str,
        introspection_url: &str,
        mechanisms: &str,
    ) -> Result<Dovecot, String> {
        let oauth2 = Some((introspection_url.to_string(), mechanisms.to_string()));
        Dovecot::launch_in(dir, users, password, "", CertKind::Server, oauth2)
    }

    fn launch_in(
        dir: PathBuf,
        users: &[&str],
        password: &str,
        extra: &str,
        cert: CertKind,
        oauth2: Option<(String, String)>,
    ) -> Result<Dovecot, String> {
        let openssl = require_bin("openssl")?;
        require_bin("dovecot")?;
        require_bin("doveadm")?;
        if !super::process::is_root() {
            return Err(
                "Dovecot must be started as root (it runs mail processes as the \
                 `dovecot` user and logins as `dovenull`)"
                    .into(),
            );
        }
        let name = dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().to_string());
        let mut d = Dovecot {
            conf: dir.join("dovecot.conf"),
            token: format!("mailbeacon-dovecot-{name}"),
            dir,
            extra: extra.to_string(),
            oauth2,
            cert,
            imaps_port: 0,
            imap_port: 0,
            child: Mutex::new(None),
        };
        // From here on, an early return drops `d`, which removes the folder.
        d.prepare_dir(&openssl, users, password)?;
        let mut last = String::new();
        for _attempt in 0..START_ATTEMPTS {
            let (imap, imaps) = free_ports()?;
            d.imap_port = imap;
            d.imaps_port = imaps;
            d.write_conf()?;
            match d.launch() {
                Ok(()) => return Ok(d),
                Err(LaunchError::PortClash(msg)) => last = msg,
                Err(LaunchError::Other(msg)) => {
                    return Err(format!(
                        "Dovecot did not start: {msg}\n--- dovecot log ---\n{}",
                        d.log()
                    ))
                }
            }
        }
        Err(format!(
            "Dovecot did not start after {START_ATTEMPTS} attempts (ports kept clashing): \
             {last}\n--- dovecot log ---\n{}",
            d.log()
        ))
    }

    pub fn imaps_port(&self) -> u16 {
        self.imaps_port
    }

    /// The plaintext IMAP port (LOGIN is allowed without TLS; STARTTLS is offered too).
    pub fn imap_port(&self) -> u16 {
        self.imap_port
    }

    /// The self-signed server certificate (PEM; see [`CertKind`]) — use it as the only trust
    /// anchor.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    /// Whether the master process is currently running.
    pub fn is_running(&self) -> bool {
        match lock(&self.child).as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The Dovecot log (plus the master's stderr) so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(b) = fs::read(self.dir.join("dovecot.log")) {
            s.push_str(&String::from_utf8_lossy(&b));
        }
        if let Ok(b) = fs::read(self.dir.join("master.stderr")) {
            if !b.is_empty() {
                s.push_str("--- master stderr ---\n");
                s.push_str(&String::from_utf8_lossy(&b));
            }
        }
        s
    }

    /// Saves one raw RFC 5322 message into USER's FOLDER (created if missing) with
    /// `doveadm save`. Needs the server running (doveadm asks its auth process for the user).
    pub fn deliver(&self, user: &str, folder: &str, raw: &[u8]) -> Result<(), String> {
        self.ensure_folder(user, folder)?;
        self.doveadm_checked(&["save", "-u", user, "-m", folder], raw)
            .map(|_| ())
    }

    /// Creates FOLDER for USER unless it is INBOX or exists already.
    pub fn ensure_folder(&self, user: &str, folder: &str) -> Result<(), String> {
        if folder.eq_ignore_ascii_case("INBOX") {
            return Ok(());
        }
        let out = self.doveadm(&["mailbox", "create", "-u", user, folder]);
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || err.contains("already exists") {
            return Ok(());
        }
        Err(format!(
            "doveadm mailbox create -u {user} {folder} failed: {err}{}",
            self.not_running_hint()
        ))
    }

    /// Stops the server: SIGTERM to the master (SIGKILL after 10 s), wait for it to exit and for
    /// both ports to close. Existing IMAP sessions are cut. No-op when already stopped.
    pub fn stop(&self) -> Result<(), String> {
        self.stop_inner()
            .map_err(|e| format!("stopping Dovecot: {e}\n--- dovecot log ---\n{}", self.log()))
    }

    /// Starts the server again on the SAME ports with the same mail (stops it first if it is
    /// still running). Retries for a while if a port is momentarily taken.
    pub fn restart(&self) -> Result<(), String> {
        self.stop()?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.launch() {
                Ok(()) => return Ok(()),
                Err(LaunchError::PortClash(_)) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(200));
                }
                Err(LaunchError::PortClash(msg)) | Err(LaunchError::Other(msg)) => {
                    return Err(format!(
                        "Dovecot restart on ports imap={} imaps={} failed: {msg}\n\
                         --- dovecot log ---\n{}",
                        self.imap_port,
                        self.imaps_port,
                        self.log()
                    ))
                }
            }
        }
    }

    /// Runs `doveadm -c CONF ARGS...` and returns its output (no check; a doveadm that cannot
    /// be run is an output with a failed status and the reason on stderr).
    pub fn doveadm(&self, args: &[&str]) -> Output {
        self.doveadm_stdin(args, b"")
    }

    /// [`Dovecot::doveadm`] with `input` on stdin.
    fn doveadm_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::os::unix::process::ExitStatusExt;
        let failed = |e: String| Output {
            status: std::process::ExitStatus::from_raw(1 << 8),
            stdout: Vec::new(),
            stderr: e.into_bytes(),
        };
        let bin = match require_bin("doveadm") {
            Ok(b) => b,
            Err(e) => return failed(e),
        };
        let spawned = Command::new(bin)
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => return failed(format!("spawn doveadm: {e}")),
        };
        if let Some(mut stdin) = child.stdin.take() {
            // doveadm may exit early on error; a broken pipe is reported through its status.
            let _ = stdin.write_all(input);
        }
        child
            .wait_with_output()
            .unwrap_or_else(|e| failed(format!("wait for doveadm: {e}")))
    }

    /// doveadm with `input`, an error naming the command when it fails.
    pub fn doveadm_checked(&self, args: &[&str], input: &[u8]) -> Result<Output, String> {
        let out = self.doveadm_stdin(args, input);
        if out.status.success() {
            return Ok(out);
        }
        Err(format!(
            "doveadm {} failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.not_running_hint()
        ))
    }

    fn not_running_hint(&self) -> &'static str {
        if self.is_running() {
            ""
        } else {
            " (Dovecot is stopped: doveadm needs the running server)"
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.stop_inner();
        if std::env::var_os("MAILBEACON_KEEP_DOVECOT").is_some() {
            eprintln!("keeping Dovecot folder {}", self.dir.display());
            return;
        }
        if fs::remove_dir_all(&self.dir).is_err() {
            thread::sleep(Duration::from_millis(200));
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn require_bin(name: &str) -> Result<PathBuf, String> {
    find_bin(name).ok_or_else(|| {
        format!(
            "`{name}` not found (looked in PATH and /usr/sbin): Dovecot needs the packages \
             dovecot-imapd, dovecot-core and openssl"
        )
    })
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Two distinct free loopback ports (bound together, then released).
fn free_ports() -> Result<(u16, u16), String> {
    let bind = || {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind 127.0.0.1:0: {e}"))
    };
    // Both stay bound until both ports are known, so they differ.
    let (a, b) = (bind()?, bind()?);
    let port = |l: &TcpListener| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string());
    Ok((port(&a)?, port(&b)?))
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut s = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        use std::io::Seek;
        if f.seek(std::io::SeekFrom::Start(offset)).is_ok() {
            let mut b = Vec::new();
            let _ = f.read_to_end(&mut b);
            s = String::from_utf8_lossy(&b).to_string();
        }
    }
    s
}

mod launch;
