//! The HTTP edge: one [`Sink`] per configured Discord destination. Blocking (ureq), so callers
//! run it on a blocking thread. Webhooks post with `wait=true` so Discord confirms a saved
//! message with its id; bots post with a `nonce` + `enforce_nonce` so a repeat after a crash
//! returns the first message instead of a second one. Probes never post. With `thread_id`, a
//! webhook posts with `?thread_id=` and a bot posts to the thread itself (a thread is a channel).

use super::classify::{classify, Headers, Outcome, Pace};
use crate::config::{SinkConfig, SinkTarget};
use std::time::Duration;

/// What one request produced: its outcome and the pacing its headers ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub outcome: Outcome,
    pub pace: Pace,
    /// The HTTP status; 0 when no answer came (network, timeout). 401, 403 and 429 count
    /// toward Discord's invalid-request limit.
    pub status: u16,
}

pub trait Sink: Send + Sync {
    fn name(&self) -> &str;
    /// Posts one message body; `nonce` identifies it for sinks that support idempotency;
    /// `thread` replaces the sink's own `thread_id` for this message (a forum bucket's thread).
    fn post(&self, body: &serde_json::Value, nonce: &str, thread: Option<&str>) -> Reply;
    /// Posts one message with files (`multipart/form-data`, the JSON as `payload_json`). A sink
    /// that cannot send files posts the message alone.
    fn post_files(
        &self,
        body: &serde_json::Value,
        nonce: &str,
        thread: Option<&str>,
        files: &[Upload],
    ) -> Reply {
        let _ = files;
        self.post(body, nonce, thread)
    }
    /// Checks that the destination still exists and accepts us, without posting.
    fn probe(&self) -> Reply;
    /// The top-level resource Discord keys rate limits on besides the route's bucket: the
    /// webhook id, or the channel (thread) id a bot posts to.
    fn resource(&self) -> String {
        self.name().to_string()
    }
    /// Who shares a global rate limit with this sink: `None` for webhooks (the whole IP, so
    /// every sink), a fingerprint of the token for bots (every sink with that token).
    fn global_scope(&self) -> Option<u64> {
        None
    }
}

/// A file to send with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Shown in Discord; cleaned already (src/imap/structure.rs).
    pub name: String,
    pub mime: String,
    pub data: Vec<u8>,
}

pub struct HttpSink {
    config: SinkConfig,
    agent: ureq::Agent,
}

const USER_AGENT: &str = concat!(
    "DiscordBot (https://github.com/mailbeacon/mailbeacon, ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

impl HttpSink {
    pub fn new(config: SinkConfig) -> HttpSink {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            // Without this, 4xx/5xx arrive as errors without headers, and Retry-After is lost.
            .http_status_as_error(false)
            .timeout_global(Some(config.timeout))
            .timeout_connect(Some(config.timeout.min(Duration::from_secs(10))))
            .user_agent(USER_AGENT)
            .build()
            .into();
        HttpSink { config, agent }
    }

    fn secret(&self) -> &str {
        match &self.config.target {
            SinkTarget::Webhook(w) => w.token.expose(),
            SinkTarget::Bot { token, .. } => token.expose(),
        }
    }

    /// The URL to post to (`posting`) or to probe, and the `Authorization` header if any.
    fn endpoint(&self, posting: bool, thread: Option<&str>) -> (String, Option<String>) {
        let thread = thread.or(self.config.thread_id.as_deref());
        match &self.config.target {
            SinkTarget::Webhook(w) if posting => {
                let thread = thread.map_or(String::new(), |t| format!("&thread_id={t}"));
                (format!("{}?wait=true{thread}", w.expose()), None)
            }
            SinkTarget::Webhook(w) => (w.expose(), None),
            SinkTarget::Bot {
                api_base,
                channel_id,
                token,
            } => {
                let url = format!(
                    "{api_base}/channels/{}{}",
                    thread.unwrap_or(channel_id),
                    if posting { "/messages" } else { "" }
                );
                (url, Some(format!("Bot {}", token.expose())))
            }
        }
    }

    /// Error texts from the HTTP stack might echo the URL; the token never leaves.
    fn scrub(&self, text: String) -> String {
        let secret = self.secret();
        if secret.is_empty() {
            text
        } else {
            text.replace(secret, "[redacted]")
        }
    }

    fn finish(&self, result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        self.finish_probe(result, false)
    }

    /// [`HttpSink::finish`]; with `forum_check`, a channel that answers as a forum or media
    /// channel (type 15 or 16) is dead for a sink not set up for one: nothing it sends could
    /// be posted there.
    fn finish_probe(
        &self,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        forum_check: bool,
    ) -> Reply {
        let mut response = match result {
            Ok(r) => r,
            Err(e) => {
                return Reply {
                    outcome: Outcome::Transient {
                        reason: self.scrub(format!("network: {e}")),
                    },
                    pace: Pace::default(),
                    status: 0,
                };
            }
        };
        let headers = rate_limit_headers(&response);
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(256 * 1024)
            .read_to_vec()
            .unwrap_or_default();
        let ok = (200..300).contains(&status);
        if ok && forum_check && is_forum(&body) {
            return Reply {
                outcome: Outcome::Dead {
                    reason: "the channel is a forum or media channel: set forum = true on the \
                             sink (each mail becomes a post), or a thread_id to post into"
                        .into(),
                },
                pace: headers.pace(),
                status,
            };
        }
        let mut pace = headers.pace();
        if ok {
            pace.channel = channel_id(&body);
        }
        Reply {
            outcome: self.scrub_outcome(classify(status, &headers, &body)),
            pace,
            status,
        }
    }

    /// The outcome with any secret taken out of its reason.
    fn scrub_outcome(&self, outcome: Outcome) -> Outcome {
        match outcome {
            Outcome::Transient { reason } => Outcome::Transient {
                reason: self.scrub(reason),
            },
            Outcome::Dead { reason } => Outcome::Dead {
                reason: self.scrub(reason),
            },
            Outcome::Rejected { reason } => Outcome::Rejected {
                reason: self.scrub(reason),
            },
            other => other,
        }
    }
}

/// The headers [`classify`] and the pacing read.
fn rate_limit_headers(response: &ureq::http::Response<ureq::Body>) -> Headers {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Headers {
        retry_after: header("retry-after"),
        remaining: header("x-ratelimit-remaining"),
        reset_after: header("x-ratelimit-reset-after"),
        scope: header("x-ratelimit-scope"),
        global: header("x-ratelimit-global"),
        limit: header("x-ratelimit-limit"),
        bucket: header("x-ratelimit-bucket"),
    }
}

/// Whether a channel's JSON says it is a forum or media channel (type 15 or 16).
fn is_forum(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_u64()))
        .is_some_and(|t| t == 15 || t == 16)
}

/// The channel a 2xx answer names (`channel_id`): the key of its shared message limit.
fn channel_id(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("channel_id")?.as_str().map(str::to_string))
}

impl Sink for HttpSink {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn resource(&self) -> String {
        match &self.config.target {
            SinkTarget::Webhook(w) => format!("webhook {}", w.id),
            SinkTarget::Bot { channel_id, .. } => format!(
                "channel {}",
                self.config.thread_id.as_deref().unwrap_or(channel_id)
            ),
        }
    }

    fn global_scope(&self) -> Option<u64> {
        match &self.config.target {
            SinkTarget::Webhook(_) => None,
            SinkTarget::Bot { token, .. } => Some(fnv1a(token.expose().as_bytes())),
        }
    }

    fn post(&self, body: &serde_json::Value, nonce: &str, thread: Option<&str>) -> Reply {
        self.post_files(body, nonce, thread, &[])
    }

    fn post_files(
        &self,
        body: &serde_json::Value,
        nonce: &str,
        thread: Option<&str>,
        files: &[Upload],
    ) -> Reply {
        let (mut url, auth) = self.endpoint(true, thread);
        let mut body = body.clone();
        let forum_bot = matches!(self.config.target, SinkTarget::Bot { .. })
            && body.get("thread_name").is_some();
        if !files.is_empty() {
            let listed: Vec<serde_json::Value> = files
                .iter()
                .enumerate()
                .map(|(i, f)| serde_json::json!({ "id": i, "filename": f.name }))
                .collect();
            body["attachments"] = serde_json::json!(listed);
        }
        if forum_bot {
            // A bot starts a forum post at the channel's threads endpoint, the message
            // inside it (that endpoint takes no nonce: a repeat after a crash is possible).
            url = format!("{}/threads", url.trim_end_matches("/messages"));
            body = forum_post(body);
        } else if matches!(self.config.target, SinkTarget::Bot { .. }) {
            body["nonce"] = serde_json::json!(nonce);
            body["enforce_nonce"] = serde_json::json!(true);
        }
        let mut request = self.agent.post(url);
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        if files.is_empty() {
            let request = request.header("Content-Type", "application/json");
            return self.finish(request.send(body.to_string().as_bytes()));
        }
        let boundary = format!("mailbeacon{:016x}", fastrand::u64(..));
        let request = request.header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        );
        self.finish(request.send(&multipart(&boundary, &body, files)[..]))
    }

    fn probe(&self) -> Reply {
        let (url, auth) = self.endpoint(false, None);
        let mut request = self.agent.get(url);
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        // A probe's 2xx carries the webhook or channel object, whose `id` classifies it as
        // delivered: alive.
        let forum_check = matches!(self.config.target, SinkTarget::Bot { .. })
            && self.config.forum.is_none()
            && self.config.thread_id.is_none();
        self.finish_probe(request.call(), forum_check)
    }
}

/// The multipart body Discord takes for a message with files: `payload_json`, then
/// `files[n]` each with its name and type.
fn multipart(boundary: &str, payload: &serde_json::Value, files: &[Upload]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(files.iter().map(|f| f.data.len() + 256).sum::<usize>() + 4096);
    out.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\nContent-Type: application/json\r\n\r\n{payload}\r\n"
        )
        .as_bytes(),
    );
    for (i, f) in files.iter().enumerate() {
        // The name sits inside a quoted header value: no quote, backslash or line break.
        let name: String = f
            .name
            .chars()
            .map(|c| {
                if matches!(c, '"' | '\\' | '\r' | '\n') {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files[{i}]\"; filename=\"{name}\"\r\nContent-Type: {}\r\n\r\n",
                f.mime
            )
            .as_bytes(),
        );
        out.extend_from_slice(&f.data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// A webhook-style forum post (`thread_name`, `applied_tags` beside the message) as the bot
/// API's `POST /channels/ID/threads` wants it: `name`, `applied_tags` and the message inside.
fn forum_post(mut body: serde_json::Value) -> serde_json::Value {
    let name = body
        .as_object_mut()
        .and_then(|o| o.remove("thread_name"))
        .unwrap_or_default();
    let tags = body.as_object_mut().and_then(|o| o.remove("applied_tags"));
    let mut post = serde_json::json!({ "name": name, "message": body });
    if let Some(tags) = tags {
        post["applied_tags"] = tags;
    }
    post
}

/// FNV-1a: tells bot tokens apart without keeping or showing them.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}
