//! What the Cyrus and Courier fixtures (tests/common/cyrus.rs, tests/common/courier.rs) share:
//! a private folder, two free loopback ports, and the server's processes — started tied to the
//! test process, stopped all together, including those that leave the process group they were
//! started in (couriertcpd makes its own), which are found through the instance's private mount
//! namespace while its first process still holds it.

use mailbeacon::demo::process::{group_has_live_members, lock, spawn_tied};
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A process, told apart from a later one with the same pid by its start time.
type Proc = (libc::pid_t, u64);

pub struct Instance {
    pub dir: PathBuf,
    pub imap_port: u16,
    pub imaps_port: u16,
    child: Mutex<Option<Child>>,
}

impl Instance {
    pub fn new(prefix: &str) -> Instance {
        let dir = mailbeacon::demo::process::unique_dir(prefix).expect("server temp dir");
        let (imap_port, imaps_port) = free_ports();
        Instance {
            dir,
            imap_port,
            imaps_port,
            child: Mutex::new(None),
        }
    }

    /// Spawns `cmd` (its own process group) and waits until the plaintext port greets with
    /// `* OK` and the TLS port accepts connections.
    pub fn launch(&self, cmd: Command) -> Result<(), String> {
        let child = spawn_tied(cmd).map_err(|e| format!("spawn: {e}"))?;
        *lock(&self.child) = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = lock(&self.child).as_mut().map(Child::try_wait) {
                return Err(format!("exited with {status} while starting"));
            }
            if greets(self.imap_port) && TcpStream::connect(("127.0.0.1", self.imaps_port)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.stop();
                return Err(format!(
                    "ports {} and {} not ready after {READY_TIMEOUT:?}",
                    self.imap_port, self.imaps_port
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM to the process group and to the processes in the instance's own mount
    /// namespace, if it has one (SIGKILL after 10 s); then waits until none is left and both
    /// ports refuse connections. No-op when stopped.
    pub fn stop(&self) -> Result<(), String> {
        let Some(mut child) = lock(&self.child).take() else {
            return Ok(());
        };
        let leader = child.id() as libc::pid_t;
        // Found before the leader is told to go: its namespace is certain only while it lives.
        let mut known: Vec<Proc> = match child.try_wait() {
            Ok(None) => namespace_peers(leader),
            _ => Vec::new(),
        };
        let deadline = Instant::now() + STOP_TIMEOUT;
        // SAFETY: kill(2) on the process group this fixture created, whose leader is not
        // reaped before the end of this function.
        unsafe { libc::kill(-leader, libc::SIGTERM) };
        for p in &known {
            signal(*p, libc::SIGTERM);
        }
        loop {
            let running = matches!(child.try_wait(), Ok(None));
            if running {
                // Processes forked meanwhile (a connection's imapd) are found on the next turn.
                for p in namespace_peers(leader) {
                    if !known.contains(&p) {
                        signal(p, libc::SIGTERM);
                        known.push(p);
                    }
                }
            }
            known.retain(|p| alive(*p));
            let done = !running && !group_has_live_members(leader) && known.is_empty();
            if done || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above.
        unsafe { libc::kill(-leader, libc::SIGKILL) };
        for p in known {
            signal(p, libc::SIGKILL);
        }
        let _ = child.wait();
        self.wait_ports_closed()
    }

    fn wait_ports_closed(&self) -> Result<(), String> {
        let deadline = Instant::now() + STOP_TIMEOUT;
        while [self.imap_port, self.imaps_port]
            .iter()
            .any(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
        {
            if Instant::now() > deadline {
                return Err(format!(
                    "ports {} / {} still open after the server stopped",
                    self.imap_port, self.imaps_port
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stops the server and removes the folder (kept with `MAILBEACON_KEEP_SERVERS`).
    pub fn remove(&self) {
        let _ = self.stop();
        if std::env::var_os("MAILBEACON_KEEP_SERVERS").is_some() {
            eprintln!("keeping server folder {}", self.dir.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The other processes in `leader`'s mount namespace when it is not this process's. The kernel
/// hands a freed namespace's number to the next new one at once, so a number is only trusted
/// while the leader, alive before and after the scan, held the namespace throughout.
fn namespace_peers(leader: libc::pid_t) -> Vec<Proc> {
    let ns = mount_namespace(&leader.to_string());
    if ns.is_none() || ns == mount_namespace("self") {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let peers: Vec<Proc> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|pid| *pid != leader && mount_namespace(&pid.to_string()) == ns)
        .filter_map(|pid| Some((pid, start_time(pid)?)))
        .collect();
    if mount_namespace(&leader.to_string()) == ns {
        peers
    } else {
        Vec::new()
    }
}

/// The mount namespace of process `pid` (`self` for this one), e.g. `mnt:[4026532555]`; none
/// for a zombie.
fn mount_namespace(pid: &str) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .map(|l| l.to_string_lossy().to_string())
}

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.
fn start_time(pid: libc::pid_t) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ..." — comm may contain spaces and parentheses.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn alive(p: Proc) -> bool {
    let state = std::fs::read_to_string(format!("/proc/{}/stat", p.0)).unwrap_or_default();
    let zombie = state
        .rsplit_once(')')
        .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
    start_time(p.0) == Some(p.1) && !zombie
}

fn signal(p: Proc, sig: libc::c_int) {
    if start_time(p.0) == Some(p.1) {
        // SAFETY: kill(2) on a process this fixture's server started, checked by its start
        // time to be that very process.
        unsafe { libc::kill(p.0, sig) };
    }
}

/// Two distinct free loopback ports (bound together, then released).
pub fn free_ports() -> (u16, u16) {
    let bind = || TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    let (a, b) = (bind(), bind());
    let port = |l: &TcpListener| l.local_addr().expect("local addr").port();
    (port(&a), port(&b))
}

/// Whether `port` answers with an IMAP `* OK` greeting.
fn greets(port: u16) -> bool {
    let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    tcp.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let mut line = String::new();
    BufReader::new(tcp).read_line(&mut line).is_ok() && line.starts_with("* OK")
}

/// A throwaway key pair for 127.0.0.1 in `dir` (`key.pem`, `cert.pem`), as the Dovecot
/// fixture makes (src/demo/dovecot/launch.rs).
pub fn make_cert(dir: &Path) -> Result<(), String> {
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .output()
        .map_err(|e| format!("run openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl req: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Runs `cmd`; `Err` with its output when it fails.
pub fn run(mut cmd: Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// A file's text, or an empty string.
pub fn read(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).to_string())
        .unwrap_or_default()
}

/// A syslog socket for a server that logs nowhere else (Cyrus): a datagram socket in the
/// instance's folder, which the server's mount namespace shows as `/dev/log` (see
/// [`Syslog::mount_script`]); every message is appended to `syslog.log` beside it.
pub struct Syslog {
    socket: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Syslog {
    pub fn start(dir: &Path) -> Result<Syslog, String> {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        use std::sync::atomic::Ordering;
        let socket = dir.join("syslog.sock");
        let rx = std::os::unix::net::UnixDatagram::bind(&socket)
            .map_err(|e| format!("bind {}: {e}", socket.display()))?;
        // The server's processes run as an ordinary user.
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| format!("chmod {}: {e}", socket.display()))?;
        rx.set_read_timeout(Some(Duration::from_millis(200))).ok();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, log) = (stop.clone(), dir.join("syslog.log"));
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while !flag.load(Ordering::Relaxed) {
                if let Ok(n) = rx.recv(&mut buf) {
                    let line = String::from_utf8_lossy(&buf[..n]).trim_end().to_string();
                    if let Ok(mut f) = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)
                    {
                        let _ = writeln!(f, "{line}");
                    }
                }
            }
        });
        Ok(Syslog { socket, stop })
    }

    /// Shell lines (run as root in a fresh mount namespace) that show the socket as
    /// `/dev/log`: an overlay on /dev whose upper layer, in `upper`, takes the mount point,
    /// so that nothing is created in the machine's /dev.
    pub fn mount_script(&self, upper: &Path) -> String {
        let u = upper.display();
        format!(
            "mkdir -p {u}/upper {u}/work\n\
             mount -t overlay overlay -o lowerdir=/dev,upperdir={u}/upper,workdir={u}/work /dev\n\
             touch /dev/log\n\
             mount --bind {} /dev/log\n",
            self.socket.display()
        )
    }
}

impl Drop for Syslog {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
