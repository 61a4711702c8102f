//! Child processes that must not outlive the one that started them: the demo's Dovecot and
//! daemon, and the test fixtures' Dovecot. Each is spawned from one dedicated, never-ending
//! thread with `PR_SET_PDEATHSIG = SIGTERM` (the parent-death signal follows the *thread* that
//! forked, hence the dedicated thread), so even a SIGKILLed parent takes them down with it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

struct SpawnReq {
    cmd: Command,
    reply: mpsc::Sender<std::io::Result<Child>>,
}

/// Spawns `cmd` in its own process group (Ctrl-C in the terminal does not reach it: its owner
/// stops it) with a parent-death signal.
pub fn spawn_tied(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnReq>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnReq>();
        let spawned = std::thread::Builder::new()
            .name("tied-spawner".into())
            .spawn(move || {
                for mut req in rx {
                    let _ = req.reply.send(spawn_here(&mut req.cmd));
                }
            });
        if let Err(e) = spawned {
            log::error!("cannot start the spawner thread: {e}");
        }
        Mutex::new(tx)
    });
    let (rtx, rrx) = mpsc::channel();
    lock(tx)
        .send(SpawnReq { cmd, reply: rtx })
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    rrx.recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

fn spawn_here(cmd: &mut Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
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

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends `signal` to a child that has not been reaped yet (so its pid is not reused).
pub(crate) fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: plain kill(2) on our own, not yet reaped child.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
}

/// SIGTERM, then waits up to `grace` before SIGKILL; returns the exit status.
pub(crate) fn terminate(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
    if let Ok(Some(s)) = child.try_wait() {
        return Some(s);
    }
    signal(child, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                return child.wait().ok();
            }
        }
    }
}

pub use crate::system::find_bin;
pub(crate) use crate::system::is_root;

/// Whether a process other than a zombie is in process group `pgid` (zombies reparented to
/// init may stay around a while; they hold no sockets). Falls back to kill(-pgid, 0).
pub fn group_has_live_members(pgid: libc::pid_t) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        // SAFETY: signal 0 only probes whether the group still has members.
        return unsafe { libc::kill(-pgid, 0) } == 0;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
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

/// A fresh folder `BASE/<prefix>-<pid>-<counter>-<nanos>` (BASE: the temp dir, or /tmp when
/// that path is long: Dovecot's unix sockets live below it, 108-byte limit), mode 0755, with
/// every ancestor made traversable (o+x) for the dovecot users. The first call also removes
/// `<prefix>-<pid>-*` folders of processes that are gone.
pub fn unique_dir(prefix: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut base = std::env::temp_dir();
    if base.as_os_str().len() > 40 || !base.is_absolute() {
        base = PathBuf::from("/tmp");
    }
    if COUNTER.load(Ordering::Relaxed) == 0 {
        remove_stale_dirs(&base, prefix);
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = base.join(format!("{prefix}-{}-{n}-{nanos:08x}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    let mut anc = dir.parent();
    while let Some(a) = anc {
        if let Ok(m) = std::fs::metadata(a) {
            let mode = m.permissions().mode();
            if mode & 0o001 == 0 {
                let p = std::fs::Permissions::from_mode((mode & 0o7777) | 0o001);
                let _ = std::fs::set_permissions(a, p);
            }
        }
        anc = a.parent();
    }
    Ok(dir)
}

/// Removes `<prefix>-<pid>-*` folders left by processes that died without cleaning up (their
/// children died with them: parent-death signal).
fn remove_stale_dirs(base: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let head = format!("{prefix}-");
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&head)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
