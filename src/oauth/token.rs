//! The token endpoint (RFC 6749 section 3.2): a form POST answered with JSON, either tokens or an
//! error code. Shared by the refresh before a login, the device flow's polling and the browser
//! flow's code exchange. Answers are classified, never collapsed: an OAuth error code the user
//! must act on (`invalid_grant`: sign in again) is kept apart from trouble that passes by itself
//! (network, timeouts, 5xx).

use crate::config::Secret;
use serde::Deserialize;
use std::time::Duration;

/// Why the endpoint gave no tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// An OAuth error answer (RFC 6749 5.2; RFC 8628 3.5 adds `authorization_pending`,
    /// `slow_down`, `expired_token`, `access_denied`).
    Refused { code: String, description: String },
    /// No usable answer: network, timeout, a 5xx, a body that is not an OAuth answer.
    Unreachable(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Refused { code, description } if description.is_empty() => {
                f.write_str(code)
            }
            TokenError::Refused { code, description } => write!(f, "{code}: {description}"),
            TokenError::Unreachable(why) => f.write_str(why),
        }
    }
}

/// What a successful answer carries.
pub(crate) struct Tokens {
    pub(crate) access_token: Secret,
    /// Absent when the provider keeps the old one (Google); Microsoft sends a new one each time.
    pub(crate) refresh_token: Option<Secret>,
    pub(crate) expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct Answer {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
    error_description: Option<String>,
}

const USER_AGENT: &str = concat!("mailbeacon/", env!("CARGO_PKG_VERSION"));

/// POSTs `form` to `url` and reads the JSON answer, whatever its status.
pub(crate) fn post(
    url: &str,
    form: &[(&str, &str)],
    timeout: Duration,
) -> Result<serde_json::Value, TokenError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        // OAuth errors come as 400/401 with a JSON body that says which: read it.
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .user_agent(USER_AGENT)
        .build()
        .into();
    let scrub = |text: String| scrub(form, text);
    let mut response = agent
        .post(url)
        .header("Accept", "application/json")
        .send_form(form.iter().copied())
        .map_err(|e| TokenError::Unreachable(scrub(format!("{url}: {e}"))))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .map_err(|e| TokenError::Unreachable(scrub(format!("{url}: {e}"))))?;
    let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    match json {
        Some(v) if v.get("error").is_some() && status < 500 => Ok(v),
        Some(v) if (200..300).contains(&status) => Ok(v),
        _ => Err(TokenError::Unreachable(format!(
            "{url} answered HTTP {status} without an OAuth answer"
        ))),
    }
}

/// `text` with every secret the request carried replaced: error texts, ours or the provider's,
/// must not echo a refresh token, a code or the client's secret.
fn scrub(form: &[(&str, &str)], text: String) -> String {
    form.iter()
        .filter(|(k, v)| {
            !v.is_empty()
                && matches!(
                    *k,
                    "refresh_token" | "client_secret" | "code" | "device_code" | "code_verifier"
                )
        })
        .fold(text, |t, (_, v)| t.replace(v, "[redacted]"))
}

/// A token request: tokens, or the error the endpoint named.
pub(crate) fn request(
    url: &str,
    form: &[(&str, &str)],
    timeout: Duration,
) -> Result<Tokens, TokenError> {
    let value = post(url, form, timeout)?;
    let answer: Answer = serde_json::from_value(value).map_err(|_| {
        TokenError::Unreachable(format!("{url} sent an answer that is not OAuth's"))
    })?;
    if let Some(code) = answer.error {
        // Error texts are the provider's, meant for people; cap what reaches a log line.
        let description = answer.error_description.unwrap_or_default();
        return Err(TokenError::Refused {
            description: scrub(
                form,
                crate::text::truncate_chars(&description, 300).to_string(),
            ),
            code: scrub(form, crate::text::truncate_chars(&code, 60).to_string()),
        });
    }
    let access_token = answer
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| TokenError::Unreachable(format!("{url} sent no access_token")))?;
    Ok(Tokens {
        access_token: Secret::new(access_token),
        refresh_token: answer
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(Secret::new),
        expires_in: answer.expires_in.as_ref().and_then(seconds),
    })
}

/// `expires_in` as a number, or as a string of digits (some providers send that).
fn seconds(v: &serde_json::Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_read_as_a_number_or_a_string() {
        assert_eq!(seconds(&serde_json::json!(3599)), Some(3599));
        assert_eq!(seconds(&serde_json::json!("3599")), Some(3599));
        assert_eq!(seconds(&serde_json::json!("soon")), None);
    }

    #[test]
    fn a_provider_echoing_a_secret_is_scrubbed() {
        let form = [
            ("refresh_token", "RT-123"),
            ("client_id", "me"),
            ("client_secret", ""),
        ];
        assert_eq!(
            scrub(&form, "bad token RT-123 for me".into()),
            "bad token [redacted] for me"
        );
    }

    #[test]
    fn a_refusal_reads_as_its_code() {
        let e = TokenError::Refused {
            code: "invalid_grant".into(),
            description: "AADSTS70008: expired".into(),
        };
        assert_eq!(e.to_string(), "invalid_grant: AADSTS70008: expired");
    }
}
