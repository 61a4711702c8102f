//! The daily summary (`[notices] daily = "08:00"`, local time): one message a day per channel
//! with the mails each bucket received in the last 24 h, what is pending or dead, and each
//! sink's state — a sign of life a user learns to expect, so its absence is noticed too.
//!
//! It is due in the hour after the configured minute, once per local date; the date it went
//! out is kept in the ledger, so a restart within that hour does not send it twice, and a day
//! the agent was down at that hour is skipped rather than summarised late.

use super::ledger::Ledger;
use crate::config::Config;
use crate::control::{spool_in, SpoolSlot};
use crate::discord::render::escape;
use crate::health::{Health, SinkState};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Whether the summary is due at local `minute` on `today`, given the date of the last one.
fn is_due(at: u32, minute: u32, today: &str, last: Option<&str>) -> bool {
    (at..at + 60).contains(&minute) && last != Some(today)
}

/// The summary's body if it is due now (and records it as sent).
pub(crate) async fn due(
    config: &Config,
    h: &Health,
    ledger: &mut Ledger,
    slot: &SpoolSlot,
) -> Option<Value> {
    let at = config.notices.daily?;
    let local = chrono::Local::now();
    let today = local.format("%Y-%m-%d").to_string();
    let minute = {
        use chrono::Timelike;
        local.hour() * 60 + local.minute()
    };
    if !is_due(at, minute, &today, ledger.daily_last.as_deref()) {
        return None;
    }
    ledger.daily_last = Some(today);
    let since = chrono::Utc::now().timestamp() - 86_400;
    let counts = match spool_in(slot) {
        Some(spool) => tokio::task::spawn_blocking(move || received_since(&spool, since))
            .await
            .unwrap_or_default(),
        None => BTreeMap::new(),
    };
    Some(render(config, h, &counts))
}

/// Mails spooled at or after `since`, per bucket.
fn received_since(spool: &crate::spool::Spool, since: i64) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for item in spool.iter().flatten() {
        if item.spooled_at >= since {
            *out.entry(item.bucket).or_default() += 1;
        }
    }
    out
}

/// The summary: a line per bucket, a line per sink; pings nobody.
pub(crate) fn render(config: &Config, h: &Health, received: &BTreeMap<String, u64>) -> Value {
    let mut lines = Vec::new();
    for b in &config.buckets {
        let stats = h.buckets.iter().find(|s| s.name == b.name);
        let (pending, dead) = stats.map_or((0, 0), |s| (s.pending, s.dead));
        lines.push(format!(
            "**{}**: {} mails in 24 h · {pending} pending · {dead} dead",
            escape(&b.name),
            received.get(&b.name).copied().unwrap_or(0)
        ));
    }
    let sinks: Vec<String> = config
        .sinks
        .iter()
        .map(|s| {
            let state = h.sinks.get(&s.name).map_or(SinkState::Ok, |x| x.state);
            let word = serde_json::to_value(state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            format!("{} {word}", escape(&s.name))
        })
        .collect();
    let now = chrono::Utc::now().timestamp();
    json!({
        "content": "**mailbeacon** · daily summary",
        "embeds": [{
            "title": "Daily summary",
            "description": crate::text::ellipsize(&lines.join("\n"), 4000),
            "color": 0x34_98_DB,
            "fields": [
                { "name": "Sinks", "value": crate::text::ellipsize(&sinks.join(" · "), 1000), "inline": false },
                { "name": "Health", "value": crate::text::ellipsize(&escape(&h.summary(now)), 1000), "inline": false },
            ],
            "footer": { "text": "mailbeacon health notice" },
        }],
        "allowed_mentions": { "parse": [] },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_once_a_day_in_the_hour_after_its_minute() {
        let eight = 8 * 60;
        assert!(!is_due(eight, eight - 1, "2026-12-04", None));
        assert!(is_due(eight, eight, "2026-12-04", None));
        assert!(is_due(eight, eight + 59, "2026-12-04", Some("2026-12-03")));
        assert!(
            !is_due(eight, eight + 5, "2026-12-04", Some("2026-12-04")),
            "sent today"
        );
        assert!(
            !is_due(eight, eight + 60, "2026-12-04", None),
            "too late: skipped"
        );
    }
}
