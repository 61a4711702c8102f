//! Dispatch: one loop per sink that reads owed items from the spool (the outbox) and delivers
//! them, reacting to each [`Outcome`](crate::discord::Outcome) as docs/design.md's table says.
//!
//! - Delivered: recorded with Discord's message id, flushed.
//! - RateLimited: wait `retry_after`; not a failure, no attempt counted.
//! - Transient: exponential backoff with jitter (1 s doubling to 5 min), forever.
//! - Dead: stop posting; probe with a non-posting `GET` on a slow, doubling schedule; revive on
//!   a successful probe (or when a reload starts a new loop, which probes first).
//! - Rejected: re-render each item once as plain text (no embeds); dead-letter what is still
//!   refused, with the API's words.
//!
//! Every request, post or probe, first passes the [`Guard`] all loops share (Discord's rate
//! limits: pacing from the rate-limit headers, a channel's shared limit, global 429s, the
//! invalid-request limit, an IP ban; src/discord/limits.rs) and feeds it the answer. The spool
//! hands out the most urgent bucket's oldest mail first.
//!
//! The loop ([`Dispatcher::run`]) is here; waiting for the guard and probing a dead sink in
//! `gate`, sending a batch in `deliver`, the reaction to each outcome in `react`.
//!
//! An item leaves `pending` only on a 2xx with a message id (invariant 3).

pub(crate) mod after;
mod batch;
mod deliver;
pub(crate) mod digest;
pub(crate) mod failover;
mod gate;
mod quiet;
mod react;
mod record;
mod upload;

use crate::config::Bucket;
use crate::discord::limits::{Guard, Who};
use crate::discord::Sink;
use crate::health::{Event, SinkState};
use crate::spool::Spool;
use crate::stop::Stop;
use crate::watchdog::Beat;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc::UnboundedSender, Notify};
use tokio::time::{sleep_until, Instant};

pub struct Dispatcher {
    pub sink: Arc<dyn Sink>,
    pub spool: Spool,
    pub buckets: Arc<Vec<Bucket>>,
    pub health: UnboundedSender<Event>,
    /// Rung after new mail is spooled.
    pub wake: Arc<Notify>,
    pub probe_every: Duration,
    pub probe_max: Duration,
    /// Begin by probing (the sink was dead before a reload).
    pub start_dead: bool,
    /// This loop told health the spool could not be written; it clears that itself.
    pub disk_full: AtomicBool,
    /// Checked in before every wait and every blocking call, with its bound.
    pub beat: Beat,
    /// The bound of one blocking call (the sink's request timeout).
    pub timeout: Duration,
    /// Shared by every dispatcher of the process (and kept across reloads).
    pub guard: Arc<Guard>,
    /// "digest now" requests (shared with the control socket).
    pub digests: Arc<digest::Digests>,
    /// Which sinks are dead, for failover to a bucket's fallback sink.
    pub dead: Arc<failover::DeadSinks>,
    /// Each account's `open_url` template: the embeds' links back to the mail.
    pub links: Arc<HashMap<String, String>>,
    /// The sink's `thread_name` template when it posts to a forum channel.
    pub forum: Option<String>,
    /// The accounts by name, for fetching attachments to upload.
    pub accounts: Arc<HashMap<String, crate::config::Account>>,
    /// The bell of the loop that does actions after delivery (src/dispatch/after.rs).
    pub after: Arc<Notify>,
}

/// Slack on top of each promised bound.
const SLACK: Duration = Duration::from_secs(10);
/// An idle loop re-reads the spool this often, in case a bell was missed.
const RECHECK: Duration = Duration::from_secs(30);

/// What the loop does next.
enum Next {
    At(Instant),
    Idle,
}

struct LoopState {
    failures: u32,
    dead: bool,
    probe_delay: Duration,
    who: Who,
    stop: Stop,
    /// Told health that a pause of every sink holds this one.
    paused: bool,
    /// A probe revived the sink and nothing was delivered since: if it dies again at once (a
    /// webhook whose thread is gone passes the probe but not a post), the wait keeps growing.
    revived: bool,
}

impl Dispatcher {
    fn report(&self, state: SinkState, error: Option<String>, delivered: bool) {
        self.dead.set(self.sink.name(), state == SinkState::Dead);
        let _ = self.health.send(Event::Sink {
            name: self.sink.name().to_string(),
            state,
            error,
            delivered,
        });
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        self.beat.within(self.timeout + SLACK);
        match tokio::task::spawn_blocking(f).await {
            Ok(v) => Some(v),
            Err(e) => {
                log::error!("sink {}: worker failed: {e}", self.sink.name());
                None
            }
        }
    }

    pub async fn run(self, stop: Stop) {
        let name = self.sink.name().to_string();
        let mut st = LoopState {
            failures: 0,
            dead: self.start_dead,
            probe_delay: self.probe_every,
            who: Who::of(self.sink.as_ref()),
            stop: stop.clone(),
            paused: false,
            revived: false,
        };
        if st.dead {
            self.report(SinkState::Dead, None, false);
        }
        let mut next = Next::At(Instant::now());
        loop {
            let idle = matches!(next, Next::Idle);
            // Idle: wait for new mail or the next digest, with a slow recheck in case a bell
            // was missed.
            let until = match next {
                Next::At(t) => t,
                Next::Idle => self.next_digest().min(Instant::now() + RECHECK),
            };
            self.beat
                .within(until.saturating_duration_since(Instant::now()) + SLACK);
            tokio::select! {
                _ = stop.wait() => break,
                _ = self.wake.notified(), if idle => {}
                _ = sleep_until(until) => {}
            }
            if stop.is_stopped() {
                break;
            }
            next = if st.dead {
                self.probe(&mut st).await
            } else {
                self.deliver_some(&mut st).await
            };
        }
        self.beat.waiting();
        log::info!("sink {name}: stopped");
    }
}

#[cfg(test)]
mod tests;
