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

use super::pace::{Pacer, SlidingWindow};
use crate::discord::{Outcome, Reply, Scope};
use crate::health::{DiscordHealth, DiscordState};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Discord counts invalid requests over this window.
pub const INVALID_WINDOW: Duration = Duration::from_secs(600);
/// A ban probe not answered within this is claimed again by another sink.
const PROBE_CLAIM: Duration = Duration::from_secs(60);

/// Who is asking: the rate-limit resource of a sink and its global scope.
#[derive(Debug, Clone)]
pub struct Who {
    pub sink: String,
    pub resource: String,
    pub global: Option<u64>,
}

/// Why a sink may not send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
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
pub enum Gate {
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
    shared: super::shared::SharedLimits,
    /// The channel each resource (a webhook) posts to, from its answers: the key of `shared`.
    channels: HashMap<String, String>,
    pauses: Vec<Pause>,
    ban: Option<Ban>,
    /// Said in the log that the limit paused every sink.
    limit_paused: bool,
}

pub struct Guard {
    inner: Mutex<Inner>,
}

/// Messages (not probes) count toward a channel's shared limit.
fn is_post(route: &str) -> bool {
    route.eq_ignore_ascii_case("post")
}

impl Inner {
    /// The key of `who`'s shared channel limit: its channel once an answer named it.
    fn channel_of<'a>(&'a self, who: &'a Who) -> &'a str {
        self.channels.get(&who.resource).unwrap_or(&who.resource)
    }
}

impl Guard {
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
    pub fn set_limit(&self, limit: u32) {
        self.lock().limit = limit.max(1) as usize;
    }

    /// Whether `who` may send on `route` now; a `Go` takes one request from its budget.
    pub fn admit(&self, who: &Who, route: &str, now: Instant) -> Gate {
        let mut g = self.lock();
        match g.ban {
            Some(Ban::Until(t)) if t > now => {
                return Gate::Wait {
                    until: t,
                    why: Why::Banned,
                }
            }
            Some(Ban::Probing { since }) if now < since + PROBE_CLAIM => {
                return Gate::Wait {
                    until: now + Duration::from_secs(1),
                    why: Why::Banned,
                }
            }
            Some(_) => {
                g.ban = Some(Ban::Probing { since: now });
                return Gate::ProbeBan;
            }
            None => {}
        }
        let limit = g.limit;
        if g.invalid.count(now) >= limit {
            let until = g.invalid.below_at(limit, now);
            if !g.limit_paused {
                g.limit_paused = true;
                log::error!("discord: {limit} invalid requests (401/403/429) within 10 minutes: every sink pauses new requests for {:?} (Discord bans an IP at 10,000)", until - now);
            }
            return Gate::Wait {
                until,
                why: Why::TooManyInvalid,
            };
        }
        if g.limit_paused {
            g.limit_paused = false;
            log::warn!("discord: invalid requests back under {limit} in 10 minutes; sinks resume");
        }
        g.pauses.retain(|p| p.until > now);
        if let Some(until) = g
            .pauses
            .iter()
            .filter(|p| p.scope.is_none() || p.scope == who.global)
            .map(|p| p.until)
            .max()
        {
            return Gate::Wait {
                until,
                why: Why::Global,
            };
        }
        let channel = g.channel_of(who).to_string();
        let shared = is_post(route)
            .then(|| g.shared.wait(&channel, now))
            .flatten();
        if let Some(until) = shared {
            return Gate::Wait {
                until,
                why: Why::Pacing,
            };
        }
        match g.pacer.take(route, &who.resource, now) {
            Ok(()) => {
                if is_post(route) {
                    g.shared.admitted(&channel);
                }
                Gate::Go
            }
            Err(until) => Gate::Wait {
                until,
                why: Why::Pacing,
            },
        }
    }

    /// Learns from an answer: its budget, whether it counts as invalid, and what a 429 pauses.
    pub fn observe(&self, who: &Who, route: &str, reply: &Reply, now: Instant) {
        let mut g = self.lock();
        g.pacer.observe(route, &who.resource, &reply.pace, now);
        if is_post(route) {
            let before = g.channel_of(who).to_string();
            g.shared.answered(&before);
            if let Some(channel) = &reply.pace.channel {
                let key = format!("channel {channel}");
                if key != before {
                    g.shared.rename(&before, &key);
                    g.channels.insert(who.resource.clone(), key);
                }
            }
            if matches!(reply.outcome, Outcome::Delivered { .. }) {
                let key = g.channel_of(who).to_string();
                g.shared.sent(&key, now);
            }
        }
        if matches!(reply.status, 401 | 403) {
            g.invalid.note(now);
        }
        let mut banned = false;
        if let Outcome::RateLimited { retry_after, scope } = &reply.outcome {
            let until = now + *retry_after;
            if *scope != Scope::Shared {
                g.invalid.note(now);
            }
            match scope {
                Scope::User => g.pacer.exhausted(route, &who.resource, until),
                Scope::Shared if is_post(route) => {
                    let key = g.channel_of(who).to_string();
                    g.shared.limited(&key, now, *retry_after)
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
                    g.pauses.push(Pause {
                        scope: who.global,
                        until,
                    });
                }
                Scope::Banned => {
                    banned = true;
                    if !matches!(g.ban, Some(Ban::Until(_))) {
                        log::error!("discord: this IP is banned (Cloudflare error 1015, seen by sink {}): every sink pauses for {retry_after:?}, then one probe asks again", who.sink);
                    }
                    g.ban = Some(Ban::Until(until));
                }
            }
        }
        if !banned && matches!(g.ban, Some(Ban::Probing { .. })) {
            if reply.status == 0 {
                // No answer at all proves nothing: another probe once the claim runs out.
                g.ban = Some(Ban::Probing { since: now });
            } else {
                g.ban = None;
                log::warn!(
                    "discord: answered again (HTTP {} to sink {}): the ban is over, sinks resume",
                    reply.status,
                    who.sink
                );
            }
        }
    }

    /// For health and `status`: the count and any pause of every sink.
    pub fn snapshot(&self, now: Instant, unix_now: i64) -> DiscordHealth {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discord::Pace;

    fn who(global: Option<u64>) -> Who {
        Who {
            sink: "s".into(),
            resource: format!("webhook {global:?}"),
            global,
        }
    }

    fn reply(status: u16, outcome: Outcome) -> Reply {
        Reply {
            outcome,
            pace: Pace::default(),
            status,
        }
    }

    fn limited(secs: u64, scope: Scope) -> Reply {
        reply(
            429,
            Outcome::RateLimited {
                retry_after: Duration::from_secs(secs),
                scope,
            },
        )
    }

    fn ok() -> Reply {
        reply(
            200,
            Outcome::Delivered {
                message_id: "1".into(),
            },
        )
    }

    #[test]
    fn only_401_403_and_unshared_429_count() {
        let g = Guard::new(100);
        let (w, t0) = (who(None), Instant::now());
        g.observe(
            &w,
            "POST",
            &reply(401, Outcome::Dead { reason: "x".into() }),
            t0,
        );
        g.observe(
            &w,
            "POST",
            &reply(403, Outcome::Dead { reason: "x".into() }),
            t0,
        );
        g.observe(
            &w,
            "POST",
            &reply(404, Outcome::Dead { reason: "x".into() }),
            t0,
        );
        g.observe(
            &w,
            "POST",
            &reply(400, Outcome::Rejected { reason: "x".into() }),
            t0,
        );
        g.observe(&w, "POST", &limited(1, Scope::User), t0);
        g.observe(&w, "POST", &limited(1, Scope::Shared), t0);
        g.observe(&w, "POST", &ok(), t0);
        assert_eq!(g.snapshot(t0, 0).invalid_requests, 3);
        assert_eq!(g.snapshot(t0 + INVALID_WINDOW, 0).invalid_requests, 0);
    }

    #[test]
    fn at_the_limit_every_sink_waits_for_the_window_to_drain() {
        let g = Guard::new(3);
        let t0 = Instant::now();
        for i in 0..3 {
            let at = t0 + Duration::from_secs(i);
            g.observe(
                &who(Some(i)),
                "GET",
                &reply(401, Outcome::Dead { reason: "x".into() }),
                at,
            );
        }
        let t = t0 + Duration::from_secs(5);
        assert_eq!(
            g.admit(&who(Some(9)), "POST", t),
            Gate::Wait {
                until: t0 + INVALID_WINDOW,
                why: Why::TooManyInvalid
            },
            "another sink, too"
        );
        let snap = g.snapshot(t, 1000);
        assert_eq!(snap.state, DiscordState::Paused);
        assert_eq!(snap.paused_until, Some(1000 + 595));
        assert_eq!(
            g.admit(&who(Some(9)), "POST", t0 + INVALID_WINDOW),
            Gate::Go
        );
    }

    #[test]
    fn a_global_429_pauses_its_scope() {
        let g = Guard::new(100);
        let t0 = Instant::now();
        let until = t0 + Duration::from_secs(3);
        // A bot's global limit pauses the sinks with its token.
        g.observe(&who(Some(7)), "POST", &limited(3, Scope::Global), t0);
        assert_eq!(
            g.admit(&who(Some(7)), "POST", t0),
            Gate::Wait {
                until,
                why: Why::Global
            }
        );
        assert_eq!(
            g.admit(&who(Some(8)), "POST", t0),
            Gate::Go,
            "another token"
        );
        // A webhook's pauses every sink.
        g.observe(&who(None), "POST", &limited(3, Scope::Global), t0);
        assert_eq!(
            g.admit(&who(Some(8)), "POST", t0),
            Gate::Wait {
                until,
                why: Why::Global
            }
        );
        assert_eq!(g.snapshot(t0, 0).state, DiscordState::RateLimited);
        assert_eq!(g.admit(&who(Some(8)), "POST", until), Gate::Go);
        assert_eq!(g.snapshot(until, 0).state, DiscordState::Ok);
    }

    #[test]
    fn a_user_429_waits_on_its_own_budget_only() {
        let g = Guard::new(100);
        let t0 = Instant::now();
        g.observe(&who(None), "POST", &limited(2, Scope::User), t0);
        assert_eq!(
            g.admit(&who(None), "POST", t0),
            Gate::Wait {
                until: t0 + Duration::from_secs(2),
                why: Why::Pacing
            }
        );
        assert_eq!(g.admit(&who(Some(1)), "POST", t0), Gate::Go);
    }

    #[test]
    fn a_ban_pauses_everyone_then_one_probe_asks() {
        let g = Guard::new(100);
        let t0 = Instant::now();
        g.observe(&who(None), "POST", &limited(60, Scope::Banned), t0);
        let until = t0 + Duration::from_secs(60);
        for w in [who(None), who(Some(1))] {
            assert_eq!(
                g.admit(&w, "POST", t0),
                Gate::Wait {
                    until,
                    why: Why::Banned
                }
            );
        }
        assert_eq!(g.snapshot(t0, 0).state, DiscordState::Banned);
        assert_eq!(g.admit(&who(Some(1)), "POST", until), Gate::ProbeBan);
        assert!(
            matches!(
                g.admit(&who(None), "POST", until),
                Gate::Wait {
                    why: Why::Banned,
                    ..
                }
            ),
            "only one probe"
        );
        // Still banned: another pause.
        g.observe(&who(Some(1)), "GET", &limited(30, Scope::Banned), until);
        let again = until + Duration::from_secs(30);
        assert_eq!(
            g.admit(&who(None), "POST", until),
            Gate::Wait {
                until: again,
                why: Why::Banned
            }
        );
        assert_eq!(g.admit(&who(None), "GET", again), Gate::ProbeBan);
        g.observe(&who(None), "GET", &ok(), again);
        assert_eq!(g.admit(&who(Some(1)), "POST", again), Gate::Go);
        assert_eq!(g.snapshot(again, 0).state, DiscordState::Ok);
    }
}
