//! Health notices: trouble told in the Discord channels that still work, so that a user away
//! from the LED hears about a dead webhook, a refused IMAP login or a full disk
//! (docs/operations.md, "Trouble away from home").
//!
//! The flow, pure until the last step:
//! 1. [`observe`] reads the health snapshot and judges every condition the configuration can
//!    have — each sink, each mailbox, the spool's levels, the disk, Discord's standing — as a
//!    [`Trouble`], clear, or not known yet (a sink that has not sent anything since start).
//! 2. [`ledger::Ledger::step`] turns those judgements into notices, with the no-noise rules: a
//!    state is announced only once it lasted `notify_after`, recalled every `remind_every`, and
//!    its end (which must last `notify_after` too, and for a sink wait for its backlog to drain)
//!    is told once, with how long it lasted and how many mails it held. The ledger is saved in
//!    `state_dir/notices.json` so a restart repeats nothing (src/notice/store.rs).
//! 3. [`render`] makes each notice an embed that cannot ping, unless `[notices] mention` is
//!    set and the notice is at the alarm level.
//! 4. [`run`] posts it to every chosen sink that is not dead, each channel once, through the
//!    same guard (pacing, invalid-request limit, ban) as mail.

pub(crate) mod daily;
pub(crate) mod ledger;
pub(crate) mod post;
pub(crate) mod render;
pub(crate) mod run;
pub(crate) mod status;
pub(crate) mod store;

use crate::config::Config;
use crate::health::{AccountState, DiscordState, Health, Pattern, SinkState};
use serde::{Deserialize, Serialize};

/// Which mails a trouble holds back: those owed to one sink, every pending mail, or none (mail
/// waits on the server, as while an IMAP login fails or the disk is full).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Holds {
    Sink(String),
    All,
    Server,
}

/// One condition a user should hear about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Trouble {
    /// Stable identity across snapshots and restarts: `sink noise`, `imap home/INBOX`.
    pub(crate) key: String,
    pub(crate) level: Pattern,
    /// The headline: "Sink noise is dead".
    pub(crate) what: String,
    /// The latest reason, as the component classified it (never a secret).
    pub(crate) detail: String,
    /// What the user can do about it.
    pub(crate) remedy: String,
    /// The sink in trouble: it never gets a notice.
    pub(crate) sink: Option<String>,
    pub(crate) holds: Holds,
}

/// What the snapshot says about one condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Judgement {
    Trouble(Trouble),
    Clear,
    /// Not seen yet (e.g. a sink that has sent nothing since start): no change either way.
    Unknown,
}

const RELOAD: &str = "`systemctl reload mailbeacon`";

/// Every condition the configuration can have, judged from `h` at `now`.
pub(crate) fn observe(h: &Health, config: &Config, now: i64) -> Vec<(String, Judgement)> {
    let mut out = Vec::new();
    for s in &config.sinks {
        out.push((format!("sink {}", s.name), sink(h, &s.name)));
    }
    for a in &config.accounts {
        for f in &a.folders {
            let key = format!("imap {}/{f}", a.name);
            let oauth = matches!(a.auth, crate::config::Auth::OAuth2(_));
            let j = match h.accounts.get(&(a.name.clone(), f.clone())) {
                Some(row) => mailbox(&key, &a.name, oauth, row.state, row.last_error.as_deref()),
                None => Judgement::Unknown,
            };
            out.push((key, j));
        }
    }
    out.extend(spool(h, now));
    out.push(("disk".into(), disk(h)));
    out.push(("discord".into(), discord(h)));
    out
}

fn trouble(key: &str, level: Pattern, what: String, detail: String, remedy: String) -> Trouble {
    Trouble {
        key: key.to_string(),
        level,
        what,
        detail,
        remedy,
        sink: None,
        holds: Holds::All,
    }
}

fn sink(h: &Health, name: &str) -> Judgement {
    match h.sinks.get(name) {
        None => Judgement::Unknown,
        Some(s) if s.state == SinkState::Dead => Judgement::Trouble(Trouble {
            sink: Some(name.to_string()),
            holds: Holds::Sink(name.to_string()),
            ..trouble(
                &format!("sink {name}"),
                Pattern::Dead,
                format!("Sink {name} is dead"),
                s.last_error.clone().unwrap_or_else(|| "refused by Discord".into()),
                format!("Its mail waits in the spool. Rotate the webhook URL (or restore the bot's access) in the config, then {RELOAD}."),
            )
        }),
        Some(_) => Judgement::Clear,
    }
}

fn mailbox(
    key: &str,
    account: &str,
    oauth: bool,
    state: AccountState,
    error: Option<&str>,
) -> Judgement {
    let login = if oauth {
        format!("Sign in again: run `mailbeacon login {account}` (as the service's user, or with sudo), then {RELOAD}.")
    } else {
        format!("Check the password of account {account} (Gmail, iCloud, Yahoo and Fastmail need an app password), then {RELOAD}.")
    };
    let (what, remedy) = match state {
        AccountState::AuthFailed => ("login refused", login),
        AccountState::TlsFailed => ("TLS refused", format!("Check the server's certificate, `ca_file` or `tls_fingerprint` of account {account}, then {RELOAD}.")),
        AccountState::MailboxMissing => ("folder missing", format!("Check `folders` of account {account} (names are case-sensitive), then {RELOAD}.")),
        // A server that throttles this client is reached, and answers: it asks for patience.
        AccountState::Backoff if error.is_some_and(|e| crate::imap::quirks::throttle_pause(e).is_some()) => ("throttled by the server", "mailbeacon waits as long as the server asks and logs in again by itself; many clients on one account (phones, other apps) make throttling likelier.".to_string()),
        AccountState::Backoff => ("unreachable", "mailbeacon keeps retrying by itself; check the network and the mail server.".to_string()),
        AccountState::Error => ("server error", "mailbeacon keeps retrying by itself; the log names what the server answered.".to_string()),
        AccountState::Connecting => return Judgement::Unknown,
        AccountState::Idle | AccountState::Polling => return Judgement::Clear,
    };
    Judgement::Trouble(Trouble {
        holds: Holds::Server,
        ..trouble(
            key,
            Pattern::Dead,
            format!("IMAP {}: {what}", &key["imap ".len()..]),
            error.unwrap_or(what).to_string(),
            format!("New mail waits on the server. {remedy}"),
        )
    })
}

fn spool(h: &Health, now: i64) -> Vec<(String, Judgement)> {
    // No totals yet: the sampler has not run since start.
    if h.buckets.is_empty() {
        return ["spool backlog", "spool alarm", "spool age"]
            .into_iter()
            .map(|k| (k.to_string(), Judgement::Unknown))
            .collect();
    }
    let t = h.thresholds;
    let pending = h.pending();
    let status = "`mailbeacon status` shows which sink holds it back.";
    let level = |key: &str, over: bool, level: Pattern, what: String| {
        let j = if over {
            Judgement::Trouble(trouble(
                key,
                level,
                what,
                format!("{pending} mails pending"),
                status.to_string(),
            ))
        } else {
            Judgement::Clear
        };
        (key.to_string(), j)
    };
    let oldest = h.buckets.iter().filter_map(|b| b.oldest_pending_at).min();
    let age = oldest.map_or(0, |t| now - t);
    vec![
        level(
            "spool backlog",
            t.spool_warn > 0 && pending > t.spool_warn,
            Pattern::Backlog,
            format!("Spool past its warning level ({} mails)", t.spool_warn),
        ),
        level(
            "spool alarm",
            t.spool_alarm > 0 && pending > t.spool_alarm,
            Pattern::Alarm,
            format!("Spool past its alarm level ({} mails)", t.spool_alarm),
        ),
        (
            "spool age".to_string(),
            if t.pending_age_alarm_s > 0 && age > t.pending_age_alarm_s {
                Judgement::Trouble(trouble(
                    "spool age",
                    Pattern::Alarm,
                    "Mail waits too long for delivery".into(),
                    format!("the oldest pending mail waits {}", crate::time::age(age)),
                    status.to_string(),
                ))
            } else {
                Judgement::Clear
            },
        ),
    ]
}

fn disk(h: &Health) -> Judgement {
    match h.disk.values().chain(h.full.values()).next() {
        Some(reason) => Judgement::Trouble(Trouble {
            holds: Holds::Server,
            ..trouble(
                "disk",
                Pattern::Alarm,
                "The spool cannot take mail".into(),
                reason.clone(),
                "New mail waits on the server. Free space on the disk of `state_dir` (or remount it writable, or raise `spool_max_mb`); mailbeacon resumes by itself.".into(),
            )
        }),
        None => Judgement::Clear,
    }
}

fn discord(h: &Health) -> Judgement {
    let why = match h.discord.state {
        DiscordState::Banned => "Discord (Cloudflare) banned this IP: error 1015",
        DiscordState::Paused => "too many invalid requests (401/403/429) in 10 minutes",
        DiscordState::Ok | DiscordState::RateLimited => return Judgement::Clear,
    };
    Judgement::Trouble(trouble(
        "discord",
        Pattern::Dead,
        "Every sink is paused".into(),
        why.into(),
        "Mail waits in the spool; the pause ends by itself. Look for a dead webhook in `mailbeacon status` and rotate it.".into(),
    ))
}

/// Mails pending now that `holds` counts: a sink's are those of the buckets routed to it.
pub(crate) fn pending(h: &Health, config: &Config, holds: &Holds) -> Option<u64> {
    match holds {
        Holds::Server => None,
        Holds::All => Some(h.pending()),
        Holds::Sink(name) => Some(
            h.buckets
                .iter()
                .filter(|b| {
                    config
                        .bucket(&b.name)
                        .is_some_and(|k| k.sinks.contains(name))
                })
                .map(|b| b.pending)
                .sum(),
        ),
    }
}

#[cfg(test)]
mod tests;
