//! A real, private Dovecot (2.3) on 127.0.0.1 for integration tests — one per test.
//!
//! The server itself is `mailbeacon::demo::dovecot::Dovecot`, the one `mailbeacon demo` runs:
//! this fixture gives it a fresh temporary folder, installs Dovecot once per test process when
//! it is missing (`.ci/install-deps`), turns its errors into panics with Dovecot's log, and adds
//! the mailbox inspections tests need (UIDs, flags, UIDVALIDITY, re-created folders).
//!
//! Each instance listens on two free loopback ports: `imaps` (implicit TLS) and plaintext
//! `imap`. Users: `alice` / `secret` and `bob` / `secret`. The master is tied to the test
//! process by a parent-death signal, so it goes down with it even without `Drop`.
//!
//! Needs root (mail is owned by the `dovecot` user) and the packages from `.ci/install-deps`.

use mailbeacon::demo::dovecot::{CertKind, Dovecot as Server};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{SystemTime, UNIX_EPOCH};

/// Users created in every instance (password `secret` for all).
pub const USERS: &[&str] = &["alice", "bob"];
/// The password of every user.
pub const PASSWORD: &str = "secret";

pub struct Dovecot {
    server: Server,
}

impl Dovecot {
    /// Starts a private Dovecot on 127.0.0.1 (implicit-TLS `imaps` + plaintext `imap`, each on a
    /// free port) and returns once both answer. Panics with a clear message if
    /// dovecot/doveadm/openssl are missing (run `.ci/install-deps`) or start fails.
    pub fn start() -> Dovecot {
        Dovecot::start_with("")
    }

    /// [`Dovecot::start`] with `extra` settings inside `protocol imap { }`.
    pub fn start_with(extra: &str) -> Dovecot {
        Dovecot::start_kind(extra, CertKind::Server)
    }

    /// [`Dovecot::start`] with the certificate of the `openssl req -x509 … -subj /CN=localhost`
    /// one-liner: CA:TRUE, no subjectAltName, so clients must connect to `localhost`.
    pub fn start_one_liner() -> Dovecot {
        Dovecot::start_kind("", CertKind::OneLiner)
    }

    fn start_kind(extra: &str, cert: CertKind) -> Dovecot {
        install_once();
        let dir = mailbeacon::demo::process::unique_dir("mbdc").expect("create dovecot temp dir");
        match Server::start_in_with(dir, USERS, PASSWORD, extra, cert) {
            Ok(server) => Dovecot { server },
            Err(e) => panic!("{e}\n(the Dovecot test fixture needs root and .ci/install-deps)"),
        }
    }

    /// [`Dovecot::start`] that also accepts OAuth 2.0 bearer tokens over the SASL `mechanisms`
    /// (`"xoauth2"`, `"oauthbearer"` or both), each checked at `introspection_url`.
    pub fn start_oauth2(introspection_url: &str, mechanisms: &str) -> Dovecot {
        install_once();
        let dir = mailbeacon::demo::process::unique_dir("mbdc").expect("create dovecot temp dir");
        match Server::start_oauth2_in(dir, USERS, PASSWORD, introspection_url, mechanisms) {
            Ok(server) => Dovecot { server },
            Err(e) => panic!("{e}\n(the Dovecot test fixture needs root and .ci/install-deps)"),
        }
    }

    pub fn imaps_port(&self) -> u16 {
        self.server.imaps_port()
    }

    /// The plaintext IMAP port (LOGIN is allowed without TLS; STARTTLS is offered too).
    pub fn imap_port(&self) -> u16 {
        self.server.imap_port()
    }

    /// The self-signed server certificate — use it as the only trust anchor.
    pub fn ca_file(&self) -> PathBuf {
        self.server.ca_file()
    }

    /// The instance's private folder.
    pub fn dir(&self) -> &Path {
        self.server.dir()
    }

    /// The dovecot.conf of this instance (for `doveadm -c`).
    pub fn conf_path(&self) -> &Path {
        self.server.conf_path()
    }

    /// Whether the master process is currently running.
    pub fn is_running(&self) -> bool {
        self.server.is_running()
    }

    /// The Dovecot log (plus the master's stderr) so far, for debugging.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// Saves one raw RFC 5322 message into USER's FOLDER (created if missing) with
    /// `doveadm save`. Needs the server running (doveadm asks its auth process for the user).
    pub fn deliver(&self, user: &str, folder: &str, raw: &[u8]) {
        if let Err(e) = self.server.deliver(user, folder, raw) {
            panic!("{e}");
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
            std::net::TcpStream::connect(("127.0.0.1", self.imap_port())).expect("connect imap");
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
        if let Err(e) = self.server.stop() {
            panic!("{e}");
        }
    }

    /// Starts the server again on the SAME ports with the same mail (stops it first if it is
    /// still running). Retries for a while if a port is momentarily taken.
    pub fn restart(&self) {
        if let Err(e) = self.server.restart() {
            panic!("{e}");
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
        self.server.doveadm(args)
    }

    // ---------------------------------------------------------------- internals

    fn ensure_folder(&self, user: &str, folder: &str) {
        if let Err(e) = self.server.ensure_folder(user, folder) {
            panic!("{e}");
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
        self.server
            .doveadm_checked(args, b"")
            .unwrap_or_else(|e| panic!("{e}"))
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
}

/// On a fresh machine the first fixture installs what it needs by running `.ci/install-deps`
/// (once per test process), so `cargo test` alone works.
fn install_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let present = mailbeacon::demo::dovecot::BINARIES
            .iter()
            .all(|b| mailbeacon::demo::process::find_bin(b).is_some());
        if present {
            return;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/install-deps");
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
