//! Every Discord answer becomes one [`Outcome`]; nothing collapses to a bool (invariant 4).
//! Pure: the HTTP layer hands in the status, the few headers that matter, and the body.

use std::time::Duration;

/// Whose limit a 429 hit: this route, the whole bot/IP, or the channel shared by all webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    User,
    Global,
    Shared,
    /// Cloudflare's ban for too many invalid requests (HTML "error code: 1015", or a JSON 429
    /// without rate-limit headers): every sink on this IP must pause.
    Banned,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered {
        message_id: String,
    },
    RateLimited {
        retry_after: Duration,
        scope: Scope,
    },
    /// Network, timeout, 5xx: back off and retry, forever.
    Transient {
        reason: String,
    },
    /// Gone, unauthorised, forbidden: stop posting, probe slowly.
    Dead {
        reason: String,
    },
    /// The API refused this payload: re-render smaller, then dead-letter.
    Rejected {
        reason: String,
    },
}

/// The rate-limit headers of an answer (all optional).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers {
    pub retry_after: Option<String>,
    pub remaining: Option<String>,
    pub reset_after: Option<String>,
    pub scope: Option<String>,
    pub global: Option<String>,
    pub limit: Option<String>,
    /// `X-RateLimit-Bucket`: the route's limit, shared by requests that hash alike.
    pub bucket: Option<String>,
}

/// What an answer says about the route's rate limit, for proactive pacing: when `remaining` is
/// 0, the next request on the same (bucket, webhook/channel) waits `reset_after`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pace {
    pub bucket: Option<String>,
    pub remaining: Option<u64>,
    pub reset_after: Option<Duration>,
    /// The channel a message went to, from the body of a 2xx answer (`channel_id`): a
    /// channel's unannounced message limit is shared by every webhook posting into it.
    pub channel: Option<String>,
}

impl Headers {
    pub fn pace(&self) -> Pace {
        Pace {
            bucket: self
                .bucket
                .as_deref()
                .map(str::trim)
                .filter(|b| !b.is_empty())
                .map(str::to_string),
            remaining: self
                .remaining
                .as_deref()
                .and_then(|r| r.trim().parse::<u64>().ok()),
            reset_after: self.reset_after.as_deref().and_then(seconds),
            channel: None,
        }
    }
}

/// How long an IP ban lasts when Cloudflare does not say: then one probe asks again.
pub(crate) const BAN_DEFAULT: Duration = Duration::from_secs(600);

/// Dead-channel codes (docs/design.md): unknown channel/webhook, missing access/permissions, bad token.
const DEAD_CODES: [u64; 5] = [10003, 10015, 50001, 50013, 50027];
/// "Webhooks posted to forum channels must have a thread_name or thread_id".
pub(crate) const FORUM: u64 = 220001;

fn seconds(s: &str) -> Option<Duration> {
    let v: f64 = s.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v.min(86_400.0)))
}

/// Classifies an HTTP answer. `body` is the raw response body (may be HTML, empty, or huge).
pub fn classify(status: u16, headers: &Headers, body: &[u8]) -> Outcome {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let code = json
        .as_ref()
        .and_then(|j| j.get("code"))
        .and_then(|c| c.as_u64());
    let message = json
        .as_ref()
        .and_then(|j| j.get("message"))
        .and_then(|m| m.as_str())
        .map(|m| crate::text::collapse_whitespace(m, 120));
    let detail = json
        .as_ref()
        .and_then(|j| j.get("errors"))
        .and_then(|e| first_form_error(e, String::new()))
        .map(|d| crate::text::collapse_whitespace(&d, 160));
    let message = match (message, detail) {
        (Some(m), Some(d)) => Some(format!("{m}; {d}")),
        (m, _) => m,
    };
    let reason = match (code, &message) {
        (Some(c), Some(m)) => format!("HTTP {status} (code {c}: {m})"),
        (Some(c), None) => format!("HTTP {status} (code {c})"),
        (None, Some(m)) => format!("HTTP {status} ({m})"),
        (None, None) => format!("HTTP {status}"),
    };
    match status {
        200..=299 => match json
            .as_ref()
            .and_then(|j| j.get("id"))
            .and_then(|i| i.as_str())
        {
            Some(id) if !id.is_empty() => Outcome::Delivered {
                message_id: id.to_string(),
            },
            // 204 or a body without id: Discord did not confirm a saved message (no wait=true?).
            _ => Outcome::Transient {
                reason: format!("HTTP {status} without a message id"),
            },
        },
        429 => rate_limited(headers, json.as_ref(), body),
        401 | 403 | 404 => Outcome::Dead { reason },
        _ if code.is_some_and(|c| DEAD_CODES.contains(&c)) => Outcome::Dead { reason },
        // 40333: Cloudflare refused our User-Agent; retrying cannot help until reconfigured.
        _ if code == Some(40333) => Outcome::Dead { reason },
        // A forum or media channel takes only posts (a thread name) or replies in a thread: no
        // message can go there until the sink is configured for it.
        _ if code == Some(FORUM) => Outcome::Dead {
            reason: format!(
                "{reason}: the channel is a forum or media channel: set forum = true on the \
                 sink (each mail becomes a post), or a thread_id to post into"
            ),
        },
        400 | 413 => Outcome::Rejected { reason },
        _ => Outcome::Transient { reason },
    }
}

/// The first leaf of a 50035 `errors` tree as `path: message` (`embeds.0.title: Must be 256 or
/// fewer in length.`): what the API actually refused.
fn first_form_error(tree: &serde_json::Value, path: String) -> Option<String> {
    let obj = tree.as_object()?;
    if let Some(first) = obj
        .get("_errors")
        .and_then(|e| e.as_array())
        .and_then(|a| a.first())
    {
        let message = first.get("message").and_then(|m| m.as_str()).unwrap_or("");
        let path = if path.is_empty() { "body" } else { &path };
        return Some(format!("{path}: {message}"));
    }
    obj.iter()
        .filter(|(k, _)| *k != "_errors")
        .find_map(|(k, v)| {
            let sub = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            first_form_error(v, sub)
        })
}

fn rate_limited(headers: &Headers, json: Option<&serde_json::Value>, body: &[u8]) -> Outcome {
    let from_body = json
        .and_then(|j| j.get("retry_after"))
        .and_then(|r| r.as_f64());
    let told = from_body
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| Duration::from_secs_f64(v.min(86_400.0)))
        .or_else(|| headers.retry_after.as_deref().and_then(seconds));
    let body_global = json.and_then(|j| j.get("global")).and_then(|g| g.as_bool()) == Some(true);
    let no_rate_headers =
        headers.limit.is_none() && headers.scope.is_none() && headers.remaining.is_none();
    let html_ban =
        String::from_utf8_lossy(&body[..body.len().min(4096)]).contains("error code: 1015");
    let json_ban =
        json.and_then(|j| j.get("code")).and_then(|c| c.as_u64()) == Some(0) && no_rate_headers;
    let scope = if html_ban || json_ban {
        Scope::Banned
    } else if body_global
        || headers.global.as_deref() == Some("true")
        || headers.scope.as_deref() == Some("global")
    {
        Scope::Global
    } else if headers.scope.as_deref() == Some("shared") {
        Scope::Shared
    } else {
        Scope::User
    };
    let retry_after = match (scope, told) {
        (_, Some(t)) => t,
        (Scope::Banned, None) => BAN_DEFAULT,
        (_, None) => Duration::from_secs(5),
    };
    Outcome::RateLimited { retry_after, scope }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> Headers {
        Headers {
            limit: Some("5".into()),
            remaining: Some("4".into()),
            ..Headers::default()
        }
    }

    #[test]
    fn success_needs_a_message_id() {
        assert_eq!(
            classify(200, &h(), br#"{"id":"123","channel_id":"9"}"#),
            Outcome::Delivered {
                message_id: "123".into()
            }
        );
        assert!(matches!(
            classify(204, &h(), b""),
            Outcome::Transient { .. }
        ));
    }

    #[test]
    fn gone_forbidden_and_unauthorised_are_dead() {
        for (status, body) in [
            (
                403,
                &br#"{"message":"Missing Permissions","code":50013}"#[..],
            ),
            (404, br#"{"message":"Unknown Webhook","code":10015}"#),
            (401, br#"{"message":"Invalid Webhook Token","code":50027}"#),
            (403, b"<html>forbidden</html>"),
            (400, br#"{"message":"Unknown Channel","code":10003}"#),
        ] {
            assert!(
                matches!(classify(status, &h(), body), Outcome::Dead { .. }),
                "{status}"
            );
        }
        let Outcome::Dead { reason } = classify(
            403,
            &h(),
            br#"{"message":"Missing Permissions","code":50013}"#,
        ) else {
            panic!()
        };
        assert_eq!(reason, "HTTP 403 (code 50013: Missing Permissions)");
    }

    #[test]
    fn refused_payloads_are_rejected_and_server_trouble_is_transient() {
        assert!(matches!(
            classify(
                400,
                &h(),
                br#"{"message":"Invalid Form Body","code":50035,"errors":{}}"#
            ),
            Outcome::Rejected { .. }
        ));
        assert!(matches!(classify(413, &h(), b""), Outcome::Rejected { .. }));
        for s in [500, 502, 503, 504, 408] {
            assert!(
                matches!(classify(s, &h(), b"oops"), Outcome::Transient { .. }),
                "{s}"
            );
        }
    }

    #[test]
    fn rate_limits_prefer_the_body_float_and_keep_their_scope() {
        let hdr = Headers {
            retry_after: Some("2".into()),
            scope: Some("shared".into()),
            limit: Some("5".into()),
            ..Headers::default()
        };
        assert_eq!(
            classify(
                429,
                &hdr,
                br#"{"message":"You are being rate limited.","retry_after":1.25,"global":false}"#
            ),
            Outcome::RateLimited {
                retry_after: Duration::from_millis(1250),
                scope: Scope::Shared
            }
        );
        let hdr = Headers {
            retry_after: Some("3".into()),
            limit: Some("5".into()),
            ..Headers::default()
        };
        assert_eq!(
            classify(429, &hdr, b"not json"),
            Outcome::RateLimited {
                retry_after: Duration::from_secs(3),
                scope: Scope::User
            }
        );
        assert!(matches!(
            classify(429, &h(), br#"{"retry_after":0.5,"global":true}"#),
            Outcome::RateLimited {
                scope: Scope::Global,
                ..
            }
        ));
    }

    #[test]
    fn a_cloudflare_ban_is_recognised() {
        assert!(matches!(
            classify(429, &Headers::default(), b"<html>error code: 1015</html>"),
            Outcome::RateLimited {
                scope: Scope::Banned,
                ..
            }
        ));
        let Outcome::RateLimited { scope, retry_after } = classify(
            429,
            &Headers::default(),
            br#"{"message":"x","retry_after":1,"code":0}"#,
        ) else {
            panic!()
        };
        assert_eq!(scope, Scope::Banned);
        assert_eq!(
            retry_after,
            Duration::from_secs(1),
            "Cloudflare's word is honoured"
        );
        let Outcome::RateLimited { retry_after, .. } =
            classify(429, &Headers::default(), b"error code: 1015")
        else {
            panic!()
        };
        assert_eq!(retry_after, BAN_DEFAULT, "without a word, ten minutes");
    }

    #[test]
    fn a_refused_form_names_the_field() {
        let Outcome::Rejected { reason } = classify(
            400,
            &h(),
            br#"{"message":"Invalid Form Body","code":50035,"errors":{"embeds":{"0":{"title":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"Must be 256 or fewer in length."}]}}}}}"#,
        ) else {
            panic!()
        };
        assert_eq!(
            reason,
            "HTTP 400 (code 50035: Invalid Form Body; embeds.0.title: Must be 256 or fewer in length.)"
        );
    }

    #[test]
    fn pacing_reads_bucket_remaining_and_reset() {
        let hdr = Headers {
            remaining: Some("0".into()),
            reset_after: Some("1.5".into()),
            bucket: Some("abc".into()),
            ..Headers::default()
        };
        assert_eq!(
            hdr.pace(),
            Pace {
                bucket: Some("abc".into()),
                remaining: Some(0),
                reset_after: Some(Duration::from_millis(1500)),
                channel: None,
            }
        );
        assert_eq!(h().pace().reset_after, None);
    }
}
