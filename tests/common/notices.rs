//! Helpers for the notice and heartbeat tests: telling mailbeacon's health notices apart from
//! mail in what the fake Discord received, and a fake heartbeat monitor on 127.0.0.1 (like
//! healthchecks.io or Uptime Kuma) that records every call and can hang.

use crate::common::fake_discord::{FakeDiscord, Request};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Whether an acknowledged POST is a health notice (its embed's footer says so).
pub fn is_notice(r: &Request) -> bool {
    r.body["embeds"][0]["footer"]["text"] == "mailbeacon health notice"
}

/// The acknowledged health notices posted with `token`, in order.
pub fn notices_to(discord: &FakeDiscord, token: &str) -> Vec<Request> {
    discord
        .posts_to(token)
        .into_iter()
        .filter(|r| (200..300).contains(&r.status) && is_notice(r))
        .collect()
}

/// Every health notice posted anywhere, acknowledged or not.
pub fn all_notices(discord: &FakeDiscord) -> Vec<Request> {
    discord
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && is_notice(r))
        .collect()
}

/// Embed titles of the acknowledged mail (not notices) posted with `token`.
pub fn mail_titles(discord: &FakeDiscord, token: &str) -> Vec<String> {
    discord
        .posts_to(token)
        .iter()
        .filter(|r| (200..300).contains(&r.status) && !is_notice(r))
        .flat_map(|r| r.embed_titles())
        .collect()
}

/// A loopback port nothing listens on (the listener is gone when this returns): every
/// connection to it is refused, like a monitor or a mail server that is down.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("its address").port()
}

pub fn title(r: &Request) -> String {
    r.body["embeds"][0]["title"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

pub fn description(r: &Request) -> String {
    r.body["embeds"][0]["description"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// One call the monitor received.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    /// Path and query.
    pub url: String,
    pub body: String,
}

/// A heartbeat monitor on 127.0.0.1:0; `hang` makes every answer wait that long.
pub struct Monitor {
    pub base: String,
    calls: Arc<Mutex<Vec<Call>>>,
    server: Arc<tiny_http::Server>,
}

impl Monitor {
    pub fn start(hang: Option<Duration>) -> Monitor {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind monitor"));
        let port = server.server_addr().to_ip().map_or(0, |a| a.port());
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (s, c) = (server.clone(), calls.clone());
        std::thread::spawn(move || {
            for mut req in s.incoming_requests() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                c.lock().unwrap().push(Call {
                    method: req.method().to_string(),
                    url: req.url().to_string(),
                    body,
                });
                // Each answer on its own thread, so a hanging one holds up only itself.
                std::thread::spawn(move || {
                    if let Some(h) = hang {
                        std::thread::sleep(h);
                    }
                    let _ = req.respond(tiny_http::Response::from_string("OK"));
                });
            }
        });
        Monitor {
            base: format!("http://127.0.0.1:{port}"),
            calls,
            server,
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.server.unblock();
    }
}
