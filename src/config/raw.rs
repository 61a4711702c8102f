//! The TOML file as written, before validation. `deny_unknown_fields` turns a typo into an error
//! that names the key instead of a setting that silently does nothing.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) state_dir: Option<PathBuf>,
    pub(crate) keep_delivered: Option<String>,
    pub(crate) spool_cache_mb: Option<u64>,
    pub(crate) spool_max_mb: Option<f64>,
    pub(crate) metrics_file: Option<PathBuf>,
    pub(crate) metrics_every: Option<String>,
    #[serde(default)]
    pub(crate) account: Vec<RawAccount>,
    #[serde(default)]
    pub(crate) sink: Vec<RawSink>,
    #[serde(default)]
    pub(crate) bucket: Vec<RawBucket>,
    pub(crate) indicator: Option<RawIndicator>,
    pub(crate) discord: Option<RawDiscord>,
    pub(crate) notices: Option<RawNotices>,
    pub(crate) heartbeat: Option<RawHeartbeat>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotices {
    pub(crate) enabled: Option<bool>,
    pub(crate) sinks: Option<Vec<String>>,
    pub(crate) notify_after: Option<String>,
    pub(crate) remind_every: Option<String>,
    pub(crate) mention: Option<String>,
    pub(crate) daily: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeartbeat {
    pub(crate) url: Option<String>,
    pub(crate) url_file: Option<PathBuf>,
    pub(crate) credential: Option<String>,
    pub(crate) every: Option<String>,
    pub(crate) style: Option<String>,
    pub(crate) timeout: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDiscord {
    pub(crate) invalid_request_limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccount {
    pub(crate) name: String,
    pub(crate) provider: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) tls: Option<String>,
    pub(crate) username: String,
    pub(crate) password: Option<String>,
    pub(crate) password_file: Option<PathBuf>,
    pub(crate) credential: Option<String>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) tls_fingerprint: Option<String>,
    pub(crate) open_url: Option<String>,
    pub(crate) auth: Option<String>,
    pub(crate) oauth2: Option<RawOAuth2>,
    pub(crate) folders: Option<Vec<String>>,
    pub(crate) idle: Option<bool>,
    pub(crate) idle_renew: Option<String>,
    pub(crate) poll_interval: Option<String>,
    pub(crate) timeout: Option<String>,
    pub(crate) start_at: Option<String>,
    pub(crate) backfill: Option<String>,
}

/// `[account.oauth2]`: every key has a default from the provider preset but `client_id`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOAuth2 {
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<String>,
    pub(crate) client_secret_file: Option<PathBuf>,
    pub(crate) client_secret_credential: Option<String>,
    pub(crate) tenant: Option<String>,
    pub(crate) device_url: Option<String>,
    pub(crate) authorize_url: Option<String>,
    pub(crate) token_url: Option<String>,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) redirect_port: Option<u16>,
    pub(crate) mechanism: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSink {
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) url: Option<String>,
    pub(crate) url_file: Option<PathBuf>,
    pub(crate) credential: Option<String>,
    pub(crate) channel_id: Option<String>,
    pub(crate) token: Option<String>,
    pub(crate) token_file: Option<PathBuf>,
    pub(crate) api_base: Option<String>,
    pub(crate) thread_id: Option<String>,
    pub(crate) forum: Option<bool>,
    pub(crate) thread_name: Option<String>,
    pub(crate) probe_every: Option<String>,
    pub(crate) probe_max: Option<String>,
    pub(crate) timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBucket {
    pub(crate) name: String,
    pub(crate) severity: Option<String>,
    pub(crate) mode: Option<String>,
    #[serde(default)]
    pub(crate) sinks: Vec<String>,
    #[serde(default)]
    pub(crate) rules: Vec<RawRule>,
    pub(crate) mention: Option<String>,
    pub(crate) digest_every: Option<String>,
    pub(crate) fallback: Option<String>,
    pub(crate) escalate_after: Option<String>,
    pub(crate) audit: Option<String>,
    /// `false`: notify during quiet hours too (P2/P3 go silent by default).
    pub(crate) quiet: Option<bool>,
    pub(crate) applied_tags: Option<Vec<String>>,
    pub(crate) thread_id: Option<String>,
    pub(crate) attachments: Option<String>,
    pub(crate) attachments_max: Option<String>,
    pub(crate) after_delivery: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub(crate) from: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) cc: Option<String>,
    pub(crate) snippet: Option<String>,
    /// Header name → pattern: `headers = { "List-Id" = '…', "X-Priority" = '^1' }`.
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIndicator {
    pub(crate) backend: Option<String>,
    pub(crate) chip: Option<String>,
    pub(crate) led: Option<RawPin>,
    pub(crate) buzzer: Option<RawPin>,
    pub(crate) led2: Option<RawPin>,
    pub(crate) quiet_hours: Option<String>,
    pub(crate) spool_warn: Option<u64>,
    pub(crate) spool_alarm: Option<u64>,
    pub(crate) pending_age_alarm: Option<String>,
    pub(crate) buzzer_repeat: Option<String>,
    pub(crate) trace: Option<PathBuf>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPin {
    pub(crate) line: u32,
    pub(crate) active_low: Option<bool>,
}
