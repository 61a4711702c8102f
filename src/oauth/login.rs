//! `mailbeacon login ACCOUNT`: the first sign-in, made for a headless board reached over SSH.
//!
//! - **Device flow** (RFC 8628; Microsoft): print the verification address and the code, the
//!   user approves on any device, and the token endpoint is polled as the RFC says — at the
//!   `interval` it gave, five seconds slower after `slow_down`, until `expires_in`, with longer
//!   pauses while the endpoint cannot be reached.
//! - **Browser flow** (RFC 8252 with PKCE, RFC 7636; Google, which allows no device flow for
//!   mail): print the authorization address; the provider sends the browser back to
//!   `http://127.0.0.1:PORT/`. That request arrives here by itself when the browser runs on this
//!   machine or the port is forwarded over SSH; otherwise the page fails to load and the user
//!   pastes its address, which carries the code, back into this command.

use super::grant::Grant;
use super::token::{self, TokenError};
use super::{granted, TIMEOUT};
use crate::config::{Flow, OAuth2};
use base64::Engine;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the browser flow waits for the redirect or a pasted address.
const BROWSER_WAIT: Duration = Duration::from_secs(15 * 60);

/// Signs in interactively and returns the grant (not yet stored). `input` is where a pasted
/// address comes from (stdin).
pub(crate) fn sign_in(
    account: &str,
    o: &OAuth2,
    out: &mut dyn Write,
    input: Box<dyn BufRead + Send>,
) -> Result<Grant, String> {
    let grant = match &o.flow {
        Flow::Device { device_url } => device(account, o, device_url, out)?,
        Flow::Browser {
            authorize_url,
            redirect_port,
            params,
        } => browser(o, authorize_url, *redirect_port, params, out, input)?,
    };
    if grant.refresh_token.expose().is_empty() {
        return Err(format!(
            "{} granted access but no refresh token, so the daemon could not renew it: \
             the scopes must include offline access (Microsoft: offline_access; Google asks \
             for it with access_type=offline)",
            o.issuer
        ));
    }
    Ok(grant)
}

fn client<'a>(o: &'a OAuth2, form: &mut Vec<(&'a str, &'a str)>) {
    form.push(("client_id", o.client_id.as_str()));
    if let Some(secret) = &o.client_secret {
        form.push(("client_secret", secret.expose()));
    }
}

/// What the device authorization endpoint answered (RFC 8628 3.2).
struct DeviceCode {
    device_code: String,
    user_code: String,
    /// Where the user enters `user_code`.
    uri: String,
    expires: Duration,
    interval: Duration,
}

fn device(
    account: &str,
    o: &OAuth2,
    device_url: &str,
    out: &mut dyn Write,
) -> Result<Grant, String> {
    let started = Instant::now();
    let code = start_device(o, device_url)?;
    let _ = writeln!(
        out,
        "To sign in account {account} at {}:\n  1. On any device, open  {}\n  2. Enter the code       {}\n\
         Waiting for the approval (the code is valid for {} minutes)...",
        o.issuer,
        code.uri,
        code.user_code,
        code.expires.as_secs().div_ceil(60)
    );
    let _ = out.flush();
    poll_device(account, o, &code, started, out)
}

/// Asks `device_url` for a device code and the page where the user enters it.
fn start_device(o: &OAuth2, device_url: &str) -> Result<DeviceCode, String> {
    let scope = o.scopes.join(" ");
    let mut form = vec![("scope", scope.as_str())];
    client(o, &mut form);
    let answer = token::post(device_url, &form, TIMEOUT)
        .map_err(|e| format!("cannot start the sign-in at {}: {e}", o.issuer))?;
    let text = |k: &str| {
        answer
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let number = |k: &str| {
        answer
            .get(k)
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
    };
    if !text("error").is_empty() {
        return Err(format!(
            "{} refused to start a sign-in: {}: {}",
            o.issuer,
            text("error"),
            text("error_description")
        ));
    }
    let (device_code, user_code) = (text("device_code"), text("user_code"));
    // Microsoft's v1 endpoint said `verification_url`; RFC 8628 says `verification_uri`.
    let uri = Some(text("verification_uri"))
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| text("verification_url"));
    if device_code.is_empty() || user_code.is_empty() || uri.is_empty() {
        return Err(format!("{device_url} answered without a device code"));
    }
    Ok(DeviceCode {
        device_code,
        user_code,
        uri,
        expires: Duration::from_secs(number("expires_in").unwrap_or(900)),
        interval: Duration::from_secs(number("interval").unwrap_or(5).clamp(1, 60)),
    })
}

/// Asks the token endpoint, from `started` until `code` expires, whether the user approved it.
fn poll_device(
    account: &str,
    o: &OAuth2,
    code: &DeviceCode,
    started: Instant,
    out: &mut dyn Write,
) -> Result<Grant, String> {
    let user_code = &code.user_code;
    let mut form = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", code.device_code.as_str()),
    ];
    client(o, &mut form);
    let mut interval = code.interval;
    let mut unreachable_said = false;
    loop {
        std::thread::sleep(interval);
        if started.elapsed() >= code.expires {
            return Err(format!(
                "the code {user_code} expired before it was approved: run `mailbeacon login {account}` again"
            ));
        }
        match token::request(&o.token_url, &form, TIMEOUT) {
            Ok(t) => return Ok(granted(t, None)),
            Err(TokenError::Refused { code, description }) => match code.as_str() {
                "authorization_pending" => {}
                // RFC 8628 3.5: every later request waits 5 seconds longer.
                "slow_down" => interval += Duration::from_secs(5),
                "expired_token" => {
                    return Err(format!(
                        "the code {user_code} expired before it was approved: run `mailbeacon login {account}` again"
                    ))
                }
                "access_denied" | "authorization_declined" => {
                    return Err("the sign-in was declined".into())
                }
                _ => return Err(format!("{} refused the sign-in: {code}: {description}", o.issuer)),
            },
            Err(TokenError::Unreachable(why)) => {
                if !unreachable_said {
                    let _ = writeln!(out, "(the token endpoint cannot be reached: {why}; still trying)");
                    unreachable_said = true;
                }
                // RFC 8628 3.5: back off on connection trouble.
                interval = (interval * 2).min(Duration::from_secs(60));
            }
        }
    }
}

/// What came back from the provider through the browser.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Redirect {
    Code { code: String, state: String },
    Error { error: String, state: String },
}

fn browser(
    o: &OAuth2,
    authorize_url: &str,
    port: u16,
    params: &[(&str, &str)],
    out: &mut dyn Write,
    input: Box<dyn BufRead + Send>,
) -> Result<Grant, String> {
    let verifier = random_text(32)?;
    let state = random_text(16)?;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ));
    let redirect_uri = format!("http://127.0.0.1:{port}/");
    let scope = o.scopes.join(" ");
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", o.client_id.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("scope", scope.as_str()),
        ("state", state.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    query.extend_from_slice(params);
    let sep = if authorize_url.contains('?') {
        '&'
    } else {
        '?'
    };
    let url = format!("{authorize_url}{sep}{}", encode_query(&query));
    let _ = writeln!(
        out,
        "To sign in at {issuer}:\n  1. Open this address in a browser, on any machine:\n\n{url}\n\n\
         2. Approve. {issuer} then sends the browser to {redirect_uri}\n\
         \x20  - if the browser runs on this machine, or you forwarded the port over SSH\n\
         \x20    (ssh -L {port}:127.0.0.1:{port} THIS-MACHINE), the sign-in finishes by itself;\n\
         \x20  - otherwise that page fails to load: copy its whole address from the browser's\n\
         \x20    address bar and paste it here, then press Enter.",
        issuer = o.issuer
    );
    let (tx, rx) = mpsc::channel();
    match TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => {
            let tx = tx.clone();
            std::thread::spawn(move || listen(listener, tx));
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "(cannot listen on 127.0.0.1:{port}: {e}; paste the address instead)"
            );
        }
    }
    std::thread::spawn(move || read_pasted(input, tx));
    let _ = writeln!(out, "Waiting for the redirect or a pasted address...");
    let _ = out.flush();
    let (code, returned) = match rx.recv_timeout(BROWSER_WAIT) {
        Ok(Redirect::Code { code, state }) => (code, state),
        Ok(Redirect::Error { error, .. }) => {
            return Err(format!("{} refused the sign-in: {error}", o.issuer))
        }
        Err(_) => return Err("no redirect and no address arrived in 15 minutes".into()),
    };
    if returned != state {
        return Err("that address belongs to another sign-in (its state differs): run the login again and use the newest address".into());
    }
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    client(o, &mut form);
    token::request(&o.token_url, &form, TIMEOUT)
        .map(|t| granted(t, None))
        .map_err(|e| format!("{} refused the code: {e}", o.issuer))
}

/// Serves the loopback redirect: the first request that carries a code or an error is the
/// answer; anything else (a favicon) gets a 404.
fn listen(listener: TcpListener, tx: mpsc::Sender<Redirect>) {
    for stream in listener.incoming().flatten() {
        if let Some(redirect) = answer_browser(stream) {
            let _ = tx.send(redirect);
            return;
        }
    }
}

fn answer_browser(mut stream: TcpStream) -> Option<Redirect> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut line = String::new();
    BufReader::new((&stream).take(8192))
        .read_line(&mut line)
        .ok()?;
    let target = line.split_whitespace().nth(1).unwrap_or("");
    let redirect = parse_redirect(target);
    let (status, body) = match &redirect {
        Some(Redirect::Code { .. }) => {
            ("200 OK", "mailbeacon: signed in. You can close this page.")
        }
        Some(Redirect::Error { .. }) => (
            "200 OK",
            "mailbeacon: the sign-in was refused; see the terminal.",
        ),
        None => ("404 Not Found", "not found"),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    redirect
}

fn read_pasted(input: Box<dyn BufRead + Send>, tx: mpsc::Sender<Redirect>) {
    for line in input.lines() {
        let Ok(line) = line else { return };
        if let Some(redirect) = parse_redirect(line.trim()) {
            let _ = tx.send(redirect);
            return;
        }
    }
}

/// The code (or error) and state in a redirect address or its path, `None` without either.
fn parse_redirect(address: &str) -> Option<Redirect> {
    let query = address.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or("");
    let (mut code, mut error, mut state) = (None, None, String::new());
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode(v);
        match k {
            "code" => code = Some(v),
            "error" => error = Some(v),
            "state" => state = v,
            _ => {}
        }
    }
    match (code, error) {
        (_, Some(error)) => Some(Redirect::Error { error, state }),
        (Some(code), None) if !code.is_empty() => Some(Redirect::Code { code, state }),
        _ => None,
    }
}

/// `k=v&…` with RFC 3986's unreserved characters kept and everything else percent-encoded.
fn encode_query(pairs: &[(&str, &str)]) -> String {
    let enc = crate::text::percent_encode;
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-decoding of a query value (`+` is a space); invalid escapes stay as they are.
fn decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `n` random bytes as base64url: PKCE verifiers (RFC 7636 4.1: 43+ unreserved characters)
/// and the `state` that ties a redirect to this sign-in.
fn random_text(n: usize) -> Result<String, String> {
    use ring::rand::SecureRandom;
    let mut buf = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| "the system's random number generator failed".to_string())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_redirect_gives_its_code_and_state() {
        assert_eq!(
            parse_redirect("http://127.0.0.1:8083/?state=abc&code=4%2F0Ab-x+y&scope=https%3A%2F%2Fmail.google.com%2F"),
            Some(Redirect::Code {
                code: "4/0Ab-x y".into(),
                state: "abc".into()
            })
        );
        assert_eq!(
            parse_redirect("/?error=access_denied&state=s"),
            Some(Redirect::Error {
                error: "access_denied".into(),
                state: "s".into()
            })
        );
        assert_eq!(parse_redirect("/favicon.ico"), None);
        assert_eq!(parse_redirect("hello"), None);
        assert_eq!(parse_redirect("/?code=&state=x"), None);
        assert_eq!(
            parse_redirect("/?code=%zz%4"),
            Some(Redirect::Code {
                code: "%zz%4".into(),
                state: String::new()
            })
        );
    }

    #[test]
    fn queries_are_encoded_as_rfc_3986_says() {
        assert_eq!(
            encode_query(&[("scope", "offline_access https://x/y"), ("a", "b~c")]),
            "scope=offline_access%20https%3A%2F%2Fx%2Fy&a=b~c"
        );
    }

    #[test]
    fn a_pkce_verifier_is_long_enough_and_unreserved() {
        let v = random_text(32).unwrap();
        assert_eq!(v.len(), 43);
        assert!(v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(v, random_text(32).unwrap());
    }
}
