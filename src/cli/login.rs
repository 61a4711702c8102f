//! `mailbeacon login ACCOUNT`: the interactive OAuth 2.0 sign-in of one account (see
//! src/oauth/login.rs), the grant stored durably for the daemon, then one real IMAP login with
//! it so the user sees at once that it works.

use super::{fail, load, Failure};
use crate::config::{Account, Auth, Flow, Tls};
use std::io::{BufReader, Write};
use std::path::Path;

pub(crate) fn run(path: &Path, name: &str) -> Result<(), Failure> {
    let config = load(path)?;
    let Some(account) = config.accounts.iter().find(|a| a.name == name) else {
        let names: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
        return Err(Failure {
            code: 2,
            message: format!(
                "{} has no account {name:?} (its accounts: {})",
                path.display(),
                names.join(", ")
            ),
        });
    };
    let Auth::OAuth2(o) = &account.auth else {
        return Err(Failure {
            code: 2,
            message: format!(
                "account {name} logs in with a password; `login` signs in accounts with \
                 auth = \"oauth2\""
            ),
        });
    };
    let mut out = std::io::stdout();
    let grant = crate::oauth::login::sign_in(
        name,
        o,
        &mut out,
        Box::new(BufReader::new(std::io::stdin())),
    )
    .map_err(|e| fail(format!("login {name}: {e}")))?;
    grant
        .save(&o.grant_file)
        .map_err(|e| fail(format!("login {name}: signed in, but {e}")))?;
    println!(
        "ok   signed in: the grant is stored in {} (mode 0600)",
        o.grant_file.display()
    );
    let login = crate::imap::tls_config(account).and_then(|tls| crate::imap::login(account, &tls));
    match login {
        Ok(mut session) => {
            let _ = session.logout();
            println!(
                "ok   imap {name}: logged in to {} as {}",
                account.host, account.username
            );
            println!(
                "A running daemon uses the new grant at its next login; `systemctl reload \
                 mailbeacon` makes that now."
            );
            let _ = out.flush();
            Ok(())
        }
        Err(e) => {
            println!("FAIL imap {name}: {e}");
            Err(fail(format!(
                "login {name}: the grant is stored, but the IMAP login with it failed"
            )))
        }
    }
}

/// `check`'s line for an account: where it logs in and how, and whether it is signed in.
pub(crate) fn describe(a: &Account) {
    let tls = match a.tls {
        Tls::Implicit => "implicit TLS",
        Tls::Starttls => "STARTTLS",
        Tls::None => "plaintext (loopback)",
    };
    let preset = a
        .provider
        .map_or(String::new(), |p| format!(" (provider {})", p.name));
    match &a.auth {
        Auth::Password => println!(
            "ok   account {}: {}:{}, {tls}, password{preset}",
            a.name, a.host, a.port
        ),
        Auth::OAuth2(o) => {
            let flow = match o.flow {
                Flow::Device { .. } => "device code",
                Flow::Browser { .. } => "browser",
            };
            println!(
                "ok   account {}: {}:{}, {tls}, OAuth 2.0 at {} ({flow} sign-in){preset}",
                a.name, a.host, a.port, o.issuer
            );
            match crate::oauth::grant::Grant::load(&o.grant_file) {
                Ok(Some(_)) => {}
                Ok(None) => println!(
                    "warn account {}: not signed in yet: run `mailbeacon login {}`",
                    a.name, a.name
                ),
                Err(e) => println!("warn account {}: {e}", a.name),
            }
        }
    }
}
