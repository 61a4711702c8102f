//! `check --probe`'s IMAP login, which also shows the certificate each TLS server presented —
//! its SHA-256 fingerprint, names, issuer and dates — trusted or refused, so that a user can
//! check it and pin it with `tls_fingerprint`; and whether the server can do the moves that
//! buckets ask for after delivery.

use crate::config::{Account, AfterDelivery, Bucket, Tls};
use crate::imap::action::NO_SAFE_MOVE;
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

/// For each bucket that moves mail after delivery: whether this server can move it safely
/// (`MOVE`, or `UIDPLUS` for a copy and an expunge of that one mail) and whether the target
/// folder exists. Prints a line each; returns the number of failures.
pub(super) fn moves(account: &Account, s: &mut Session, buckets: &[Bucket]) -> usize {
    let targets: Vec<(&str, &str)> = buckets
        .iter()
        .filter_map(|b| match &b.after_delivery {
            Some(AfterDelivery::Move(to)) => Some((b.name.as_str(), to.as_str())),
            _ => None,
        })
        .collect();
    if targets.is_empty() {
        return 0;
    }
    let name = &account.name;
    let can = match s.capabilities() {
        Ok(caps) => (caps.has_str("MOVE"), caps.has_str("UIDPLUS")),
        Err(e) => {
            println!(
                "FAIL imap {name}: capabilities: {}",
                ImapError::from_imap(e)
            );
            return 1;
        }
    };
    let mut failed = 0;
    for (bucket, to) in targets {
        let key = format!("bucket {bucket}: after_delivery = \"move:{to}\"");
        if can == (false, false) {
            failed += 1;
            println!("FAIL imap {name}: {key}: {NO_SAFE_MOVE}");
            continue;
        }
        match s.status(to, "(MESSAGES)") {
            Ok(_) => println!(
                "ok   imap {name}: {key}: folder exists, moved with {}",
                if can.0 {
                    "MOVE"
                } else {
                    "COPY and UID EXPUNGE (UIDPLUS)"
                }
            ),
            Err(e) => {
                failed += 1;
                println!(
                    "FAIL imap {name}: {key}: the folder cannot be opened ({}): create it, or the moves wait",
                    ImapError::from_imap(e)
                );
            }
        }
    }
    failed
}
