//! Dispatch: one loop per sink that reads owed items from the spool (the outbox) and delivers
//! them, reacting to each [`Outcome`] as docs/design.md's table says.
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
//! invalid-request limit, an IP ban; src/discord/limits.rs) and feeds it the answer. The spool hands out the most urgent bucket's oldest mail first.
//!
//! An item leaves `pending` only on a 2xx with a message id (invariant 3).

pub mod after;
mod batch;
pub mod digest;
pub mod failover;
pub mod quiet;
mod record;
mod upload;

/// The guard as callers outside the crate (tests, benchmarks) name it:
/// `mailbeacon::dispatch::guard::Guard`. It lives in src/discord/limits.rs.
pub mod guard {
    pub use crate::discord::limits::Guard;
}

use crate::backoff::backoff;
use crate::config::Bucket;
use crate::discord::limits::{Gate, Guard, Route, Who, Why};
use crate::discord::{render, Level, Outcome, Reply, Scope, Sink};
use crate::health::{Event, SinkState};
use crate::spool::{Item, Spool, Update};
use crate::stop::Stop;
use crate::watchdog::Beat;
use batch::Kind;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc::UnboundedSender, Notify};
use tokio::time::{sleep_until, Instant};

/// The same update for every item of a message.
fn each(ids: &[u64], update: &Update) -> Vec<(u64, Update)> {
    ids.iter().map(|id| (*id, update.clone())).collect()
}

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
    /// The bell of the loop that does actions after delivery ([`after`]).
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

    /// Waits until the guard lets this sink send on `route`; false when stopped meanwhile.
    async fn gate(&self, st: &mut LoopState, route: Route) -> bool {
        loop {
            let now = Instant::now();
            let (until, why) = match self.guard.admit(&st.who, route, now) {
                Gate::Go => {
                    if std::mem::take(&mut st.paused) && !st.dead {
                        log::info!("sink {}: pause over", self.sink.name());
                        self.report(SinkState::Ok, None, false);
                    }
                    return true;
                }
                Gate::ProbeBan => {
                    self.ban_probe(st).await;
                    continue;
                }
                Gate::Wait { until, why } => (until, why),
            };
            if why != Why::Pacing && !st.paused {
                st.paused = true;
                log::warn!(
                    "sink {}: {why}; next request in {:?}",
                    self.sink.name(),
                    until - now
                );
                if !st.dead {
                    self.report(SinkState::RateLimited, Some(why.to_string()), false);
                }
            }
            self.beat.within(until - now + SLACK);
            tokio::select! {
                _ = st.stop.wait() => return false,
                _ = sleep_until(until) => {}
            }
        }
    }

    /// The one `GET` that asks whether Cloudflare's ban is over; its answer lifts or renews it.
    async fn ban_probe(&self, st: &mut LoopState) {
        log::warn!(
            "sink {}: asking Discord once (GET) whether the IP ban is over",
            self.sink.name()
        );
        let sink = self.sink.clone();
        if let Some(reply) = self.blocking(move || sink.probe()).await {
            self.guard
                .observe(&st.who, Route::Get, &reply, Instant::now());
        }
    }

    async fn probe(&self, st: &mut LoopState) -> Next {
        if !self.gate(st, Route::Get).await {
            return Next::Idle;
        }
        let sink = self.sink.clone();
        let Some(reply) = self.blocking(move || sink.probe()).await else {
            return Next::At(Instant::now() + st.probe_delay);
        };
        self.guard
            .observe(&st.who, Route::Get, &reply, Instant::now());
        match reply.outcome {
            Outcome::Delivered { .. } => {
                log::info!(
                    "sink {}: probe succeeded, alive again; draining the backlog",
                    self.sink.name()
                );
                st.dead = false;
                st.failures = 0;
                st.revived = true;
                self.report(SinkState::Ok, None, false);
                Next::At(Instant::now())
            }
            Outcome::RateLimited { retry_after, .. } => Next::At(Instant::now() + retry_after),
            Outcome::Dead { reason }
            | Outcome::Transient { reason }
            | Outcome::Rejected { reason } => {
                st.probe_delay = (st.probe_delay * 2).min(self.probe_max);
                log::warn!(
                    "sink {}: still dead ({reason}); next probe in {:?}",
                    self.sink.name(),
                    st.probe_delay
                );
                self.report(SinkState::Dead, Some(reason), false);
                Next::At(Instant::now() + st.probe_delay)
            }
        }
    }

    /// Sends one batch (or, after a 400, its items one by one, as plain text).
    async fn deliver_some(&self, st: &mut LoopState) -> Next {
        let Some(mut batch) = self.next_batch().await else {
            return Next::At(Instant::now() + Duration::from_secs(5));
        };
        let Some(first) = batch.items.first() else {
            st.failures = 0;
            return Next::Idle;
        };
        let bucket = self.buckets.iter().find(|b| b.name == first.bucket);
        let upload = bucket
            .and_then(|b| b.upload_max)
            .filter(|_| batch.kind == Kind::Push && !first.attachments.is_empty());
        let forum_post = self.forum.is_some()
            && batch.kind == Kind::Push
            && bucket.is_none_or(|b| b.thread_id.is_none());
        if forum_post || upload.is_some() {
            // One mail per message: a forum post named after it, or a message with its files.
            batch.items.truncate(1);
        }
        let mut message = batch.render(bucket);
        quiet::silence(&mut message.body, bucket, crate::indicator::local_minute());
        if batch.kind == Kind::Push {
            crate::discord::render::add_links(&mut message, &batch.items, &self.links);
        }
        let thread = self.address(&mut message.body, bucket, &batch.items);
        let files = match (upload, batch.items.first()) {
            (Some(max), Some(item)) => self.uploads(&mut message, item, max).await,
            _ => Vec::new(),
        };
        let Some(mut reply) = self
            .post(
                st,
                &message.body,
                &message.ids,
                Level::Full,
                thread.as_deref(),
                &files,
            )
            .await
        else {
            return Next::Idle;
        };
        if !files.is_empty() && upload::too_large(&reply) {
            log::warn!("sink {}: Discord refused the attachments as too large; sending the message without them", self.sink.name());
            upload::say(
                &mut message,
                "the attachments were not uploaded: Discord refused them as too large",
            );
            let Some(again) = self
                .post(
                    st,
                    &message.body,
                    &message.ids,
                    Level::Full,
                    thread.as_deref(),
                    &[],
                )
                .await
            else {
                return Next::Idle;
            };
            reply = again;
        }
        match reply.outcome {
            Outcome::Rejected { reason } => {
                log::warn!("sink {}: Discord refused a message of {} mails ({reason}); sending each as plain text", self.sink.name(), message.ids.len());
                let carried: Vec<Item> = batch
                    .items
                    .into_iter()
                    .filter(|i| message.ids.contains(&i.id))
                    .collect();
                self.shrink(st, bucket, carried).await
            }
            outcome => self.react(st, outcome, &message.ids).await,
        }
    }

    /// A forum sink's name and tags for a new post, or the bucket's thread to reply in.
    fn address(
        &self,
        body: &mut serde_json::Value,
        bucket: Option<&Bucket>,
        items: &[Item],
    ) -> Option<String> {
        let (template, first) = (self.forum.as_deref()?, items.first()?);
        crate::discord::render::forum::address(body, template, bucket, first)
    }

    /// Posts through the guard (into `thread` when given); `None` when stopped while waiting.
    async fn post(
        &self,
        st: &mut LoopState,
        body: &serde_json::Value,
        ids: &[u64],
        level: Level,
        thread: Option<&str>,
        files: &[crate::discord::Upload],
    ) -> Option<Reply> {
        if !self.gate(st, Route::Post).await {
            return None;
        }
        let (sink, body) = (self.sink.clone(), body.clone());
        let thread = thread.map(str::to_string);
        let files = files.to_vec();
        // The same batch gets the same nonce, so a bot's repeat after a crash is recognised.
        let nonce = format!(
            "mb{:x}{}",
            ids.first().copied().unwrap_or(0) ^ ((ids.len() as u64) << 56),
            level as u8
        );
        let reply = self
            .blocking(move || sink.post_files(&body, &nonce, thread.as_deref(), &files))
            .await
            .unwrap_or(Reply {
                outcome: Outcome::Transient {
                    reason: "worker failed".into(),
                },
                pace: Default::default(),
                status: 0,
            });
        self.guard
            .observe(&st.who, Route::Post, &reply, Instant::now());
        crate::metrics::observe(self.sink.name(), &reply.outcome, ids.len());
        Some(reply)
    }

    /// After a 400: each item once more, minimal (plain content, no embeds); what Discord
    /// still refuses is dead-lettered with its words, kept in the spool.
    async fn shrink(&self, st: &mut LoopState, bucket: Option<&Bucket>, items: Vec<Item>) -> Next {
        for item in items {
            let mut message = render(bucket, std::slice::from_ref(&item), Level::Plain);
            quiet::silence(&mut message.body, bucket, crate::indicator::local_minute());
            let thread = self.address(&mut message.body, bucket, std::slice::from_ref(&item));
            let Some(reply) = self
                .post(
                    st,
                    &message.body,
                    &message.ids,
                    Level::Plain,
                    thread.as_deref(),
                    &[],
                )
                .await
            else {
                return Next::Idle;
            };
            match reply.outcome {
                Outcome::Rejected { reason } => {
                    log::error!("sink {}: item {} dead-lettered: Discord refuses even its plain form ({reason})", self.sink.name(), item.id);
                    self.record(vec![(item.id, Update::DeadLetter { error: reason })])
                        .await;
                }
                outcome => {
                    let ok = matches!(outcome, Outcome::Delivered { .. });
                    let next = self.react(st, outcome, &message.ids).await;
                    if !ok {
                        return next;
                    }
                }
            }
        }
        Next::At(Instant::now())
    }

    async fn react(&self, st: &mut LoopState, outcome: Outcome, ids: &[u64]) -> Next {
        let now = Instant::now();
        let name = self.sink.name();
        match outcome {
            Outcome::Delivered { message_id } => {
                let at = chrono::Utc::now().timestamp();
                if !self
                    .record_delivered(each(
                        ids,
                        &Update::Delivered {
                            message_id: message_id.clone(),
                            at,
                        },
                    ))
                    .await
                {
                    // Discord has the message but the spool could not say so: a repeat is possible
                    // later, a loss is not. Try again after a pause.
                    return Next::At(now + Duration::from_secs(5));
                }
                log::info!(
                    "sink {name}: delivered {} mail(s) as message {message_id}",
                    ids.len()
                );
                st.failures = 0;
                st.revived = false;
                st.probe_delay = self.probe_every;
                self.report(SinkState::Ok, None, true);
                // The guard paces the next request from this answer's headers.
                Next::At(now)
            }
            Outcome::RateLimited { retry_after, scope } => {
                log::warn!("sink {name}: rate limited ({scope:?}), waiting {retry_after:?}");
                let error = (scope == Scope::Banned)
                    .then(|| "Discord/Cloudflare ban on this IP (error 1015)".to_string());
                self.report(SinkState::RateLimited, error, false);
                Next::At(now + retry_after)
            }
            Outcome::Transient { reason } => {
                st.failures += 1;
                let wait = backoff(st.failures, fastrand::f64());
                log::warn!("sink {name}: {reason}; retry {} in {wait:?}", st.failures);
                self.record(each(
                    ids,
                    &Update::Failed {
                        error: reason.clone(),
                    },
                ))
                .await;
                self.report(SinkState::Retrying, Some(reason), false);
                Next::At(now + wait)
            }
            Outcome::Dead { reason } => {
                log::error!("sink {name}: DEAD ({reason}); no more posts, probing every {:?}+; mail keeps spooling", self.probe_every);
                self.record(each(
                    ids,
                    &Update::Failed {
                        error: reason.clone(),
                    },
                ))
                .await;
                st.dead = true;
                st.probe_delay = if std::mem::take(&mut st.revived) {
                    (st.probe_delay * 2).min(self.probe_max)
                } else {
                    self.probe_every
                };
                self.report(SinkState::Dead, Some(reason), false);
                Next::At(now + st.probe_delay)
            }
            Outcome::Rejected { reason } => {
                self.record(each(ids, &Update::DeadLetter { error: reason }))
                    .await;
                Next::At(now)
            }
        }
    }
}

#[cfg(test)]
mod tests;
