//! What the notice sender and the heartbeat report about themselves. Health keeps the latest
//! of each, so `status` shows them with everything else; the reducer defines their shape, as it
//! does every event's, and depends on neither.

use serde::Serialize;

/// What `status` shows of the notices: the last one and the counts since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NoticeReport {
    pub last: Option<LastNotice>,
    /// Notices acknowledged by Discord, one per channel.
    pub sent: u64,
    /// Notices given up on, one per channel.
    pub failed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastNotice {
    /// Unix seconds.
    pub at: i64,
    /// trouble, reminder, resolved or daily.
    pub kind: String,
    pub title: String,
    /// The sinks that acknowledged it.
    pub delivered_to: Vec<String>,
    /// The sinks that did not, with the reason.
    pub failed: Vec<String>,
}

/// What `status` shows of the heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HeartbeatReport {
    /// Unix seconds of the last call, and whether it reported the agent healthy.
    pub last_at: Option<i64>,
    pub reported_healthy: Option<bool>,
    /// Unix seconds of the last call the monitor acknowledged (2xx).
    pub last_ok: Option<i64>,
    /// Why the last call failed, if it did (never the URL).
    pub last_error: Option<String>,
    /// Calls the monitor did not acknowledge, since start.
    pub failures: u64,
    /// Calls that reported trouble, since start.
    pub reported_down: u64,
}
