//! What a health state means: every condition that is not ok, worst first, each with a sentence
//! for people, and the pattern the worst one implies.

use super::{AccountState, DiscordState, Health, Pattern, SinkState};

impl Health {
    /// The worst condition, as docs/design.md's table orders them.
    pub(crate) fn pattern(&self, now: i64) -> Pattern {
        self.reasons(now).first().map_or(Pattern::Ok, |(p, _)| *p)
    }

    /// Every condition that is not ok, worst first, each with a sentence for people.
    pub(crate) fn reasons(&self, now: i64) -> Vec<(Pattern, String)> {
        if self.stopping {
            return vec![(Pattern::Off, "stopping".to_string())];
        }
        // Conditions of one pattern keep this order (the sort is stable).
        let mut out = self.spool_reasons(now);
        out.extend(self.discord_reason());
        out.extend(self.down_reasons());
        out.extend(self.slow_reasons());
        out.sort_by_key(|r| std::cmp::Reverse(r.0));
        out
    }

    /// One line for the systemd status and the journal.
    pub(crate) fn summary(&self, now: i64) -> String {
        let reasons = self.reasons(now);
        let pending = self.pending();
        match reasons.first() {
            None => format!(
                "ok: {pending} pending, {} sinks, {} mailboxes",
                self.sinks.len(),
                self.accounts.len()
            ),
            Some((p, why)) if reasons.len() == 1 => format!("{}: {why}", p.as_str()),
            Some((p, why)) => format!("{}: {why} (+{} more)", p.as_str(), reasons.len() - 1),
        }
    }

    fn oldest_pending_age(&self, now: i64) -> Option<i64> {
        self.buckets
            .iter()
            .filter_map(|b| b.oldest_pending_at)
            .min()
            .map(|t| now - t)
    }

    /// The spool: a disk that refuses writes, the size bound, a rebuild at start, too much or
    /// too old pending mail.
    fn spool_reasons(&self, now: i64) -> Vec<(Pattern, String)> {
        let t = self.thresholds;
        let mut out = Vec::new();
        if let Some((writer, reason)) = self.disk.iter().next() {
            out.push((
                Pattern::Alarm,
                format!("spool cannot be written ({writer}): {reason}"),
            ));
        }
        if let Some((writer, reason)) = self.full.iter().next() {
            out.push((Pattern::Alarm, format!("{reason} ({writer})")));
        }
        if let Some((notice, unreadable)) = &self.rebuilt {
            // Unreadable mail needs the user; a rebuild that kept everything is only news.
            let pattern = if *unreadable > 0 {
                Pattern::Alarm
            } else {
                Pattern::Backlog
            };
            out.push((pattern, notice.clone()));
        }
        let pending = self.pending();
        if t.spool_alarm > 0 && pending > t.spool_alarm {
            out.push((
                Pattern::Alarm,
                format!("{pending} mails pending (alarm above {})", t.spool_alarm),
            ));
        }
        if let Some(age) = self
            .oldest_pending_age(now)
            .filter(|a| t.pending_age_alarm_s > 0 && *a > t.pending_age_alarm_s)
        {
            out.push((Pattern::Alarm, format!("oldest pending mail waits {age} s")));
        }
        out
    }

    /// A pause of every sink: a ban or the invalid-request limit is as bad as a dead sink (no
    /// mail reaches Discord for minutes); a global rate limit is a backlog.
    fn discord_reason(&self) -> Option<(Pattern, String)> {
        let d = &self.discord;
        let until = d.paused_until.map_or(String::new(), |t| {
            format!(" until {}", crate::time::rfc3339(t))
        });
        match d.state {
            DiscordState::Ok => None,
            DiscordState::Banned => Some((
                Pattern::Dead,
                format!("Discord/Cloudflare banned this IP (error 1015): every sink paused{until}"),
            )),
            DiscordState::Paused => Some((
                Pattern::Dead,
                format!(
                    "every sink paused{until}: {} invalid requests (401/403/429) in 10 min, limit {}",
                    d.invalid_requests, d.limit
                ),
            )),
            DiscordState::RateLimited => Some((
                Pattern::Backlog,
                format!("every sink paused{until}: Discord's global rate limit"),
            )),
        }
    }

    /// Dead sinks, then mailboxes that are not being watched.
    fn down_reasons(&self) -> Vec<(Pattern, String)> {
        let mut out = Vec::new();
        for (name, s) in &self.sinks {
            if s.state == SinkState::Dead {
                out.push((
                    Pattern::Dead,
                    format!(
                        "sink {name} dead: {}",
                        s.last_error.as_deref().unwrap_or("unreachable")
                    ),
                ));
            }
        }
        for ((account, folder), a) in &self.accounts {
            if matches!(
                a.state,
                AccountState::Backoff
                    | AccountState::AuthFailed
                    | AccountState::TlsFailed
                    | AccountState::MailboxMissing
                    | AccountState::Error
            ) {
                let state = serde_json::to_value(a.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                out.push((
                    Pattern::Dead,
                    format!(
                        "imap {account}/{folder} {state}: {}",
                        a.last_error.as_deref().unwrap_or("down")
                    ),
                ));
            }
        }
        out
    }

    /// A backlog past the warning threshold, then sinks that retry or wait out a rate limit.
    fn slow_reasons(&self) -> Vec<(Pattern, String)> {
        let mut out = Vec::new();
        let pending = self.pending();
        if self.thresholds.spool_warn > 0 && pending > self.thresholds.spool_warn {
            out.push((Pattern::Backlog, format!("{pending} mails pending")));
        }
        for (name, s) in &self.sinks {
            if matches!(s.state, SinkState::Retrying | SinkState::RateLimited) {
                out.push((
                    Pattern::Backlog,
                    format!(
                        "sink {name} {}",
                        if s.state == SinkState::Retrying {
                            "retrying"
                        } else {
                            "rate limited"
                        }
                    ),
                ));
            }
        }
        out
    }
}
