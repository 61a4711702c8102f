//! Provider presets: `provider = "gmail"` fills in what every user of that service would type
//! (host, port, TLS, how to log in, and the OAuth endpoints) so that a config names only the
//! account. Keys written in the config still win. The facts come from each provider's
//! documentation of IMAP access as of 2026: Microsoft accepts only OAuth 2.0 (passwords ended
//! for Microsoft 365 in 2022, for Outlook.com in September 2024); Gmail, iCloud, Yahoo and
//! Fastmail take an app password.

use super::account::AuthKind;

/// One provider's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Provider {
    pub(crate) name: &'static str,
    pub(crate) host: &'static str,
    pub(crate) auth: AuthKind,
    pub(crate) oauth: Option<OAuthPreset>,
    /// What the user must get before the first login, for errors and `check`.
    pub(crate) credential_hint: &'static str,
    /// The webmail's link to one mail, when it has one (see src/discord/render/link.rs).
    pub(crate) open_url: Option<&'static str>,
}

/// Whose OAuth 2.0 endpoints an account uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OAuthPreset {
    /// Microsoft identity platform; the tenant is `common`, `consumers` or the directory's id.
    Microsoft {
        tenant: &'static str,
    },
    Google,
}

pub(crate) const PROVIDERS: &[Provider] = &[
    Provider {
        name: "gmail",
        host: "imap.gmail.com",
        auth: AuthKind::Password,
        oauth: Some(OAuthPreset::Google),
        credential_hint: "Gmail needs an app password (Google Account → Security → 2-Step \
            Verification on → App passwords), or auth = \"oauth2\" with your own OAuth client",
        open_url: Some("https://mail.google.com/mail/u/0/#search/rfc822msgid:{message_id}"),
    },
    Provider {
        name: "outlook",
        host: "outlook.office365.com",
        auth: AuthKind::OAuth2,
        oauth: Some(OAuthPreset::Microsoft {
            tenant: "consumers",
        }),
        credential_hint: "Outlook.com accepts only OAuth 2.0 over IMAP: run `mailbeacon login`",
        open_url: None,
    },
    Provider {
        name: "office365",
        host: "outlook.office365.com",
        auth: AuthKind::OAuth2,
        oauth: Some(OAuthPreset::Microsoft { tenant: "common" }),
        credential_hint: "Microsoft 365 accepts only OAuth 2.0 over IMAP: run `mailbeacon login`",
        open_url: None,
    },
    Provider {
        name: "icloud",
        host: "imap.mail.me.com",
        auth: AuthKind::Password,
        oauth: None,
        credential_hint: "iCloud needs an app-specific password (account.apple.com → Sign-In \
            and Security → App-Specific Passwords)",
        open_url: None,
    },
    Provider {
        name: "yahoo",
        host: "imap.mail.yahoo.com",
        auth: AuthKind::Password,
        oauth: None,
        credential_hint: "Yahoo needs an app password (Account Security → Generate app password)",
        open_url: None,
    },
    Provider {
        name: "fastmail",
        host: "imap.fastmail.com",
        auth: AuthKind::Password,
        oauth: None,
        credential_hint: "Fastmail needs an app password (Settings → Privacy & Security → \
            Manage app passwords, with IMAP access)",
        open_url: None,
    },
];

pub(crate) fn find(name: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.name == name)
}

pub(crate) fn names() -> String {
    PROVIDERS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// OAuth endpoints and scopes a preset fills in.
pub(crate) struct Endpoints {
    pub(crate) device_url: Option<String>,
    pub(crate) authorize_url: Option<String>,
    pub(crate) token_url: String,
    pub(crate) scopes: Vec<String>,
    /// Added to the authorization URL (Google returns a refresh token only with these).
    pub(crate) authorize_params: &'static [(&'static str, &'static str)],
}

impl OAuthPreset {
    /// The endpoints, for `tenant` when the config names one.
    pub(crate) fn endpoints(self, tenant: Option<&str>) -> Endpoints {
        match self {
            OAuthPreset::Microsoft { tenant: default } => {
                let base = format!(
                    "https://login.microsoftonline.com/{}/oauth2/v2.0",
                    tenant.unwrap_or(default)
                );
                Endpoints {
                    // RFC 8628's device authorization grant: Microsoft supports it for IMAP.
                    device_url: Some(format!("{base}/devicecode")),
                    authorize_url: Some(format!("{base}/authorize")),
                    token_url: format!("{base}/token"),
                    scopes: vec![
                        "offline_access".into(),
                        "https://outlook.office.com/IMAP.AccessAsUser.All".into(),
                    ],
                    authorize_params: &[],
                }
            }
            // Google refuses mail scopes in the device flow: the installed-app flow it is.
            OAuthPreset::Google => Endpoints {
                device_url: None,
                authorize_url: Some("https://accounts.google.com/o/oauth2/v2/auth".into()),
                token_url: "https://oauth2.googleapis.com/token".into(),
                scopes: vec!["https://mail.google.com/".into()],
                authorize_params: &[("access_type", "offline"), ("prompt", "consent")],
            },
        }
    }
}
