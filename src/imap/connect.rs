//! Connecting to an IMAP server: TCP with timeouts, TLS through rustls (system roots, the
//! bundled Mozilla roots when the system has none, plus an optional `ca_file`, or a pinned
//! `tls_fingerprint`: see `connect/trust.rs`), implicit TLS or STARTTLS, plaintext only to
//! loopback (validated in the config). Every failure is classified so health can tell network
//! down, TLS failure and authentication failure apart; a refused certificate is one sentence
//! with its remedy (`connect/refusal.rs`).

mod cert;
mod error;
mod refusal;
mod stream;
mod trust;
#[cfg(test)]
mod trust_tests;

use error::from_io;
#[cfg(test)]
use error::from_tls;
pub use error::ImapError;
pub(crate) use error::{is_timeout, within};
use stream::Io;
pub(crate) use stream::{Session, Stream};
pub(crate) use trust::{Seen, Trust};

use crate::config::{Account, Auth, OAuth2, Tls};
use crate::stop::{Interrupt, Stop};
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

pub(super) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The account's TLS settings: what it trusts (see `connect/trust.rs`).
pub fn tls_config(account: &Account) -> Result<Arc<rustls::ClientConfig>, ImapError> {
    client_config(trust(account)?)
}

/// [`tls_config`] that also records the certificate each server presents, trusted or not.
pub(crate) fn tls_config_seeing(
    account: &Account,
) -> Result<(Arc<rustls::ClientConfig>, Seen), ImapError> {
    let seen = Seen::default();
    Ok((client_config(trust(account)?.seeing(seen.clone()))?, seen))
}

fn client_config(trust: Trust) -> Result<Arc<rustls::ClientConfig>, ImapError> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(trust))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The trust anchors: the system store (or the bundled roots when it is empty) plus `ca_file`.
fn trust(account: &Account) -> Result<Trust, ImapError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    let mut own = Vec::new();
    if let Some(path) = account.ca_file.as_deref() {
        let bad =
            |e: &dyn std::fmt::Display| ImapError::Tls(format!("ca_file {}: {e}", path.display()));
        own = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(&e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(&e))?;
        if own.is_empty() {
            return Err(bad(&"no PEM certificate in it"));
        }
        for cert in &own {
            roots.add(cert.clone()).map_err(|e| bad(&e))?;
        }
    }
    Trust::new(roots, own, account.tls_fingerprint, &provider()).map_err(ImapError::Tls)
}

/// Looks the host up and connects on a helper thread, so that a stop does not wait for a slow
/// name lookup or an unanswered connect (neither can be interrupted); an attempt given up on
/// ends by itself within the account's timeout.
fn tcp(account: &Account, stop: &Stop) -> Result<TcpStream, ImapError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (host, port, timeout) = (account.host.clone(), account.port, account.timeout);
    std::thread::Builder::new()
        .name("imap-connect".into())
        .spawn(move || {
            let _ = tx.send(connect(&host, port, timeout));
        })
        .map_err(|e| ImapError::Network(format!("cannot start a connect thread: {e}")))?;
    use std::sync::mpsc::RecvTimeoutError;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(connected) => return connected,
            Err(RecvTimeoutError::Timeout) if !stop.is_stopped() => {}
            Err(RecvTimeoutError::Timeout) => {
                return Err(ImapError::Network("connect given up: stopping".into()))
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(ImapError::Network(
                    "the connect thread ended unanswered".into(),
                ))
            }
        }
    }
}

fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, ImapError> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| ImapError::Network(format!("{host}: {e}")))?;
    let mut last = ImapError::Network(format!("{host}: no address"));
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(timeout))
                    .map_err(|e| ImapError::Network(e.to_string()))?;
                s.set_write_timeout(Some(timeout))
                    .map_err(|e| ImapError::Network(e.to_string()))?;
                return Ok(s);
            }
            Err(e) => last = ImapError::Network(format!("{addr}: {e}")),
        }
    }
    Err(last)
}

fn handshake(
    account: &Account,
    config: Arc<rustls::ClientConfig>,
    mut tcp: TcpStream,
) -> Result<Io, ImapError> {
    let name = ServerName::try_from(account.host.clone())
        .map_err(|e| ImapError::Tls(format!("{}: {e}", account.host)))?;
    let mut conn =
        rustls::ClientConnection::new(config, name).map_err(|e| ImapError::Tls(e.to_string()))?;
    // Finish the handshake here so a certificate problem is reported as TLS, not as IMAP.
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(from_io)?;
    }
    Ok(Io::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
}

/// RFC 3501 6.2.1: greeting, `STARTTLS`, tagged OK, then the handshake on the same socket.
fn starttls(
    account: &Account,
    config: Arc<rustls::ClientConfig>,
    tcp: TcpStream,
) -> Result<Io, ImapError> {
    let mut reader = BufReader::new(
        tcp.try_clone()
            .map_err(|e| ImapError::Network(e.to_string()))?,
    );
    let mut line = String::new();
    reader.read_line(&mut line).map_err(from_io)?;
    if !line.starts_with("* OK") {
        return Err(ImapError::Protocol(format!(
            "unexpected greeting: {}",
            line.trim_end()
        )));
    }
    (&tcp).write_all(b"mb0 STARTTLS\r\n").map_err(from_io)?;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(from_io)? == 0 {
            return Err(ImapError::Network(
                "connection closed during STARTTLS".into(),
            ));
        }
        if let Some(rest) = line.strip_prefix("mb0 ") {
            if rest.starts_with("OK") {
                break;
            }
            return Err(ImapError::Tls(format!(
                "server refused STARTTLS: {}",
                rest.trim_end()
            )));
        }
    }
    if !reader.buffer().is_empty() {
        return Err(ImapError::Protocol(
            "server sent data before the TLS handshake".into(),
        ));
    }
    handshake(account, config, tcp)
}

/// Connects, secures and logs in. The password is sent only inside TLS (or to loopback).
pub(crate) fn login(
    account: &Account,
    config: &Arc<rustls::ClientConfig>,
) -> Result<Session, ImapError> {
    let stop = Stop::new();
    login_until(account, config, &stop).map(|(session, _)| session)
}

/// [`login`], giving way to `stop` at every step: the lookup and connect run on a helper
/// thread, and from then on a stop shuts the socket down, for as long as the returned guard
/// lives, so a read blocked on a silent server ends at once. Interrupting loses nothing: the
/// cursor moves only after what was read is spooled.
pub(crate) fn login_until<'a>(
    account: &Account,
    config: &Arc<rustls::ClientConfig>,
    stop: &'a Stop,
) -> Result<(Session, Interrupt<'a>), ImapError> {
    let tcp = tcp(account, stop)?;
    let socket = tcp
        .try_clone()
        .map_err(|e| ImapError::Network(e.to_string()))?;
    let interrupt = stop.interrupts(socket);
    let (io, greeted) = match account.tls {
        Tls::Implicit => (handshake(account, config.clone(), tcp)?, false),
        Tls::Starttls => (starttls(account, config.clone(), tcp)?, true),
        Tls::None => (Io::Plain(tcp), false),
    };
    let mut client = imap::Client::new(Stream::new(io, account.timeout));
    if !greeted {
        client.read_greeting().map_err(ImapError::from_imap)?;
    }
    let session = match &account.auth {
        Auth::Password => client
            .login(&account.username, account.password.expose())
            .map_err(|(e, _)| match e {
                imap::Error::No(no) => ImapError::Auth(refused_password(account, no.information)),
                other => ImapError::from_imap(other),
            })?,
        Auth::OAuth2(o) => oauth_login(account, o, client)?,
    };
    Ok((session, interrupt))
}

/// A refused password, with what the provider needs instead when the account names one.
fn refused_password(account: &Account, said: String) -> String {
    match account.provider {
        Some(p) => format!("{said} ({})", p.credential_hint),
        None => said,
    }
}

/// SASL XOAUTH2 or OAUTHBEARER, whichever the server offers (see src/oauth/sasl.rs), with the
/// stored access token; a token the server refuses is refreshed and tried once more, unless it
/// was fresh already.
fn oauth_login(
    account: &Account,
    o: &OAuth2,
    mut client: imap::Client<Stream>,
) -> Result<Session, ImapError> {
    let caps = client.capabilities().map_err(ImapError::from_imap)?;
    let mechanism = crate::oauth::sasl::choose(o.mechanism, |m| caps.has_str(format!("AUTH={m}")))
        .ok_or_else(|| {
            ImapError::Auth(format!(
                "the server offers no OAuth login ({} wanted): use a password, or check the host",
                o.mechanism.map_or("XOAUTH2 or OAUTHBEARER", |m| m.name())
            ))
        })?;
    drop(caps);
    let mut force = false;
    loop {
        let access = crate::oauth::access_token(&account.name, o, force).map_err(oauth_error)?;
        let exchange = crate::oauth::sasl::Exchange::new(
            mechanism,
            &account.username,
            access.token.expose(),
            &account.host,
            account.port,
        );
        match client.authenticate(mechanism.name(), &exchange) {
            Ok(session) => return Ok(session),
            // Throttled (Microsoft's `Suggested Backoff Time`): the token is not at fault, and
            // the watcher waits as asked (src/imap/quirks.rs reads the text).
            Err((imap::Error::No(no), _))
                if super::quirks::throttle_pause(&no.information).is_some() =>
            {
                return Err(ImapError::Auth(no.information));
            }
            Err((imap::Error::No(no), back)) if !access.fresh => {
                log::warn!(
                    "imap {}: the server refused the OAuth access token ({}); renewing it once",
                    account.name,
                    no.information
                );
                client = back;
                force = true;
            }
            Err((imap::Error::No(no), _)) => {
                let said = exchange
                    .refusal()
                    .map_or(String::new(), |r| format!(" {r}"));
                return Err(ImapError::Auth(format!(
                    "{} refused a freshly renewed OAuth token for {} with {}: {}{said} (is                      username the account that signed in? else run `mailbeacon login {}`)",
                    account.host,
                    account.username,
                    mechanism.name(),
                    no.information,
                    account.name
                )));
            }
            Err((other, _)) => return Err(ImapError::from_imap(other)),
        }
    }
}

fn oauth_error(e: crate::oauth::OAuthError) -> ImapError {
    use crate::oauth::OAuthError;
    match &e {
        OAuthError::NoGrant { .. } | OAuthError::Refused { .. } => {
            ImapError::Auth(format!("{e}: {}", e.remedy().unwrap_or_default()))
        }
        OAuthError::Unreachable(_) => ImapError::Network(e.to_string()),
        OAuthError::Storage(_) => ImapError::Protocol(e.to_string()),
    }
}
