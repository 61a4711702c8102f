//! Which server certificates an account trusts, as a rustls [`ServerCertVerifier`]:
//!
//! - **`tls_fingerprint`**: exactly the certificate with that SHA-256, whatever its issuer and
//!   names (a pin identifies the server by itself); its validity dates are still checked.
//! - otherwise **webpki's verdict** over the system roots (the bundled Mozilla roots when the
//!   system has none) plus the certificates of `ca_file`;
//! - and, when webpki refuses, a certificate **byte-identical to one in `ca_file`** is trusted
//!   as that server's own: within its dates and for the configured host (its subjectAltNames,
//!   or its commonName when it has none). This is how OpenSSL clients (Thunderbird, mbsync,
//!   Python) treat the `openssl req -x509 -subj /CN=host` one-liner, whose `CA:TRUE` webpki
//!   refuses as a server certificate (`CaUsedAsEndEntity`).
//!
//! Handshake signatures are verified with rustls's own functions in every case, so the server
//! must hold the key of the certificate it presents. Every refusal is a [`Refusal`] sentence.

use super::cert::CertInfo;
use super::refusal::{self, Refusal};
use crate::config::Fingerprint;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::{Arc, Mutex};

/// The last certificate a server presented (for `check --probe`, also when it was refused).
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen(Arc<Mutex<Option<CertificateDer<'static>>>>);

impl Seen {
    pub(crate) fn certificate(&self) -> Option<CertInfo> {
        let held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        held.as_ref().and_then(|der| CertInfo::parse(der))
    }

    fn record(&self, der: &CertificateDer<'_>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(der.clone().into_owned());
    }
}

#[derive(Debug)]
pub(crate) struct Trust {
    webpki: Arc<WebPkiServerVerifier>,
    /// `ca_file`'s certificates, each also trusted as a server's own.
    own: Vec<CertificateDer<'static>>,
    pin: Option<Fingerprint>,
    algorithms: WebPkiSupportedAlgorithms,
    seen: Option<Seen>,
}

impl Trust {
    /// `roots` already holds `own`: a CA in `ca_file` signs server certificates as usual.
    pub(crate) fn new(
        roots: rustls::RootCertStore,
        own: Vec<CertificateDer<'static>>,
        pin: Option<Fingerprint>,
        provider: &Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Trust, String> {
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Trust {
            webpki,
            own,
            pin,
            algorithms: provider.signature_verification_algorithms,
            seen: None,
        })
    }

    /// Records every presented certificate in `seen`.
    pub(crate) fn seeing(mut self, seen: Seen) -> Trust {
        self.seen = Some(seen);
        self
    }

    /// The verdict on the certificate a server presented for `host` at `now`.
    pub(crate) fn judge(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        host: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<(), Refusal> {
        let info = CertInfo::parse(end_entity);
        let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if let Some(pinned) = self.pin {
            let seen = Fingerprint::of(end_entity);
            if seen != pinned {
                return Err(refusal::pin_mismatch(seen, pinned));
            }
            return within_dates(info.as_ref(), secs);
        }
        let verdict = self
            .webpki
            .verify_server_cert(end_entity, intermediates, host, ocsp, now);
        let Err(error) = verdict else {
            return Ok(());
        };
        if self.own.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            within_dates(info.as_ref(), secs)?;
            return for_host(end_entity, info.as_ref(), host);
        }
        Err(refusal::classify(
            &error,
            info.as_ref(),
            &host.to_str(),
            secs,
        ))
    }
}

fn within_dates(info: Option<&CertInfo>, now: i64) -> Result<(), Refusal> {
    let Some(i) = info else {
        return Err(refusal::other(
            None,
            &rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding),
        ));
    };
    if now < i.not_before {
        return Err(refusal::not_yet_valid(info, i.not_before, now));
    }
    if now > i.not_after {
        return Err(refusal::expired(info, i.not_after, now));
    }
    Ok(())
}

/// webpki's name check, then — for a certificate without subjectAltNames, as the one-liner
/// makes — its commonName, compared as OpenSSL's `X509_check_host` does without SANs.
fn for_host(
    der: &CertificateDer<'_>,
    info: Option<&CertInfo>,
    host: &ServerName<'_>,
) -> Result<(), Refusal> {
    let by_san = rustls::server::ParsedCertificate::try_from(der)
        .and_then(|parsed| rustls::client::verify_server_name(&parsed, host));
    if by_san.is_ok() {
        return Ok(());
    }
    let wanted = match host {
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => other.to_str().to_string(),
    };
    let by_cn = info.is_some_and(|i| {
        i.names.is_empty()
            && i.common_name
                .as_deref()
                .is_some_and(|cn| cn.eq_ignore_ascii_case(&wanted))
    });
    if by_cn {
        return Ok(());
    }
    Err(refusal::wrong_name(info, &[], &wanted))
}

impl ServerCertVerifier for Trust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(seen) = &self.seen {
            seen.record(end_entity);
        }
        self.judge(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|()| ServerCertVerified::assertion())
            .map_err(Refusal::into_rustls)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
