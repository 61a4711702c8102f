//! What an operator does by hand — `spool retry`, `spool drop`, `sink probe` — written once and
//! run either by the daemon (asked over the control socket while it owns the spool) or by the
//! CLI itself when no daemon runs. Each returns an [`Answer`]: the text to print and the exit
//! code, so both ways print the same words.

use crate::config::SinkConfig;
use crate::discord::{HttpSink, Outcome, Sink};
use crate::spool::{Dropped, Retried, Spool, State};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Answer {
    /// 0 done, 1 refused or failed, 2 a missing confirmation (usage).
    pub(crate) code: i32,
    pub(crate) text: String,
}

impl Answer {
    fn ok(text: String) -> Answer {
        Answer { code: 0, text }
    }
    fn fail(code: i32, text: String) -> Answer {
        Answer { code, text }
    }
}

/// Which items `spool retry` puts back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RetryTarget {
    One(u64),
    /// Every dead item, of one bucket or of all.
    Dead {
        bucket: Option<String>,
    },
}

pub(crate) fn retry(spool: &Spool, target: &RetryTarget) -> Answer {
    match target {
        RetryTarget::One(id) => match spool.retry(*id) {
            Ok(Retried::Requeued { sinks }) => Answer::ok(format!(
                "item {id}: pending again for {}; it keeps its attempts and last error",
                sinks.join(", ")
            )),
            Ok(Retried::NotDead(State::Pending)) => Answer::fail(
                1,
                format!("item {id} is pending already: its sinks are still trying it"),
            ),
            Ok(Retried::NotDead(state)) => Answer::fail(
                1,
                format!("item {id} is {}: nothing to retry", state.as_str()),
            ),
            Ok(Retried::Missing) => Answer::fail(1, format!("no item {id} in the spool")),
            Err(e) => Answer::fail(1, e.to_string()),
        },
        RetryTarget::Dead { bucket } => match spool.retry_dead(bucket.as_deref()) {
            Ok(n) => Answer::ok(format!(
                "{n} dead item(s){} pending again",
                bucket
                    .as_deref()
                    .map_or(String::new(), |b| format!(" of bucket {b}"))
            )),
            Err(e) => Answer::fail(1, e.to_string()),
        },
    }
}

/// Drops item `id`; without `yes`, only says what it would drop.
pub(crate) fn drop(spool: &Spool, id: u64, yes: bool) -> Answer {
    if !yes {
        return match spool.get(id) {
            Ok(Some(item)) => Answer::fail(
                2,
                format!(
                    "would drop item {id}: {} in bucket {}, from {}, subject {:?}, spooled {}; \
                     nothing is dropped without --yes",
                    item.state().as_str(),
                    item.bucket,
                    item.from,
                    item.subject,
                    crate::time::rfc3339(item.spooled_at)
                ),
            ),
            Ok(None) => Answer::fail(1, format!("no item {id} in the spool")),
            Err(e) => Answer::fail(1, e.to_string()),
        };
    }
    match spool.drop_item(id) {
        Ok(Dropped::Dropped(item)) => Answer::ok(format!(
            "dropped item {id} ({} in bucket {}, subject {:?})",
            item.state().as_str(),
            item.bucket,
            item.subject
        )),
        Ok(Dropped::Missing) => Answer::fail(1, format!("no item {id} in the spool")),
        Err(e) => Answer::fail(1, e.to_string()),
    }
}

/// A non-posting request to the sink (`GET` the webhook, or the bot's channel), classified.
pub(crate) fn probe(sink: &SinkConfig) -> Answer {
    let reply = HttpSink::new(sink.clone()).probe();
    let name = &sink.name;
    let status = if reply.status == 0 {
        "no answer".to_string()
    } else {
        format!("HTTP {}", reply.status)
    };
    match reply.outcome {
        Outcome::Delivered { .. } => Answer::ok(format!("sink {name}: ok ({status})")),
        Outcome::RateLimited { retry_after, .. } => Answer::ok(format!(
            "sink {name}: rate_limited ({status}), retry after {:.1} s",
            retry_after.as_secs_f64()
        )),
        Outcome::Transient { reason } => {
            Answer::fail(1, format!("sink {name}: transient: {reason}"))
        }
        Outcome::Dead { reason } => Answer::fail(1, format!("sink {name}: dead: {reason}")),
        Outcome::Rejected { reason } => Answer::fail(1, format!("sink {name}: rejected: {reason}")),
    }
}
