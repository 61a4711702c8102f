#![allow(dead_code)]
//! A real, private Dovecot (2.3) on 127.0.0.1 for integration tests — one per test.
//!
//! Each instance lives in its own temporary folder (config, TLS key pair, passwd file, maildirs,
//! base_dir, state_dir, log) and listens on two free loopback ports: `imaps` (implicit TLS) and
//! plaintext `imap`. Users: `alice` / `secret` and `bob` / `secret`.
//!
//! The master runs in the foreground (`dovecot -F`) as a child process owned by this fixture.
//! It is spawned from a dedicated, never-ending thread with `PR_SET_PDEATHSIG = SIGTERM`, so even
//! if the test process dies without running `Drop` (abort, SIGKILL of the harness, a `static`
//! instance) the server goes down with it. `stop()`/`Drop` send SIGTERM, wait for the master to
//! exit (SIGKILL after 10 s) and wait until both ports are closed.
//!
//! Needs root (mail is owned by the `dovecot` user) and the packages from `.ci/install-deps`.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Users created in every instance (password `secret` for all).
pub const USERS: &[&str] = &["alice", "bob"];
/// The password of every user.
pub const PASSWORD: &str = "secret";

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
    child: Mutex<Option<Child>>,
}

enum LaunchError {
    PortClash(String),
    Other(String),
}

impl Dovecot {
    /// Starts a private Dovecot on 127.0.0.1 (implicit-TLS `imaps` + plaintext `imap`, each on a
    /// free port) and returns once the `imaps` port accepts connections and the plaintext port
    /// greets with this instance's greeting (i.e. the auth process is up). Panics with a clear
    /// message if dovecot/doveadm/openssl are missing (run `.ci/install-deps`) or start fails.
    pub fn start() -> Dovecot {
        Dovecot::start_with("")
    }

    /// [`Dovecot::start`] with `extra` settings inside `protocol imap { }`.
    pub fn start_with(extra: &str) -> Dovecot {
        install_once();
        require_bin("dovecot");
        require_bin("doveadm");
        let openssl = require_bin("openssl");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            panic!(
                "the Dovecot test fixture must run as root (it runs mail processes as the \
                 `dovecot` user and logins as `dovenull`)"
            );
        }

        let dir = unique_dir();
        let mut d = Dovecot {
            conf: dir.join("dovecot.conf"),
            token: format!(
                "mailbeacon-test-dovecot-{}",
                dir.file_name().unwrap().to_string_lossy()
            ),
            dir,
            extra: extra.to_string(),
            imaps_port: 0,
            imap_port: 0,
            child: Mutex::new(None),
        };
        // From here on, a panic drops `d`, which removes the folder.
        d.prepare_dir(&openssl);

        let mut last = String::new();
        for _attempt in 0..START_ATTEMPTS {
            let (imap, imaps) = free_ports();
            d.imap_port = imap;
            d.imaps_port = imaps;
            d.write_conf();
            match d.launch() {
                Ok(()) => return d,
                Err(LaunchError::PortClash(msg)) => {
                    last = msg;
                    continue;
                }
                Err(LaunchError::Other(msg)) => {
                    panic!(
                        "Dovecot did not start: {msg}\n--- dovecot log ---\n{}",
                        d.log()
                    )
                }
            }
        }
        panic!(
            "Dovecot did not start after {START_ATTEMPTS} attempts (ports kept clashing): \
             {last}\n--- dovecot log ---\n{}",
            d.log()
        );
    }

    pub fn imaps_port(&self) -> u16 {
        self.imaps_port
    }

    /// The plaintext IMAP port (LOGIN is allowed without TLS; STARTTLS is offered too).
    pub fn imap_port(&self) -> u16 {
        self.imap_port
    }

    /// The self-signed server certificate (PEM; CN=localhost, SAN DNS:localhost, IP:127.0.0.1,
    /// CA:FALSE, EKU serverAuth) — use it as the only trust anchor.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// The instance's private folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The dovecot.conf of this instance (for `doveadm -c`).
    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    /// Whether the master process is currently running.
    pub fn is_running(&self) -> bool {
        let mut g = lock(&self.child);
        match g.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The Dovecot log (plus the master's stderr) so far, for debugging.
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
    pub fn deliver(&self, user: &str, folder: &str, raw: &[u8]) {
        self.ensure_folder(user, folder);
        let out = self.doveadm_stdin(&["save", "-u", user, "-m", folder], raw);
        if !out.status.success() {
            panic!(
                "doveadm save -u {user} -m {folder} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.not_running_hint()
            );
        }
    }

    /// Appends one message over IMAP (plaintext loopback port) with the given INTERNALDATE —
    /// the "received" time that `backfill` windows look at.
    pub fn append_received(
        &self,
        user: &str,
        folder: &str,
        raw: &[u8],
        received: chrono::DateTime<chrono::FixedOffset>,
        seen: bool,
    ) {
        self.ensure_folder(user, folder);
        let tcp =
            std::net::TcpStream::connect(("127.0.0.1", self.imap_port)).expect("connect imap");
        let mut client = imap::Client::new(tcp);
        client.read_greeting().expect("greeting");
        let mut session = client
            .login(user, PASSWORD)
            .map_err(|(e, _)| e)
            .expect("login");
        let mut append = session.append(folder, raw);
        append.internal_date(received);
        if seen {
            append.flag(imap::types::Flag::Seen);
        }
        append.finish().expect("APPEND");
        let _ = session.logout();
    }

    /// The UIDs of the messages currently in the folder, ascending (empty if the folder does
    /// not exist).
    pub fn uids(&self, user: &str, folder: &str) -> Vec<u32> {
        let rows = self.doveadm_tab(&["fetch", "-u", user, "uid", "mailbox", folder, "all"]);
        let mut v: Vec<u32> = rows
            .iter()
            .filter_map(|r| r.first())
            .map(|s| {
                s.trim()
                    .parse::<u32>()
                    .unwrap_or_else(|_| panic!("doveadm fetch uid: unexpected value {s:?}"))
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// The flags of the message with this UID (e.g. `["\\Seen", "\\Recent"]`). Panics if there is
    /// no such message.
    pub fn flags(&self, user: &str, folder: &str, uid: u32) -> Vec<String> {
        let uid_s = uid.to_string();
        let rows = self.doveadm_tab(&[
            "fetch", "-u", user, "flags", "mailbox", folder, "uid", &uid_s,
        ]);
        let row = rows
            .first()
            .unwrap_or_else(|| panic!("no message with UID {uid} in {user}/{folder}"));
        row.first()
            .map(|f| f.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Whether the message with this UID carries `\Seen`.
    pub fn is_seen(&self, user: &str, folder: &str, uid: u32) -> bool {
        self.flags(user, folder, uid)
            .iter()
            .any(|f| f.eq_ignore_ascii_case("\\Seen"))
    }

    /// The folder's current UIDVALIDITY.
    pub fn uidvalidity(&self, user: &str, folder: &str) -> u32 {
        self.status_field(user, folder, "uidvalidity")
    }

    /// The folder's current UIDNEXT.
    pub fn uidnext(&self, user: &str, folder: &str) -> u32 {
        self.status_field(user, folder, "uidnext")
    }

    /// Stops the server: SIGTERM to the master (SIGKILL after 10 s), wait for it to exit and for
    /// both ports to close. Existing IMAP sessions are cut. No-op when already stopped.
    pub fn stop(&self) {
        if let Err(e) = self.stop_inner() {
            panic!("stopping Dovecot: {e}\n--- dovecot log ---\n{}", self.log());
        }
    }

    /// Starts the server again on the SAME ports with the same mail (stops it first if it is
    /// still running). Retries for a while if a port is momentarily taken.
    pub fn restart(&self) {
        self.stop();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.launch() {
                Ok(()) => return,
                Err(LaunchError::PortClash(msg)) if Instant::now() < deadline => {
                    let _ = msg;
                    thread::sleep(Duration::from_millis(200));
                }
                Err(LaunchError::PortClash(msg)) | Err(LaunchError::Other(msg)) => panic!(
                    "Dovecot restart on ports imap={} imaps={} failed: {msg}\n--- dovecot log ---\n{}",
                    self.imap_port,
                    self.imaps_port,
                    self.log()
                ),
            }
        }
    }

    /// Deletes and re-creates the folder: its mail is gone and it gets a new UIDVALIDITY.
    /// Non-INBOX folders are really deleted and created (UIDs restart at 1). INBOX cannot be
    /// deleted in IMAP, so for INBOX all mail is expunged and the UIDVALIDITY is raised with
    /// `doveadm mailbox update --uid-validity` (UIDNEXT is NOT reset for INBOX).
    pub fn recreate_folder(&self, user: &str, folder: &str) {
        let before = self.try_status_field(user, folder, "uidvalidity");
        if folder.eq_ignore_ascii_case("INBOX") {
            self.doveadm_ok(&["expunge", "-u", user, "mailbox", folder, "all"]);
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
                .min(u32::MAX as u64 - 1) as u32;
            let new = now.max(before.unwrap_or(0).saturating_add(1));
            let new_s = new.to_string();
            self.doveadm_ok(&[
                "mailbox",
                "update",
                "-u",
                user,
                "--uid-validity",
                &new_s,
                folder,
            ]);
        } else {
            let out = self.doveadm(&["mailbox", "delete", "-u", user, folder]);
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                if !err.contains("doesn't exist") {
                    panic!("doveadm mailbox delete -u {user} {folder} failed: {err}");
                }
            }
            self.doveadm_ok(&["mailbox", "create", "-u", user, folder]);
        }
        let after = self.uidvalidity(user, folder);
        if let Some(b) = before {
            assert_ne!(
                b, after,
                "recreate_folder({user}, {folder}): UIDVALIDITY did not change"
            );
        }
        assert!(
            self.uids(user, folder).is_empty(),
            "recreate_folder({user}, {folder}): folder is not empty"
        );
    }

    /// Runs `doveadm -c CONF ARGS...` and returns its output (no check).
    pub fn doveadm(&self, args: &[&str]) -> Output {
        self.doveadm_stdin(args, b"")
    }

    // ---------------------------------------------------------------- internals

    fn prepare_dir(&self, openssl: &Path) {
        let d = &self.dir;
        for sub in ["mail", "home", "state"] {
            fs::create_dir_all(d.join(sub)).expect("create dovecot test dirs");
        }
        for u in USERS {
            fs::create_dir_all(d.join("mail").join(u)).expect("create maildir");
            fs::create_dir_all(d.join("home").join(u)).expect("create home");
        }
        let mut passwd = String::new();
        for u in USERS {
            passwd.push_str(&format!("{u}:{{PLAIN}}{PASSWORD}\n"));
        }
        fs::write(d.join("passwd"), passwd).expect("write passwd");

        let out = Command::new(openssl)
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
            ])
            .arg("-keyout")
            .arg(d.join("key.pem"))
            .arg("-out")
            .arg(d.join("cert.pem"))
            .args([
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-addext",
                "basicConstraints=critical,CA:FALSE",
                "-addext",
                "extendedKeyUsage=serverAuth",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run openssl");
        if !out.status.success() {
            panic!(
                "openssl req failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        fs::set_permissions(d.join("key.pem"), fs::Permissions::from_mode(0o600)).ok();
        fs::set_permissions(d.join("cert.pem"), fs::Permissions::from_mode(0o644)).ok();

        let out = Command::new("chown")
            .arg("-R")
            .arg("dovecot:dovecot")
            .arg(d.join("mail"))
            .arg(d.join("home"))
            .output()
            .expect("run chown");
        if !out.status.success() {
            panic!(
                "chown -R dovecot:dovecot failed (is dovecot installed? run .ci/install-deps): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn write_conf(&self) {
        let d = self.dir.display();
        let instance = self.dir.file_name().unwrap().to_string_lossy().to_string();
        let conf = format!(
            r#"# generated by tests/common/dovecot.rs
instance_name = {instance}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
log_timestamp = "%Y-%m-%d %H:%M:%S "
auth_verbose = yes

protocols = imap
listen = 127.0.0.1
login_greeting = {token}

ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login

default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
first_valid_uid = 1

mail_location = maildir:{d}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
}}

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={d}/home/%u
}}

service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}

protocol imap {{
  mail_max_userip_connections = 100
  {extra}
}}
"#,
            extra = self.extra,
            token = self.token,
            imap = self.imap_port,
            imaps = self.imaps_port,
        );
        fs::write(&self.conf, conf).expect("write dovecot.conf");
    }

    /// Spawns the master and waits until it is ready. On failure the child is reaped.
    fn launch(&self) -> Result<(), LaunchError> {
        let log_path = self.dir.join("dovecot.log");
        let log_start = fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
        let stderr_path = self.dir.join("master.stderr");
        let _ = fs::write(&stderr_path, b"");

        let mut child = spawn_master(&self.conf, &stderr_path)
            .map_err(|e| LaunchError::Other(format!("spawning dovecot: {e}")))?;

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let mut msg = format!("dovecot master exited with {status}: ");
                    msg.push_str(&read_from(&log_path, log_start));
                    msg.push_str(&String::from_utf8_lossy(
                        &fs::read(&stderr_path).unwrap_or_default(),
                    ));
                    return Err(if msg.contains("Address already in use") {
                        LaunchError::PortClash(msg)
                    } else {
                        LaunchError::Other(msg)
                    });
                }
                Ok(None) => {}
                Err(e) => return Err(LaunchError::Other(format!("waiting for dovecot: {e}"))),
            }
            if self.is_ready() {
                // The greeting proved the plaintext port is ours; make sure the master did not
                // die meanwhile (a clash on the imaps port is fatal for the master).
                if let Ok(None) = child.try_wait() {
                    *lock(&self.child) = Some(child);
                    return Ok(());
                }
                continue;
            }
            if Instant::now() >= deadline {
                kill_and_reap(&mut child);
                return Err(LaunchError::Other(format!(
                    "not ready within {READY_TIMEOUT:?} (imaps port {} / imap port {})",
                    self.imaps_port, self.imap_port
                )));
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// imaps accepts a TCP connection and the plaintext port greets with our token.
    fn is_ready(&self) -> bool {
        let t = Duration::from_millis(500);
        if TcpStream::connect_timeout(&loopback(self.imaps_port), t).is_err() {
            return false;
        }
        let Ok(s) = TcpStream::connect_timeout(&loopback(self.imap_port), t) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
        let mut r = BufReader::new(&s);
        // "* OK Waiting for authentication process to respond.." may come first.
        for _ in 0..3 {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(n) if n > 0 => {
                    if line.contains(&self.token) {
                        let _ = (&s).write_all(b"z LOGOUT\r\n");
                        return true;
                    }
                    if !line.contains("Waiting for authentication") {
                        return false;
                    }
                }
                _ => return false,
            }
        }
        false
    }

    fn stop_inner(&self) -> Result<(), String> {
        let child = lock(&self.child).take();
        if let Some(mut child) = child {
            // The master leads its own process group (see spawn_master_here); its pid stays
            // reserved as a group id while any member lives, so -pgid only hits this instance.
            let pgid = child.id() as libc::pid_t;
            // SAFETY: plain kill(2) on our own child's pid (not yet reaped, so not reused).
            unsafe { libc::kill(pgid, libc::SIGTERM) };
            let deadline = Instant::now() + STOP_TIMEOUT;
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        kill_and_reap(&mut child);
                        break;
                    }
                }
            }
            // The master is gone (its imap processes have sent "* BYE Server shutting down.").
            // Some processes (imap, log, stats) linger for ~10 s after the master; end them so
            // that open sessions see EOF now and nothing is left behind.
            // SAFETY: kill(2) on the process group of our own (reaped) master, see above.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let deadline = Instant::now() + STOP_TIMEOUT;
            while group_has_live_members(pgid) {
                if Instant::now() >= deadline {
                    return Err(format!("dovecot processes of group {pgid} did not exit"));
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
        // Login processes may hold the listeners a moment longer than the master.
        let deadline = Instant::now() + STOP_TIMEOUT;
        for port in [self.imaps_port, self.imap_port] {
            if port == 0 {
                continue;
            }
            while TcpStream::connect_timeout(&loopback(port), Duration::from_millis(200)).is_ok() {
                if Instant::now() >= deadline {
                    return Err(format!("port {port} still accepts connections after stop"));
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    fn not_running_hint(&self) -> &'static str {
        if self.is_running() {
            ""
        } else {
            " (the Dovecot fixture is stopped: doveadm needs the running server)"
        }
    }

    fn ensure_folder(&self, user: &str, folder: &str) {
        if folder.eq_ignore_ascii_case("INBOX") {
            return;
        }
        let out = self.doveadm(&["mailbox", "create", "-u", user, folder]);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if !err.contains("already exists") {
                panic!(
                    "doveadm mailbox create -u {user} {folder} failed: {err}{}",
                    self.not_running_hint()
                );
            }
        }
    }

    fn status_field(&self, user: &str, folder: &str, field: &str) -> u32 {
        self.try_status_field(user, folder, field)
            .unwrap_or_else(|| panic!("doveadm mailbox status {field} for {user}/{folder} failed"))
    }

    fn try_status_field(&self, user: &str, folder: &str, field: &str) -> Option<u32> {
        let out = self.doveadm(&["-f", "tab", "mailbox", "status", "-u", user, field, folder]);
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next()?.split('\t').collect();
        let col = header.iter().position(|h| *h == field)?;
        let row: Vec<&str> = lines.next()?.split('\t').collect();
        row.get(col)?.trim().parse().ok()
    }

    fn doveadm_ok(&self, args: &[&str]) -> Output {
        let out = self.doveadm(args);
        if !out.status.success() {
            panic!(
                "doveadm {} failed ({}): {}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.not_running_hint()
            );
        }
        out
    }

    /// Runs doveadm with `-f tab` and returns the data rows (header removed), split on tabs.
    fn doveadm_tab(&self, args: &[&str]) -> Vec<Vec<String>> {
        let mut full = vec!["-f", "tab"];
        full.extend_from_slice(args);
        let out = self.doveadm_ok(&full);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1) // header; an empty line is a row with empty values (e.g. no flags)
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    fn doveadm_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = Command::new(require_bin("doveadm"))
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn doveadm (run .ci/install-deps)");
        {
            let mut stdin = child.stdin.take().unwrap();
            // doveadm may exit early on error; a broken pipe is reported through its status.
            let _ = stdin.write_all(input);
        }
        child.wait_with_output().expect("wait for doveadm")
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.stop_inner();
        if std::env::var_os("MAILBEACON_KEEP_DOVECOT").is_some() {
            eprintln!("keeping Dovecot test folder {}", self.dir.display());
            return;
        }
        if fs::remove_dir_all(&self.dir).is_err() {
            thread::sleep(Duration::from_millis(200));
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// -------------------------------------------------------------------- helpers

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
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

/// On a fresh machine the first fixture installs what it needs by running `.ci/install-deps`
/// (once per test process), so `cargo test` alone works.
fn install_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let present = ["dovecot", "doveadm", "openssl"].iter().all(|b| {
            ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
                .iter()
                .any(|d| std::path::Path::new(d).join(b).exists())
        });
        if present {
            return;
        }
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/install-deps");
        eprintln!(
            "dovecot fixture: Dovecot is missing; running {}",
            script.display()
        );
        let status = std::process::Command::new("bash").arg(&script).status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "{} failed",
            script.display()
        );
    });
}

/// Finds a binary in PATH, /usr/sbin, /usr/bin, /sbin, /usr/local/sbin; panics naming
/// `.ci/install-deps` when it is missing.
fn require_bin(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for extra in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        dirs.push(PathBuf::from(extra));
    }
    for d in dirs {
        let p = d.join(name);
        if let Ok(m) = fs::metadata(&p) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return p;
            }
        }
    }
    panic!(
        "`{name}` not found (looked in PATH and /usr/sbin). The Dovecot test fixture needs \
         dovecot-imapd, dovecot-core and openssl: run `.ci/install-deps` (as root)."
    );
}

/// A fresh folder under the temp dir: `mbdc-<pid>-<counter>-<nanos>`. Kept short because
/// Dovecot's unix sockets live below it (108-byte limit). DIR and its ancestors are made
/// traversable (o+x) for the dovecot users.
fn unique_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut base = std::env::temp_dir();
    if base.as_os_str().len() > 40 || !base.is_absolute() {
        base = PathBuf::from("/tmp");
    }
    if COUNTER.load(Ordering::Relaxed) == 0 {
        remove_stale_dirs(&base);
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = base.join(format!("mbdc-{}-{}-{:08x}", std::process::id(), n, nanos));
    fs::create_dir_all(&dir).expect("create dovecot temp dir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod dovecot dir");
    let mut anc = dir.parent();
    while let Some(a) = anc {
        if let Ok(m) = fs::metadata(a) {
            let mode = m.permissions().mode();
            if mode & 0o001 == 0 {
                let _ = fs::set_permissions(a, fs::Permissions::from_mode((mode & 0o7777) | 0o001));
            }
        }
        anc = a.parent();
    }
    dir
}

/// Removes `mbdc-<pid>-*` folders left by test processes that died without Drop (abort,
/// SIGKILL, a `static` instance). Their servers died with them (PDEATHSIG).
fn remove_stale_dirs(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("mbdc-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Two distinct free loopback ports (bound together, then released).
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

/// Whether a process other than a zombie is in process group `pgid` (zombies reparented to
/// init may stay around a while; they hold no sockets). Falls back to kill(-pgid, 0).
fn group_has_live_members(pgid: libc::pid_t) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        // SAFETY: signal 0 only probes whether the group still has members.
        return unsafe { libc::kill(-pgid, 0) } == 0;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ..." — comm may contain spaces and parentheses.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next().unwrap_or("");
        let _ppid = f.next();
        let pgrp: libc::pid_t = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if pgrp == pgid && state != "Z" && state != "X" {
            return true;
        }
    }
    false
}

fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

struct SpawnReq {
    conf: PathBuf,
    stderr: PathBuf,
    reply: mpsc::Sender<std::io::Result<Child>>,
}

/// Masters are spawned from one thread that lives as long as the process, with
/// PR_SET_PDEATHSIG=SIGTERM: they die with the test process even when Drop never runs.
/// (The parent-death signal follows the *thread* that forked, hence the dedicated thread.)
fn spawn_master(conf: &Path, stderr: &Path) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnReq>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnReq>();
        thread::Builder::new()
            .name("dovecot-spawner".into())
            .spawn(move || {
                for req in rx {
                    let _ = req.reply.send(spawn_master_here(&req.conf, &req.stderr));
                }
            })
            .expect("spawn dovecot-spawner thread");
        Mutex::new(tx)
    });
    let (rtx, rrx) = mpsc::channel();
    lock(tx)
        .send(SpawnReq {
            conf: conf.to_path_buf(),
            stderr: stderr.to_path_buf(),
            reply: rtx,
        })
        .map_err(|_| std::io::Error::other("dovecot-spawner thread is gone"))?;
    rrx.recv()
        .map_err(|_| std::io::Error::other("dovecot-spawner thread is gone"))?
}

fn spawn_master_here(conf: &Path, stderr: &Path) -> std::io::Result<Child> {
    let err = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr)?;
    let mut cmd = Command::new(require_bin("dovecot"));
    cmd.arg("-F")
        .arg("-c")
        .arg(conf)
        // Own process group: stop() can end every process of this instance, and Ctrl-C on the
        // test run does not reach it (PDEATHSIG does).
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(err.try_clone()?)
        .stderr(err);
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
    unsafe {
        let parent = libc::getpid();
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died between fork and prctl: do not outlive it.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("parent exited"));
            }
            Ok(())
        });
    }
    cmd.spawn()
}
