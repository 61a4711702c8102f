//! Why a server's certificate was refused, as one sentence a user can act on: what is wrong
//! (naming the issuer, the dates and the device's clock, or the names), then the remedy
//! (`ca_file`, `tls_fingerprint`, the host, the clock). These sentences are what the log,
//! `status` (`last_error`) and `check --probe` show; rustls's own error names (`UnknownIssuer`,
//! `CaUsedAsEndEntity`) mean nothing to someone with a home server.
//!
//! A [`Refusal`] travels through the rustls handshake inside `CertificateError::Other`, and
//! `from_tls` in `src/imap/connect.rs` takes it out again.

use super::cert::{moment, CertInfo};
use crate::config::Fingerprint;
use rustls::CertificateError;

/// A refused certificate: the sentence, and whether the device's clock is the likely cause
/// (a certificate not valid *yet*), which is retried like network trouble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) sentence: String,
    pub(crate) clock: bool,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.sentence)
    }
}

impl std::error::Error for Refusal {}

impl Refusal {
    fn tls(sentence: String) -> Refusal {
        Refusal {
            sentence,
            clock: false,
        }
    }

    /// Wrapped so rustls carries it to the caller of the handshake.
    pub(crate) fn into_rustls(self) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
            std::sync::Arc::new(self),
        )))
    }
}

/// "the server's certificate (CN=…)", or without the name when it could not be read.
fn the_certificate(info: Option<&CertInfo>) -> String {
    match info {
        Some(i) => format!("the server's certificate ({})", i.subject),
        None => "the server's certificate".into(),
    }
}

/// `, or pin it with tls_fingerprint = "sha256:…" if that is your server's`.
fn or_pin(info: Option<&CertInfo>) -> String {
    match info {
        Some(i) => format!(
            ", or pin it with tls_fingerprint = \"{}\" if that is your server's",
            i.fingerprint
        ),
        None => ", or pin it with tls_fingerprint (`check --probe` shows it)".into(),
    }
}

/// Issued by a CA this device does not trust (or self-signed and not given as `ca_file`).
pub(crate) fn untrusted(info: Option<&CertInfo>) -> Refusal {
    let what = the_certificate(info);
    Refusal::tls(match info {
        Some(i) if i.self_issued => format!(
            "{what} is self-signed and this device does not trust it: give that certificate \
             as ca_file{}",
            or_pin(info)
        ),
        Some(i) => format!(
            "{what} is issued by {}, which this device does not trust: give that CA's \
             certificate (or the server's own) as ca_file{}",
            i.issuer,
            or_pin(info)
        ),
        None => format!(
            "{what} is issued by a CA this device does not trust: give that CA's certificate \
             (or the server's own) as ca_file{}",
            or_pin(info)
        ),
    })
}

/// A CA certificate presented as the server's own (the `openssl req -x509` one-liner makes
/// these), not given as `ca_file`.
fn ca_as_server(info: Option<&CertInfo>) -> Refusal {
    Refusal::tls(format!(
        "{} is a CA certificate (as `openssl req -x509` makes them) used as the server's own, \
         and this device does not trust it: give that certificate itself as ca_file{}",
        the_certificate(info),
        or_pin(info)
    ))
}

pub(crate) fn expired(info: Option<&CertInfo>, not_after: i64, now: i64) -> Refusal {
    Refusal::tls(format!(
        "{} expired on {} and this device's clock says {}: renew the certificate on the \
         server, or set this device's clock if it is wrong",
        the_certificate(info),
        moment(not_after),
        moment(now)
    ))
}

pub(crate) fn not_yet_valid(info: Option<&CertInfo>, not_before: i64, now: i64) -> Refusal {
    Refusal {
        sentence: format!(
            "{} is valid only from {} but this device's clock says {}: the clock is probably \
             not set yet (retrying until time sync), or else fix the certificate's dates on \
             the server",
            the_certificate(info),
            moment(not_before),
            moment(now)
        ),
        clock: true,
    }
}

/// Made for other names than the configured `host`. The names come from the certificate as
/// read here; webpki's `presented` list (Debug-formatted, `DnsName("…")`) only when it could
/// not be read.
pub(crate) fn wrong_name(info: Option<&CertInfo>, presented: &[String], host: &str) -> Refusal {
    let names = info.map_or_else(|| presented.to_vec(), CertInfo::host_names);
    let holds = match names.as_slice() {
        [] => "names no host".to_string(),
        [one] => format!("is for {one}"),
        many => format!("is for {}", many.join(", ")),
    };
    Refusal::tls(format!(
        "the server's certificate {holds}, not for {host:?} (the account's host): set host to \
         a name the certificate holds{}",
        or_pin(info)
    ))
}

pub(crate) fn pin_mismatch(seen: Fingerprint, pinned: Fingerprint) -> Refusal {
    Refusal::tls(format!(
        "the server's certificate has fingerprint {seen}, not the pinned {pinned}: if the \
         server's certificate was renewed, check and pin the new one (`check --probe` shows \
         it); if not, something is intercepting the connection"
    ))
}

/// Any other webpki verdict, kept readable.
pub(crate) fn other(info: Option<&CertInfo>, error: &rustls::Error) -> Refusal {
    Refusal::tls(format!(
        "{} was refused ({error}): give the server's certificate or its CA's as ca_file{}",
        the_certificate(info),
        or_pin(info)
    ))
}

/// rustls's verdict on a certificate, as a [`Refusal`]. `info` is the presented certificate
/// when it could be read; `now` the verification time (seconds since the Unix epoch).
pub(crate) fn classify(
    error: &rustls::Error,
    info: Option<&CertInfo>,
    host: &str,
    now: i64,
) -> Refusal {
    use CertificateError as E;
    let secs = |t: &rustls::pki_types::UnixTime| t.as_secs().try_into().unwrap_or(i64::MAX);
    let rustls::Error::InvalidCertificate(cert) = error else {
        return other(info, error);
    };
    match cert {
        E::UnknownIssuer => untrusted(info),
        E::ExpiredContext { time, not_after } => expired(info, secs(not_after), secs(time)),
        E::Expired => match info {
            Some(i) => expired(info, i.not_after, now),
            None => other(info, error),
        },
        E::NotValidYetContext { time, not_before } => {
            not_yet_valid(info, secs(not_before), secs(time))
        }
        E::NotValidYet => match info {
            Some(i) => not_yet_valid(info, i.not_before, now),
            None => Refusal {
                sentence: format!(
                    "the server's certificate is not valid yet by this device's clock ({}): the \
                     clock is probably not set yet (retrying until time sync), or else fix the \
                     certificate's dates on the server",
                    moment(now)
                ),
                clock: true,
            },
        },
        E::NotValidForNameContext { presented, .. } => wrong_name(info, presented, host),
        E::NotValidForName => wrong_name(info, &[], host),
        E::Other(o) if is_ca_as_server(o) => ca_as_server(info),
        _ => other(info, error),
    }
}

fn is_ca_as_server(other: &rustls::OtherError) -> bool {
    matches!(
        other.0.downcast_ref::<webpki::Error>(),
        Some(webpki::Error::CaUsedAsEndEntity)
    )
}
