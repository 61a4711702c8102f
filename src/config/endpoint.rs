//! Discord endpoints from the config: `https://` only (plain `http://` to a loopback host for
//! tests and local stand-ins), and any `…/api/webhooks/ID/TOKEN` normalised to
//! `…/api/v10/webhooks/ID/TOKEN` whatever the host, because copied webhook URLs carry no API
//! version and would hit an old default.

use super::Secret;
use std::fmt;

/// A parsed webhook: the token stays a [`Secret`]; `Display` shows `…/webhooks/ID/[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    /// `scheme://host[:port]` plus any path before `/api`.
    pub(crate) origin: String,
    pub(crate) id: String,
    pub(crate) token: Secret,
}

impl WebhookUrl {
    /// Parses and normalises a webhook URL; the error never contains the token.
    pub fn parse(raw: &str) -> Result<WebhookUrl, String> {
        let raw = raw.trim();
        let (origin, path) = split_origin(raw)?;
        let path = path.split(['?', '#']).next().unwrap_or("");
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let Some(at) = segments.iter().position(|s| *s == "webhooks") else {
            return Err(format!(
                "{origin}/…: not a webhook URL (expected …/api/webhooks/ID/TOKEN)"
            ));
        };
        let (Some(id), Some(token)) = (segments.get(at + 1), segments.get(at + 2)) else {
            return Err(format!(
                "{origin}/…: webhook URL lacks the ID/TOKEN part (expected …/api/webhooks/ID/TOKEN)"
            ));
        };
        if !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("{origin}/…: webhook id must be numeric"));
        }
        if token.is_empty()
            || !token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "{origin}/…/webhooks/{id}/…: malformed webhook token"
            ));
        }
        // Everything before `api` stays (a reverse proxy may live under a prefix).
        let prefix_end = segments[..at]
            .iter()
            .position(|s| *s == "api")
            .unwrap_or(at);
        let prefix: String = segments[..prefix_end]
            .iter()
            .map(|s| format!("/{s}"))
            .collect();
        Ok(WebhookUrl {
            origin: format!("{origin}{prefix}"),
            id: id.to_string(),
            token: Secret::new(*token),
        })
    }

    /// Stands in for a URL kept in a file that was deliberately not read (see
    /// `Config::load_without_secrets`); never used to send.
    pub(crate) fn unread() -> WebhookUrl {
        WebhookUrl {
            origin: "(not read)".into(),
            id: "0".into(),
            token: Secret::new(""),
        }
    }

    /// The normalised URL with the token, for the request line only.
    pub(crate) fn expose(&self) -> String {
        format!(
            "{}/api/v10/webhooks/{}/{}",
            self.origin,
            self.id,
            self.token.expose()
        )
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/api/v10/webhooks/{}/[redacted]", self.origin, self.id)
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Checks an API base such as `https://discord.com/api/v10` and returns it without a trailing `/`.
pub(crate) fn api_base(raw: &str) -> Result<String, String> {
    let (origin, path) = split_origin(raw.trim())?;
    Ok(format!("{origin}{}", path.trim_end_matches('/')))
}

/// Splits `scheme://authority` from the path and enforces the https-or-loopback rule.
fn split_origin(raw: &str) -> Result<(String, &str), String> {
    let (scheme, rest) = raw
        .split_once("://")
        .ok_or_else(|| "not a URL: expected https://…".to_string())?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority.is_empty() || authority.contains('@') {
        return Err("URL needs a host and no user:password part".into());
    }
    let origin = format!("{scheme}://{authority}");
    match scheme {
        "https" => {}
        "http" if is_loopback(host_of(authority)) => {}
        "http" => {
            return Err(format!(
                "{origin}: plain http is allowed only to a loopback host; use https://"
            ))
        }
        other => return Err(format!("unsupported URL scheme {other:?}; use https://")),
    }
    Ok((origin, &rest[authority_end..]))
}

fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// Loopback hosts: `localhost`, `127.0.0.0/8`, `::1`.
pub(crate) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copied_webhook_urls_get_the_api_version() {
        let w = WebhookUrl::parse("https://discord.com/api/webhooks/123/abc-DEF_9").unwrap();
        assert_eq!(
            w.expose(),
            "https://discord.com/api/v10/webhooks/123/abc-DEF_9"
        );
        let w = WebhookUrl::parse("https://discord.com/api/v9/webhooks/123/tok?wait=true").unwrap();
        assert_eq!(w.expose(), "https://discord.com/api/v10/webhooks/123/tok");
        let w = WebhookUrl::parse("http://127.0.0.1:8080/api/webhooks/1/t").unwrap();
        assert_eq!(w.expose(), "http://127.0.0.1:8080/api/v10/webhooks/1/t");
    }

    #[test]
    fn display_and_errors_hide_the_token() {
        let w = WebhookUrl::parse("https://discord.com/api/webhooks/123/s3cretTOKEN").unwrap();
        assert!(!format!("{w} {w:?}").contains("s3cret"));
        let e = WebhookUrl::parse("http://example.net/api/webhooks/1/s3cretTOKEN").unwrap_err();
        assert!(e.contains("loopback") && !e.contains("s3cret"), "{e}");
        let e = WebhookUrl::parse("https://discord.com/api/webhooks/x1/s3cretTOKEN").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn loopback_rule() {
        assert!(is_loopback("localhost") && is_loopback("127.0.0.9") && is_loopback("::1"));
        assert!(!is_loopback("192.168.1.2") && !is_loopback("discord.com"));
        assert!(api_base("http://[::1]:9/api/v10/").is_ok());
        assert!(api_base("http://10.0.0.1/api").is_err());
        assert!(api_base("ftp://x").is_err());
    }
}
