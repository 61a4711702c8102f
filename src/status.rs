//! What `status` and `spool dump` print: the JSON shapes of DESIGN.md's interface and the human
//! tables. Built from the daemon's health snapshot when it runs, from the spool alone when not.
//! Nothing here carries a secret: only names, states and classified errors.

use crate::config::Config;
use crate::health::{AccountState, DiscordState, Health, Pattern, SinkState};
use crate::spool::{BucketStats, Item, Spool, SpoolError, State};
use serde::{Deserialize, Serialize};

/// RFC 3339 UTC for unix seconds.
pub fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(String::new, |d| {
        d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    })
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct AccountStatus {
    pub name: String,
    pub folder: String,
    pub state: Option<AccountState>,
    pub last_ok: Option<String>,
    pub last_error: Option<String>,
    /// When `last_error` happened (RFC 3339).
    #[serde(default)]
    pub last_error_at: Option<String>,
    /// When the mailbox was watched again after `last_error` (RFC 3339): the error is past.
    /// `null` while the error is current (or there is none).
    #[serde(default)]
    pub recovered_at: Option<String>,
    pub uidvalidity: Option<u32>,
    pub last_uid: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct SinkStatus {
    pub name: String,
    pub state: Option<SinkState>,
    pub last_error: Option<String>,
    pub last_success: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct BucketStatus {
    pub name: String,
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
    pub oldest_pending_age_s: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct IndicatorStatus {
    pub pattern: Pattern,
}

/// Every sink's standing with Discord together (`null` when no daemon runs).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct DiscordStatus {
    /// ok, rate_limited (a global 429 pauses every sink), paused (the invalid-request limit
    /// was reached), banned (Cloudflare error 1015: every sink paused).
    pub state: DiscordState,
    /// 401, 403 and non-shared 429 answers in the last 10 minutes, all sinks together.
    pub invalid_requests_10min: u64,
    /// At this count every sink pauses until the window drains.
    pub invalid_request_limit: u64,
    /// When a pause of every sink ends (RFC 3339), if one is on.
    pub paused_until: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct StatusReport {
    pub running: bool,
    pub summary: String,
    pub accounts: Vec<AccountStatus>,
    pub sinks: Vec<SinkStatus>,
    pub buckets: Vec<BucketStatus>,
    pub indicator: IndicatorStatus,
    #[serde(default)]
    pub discord: Option<DiscordStatus>,
}

/// Bucket totals for every configured bucket, plus any the spool still holds from an older config.
pub fn bucket_stats(config: &Config, spool: &Spool) -> Result<Vec<BucketStats>, SpoolError> {
    let mut names: Vec<String> = config.buckets.iter().map(|b| b.name.clone()).collect();
    for n in spool.bucket_names()? {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names.iter().map(|n| spool.stats(n)).collect()
}

/// The report; `health` is the daemon's live view, `None` when no daemon runs. `spool` is
/// `None` while the daemon has closed it (a full or read-only disk): counts and cursors then
/// come from the live view, as last seen.
pub fn report(
    config: &Config,
    health: Option<&Health>,
    spool: Option<&Spool>,
    now: i64,
) -> Result<StatusReport, SpoolError> {
    let (stats, cursors) = match spool {
        Some(spool) => (bucket_stats(config, spool)?, spool.cursors()?),
        None => (
            health.map(|h| h.buckets.clone()).unwrap_or_default(),
            health
                .map(|h| {
                    h.accounts
                        .iter()
                        .filter_map(|((a, f), l)| Some((a.clone(), f.clone(), l.cursor?)))
                        .collect()
                })
                .unwrap_or_default(),
        ),
    };
    let mut accounts = Vec::new();
    for a in &config.accounts {
        for folder in &a.folders {
            let live = health.and_then(|h| h.accounts.get(&(a.name.clone(), folder.clone())));
            let cursor = cursors
                .iter()
                .find(|(n, f, _)| n == &a.name && f == folder)
                .map(|c| c.2);
            accounts.push(AccountStatus {
                name: a.name.clone(),
                folder: folder.clone(),
                state: live.map(|l| l.state),
                last_ok: live.and_then(|l| l.last_ok).map(rfc3339),
                last_error: live.and_then(|l| l.last_error.clone()),
                last_error_at: live.and_then(|l| l.last_error_at).map(rfc3339),
                recovered_at: live.and_then(|l| l.recovered_at).map(rfc3339),
                uidvalidity: cursor.map(|c| c.uidvalidity),
                last_uid: cursor.map(|c| c.last_uid),
            });
        }
    }
    let sinks = config
        .sinks
        .iter()
        .map(|s| {
            let live = health.and_then(|h| h.sinks.get(&s.name));
            SinkStatus {
                name: s.name.clone(),
                state: health.map(|_| live.map_or(SinkState::Ok, |l| l.state)),
                last_error: live.and_then(|l| l.last_error.clone()),
                last_success: live.and_then(|l| l.last_success).map(rfc3339),
            }
        })
        .collect();
    let buckets = stats
        .iter()
        .map(|b| BucketStatus {
            name: b.name.clone(),
            pending: b.pending,
            delivered: b.delivered,
            dead: b.dead,
            oldest_pending_age_s: b.oldest_pending_at.map(|t| (now - t).max(0)),
        })
        .collect();
    let (pattern, summary) = match health {
        Some(h) => (h.pattern(now), h.summary(now)),
        None => (Pattern::Off, "agent not running".to_string()),
    };
    Ok(StatusReport {
        running: health.is_some(),
        summary,
        accounts,
        sinks,
        buckets,
        indicator: IndicatorStatus { pattern },
        discord: health.map(|h| DiscordStatus {
            state: h.discord.state,
            invalid_requests_10min: h.discord.invalid_requests,
            invalid_request_limit: h.discord.limit,
            paused_until: h.discord.paused_until.map(rfc3339),
        }),
    })
}

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
pub fn use_colour() -> bool {
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

/// Seconds as people read an age: `42s`, `7m05s`, `3h12m`, `2d04h`.
pub fn age(s: i64) -> String {
    match s {
        ..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The human table; `colour` adds ANSI colours to the state words.
pub fn table(r: &StatusReport, colour: bool) -> String {
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

/// One `spool dump` line: DESIGN.md's fields, plus the per-sink detail.
#[derive(Debug, Serialize, Deserialize)]
pub struct DumpRecord {
    pub id: u64,
    pub bucket: String,
    pub account: String,
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: u32,
    pub message_id: Option<String>,
    pub from: String,
    pub subject: String,
    pub date: Option<String>,
    pub spooled_at: String,
    pub snippet: String,
    pub state: State,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
    pub discord_message_ids: Vec<String>,
    pub parse_error: Option<String>,
    pub deliveries: Vec<crate::spool::Delivery>,
}

impl From<Item> for DumpRecord {
    fn from(i: Item) -> DumpRecord {
        let state = i.state();
        let mut ids: Vec<String> = i
            .deliveries
            .iter()
            .filter_map(|d| d.message_id.clone())
            .collect();
        ids.dedup();
        DumpRecord {
            state,
            attempts: i.deliveries.iter().map(|d| d.attempts).sum(),
            last_error: i.deliveries.iter().rev().find_map(|d| d.last_error.clone()),
            delivered_at: (state == State::Delivered)
                .then(|| i.deliveries.iter().filter_map(|d| d.delivered_at).max())
                .flatten()
                .map(rfc3339),
            discord_message_ids: ids,
            id: i.id,
            bucket: i.bucket,
            account: i.account,
            folder: i.folder,
            uidvalidity: i.uidvalidity,
            uid: i.uid,
            message_id: i.message_id,
            from: i.from,
            subject: i.subject,
            date: i.date,
            spooled_at: rfc3339(i.spooled_at),
            snippet: i.snippet,
            parse_error: i.parse_error,
            deliveries: i.deliveries,
        }
    }
}

/// Which items `spool ls` / `spool dump` show.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Filter {
    pub bucket: Option<String>,
    /// `None` means every state.
    pub state: Option<State>,
    /// Only items spooled at or after this time (Unix seconds).
    #[serde(default)]
    pub since: Option<i64>,
}

impl Filter {
    pub fn accepts(&self, i: &Item) -> bool {
        self.bucket.as_ref().is_none_or(|b| *b == i.bucket)
            && self.state.is_none_or(|s| s == i.state())
            && self.since.is_none_or(|t| i.spooled_at >= t)
    }
}

/// Streams matching items as JSON lines; memory stays bounded by one item.
pub fn dump(spool: &Spool, filter: &Filter, out: &mut dyn std::io::Write) -> std::io::Result<u64> {
    let mut n = 0;
    for item in spool.iter() {
        let item = match item {
            Ok(item) => item,
            // One record that does not decode must not hide the rest.
            Err(e @ SpoolError::Corrupt { .. }) => {
                log::error!("spool: skipped in a listing: {e}");
                continue;
            }
            Err(e) => return Err(std::io::Error::other(e)),
        };
        if filter.accepts(&item) {
            serde_json::to_writer(&mut *out, &DumpRecord::from(item))?;
            out.write_all(b"\n")?;
            n += 1;
        }
    }
    out.flush()?;
    Ok(n)
}

/// One `spool ls` row.
pub fn ls_row(r: &DumpRecord) -> String {
    let subject = crate::text::ellipsize(&r.subject.replace(['\n', '\r', '\t'], " "), 48);
    let from = crate::text::ellipsize(&r.from, 32);
    format!(
        "{:>20}  {:<10} {:<9} {:>3}  {:<20}  {:<32}  {}",
        r.id,
        r.bucket,
        r.state.as_str(),
        r.attempts,
        r.spooled_at,
        from,
        subject
    )
}

pub fn ls_header() -> String {
    format!(
        "{:>20}  {:<10} {:<9} {:>3}  {:<20}  {:<32}  {}",
        "ID", "BUCKET", "STATE", "TRY", "SPOOLED", "FROM", "SUBJECT"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(
            [
                age(42),
                age(425),
                age(3 * 3600 + 60),
                age(2 * 86_400 + 4 * 3600)
            ],
            ["42s", "7m05s", "3h01m", "2d04h"]
        );
    }
}
