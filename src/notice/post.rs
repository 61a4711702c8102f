//! Posting one notice to one sink through the guard every delivery loop shares
//! (src/discord/limits/guard.rs): the same pacing, the same invalid-request limit and ban pause, and
//! the answer counted the same way. A notice is small and not spooled: it is tried a few times
//! (rate limits and transient failures), then given up and logged; a dead answer is never
//! retried, so a notice cannot hammer a webhook that has just died.

use crate::backoff::backoff;
use crate::config::SinkConfig;
use crate::discord::limits::{Gate, Guard, Route, Who};
use crate::discord::{HttpSink, Outcome, Sink};
use crate::stop::Stop;
use std::sync::Arc;
use tokio::time::{sleep_until, Instant};

const ATTEMPTS: u32 = 4;

/// The sinks' rate-limit identity: the same key the delivery loops use.
pub(crate) fn resource(s: &SinkConfig) -> String {
    HttpSink::new(s.clone()).resource()
}

/// Waits until the guard admits `who`; false when stopped meanwhile.
async fn gate(guard: &Guard, who: &Who, sink: &Arc<HttpSink>, stop: &Stop) -> bool {
    loop {
        let until = match guard.admit(who, Route::Post, Instant::now()) {
            Gate::Go => return true,
            Gate::Wait { until, .. } => until,
            Gate::ProbeBan => {
                // This caller was chosen to ask whether the ban is over: ask, as a loop would.
                let s = sink.clone();
                if let Ok(reply) = tokio::task::spawn_blocking(move || s.probe()).await {
                    guard.observe(who, Route::Get, &reply, Instant::now());
                }
                continue;
            }
        };
        tokio::select! {
            _ = stop.wait() => return false,
            _ = sleep_until(until) => {}
        }
    }
}

/// A forum or media channel takes only posts (else 400, code 220001): there a notice is a new
/// post named after its title, unless the sink posts into a thread of its own.
fn addressed(config: &SinkConfig, body: &serde_json::Value) -> serde_json::Value {
    let mut body = body.clone();
    if config.forum.is_some() && config.thread_id.is_none() {
        let title = body["embeds"][0]["title"]
            .as_str()
            .unwrap_or("mailbeacon")
            .to_string();
        body["thread_name"] = serde_json::json!(crate::text::ellipsize(&title, 100));
    }
    body
}

/// Posts `body` to `config`'s destination; `Err` with the reason when it was not delivered.
pub(crate) async fn post(
    config: &SinkConfig,
    body: &serde_json::Value,
    guard: &Guard,
    stop: &Stop,
) -> Result<(), String> {
    let sink = Arc::new(HttpSink::new(config.clone()));
    let who = Who::of(sink.as_ref());
    let nonce = format!("mbn{:x}", fastrand::u64(..));
    let mut last = String::from("not sent");
    for attempt in 1..=ATTEMPTS {
        if !gate(guard, &who, &sink, stop).await {
            return Err("stopping".into());
        }
        let (s, b, n) = (sink.clone(), addressed(config, body), nonce.clone());
        let Ok(reply) = tokio::task::spawn_blocking(move || s.post(&b, &n, None)).await else {
            return Err("worker failed".into());
        };
        guard.observe(&who, Route::Post, &reply, Instant::now());
        crate::metrics::observe(&config.name, &reply.outcome, 0);
        let wait = match reply.outcome {
            Outcome::Delivered { .. } => return Ok(()),
            Outcome::Dead { reason } | Outcome::Rejected { reason } => return Err(reason),
            Outcome::RateLimited { retry_after, .. } => {
                last = "rate limited".into();
                retry_after
            }
            Outcome::Transient { reason } => {
                last = reason;
                backoff(attempt, fastrand::f64())
            }
        };
        tokio::select! {
            _ = stop.wait() => return Err("stopping".into()),
            _ = tokio::time::sleep(wait) => {}
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SinkTarget, WebhookUrl};
    use serde_json::json;
    use std::time::Duration;

    fn sink(forum: bool, thread_id: Option<&str>) -> SinkConfig {
        let url = WebhookUrl::parse("https://discord.com/api/webhooks/1/tok").unwrap();
        SinkConfig {
            name: "board".into(),
            target: SinkTarget::Webhook(url),
            thread_id: thread_id.map(str::to_string),
            forum: forum.then(|| "{subject}".to_string()),
            probe_every: Duration::from_secs(60),
            probe_max: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn in_a_forum_a_notice_is_a_post_named_after_its_title() {
        let body = json!({ "content": "x", "embeds": [{ "title": "Sink noise is dead" }] });
        assert_eq!(
            addressed(&sink(true, None), &body)["thread_name"],
            "Sink noise is dead"
        );
        assert!(addressed(&sink(false, None), &body)
            .get("thread_name")
            .is_none());
        assert!(
            addressed(&sink(true, Some("77")), &body)
                .get("thread_name")
                .is_none(),
            "a sink with a thread of its own posts there"
        );
    }
}
