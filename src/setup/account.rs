//! The mailbox step of `setup`: the provider or the server, the user, the password or the
//! OAuth sign-in — tested by a real login before the next question.

use super::ask::Failed;
use super::document::set;
use super::steps::{file_name, Steps};
use crate::config::provider::Provider;
use crate::config::{Account, Auth, AuthKind, OAuth2, Secret};
use toml_edit::{value, Item, Table};

const PROVIDERS: &[&str] = &[
    "gmail",
    "outlook",
    "office365",
    "icloud",
    "yahoo",
    "fastmail",
    "other",
];

impl Steps<'_> {
    /// The mailbox: provider or server, user, password or OAuth sign-in, tested by a login.
    pub(crate) fn account(&mut self) -> Result<String, Failed> {
        let f = self.flags.clone();
        let existing = self.doc.names("account").into_iter().next();
        let name = self.ask.text(
            "Account name",
            "--account",
            f.account.as_deref(),
            Some(existing.as_deref().unwrap_or("home")),
        )?;
        let mut attempt = 0;
        loop {
            let first = attempt == 0;
            attempt += 1;
            let provider = self.ask.choice(
                "Mail provider",
                "--provider",
                f.provider.as_deref(),
                PROVIDERS,
                "gmail",
            )?;
            let mut t = Table::new();
            t["name"] = value(name.as_str());
            let preset = crate::config::provider::find(&provider);
            match preset {
                Some(p) => {
                    t["provider"] = value(p.name);
                    self.ask.say(&format!(
                        "  {} at {}:993 (TLS); {}",
                        p.name, p.host, p.credential_hint
                    ));
                }
                None => self.server(&mut t)?,
            }
            let username = self.ask.text(
                "Mail address (the login's user name)",
                "--username",
                f.username.as_deref(),
                None,
            )?;
            t["username"] = value(username.as_str());
            let oauth = self.uses_oauth(preset, first)?;
            let secret = if oauth {
                t["auth"] = value("oauth2");
                t["oauth2"] = Item::Table(self.oauth2(preset.is_none())?);
                None
            } else {
                Some(self.password(&mut t, first)?)
            };
            let config = match self.probe_config(Some(&t), None, None) {
                Ok(c) => c,
                Err(e) => {
                    self.again("account", &e)?;
                    continue;
                }
            };
            let Some(account) = config.accounts.first() else {
                return Err("the account did not load".into());
            };
            if let Auth::OAuth2(o) = &account.auth {
                if !self.sign_in(&name, o)? {
                    continue;
                }
            }
            if !self.logs_in(&name, account)? {
                continue;
            }
            self.keep_account(&name, t, secret);
            return Ok(name);
        }
    }

    /// Whether the account signs in with OAuth: a preset that needs it does; another preset
    /// does when a client id was given (first attempt only); a server of its own is asked.
    fn uses_oauth(&mut self, preset: Option<&Provider>, first: bool) -> Result<bool, Failed> {
        let f = self.flags;
        Ok(match preset.map(|p| p.auth) {
            Some(AuthKind::OAuth2) => true,
            Some(_) => f.client_id.is_some() && first,
            None => {
                let default = if f.client_id.is_some() {
                    "oauth2"
                } else {
                    "password"
                };
                let auth = self.ask.choice(
                    "Login with",
                    "--auth",
                    f.auth.as_deref(),
                    &["password", "oauth2"],
                    default,
                )?;
                auth == "oauth2"
            }
        })
    }

    /// The password, written into `t`; `--password-file` answers the first attempt only.
    fn password(&mut self, t: &mut Table, first: bool) -> Result<Secret, Failed> {
        let file = if first {
            self.flags.password_file.clone()
        } else {
            None
        };
        let s = self.ask.secret(
            "Password (an app password where the provider needs one)",
            "--password-file",
            file.as_deref(),
        )?;
        t["password"] = value(s.expose());
        Ok(s)
    }

    /// Signs account `name` in and stores its grant. False when that failed and the user
    /// tries again.
    fn sign_in(&mut self, name: &str, o: &OAuth2) -> Result<bool, Failed> {
        let mut out = std::io::stdout();
        let input = Box::new(std::io::BufReader::new(std::io::stdin()));
        match crate::oauth::login::sign_in(name, o, &mut out, input) {
            Ok(grant) => {
                grant
                    .save(&o.grant_file)
                    .map_err(|e| format!("signed in, but {e}"))?;
                self.ask.say(&format!(
                    "ok   signed in; the grant is stored in {}",
                    o.grant_file.display()
                ));
                Ok(true)
            }
            Err(e) => {
                self.again("sign-in", &e)?;
                Ok(false)
            }
        }
    }

    /// Logs in to account `name` over IMAP and out again. False when that failed and the
    /// user tries again.
    fn logs_in(&mut self, name: &str, account: &Account) -> Result<bool, Failed> {
        let login =
            crate::imap::tls_config(account).and_then(|tls| crate::imap::login(account, &tls));
        match login {
            Ok(mut s) => {
                let _ = s.logout();
                self.ask.say(&format!(
                    "ok   imap {name}: logged in to {} as {}",
                    account.host, account.username
                ));
                Ok(true)
            }
            Err(e) => {
                self.again(&format!("imap {name}"), &e.to_string())?;
                Ok(false)
            }
        }
    }

    /// The `[account.oauth2]` keys: the client id, and for a provider without a preset its
    /// endpoints (the device flow: a headless board signs in on another device) and scopes.
    fn oauth2(&mut self, custom: bool) -> Result<Table, Failed> {
        let f = self.flags.clone();
        let mut o = Table::new();
        let id = self.ask.text(
            "OAuth client id (your app registration's; see docs/configuration.md)",
            "--client-id",
            f.client_id.as_deref(),
            None,
        )?;
        o["client_id"] = value(id);
        if custom {
            let device = self.ask.text(
                "Device authorization endpoint (https://…)",
                "--oauth-device-url",
                f.oauth_device_url.as_deref(),
                None,
            )?;
            let token = self.ask.text(
                "Token endpoint (https://…)",
                "--oauth-token-url",
                f.oauth_token_url.as_deref(),
                None,
            )?;
            let scopes = self.ask.text(
                "Scopes (comma list; include the one that grants a refresh token)",
                "--oauth-scopes",
                f.oauth_scopes.as_deref(),
                None,
            )?;
            let scopes: Vec<String> = scopes
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            o["device_url"] = value(device);
            o["token_url"] = value(token);
            o["scopes"] = value(super::document::strings(&scopes));
        }
        Ok(o)
    }

    /// Host, port, TLS and trust of a server without a preset.
    fn server(&mut self, t: &mut Table) -> Result<(), Failed> {
        let f = self.flags.clone();
        let host = self
            .ask
            .text("IMAP server", "--host", f.host.as_deref(), None)?;
        let tls = self.ask.choice(
            "TLS",
            "--tls",
            f.tls.as_deref(),
            &["implicit", "starttls"],
            "implicit",
        )?;
        let default_port = if tls == "implicit" { "993" } else { "143" };
        let port = self.ask.number(
            "Port",
            "--port",
            f.port.map(|p| p.to_string()).as_deref(),
            Some(default_port),
        )?;
        let ca = self.ask.text(
            "A certificate to trust for a self-signed server (a PEM file), or none",
            "--ca-file",
            f.ca_file.as_deref(),
            Some("none"),
        )?;
        t["host"] = value(host);
        t["port"] = value(i64::from(port));
        t["tls"] = value(tls);
        if ca != "none" {
            t["ca_file"] = value(ca);
        }
        Ok(())
    }

    /// The tested account into the config: its keys replaced, the password moved to a file.
    fn keep_account(&mut self, name: &str, tested: Table, secret: Option<Secret>) {
        let file = self.dir.join(format!("{}.pass", file_name(name)));
        let target = self.doc.named("account", name);
        for key in ["provider", "host", "port", "tls", "ca_file", "auth"] {
            target.remove(key);
        }
        for (key, item) in tested.iter() {
            if key == "password" || key == "name" || key == "oauth2" {
                continue;
            }
            target[key] = item.clone();
        }
        match secret {
            Some(s) => {
                set(
                    target,
                    "password_file",
                    file.display().to_string(),
                    &["password", "credential", "oauth2"],
                );
                self.plan.secrets.push((file, s.expose().to_string()));
            }
            None => {
                for k in ["password", "password_file", "credential"] {
                    target.remove(k);
                }
                if let Some(o) = tested.get("oauth2").and_then(|o| o.as_table()) {
                    if !target.get("oauth2").is_some_and(|i| i.is_table()) {
                        target["oauth2"] = Item::Table(Table::new());
                    }
                    if let Some(mine) = target["oauth2"].as_table_mut() {
                        for (k, v) in o.iter() {
                            mine[k] = v.clone();
                        }
                    }
                }
            }
        }
    }
}
