//! A fake OAuth 2.0 authorization server on 127.0.0.1, playing Microsoft's and Google's parts
//! for `mailbeacon login` and the daemon's token refreshes, and the introspection endpoint a
//! real Dovecot asks about each token (its `oauth2` passdb): Dovecot accepts exactly the access
//! tokens this fake issued and still calls active.
//!
//! - `POST /devicecode` (RFC 8628 3.1) → a device code and a user code; `approve(user_code)`
//!   plays the user approving it on another device.
//! - `GET /authorize` (PKCE, RFC 7636) → at once a 302 to the redirect URI with a code, as a
//!   browser would be sent back after the user approved.
//! - `POST /token` → the device-code, authorization-code and refresh-token grants. Every refresh
//!   rotates the refresh token (as Microsoft does): the old one is refused from then on.
//! - `POST /introspect` → `{"active": …, "username": "alice"}`.
//!
//! Every token issued is remembered, so a test can check none of them leaked.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const CLIENT_ID: &str = "mailbeacon-test-client";
pub const USER: &str = "alice";

/// One request to `/token`: its grant type, when, and the error answered (if any).
#[derive(Debug, Clone)]
pub struct Call {
    pub grant_type: String,
    pub at: Instant,
    pub error: Option<String>,
    /// The refresh token presented, for refresh grants.
    pub refresh_token: Option<String>,
}

#[derive(Default)]
struct State {
    lifetime: u64,
    next: u64,
    /// access token → (expires, active)
    access: HashMap<String, (Instant, bool)>,
    /// refresh token → still valid
    refresh: HashMap<String, bool>,
    /// device code → (user code, approved)
    devices: HashMap<String, (String, bool)>,
    /// authorization code → (S256 challenge, redirect URI)
    codes: HashMap<String, (String, String)>,
    slow_down: bool,
    calls: Vec<Call>,
    issued: Vec<String>,
}

pub struct FakeOAuth {
    base: String,
    state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
}

impl Drop for FakeOAuth {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

impl FakeOAuth {
    /// Access tokens live `lifetime` (`expires_in`).
    pub fn start(lifetime: Duration) -> FakeOAuth {
        let server =
            Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("fake oauth: bind 127.0.0.1:0"));
        let addr = server
            .server_addr()
            .to_ip()
            .expect("fake oauth: IP listener");
        let base = format!("http://{addr}");
        let state = Arc::new(Mutex::new(State {
            lifetime: lifetime.as_secs(),
            ..State::default()
        }));
        {
            let (server, state, base) = (server.clone(), state.clone(), base.clone());
            std::thread::Builder::new()
                .name("fake-oauth".into())
                .spawn(move || {
                    while let Ok(rq) = server.recv() {
                        serve(&state, &base, rq);
                    }
                })
                .expect("fake oauth: spawn");
        }
        FakeOAuth {
            base,
            state,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `[account.oauth2]` keys for a custom provider at this fake with the device flow.
    pub fn device_keys(&self) -> String {
        format!(
            "client_id = \"{CLIENT_ID}\"\ndevice_url = \"{}\"\ntoken_url = \"{}\"\nscopes = [\"offline_access\", \"imap\"]\n",
            self.url("/devicecode"),
            self.url("/token")
        )
    }

    /// The user approves the device code `user_code` on their phone.
    pub fn approve(&self, user_code: &str) {
        let mut s = self.state.lock().unwrap();
        let found = s.devices.values_mut().find(|(u, _)| u == user_code);
        found.expect("approve: no such user code").1 = true;
    }

    /// The next device-code poll is answered `slow_down`.
    pub fn slow_down_once(&self) {
        self.state.lock().unwrap().slow_down = true;
    }

    /// Every access token issued so far is no longer accepted (refresh tokens still work).
    pub fn deactivate_access_tokens(&self) {
        let mut s = self.state.lock().unwrap();
        s.access.values_mut().for_each(|a| a.1 = false);
    }

    /// The user revoked the app: every token issued so far is refused.
    pub fn revoke_all(&self) {
        let mut s = self.state.lock().unwrap();
        s.access.values_mut().for_each(|a| a.1 = false);
        s.refresh.values_mut().for_each(|v| *v = false);
    }

    /// Requests to `/token` with this grant type (`refresh_token`, `authorization_code`,
    /// `urn:ietf:params:oauth:grant-type:device_code`).
    pub fn calls(&self, grant_type: &str) -> Vec<Call> {
        let s = self.state.lock().unwrap();
        s.calls
            .iter()
            .filter(|c| c.grant_type == grant_type)
            .cloned()
            .collect()
    }

    /// Every access and refresh token issued.
    pub fn issued(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.clone()
    }

    /// Panics if any issued token appears in `text` (a log, a status, a dump).
    pub fn assert_no_token_in(&self, what: &str, text: &str) {
        for t in self.issued() {
            assert!(!text.contains(&t), "a token leaked into {what}:\n{text}");
        }
    }
}

fn serve(state: &Mutex<State>, base: &str, mut rq: tiny_http::Request) {
    let mut body = String::new();
    let _ = rq.as_reader().take(64 * 1024).read_to_string(&mut body);
    let (path, query) = rq.url().split_once('?').unwrap_or((rq.url(), ""));
    let path = path.to_string();
    let form = if path == "/authorize" {
        parse(query)
    } else {
        parse(&body)
    };
    let mut s = state.lock().unwrap();
    let (status, json, location) = match path.as_str() {
        "/devicecode" => (200, device_code(&mut s, base, &form), None),
        "/token" => {
            let (status, json) = token(&mut s, &form);
            (status, json, None)
        }
        "/authorize" => {
            let code = format!("CODE-{}", next(&mut s));
            let challenge = form.get("code_challenge").cloned().unwrap_or_default();
            let redirect = form.get("redirect_uri").cloned().unwrap_or_default();
            s.codes.insert(code.clone(), (challenge, redirect.clone()));
            let state_param = form.get("state").cloned().unwrap_or_default();
            let to = format!("{redirect}?state={state_param}&code={code}&scope=imap");
            (302, serde_json::json!({}), Some(to))
        }
        "/introspect" => {
            let token = form.get("token").cloned().unwrap_or_default();
            let active = s
                .access
                .get(&token)
                .is_some_and(|(expires, active)| *active && Instant::now() < *expires);
            (
                200,
                serde_json::json!({"active": active, "username": USER}),
                None,
            )
        }
        _ => (404, serde_json::json!({"error": "not_found"}), None),
    };
    drop(s);
    let mut response = tiny_http::Response::from_string(json.to_string())
        .with_status_code(status)
        .with_header(tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap());
    if let Some(to) = location {
        response = response.with_header(tiny_http::Header::from_bytes("Location", to).unwrap());
    }
    let _ = rq.respond(response);
}

fn next(s: &mut State) -> u64 {
    s.next += 1;
    s.next
}

fn device_code(s: &mut State, base: &str, form: &HashMap<String, String>) -> serde_json::Value {
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return serde_json::json!({"error": "invalid_client"});
    }
    let n = next(s);
    let (device, user) = (format!("DEVICE-{n}"), format!("ABCD-{n:04}"));
    s.devices.insert(device.clone(), (user.clone(), false));
    serde_json::json!({
        "device_code": device, "user_code": user, "verification_uri": format!("{base}/device"),
        "expires_in": 600, "interval": 1,
    })
}

fn token(s: &mut State, form: &HashMap<String, String>) -> (u16, serde_json::Value) {
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    let presented = form.get("refresh_token").cloned();
    let error = if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        Some("invalid_client")
    } else {
        match grant_type.as_str() {
            "urn:ietf:params:oauth:grant-type:device_code" => {
                let code = form.get("device_code").cloned().unwrap_or_default();
                match s.devices.get(&code) {
                    None => Some("invalid_grant"),
                    Some(_) if s.slow_down => {
                        s.slow_down = false;
                        Some("slow_down")
                    }
                    Some((_, false)) => Some("authorization_pending"),
                    Some((_, true)) => {
                        s.devices.remove(&code);
                        None
                    }
                }
            }
            "refresh_token" => match presented.as_ref().and_then(|r| s.refresh.get_mut(r)) {
                Some(valid) if *valid => {
                    *valid = false; // rotation: a refresh token works once
                    None
                }
                _ => Some("invalid_grant"),
            },
            "authorization_code" => {
                let code = form.get("code").cloned().unwrap_or_default();
                let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                let redirect = form.get("redirect_uri").cloned().unwrap_or_default();
                match s.codes.remove(&code) {
                    Some((challenge, uri)) if uri == redirect && s256(&verifier) == challenge => {
                        None
                    }
                    _ => Some("invalid_grant"),
                }
            }
            _ => Some("unsupported_grant_type"),
        }
    };
    s.calls.push(Call {
        grant_type,
        at: Instant::now(),
        error: error.map(str::to_string),
        refresh_token: presented,
    });
    if let Some(e) = error {
        return (
            400,
            serde_json::json!({"error": e, "error_description": format!("fake: {e}")}),
        );
    }
    let n = next(s);
    let (access, refresh) = (format!("AT-fake-{n}-a8f3"), format!("RT-fake-{n}-77c1"));
    let lifetime = s.lifetime;
    s.access.insert(
        access.clone(),
        (Instant::now() + Duration::from_secs(lifetime), true),
    );
    s.refresh.insert(refresh.clone(), true);
    s.issued.push(access.clone());
    s.issued.push(refresh.clone());
    (
        200,
        serde_json::json!({"token_type": "Bearer", "access_token": access,
            "refresh_token": refresh, "expires_in": lifetime, "scope": "imap"}),
    )
}

fn s256(verifier: &str) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// `application/x-www-form-urlencoded`.
fn parse(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
