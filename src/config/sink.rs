//! A `[[sink]]`: one Discord destination, validated — a webhook URL or a bot's channel and token,
//! an optional thread, and the probe schedule and timeout used when it is dead.

use super::raw::RawSink;
use super::{endpoint, ConfigError, Loader, Secret, WebhookUrl};
use std::time::Duration;

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
    /// `forum = true`: the channel is a forum or media channel, where each message must be a
    /// new post named by this template (`{subject}`, `{from}`, `{bucket}`, `{account}`).
    pub forum: Option<String>,
    /// First wait between probes of a dead sink; doubles up to `probe_max`.
    pub probe_every: Duration,
    pub probe_max: Duration,
    pub timeout: Duration,
}

impl Loader<'_> {
    pub(super) fn sink(&self, i: usize, s: RawSink) -> Result<SinkConfig, ConfigError> {
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
        let forum = match (s.forum.unwrap_or(false), s.thread_name) {
            (true, name) => {
                let name = name.unwrap_or_else(|| "{subject}".to_string());
                if let Some(why) = crate::discord::render::forum::invalid(&name) {
                    return Err(self.err(key("thread_name"), why));
                }
                Some(name)
            }
            (false, Some(_)) => {
                return Err(self.err(
                    key("thread_name"),
                    "names forum posts: set forum = true too",
                ))
            }
            (false, None) => None,
        };
        let probe_every = self.duration(&key("probe_every"), s.probe_every.as_deref(), "1m")?;
        let probe_max = self
            .duration(&key("probe_max"), s.probe_max.as_deref(), "30m")?
            .max(probe_every);
        Ok(SinkConfig {
            target,
            thread_id,
            forum,
            probe_every,
            probe_max,
            timeout: self.duration(&key("timeout"), s.timeout.as_deref(), "30s")?,
            name: s.name,
        })
    }
}
