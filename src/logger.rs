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
        let line = format_line(self.journal, r.level(), &r.args().to_string());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// One event as written to stderr. Under journald every physical line carries the priority, so
/// a message that spans lines (an error quoting a server's answer) stays one priority.
fn format_line(journal: bool, level: Level, message: &str) -> String {
    let message = message.trim_end_matches('\n');
    if journal {
        let prio = match level {
            Level::Error => 3,
            Level::Warn => 4,
            Level::Info => 6,
            Level::Debug | Level::Trace => 7,
        };
        message
            .split('\n')
            .map(|l| format!("<{prio}>{l}\n"))
            .collect()
    } else {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        format!("{now} {level:<5} {message}\n")
    }
}

pub(crate) fn init() {
    let level = std::env::var("MAILBEACON_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(LevelFilter::Info);
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    if log::set_logger(Box::leak(Box::new(Logger { level, journal }))).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journald_lines_carry_the_syslog_priority_on_every_line() {
        assert_eq!(
            format_line(true, Level::Error, "sink x dead"),
            "<3>sink x dead\n"
        );
        assert_eq!(format_line(true, Level::Warn, "w"), "<4>w\n");
        assert_eq!(format_line(true, Level::Info, "i"), "<6>i\n");
        assert_eq!(format_line(true, Level::Debug, "d"), "<7>d\n");
        assert_eq!(
            format_line(true, Level::Error, "failed:\nline two\n"),
            "<3>failed:\n<3>line two\n"
        );
    }

    #[test]
    fn a_terminal_gets_a_utc_timestamp_and_the_level() {
        let l = format_line(false, Level::Warn, "spool 80% full");
        assert!(l.ends_with("Z WARN  spool 80% full\n"), "{l}");
        assert!(!l.starts_with('<'));
    }
}
