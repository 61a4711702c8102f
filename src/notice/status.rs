//! What `status` and `status --json` show of the notices and the heartbeat: the last notice
//! (when, what, where it went) and the last heartbeat (when, what it reported, whether the
//! monitor acknowledged). Times are RFC 3339 UTC like the rest of the report; no URL appears.

use crate::health::Health;
use crate::time::rfc3339;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct NoticeStatus {
    pub(crate) last_at: Option<String>,
    /// trouble, reminder, resolved or daily.
    pub(crate) last_kind: Option<String>,
    pub(crate) last_title: Option<String>,
    pub(crate) last_delivered_to: Vec<String>,
    pub(crate) last_failed: Vec<String>,
    pub(crate) sent: u64,
    pub(crate) failed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct HeartbeatStatus {
    pub(crate) last_at: Option<String>,
    /// What the last call said: true = healthy, false = trouble.
    pub(crate) reported_healthy: Option<bool>,
    pub(crate) last_ok: Option<String>,
    pub(crate) last_error: Option<String>,
    pub(crate) failures: u64,
    pub(crate) reported_down: u64,
}

pub(crate) fn notices(h: &Health) -> Option<NoticeStatus> {
    let r = h.notices.as_ref()?;
    let last = r.last.as_ref();
    Some(NoticeStatus {
        last_at: last.map(|l| rfc3339(l.at)),
        last_kind: last.map(|l| l.kind.clone()),
        last_title: last.map(|l| l.title.clone()),
        last_delivered_to: last.map(|l| l.delivered_to.clone()).unwrap_or_default(),
        last_failed: last.map(|l| l.failed.clone()).unwrap_or_default(),
        sent: r.sent,
        failed: r.failed,
    })
}

pub(crate) fn heartbeat(h: &Health) -> Option<HeartbeatStatus> {
    let r = h.heartbeat.as_ref()?;
    Some(HeartbeatStatus {
        last_at: r.last_at.map(rfc3339),
        reported_healthy: r.reported_healthy,
        last_ok: r.last_ok.map(rfc3339),
        last_error: r.last_error.clone(),
        failures: r.failures,
        reported_down: r.reported_down,
    })
}

/// The lines of the human table.
pub(crate) fn lines(n: Option<&NoticeStatus>, hb: Option<&HeartbeatStatus>) -> String {
    let mut out = String::new();
    if let Some(n) = n {
        let to = if n.last_delivered_to.is_empty() {
            "no sink".to_string()
        } else {
            n.last_delivered_to.join(", ")
        };
        out.push_str(&format!(
            "\nnotices: last {} {} \"{}\" to {to}; {} sent, {} failed\n",
            n.last_at.as_deref().unwrap_or("-"),
            n.last_kind.as_deref().unwrap_or("-"),
            n.last_title.as_deref().unwrap_or(""),
            n.sent,
            n.failed
        ));
    }
    if let Some(hb) = hb {
        let said = match hb.reported_healthy {
            Some(true) => "healthy",
            Some(false) => "trouble",
            None => "-",
        };
        out.push_str(&format!(
            "heartbeat: last {} reported {said}, last acknowledged {}{}; {} failed calls\n",
            hb.last_at.as_deref().unwrap_or("-"),
            hb.last_ok.as_deref().unwrap_or("never"),
            hb.last_error
                .as_deref()
                .map_or(String::new(), |e| format!(" (last error: {e})")),
            hb.failures
        ));
    }
    out
}

/// The metrics families: notices by outcome, heartbeat calls that failed or reported trouble.
pub(crate) fn metrics(out: &mut String, h: &Health) {
    use std::fmt::Write as _;
    let n = h.notices.clone().unwrap_or_default();
    let hb = h.heartbeat.clone().unwrap_or_default();
    let _ = writeln!(out, "# HELP mailbeacon_notices_total Health notices posted since start, one per channel, by outcome.\n# TYPE mailbeacon_notices_total counter");
    let _ = writeln!(
        out,
        "mailbeacon_notices_total{{outcome=\"delivered\"}} {}",
        n.sent
    );
    let _ = writeln!(
        out,
        "mailbeacon_notices_total{{outcome=\"failed\"}} {}",
        n.failed
    );
    let _ = writeln!(out, "# HELP mailbeacon_heartbeat_failures_total Heartbeat calls the monitor did not acknowledge since start.\n# TYPE mailbeacon_heartbeat_failures_total counter");
    let _ = writeln!(out, "mailbeacon_heartbeat_failures_total {}", hb.failures);
    let _ = writeln!(out, "# HELP mailbeacon_heartbeat_down_total Heartbeat calls that reported trouble since start.\n# TYPE mailbeacon_heartbeat_down_total counter");
    let _ = writeln!(out, "mailbeacon_heartbeat_down_total {}", hb.reported_down);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{LastNotice, NoticeReport};

    #[test]
    fn status_shows_the_last_notice_and_heartbeat_and_the_metrics_count_them() {
        let mut h = Health {
            notices: Some(NoticeReport {
                last: Some(LastNotice {
                    at: 0,
                    kind: "trouble".into(),
                    title: "Sink noise is dead".into(),
                    delivered_to: vec!["alerts".into()],
                    failed: vec![],
                }),
                sent: 3,
                failed: 1,
            }),
            ..Health::default()
        };
        h.heartbeat = Some(crate::health::HeartbeatReport {
            last_at: Some(60),
            reported_healthy: Some(false),
            failures: 2,
            reported_down: 5,
            ..Default::default()
        });
        let text = lines(notices(&h).as_ref(), heartbeat(&h).as_ref());
        assert!(
            text.contains("trouble \"Sink noise is dead\" to alerts; 3 sent, 1 failed"),
            "{text}"
        );
        assert!(
            text.contains("heartbeat: last 1970-01-01T00:01:00Z reported trouble"),
            "{text}"
        );
        let mut m = String::new();
        metrics(&mut m, &h);
        assert!(
            m.contains("mailbeacon_notices_total{outcome=\"failed\"} 1"),
            "{m}"
        );
        assert!(m.contains("mailbeacon_heartbeat_failures_total 2"), "{m}");
    }
}
