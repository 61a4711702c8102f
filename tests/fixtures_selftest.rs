//! Proves the test fixtures work: a real Dovecot on loopback and the fake Discord API, the
//! latter through the raw HTTP/1.1 client below.

mod discord;
mod discord_limits;
mod dovecot;

use crate::common::fake_discord::FakeDiscord;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

// ------------------------------------------------------------------ raw HTTP/1.1 client

type Headers = Vec<(String, String)>;

fn http_full(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Headers, String) {
    let host = base.strip_prefix("http://").expect("http base");
    let mut s = TcpStream::connect(host).expect("connect to fake discord");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response head");
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn http(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let (st, _, b) = http_full(base, method, path, headers, body);
    (st, b)
}

fn hdr<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn post_embed(d: &FakeDiscord, path: &str, title: &str) -> (u16, String) {
    let body = json!({ "embeds": [{ "title": title, "description": "d" }], "allowed_mentions": { "parse": [] } });
    http(&d.base(), "POST", path, &[JSON], &body.to_string())
}
