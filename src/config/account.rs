//! An `[[account]]`: one IMAP server and login, validated — a provider preset's defaults, TLS
//! (plaintext only to a loopback host), password or OAuth 2.0, folders, IDLE renewal within RFC
//! 2177's 29 minutes, and where a new mailbox starts.

use super::oauth2::OAuth2;
use super::provider::{self, Provider};
use super::raw::RawAccount;
use super::{is_loopback, ConfigError, Fingerprint, Loader, Secret};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tls {
    Implicit,
    Starttls,
    /// Plaintext, accepted only to a loopback host (tests and local stand-ins).
    None,
}

/// How an account logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthKind {
    Password,
    OAuth2,
}

/// How an account logs in, with what it needs.
#[derive(Debug, Clone)]
pub(crate) enum Auth {
    /// `LOGIN` with [`Account::password`].
    Password,
    /// SASL XOAUTH2 or OAUTHBEARER with an access token from the stored grant.
    OAuth2(Box<OAuth2>),
}

#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    /// The preset this account was filled in from, if any.
    pub(crate) provider: Option<&'static Provider>,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: Tls,
    pub(crate) username: String,
    /// Empty with OAuth 2.0.
    pub(crate) password: Secret,
    pub(crate) auth: Auth,
    /// A CA, or the server's own certificate (trusted even when it is a CA certificate).
    pub(crate) ca_file: Option<PathBuf>,
    /// The one certificate trusted for this account, whatever its issuer (replaces `ca_file`).
    pub(crate) tls_fingerprint: Option<Fingerprint>,
    /// The link back to a mail (`{message_id}`, `{uid}`, `{folder}`, `{account}`), from the
    /// config or the provider preset: the embed's URL.
    pub(crate) open_url: Option<String>,
    pub(crate) folders: Vec<String>,
    pub idle: bool,
    /// How long one IDLE command may run before it is renewed (RFC 2177: under 29 minutes).
    pub(crate) idle_renew: Duration,
    /// The reconciliation poll: runs on this schedule even while idling.
    pub poll_interval: Duration,
    pub(crate) timeout: Duration,
    /// Where a mailbox seen for the first time starts.
    pub(crate) start_at: StartAt,
    /// With `start_at = "unseen" | "all"`: only mail received within this window.
    pub(crate) backfill: Option<Duration>,
}

/// The first run of a mailbox: only mail that arrives from now on (the default), mail not yet
/// marked `\Seen`, or everything already there. `backfill` narrows the last two by age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartAt {
    Now,
    Unseen,
    All,
}

impl Loader<'_> {
    pub(super) fn account(
        &self,
        i: usize,
        mut a: RawAccount,
        state_dir: &Path,
    ) -> Result<Account, ConfigError> {
        let name = a.name.clone();
        let key = |k: &str| format!("account[{i}] ({name}).{k}");
        if a.name.trim().is_empty() {
            return Err(self.err(format!("account[{i}].name"), "must not be empty"));
        }
        let provider = self.provider(&key, a.provider.as_deref())?;
        let host = a
            .host
            .take()
            .or_else(|| provider.map(|p| p.host.to_string()))
            .filter(|h| !h.trim().is_empty())
            .ok_or_else(|| self.err(key("host"), "missing: set host, or a provider preset"))?;
        let tls = self.tls(&key, a.tls.as_deref(), &host)?;
        let (auth, password) = self.login(&key, &mut a, provider, state_dir)?;
        if let Some(ca) = &a.ca_file {
            std::fs::metadata(ca)
                .map_err(|e| self.err(key("ca_file"), format!("{}: {e}", ca.display())))?;
        }
        let tls_fingerprint =
            self.tls_fingerprint(&key, a.tls_fingerprint.as_deref(), a.ca_file.is_some(), tls)?;
        let open_url = self.open_url(&key, a.open_url.take(), provider)?;
        let folders = self.folders(&key, a.folders)?;
        let idle_renew = self.idle_renew(&key, a.idle_renew.as_deref())?;
        let start_at = self.start_at(&key, a.start_at.as_deref())?;
        let backfill = self.backfill(&key, a.backfill.as_deref(), start_at)?;
        Ok(Account {
            provider,
            auth,
            port: a.port.unwrap_or(match tls {
                Tls::Implicit => 993,
                Tls::Starttls | Tls::None => 143,
            }),
            tls,
            username: a.username,
            password,
            ca_file: a.ca_file,
            tls_fingerprint,
            open_url,
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
            host,
            name: a.name,
        })
    }

    /// The provider preset named, if any.
    fn provider(
        &self,
        key: &dyn Fn(&str) -> String,
        name: Option<&str>,
    ) -> Result<Option<&'static Provider>, ConfigError> {
        match name {
            None => Ok(None),
            Some(p) => Ok(Some(provider::find(p).ok_or_else(|| {
                self.err(
                    key("provider"),
                    format!("{p:?} is not one of {}", provider::names()),
                )
            })?)),
        }
    }

    /// `tls`: implicit unless given; none only to a loopback `host`.
    fn tls(
        &self,
        key: &dyn Fn(&str) -> String,
        text: Option<&str>,
        host: &str,
    ) -> Result<Tls, ConfigError> {
        match text.unwrap_or("implicit") {
            "implicit" => Ok(Tls::Implicit),
            "starttls" => Ok(Tls::Starttls),
            "none" if is_loopback(host) => Ok(Tls::None),
            "none" => Err(self.err(key("tls"), "plaintext IMAP is allowed only to a loopback host; use \"implicit\" or \"starttls\"")),
            other => Err(self.err(key("tls"), format!("{other:?} is not one of implicit, starttls"))),
        }
    }

    /// `open_url`, or the preset's; none when empty. A link Discord would refuse is an error.
    fn open_url(
        &self,
        key: &dyn Fn(&str) -> String,
        given: Option<String>,
        provider: Option<&'static Provider>,
    ) -> Result<Option<String>, ConfigError> {
        let open_url = given
            .or_else(|| provider.and_then(|p| p.open_url).map(str::to_string))
            .filter(|u| !u.is_empty());
        if let Some(why) = open_url
            .as_deref()
            .and_then(crate::discord::render::link::invalid)
        {
            return Err(self.err(key("open_url"), why));
        }
        Ok(open_url)
    }

    /// `folders`: INBOX unless given; at least one, none empty.
    fn folders(
        &self,
        key: &dyn Fn(&str) -> String,
        given: Option<Vec<String>>,
    ) -> Result<Vec<String>, ConfigError> {
        let folders = given.unwrap_or_else(|| vec!["INBOX".to_string()]);
        if folders.is_empty() || folders.iter().any(|f| f.trim().is_empty()) {
            return Err(self.err(key("folders"), "list at least one folder, none empty"));
        }
        Ok(folders)
    }

    /// `idle_renew`: 5m unless given, between 10s and 29m.
    fn idle_renew(
        &self,
        key: &dyn Fn(&str) -> String,
        text: Option<&str>,
    ) -> Result<Duration, ConfigError> {
        let idle_renew = self.duration(&key("idle_renew"), text, "5m")?;
        if idle_renew < Duration::from_secs(10) || idle_renew > Duration::from_secs(29 * 60) {
            return Err(self.err(
                key("idle_renew"),
                "must be between 10s and 29m (RFC 2177: renew IDLE at least every 29 minutes)",
            ));
        }
        Ok(idle_renew)
    }

    /// `start_at`: now unless given.
    fn start_at(
        &self,
        key: &dyn Fn(&str) -> String,
        text: Option<&str>,
    ) -> Result<StartAt, ConfigError> {
        match text.unwrap_or("now") {
            "now" => Ok(StartAt::Now),
            "unseen" => Ok(StartAt::Unseen),
            "all" => Ok(StartAt::All),
            other => Err(self.err(
                key("start_at"),
                format!("{other:?} is not one of now, unseen, all"),
            )),
        }
    }

    /// `backfill`: only with a `start_at` other than now.
    fn backfill(
        &self,
        key: &dyn Fn(&str) -> String,
        text: Option<&str>,
        start_at: StartAt,
    ) -> Result<Option<Duration>, ConfigError> {
        match text {
            None => Ok(None),
            Some(_) if start_at == StartAt::Now => Err(self.err(
                key("backfill"),
                "has no effect with start_at = \"now\"; set start_at = \"unseen\" or \"all\"",
            )),
            Some(b) => Ok(Some(self.duration(&key("backfill"), Some(b), "0s")?)),
        }
    }

    /// `auth` (the preset's kind unless given) and what it needs: a password, or an
    /// `[account.oauth2]` table (a preset's defaults apply even when the table is left out).
    fn login(
        &self,
        key: &dyn Fn(&str) -> String,
        a: &mut RawAccount,
        provider: Option<&'static Provider>,
        state_dir: &Path,
    ) -> Result<(Auth, Secret), ConfigError> {
        let kind = match a.auth.as_deref() {
            None => provider.map_or(AuthKind::Password, |p| p.auth),
            Some("password") => AuthKind::Password,
            Some("oauth2") => AuthKind::OAuth2,
            Some(other) => {
                return Err(self.err(
                    key("auth"),
                    format!("{other:?} is not one of password, oauth2"),
                ))
            }
        };
        match kind {
            AuthKind::Password => {
                if a.oauth2.is_some() {
                    return Err(self.err(key("oauth2"), "is used only with auth = \"oauth2\""));
                }
                let password = self
                    .secret(
                        &key("password"),
                        a.password.take(),
                        a.password_file.take(),
                        a.credential.take(),
                    )
                    .map_err(|mut e| {
                        if let Some(p) = provider {
                            e.reason = format!("{} ({})", e.reason, p.credential_hint);
                        }
                        e
                    })?;
                Ok((Auth::Password, password))
            }
            AuthKind::OAuth2 => {
                if a.password.is_some() || a.password_file.is_some() || a.credential.is_some() {
                    return Err(self.err(
                        key("password"),
                        "is not used with auth = \"oauth2\" (the login uses the grant that `mailbeacon login` stores)",
                    ));
                }
                let raw = a.oauth2.take().unwrap_or_default();
                let oauth = self.oauth2(key, &a.name, provider, raw, state_dir)?;
                Ok((Auth::OAuth2(Box::new(oauth)), Secret::new("")))
            }
        }
    }

    /// A pin replaces every other trust, so a `ca_file` beside it would be silently unused.
    fn tls_fingerprint(
        &self,
        key: &dyn Fn(&str) -> String,
        text: Option<&str>,
        with_ca_file: bool,
        tls: Tls,
    ) -> Result<Option<Fingerprint>, ConfigError> {
        let Some(text) = text else {
            return Ok(None);
        };
        if tls == Tls::None {
            return Err(self.err(key("tls_fingerprint"), "has no effect without TLS"));
        }
        if with_ca_file {
            return Err(self.err(
                key("tls_fingerprint"),
                "pins the server's certificate, so ca_file would not be used: keep one of them",
            ));
        }
        Fingerprint::parse(text)
            .map(Some)
            .map_err(|reason| self.err(key("tls_fingerprint"), reason))
    }
}
