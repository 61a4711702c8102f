//! The guard every dispatcher shares: one process, one IP, one standing with Discord.
//!
//! - **Invalid requests.** 401, 403 and non-shared 429 answers from every sink are counted in
//!   one sliding 10-minute window. Cloudflare bans an IP at 10,000; at the configured limit
//!   (default 100) every sink pauses new requests until the window drops below it again.
//! - **Global 429.** Pauses every sink in its scope: all of them for a webhook (the limit is the
//!   IP's), the sinks with the same token for a bot.
//! - **Ban** (HTML "error code: 1015", or a JSON 429 without rate-limit headers). Every sink
//!   pauses for Cloudflare's `Retry-After` (10 minutes without one); then exactly one sink asks
//!   with a `GET`, and the first real answer lifts the ban for all.
//! - **Pacing.** Each (bucket, webhook/channel) budget from the `X-RateLimit-*` headers; a
//!   request waits for the reset instead of spending a 429.

use super::pace::Pacer;
use super::shared::SharedLimits;
use super::window::SlidingWindow;
use super::{Route, Who};
use crate::discord::{Outcome, Reply, Scope};
use crate::health::{DiscordHealth, DiscordState};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Discord counts invalid requests over this window.
const INVALID_WINDOW: Duration = Duration::from_secs(600);
/// A ban probe not answered within this is claimed again by another sink.
const PROBE_CLAIM: Duration = Duration::from_secs(60);

/// Why a sink may not send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// Its (bucket, resource) budget is spent until the reset.
    Pacing,
    /// A global 429 in its scope.
    Global,
    /// The invalid-request count reached the limit.
    TooManyInvalid,
    /// Cloudflare banned the IP.
    Banned,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Why::Pacing => "rate-limit budget spent",
            Why::Global => "paused: Discord's global rate limit",
            Why::TooManyInvalid => {
                "paused: too many invalid requests (401/403/429) in 10 min, waiting for the window to drain"
            }
            Why::Banned => "paused: Discord/Cloudflare banned this IP (error 1015)",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    Go,
    Wait {
        until: Instant,
        why: Why,
    },
    /// The ban's pause is over and this caller was chosen to ask, once, with a `GET`.
    ProbeBan,
}

#[derive(Debug, Clone, Copy)]
enum Ban {
    Until(Instant),
    Probing { since: Instant },
}

struct Pause {
    scope: Option<u64>,
    until: Instant,
}

struct Inner {
    limit: usize,
    invalid: SlidingWindow,
    pacer: Pacer,
    /// The per-channel limit no header announces, learned from `shared` 429s.
    shared: SharedLimits,
    /// The channel each resource (a webhook) posts to, from its answers: the key of `shared`.
    channels: HashMap<String, String>,
    pauses: Vec<Pause>,
    ban: Option<Ban>,
    /// Said in the log that the limit paused every sink.
    limit_paused: bool,
}

/// The one guard of the process, shared by every delivery loop and the notice sender (and
/// kept across reloads).
pub struct Guard {
    inner: Mutex<Inner>,
}

impl Guard {
    /// A guard that pauses every sink at `limit` invalid requests in 10 minutes.
    pub fn new(limit: u32) -> Guard {
        Guard {
            inner: Mutex::new(Inner {
                limit: limit.max(1) as usize,
                invalid: SlidingWindow::new(INVALID_WINDOW),
                pacer: Pacer::default(),
                shared: Default::default(),
                channels: HashMap::new(),
                pauses: Vec::new(),
                ban: None,
                limit_paused: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent between statements, so a panic elsewhere cannot corrupt it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A reload may change the limit; the count goes on.
    pub(crate) fn set_limit(&self, limit: u32) {
        self.lock().limit = limit.max(1) as usize;
    }

    /// Whether `who` may send on `route` now; a `Go` takes one request from its budget.
    pub(crate) fn admit(&self, who: &Who, route: Route, now: Instant) -> Gate {
        let mut g = self.lock();
        if let Some(gate) = g.ban_gate(now) {
            return gate;
        }
        if let Some(gate) = g.limit_gate(now) {
            return gate;
        }
        if let Some(gate) = g.pause_gate(who, now) {
            return gate;
        }
        g.pace_gate(who, route, now)
    }

    /// Learns from an answer: its budget, whether it counts as invalid, and what a 429 pauses.
    pub(crate) fn observe(&self, who: &Who, route: Route, reply: &Reply, now: Instant) {
        let mut g = self.lock();
        g.pacer.observe(route, &who.resource, &reply.pace, now);
        if route == Route::Post {
            g.learn_channel(who, reply, now);
        }
        if matches!(reply.status, 401 | 403) {
            g.invalid.note(now);
        }
        let mut banned = false;
        if let Outcome::RateLimited { retry_after, scope } = reply.outcome {
            banned = scope == Scope::Banned;
            g.rate_limited(who, route, scope, retry_after, now);
        }
        if !banned {
            g.probe_answered(who, reply.status, now);
        }
    }

    /// For health and `status`: the count and any pause of every sink.
    pub(crate) fn snapshot(&self, now: Instant, unix_now: i64) -> DiscordHealth {
        let mut g = self.lock();
        let limit = g.limit;
        let invalid = g.invalid.count(now);
        let at =
            |t: Instant| unix_now + t.saturating_duration_since(now).as_secs_f64().ceil() as i64;
        g.pauses.retain(|p| p.until > now);
        let (state, until) = match g.ban {
            Some(Ban::Until(t)) => (DiscordState::Banned, Some(at(t))),
            Some(Ban::Probing { .. }) => (DiscordState::Banned, None),
            None if invalid >= limit => (
                DiscordState::Paused,
                Some(at(g.invalid.below_at(limit, now))),
            ),
            None => match g.pauses.iter().map(|p| p.until).max() {
                Some(t) => (DiscordState::RateLimited, Some(at(t))),
                None => (DiscordState::Ok, None),
            },
        };
        DiscordHealth {
            state,
            invalid_requests: invalid as u64,
            limit: limit as u64,
            paused_until: until,
        }
    }
}

/// The steps of [`Guard::admit`], in order: the first that says wait decides.
impl Inner {
    /// A ban holds every sink; once its pause is over, one caller is chosen to probe.
    fn ban_gate(&mut self, now: Instant) -> Option<Gate> {
        match self.ban? {
            Ban::Until(t) if t > now => Some(Gate::Wait {
                until: t,
                why: Why::Banned,
            }),
            Ban::Probing { since } if now < since + PROBE_CLAIM => Some(Gate::Wait {
                until: now + Duration::from_secs(1),
                why: Why::Banned,
            }),
            _ => {
                self.ban = Some(Ban::Probing { since: now });
                Some(Gate::ProbeBan)
            }
        }
    }

    /// At the invalid-request limit every sink waits for the window to drain below it.
    fn limit_gate(&mut self, now: Instant) -> Option<Gate> {
        let limit = self.limit;
        if self.invalid.count(now) >= limit {
            let until = self.invalid.below_at(limit, now);
            if !self.limit_paused {
                self.limit_paused = true;
                log::error!("discord: {limit} invalid requests (401/403/429) within 10 minutes: every sink pauses new requests for {:?} (Discord bans an IP at 10,000)", until - now);
            }
            return Some(Gate::Wait {
                until,
                why: Why::TooManyInvalid,
            });
        }
        if self.limit_paused {
            self.limit_paused = false;
            log::warn!("discord: invalid requests back under {limit} in 10 minutes; sinks resume");
        }
        None
    }

    /// A global 429 in `who`'s scope holds it until the latest such pause ends.
    fn pause_gate(&mut self, who: &Who, now: Instant) -> Option<Gate> {
        self.pauses.retain(|p| p.until > now);
        let until = self
            .pauses
            .iter()
            .filter(|p| p.scope.is_none() || p.scope == who.global)
            .map(|p| p.until)
            .max()?;
        Some(Gate::Wait {
            until,
            why: Why::Global,
        })
    }

    /// The channel's learned message limit (for a post), then the route's budget.
    fn pace_gate(&mut self, who: &Who, route: Route, now: Instant) -> Gate {
        let post = route == Route::Post;
        let channel = self.channel_of(who).to_string();
        if let Some(until) = post.then(|| self.shared.wait(&channel, now)).flatten() {
            return Gate::Wait {
                until,
                why: Why::Pacing,
            };
        }
        match self.pacer.take(route, &who.resource, now) {
            Ok(()) => {
                if post {
                    self.shared.admitted(&channel);
                }
                Gate::Go
            }
            Err(until) => Gate::Wait {
                until,
                why: Why::Pacing,
            },
        }
    }
}

/// The steps of [`Guard::observe`].
impl Inner {
    /// The key of `who`'s shared channel limit: its channel once an answer named it.
    fn channel_of<'a>(&'a self, who: &'a Who) -> &'a str {
        self.channels.get(&who.resource).unwrap_or(&who.resource)
    }

    /// A post's answer: no longer in flight; it may name the channel; if accepted, it counts.
    fn learn_channel(&mut self, who: &Who, reply: &Reply, now: Instant) {
        let before = self.channel_of(who).to_string();
        self.shared.answered(&before);
        if let Some(channel) = &reply.pace.channel {
            let key = format!("channel {channel}");
            if key != before {
                self.shared.rename(&before, &key);
                self.channels.insert(who.resource.clone(), key);
            }
        }
        if matches!(reply.outcome, Outcome::Delivered { .. }) {
            let key = self.channel_of(who).to_string();
            self.shared.sent(&key, now);
        }
    }

    /// A 429: counted unless `shared`, and each scope pauses what it limits.
    fn rate_limited(
        &mut self,
        who: &Who,
        route: Route,
        scope: Scope,
        retry_after: Duration,
        now: Instant,
    ) {
        let until = now + retry_after;
        if scope != Scope::Shared {
            self.invalid.note(now);
        }
        match scope {
            Scope::User => self.pacer.exhausted(route, &who.resource, until),
            Scope::Shared if route == Route::Post => {
                let key = self.channel_of(who).to_string();
                self.shared.limited(&key, now, retry_after)
            }
            Scope::Shared => {}
            Scope::Global => {
                log::warn!(
                    "discord: global rate limit (from sink {}): {} pause for {retry_after:?}",
                    who.sink,
                    if who.global.is_none() {
                        "every sink"
                    } else {
                        "every sink with this bot token"
                    }
                );
                self.pauses.push(Pause {
                    scope: who.global,
                    until,
                });
            }
            Scope::Banned => {
                if !matches!(self.ban, Some(Ban::Until(_))) {
                    log::error!("discord: this IP is banned (Cloudflare error 1015, seen by sink {}): every sink pauses for {retry_after:?}, then one probe asks again", who.sink);
                }
                self.ban = Some(Ban::Until(until));
            }
        }
    }

    /// Any answer but a ban while a probe is out lifts the ban; no answer at all proves nothing.
    fn probe_answered(&mut self, who: &Who, status: u16, now: Instant) {
        if !matches!(self.ban, Some(Ban::Probing { .. })) {
            return;
        }
        if status == 0 {
            // No answer at all proves nothing: another probe once the claim runs out.
            self.ban = Some(Ban::Probing { since: now });
        } else {
            self.ban = None;
            log::warn!(
                "discord: answered again (HTTP {status} to sink {}): the ban is over, sinks resume",
                who.sink
            );
        }
    }
}

#[cfg(test)]
mod tests;
