//! How connecting and logging in fail, classified so health can tell the network, TLS, the
//! clock and a refused login apart; a read that waits too long says how long it waited.

use super::now;
use super::refusal::{self, Refusal};
use crate::health::AccountState;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("network: {0}")]
    Network(String),
    #[error("TLS: {0}")]
    Tls(String),
    /// A certificate not valid *yet*: far more often this board's clock (a Pi has no RTC and
    /// may run before time sync) than the server's certificate. Retried like network trouble.
    /// The sentence names the dates and the clock (`connect/refusal.rs`).
    #[error("TLS: {0}")]
    Clock(String),
    #[error("login refused: {0}")]
    Auth(String),
    #[error("mailbox: {0}")]
    Mailbox(String),
    #[error("protocol: {0}")]
    Protocol(String),
    /// A read or write that ran into the account's `timeout`, said in words rather than as the
    /// OS's "Resource temporarily unavailable (os error 11)".
    #[error("no answer from the server within {}", within(.0))]
    Timeout(Duration),
}

/// `60s`, or `500ms` for a bound under a second.
pub(crate) fn within(d: &Duration) -> String {
    if d.as_secs() > 0 && d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl ImapError {
    pub(crate) fn state(&self) -> AccountState {
        match self {
            ImapError::Network(_) | ImapError::Clock(_) | ImapError::Timeout(_) => {
                AccountState::Backoff
            }
            ImapError::Tls(_) => AccountState::TlsFailed,
            ImapError::Auth(_) => AccountState::AuthFailed,
            ImapError::Mailbox(_) => AccountState::MailboxMissing,
            ImapError::Protocol(_) => AccountState::Error,
        }
    }

    /// From the imap crate: I/O problems are network trouble unless rustls raised them.
    pub(crate) fn from_imap(e: imap::Error) -> ImapError {
        match e {
            imap::Error::Io(io) => from_io(io),
            imap::Error::ConnectionLost => ImapError::Network("connection lost".into()),
            imap::Error::Bye(b) => {
                ImapError::Network(format!("server said BYE: {}", b.information))
            }
            other => ImapError::Protocol(other.to_string()),
        }
    }
}

pub(super) fn from_io(io: std::io::Error) -> ImapError {
    if let Some(tls) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        return from_tls(tls);
    }
    if let Some(NoAnswer(bound)) = io.get_ref().and_then(|e| e.downcast_ref::<NoAnswer>()) {
        return ImapError::Timeout(*bound);
    }
    if is_timeout(&io) {
        return ImapError::Network("no answer from the server in time".into());
    }
    ImapError::Network(io.to_string())
}

/// A socket timeout: Linux reports one as `WouldBlock` (os error 11), others as `TimedOut`.
pub(crate) fn is_timeout(io: &std::io::Error) -> bool {
    matches!(
        io.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// The bound a timed-out read or write ran into, carried inside its `io::Error` (whose kind
/// stays the same, so the imap crate still reads an IDLE's timeout as the end of the wait).
#[derive(Debug)]
pub(super) struct NoAnswer(Duration);

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no answer from the server within {}", within(&self.0))
    }
}

impl std::error::Error for NoAnswer {}

/// `e`, carrying `bound` when it is a timeout.
pub(super) fn bounded(e: std::io::Error, bound: Duration) -> std::io::Error {
    if is_timeout(&e) {
        std::io::Error::new(e.kind(), NoAnswer(bound))
    } else {
        e
    }
}

pub(super) fn from_tls(e: &rustls::Error) -> ImapError {
    let rustls::Error::InvalidCertificate(cert) = e else {
        return ImapError::Tls(e.to_string());
    };
    // Verdicts on the certificate come as a Refusal from `Trust`; any other certificate error
    // (a bad handshake signature) is described the same way, without the certificate's details.
    let refused = match cert {
        rustls::CertificateError::Other(o) => o.0.downcast_ref::<Refusal>().cloned(),
        _ => None,
    };
    let refusal = refused.unwrap_or_else(|| refusal::classify(e, None, "the host", now()));
    if refusal.clock {
        ImapError::Clock(refusal.sentence)
    } else {
        ImapError::Tls(refusal.sentence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::CertificateError;

    fn kind(e: rustls::Error) -> AccountState {
        from_io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)).state()
    }

    #[test]
    fn a_certificate_not_valid_yet_is_the_clock_and_retried_as_transient() {
        let e = from_tls(&rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet,
        ));
        assert!(matches!(e, ImapError::Clock(_)), "{e}");
        assert!(e.to_string().contains("clock"), "{e}");
        assert_eq!(
            kind(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYet
            )),
            AccountState::Backoff
        );
        for other in [
            CertificateError::Expired,
            CertificateError::UnknownIssuer,
            CertificateError::NotValidForName,
            CertificateError::BadSignature,
        ] {
            assert_eq!(
                kind(rustls::Error::InvalidCertificate(other)),
                AccountState::TlsFailed
            );
        }
        assert_eq!(
            from_io(std::io::Error::other("connection refused")).state(),
            AccountState::Backoff
        );
    }

    #[test]
    fn a_read_timeout_reads_as_no_answer_within_the_bound() {
        let os = std::io::Error::from(std::io::ErrorKind::WouldBlock);
        let e = from_io(bounded(os, Duration::from_secs(60)));
        assert_eq!(e.to_string(), "no answer from the server within 60s");
        assert_eq!(e.state(), AccountState::Backoff);
        // The kind survives, so the imap crate still ends an IDLE wait on it.
        let os = std::io::Error::from(std::io::ErrorKind::TimedOut);
        let wrapped = bounded(os, Duration::from_millis(1500));
        assert_eq!(wrapped.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(
            from_io(wrapped).to_string(),
            "no answer from the server within 1500ms"
        );
        let bare = from_io(std::io::Error::from(std::io::ErrorKind::WouldBlock));
        assert!(!bare.to_string().contains("os error"), "{bare}");
    }
}
