//! `auth = "oauth2"` and its `[account.oauth2]` table: which client asks for the grant, at which
//! endpoints, for which scopes, and where the grant is kept. A provider preset
//! (src/config/provider.rs) fills in everything but the client id; a custom provider names its
//! endpoints itself.

use super::provider::{Endpoints, OAuthPreset, Provider};
use super::raw::RawOAuth2;
use super::{is_loopback, ConfigError, Loader, Secret};
use std::path::{Path, PathBuf};

/// How `mailbeacon login` obtains the first grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Flow {
    /// RFC 8628: show a code, the user approves it on any device.
    Device { device_url: String },
    /// RFC 8252 installed-app flow with PKCE (RFC 7636) and a loopback redirect.
    Browser {
        authorize_url: String,
        redirect_port: u16,
        params: &'static [(&'static str, &'static str)],
    },
}

/// The SASL mechanism, when the config forces one instead of choosing from the capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    XOAuth2,
    OAuthBearer,
}

impl Mechanism {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct OAuth2 {
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<Secret>,
    pub(crate) token_url: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) flow: Flow,
    pub(crate) mechanism: Option<Mechanism>,
    /// `state_dir/oauth/ACCOUNT.json`: the refresh token and the current access token.
    pub(crate) grant_file: PathBuf,
    /// Who issues the tokens, for messages: "Microsoft", "Google" or the token URL's host.
    pub(crate) issuer: String,
}

/// Google's installed-app redirect port when the config names none; fixed, so that an SSH
/// port forward can be set up before the sign-in starts.
const REDIRECT_PORT: u16 = 8083;

impl Loader<'_> {
    pub(super) fn oauth2(
        &self,
        key: &dyn Fn(&str) -> String,
        account: &str,
        provider: Option<&Provider>,
        raw: RawOAuth2,
        state_dir: &Path,
    ) -> Result<OAuth2, ConfigError> {
        let preset = provider.and_then(|p| p.oauth);
        let client_id = raw
            .client_id
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| self.err(key("oauth2.client_id"), client_id_help(preset)))?;
        let endpoints = preset.map(|p| p.endpoints(raw.tenant.as_deref()));
        if raw.tenant.is_some() && !matches!(preset, Some(OAuthPreset::Microsoft { .. })) {
            return Err(self.err(
                key("oauth2.tenant"),
                "only Microsoft accounts (provider = \"outlook\" or \"office365\") have a tenant",
            ));
        }
        let token_url = self
            .url(
                key,
                "token_url",
            raw.token_url,
                endpoints.as_ref().map(|e| e.token_url.clone()),
            )?
            .ok_or_else(|| {
            self.err(
                key("oauth2.token_url"),
                "missing: a custom OAuth provider names its token_url (and device_url or authorize_url)",
            )
        })?;
        let flow = self.flow(
            key,
            raw.device_url,
            raw.authorize_url,
            raw.redirect_port,
            endpoints.as_ref(),
        )?;
        let scopes = raw
            .scopes
            .or_else(|| endpoints.as_ref().map(|e| e.scopes.clone()))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.err(key("oauth2.scopes"), "missing: list the scopes to ask for"))?;
        let client_secret = self.client_secret(
            key,
            raw.client_secret,
            raw.client_secret_file,
            raw.client_secret_credential,
        )?;
        let mechanism = self.mechanism(key, raw.mechanism.as_deref())?;
        let issuer = issuer(preset, &token_url);
        Ok(OAuth2 {
            client_id,
            client_secret,
            token_url,
            scopes,
            flow,
            mechanism,
            grant_file: grant_file(state_dir, account),
            issuer,
        })
    }

    /// Endpoint `name` as given, or the preset's; checked by `endpoint`.
    fn url(
        &self,
        key: &dyn Fn(&str) -> String,
        name: &str,
        given: Option<String>,
        preset: Option<String>,
    ) -> Result<Option<String>, ConfigError> {
        let Some(url) = given.or(preset) else {
            return Ok(None);
        };
        self.endpoint(&key(&format!("oauth2.{name}")), &url)
            .map(Some)
    }

    /// How the user signs in: the device flow when there is a `device_url`, else the browser
    /// flow with its `authorize_url`.
    fn flow(
        &self,
        key: &dyn Fn(&str) -> String,
        device_url: Option<String>,
        authorize_url: Option<String>,
        redirect_port: Option<u16>,
        endpoints: Option<&Endpoints>,
    ) -> Result<Flow, ConfigError> {
        let device_url = self.url(
            key,
            "device_url",
            device_url,
            endpoints.and_then(|e| e.device_url.clone()),
        )?;
        let authorize_url = self.url(
            key,
            "authorize_url",
            authorize_url,
            endpoints.and_then(|e| e.authorize_url.clone()),
        )?;
        match (device_url, authorize_url) {
            (Some(device_url), _) => Ok(Flow::Device { device_url }),
            (None, Some(authorize_url)) => Ok(Flow::Browser {
                authorize_url,
                redirect_port: redirect_port.unwrap_or(REDIRECT_PORT),
                params: endpoints.map_or(&[], |e| e.authorize_params),
            }),
            (None, None) => Err(self.err(
                key("oauth2.device_url"),
                "missing: set device_url (device code sign-in) or authorize_url (browser sign-in)",
            )),
        }
    }

    /// `mechanism`: the SASL mechanism, when the config names one.
    fn mechanism(
        &self,
        key: &dyn Fn(&str) -> String,
        text: Option<&str>,
    ) -> Result<Option<Mechanism>, ConfigError> {
        match text.map(str::to_ascii_lowercase).as_deref() {
            None => Ok(None),
            Some("xoauth2") => Ok(Some(Mechanism::XOAuth2)),
            Some("oauthbearer") => Ok(Some(Mechanism::OAuthBearer)),
            Some(other) => Err(self.err(
                key("oauth2.mechanism"),
                format!("{other:?} is not one of xoauth2, oauthbearer"),
            )),
        }
    }

    /// The client secret, when the config gives one in any of its three ways.
    fn client_secret(
        &self,
        key: &dyn Fn(&str) -> String,
        text: Option<String>,
        file: Option<PathBuf>,
        credential: Option<String>,
    ) -> Result<Option<Secret>, ConfigError> {
        if text.is_none() && file.is_none() && credential.is_none() {
            return Ok(None);
        }
        Ok(Some(self.secret(
            &key("oauth2.client_secret"),
            text,
            file,
            credential,
        )?))
    }

    /// An OAuth endpoint: `https://`, or `http://` to a loopback host (tests, local stand-ins).
    fn endpoint(&self, key: &str, url: &str) -> Result<String, ConfigError> {
        let rest = if let Some(rest) = url.strip_prefix("https://") {
            rest
        } else if let Some(rest) = url.strip_prefix("http://") {
            if !is_loopback(host_of(url)) {
                return Err(self.err(key, "must be https:// (http:// only to a loopback host)"));
            }
            rest
        } else {
            return Err(self.err(key, "must be an https:// URL"));
        };
        if rest.is_empty() || rest.starts_with('/') {
            return Err(self.err(key, "has no host"));
        }
        Ok(url.to_string())
    }
}

/// Who issues the tokens, for messages: the preset's company, or the token URL's host.
fn issuer(preset: Option<OAuthPreset>, token_url: &str) -> String {
    match preset {
        Some(OAuthPreset::Microsoft { .. }) => "Microsoft".to_string(),
        Some(OAuthPreset::Google) => "Google".to_string(),
        None => host_of(token_url).to_string(),
    }
}

fn client_id_help(preset: Option<OAuthPreset>) -> &'static str {
    match preset {
        Some(OAuthPreset::Microsoft { .. }) => {
            "missing: register an application (Microsoft Entra admin center → App registrations → \
             New registration; Authentication → Allow public client flows: Yes; API permissions → \
             Office 365 Exchange Online or Microsoft Graph → IMAP.AccessAsUser.All) and give its \
             Application (client) ID"
        }
        Some(OAuthPreset::Google) => {
            "missing: create an OAuth client of type \"Desktop app\" (Google Cloud console → APIs \
             & Services → Credentials) and give its client ID, with its client secret as \
             client_secret_file"
        }
        None => "missing: the OAuth client id registered with your provider",
    }
}

/// The host part of an `http(s)://` URL.
pub(crate) fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

/// Where the grant of `account` is kept: one file per account, its name safe whatever the
/// account is called.
fn grant_file(state_dir: &Path, account: &str) -> PathBuf {
    let mut name = String::with_capacity(account.len() + 5);
    for b in account.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    name.push_str(".json");
    state_dir.join("oauth").join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_files_cannot_leave_their_folder() {
        let dir = Path::new("/var/lib/mailbeacon");
        assert_eq!(
            grant_file(dir, "home"),
            Path::new("/var/lib/mailbeacon/oauth/home.json")
        );
        assert_eq!(
            grant_file(dir, "../x y"),
            Path::new("/var/lib/mailbeacon/oauth/%2E%2E%2Fx%20y.json")
        );
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            host_of("https://login.example.com/x/token"),
            "login.example.com"
        );
        assert_eq!(host_of("http://127.0.0.1:8080/token"), "127.0.0.1");
        assert_eq!(host_of("http://[::1]:80/t"), "::1");
        assert_eq!(host_of("https://u:p@h.example:1/"), "h.example");
    }
}
