//! The limit Discord does not announce: about 30 messages per 60 s per channel, shared by every
//! webhook posting into it, answered with a `shared`-scope 429 (no header warns of it before).
//! Pure; the guard passes `now` and keys it on the channel (every webhook of a channel shares
//! one entry once an answer named the channel).
//!
//! It is learned from one 429. Its `retry_after` says when Discord's current window ends; where
//! that window began is inferred from the messages accepted since the channel was last quiet (or
//! last refused): Discord's windows are fixed, the first starting with the first message, each
//! later one with the first message after the last one ended. A window length fits what was
//! seen when its chain of windows over those messages starts the last one exactly that length
//! before the end the 429 named, and no earlier window held more messages than the last (one
//! more would have been refused); the limit is the count of that last window. When messages
//! came in one burst there is one such (limit, window); when a backlog ran for a while under
//! the limit before the 429, several can fit (one window over everything always does) and
//! one 429 cannot tell them apart — so each fitting pair becomes a rule, and a message goes
//! only when every rule allows it: at most `limit` accepted (or in flight) in any span of
//! `window`, plus a small margin. The real limit is among the rules, so no second 429 follows
//! while it holds; the others cost some pace at most. A later 429 teaches the rules again;
//! without one for [`MAX_WINDOW`] they are forgotten.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// A window longer than this is not Discord's channel limit (60 s): start counting afresh.
const MAX_WINDOW: Duration = Duration::from_secs(600);
/// Accepted messages remembered: at Discord's 30 per 60 s, ten minutes of them.
const HISTORY: usize = 300;

#[derive(Debug, Default, Clone)]
struct Learned {
    /// (limit, window) pairs that fit the last 429, none dominated by another.
    rules: Vec<(u32, Duration)>,
    /// Messages admitted and not yet answered: they may fill a window too.
    in_flight: u32,
    /// When the last `shared` 429 came: its rules are forgotten [`MAX_WINDOW`] later, so a limit
    /// learned while other posters crowded the channel does not slow it for ever.
    learned_at: Option<Instant>,
    /// Messages accepted, oldest first, within [`MAX_WINDOW`] of the newest.
    accepted: VecDeque<Instant>,
    /// Where Discord's windows begin afresh: after a quiet [`MAX_WINDOW`] or a 429's window.
    chain_from: Option<Instant>,
}

/// Slack past the learned end of a window: our clock starts a little after Discord's.
fn margin(window: Duration) -> Duration {
    window / 50 + Duration::from_millis(20)
}

/// Learned shared limits per channel (or per webhook until its channel is known).
#[derive(Debug, Default)]
pub(super) struct SharedLimits {
    by: HashMap<String, Learned>,
}

impl SharedLimits {
    /// When a message to `key` may go, if not now.
    pub(super) fn wait(&mut self, key: &str, now: Instant) -> Option<Instant> {
        let l = self.by.get_mut(key)?;
        if l.learned_at.is_some_and(|t| now >= t + MAX_WINDOW) {
            l.rules.clear();
            l.learned_at = None;
        }
        let mut until: Option<Instant> = None;
        for &(limit, window) in &l.rules {
            let span = window + margin(window);
            let recent: Vec<Instant> = l
                .accepted
                .iter()
                .copied()
                .filter(|t| *t + span > now)
                .collect();
            let taken = recent.len() + l.in_flight as usize;
            if taken < limit as usize {
                continue;
            }
            // Enough of the recent ones must leave the span for one more to fit; with none
            // recent (all in flight), wait a whole span.
            let leave = (taken + 1).saturating_sub(limit as usize);
            let free = recent.get(leave - 1).map_or(now + span, |t| *t + span);
            until = Some(until.map_or(free, |u| u.max(free)));
        }
        until
    }

    /// A message to `key` was admitted: it counts until its answer comes.
    pub(super) fn admitted(&mut self, key: &str) {
        self.by.entry(key.to_string()).or_default().in_flight += 1;
    }

    /// The answer to a message admitted for `key` came (whatever it said).
    pub(super) fn answered(&mut self, key: &str) {
        if let Some(l) = self.by.get_mut(key) {
            l.in_flight = l.in_flight.saturating_sub(1);
        }
    }

    /// The messages admitted for `from` (a webhook) go to `to` (its channel), now known.
    pub(super) fn rename(&mut self, from: &str, to: &str) {
        if let Some(old) = self.by.remove(from) {
            let new = self.by.entry(to.to_string()).or_default();
            new.in_flight += old.in_flight;
            if new.accepted.is_empty() && new.rules.is_empty() {
                new.accepted = old.accepted;
                new.chain_from = old.chain_from;
                new.rules = old.rules;
                new.learned_at = old.learned_at;
            }
        }
    }

    /// A message to `key` was accepted at `now`.
    pub(super) fn sent(&mut self, key: &str, now: Instant) {
        let l = self.by.entry(key.to_string()).or_default();
        if l.accepted.back().is_none_or(|t| now >= *t + MAX_WINDOW) {
            l.chain_from = Some(now);
        }
        while l.accepted.front().is_some_and(|t| now >= *t + MAX_WINDOW)
            || l.accepted.len() >= HISTORY
        {
            l.accepted.pop_front();
        }
        l.accepted.push_back(now);
    }

    /// A `shared` 429 for `key` at `now`: learn the rules.
    pub(super) fn limited(&mut self, key: &str, now: Instant, retry_after: Duration) {
        let l = self.by.entry(key.to_string()).or_default();
        let end = now + retry_after;
        let from = l.chain_from.unwrap_or(now);
        let chain: Vec<Instant> = l.accepted.iter().copied().filter(|t| *t >= from).collect();
        let rules = fitting(&chain, end);
        if !rules.is_empty() {
            l.rules = rules;
            l.learned_at = Some(now);
        }
        // Discord's window ends at `end`: the next message accepted starts the next one.
        l.chain_from = Some(end);
    }
}

/// Every (limit, window) of Discord's fixed windows that explains a 429 whose window ends at
/// `end`, given the messages accepted since windows began afresh (oldest first), without
/// those another makes redundant (a lower limit over a longer window).
fn fitting(accepted: &[Instant], end: Instant) -> Vec<(u32, Duration)> {
    let mut rules: Vec<(u32, Duration)> = Vec::new();
    for (i, &begin) in accepted.iter().enumerate() {
        let window = end.saturating_duration_since(begin);
        let count = (accepted.len() - i) as u32;
        if window.is_zero() || window > MAX_WINDOW {
            continue;
        }
        if chain_starts_last_at(accepted, window, i, count) {
            rules.push((count, window));
        }
    }
    let dominated = |&(c, w): &(u32, Duration), all: &[(u32, Duration)]| {
        all.iter()
            .any(|&(c2, w2)| (c2, w2) != (c, w) && c2 <= c && w2 >= w)
    };
    let all = rules.clone();
    rules.retain(|r| !dominated(r, &all));
    rules
}

/// Whether fixed windows of `window`, the first starting at the first message, start their last
/// window at message `last` and no earlier window held more than `count` messages.
fn chain_starts_last_at(accepted: &[Instant], window: Duration, last: usize, count: u32) -> bool {
    let (mut start, mut held, mut begun) = (accepted[0], 0u32, 0);
    for (i, &t) in accepted.iter().enumerate() {
        if t >= start + window {
            if held > count {
                return false;
            }
            start = t;
            held = 0;
            begun = i;
        }
        held += 1;
    }
    begun == last
}

#[cfg(test)]
mod tests;
