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

/// The human table.
pub fn table(r: &StatusReport) -> String {
    let mut out = format!(
        "mailbeacon: {} — LED {}\n",
        r.summary,
        r.indicator.pattern.as_str()
    );
    out.push_str(&format!(
        "\n{:<24} {:<12} {:>10} {:>8}  {}\n",
        "MAILBOX", "STATE", "UIDVALID", "LASTUID", "LAST ERROR"
    ));
    for a in &r.accounts {
        out.push_str(&format!(
            "{:<24} {:<12} {:>10} {:>8}  {}\n",
            format!("{}/{}", a.name, a.folder),
            json_name(&a.state),
            opt(&a.uidvalidity),
            opt(&a.last_uid),
            opt(&a.last_error)
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
        "\n{:<24} {:<12} {:<21}  {}\n",
        "SINK", "STATE", "LAST SUCCESS", "LAST ERROR"
    ));
    for s in &r.sinks {
        out.push_str(&format!(
            "{:<24} {:<12} {:<21}  {}\n",
            s.name,
            json_name(&s.state),
            opt(&s.last_success),
            opt(&s.last_error)
        ));
    }
    out.push_str(&format!(
        "\n{:<24} {:>8} {:>10} {:>6} {:>12}\n",
        "BUCKET", "PENDING", "DELIVERED", "DEAD", "OLDEST (s)"
    ));
    for b in &r.buckets {
        out.push_str(&format!(
            "{:<24} {:>8} {:>10} {:>6} {:>12}\n",
            b.name,
            b.pending,
            b.delivered,
            b.dead,
            opt(&b.oldest_pending_age_s)
        ));
    }
    out
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
}

impl Filter {
    pub fn accepts(&self, i: &Item) -> bool {
        self.bucket.as_ref().is_none_or(|b| *b == i.bucket)
            && self.state.is_none_or(|s| s == i.state())
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
