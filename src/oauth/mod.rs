//! OAuth 2.0 logins to IMAP (Microsoft, Google, or any provider with a token endpoint).
//!
//! `mailbeacon login ACCOUNT` ([`login`]) obtains the first grant interactively and stores it in
//! `state_dir/oauth/` ([`grant`]). From then on the daemon needs no person: before every login
//! it takes the stored access token, refreshing it at the token endpoint ([`token`]) when it is
//! within [`MARGIN`] of its expiry or when the server has just refused it, and logs in with
//! SASL XOAUTH2 or OAUTHBEARER ([`sasl`]). A refreshed grant — with Microsoft, a new refresh
//! token each time — is on disk before the new access token is used, so a power cut between the
//! two never leaves a used-up refresh token as the only copy.
//!
//! A grant the provider refuses (revoked, expired, password changed) is an authentication
//! failure like a refused password: `auth_failed`, the LED's dead pattern, a message naming the
//! remedy, and the watcher's backoff for refused logins (at least a minute, doubling), so the
//! token endpoint is never hammered.

pub(crate) mod grant;
pub(crate) mod login;
pub(crate) mod sasl;
pub(crate) mod token;

use crate::config::{OAuth2, Secret};
use grant::Grant;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use token::TokenError;

/// An access token this close to its expiry is refreshed before a login: a login must not
/// race the expiry, and a long IDLE session needs no token once logged in.
const MARGIN: i64 = 300;

/// How long one request to the token endpoint may take.
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OAuthError {
    /// Nobody has signed in for this account yet.
    #[error("no OAuth grant is stored for account {account} ({path})")]
    NoGrant { account: String, path: PathBuf },
    /// The provider refused the stored grant (`invalid_grant` and friends): a person must sign
    /// in again.
    #[error("{issuer} refused the stored OAuth grant of account {account} ({reason})")]
    Refused {
        account: String,
        issuer: String,
        reason: String,
    },
    /// The token endpoint could not be asked: tried again with the next login.
    #[error("OAuth token endpoint: {0}")]
    Unreachable(String),
    /// The grant file cannot be read or written.
    #[error("OAuth grant: {0}")]
    Storage(String),
}

impl OAuthError {
    /// The one thing the user has to do, for errors that need a person.
    pub(crate) fn remedy(&self) -> Option<String> {
        match self {
            OAuthError::NoGrant { account, .. } | OAuthError::Refused { account, .. } => Some(
                format!("run `mailbeacon login {account}` (as the service's user, or with sudo)"),
            ),
            _ => None,
        }
    }
}

/// An access token, and whether it was refreshed just now (a refused fresh token is final).
pub(crate) struct Access {
    pub(crate) token: Secret,
    pub(crate) fresh: bool,
}

/// The access token for `account`: the stored one while it has more than [`MARGIN`] to live and
/// `force` is false, else a refreshed one (the new grant made durable first). Concurrent
/// watchers of one account take turns, so one refresh serves them all.
pub(crate) fn access_token(account: &str, o: &OAuth2, force: bool) -> Result<Access, OAuthError> {
    let lock = lock_for(&o.grant_file);
    let _turn = lock.lock().unwrap_or_else(|p| p.into_inner());
    let grant = Grant::load(&o.grant_file)
        .map_err(OAuthError::Storage)?
        .ok_or_else(|| OAuthError::NoGrant {
            account: account.to_string(),
            path: o.grant_file.clone(),
        })?;
    let now = chrono::Utc::now().timestamp();
    if !force && grant.expires_at - now > MARGIN {
        return Ok(Access {
            token: grant.access_token,
            fresh: false,
        });
    }
    let renewed = refresh(o, &grant).map_err(|e| match e {
        TokenError::Refused { .. } => OAuthError::Refused {
            account: account.to_string(),
            issuer: o.issuer.clone(),
            reason: e.to_string(),
        },
        TokenError::Unreachable(why) => OAuthError::Unreachable(why),
    })?;
    renewed.save(&o.grant_file).map_err(OAuthError::Storage)?;
    log::info!(
        "oauth {account}: access token renewed at {}, valid for {} s",
        o.issuer,
        renewed.expires_at - now
    );
    Ok(Access {
        token: renewed.access_token,
        fresh: true,
    })
}

/// One refresh-token grant (RFC 6749 section 6).
fn refresh(o: &OAuth2, grant: &Grant) -> Result<Grant, TokenError> {
    let scope = o.scopes.join(" ");
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", grant.refresh_token.expose()),
        ("client_id", o.client_id.as_str()),
        ("scope", scope.as_str()),
    ];
    if let Some(secret) = &o.client_secret {
        form.push(("client_secret", secret.expose()));
    }
    let tokens = token::request(&o.token_url, &form, TIMEOUT)?;
    Ok(granted(tokens, Some(&grant.refresh_token)))
}

/// The grant a token answer makes; `previous` is kept when the provider sent no new refresh
/// token.
fn granted(t: token::Tokens, previous: Option<&Secret>) -> Grant {
    let lifetime = t.expires_in.unwrap_or(3600).min(i64::MAX as u64 / 2) as i64;
    Grant {
        refresh_token: t
            .refresh_token
            .or_else(|| previous.cloned())
            .unwrap_or_else(|| Secret::new("")),
        access_token: t.access_token,
        expires_at: chrono::Utc::now().timestamp() + lifetime,
    }
}

/// One lock per grant file, shared by every watcher of the account in this process.
fn lock_for(path: &std::path::Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut map = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.entry(path.to_path_buf()).or_default().clone()
}
