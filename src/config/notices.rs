//! `[notices]`, `[heartbeat]` and quiet hours in chat, validated: how trouble reaches a user
//! who is not standing next to the board (docs/operations.md, "Trouble away from home").
//!
//! - `[notices]`: health notices posted to the channels that still work — which sinks
//!   (default: every sink), how long a state must last before it is announced
//!   (`notify_after`, default 2 min), how often a lasting one is recalled (`remind_every`,
//!   default 6 h), the one mention allowed for the alarm level, and the daily summary's time.
//! - `[heartbeat]`: a dead-man's switch URL (a secret: inline, `url_file` or `credential`),
//!   called every `every` with the agent's verdict in the form of its `style`.
//! - Quiet hours: a P2 or P3 bucket's messages go out silently (Discord's
//!   SUPPRESS_NOTIFICATIONS) during `[indicator] quiet_hours`, unless it sets `quiet = false`.

use super::raw::{RawHeartbeat, RawNotices};
use super::{Bucket, ConfigError, Loader, Mention, Secret, Severity, SinkConfig};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NoticesConfig {
    /// `enabled = false` turns chat notices (and the daily summary) off.
    pub(crate) enabled: bool,
    /// The sinks that receive notices; `None`: every sink.
    pub(crate) sinks: Option<Vec<String>>,
    pub(crate) notify_after: Duration,
    pub(crate) remind_every: Duration,
    /// Put in the content of alarm-level notices (announcements and reminders), and allowed
    /// in their `allowed_mentions`; nothing else a notice says can ping.
    pub(crate) mention: Option<Mention>,
    /// Local minute of the day of the daily summary, if one is wanted.
    pub(crate) daily: Option<u32>,
}

impl Default for NoticesConfig {
    fn default() -> NoticesConfig {
        NoticesConfig {
            enabled: true,
            sinks: None,
            notify_after: Duration::from_secs(120),
            remind_every: Duration::from_secs(6 * 3600),
            mention: None,
            daily: None,
        }
    }
}

/// How the heartbeat URL is called (each monitor reads failure differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeartbeatStyle {
    /// healthchecks.io: `URL` when healthy, `URL/fail` with the reason as the body otherwise.
    Healthchecks,
    /// Uptime Kuma push monitor: `URL?status=up&msg=OK` or `?status=down&msg=REASON`.
    UptimeKuma,
    /// Only `URL`, only while healthy: silence is the alarm.
    Plain,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeartbeatConfig {
    pub(crate) url: Secret,
    pub(crate) every: Duration,
    pub(crate) style: HeartbeatStyle,
    /// The bound of one call; a slow monitor never holds anything else up.
    pub(crate) timeout: Duration,
}

impl Loader<'_> {
    pub(super) fn notices(
        &self,
        r: Option<RawNotices>,
        sinks: &[SinkConfig],
    ) -> Result<NoticesConfig, ConfigError> {
        let Some(r) = r else {
            return Ok(NoticesConfig::default());
        };
        if let Some(names) = &r.sinks {
            for s in names {
                if !sinks.iter().any(|k| &k.name == s) {
                    return Err(self.err("notices.sinks", format!("no [[sink]] is named {s:?}")));
                }
            }
        }
        let mention = r
            .mention
            .as_deref()
            .map(|m| parse_mention(m).map_err(|e| self.err("notices.mention", e)))
            .transpose()?;
        let daily = r
            .daily
            .as_deref()
            .map(|d| parse_clock(d).map_err(|e| self.err("notices.daily", e)))
            .transpose()?;
        Ok(NoticesConfig {
            enabled: r.enabled.unwrap_or(true),
            sinks: r.sinks,
            notify_after: self.duration("notices.notify_after", r.notify_after.as_deref(), "2m")?,
            remind_every: self.duration("notices.remind_every", r.remind_every.as_deref(), "6h")?,
            mention,
            daily,
        })
    }

    pub(super) fn heartbeat(
        &self,
        r: Option<RawHeartbeat>,
    ) -> Result<Option<HeartbeatConfig>, ConfigError> {
        let Some(r) = r else {
            return Ok(None);
        };
        let url = self.secret("heartbeat.url", r.url, r.url_file, r.credential)?;
        let scheme_ok = url.expose().is_empty()
            || url.expose().starts_with("https://")
            || url.expose().starts_with("http://");
        if !scheme_ok {
            // The URL is a secret: the error names the key, never the value.
            return Err(self.err("heartbeat.url", "must start with https:// or http://"));
        }
        let style = match r.style.as_deref().unwrap_or("healthchecks") {
            "healthchecks" => HeartbeatStyle::Healthchecks,
            "uptime-kuma" => HeartbeatStyle::UptimeKuma,
            "plain" => HeartbeatStyle::Plain,
            other => {
                return Err(self.err(
                    "heartbeat.style",
                    format!("{other:?} is not one of healthchecks, uptime-kuma, plain"),
                ))
            }
        };
        Ok(Some(HeartbeatConfig {
            url,
            every: self.duration("heartbeat.every", r.every.as_deref(), "5m")?,
            style,
            timeout: self.duration("heartbeat.timeout", r.timeout.as_deref(), "10s")?,
        }))
    }
}

/// Sets each bucket's quiet window: `[indicator] quiet_hours` for P2 and P3 buckets that did
/// not opt out with `quiet = false`; P0 and P1 always notify.
pub(super) fn quiet_windows(buckets: &mut [Bucket], opted_out: &[bool], hours: Option<(u32, u32)>) {
    for (b, out) in buckets.iter_mut().zip(opted_out) {
        b.quiet = hours.filter(|_| b.severity >= Severity::P2 && !out);
    }
}

fn parse_mention(m: &str) -> Result<Mention, String> {
    if m == "everyone" {
        return Ok(Mention::Everyone);
    }
    match m.strip_prefix("role:") {
        Some(id) if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) => {
            Ok(Mention::Role(id.to_string()))
        }
        _ => Err(format!("{m:?} is not \"role:ID\" or \"everyone\"")),
    }
}

/// `"08:00"` → 480 (local minutes since midnight).
fn parse_clock(text: &str) -> Result<u32, String> {
    let (h, m) = text
        .trim()
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not \"HH:MM\""))?;
    match (h.parse::<u32>(), m.parse::<u32>()) {
        (Ok(h), Ok(m)) if h < 24 && m < 60 => Ok(h * 60 + m),
        _ => Err(format!("{text:?} is not \"HH:MM\"")),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{load, GOOD};
    use crate::config::{HeartbeatStyle, Mention};
    use std::time::Duration;

    #[test]
    fn notices_default_to_every_sink_after_two_minutes() {
        let c = load("notices-default", GOOD).unwrap();
        assert!(c.notices.enabled);
        assert_eq!(c.notices.sinks, None);
        assert_eq!(c.notices.notify_after, Duration::from_secs(120));
        assert_eq!(c.notices.remind_every, Duration::from_secs(6 * 3600));
        assert_eq!(c.notices.mention, None);
        assert!(c.heartbeat.is_none());
    }

    #[test]
    fn notices_name_real_sinks_and_a_valid_mention() {
        let c = load(
            "notices",
            &format!("{GOOD}[notices]\nsinks = [\"alerts\"]\nnotify_after = \"5s\"\nmention = \"role:42\"\ndaily = \"08:30\"\n"),
        )
        .unwrap();
        assert_eq!(c.notices.sinks, Some(vec!["alerts".to_string()]));
        assert_eq!(c.notices.mention, Some(Mention::Role("42".into())));
        assert_eq!(c.notices.daily, Some(8 * 60 + 30));
        let e = load(
            "notices-sink",
            &format!("{GOOD}[notices]\nsinks = [\"nope\"]\n"),
        )
        .unwrap_err();
        assert_eq!(e.key, "notices.sinks", "{e}");
        let e = load(
            "notices-mention",
            &format!("{GOOD}[notices]\nmention = \"@here\"\n"),
        )
        .unwrap_err();
        assert_eq!(e.key, "notices.mention", "{e}");
        let e = load(
            "notices-daily",
            &format!("{GOOD}[notices]\ndaily = \"25:00\"\n"),
        )
        .unwrap_err();
        assert_eq!(e.key, "notices.daily", "{e}");
    }

    #[test]
    fn the_heartbeat_url_is_a_secret_that_no_error_shows() {
        let c = load(
            "hb",
            &format!("{GOOD}[heartbeat]\nurl = \"https://hc.example/ping/SECRETUUID\"\nstyle = \"uptime-kuma\"\nevery = \"1m\"\n"),
        )
        .unwrap();
        let hb = c.heartbeat.clone().unwrap();
        assert_eq!(hb.style, HeartbeatStyle::UptimeKuma);
        assert_eq!(hb.every, Duration::from_secs(60));
        assert!(!format!("{c:?}").contains("SECRETUUID"));
        let e = load(
            "hb-scheme",
            &format!("{GOOD}[heartbeat]\nurl = \"ftp://SECRETUUID\"\n"),
        )
        .unwrap_err();
        assert_eq!(e.key, "heartbeat.url");
        assert!(!e.to_string().contains("SECRETUUID"), "{e}");
        let e = load(
            "hb-style",
            &format!("{GOOD}[heartbeat]\nurl = \"https://x/y\"\nstyle = \"nagios\"\n"),
        )
        .unwrap_err();
        assert_eq!(e.key, "heartbeat.style");
    }

    #[test]
    fn quiet_hours_silence_p2_and_p3_buckets_that_do_not_opt_out() {
        let text = GOOD.replace("name = \"unknown\"", "name = \"unknown\"\nquiet = false");
        let c = load(
            "quiet",
            &format!("{text}[indicator]\nquiet_hours = \"22:00-07:00\"\n"),
        )
        .unwrap();
        assert_eq!(c.bucket("stripe").unwrap().quiet, Some((1320, 420)));
        assert_eq!(c.bucket("unknown").unwrap().quiet, None, "opted out");
        let p1 = GOOD.replace("severity = \"P2\"", "severity = \"P1\"");
        let c = load(
            "quiet-p1",
            &format!("{p1}[indicator]\nquiet_hours = \"22:00-07:00\"\n"),
        )
        .unwrap();
        assert_eq!(
            c.bucket("stripe").unwrap().quiet,
            None,
            "P1 always notifies"
        );
        assert_eq!(c.bucket("unknown").unwrap().quiet, Some((1320, 420)));
        let c = load("quiet-none", GOOD).unwrap();
        assert_eq!(c.bucket("stripe").unwrap().quiet, None, "no quiet hours");
    }
}
