//! IMAP servers other than Dovecot for the integration tests (tests/servers.rs): Cyrus IMAP
//! and Courier-IMAP (with enhanced IDLE, and with Debian's default IDLE), behind one small
//! surface so that one test body runs against each.
//!
//! Both come from Debian's packages, unpacked by `.ci/imap-servers` into a root kept per
//! machine (`/var/cache/mailbeacon-tests/imap-servers`) and never installed: they conflict with
//! `dovecot-imapd`. Every instance has its own temporary folder and two free loopback ports:
//! `imaps` (implicit TLS, a throwaway certificate for 127.0.0.1) for the daemon, and plaintext
//! `imap` on which the tests APPEND mail and manage folders as an ordinary IMAP client would.
//! Users `alice` and `bob`, password `secret`. A server that cannot start panics with its log:
//! a test never skips because a server is missing.

use crate::common::courier::Courier;
use crate::common::cyrus::Cyrus;
use crate::common::instance::Instance;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Users created in every instance (password [`PASSWORD`]).
pub const USERS: &[&str] = &["alice", "bob"];
pub const PASSWORD: &str = "secret";
const START_ATTEMPTS: usize = 3;

/// Which server, and for Courier which IDLE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Cyrus,
    /// `IMAP_ENHANCEDIDLE=1`: Courier watches the maildir (FAM, through gamin) and pushes
    /// `* N EXISTS` during IDLE.
    CourierEnhancedIdle,
    /// Debian's default `IMAP_ENHANCEDIDLE=0`: Courier looks at the mailbox only every
    /// `IMAP_IDLE_TIMEOUT` (60 s) while idling, and reports new mail in its answers to `DONE`
    /// and `NOOP`.
    CourierDefaultIdle,
}

enum Backend {
    Cyrus(Cyrus),
    Courier(Courier),
}

/// One running server.
pub struct ImapServer {
    kind: Kind,
    backend: Backend,
}

impl ImapServer {
    /// Starts a private instance; panics with the server's log when it does not come up.
    pub fn start(kind: Kind) -> ImapServer {
        let root = unpacked_root();
        let mut failures = Vec::new();
        // The free ports are chosen, released, then bound by the server: on a busy machine
        // another process may take one in between, so a failed start is tried afresh.
        for _attempt in 0..START_ATTEMPTS {
            let backend = match kind {
                Kind::Cyrus => Cyrus::start(&root).map(Backend::Cyrus),
                Kind::CourierEnhancedIdle => Courier::start(&root, true).map(Backend::Courier),
                Kind::CourierDefaultIdle => Courier::start(&root, false).map(Backend::Courier),
            };
            match backend {
                Ok(backend) => return ImapServer { kind, backend },
                Err(e) => failures.push(e),
            }
        }
        panic!(
            "{kind:?} did not start ({START_ATTEMPTS} attempts):\n{}",
            failures.join("\n--- next attempt ---\n")
        );
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether new mail reaches a client that idles, without it leaving IDLE.
    pub fn pushes_during_idle(&self) -> bool {
        self.kind != Kind::CourierDefaultIdle
    }

    fn instance(&self) -> &Instance {
        match &self.backend {
            Backend::Cyrus(c) => c.instance(),
            Backend::Courier(c) => c.instance(),
        }
    }

    /// The implicit-TLS port the daemon uses.
    pub fn imaps_port(&self) -> u16 {
        self.instance().imaps_port
    }

    /// The self-signed certificate of the `imaps` port: the only trust anchor to use.
    pub fn ca_file(&self) -> PathBuf {
        self.instance().dir.join("cert.pem")
    }

    /// A folder below the user's INBOX level, as this server names it (`Work` on Cyrus,
    /// `INBOX.Work` on Courier, whose personal namespace is `INBOX.`).
    pub fn folder(&self, name: &str) -> String {
        match self.backend {
            Backend::Cyrus(_) => name.to_string(),
            Backend::Courier(_) => format!("INBOX.{name}"),
        }
    }

    /// The server's log so far (with its configuration's folder named), for failure messages.
    pub fn log(&self) -> String {
        match &self.backend {
            Backend::Cyrus(c) => c.log(),
            Backend::Courier(c) => c.log(),
        }
    }

    /// Stops every process of the server and waits until both ports are closed: sessions are
    /// cut as by a crash or a reboot of the server.
    pub fn stop(&self) {
        if let Err(e) = self.instance().stop() {
            panic!("stopping {:?}: {e}\n{}", self.kind, self.log());
        }
    }

    /// Starts the server again on the same ports with the same mail.
    pub fn restart(&self) {
        self.stop();
        let launched = match &self.backend {
            Backend::Cyrus(c) => c.launch(),
            Backend::Courier(c) => c.launch(),
        };
        if let Err(e) = launched {
            panic!("restarting {:?}: {e}\n{}", self.kind, self.log());
        }
    }

    /// APPENDs one raw mail as USER into FOLDER (created if missing); its UID. `Err` carries the server's refusal (Cyrus refuses NUL characters).
    pub fn append(&self, user: &str, folder: &str, raw: &[u8]) -> Result<u32, String> {
        let mut s = self.session(user);
        ensure_folder(&mut s, folder);
        let appended = append(&mut s, folder, raw);
        let _ = s.logout();
        appended
    }

    /// [`ImapServer::append`] that must succeed.
    pub fn deliver(&self, user: &str, folder: &str, raw: &[u8]) {
        if let Err(e) = self.append(user, folder, raw) {
            panic!("{:?} refused APPEND to {user}/{folder}: {e}", self.kind);
        }
    }

    /// The folder's UIDVALIDITY (STATUS).
    pub fn uidvalidity(&self, user: &str, folder: &str) -> u32 {
        let mut s = self.session(user);
        let status = s.status(folder, "(UIDVALIDITY)");
        let _ = s.logout();
        status
            .ok()
            .and_then(|m| m.uid_validity)
            .unwrap_or_else(|| panic!("{:?}: no UIDVALIDITY for {user}/{folder}", self.kind))
    }

    /// Creates an empty FOLDER (see [`pin_uidvalidity`]).
    pub fn create_folder(&self, user: &str, folder: &str) {
        let mut s = self.session(user);
        s.create(folder)
            .unwrap_or_else(|e| panic!("CREATE {folder}: {e}"));
        pin_uidvalidity(&mut s, folder).unwrap_or_else(|e| panic!("{e}"));
        let _ = s.logout();
    }

    /// Deletes and re-creates FOLDER (not INBOX) with IMAP DELETE and CREATE: its mail is gone
    /// and it has a new UIDVALIDITY.
    pub fn recreate_folder(&self, user: &str, folder: &str) {
        let before = self.uidvalidity(user, folder);
        let mut s = self.session(user);
        s.delete(folder)
            .unwrap_or_else(|e| panic!("DELETE {folder}: {e}"));
        s.create(folder)
            .unwrap_or_else(|e| panic!("CREATE {folder}: {e}"));
        pin_uidvalidity(&mut s, folder).unwrap_or_else(|e| panic!("{e}"));
        let _ = s.logout();
        let after = self.uidvalidity(user, folder);
        assert_ne!(
            before, after,
            "{:?}: {folder} kept its UIDVALIDITY",
            self.kind
        );
    }

    /// A logged-in session on the plaintext port.
    pub fn session(&self, user: &str) -> imap::Session<TcpStream> {
        login(self.instance().imap_port, user, PASSWORD)
            .unwrap_or_else(|e| panic!("{:?}: {e}\n{}", self.kind, self.log()))
    }
}

/// APPEND on an open session; the new mail's UID. The tests are the only writers of their
/// mailboxes, so it is the one below UIDNEXT (the imap crate does not expose APPENDUID's).
pub fn append(s: &mut imap::Session<TcpStream>, folder: &str, raw: &[u8]) -> Result<u32, String> {
    s.append(folder, raw).finish().map_err(|e| e.to_string())?;
    let status = s
        .status(folder, "(UIDNEXT)")
        .map_err(|e| format!("STATUS: {e}"))?;
    status
        .uid_next
        .map(|next| next - 1)
        .ok_or_else(|| format!("no UIDNEXT for {folder}"))
}

/// Stores one mail in FOLDER and expunges it again, leaving it empty: Courier gives a maildir
/// that never held a message a new UIDVALIDITY each time it is opened, which a real mailbox
/// does not do and which would make every reconnection look like a re-created folder.
pub fn pin_uidvalidity(s: &mut imap::Session<TcpStream>, folder: &str) -> Result<(), String> {
    let first = b"From: postmaster@example.net\r\nSubject: Welcome\r\n\r\nExpunged at once.\r\n";
    let what = |e: imap::Error| format!("pinning the UIDVALIDITY of {folder}: {e}");
    s.append(folder, first).finish().map_err(what)?;
    s.select(folder).map_err(what)?;
    s.store("1:*", "+FLAGS (\\Deleted)").map_err(what)?;
    s.expunge().map_err(what)?;
    s.close().map_err(what)
}

fn ensure_folder(s: &mut imap::Session<TcpStream>, folder: &str) {
    if !folder.eq_ignore_ascii_case("INBOX") && s.status(folder, "(MESSAGES)").is_err() {
        s.create(folder)
            .unwrap_or_else(|e| panic!("CREATE {folder}: {e}"));
    }
}

/// LOGIN on a plaintext loopback port.
pub fn login(port: u16, user: &str, password: &str) -> Result<imap::Session<TcpStream>, String> {
    let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .map_err(|e| format!("connect to 127.0.0.1:{port}: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut client = imap::Client::new(tcp);
    client
        .read_greeting()
        .map_err(|e| format!("greeting on {port}: {e}"))?;
    client
        .login(user, password)
        .map_err(|(e, _)| format!("LOGIN {user} on {port}: {e}"))
}

/// The unpacked Debian root with Cyrus and Courier, made by `.ci/imap-servers` once per test
/// process (the script itself keeps it between runs and locks against concurrent runs).
pub fn unpacked_root() -> PathBuf {
    static ROOT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/imap-servers");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .map_err(|e| format!("run {}: {e}", script.display()))?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(format!(
                "{} failed ({}):\n{err}",
                script.display(),
                out.status
            ));
        }
        text.lines()
            .find_map(|l| l.strip_prefix("root="))
            .map(PathBuf::from)
            .ok_or_else(|| format!("{} printed no root=: {text}{err}", script.display()))
    });
    match root {
        Ok(r) => r.clone(),
        Err(e) => panic!("the Cyrus and Courier packages are not available: {e}"),
    }
}

/// The libraries of the unpacked root, for `LD_LIBRARY_PATH` (Debian's multiarch folders,
/// e.g. `x86_64-linux-gnu`, and `usr/lib`, where Courier keeps libcourierauth).
pub fn library_path(root: &Path) -> String {
    let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
    [
        format!("usr/lib/{multiarch}"),
        format!("lib/{multiarch}"),
        "usr/lib".to_string(),
    ]
    .iter()
    .map(|d| root.join(d).display().to_string())
    .collect::<Vec<_>>()
    .join(":")
}

impl Drop for ImapServer {
    fn drop(&mut self) {
        self.instance().remove();
    }
}
