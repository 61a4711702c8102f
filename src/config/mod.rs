//! The configuration: one TOML file, loaded and validated up front so that the daemon never
//! starts half-configured. Every error names the file, the key and the reason, and maps to exit
//! code 78 (EX_CONFIG) so systemd's `RestartPreventExitStatus=78` stops a restart loop.
//! Secrets may be inline, in a `*_file`, or a systemd credential; none is ever printed.

pub mod duration;
mod endpoint;
mod lint;
pub mod perms;
mod raw;
mod route;
mod secret;

pub use duration::parse as parse_duration;
pub use endpoint::{is_loopback, WebhookUrl};
pub use lint::Warning;
pub use secret::Secret;

use crate::triage::{Field, Rule, Triage};
use raw::{RawAccount, RawBucket, RawConfig, RawDiscord, RawIndicator, RawPin, RawRule, RawSink};
use regex::{Regex, RegexBuilder};
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration problem: which file, which key, why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {key}: {reason}", file.display())]
pub struct ConfigError {
    pub file: PathBuf,
    pub key: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub state_dir: PathBuf,
    pub keep_delivered: Duration,
    pub spool_cache_bytes: u64,
    /// `spool_max_mb` in bytes: at this size ingestion stops until room is made.
    pub spool_max_bytes: u64,
    /// Where to write Prometheus metrics, and how often.
    pub metrics: Option<MetricsConfig>,
    pub accounts: Vec<Account>,
    pub sinks: Vec<SinkConfig>,
    pub buckets: Vec<Bucket>,
    pub indicator: IndicatorConfig,
    pub discord: DiscordConfig,
}

/// `metrics_file`, `metrics_every`: a Prometheus text file for node_exporter's textfile collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    pub path: PathBuf,
    pub every: Duration,
}

/// Settings shared by every sink: they all send from one IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscordConfig {
    /// 401, 403 and non-shared 429 answers allowed in a sliding 10 minutes before every sink
    /// pauses; Discord's Cloudflare bans the IP at 10,000.
    pub invalid_request_limit: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    Implicit,
    Starttls,
    /// Plaintext, accepted only to a loopback host (tests and local stand-ins).
    None,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: String,
    pub password: Secret,
    pub ca_file: Option<PathBuf>,
    pub folders: Vec<String>,
    pub idle: bool,
    /// How long one IDLE command may run before it is renewed (RFC 2177: under 29 minutes).
    pub idle_renew: Duration,
    /// The reconciliation poll: runs on this schedule even while idling.
    pub poll_interval: Duration,
    pub timeout: Duration,
    /// Where a mailbox seen for the first time starts.
    pub start_at: StartAt,
    /// With `start_at = "unseen" | "all"`: only mail received within this window.
    pub backfill: Option<Duration>,
}

/// The first run of a mailbox: only mail that arrives from now on (the default), mail not yet
/// marked `\Seen`, or everything already there. `backfill` narrows the last two by age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Now,
    Unseen,
    All,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkTarget {
    Webhook(WebhookUrl),
    Bot {
        api_base: String,
        channel_id: String,
        token: Secret,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    pub name: String,
    pub target: SinkTarget,
    /// Post into this thread of the channel (a webhook's `?thread_id=`; a bot posts to the
    /// thread's own channel id).
    pub thread_id: Option<String>,
    /// First wait between probes of a dead sink; doubles up to `probe_max`.
    pub probe_every: Duration,
    pub probe_max: Duration,
    pub timeout: Duration,
}

/// P0 is the most urgent: its mail is delivered before P1's, and so on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Severity {
    P0,
    P1,
    P2,
    P3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Push,
    Digest,
    Hold,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mention {
    Role(String),
    Everyone,
}

#[derive(Debug, Clone)]
pub struct Bucket {
    pub name: String,
    pub severity: Severity,
    pub mode: Mode,
    pub sinks: Vec<String>,
    pub rules: Vec<Rule>,
    pub mention: Option<Mention>,
    pub digest_every: Option<Duration>,
    /// Also delivers to this sink when every sink of the bucket is dead, or (P0/P1) when a
    /// mail waited longer than `escalate_after`.
    pub fallback: Option<String>,
    pub escalate_after: Option<Duration>,
    /// Receives a one-line mirror of every delivery of the bucket's mail.
    pub audit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Cdev { chip: String },
    Sim { trace: Option<PathBuf> },
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    pub line: u32,
    pub active_low: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndicatorConfig {
    pub backend: Backend,
    pub led: Pin,
    pub buzzer: Option<Pin>,
    pub led2: Option<Pin>,
    /// Local minutes since midnight `(start, end)`; the buzzer stays silent inside.
    pub quiet_hours: Option<(u32, u32)>,
    pub spool_warn: u64,
    pub spool_alarm: u64,
    pub pending_age_alarm: Duration,
    pub buzzer_repeat: Duration,
}

impl Config {
    /// Reads, parses and validates `path`; secrets in `*_file`s and credentials are read too.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, true)
    }

    /// Like [`Config::load`] but leaves secrets in files and credentials unread (empty), for
    /// commands that need none — `status` and `spool` from an SSH shell, where systemd's
    /// `CREDENTIALS_DIRECTORY` does not exist and the service user's files may be unreadable.
    pub fn load_without_secrets(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, false)
    }

    fn load_with(path: &Path, read_secrets: bool) -> Result<Config, ConfigError> {
        let err = |key: &str, reason: String| ConfigError {
            file: path.to_path_buf(),
            key: key.to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("(file)", format!("cannot read: {e}")))?;
        Config::parse(path, &text, read_secrets)
    }

    /// Parses and validates `text` as if read from `path` (relative secret paths resolve
    /// against the current directory, as for a file). `load` without the read; the fuzzers
    /// call it with `read_secrets = false`.
    pub fn parse(path: &Path, text: &str, read_secrets: bool) -> Result<Config, ConfigError> {
        let err = |key: &str, reason: String| ConfigError {
            file: path.to_path_buf(),
            key: key.to_string(),
            reason,
        };
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| err(&toml_key(&e, text), toml_reason(&e)))?;
        Loader { path, read_secrets }.config(raw)
    }

    pub fn triage(&self) -> Triage {
        let fallback = self
            .buckets
            .iter()
            .find(|b| b.rules.is_empty())
            .map_or_else(String::new, |b| b.name.clone());
        Triage::new(
            self.buckets
                .iter()
                .map(|b| (b.name.clone(), b.rules.clone()))
                .collect(),
            fallback,
        )
    }

    /// What `check` has to say about rules that load but can never match; none is an error.
    pub fn warnings(&self) -> Vec<Warning> {
        lint::warnings(&self.buckets)
    }

    pub fn bucket(&self, name: &str) -> Option<&Bucket> {
        self.buckets.iter().find(|b| b.name == name)
    }

    pub fn sink(&self, name: &str) -> Option<&SinkConfig> {
        self.sinks.iter().find(|s| s.name == name)
    }
}

/// The position of a TOML syntax error as a key-like label: `line 4`.
fn toml_key(e: &toml::de::Error, text: &str) -> String {
    e.span().map_or_else(
        || "(syntax)".to_string(),
        |span| {
            format!(
                "line {}",
                text[..span.start.min(text.len())].lines().count().max(1)
            )
        },
    )
}

fn toml_reason(e: &toml::de::Error) -> String {
    e.message().to_string()
}

struct Loader<'a> {
    path: &'a Path,
    read_secrets: bool,
}

impl Loader<'_> {
    fn err(&self, key: impl fmt::Display, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.path.to_path_buf(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    fn duration(
        &self,
        key: &str,
        value: Option<&str>,
        default: &str,
    ) -> Result<Duration, ConfigError> {
        let d = parse_duration(value.unwrap_or(default)).map_err(|r| self.err(key, r))?;
        if d.is_zero() {
            return Err(self.err(key, "must be longer than zero"));
        }
        Ok(d)
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let state_dir = raw
            .state_dir
            .or_else(|| std::env::var_os("STATE_DIRECTORY").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/lib/mailbeacon"));
        if raw.account.is_empty() {
            return Err(self.err("account", "at least one [[account]] is needed"));
        }
        if raw.sink.is_empty() {
            return Err(self.err("sink", "at least one [[sink]] is needed"));
        }
        let accounts = raw
            .account
            .into_iter()
            .enumerate()
            .map(|(i, a)| self.account(i, a))
            .collect::<Result<Vec<_>, _>>()?;
        unique(accounts.iter().map(|a| a.name.as_str()))
            .map_err(|n| self.err("account.name", format!("{n:?} is used twice")))?;
        let sinks = raw
            .sink
            .into_iter()
            .enumerate()
            .map(|(i, s)| self.sink(i, s))
            .collect::<Result<Vec<_>, _>>()?;
        unique(sinks.iter().map(|s| s.name.as_str()))
            .map_err(|n| self.err("sink.name", format!("{n:?} is used twice")))?;
        let buckets = raw
            .bucket
            .into_iter()
            .enumerate()
            .map(|(i, b)| self.bucket(i, b, &sinks))
            .collect::<Result<Vec<_>, _>>()?;
        unique(buckets.iter().map(|b| b.name.as_str()))
            .map_err(|n| self.err("bucket.name", format!("{n:?} is used twice")))?;
        let fallbacks: Vec<&str> = buckets
            .iter()
            .filter(|b| b.rules.is_empty())
            .map(|b| b.name.as_str())
            .collect();
        if fallbacks.len() != 1 {
            return Err(self.err(
                "bucket.rules",
                format!("exactly one bucket must have no rules (the fallback for everything else); found {}: {fallbacks:?}", fallbacks.len()),
            ));
        }
        Ok(Config {
            path: self.path.to_path_buf(),
            state_dir,
            keep_delivered: self.duration(
                "keep_delivered",
                raw.keep_delivered.as_deref(),
                "30d",
            )?,
            spool_cache_bytes: raw.spool_cache_mb.unwrap_or(16) * 1024 * 1024,
            spool_max_bytes: self.spool_max(raw.spool_max_mb)?,
            metrics: match raw.metrics_file {
                Some(path) => Some(MetricsConfig {
                    path,
                    every: self.duration("metrics_every", raw.metrics_every.as_deref(), "30s")?,
                }),
                None => None,
            },
            accounts,
            sinks,
            buckets,
            indicator: self.indicator(raw.indicator.unwrap_or_default())?,
            discord: self.discord(raw.discord.unwrap_or_default())?,
        })
    }

    fn spool_max(&self, mb: Option<f64>) -> Result<u64, ConfigError> {
        let mb = mb.unwrap_or(1024.0);
        if !(mb.is_finite() && mb >= 0.001) {
            return Err(self.err(
                "spool_max_mb",
                format!("{mb} is not a size: give the spool's bound in MiB, at least 0.001"),
            ));
        }
        Ok((mb * 1024.0 * 1024.0) as u64)
    }

    fn discord(&self, r: RawDiscord) -> Result<DiscordConfig, ConfigError> {
        let limit = r.invalid_request_limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(self.err(
                "discord.invalid_request_limit",
                "must be between 1 and 1000 (Discord bans an IP at 10,000 in 10 minutes)",
            ));
        }
        Ok(DiscordConfig {
            invalid_request_limit: limit,
        })
    }

    fn account(&self, i: usize, a: RawAccount) -> Result<Account, ConfigError> {
        let key = |k: &str| format!("account[{i}] ({}).{k}", a.name);
        if a.name.trim().is_empty() {
            return Err(self.err(format!("account[{i}].name"), "must not be empty"));
        }
        let tls = match a.tls.as_deref().unwrap_or("implicit") {
            "implicit" => Tls::Implicit,
            "starttls" => Tls::Starttls,
            "none" if is_loopback(&a.host) => Tls::None,
            "none" => return Err(self.err(key("tls"), "plaintext IMAP is allowed only to a loopback host; use \"implicit\" or \"starttls\"")),
            other => return Err(self.err(key("tls"), format!("{other:?} is not one of implicit, starttls"))),
        };
        let password = self.secret(&key("password"), a.password, a.password_file, a.credential)?;
        if let Some(ca) = &a.ca_file {
            std::fs::metadata(ca)
                .map_err(|e| self.err(key("ca_file"), format!("{}: {e}", ca.display())))?;
        }
        let folders = a.folders.unwrap_or_else(|| vec!["INBOX".to_string()]);
        if folders.is_empty() || folders.iter().any(|f| f.trim().is_empty()) {
            return Err(self.err(key("folders"), "list at least one folder, none empty"));
        }
        let idle_renew = self.duration(&key("idle_renew"), a.idle_renew.as_deref(), "5m")?;
        if idle_renew < Duration::from_secs(10) || idle_renew > Duration::from_secs(29 * 60) {
            return Err(self.err(
                key("idle_renew"),
                "must be between 10s and 29m (RFC 2177: renew IDLE at least every 29 minutes)",
            ));
        }
        let start_at = match a.start_at.as_deref().unwrap_or("now") {
            "now" => StartAt::Now,
            "unseen" => StartAt::Unseen,
            "all" => StartAt::All,
            other => {
                return Err(self.err(
                    key("start_at"),
                    format!("{other:?} is not one of now, unseen, all"),
                ))
            }
        };
        let backfill =
            match a.backfill.as_deref() {
                None => None,
                Some(_) if start_at == StartAt::Now => return Err(self.err(
                    key("backfill"),
                    "has no effect with start_at = \"now\"; set start_at = \"unseen\" or \"all\"",
                )),
                Some(b) => Some(self.duration(&key("backfill"), Some(b), "0s")?),
            };
        Ok(Account {
            port: a.port.unwrap_or(match tls {
                Tls::Implicit => 993,
                Tls::Starttls | Tls::None => 143,
            }),
            tls,
            username: a.username,
            password,
            ca_file: a.ca_file,
            folders,
            idle: a.idle.unwrap_or(true),
            idle_renew,
            start_at,
            backfill,
            poll_interval: self.duration(
                &key("poll_interval"),
                a.poll_interval.as_deref(),
                "15m",
            )?,
            timeout: self.duration(&key("timeout"), a.timeout.as_deref(), "60s")?,
            host: a.host,
            name: a.name,
        })
    }

    /// Exactly one of inline value, file, or systemd credential.
    fn secret(
        &self,
        key: &str,
        inline: Option<String>,
        file: Option<PathBuf>,
        credential: Option<String>,
    ) -> Result<Secret, ConfigError> {
        let base = key
            .trim_end_matches("password")
            .trim_end_matches("url")
            .trim_end_matches("token");
        match (inline, file, credential) {
            (Some(v), None, None) if !v.is_empty() => Ok(Secret::new(v)),
            (None, Some(_), None) | (None, None, Some(_)) if !self.read_secrets => {
                Ok(Secret::new(""))
            }
            (None, Some(path), None) => self.secret_file(&format!("{key}_file"), &path),
            (None, None, Some(name)) => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                    self.err(
                        format!("{base}credential"),
                        "CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the unit)",
                    )
                })?;
                self.secret_file(&format!("{base}credential"), &Path::new(&dir).join(name))
            }
            (None, None, None) => {
                Err(self.err(key, format!("missing: set {key}, {key}_file or credential")))
            }
            (Some(_), None, None) => Err(self.err(key, "must not be empty")),
            _ => Err(self.err(
                key,
                format!("set only one of {key}, {key}_file, credential"),
            )),
        }
    }

    fn secret_file(&self, key: &str, path: &Path) -> Result<Secret, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| self.err(key, format!("{}: {}", path.display(), e.kind())))?;
        // The first line: editors add a trailing newline, and nothing after it is part of the secret.
        let value = text.lines().next().unwrap_or("").trim_end_matches('\r');
        if value.is_empty() {
            return Err(self.err(key, format!("{} is empty", path.display())));
        }
        Ok(Secret::new(value))
    }

    fn sink(&self, i: usize, s: RawSink) -> Result<SinkConfig, ConfigError> {
        let key = |k: &str| format!("sink[{i}] ({}).{k}", s.name);
        if s.name.trim().is_empty() || s.name.contains('\0') {
            return Err(self.err(format!("sink[{i}].name"), "must not be empty"));
        }
        let target = match s.kind.as_str() {
            "webhook" => {
                let url = self.secret(&key("url"), s.url, s.url_file, s.credential)?;
                SinkTarget::Webhook(if url.expose().is_empty() {
                    WebhookUrl::unread()
                } else {
                    WebhookUrl::parse(url.expose()).map_err(|r| self.err(key("url"), r))?
                })
            }
            "bot" => {
                let channel_id = s.channel_id.ok_or_else(|| {
                    self.err(
                        key("channel_id"),
                        "missing (a bot sink posts to one channel)",
                    )
                })?;
                if channel_id.is_empty() || !channel_id.chars().all(|c| c.is_ascii_digit()) {
                    return Err(self.err(key("channel_id"), "must be a numeric Discord id"));
                }
                let base = s
                    .api_base
                    .as_deref()
                    .unwrap_or("https://discord.com/api/v10");
                SinkTarget::Bot {
                    api_base: endpoint::api_base(base).map_err(|r| self.err(key("api_base"), r))?,
                    channel_id,
                    token: self.secret(&key("token"), s.token, s.token_file, s.credential)?,
                }
            }
            other => {
                return Err(self.err(key("kind"), format!("{other:?} is not one of webhook, bot")))
            }
        };
        let thread_id = s
            .thread_id
            .map(|t| {
                if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
                    Ok(t)
                } else {
                    Err(self.err(key("thread_id"), "must be a numeric Discord id"))
                }
            })
            .transpose()?;
        let probe_every = self.duration(&key("probe_every"), s.probe_every.as_deref(), "1m")?;
        let probe_max = self
            .duration(&key("probe_max"), s.probe_max.as_deref(), "30m")?
            .max(probe_every);
        Ok(SinkConfig {
            target,
            thread_id,
            probe_every,
            probe_max,
            timeout: self.duration(&key("timeout"), s.timeout.as_deref(), "30s")?,
            name: s.name,
        })
    }

    fn bucket(&self, i: usize, b: RawBucket, sinks: &[SinkConfig]) -> Result<Bucket, ConfigError> {
        let key = |k: &str| format!("bucket[{i}] ({}).{k}", b.name);
        if b.name.trim().is_empty() || b.name.contains('\0') {
            return Err(self.err(format!("bucket[{i}].name"), "must not be empty"));
        }
        let severity = match b.severity.as_deref().unwrap_or("P3") {
            "P0" => Severity::P0,
            "P1" => Severity::P1,
            "P2" => Severity::P2,
            "P3" => Severity::P3,
            other => {
                return Err(self.err(
                    key("severity"),
                    format!("{other:?} is not one of P0, P1, P2, P3"),
                ))
            }
        };
        let mode = match b.mode.as_deref().unwrap_or("push") {
            "push" => Mode::Push,
            "digest" => Mode::Digest,
            "hold" => Mode::Hold,
            other => {
                return Err(self.err(
                    key("mode"),
                    format!("{other:?} is not one of push, digest, hold"),
                ))
            }
        };
        for s in &b.sinks {
            if !sinks.iter().any(|k| &k.name == s) {
                return Err(self.err(key("sinks"), format!("no [[sink]] is named {s:?}")));
            }
        }
        if b.sinks.is_empty() && mode != Mode::Hold {
            return Err(self.err(
                key("sinks"),
                "list at least one sink (or set mode = \"hold\")",
            ));
        }
        let mention = match b.mention.as_deref() {
            None => None,
            Some("everyone") if severity == Severity::P0 => Some(Mention::Everyone),
            Some("everyone") => {
                return Err(self.err(
                    key("mention"),
                    "\"everyone\" is allowed only for severity P0",
                ))
            }
            Some(m) => match m.strip_prefix("role:") {
                Some(id) if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) => {
                    Some(Mention::Role(id.to_string()))
                }
                _ => {
                    return Err(self.err(
                        key("mention"),
                        format!("{m:?} is not \"role:ID\" or \"everyone\""),
                    ))
                }
            },
        };
        let route = self.route(&key, &b, severity, mode, sinks)?;
        let rules = b
            .rules
            .into_iter()
            .enumerate()
            .map(|(r, rule)| self.rule(&key(&format!("rules[{r}]")), rule))
            .collect::<Result<Vec<_>, _>>()?;
        let digest_every = match mode {
            Mode::Digest => {
                Some(self.duration(&key("digest_every"), b.digest_every.as_deref(), "1h")?)
            }
            _ => None,
        };
        Ok(Bucket {
            name: b.name,
            severity,
            mode,
            sinks: b.sinks,
            rules,
            mention,
            digest_every,
            fallback: route.fallback,
            escalate_after: route.escalate_after,
            audit: route.audit,
        })
    }

    fn rule(&self, key: &str, r: RawRule) -> Result<Rule, ConfigError> {
        let re = |field: Field, value: Option<String>| -> Result<Option<Regex>, ConfigError> {
            value
                .map(|v| compile(&v).map_err(|reason| self.err(format!("{key}.{field}"), reason)))
                .transpose()
        };
        let mut headers = Vec::new();
        for (name, pattern) in r.headers {
            // RFC 5322 field names: printable ASCII except the colon.
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                return Err(self.err(
                    format!("{key}.{}", Field::Header(&name)),
                    "not a header name (printable ASCII, no spaces, no colon)",
                ));
            }
            if let Some(re) = re(Field::Header(&name), Some(pattern))? {
                headers.push((name, re));
            }
        }
        let rule = Rule {
            from: re(Field::From, r.from)?,
            subject: re(Field::Subject, r.subject)?,
            to: re(Field::To, r.to)?,
            cc: re(Field::Cc, r.cc)?,
            snippet: re(Field::Snippet, r.snippet)?,
            headers,
        };
        if rule.is_empty() {
            return Err(self.err(
                key,
                "a rule must name at least one of from, subject, to, cc, snippet, headers",
            ));
        }
        Ok(rule)
    }

    fn indicator(&self, r: RawIndicator) -> Result<IndicatorConfig, ConfigError> {
        let backend = match r.backend.as_deref().unwrap_or("none") {
            "cdev" => Backend::Cdev {
                chip: r.chip.clone().ok_or_else(|| self.err("indicator.chip", "missing: a chip label such as \"pinctrl-bcm2711\" or a path such as /dev/gpiochip0"))?,
            },
            "sim" => Backend::Sim { trace: r.trace.clone() },
            "none" => Backend::None,
            other => return Err(self.err("indicator.backend", format!("{other:?} is not one of cdev, sim, none"))),
        };
        let pin = |p: RawPin| Pin {
            line: p.line,
            active_low: p.active_low.unwrap_or(false),
        };
        let led = match (r.led, &backend) {
            (Some(p), _) => pin(p),
            (None, Backend::Cdev { .. }) => {
                return Err(self.err("indicator.led", "missing: led = { line = 17 }"))
            }
            (None, _) => Pin {
                line: 17,
                active_low: false,
            },
        };
        let spool_warn = r.spool_warn.unwrap_or(50);
        let spool_alarm = r.spool_alarm.unwrap_or(500);
        if spool_warn >= spool_alarm {
            return Err(self.err(
                "indicator.spool_warn",
                format!("must be below spool_alarm ({spool_alarm})"),
            ));
        }
        let quiet_hours = r
            .quiet_hours
            .as_deref()
            .map(|q| parse_quiet_hours(q).map_err(|e| self.err("indicator.quiet_hours", e)))
            .transpose()?;
        Ok(IndicatorConfig {
            backend,
            led,
            buzzer: r.buzzer.map(pin),
            led2: r.led2.map(pin),
            quiet_hours,
            spool_warn,
            spool_alarm,
            pending_age_alarm: self.duration(
                "indicator.pending_age_alarm",
                r.pending_age_alarm.as_deref(),
                "6h",
            )?,
            buzzer_repeat: self.duration(
                "indicator.buzzer_repeat",
                r.buzzer_repeat.as_deref(),
                "15m",
            )?,
        })
    }
}

/// The most memory one compiled rule pattern may take: the regex crate's own default, pinned here
/// so that it cannot grow under us. Every rule stays compiled for the life of the agent; a
/// pattern past this (`\w{250}`: a large count of a Unicode class) is a config error that says
/// so, not a board out of memory.
const REGEX_SIZE_LIMIT: usize = 10 << 20;

fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => format!(
                "regex is too large once compiled (over {} MiB): use smaller counted repetitions, or ASCII classes with (?-u)",
                limit >> 20
            ),
            other => format!("regex does not compile: {other}"),
        })
}

fn unique<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = HashSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(n.to_string());
        }
    }
    Ok(())
}

/// `"22:00-07:00"` → minutes since midnight (1320, 420).
fn parse_quiet_hours(text: &str) -> Result<(u32, u32), String> {
    let hm = |s: &str| -> Option<u32> {
        let (h, m) = s.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    text.split_once('-')
        .and_then(|(a, b)| Some((hm(a)?, hm(b)?)))
        .ok_or_else(|| format!("{text:?} is not \"HH:MM-HH:MM\""))
}

#[cfg(test)]
mod tests;
