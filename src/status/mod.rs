//! What `status` and `spool dump` print: the JSON shapes of docs/design.md's interface and the human
//! tables. Built from the daemon's health snapshot when it runs, from the spool alone when not.
//! Nothing here carries a secret: only names, states and classified errors.

use crate::config::Config;
use crate::health::{AccountState, DiscordState, Health, Pattern, SinkState};
use crate::spool::{BucketStats, Cursor, Spool, SpoolError};
use crate::time::rfc3339;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct AccountStatus {
    pub(crate) name: String,
    pub(crate) folder: String,
    pub(crate) state: Option<AccountState>,
    pub(crate) last_ok: Option<String>,
    pub(crate) last_error: Option<String>,
    /// When `last_error` happened (RFC 3339).
    #[serde(default)]
    pub(crate) last_error_at: Option<String>,
    /// When the mailbox was watched again after `last_error` (RFC 3339): the error is past.
    /// `null` while the error is current (or there is none).
    #[serde(default)]
    pub(crate) recovered_at: Option<String>,
    pub(crate) uidvalidity: Option<u32>,
    pub(crate) last_uid: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct SinkStatus {
    pub(crate) name: String,
    pub(crate) state: Option<SinkState>,
    pub(crate) last_error: Option<String>,
    pub(crate) last_success: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct BucketStatus {
    pub(crate) name: String,
    pub(crate) pending: u64,
    pub(crate) delivered: u64,
    pub(crate) dead: u64,
    pub(crate) oldest_pending_age_s: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct IndicatorStatus {
    pub(crate) pattern: Pattern,
}

/// Every sink's standing with Discord together (`null` when no daemon runs).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct DiscordStatus {
    /// ok, rate_limited (a global 429 pauses every sink), paused (the invalid-request limit
    /// was reached), banned (Cloudflare error 1015: every sink paused).
    pub(crate) state: DiscordState,
    /// 401, 403 and non-shared 429 answers in the last 10 minutes, all sinks together.
    pub(crate) invalid_requests_10min: u64,
    /// At this count every sink pauses until the window drains.
    pub(crate) invalid_request_limit: u64,
    /// When a pause of every sink ends (RFC 3339), if one is on.
    pub(crate) paused_until: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct StatusReport {
    pub(crate) running: bool,
    pub(crate) summary: String,
    pub(crate) accounts: Vec<AccountStatus>,
    pub(crate) sinks: Vec<SinkStatus>,
    pub(crate) buckets: Vec<BucketStatus>,
    pub(crate) indicator: IndicatorStatus,
    #[serde(default)]
    pub(crate) discord: Option<DiscordStatus>,
    /// The last health notice and the counts (`null` before the first, or with no daemon).
    #[serde(default)]
    pub(crate) notices: Option<crate::notice::status::NoticeStatus>,
    /// The last heartbeat (`null` without `[heartbeat]`, or with no daemon).
    #[serde(default)]
    pub(crate) heartbeat: Option<crate::notice::status::HeartbeatStatus>,
    /// Actions after delivery (a bucket's `after_delivery`) owed on the server, not done yet;
    /// `null` while the spool is closed.
    #[serde(default)]
    pub(crate) actions_owed: Option<u64>,
}

/// The report; `health` is the daemon's live view, `None` when no daemon runs. `spool` is
/// `None` while the daemon has closed it (a full or read-only disk): counts and cursors then
/// come from the live view, as last seen.
pub(crate) fn report(
    config: &Config,
    health: Option<&Health>,
    spool: Option<&Spool>,
    now: i64,
) -> Result<StatusReport, SpoolError> {
    let (stats, cursors) = match spool {
        Some(spool) => (
            spool.bucket_stats(config.buckets.iter().map(|b| b.name.as_str()))?,
            spool.cursors()?,
        ),
        None => (
            health.map(|h| h.buckets.clone()).unwrap_or_default(),
            health.map(live_cursors).unwrap_or_default(),
        ),
    };
    let accounts = accounts(config, health, &cursors);
    let sinks = sinks(config, health);
    let buckets = buckets(&stats, now);
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
        notices: health.and_then(crate::notice::status::notices),
        heartbeat: health.and_then(crate::notice::status::heartbeat),
        actions_owed: spool.map(|s| s.actions_owed() as u64),
    })
}

/// The cursors the daemon last reported, for when the spool is closed.
fn live_cursors(h: &Health) -> Vec<(String, String, Cursor)> {
    h.accounts
        .iter()
        .filter_map(|((a, f), l)| Some((a.clone(), f.clone(), l.cursor?)))
        .collect()
}

/// Every configured mailbox: its live state, if a daemon runs, and its cursor.
fn accounts(
    config: &Config,
    health: Option<&Health>,
    cursors: &[(String, String, Cursor)],
) -> Vec<AccountStatus> {
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
    accounts
}

/// Every configured sink, with its live state if a daemon runs.
fn sinks(config: &Config, health: Option<&Health>) -> Vec<SinkStatus> {
    config
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
        .collect()
}

/// Every bucket's counts, with the age of its oldest pending mail at `now`.
fn buckets(stats: &[BucketStats], now: i64) -> Vec<BucketStatus> {
    stats
        .iter()
        .map(|b| BucketStatus {
            name: b.name.clone(),
            pending: b.pending,
            delivered: b.delivered,
            dead: b.dead,
            oldest_pending_age_s: b.oldest_pending_at.map(|t| (now - t).max(0)),
        })
        .collect()
}

mod listing;
mod table;

pub(crate) use listing::{list, ls_header, ls_row, DumpRecord, Filter, Listed};
pub(crate) use table::{table, use_colour};
