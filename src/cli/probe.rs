//! `check --probe`'s IMAP login, which also shows the certificate each TLS server presented —
//! its SHA-256 fingerprint, names, issuer and dates — trusted or refused, so that a user can
//! check it and pin it with `tls_fingerprint`.

use crate::config::{Account, Tls};
use crate::imap::connect::{tls_config_seeing, Seen};
use crate::imap::{login, ImapError, Session};

/// Logs in to `account`; what the server presented, when it got that far.
pub(super) fn login_seeing(account: &Account) -> (Result<Session, ImapError>, Option<Seen>) {
    match tls_config_seeing(account) {
        Ok((tls, seen)) => (login(account, &tls), Some(seen)),
        Err(e) => (Err(e), None),
    }
}

/// `ok   imap home: certificate sha256:… (CN=…, …)` — `info` instead of `ok` when the
/// certificate was refused (the FAIL line that follows says why).
pub(super) fn print_certificate(
    account: &Account,
    session: &Result<Session, ImapError>,
    seen: Option<&Seen>,
) {
    if account.tls == Tls::None {
        return;
    }
    let Some(cert) = seen.and_then(Seen::certificate) else {
        return;
    };
    let refused = matches!(session, Err(ImapError::Tls(_) | ImapError::Clock(_)));
    println!(
        "{} imap {}: certificate {} ({})",
        if refused { "info" } else { "ok  " },
        account.name,
        cert.fingerprint,
        cert.summary()
    );
}
