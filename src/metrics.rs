//! Metrics for a home lab: the Prometheus text exposition format, written to `metrics_file`
//! every `metrics_every` for node_exporter's textfile collector. The file is replaced whole
//! (written beside it, then renamed), so the collector never reads half of one.
//!
//! Counters of Discord's answers live here, process-wide, because every sink's loop adds to
//! them from the one place a request's answer comes back; everything else is read from the
//! health snapshot and the spool at write time. Names and labels carry no secret: sinks,
//! buckets and mailboxes by their configured names, never a URL or token.

use crate::discord::Outcome;
use crate::health::{AccountState, Health, SinkState};
use crate::spool::BucketStats;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;

/// Answers by (sink, outcome), mails acknowledged by sink.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) answers: BTreeMap<(String, &'static str), u64>,
    pub(crate) mails: BTreeMap<String, u64>,
}

static COUNTERS: Mutex<Counters> = Mutex::new(Counters {
    answers: BTreeMap::new(),
    mails: BTreeMap::new(),
});

/// The outcome's name in `mailbeacon_deliveries_total{outcome=…}`.
fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Delivered { .. } => "delivered",
        Outcome::RateLimited { .. } => "rate_limited",
        Outcome::Transient { .. } => "transient",
        Outcome::Dead { .. } => "dead",
        Outcome::Rejected { .. } => "rejected",
    }
}

/// Counts one answer to a POST carrying `mails` mails.
pub(crate) fn observe(sink: &str, outcome: &Outcome, mails: usize) {
    let Ok(mut c) = COUNTERS.lock() else {
        return;
    };
    *c.answers
        .entry((sink.to_string(), outcome_name(outcome)))
        .or_default() += 1;
    if matches!(outcome, Outcome::Delivered { .. }) {
        *c.mails.entry(sink.to_string()).or_default() += mails as u64;
    }
}

pub(crate) fn counters() -> Counters {
    COUNTERS.lock().map(|c| c.clone()).unwrap_or_default()
}

/// What one metrics file is made of.
pub(crate) struct Snapshot<'a> {
    pub(crate) health: &'a Health,
    pub(crate) buckets: &'a [BucketStats],
    pub(crate) counters: &'a Counters,
    pub(crate) sinks: &'a [String],
    pub(crate) spool_bytes: u64,
    pub(crate) spool_max_bytes: u64,
    pub(crate) now: i64,
}

/// A label value, escaped as the exposition format asks (`\`, `"`, newline).
fn label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn enum_name<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

const SINK_STATES: [SinkState; 4] = [
    SinkState::Ok,
    SinkState::Retrying,
    SinkState::RateLimited,
    SinkState::Dead,
];
const ACCOUNT_STATES: [AccountState; 8] = [
    AccountState::Connecting,
    AccountState::Idle,
    AccountState::Polling,
    AccountState::Backoff,
    AccountState::AuthFailed,
    AccountState::TlsFailed,
    AccountState::MailboxMissing,
    AccountState::Error,
];
const OUTCOMES: [&str; 5] = ["delivered", "rate_limited", "transient", "dead", "rejected"];

/// The whole file, in the text exposition format.
pub(crate) fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "mailbeacon_up",
        "gauge",
        "1 while the agent runs; 0 in the file it leaves on a clean stop.",
    );
    let _ = writeln!(out, "mailbeacon_up {}", u8::from(!s.health.stopping));
    deliveries(&mut out, s);
    sink_states(&mut out, s);
    buckets(&mut out, s);
    accounts(&mut out, s);
    spool(&mut out, s);
    indicator(&mut out, s);
    crate::notice::status::metrics(&mut out, s.health);
    out
}

/// Per sink: Discord's answers, the mails it acknowledged, and the retries.
fn deliveries(out: &mut String, s: &Snapshot) {
    family(
        out,
        "mailbeacon_deliveries_total",
        "counter",
        "Discord's answers to posts since start, by sink and classified outcome.",
    );
    for sink in s.sinks {
        for o in OUTCOMES {
            let n = s
                .counters
                .answers
                .get(&(sink.clone(), o))
                .copied()
                .unwrap_or(0);
            let _ = writeln!(
                out,
                "mailbeacon_deliveries_total{{sink=\"{}\",outcome=\"{o}\"}} {n}",
                label(sink)
            );
        }
    }
    family(
        out,
        "mailbeacon_delivered_mails_total",
        "counter",
        "Mails acknowledged by Discord since start, by sink.",
    );
    family(
        out,
        "mailbeacon_retries_total",
        "counter",
        "Posts answered transient or rate limited since start (their mail is sent again), by sink.",
    );
    for sink in s.sinks {
        let mails = s.counters.mails.get(sink).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "mailbeacon_delivered_mails_total{{sink=\"{}\"}} {mails}",
            label(sink)
        );
        let retries: u64 = ["transient", "rate_limited"]
            .iter()
            .filter_map(|o| s.counters.answers.get(&(sink.clone(), *o)))
            .sum();
        let _ = writeln!(
            out,
            "mailbeacon_retries_total{{sink=\"{}\"}} {retries}",
            label(sink)
        );
    }
}

/// Per sink: 1 for its current state, 0 for the others.
fn sink_states(out: &mut String, s: &Snapshot) {
    family(
        out,
        "mailbeacon_sink_state",
        "gauge",
        "1 for the sink's current state, 0 for the others.",
    );
    for sink in s.sinks {
        let now = s.health.sinks.get(sink).map_or(SinkState::Ok, |h| h.state);
        for st in SINK_STATES {
            let _ = writeln!(
                out,
                "mailbeacon_sink_state{{sink=\"{}\",state=\"{}\"}} {}",
                label(sink),
                enum_name(st),
                u8::from(st == now)
            );
        }
    }
}

/// The spool's size, its bound, and whether ingestion stopped at it.
fn spool(out: &mut String, s: &Snapshot) {
    family(
        out,
        "mailbeacon_spool_bytes",
        "gauge",
        "Bytes the spool holds (what spool_max_mb bounds).",
    );
    let _ = writeln!(out, "mailbeacon_spool_bytes {}", s.spool_bytes);
    family(
        out,
        "mailbeacon_spool_max_bytes",
        "gauge",
        "The spool's size bound (spool_max_mb) in bytes.",
    );
    let _ = writeln!(out, "mailbeacon_spool_max_bytes {}", s.spool_max_bytes);
    family(
        out,
        "mailbeacon_spool_full",
        "gauge",
        "1 while ingestion is stopped: the spool at its bound, or its disk full or read-only.",
    );
    let full = !s.health.full.is_empty() || !s.health.disk.is_empty();
    let _ = writeln!(out, "mailbeacon_spool_full {}", u8::from(full));
}

/// The pattern the LED shows.
fn indicator(out: &mut String, s: &Snapshot) {
    family(
        out,
        "mailbeacon_indicator_pattern",
        "gauge",
        "1 for the pattern the LED shows.",
    );
    let pattern = s.health.pattern(s.now);
    for p in ["ok", "backlog", "dead", "alarm"] {
        let _ = writeln!(
            out,
            "mailbeacon_indicator_pattern{{pattern=\"{p}\"}} {}",
            u8::from(pattern.as_str() == p)
        );
    }
}

fn buckets(out: &mut String, s: &Snapshot) {
    family(
        out,
        "mailbeacon_spool_items",
        "gauge",
        "Items in the spool by bucket and state.",
    );
    for b in s.buckets {
        for (state, n) in [
            ("pending", b.pending),
            ("delivered", b.delivered),
            ("dead", b.dead),
        ] {
            let _ = writeln!(
                out,
                "mailbeacon_spool_items{{bucket=\"{}\",state=\"{state}\"}} {n}",
                label(&b.name)
            );
        }
    }
    family(
        out,
        "mailbeacon_oldest_pending_age_seconds",
        "gauge",
        "Age of the oldest pending item per bucket; 0 when none is pending.",
    );
    for b in s.buckets {
        let age = b.oldest_pending_at.map_or(0, |t| (s.now - t).max(0));
        let _ = writeln!(
            out,
            "mailbeacon_oldest_pending_age_seconds{{bucket=\"{}\"}} {age}",
            label(&b.name)
        );
    }
}

fn accounts(out: &mut String, s: &Snapshot) {
    family(
        out,
        "mailbeacon_imap_state",
        "gauge",
        "1 for the mailbox watcher's current state, 0 for the others.",
    );
    for ((account, folder), a) in &s.health.accounts {
        for st in ACCOUNT_STATES {
            let _ = writeln!(
                out,
                "mailbeacon_imap_state{{account=\"{}\",folder=\"{}\",state=\"{}\"}} {}",
                label(account),
                label(folder),
                enum_name(st),
                u8::from(st == a.state)
            );
        }
    }
    family(
        out,
        "mailbeacon_imap_last_success_timestamp_seconds",
        "gauge",
        "When the mailbox was last polled successfully (Unix seconds); 0 if never since start.",
    );
    for ((account, folder), a) in &s.health.accounts {
        let _ = writeln!(
            out,
            "mailbeacon_imap_last_success_timestamp_seconds{{account=\"{}\",folder=\"{}\"}} {}",
            label(account),
            label(folder),
            a.last_ok.unwrap_or(0)
        );
    }
}

/// Replaces `path` with `text` atomically: a temporary file beside it (not ending in `.prom`,
/// so the collector skips it), synced, then renamed over it.
pub(crate) fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;
