//! The demo's Discord stand-in: a small HTTP/1.1 server on 127.0.0.1 (never any other address)
//! that answers webhook requests the way Discord does — `GET` returns the webhook, `POST
//! ?wait=true` returns the saved message with its id — or, once a webhook is switched to
//! forbidden, `403 {"code": 50013, "message": "Missing Permissions"}`. It records what was
//! posted: how many mails (embeds) each webhook received, the health notices it received (kept
//! apart from mail), and every message that could have pinged anyone (`allowed_mentions`
//! missing or allowing something).

use super::process::lock;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Hook {
    forbidden: bool,
    /// Titles of the embeds this webhook accepted, in order.
    received: Vec<String>,
    /// Health notices accepted: (title, description).
    notices: Vec<(String, String)>,
    posts: u64,
    refused: u64,
}

#[derive(Default)]
struct State {
    /// By `ID/TOKEN`.
    hooks: HashMap<String, Hook>,
    pings: u64,
}

pub(crate) struct StandIn {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl StandIn {
    /// Binds 127.0.0.1 on a free port and serves from a background thread until dropped.
    pub(crate) fn start() -> std::io::Result<StandIn> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::Builder::new()
            .name("discord-stand-in".into())
            .spawn(move || accept_loop(listener, s, st))?;
        Ok(StandIn { port, state, stop })
    }

    /// Adds a webhook that answers like a healthy one; returns its URL.
    pub(crate) fn webhook(&self, id: &str, token: &str) -> String {
        lock(&self.state)
            .hooks
            .insert(format!("{id}/{token}"), Hook::default());
        format!("http://127.0.0.1:{}/api/webhooks/{id}/{token}", self.port)
    }

    /// From now on the webhook answers 403 (code 50013), as when its channel's permissions
    /// change or it is deleted and its URL leaked.
    pub(crate) fn forbid(&self, id: &str, token: &str) {
        if let Some(h) = lock(&self.state).hooks.get_mut(&format!("{id}/{token}")) {
            h.forbidden = true;
        }
    }

    /// Titles of the mails (embeds) the webhook accepted.
    pub(crate) fn received(&self, id: &str, token: &str) -> Vec<String> {
        lock(&self.state)
            .hooks
            .get(&format!("{id}/{token}"))
            .map(|h| h.received.clone())
            .unwrap_or_default()
    }

    /// Health notices the webhook accepted: (title, description), in order.
    pub(crate) fn notices(&self, id: &str, token: &str) -> Vec<(String, String)> {
        lock(&self.state)
            .hooks
            .get(&format!("{id}/{token}"))
            .map(|h| h.notices.clone())
            .unwrap_or_default()
    }

    /// Mails accepted by every webhook together.
    pub(crate) fn received_total(&self) -> usize {
        lock(&self.state)
            .hooks
            .values()
            .map(|h| h.received.len())
            .sum()
    }

    /// POSTs the webhook refused (403).
    pub(crate) fn refused(&self, id: &str, token: &str) -> u64 {
        lock(&self.state)
            .hooks
            .get(&format!("{id}/{token}"))
            .map_or(0, |h| h.refused)
    }

    /// Accepted messages that could have pinged someone.
    pub(crate) fn pings(&self) -> u64 {
        lock(&self.state).pings
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn accept_loop(listener: TcpListener, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (s, st) = (state.clone(), stop.clone());
                let _ = std::thread::Builder::new()
                    .name("stand-in-conn".into())
                    .spawn(move || serve(stream, &s, &st));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// One connection: requests until the client closes it (keep-alive), the stand-in stops, or
/// 30 s of silence.
fn serve(stream: TcpStream, state: &Mutex<State>, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while !stop.load(Ordering::Relaxed) {
        let Some((method, path, body)) = read_request(&mut reader) else {
            return;
        };
        let (status, json) = answer(state, &method, &path, &body);
        let text = json.to_string();
        let reason = match status {
            200 => "OK",
            403 => "Forbidden",
            _ => "Not Found",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: keep-alive\r\n\r\n",
            text.len()
        );
        if writer
            .write_all(head.as_bytes())
            .and_then(|_| writer.write_all(text.as_bytes()))
            .is_err()
        {
            return;
        }
    }
}

/// Method, path (with query) and body of the next request; `None` at EOF or on garbage.
fn read_request(r: &mut impl BufRead) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    r.read_exact(&mut body).ok()?;
    Some((method, path, body))
}

fn answer(state: &Mutex<State>, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1_300_000_000_000_000_000);
    let route = path.split('?').next().unwrap_or("");
    let key = route
        .strip_prefix("/api/v10/webhooks/")
        .or_else(|| route.strip_prefix("/api/webhooks/"))
        .unwrap_or("")
        .trim_end_matches('/');
    let mut st = lock(state);
    let State { hooks, pings } = &mut *st;
    let Some(hook) = hooks.get_mut(key) else {
        return (
            404,
            serde_json::json!({"message": "Unknown Webhook", "code": 10015}),
        );
    };
    let id = key.split('/').next().unwrap_or("");
    if hook.forbidden {
        hook.refused += u64::from(method == "POST");
        return (
            403,
            serde_json::json!({"message": "Missing Permissions", "code": 50013}),
        );
    }
    if method != "POST" {
        return (
            200,
            serde_json::json!({"type": 1, "id": id, "name": "demo", "channel_id": "1"}),
        );
    }
    let msg: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    hook.posts += 1;
    if could_ping(&msg) {
        *pings += 1;
    }
    let embed = &msg["embeds"][0];
    if embed["footer"]["text"] == "mailbeacon health notice" {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
        hook.notices
            .push((text(&embed["title"]), text(&embed["description"])));
    } else if let Some(embeds) = msg["embeds"].as_array() {
        for e in embeds {
            hook.received
                .push(e["title"].as_str().unwrap_or("").to_string());
        }
    } else if let Some(content) = msg["content"].as_str() {
        // A plain re-render (no embeds): one mail.
        hook.received
            .push(content.lines().next().unwrap_or("").to_string());
    }
    let message_id = NEXT_ID.fetch_add(1, Ordering::Relaxed).to_string();
    (
        200,
        serde_json::json!({"id": message_id, "channel_id": "1", "webhook_id": id}),
    )
}

/// Discord pings for `@everyone`, `@here`, roles and users in `content` unless
/// `allowed_mentions` says otherwise: a message could ping when that field is missing or
/// allows any kind.
fn could_ping(msg: &serde_json::Value) -> bool {
    let am = &msg["allowed_mentions"];
    let none = |k: &str| am[k].as_array().is_none_or(|a| a.is_empty());
    am.is_null() || !(none("parse") && none("roles") && none("users"))
}
