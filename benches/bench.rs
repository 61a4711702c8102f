//! The benchmark command: `cargo bench --bench bench [-- SECTION...]`.
//!
//! Each section measures one figure of the product on this machine and returns rows for the
//! table printed at the end; with section names as arguments only those run. Progress goes to
//! stderr while a section prepares, so a long preparation is never mistaken for a hang.
//!
//! Sections:
//! - `ingest`: N small mails already waiting in a real Dovecot on loopback (implicit TLS) → all
//!   durably in a fresh spool, through `mailbeacon::imap::Watcher` in-process; against a bare
//!   IMAP fetch of the same UIDs with the same FETCH items in the same chunks over the same TLS.
//!
//! - `idle`: a watcher idling on INBOX (IDLE, polls an hour apart); 50 mails APPENDed one at a
//!   time over a second connection; time from the server's APPEND OK to the item in the spool.
//!
//! - `drain` (benches/drain.rs): 1,000 pending mails through the fake Discord with a webhook
//!   bucket and a shared channel limit, windows scaled down; mails/s against what they allow.
//!
//! - `size`, `quiet`, `backlog`: binary sizes, and the real daemon's start-up time, RSS and
//!   CPU (see `sizes.rs` and `daemon.rs`; `ingest` and `idle` live in `imap.rs`).
//! - `dump` (dump.rs): `spool dump` of 1,000,000 items, its RSS as the items stream.
//! - `catchup` (writes.rs): the real daemon catching up on a 5,000-mail backlog: time, peak
//!   RSS, bytes written per mail spooled and delivered, and while idle.
//!
//! Each row gives the figure, its median, the goal from the issues and whether it is met. More
//! sections slot into [`SECTIONS`]. Environment: `MAILBEACON_BENCH_MAILS` (default 10000) and
//! `MAILBEACON_BENCH_ROUNDS` (default 5) for `ingest`; the daemon sections' own in `daemon.rs`.
//! Needs root and Dovecot, like the integration tests (`.ci/install-deps`).

mod daemon;
mod device;
#[path = "../tests/common/dispatcher.rs"]
mod dispatcher;
// The tests' fixtures, of which the benchmarks use a part.
#[allow(dead_code)]
#[path = "../tests/common/dovecot.rs"]
mod dovecot;
mod drain;
mod dump;
#[allow(dead_code)]
#[path = "../tests/common/fake_discord.rs"]
mod fake_discord;
mod imap;
mod sizes;
mod writes;

use std::path::PathBuf;
use std::time::Duration;

/// One row of the result table.
#[derive(Default)]
struct Row {
    section: &'static str,
    figure: String,
    value: String,
    note: String,
    /// The goal an issue sets ("≤ 0.5 s"); empty when there is none.
    goal: String,
    /// Whether the value meets the goal; `None` without a goal.
    met: Option<bool>,
}

impl Row {
    fn new(section: &'static str, figure: &str, value: String) -> Row {
        Row {
            section,
            figure: figure.into(),
            value,
            ..Row::default()
        }
    }

    fn goal(mut self, goal: &str, met: bool) -> Row {
        self.goal = goal.into();
        self.met = Some(met);
        self
    }

    fn note(mut self, note: &str) -> Row {
        self.note = note.into();
        self
    }
}

type Section = fn() -> Vec<Row>;

const SECTIONS: &[(&str, Section)] = &[
    ("size", sizes::sizes),
    ("ingest", imap::ingest),
    ("idle", imap::idle_latency),
    ("drain", drain::run),
    ("quiet", daemon::quiet),
    ("backlog", daemon::backlog),
    ("dump", dump::run),
    ("catchup", writes::run),
];

fn main() {
    // `cargo bench` passes `--bench`; everything else not starting with `-` names a section.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if let Some(unknown) = wanted
        .iter()
        .find(|w| !SECTIONS.iter().any(|(name, _)| name == w))
    {
        let names: Vec<&str> = SECTIONS.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "unknown section {unknown:?}; sections: {}",
            names.join(", ")
        );
        std::process::exit(2);
    }
    // The load before we start: afterwards it includes our own.
    let machine = machine();
    eprintln!("bench: {machine}");
    let mut rows = Vec::new();
    for (name, section) in SECTIONS {
        if wanted.is_empty() || wanted.iter().any(|w| w == name) {
            rows.extend(section());
        }
    }
    println!("\n{machine} (at start)");
    print_table(&rows);
    let missed = rows.iter().filter(|r| r.met == Some(false)).count();
    println!("\n{missed} goal(s) missed");
}

/// Cores, CPU model and load: figures from a shared machine mean little without them.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?");
    format!("machine: {cores} cores, {model}, load average {load}")
}

fn verdict(r: &Row) -> &'static str {
    match r.met {
        Some(true) => "pass",
        Some(false) => "MISS",
        None => "",
    }
}

fn print_table(rows: &[Row]) {
    let w = |f: fn(&Row) -> &str, title: &str| {
        rows.iter()
            .map(|r| f(r).chars().count())
            .chain([title.len()])
            .max()
            .unwrap_or(0)
    };
    let (ws, wf, wv, wg) = (
        w(|r| r.section, "section"),
        w(|r| &r.figure, "figure"),
        w(|r| &r.value, "median"),
        w(|r| &r.goal, "goal"),
    );
    println!();
    println!(
        "{:ws$}  {:wf$}  {:>wv$}  {:wg$}  {:4}  note",
        "section", "figure", "median", "goal", "met"
    );
    for r in rows {
        println!(
            "{:ws$}  {:wf$}  {:>wv$}  {:wg$}  {:4}  {}",
            r.section,
            r.figure,
            r.value,
            r.goal,
            verdict(r),
            r.note
        );
    }
}

fn progress(section: &str, text: &str) {
    eprintln!("bench {section}: {text}");
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let d = std::env::temp_dir().join(format!(
        "mailbeacon-bench-{tag}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&d).expect("bench temp dir");
    d
}
