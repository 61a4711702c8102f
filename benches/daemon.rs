//! Sections that run the real `mailbeacon run` process, started the way systemd starts it
//! (`NOTIFY_SOCKET` bound by the bench), against a real Dovecot on loopback:
//!
//! - `quiet`: an empty spool, one mailbox idling, a webhook sink on a fake Discord that answers
//!   200, the LED heartbeat running on the `sim` indicator backend. Start → `READY=1`, then RSS
//!   and CPU (utime + stime from `/proc/PID/stat`) over a quiet window.
//! - `backlog`: the same daemon on a spool prepared with N pending items (the library API, as
//!   the watcher writes them; a fresh spool each round) whose only sink refuses connections, so
//!   nothing drains. Start → `READY=1`, then RSS once dispatch has tried, failed and started
//!   probing.
//!
//! Environment: `MAILBEACON_BENCH_DAEMON_ROUNDS` (default 3, `quiet`),
//! `MAILBEACON_BENCH_BACKLOG_ROUNDS` (default 5), `MAILBEACON_BENCH_QUIET_SECONDS`
//! (default 60), `MAILBEACON_BENCH_PENDING` (default 100000), `MAILBEACON_BENCH_SETTLE_SECONDS`
//! (default 10: how long the daemon runs after `READY=1` before its RSS is read),
//! `MAILBEACON_BENCH_BATCH` (default 50, the watcher's fetch chunk: items per spool write).

use crate::dovecot::Dovecot;
use crate::fake_discord::{Behaviour, FakeDiscord};
use crate::{env_usize, median, progress, temp_dir, Row};
use mailbeacon::config::Severity;
use mailbeacon::spool::Mail;
use mailbeacon::spool::{Cursor, NewItem, Spool};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_mailbeacon");
const MB: f64 = 1_000_000.0;

fn rounds() -> usize {
    env_usize("MAILBEACON_BENCH_DAEMON_ROUNDS", 3)
}

fn settle() -> Duration {
    Duration::from_secs(env_usize("MAILBEACON_BENCH_SETTLE_SECONDS", 10) as u64)
}

/// One running daemon; SIGTERMed (then SIGKILLed) when dropped.
struct Process {
    child: Child,
}

impl Process {
    /// Starts `mailbeacon run` and returns it with the time until it sent `READY=1`.
    fn start(dir: &Path, config: &Path) -> (Process, Duration) {
        let notify_path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&notify_path);
        let notify = UnixDatagram::bind(&notify_path).expect("bind NOTIFY_SOCKET");
        notify
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("socket timeout");
        let log = std::fs::File::create(dir.join("daemon.log")).expect("daemon log");
        let start = Instant::now();
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(config)
            .env("NOTIFY_SOCKET", &notify_path)
            .env_remove("RUNTIME_DIRECTORY")
            .env_remove("WATCHDOG_USEC")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mailbeacon");
        let mut process = Process { child };
        let mut buf = [0u8; 4096];
        loop {
            if let Ok(n) = notify.recv(&mut buf) {
                if String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .any(|l| l == "READY=1")
                {
                    return (process, start.elapsed());
                }
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!(
                    "mailbeacon exited with {status} before READY=1:\n{}",
                    std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "no READY=1 within 2 minutes"
            );
        }
    }

    fn proc_file(&self, name: &str) -> String {
        std::fs::read_to_string(format!("/proc/{}/{name}", self.child.id()))
            .expect("read /proc of the daemon")
    }

    /// A `kB` field of `/proc/PID/status` (`VmRSS:`), in bytes; 0 when missing.
    fn status_bytes(&self, field: &str) -> u64 {
        self.proc_file("status")
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// (VmRSS, VmHWM) in bytes.
    fn rss(&self) -> (u64, u64) {
        (self.status_bytes("VmRSS:"), self.status_bytes("VmHWM:"))
    }

    /// RSS split into anonymous memory (heap, stacks, buffers) and mapped files (the
    /// executable and shared libraries, counted though shared and reclaimable).
    fn rss_split(&self) -> (u64, u64) {
        (self.status_bytes("RssAnon:"), self.status_bytes("RssFile:"))
    }

    /// utime + stime of every thread so far, in seconds.
    fn cpu_seconds(&self) -> f64 {
        let stat = self.proc_file("stat");
        // The command name may hold spaces; the fields after it do not.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        // Fields 14 and 15 of proc(5); `after` starts at field 3.
        let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok());
        let total = ticks(14).unwrap_or(0) + ticks(15).unwrap_or(0);
        // SAFETY: sysconf only reads a constant of the running system.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
        total as f64 / per_second as f64
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn write_config(dir: &Path, dovecot: &Dovecot, sink_url: &str) -> PathBuf {
    let text = format!(
        r#"
state_dir = "{state}"

[[account]]
name = "bench"
host = "127.0.0.1"
port = {port}
username = "alice"
password = "secret"
ca_file = "{ca}"

[[sink]]
name = "alerts"
kind = "webhook"
url = "{sink_url}"

[[bucket]]
name = "unknown"
sinks = ["alerts"]

[indicator]
backend = "sim"
trace = "{trace}"
"#,
        state = dir.join("state").display(),
        port = dovecot.imaps_port(),
        ca = dovecot.ca_file().display(),
        trace = dir.join("led.jsonl").display(),
    );
    let path = dir.join("mailbeacon.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

pub(crate) fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / MB)
}

fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn median_u64(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The quiet daemon: READY time on an empty spool, RSS and CPU over the quiet window.
pub fn quiet() -> Vec<Row> {
    let rounds = rounds();
    let window = Duration::from_secs(env_usize("MAILBEACON_BENCH_QUIET_SECONDS", 60) as u64);
    progress("quiet", "starting Dovecot and the fake Discord");
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "quietTOKEN", Behaviour::Ok);
    let (mut ready, mut rss, mut hwm, mut cpu, mut edges) =
        (vec![], vec![], vec![], vec![], vec![]);
    for round in 1..=rounds {
        let dir = temp_dir("quiet");
        let config = write_config(&dir, &dovecot, &url);
        let (daemon, t) = Process::start(&dir, &config);
        std::thread::sleep(settle());
        let trace = dir.join("led.jsonl");
        let lines = || std::fs::read_to_string(&trace).map_or(0, |t| t.lines().count());
        let (cpu0, edges0, t0) = (daemon.cpu_seconds(), lines(), Instant::now());
        std::thread::sleep(window);
        let (cpu1, edges1, wall) = (daemon.cpu_seconds(), lines(), t0.elapsed());
        let (r, h) = daemon.rss();
        let share = (cpu1 - cpu0) / wall.as_secs_f64() * 100.0;
        progress(
            "quiet",
            &format!(
                "round {round}/{rounds}: READY after {}, RSS {} (peak {}), CPU {share:.3} % over {:.0} s, {} LED edges",
                seconds(t),
                mb(r),
                mb(h),
                wall.as_secs_f64(),
                edges1 - edges0
            ),
        );
        drop(daemon);
        let _ = std::fs::remove_dir_all(&dir);
        ready.push(t);
        rss.push(r);
        hwm.push(h);
        cpu.push(share);
        edges.push(edges1 - edges0);
    }
    let rss = median_u64(rss);
    let cpu = median_f64(cpu);
    let edges = median_u64(edges.into_iter().map(|e| e as u64).collect());
    vec![
        Row::new(
            "quiet",
            "start → READY=1, empty spool",
            seconds(median(ready)),
        )
        .note("one mailbox, one sink, sim LED"),
        Row::new("quiet", "RSS, idle daemon", mb(rss))
            .goal("≤ 10 MB", rss as f64 <= 10.0 * MB)
            .note(&format!(
                "after {} s quiet; peak (VmHWM) {}",
                settle().as_secs() + window.as_secs(),
                mb(median_u64(hwm))
            )),
        Row::new("quiet", "CPU, idle with heartbeat", format!("{cpu:.3} %"))
            .goal("≤ 0.5 % of a core", cpu <= 0.5)
            .note(&format!(
                "utime+stime over {} s; IDLE open, {edges} LED edges",
                window.as_secs()
            )),
    ]
}

/// The backlog daemon: READY time and RSS with N pending items and a dead sink.
pub fn backlog() -> Vec<Row> {
    let rounds = env_usize("MAILBEACON_BENCH_BACKLOG_ROUNDS", 5);
    let n = env_usize("MAILBEACON_BENCH_PENDING", 100_000);
    progress("backlog", "starting Dovecot");
    let dovecot = Dovecot::start();
    let uidvalidity = dovecot.uidvalidity("alice", "INBOX");
    // Nothing listens on the discard port: every POST and probe is refused.
    let dead = "http://127.0.0.1:9/api/webhooks/1/deadTOKEN";
    let (mut ready, mut rss, mut hwm, mut disk) = (vec![], vec![], vec![], vec![]);
    for round in 1..=rounds {
        // A spool prepared afresh each round: how much of it sled's segment cleaner rewrites
        // (and so pulls into memory) after a start depends on how the writes fell into
        // segments, which varies from one preparation to the next.
        let dir = temp_dir("backlog");
        let config = write_config(&dir, &dovecot, dead);
        let spool = dir.join("state/spool");
        let started = Instant::now();
        prepare_spool(&spool, uidvalidity, n);
        let bytes = dir_bytes(&spool);
        let prepared = started.elapsed();
        let (daemon, t) = Process::start(&dir, &config);
        std::thread::sleep(settle());
        let (r, h) = daemon.rss();
        let (anon, file) = daemon.rss_split();
        progress(
            "backlog",
            &format!(
                "round {round}/{rounds}: {n} pending spooled in {:.1} s ({} on disk); READY after {}, RSS {} ({} anonymous, {} mapped files; peak {})",
                prepared.as_secs_f64(),
                mb(bytes),
                seconds(t),
                mb(r),
                mb(anon),
                mb(file),
                mb(h)
            ),
        );
        drop(daemon);
        let _ = std::fs::remove_dir_all(&dir);
        ready.push(t);
        rss.push(r);
        hwm.push(h);
        disk.push(bytes);
    }
    let ready = median(ready);
    let (low, high) = (
        rss.iter().min().copied().unwrap_or(0),
        rss.iter().max().copied().unwrap_or(0),
    );
    let rss = median_u64(rss);
    vec![
        Row::new(
            "backlog",
            &format!("start → READY=1, {n} pending"),
            seconds(ready),
        )
        .goal("≤ 0.5 s", ready <= Duration::from_millis(500))
        .note(&format!(
            "spool of {} on disk, page cache warm; median of {rounds}",
            mb(median_u64(disk))
        )),
        Row::new("backlog", &format!("RSS, {n} pending"), mb(rss))
            .goal("≤ 16 MB", rss as f64 <= 16.0 * MB)
            .note(&format!(
                "{} s after READY, sink refusing; {rounds} spools: {}–{}; peak (VmHWM) {}",
                settle().as_secs(),
                mb(low),
                mb(high),
                mb(median_u64(hwm))
            )),
    ]
}

/// `n` pending items for the configured mailbox, written as the watcher writes them: batches
/// of one IMAP fetch chunk (`MAILBEACON_BENCH_BATCH`, default [`mailbeacon::imap::CHUNK`], 50)
/// with their cursor, each flushed, through a spool opened with the daemon's default cache.
pub(crate) fn prepare_spool(dir: &Path, uidvalidity: u32, n: usize) {
    let spool = Spool::open(dir, 2 << 20).expect("open the prepared spool");
    let chunk = env_usize("MAILBEACON_BENCH_BATCH", mailbeacon::imap::CHUNK).max(1) as u32;
    let mut uid = 0u32;
    while (uid as usize) < n {
        let batch: Vec<NewItem> = (uid + 1..=(uid + chunk).min(n as u32))
            .map(pending_item)
            .collect();
        uid += batch.len() as u32;
        // The cursor stays at 0: the folder in Dovecot is empty, so nothing is fetched.
        let cursor = Cursor {
            uidvalidity,
            last_uid: 0,
        };
        spool
            .ingest("bench", "INBOX", cursor, &batch, false)
            .expect("ingest a prepared batch");
        if uid % 20_000 < chunk {
            progress("spool", &format!("spooled {uid}/{n}"));
        }
    }
    spool.flush().expect("flush the prepared spool");
}

fn pending_item(uid: u32) -> NewItem {
    NewItem {
        bucket: "unknown".into(),
        severity: Severity::P3,
        uid,
        mail: Mail {
            from: "Shop <orders@shop.example>".into(),
            subject: format!("Your order {uid} has shipped"),
            date: Some("2026-09-01T10:00:00Z".into()),
            message_id: Some(format!("<backlog-{uid}@shop.example>")),
            snippet: "Hello Alice, your order is on its way. Track it with the link below; \
                      it should arrive within three working days. Thank you for shopping."
                .into(),
            ..Mail::default()
        },
        sinks: vec!["alerts".into()],
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
