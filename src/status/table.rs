//! The human `status` table, coloured when it goes to a terminal.

use super::{AccountStatus, StatusReport};
use crate::health::DiscordState;
use crate::time::age;
use serde::Serialize;

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), |x| x.to_string())
}

fn json_name<T: Serialize>(v: &Option<T>) -> String {
    v.as_ref()
        .and_then(|x| serde_json::to_value(x).ok())
        .and_then(|x| x.as_str().map(str::to_string))
        .unwrap_or_else(|| "-".to_string())
}

/// Whether `status` may colour its table: stdout is a terminal and `NO_COLOR` is not set
/// (<https://no-color.org>: any non-empty value).
pub(crate) fn use_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A state word padded to `width`, in red, yellow or green when `colour` is on.
fn paint(word: &str, width: usize, colour: bool) -> String {
    let padded = format!("{word:<width$}");
    if !colour {
        return padded;
    }
    let code = match word {
        "ok" | "idle" | "polling" => "32",
        "retrying" | "rate_limited" | "backlog" | "connecting" | "backoff" | "paused" => "33",
        "-" | "off" | "selftest" => return padded,
        _ => "31",
    };
    format!("\x1b[{code}m{padded}\x1b[0m")
}

/// The human table; `colour` adds ANSI colours to the state words.
pub(crate) fn table(r: &StatusReport, colour: bool) -> String {
    let mut out = format!(
        "mailbeacon: {} — LED {}\n",
        r.summary,
        paint(r.indicator.pattern.as_str(), 0, colour)
    );
    out.push_str(&format!(
        "\n{:<24} {:<14} {:>10} {:>8}  {:<20}  {}\n",
        "MAILBOX", "STATE", "UIDVALID", "LASTUID", "LAST OK", "LAST ERROR"
    ));
    for a in &r.accounts {
        out.push_str(&format!(
            "{:<24} {} {:>10} {:>8}  {:<20}  {}\n",
            format!("{}/{}", a.name, a.folder),
            paint(&json_name(&a.state), 14, colour),
            opt(&a.uidvalidity),
            opt(&a.last_uid),
            opt(&a.last_ok),
            account_error(a)
        ));
    }
    if let Some(d) = &r.discord {
        let pause = d
            .paused_until
            .as_deref()
            .map_or(String::new(), |t| format!(" until {t}"));
        let state = match d.state {
            DiscordState::Ok => "ok".to_string(),
            DiscordState::RateLimited => format!("every sink paused{pause} (global rate limit)"),
            DiscordState::Paused => format!("every sink paused{pause} (invalid-request limit)"),
            DiscordState::Banned => {
                format!("BANNED by Cloudflare (error 1015): every sink paused{pause}")
            }
        };
        out.push_str(&format!(
            "\ndiscord: {state}; {} invalid requests (401/403/429) in the last 10 min, pause at {}\n",
            d.invalid_requests_10min, d.invalid_request_limit
        ));
    }
    out.push_str(&crate::notice::status::lines(
        r.notices.as_ref(),
        r.heartbeat.as_ref(),
    ));
    out.push_str(&format!(
        "\n{:<24} {:<14} {:<21}  {}\n",
        "SINK", "STATE", "LAST SUCCESS", "LAST ERROR"
    ));
    for s in &r.sinks {
        out.push_str(&format!(
            "{:<24} {} {:<21}  {}\n",
            s.name,
            paint(&json_name(&s.state), 14, colour),
            opt(&s.last_success),
            opt(&s.last_error)
        ));
    }
    out.push_str(&format!(
        "\n{:<24} {:>8} {:>10} {:>6} {:>14}\n",
        "BUCKET", "PENDING", "DELIVERED", "DEAD", "OLDEST PENDING"
    ));
    for b in &r.buckets {
        out.push_str(&format!(
            "{:<24} {:>8} {:>10} {:>6} {:>14}\n",
            b.name,
            b.pending,
            b.delivered,
            b.dead,
            b.oldest_pending_age_s.map_or_else(|| "-".to_string(), age)
        ));
    }
    if let Some(n @ 1..) = r.actions_owed {
        out.push_str(&format!(
            "\nafter delivery: {n} action(s) owed on the server (seen, flag or move), retried until done\n"
        ));
    }
    out
}

/// The LAST ERROR cell: an error the mailbox has recovered from says so, with when.
fn account_error(a: &AccountStatus) -> String {
    match (&a.last_error, &a.recovered_at) {
        (Some(e), Some(t)) => {
            // RFC 3339 UTC: `2026-12-04T14:32:10Z` → `14:32`.
            let hhmm = t.get(11..16).unwrap_or(t);
            format!("{e} (recovered {hhmm} UTC)")
        }
        _ => opt(&a.last_error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{AccountState, Pattern, SinkState};
    use crate::status::{BucketStatus, IndicatorStatus, SinkStatus};

    fn report() -> StatusReport {
        StatusReport {
            running: true,
            summary: "dead: sink noise dead: HTTP 403".into(),
            accounts: vec![],
            sinks: vec![SinkStatus {
                name: "noise".into(),
                state: Some(SinkState::Dead),
                last_error: Some("HTTP 403 (code 50013: Missing Permissions)".into()),
                last_success: None,
            }],
            buckets: vec![BucketStatus {
                name: "unknown".into(),
                pending: 20,
                delivered: 3,
                dead: 0,
                oldest_pending_age_s: Some(3 * 3600 + 12 * 60),
            }],
            indicator: IndicatorStatus {
                pattern: Pattern::Dead,
            },
            discord: None,
            notices: None,
            heartbeat: None,
            actions_owed: Some(2),
        }
    }

    #[test]
    fn the_table_shows_each_sinks_error_and_each_buckets_oldest_pending_age() {
        let text = table(&report(), false);
        assert!(
            !text.contains('\x1b'),
            "no colour when asked for none:\n{text}"
        );
        let sink = text.lines().find(|l| l.starts_with("noise")).unwrap();
        assert!(
            sink.contains("dead") && sink.contains("code 50013"),
            "{sink}"
        );
        let bucket = text.lines().find(|l| l.starts_with("unknown")).unwrap();
        assert!(bucket.ends_with("3h12m"), "{bucket}");
        assert!(text.contains("after delivery: 2 action(s) owed"), "{text}");
    }

    #[test]
    fn colour_marks_states_and_keeps_the_columns() {
        let text = table(&report(), true);
        assert!(text.contains("\x1b[31mdead          \x1b[0m"), "{text:?}");
        let plain = table(&report(), false);
        let strip = text.replace("\x1b[31m", "").replace("\x1b[0m", "");
        assert_eq!(strip, plain);
    }

    #[test]
    fn a_recovered_accounts_old_error_reads_as_past() {
        let row = |recovered_at: Option<&str>| AccountStatus {
            name: "home".into(),
            folder: "INBOX".into(),
            state: Some(AccountState::Idle),
            last_ok: Some("2026-12-04T14:40:00Z".into()),
            last_error: Some("no answer from the server within 60s".into()),
            last_error_at: Some("2026-12-04T14:30:05Z".into()),
            recovered_at: recovered_at.map(str::to_string),
            uidvalidity: Some(1),
            last_uid: Some(9),
        };
        let line = |r: AccountStatus| {
            let text = table(
                &StatusReport {
                    accounts: vec![r],
                    ..report()
                },
                false,
            );
            text.lines()
                .find(|l| l.starts_with("home/INBOX"))
                .map(str::to_string)
        };
        let past = line(row(Some("2026-12-04T14:31:10Z"))).unwrap_or_default();
        assert!(past.ends_with("within 60s (recovered 14:31 UTC)"), "{past}");
        let current = line(row(None)).unwrap_or_default();
        assert!(current.ends_with("within 60s"), "{current}");
    }
}
