//! The TOML file as written, before validation. `deny_unknown_fields` turns a typo into an error
//! that names the key instead of a setting that silently does nothing.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub state_dir: Option<PathBuf>,
    pub keep_delivered: Option<String>,
    pub spool_cache_mb: Option<u64>,
    pub spool_max_mb: Option<f64>,
    pub metrics_file: Option<PathBuf>,
    pub metrics_every: Option<String>,
    #[serde(default)]
    pub account: Vec<RawAccount>,
    #[serde(default)]
    pub sink: Vec<RawSink>,
    #[serde(default)]
    pub bucket: Vec<RawBucket>,
    pub indicator: Option<RawIndicator>,
    pub discord: Option<RawDiscord>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDiscord {
    pub invalid_request_limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub name: String,
    pub provider: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub tls: Option<String>,
    pub username: String,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub credential: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub tls_fingerprint: Option<String>,
    pub open_url: Option<String>,
    pub auth: Option<String>,
    pub oauth2: Option<RawOAuth2>,
    pub folders: Option<Vec<String>>,
    pub idle: Option<bool>,
    pub idle_renew: Option<String>,
    pub poll_interval: Option<String>,
    pub timeout: Option<String>,
    pub start_at: Option<String>,
    pub backfill: Option<String>,
}

/// `[account.oauth2]`: every key has a default from the provider preset but `client_id`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth2 {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub client_secret_credential: Option<String>,
    pub tenant: Option<String>,
    pub device_url: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub redirect_port: Option<u16>,
    pub mechanism: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSink {
    pub name: String,
    pub kind: String,
    pub url: Option<String>,
    pub url_file: Option<PathBuf>,
    pub credential: Option<String>,
    pub channel_id: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub api_base: Option<String>,
    pub thread_id: Option<String>,
    pub forum: Option<bool>,
    pub thread_name: Option<String>,
    pub probe_every: Option<String>,
    pub probe_max: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBucket {
    pub name: String,
    pub severity: Option<String>,
    pub mode: Option<String>,
    #[serde(default)]
    pub sinks: Vec<String>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    pub mention: Option<String>,
    pub digest_every: Option<String>,
    pub fallback: Option<String>,
    pub escalate_after: Option<String>,
    pub audit: Option<String>,
    pub applied_tags: Option<Vec<String>>,
    pub thread_id: Option<String>,
    pub attachments: Option<String>,
    pub attachments_max: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub from: Option<String>,
    pub subject: Option<String>,
    pub to: Option<String>,
    pub cc: Option<String>,
    pub snippet: Option<String>,
    /// Header name → pattern: `headers = { "List-Id" = '…', "X-Priority" = '^1' }`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawIndicator {
    pub backend: Option<String>,
    pub chip: Option<String>,
    pub led: Option<RawPin>,
    pub buzzer: Option<RawPin>,
    pub led2: Option<RawPin>,
    pub quiet_hours: Option<String>,
    pub spool_warn: Option<u64>,
    pub spool_alarm: Option<u64>,
    pub pending_age_alarm: Option<String>,
    pub buzzer_repeat: Option<String>,
    pub trace: Option<PathBuf>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct RawPin {
    pub line: u32,
    pub active_low: Option<bool>,
}
