//! A journald-friendly stderr logger: under systemd (`JOURNAL_STREAM` set) each line starts with
//! a `<N>` syslog priority that journald reads; elsewhere, a UTC timestamp and the level.
//! `MAILBEACON_LOG` sets the level (error, warn, info, debug, trace; default info). Other crates
//! speak only at warn and above unless the level is trace.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;

struct Logger {
    level: LevelFilter,
    journal: bool,
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata) -> bool {
        let ours = m.target().starts_with("mailbeacon");
        m.level() <= self.level
            && (ours || m.level() <= Level::Warn || self.level == LevelFilter::Trace)
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let line = if self.journal {
            let prio = match r.level() {
                Level::Error => 3,
                Level::Warn => 4,
                Level::Info => 6,
                Level::Debug | Level::Trace => 7,
            };
            format!("<{prio}>{}\n", r.args())
        } else {
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
            format!("{now} {:<5} {}\n", r.level(), r.args())
        };
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

pub fn init() {
    let level = std::env::var("MAILBEACON_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(LevelFilter::Info);
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    if log::set_logger(Box::leak(Box::new(Logger { level, journal }))).is_ok() {
        log::set_max_level(level);
    }
}
