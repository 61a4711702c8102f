//! `catchup`: what catching up on a backlog costs an SD card and memory, with the real
//! `mailbeacon run`: N mails of about 1.5 KB waiting in a real Dovecot (`start_at = "all"`),
//! one webhook sink on the fake Discord.
//!
//! 1. *Spool*: the sink answers every POST with a 429 an hour long (not a failure: nothing is
//!    recorded), so the daemon only ingests. From exec until `status` shows N pending: the
//!    time, the peak RSS (`VmHWM`) and the bytes the process wrote (`write_bytes` of
//!    `/proc/PID/io`: what it sent towards the disk, counted per page-cache folio it dirtied,
//!    which on Linux 6.16 and later can be much more than a page: benches/device.rs).
//! 2. *Deliver*: SIGTERM, and the daemon started again with the sink answering 200 (no rate
//!    limit): from exec until `status` shows N delivered and `write_bytes` has then not grown
//!    for 2 s (sled's last flush of pages it rewrote), its `write_bytes`.
//! 3. *Idle*: the same daemon, nothing arriving and nothing left to send, for
//!    `MAILBEACON_BENCH_IDLE_SECONDS` (60): its `write_bytes` then.
//!
//! The daemon's log goes to a pipe (a journal's writes are the journal's), no metrics file,
//! no LED trace. Environment: `MAILBEACON_BENCH_BACKLOG_MAILS` (5000),
//! `MAILBEACON_BENCH_CATCHUP_ROUNDS` (3), `MAILBEACON_BENCH_IDLE_SECONDS` (60), and
//! `MAILBEACON_BENCH_BIN` to run another build of the daemon (the static musl one a board runs).
//! With root, the spool sits on a file system of its own and the bench also counts what reaches
//! the device (benches/device.rs).

use crate::daemon::BIN;
use crate::device::Device;
use crate::dovecot::Dovecot;
use crate::fake_discord::{Behaviour, FakeDiscord, Options};
use crate::{env_usize, progress, temp_dir, Row};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "catchupTOKEN";
const KIB: f64 = 1024.0;

/// What the shop's mails say: each mail takes its own fifteen of these, so no text repeats within
/// a mail (the spool deflates its records, and a paragraph said eight times would flatter it).
const SENTENCES: [&str; 16] = [
    "Your order has shipped and should arrive within three working days.",
    "Track it from your account page; reply to this mail if anything is wrong.",
    "The parcel travels with our usual courier, who may ask for a signature at the door.",
    "If nobody is home, a card tells you where to collect it within the next week.",
    "We packed the shoes in a recycled box, so please keep it for a possible return.",
    "Returns are free for thirty days: print the label from the link in your account.",
    "Your invoice is attached as a PDF and also stored under Orders, Invoices.",
    "Payment was taken from the card ending 4242 on the day the order was placed.",
    "One item of this order comes from a partner warehouse and follows on Thursday.",
    "Need a different delivery address? Change it before 6 pm and we will reroute it.",
    "Members collect 120 points with this purchase, worth 1.20 EUR on the next one.",
    "Our support team answers on weekdays from 8 am to 8 pm, Saturdays until noon.",
    "Customs fees do not apply: the parcel ships from our depot inside the Union.",
    "Rate your delivery afterwards; it helps us choose couriers that treat parcels well.",
    "The gift note you wrote is printed on the card inside, not on the packing slip.",
    "Sizes run small this season, so the exchange form lets you pick one up for free.",
];

/// A mail of about 1.5 KB: headers as a mail client writes them, five paragraphs of text.
fn mail(i: usize) -> String {
    let sentence = |k: usize| SENTENCES[(i * 5 + k * 3) % SENTENCES.len()];
    let para = |p: usize| {
        (3 * p..3 * p + 3)
            .map(sentence)
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "Return-Path: <orders@shop.example>\r\nFrom: Shop <orders@shop.example>\r\n\
         To: alice@example.net\r\nSubject: Order {i} has shipped\r\n\
         Date: Tue, 01 Sep 2026 10:{:02}:{:02} +0000\r\nMessage-ID: <catchup-{i}@shop.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\nX-Mailer: bench\r\n\r\n\
         Hello Alice,\r\n\r\n{}\r\n\r\n{}\r\n\r\n{}\r\n\r\n{}\r\n\r\n{}\r\n\r\nRegards,\r\nShop\r\n",
        i / 60 % 60,
        i % 60,
        para(0),
        para(1),
        para(2),
        para(3),
        para(4),
    )
}

/// `n` mails straight into alice's maildir `new/`, owned by Dovecot.
fn fill(dovecot: &Dovecot, n: usize) -> usize {
    let _ = dovecot.uidnext("alice", "INBOX");
    let new = dovecot.dir().join("mail/alice/new");
    let mut bytes = 0;
    for i in 0..n {
        let text = mail(i);
        bytes += text.len();
        let file = new.join(format!(
            "{}.M{i}P{}.catchup",
            1_788_000_000 + i,
            std::process::id()
        ));
        std::fs::write(&file, text).expect("write maildir file");
    }
    let status = Command::new("chown")
        .args(["-R", "dovecot:dovecot"])
        .arg(dovecot.dir().join("mail/alice"))
        .status()
        .expect("run chown");
    assert!(status.success(), "chown the maildir");
    bytes / n.max(1)
}

fn config(dir: &Path, state: &Path, dovecot: &Dovecot, url: &str) -> PathBuf {
    let text = format!(
        "state_dir = \"{state}\"\n\n[[account]]\nname = \"bench\"\nhost = \"127.0.0.1\"\n\
         port = {port}\nusername = \"alice\"\npassword = \"secret\"\nca_file = \"{ca}\"\n\
         start_at = \"all\"\n\n[[sink]]\nname = \"alerts\"\nkind = \"webhook\"\nurl = \"{url}\"\n\n\
         [[bucket]]\nname = \"unknown\"\nsinks = [\"alerts\"]\n",
        state = state.display(),
        port = dovecot.imaps_port(),
        ca = dovecot.ca_file().display(),
    );
    let path = dir.join("mailbeacon.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// The binary the bench runs: `MAILBEACON_BENCH_BIN` (e.g. the static musl build a board
/// runs), else this build's own.
fn bin() -> std::ffi::OsString {
    std::env::var_os("MAILBEACON_BENCH_BIN").unwrap_or_else(|| BIN.into())
}

/// `mailbeacon run`, its log read from a pipe; SIGTERMed when dropped.
struct Daemon {
    child: Child,
    started: Instant,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let mut child = Command::new(bin())
            .args(["run", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mailbeacon");
        let mut log = child.stderr.take().expect("the daemon's log");
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = log.read_to_end(&mut sink);
        });
        Daemon {
            child,
            started: Instant::now(),
        }
    }

    fn proc_field(&self, file: &str, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/{file}", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn written(&self) -> u64 {
        self.proc_field("io", "write_bytes:")
    }

    fn peak_rss(&self) -> u64 {
        self.proc_field("status", "VmHWM:") * 1024
    }

    /// Waits until `write_bytes` has not grown for 2 s (at most 30 s).
    fn settle(&self) {
        let started = Instant::now();
        let mut last = (self.written(), Instant::now());
        while started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(200));
            let now = self.written();
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() >= Duration::from_secs(2) {
                return;
            }
        }
    }

    /// Waits until `status --json` sums `field` to at least `n` over the buckets.
    fn wait_for(&mut self, config: &Path, field: &str, n: u64) {
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("mailbeacon exited with {status}");
            }
            assert!(
                self.started.elapsed() < Duration::from_secs(600),
                "no {n} {field} within 10 minutes"
            );
            if status_sum(config, field) >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// `field` ("pending", "delivered") summed over the buckets of `mailbeacon status --json`.
fn status_sum(config: &Path, field: &str) -> u64 {
    let out = Command::new(bin())
        .args(["status", "--json", "--config"])
        .arg(config)
        .output()
        .expect("run mailbeacon status");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let mut sum = 0;
    let mut stack = vec![&json];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(n) = map.get(field).and_then(serde_json::Value::as_u64) {
                    if map.contains_key("name") {
                        sum += n;
                    }
                }
                stack.extend(map.values());
            }
            serde_json::Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    sum
}

struct Round {
    ingest: Duration,
    peak_rss: u64,
    spooled: u64,
    delivered: u64,
    idle: u64,
    /// Written to the device (spooling, delivering), when the spool had one of its own.
    device: Option<(u64, u64)>,
}

fn round(n: usize, idle: Duration) -> (Round, usize) {
    let dovecot = Dovecot::start();
    let size = fill(&dovecot, n);
    let discord = FakeDiscord::start_with(Options {
        rl_limit: 10_000,
        rl_window: Duration::from_secs(1),
        enforce: false,
        channel_limit: None,
    });
    let url = discord.webhook("1", TOKEN, Behaviour::Ok);
    discord.set_behaviour(
        TOKEN,
        Behaviour::RateLimited {
            retry_after: 3600.0,
            scope: "user",
            global: false,
        },
    );
    let dir = temp_dir("catchup");
    let device = Device::mount(&dir)
        .map_err(|why| progress("catchup", &format!("no device of its own: {why}")))
        .ok();
    let state = device
        .as_ref()
        .map_or(dir.as_path(), Device::dir)
        .join("state");
    let config = config(&dir, &state, &dovecot, &url);
    let n64 = n as u64;
    let on_device = || device.as_ref().map_or(0, Device::written);

    let before = on_device();
    let mut spooling = Daemon::start(&config);
    spooling.wait_for(&config, "pending", n64);
    let ingest = spooling.started.elapsed();
    let (spooled, peak_rss) = (spooling.written(), spooling.peak_rss());
    drop(spooling);
    let after_spooling = on_device();

    discord.set_behaviour(TOKEN, Behaviour::Ok);
    let mut delivering = Daemon::start(&config);
    delivering.wait_for(&config, "delivered", n64);
    // sled finishes its own work (a last flush of pages it rewrote) within a second of the
    // last acknowledgement: that is delivery's, not idleness's.
    delivering.settle();
    let delivered = delivering.written();
    let after_delivering = on_device();
    std::thread::sleep(idle);
    let idle = delivering.written() - delivered;
    drop(delivering);
    let device = device.map(|device| {
        drop(device);
        (after_spooling - before, after_delivering - after_spooling)
    });
    let _ = std::fs::remove_dir_all(&dir);
    (
        Round {
            ingest,
            peak_rss,
            spooled,
            delivered,
            idle,
            device,
        },
        size,
    )
}

fn median<T: Copy + PartialOrd>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

pub fn run() -> Vec<Row> {
    let n = env_usize("MAILBEACON_BENCH_BACKLOG_MAILS", 5000);
    let rounds = env_usize("MAILBEACON_BENCH_CATCHUP_ROUNDS", 3);
    let idle = Duration::from_secs(env_usize("MAILBEACON_BENCH_IDLE_SECONDS", 60) as u64);
    let mut all = Vec::new();
    let mut size = 0;
    for r in 1..=rounds {
        let (round, s) = round(n, idle);
        size = s;
        progress(
            "catchup",
            &(format!(
                "round {r}/{rounds}: {n} mails of {s} B spooled in {:.2} s, peak RSS {:.1} MB, \
                 wrote {:.2} KiB/mail spooling, {:.2} KiB/mail delivering, {} B idle over {} s",
                round.ingest.as_secs_f64(),
                round.peak_rss as f64 / 1e6,
                round.spooled as f64 / KIB / n as f64,
                round.delivered as f64 / KIB / n as f64,
                round.idle,
                idle.as_secs()
            ) + &round.device.map_or(String::new(), |(spooled, delivered)| {
                format!(
                    "; to the device {:.2} KiB/mail spooling, {:.2} KiB/mail delivering",
                    spooled as f64 / KIB / n as f64,
                    delivered as f64 / KIB / n as f64
                )
            })),
        );
        all.push(round);
    }
    let per_mail = |bytes: u64| bytes as f64 / KIB / n as f64;
    let spooled = median(all.iter().map(|r| per_mail(r.spooled)).collect());
    let delivered = median(all.iter().map(|r| per_mail(r.delivered)).collect());
    let total = median(
        all.iter()
            .map(|r| per_mail(r.spooled + r.delivered))
            .collect(),
    );
    let rss = median(all.iter().map(|r| r.peak_rss).collect()) as f64 / 1e6;
    let ingest = median(all.iter().map(|r| r.ingest).collect());
    let idle_bytes = median(all.iter().map(|r| r.idle).collect());
    let of = match std::env::var("MAILBEACON_BENCH_BIN") {
        Ok(bin) => format!("{n} mails of {size} B; median of {rounds}; {bin}"),
        Err(_) => format!("{n} mails of {size} B; median of {rounds}"),
    };
    let mut rows = vec![
        Row::new(
            "catchup",
            &format!("{n}-mail backlog → spooled, from exec"),
            format!(
                "{:.2} s ({:.0} mails/s)",
                ingest.as_secs_f64(),
                n as f64 / ingest.as_secs_f64()
            ),
        )
        .note(&of),
        Row::new(
            "catchup",
            "peak RSS (VmHWM) while spooling",
            format!("{rss:.1} MB"),
        )
        .goal("≤ 10 MB", rss <= 10.0)
        .note(&of),
        Row::new(
            "catchup",
            "written per mail spooled",
            format!("{spooled:.2} KiB"),
        )
        .note("write_bytes of /proc/PID/io, from exec"),
        Row::new(
            "catchup",
            "written per mail delivered",
            format!("{delivered:.2} KiB"),
        )
        .note("a second process, from exec until all delivered"),
        Row::new(
            "catchup",
            "written per mail in all",
            format!("{total:.2} KiB"),
        )
        .goal("≤ 4 KiB", total <= 4.0)
        .note("spool + deliver"),
        Row::new(
            "catchup",
            &format!("written while idle, {} s", idle.as_secs()),
            format!("{idle_bytes} B"),
        )
        .goal("near zero", idle_bytes <= 16 * 1024)
        .note("nothing arriving, nothing to send; log to a pipe"),
    ];
    rows.extend(device_rows(&all, n));
    rows
}

/// The same writes counted where an SD card would see them (benches/device.rs).
fn device_rows(all: &[Round], n: usize) -> Vec<Row> {
    let Some(device) = all.iter().map(|r| r.device).collect::<Option<Vec<_>>>() else {
        return vec![Row::new(
            "catchup",
            "written to the device per mail in all",
            "not measured".to_string(),
        )
        .note("needs root, mkfs.ext4 and losetup (benches/device.rs)")];
    };
    let per_mail = |bytes: u64| bytes as f64 / KIB / n as f64;
    let spooled = median(device.iter().map(|d| per_mail(d.0)).collect());
    let delivered = median(device.iter().map(|d| per_mail(d.1)).collect());
    let total = median(device.iter().map(|d| per_mail(d.0 + d.1)).collect());
    let note = "sectors written to a loop device of its own, ext4 journal included";
    vec![
        Row::new(
            "catchup",
            "written to the device per mail spooled",
            format!("{spooled:.2} KiB"),
        )
        .note(note),
        Row::new(
            "catchup",
            "written to the device per mail delivered",
            format!("{delivered:.2} KiB"),
        )
        .note(note),
        Row::new(
            "catchup",
            "written to the device per mail in all",
            format!("{total:.2} KiB"),
        )
        .goal("≤ 4 KiB", total <= 4.0)
        .note("spool + deliver"),
    ]
}
