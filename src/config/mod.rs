//! The configuration: one TOML file, loaded and validated up front so that the daemon never
//! starts half-configured. Every error names the file, the key and the reason, and maps to exit
//! code 78 (EX_CONFIG) so systemd's `RestartPreventExitStatus=78` stops a restart loop.
//! Secrets may be inline, in a `*_file`, or a systemd credential; none is ever printed.
//!
//! This file holds the loaded [`Config`], its entry points and the top-level keys; each table
//! (`[[account]]`, `[[sink]]`, `[[bucket]]`, `[indicator]`) has a module with its validated type
//! and the checks that produce it.

mod account;
mod after;
mod bucket;
pub(crate) mod duration;
mod endpoint;
pub(crate) mod fingerprint;
mod indicator;
mod lint;
mod notices;
mod oauth2;
pub(crate) mod perms;
pub(crate) mod provider;
mod raw;
mod route;
mod secret;
mod secret_source;
mod sink;

pub use account::Account;
pub(crate) use account::{Auth, AuthKind, StartAt, Tls};
pub use after::AfterDelivery;
pub use bucket::Severity;
pub(crate) use bucket::{Bucket, Mention, Mode};
pub(crate) use duration::parse as parse_duration;
pub(crate) use endpoint::is_loopback;
pub use endpoint::WebhookUrl;
pub(crate) use fingerprint::Fingerprint;
pub(crate) use indicator::{Backend, IndicatorConfig};
pub use lint::Warning;
pub(crate) use notices::{HeartbeatConfig, HeartbeatStyle, NoticesConfig};
pub(crate) use oauth2::{Flow, Mechanism, OAuth2};
pub use secret::Secret;
pub use sink::{SinkConfig, SinkTarget};

use crate::triage::Triage;
use raw::{RawAccount, RawBucket, RawConfig, RawDiscord, RawSink};
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration problem: which file, which key, why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {key}: {reason}", file.display())]
pub struct ConfigError {
    pub(crate) file: PathBuf,
    pub(crate) key: String,
    pub(crate) reason: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) path: PathBuf,
    pub(crate) state_dir: PathBuf,
    pub(crate) keep_delivered: Duration,
    pub spool_cache_bytes: u64,
    /// `spool_max_mb` in bytes: at this size ingestion stops until room is made.
    pub(crate) spool_max_bytes: u64,
    /// Where to write Prometheus metrics, and how often.
    pub(crate) metrics: Option<MetricsConfig>,
    pub accounts: Vec<Account>,
    pub(crate) sinks: Vec<SinkConfig>,
    pub buckets: Vec<Bucket>,
    pub(crate) indicator: IndicatorConfig,
    pub(crate) discord: DiscordConfig,
    pub(crate) notices: NoticesConfig,
    pub(crate) heartbeat: Option<HeartbeatConfig>,
}

/// `metrics_file`, `metrics_every`: a Prometheus text file for node_exporter's textfile collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetricsConfig {
    pub(crate) path: PathBuf,
    pub(crate) every: Duration,
}

/// Settings shared by every sink: they all send from one IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DiscordConfig {
    /// 401, 403 and non-shared 429 answers allowed in a sliding 10 minutes before every sink
    /// pauses; Discord's Cloudflare bans the IP at 10,000.
    pub(crate) invalid_request_limit: u32,
}

impl Config {
    /// Reads, parses and validates `path`; secrets in `*_file`s and credentials are read too.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, true)
    }

    /// Like [`Config::load`] but leaves secrets in files and credentials unread (empty), for
    /// commands that need none — `status` and `spool` from an SSH shell, where systemd's
    /// `CREDENTIALS_DIRECTORY` does not exist and the service user's files may be unreadable.
    pub(crate) fn load_without_secrets(path: &Path) -> Result<Config, ConfigError> {
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

/// Turns the raw TOML into a [`Config`], naming the file and key in every error; the tables'
/// modules add their own methods.
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
        let accounts = self.accounts(raw.account, &state_dir)?;
        let sinks = self.sinks(raw.sink)?;
        let opted_out: Vec<bool> = raw.bucket.iter().map(|b| b.quiet == Some(false)).collect();
        let mut buckets = self.buckets(raw.bucket, &sinks)?;
        self.moves_leave_watched_folders(&buckets, &accounts)?;
        self.one_fallback(&buckets)?;
        let indicator = self.indicator(raw.indicator.unwrap_or_default())?;
        notices::quiet_windows(&mut buckets, &opted_out, indicator.quiet_hours);
        let notices = self.notices(raw.notices, &sinks)?;
        Ok(Config {
            path: self.path.to_path_buf(),
            state_dir,
            keep_delivered: self.duration(
                "keep_delivered",
                raw.keep_delivered.as_deref(),
                "30d",
            )?,
            spool_cache_bytes: self.spool_cache(raw.spool_cache_mb)?,
            spool_max_bytes: self.spool_max(raw.spool_max_mb)?,
            metrics: self.metrics(raw.metrics_file, raw.metrics_every.as_deref())?,
            accounts,
            sinks,
            buckets,
            indicator,
            discord: self.discord(raw.discord.unwrap_or_default())?,
            notices,
            heartbeat: self.heartbeat(raw.heartbeat)?,
        })
    }

    /// Every `[[account]]`, each name once.
    fn accounts(
        &self,
        raw: Vec<RawAccount>,
        state_dir: &Path,
    ) -> Result<Vec<Account>, ConfigError> {
        let accounts = raw
            .into_iter()
            .enumerate()
            .map(|(i, a)| self.account(i, a, state_dir))
            .collect::<Result<Vec<_>, _>>()?;
        unique(accounts.iter().map(|a| a.name.as_str()))
            .map_err(|n| self.err("account.name", format!("{n:?} is used twice")))?;
        Ok(accounts)
    }

    /// Every `[[sink]]`, each name once.
    fn sinks(&self, raw: Vec<RawSink>) -> Result<Vec<SinkConfig>, ConfigError> {
        let sinks = raw
            .into_iter()
            .enumerate()
            .map(|(i, s)| self.sink(i, s))
            .collect::<Result<Vec<_>, _>>()?;
        unique(sinks.iter().map(|s| s.name.as_str()))
            .map_err(|n| self.err("sink.name", format!("{n:?} is used twice")))?;
        Ok(sinks)
    }

    /// Every `[[bucket]]`, each name once, each posting to configured sinks.
    fn buckets(
        &self,
        raw: Vec<RawBucket>,
        sinks: &[SinkConfig],
    ) -> Result<Vec<Bucket>, ConfigError> {
        let buckets = raw
            .into_iter()
            .enumerate()
            .map(|(i, b)| self.bucket(i, b, sinks))
            .collect::<Result<Vec<_>, _>>()?;
        unique(buckets.iter().map(|b| b.name.as_str()))
            .map_err(|n| self.err("bucket.name", format!("{n:?} is used twice")))?;
        Ok(buckets)
    }

    /// Exactly one bucket has no rules: the fallback for everything else.
    fn one_fallback(&self, buckets: &[Bucket]) -> Result<(), ConfigError> {
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
        Ok(())
    }

    /// `metrics_file`, written every `metrics_every` (30s unless given); none unless set.
    fn metrics(
        &self,
        path: Option<PathBuf>,
        every: Option<&str>,
    ) -> Result<Option<MetricsConfig>, ConfigError> {
        match path {
            Some(path) => Ok(Some(MetricsConfig {
                path,
                every: self.duration("metrics_every", every, "30s")?,
            })),
            None => Ok(None),
        }
    }

    fn spool_cache(&self, mb: Option<u64>) -> Result<u64, ConfigError> {
        match mb.unwrap_or(2) {
            mb @ 1..=4096 => Ok(mb * 1024 * 1024),
            mb => Err(self.err(
                "spool_cache_mb",
                format!(
                    "{mb} MiB is not a cache size: give 1 to 4096 (the default, 2, suits a Pi)"
                ),
            )),
        }
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

#[cfg(test)]
mod tests;
