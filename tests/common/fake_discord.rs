//! A faithful fake of Discord's webhook and bot HTTP API on 127.0.0.1:0, as Discord's API
//! documentation describes it.
//!
//! Routes (`/api/v10/...` and the version-less form of copied webhook URLs `/api/...`):
//! - `POST /api/v10/webhooks/{id}/{token}[?wait=true][&thread_id=..]` — executes the webhook:
//!   200 + message JSON with `wait=true`, 204 without a body otherwise. A `thread_id` must name
//!   a thread of the webhook's channel (else 400/10003).
//! - `GET /api/v10/webhooks/{id}/{token}` — the webhook object.
//! - `POST /api/v10/channels/{id}/messages` — a bot's post: needs `Authorization: Bot TOKEN`
//!   of a registered bot (else 401) and a `User-Agent: DiscordBot (…)` (else 403/40333). With
//!   `nonce` + `enforce_nonce: true`, a nonce already used in the channel returns the message it
//!   created and creates nothing.
//! - `GET /api/v10/channels/{id}` — the channel (or thread) object, for probes.
//!
//! Unknown webhook id → 404/10015; known id with a wrong token → 401/50027 (like Discord);
//! unknown channel → 404/10003. Every response carries `X-RateLimit-*` headers; by default they
//! are informational, with [`Options::enforce`] a request past the budget gets a 429 (user
//! scope) like Discord. The bucket hash is per route and shared by all webhooks and channels,
//! like Discord, so pacing has to be keyed on (bucket, webhook/channel id). Every created
//! message is kept per channel ([`FakeDiscord::messages_in`]): what a user would see.
//!
//! Process-wide trouble: [`FakeDiscord::global_429_next`] (the next POST, whichever webhook,
//! gets a global 429) and [`FakeDiscord::ban`] (Cloudflare's "error code: 1015" HTML page for
//! every request, without rate-limit headers).

use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Rate-limit window shown in the headers: 5 requests per 2 s per (route, webhook).
pub const RL_LIMIT: u32 = 5;
pub const RL_WINDOW: Duration = Duration::from_secs(2);
/// Bucket hashes (same for every webhook, like Discord).
pub const BUCKET_EXECUTE: &str = "1e3f5c0a2b9d47a8c6e1f0d2b3a49587";
pub const BUCKET_GET: &str = "7a1c9e2d4b6f08a3c5e7d9f1b2a4c6e8";
pub const BUCKET_CHANNEL_POST: &str = "c0ffee00d15c0ba11ab1e5ca1ab1e000";
pub const BUCKET_CHANNEL_GET: &str = "5e7d9f1b2a4c6e8a1c9e2d4b6f08a3c0";

/// Time windows and enforcement, so tests can run in seconds.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Requests per `rl_window` per (route, webhook/channel).
    pub rl_limit: u32,
    pub rl_window: Duration,
    /// Answer a request past the budget with a 429 (user scope), as Discord does.
    pub enforce: bool,
    /// Messages per window per channel, shared by every webhook posting into it and shown in
    /// no header (Discord: about 30 per 60 s): one more gets a `shared` 429 (code 20028).
    pub channel_limit: Option<(u32, Duration)>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            rl_limit: RL_LIMIT,
            rl_window: RL_WINDOW,
            enforce: false,
            channel_limit: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Behaviour {
    /// POST → 200 with the message JSON (204 without `wait=true`).
    Ok,
    /// Every POST answers `http` with `{"message", "code"}`; GET too when `http` is 401/403/404.
    Status { http: u16, code: u32 },
    /// Every Nth valid POST (N, 2N, ...) answers 500; the others succeed. 0 = never.
    FlakyEvery(u32),
    /// The first POST after this is set, and every POST within `retry_after` seconds of it,
    /// answers 429; after that the webhook goes back to `Ok` (once).
    RateLimited {
        retry_after: f64,
        scope: &'static str,
        global: bool,
    },
    /// POSTs whose body has embeds answer 400/50035 (with an `errors` tree naming the embed);
    /// plain content is accepted.
    RejectEmbeds,
    /// The next N valid POSTs create their message but answer 502, as when a proxy loses
    /// Discord's answer; later POSTs behave like `Ok`.
    CreateThenFail(u32),
}

/// One request as received, with the status it was answered with.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Query string without `?` ("" if none).
    pub query: String,
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, `Value::Null` if it is not JSON.
    pub body: Value,
    pub status: u16,
    /// The raw body (lossy UTF-8).
    pub raw_body: String,
    /// The JSON the fake answered with (`Value::Null` for a 204), e.g. the `errors` tree of a
    /// 400 that says which limit a payload broke.
    pub response: Value,
    /// When the request was handled.
    pub at: Instant,
}

impl Request {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// Whether the path used the explicit `/api/v10/` prefix.
    pub fn is_v10(&self) -> bool {
        self.path.starts_with("/api/v10/")
    }

    /// Titles of the embeds in the body (embeds without a title are skipped).
    pub fn embed_titles(&self) -> Vec<String> {
        embed_titles(&self.body)
    }
}

struct Hook {
    id: String,
    token: String,
    name: String,
    channel_id: String,
    behaviour: Behaviour,
    flaky_count: u32,
    rate_limited_until: Option<Instant>,
}

/// A channel a bot can post to, or a thread (a channel with a parent).
struct Channel {
    id: String,
    parent: Option<String>,
    /// A forum (or media) channel: messages only as posts (threads) or inside them.
    forum: bool,
    /// A post's name and tags, for a thread made in a forum.
    post: Option<(String, Vec<String>)>,
    behaviour: Behaviour,
    flaky_count: u32,
    rate_limited_until: Option<Instant>,
}

/// A message as created: what the channel shows.
#[derive(Clone, Debug)]
pub struct Created {
    pub id: String,
    pub channel_id: String,
    /// The POSTed body.
    pub body: Value,
    pub nonce: Option<String>,
    /// Files sent with it: (name, content type, bytes).
    pub files: Vec<upload::File>,
}

struct Window {
    start: Instant,
    count: u32,
}

struct Ban {
    until: Instant,
    retry_after: Option<u64>,
}

struct State {
    hooks: Vec<Hook>,
    requests: Vec<Request>,
    next_message: u64,
    next_channel: u64,
    windows: HashMap<(String, &'static str), Window>,
    opts: Options,
    bots: Vec<String>,
    channels: Vec<Channel>,
    messages: Vec<Created>,
    /// The next POST answers a global 429 with this `retry_after`.
    global_next: Option<f64>,
    ban: Option<Ban>,
    /// Per channel: the shared message window of [`Options::channel_limit`].
    channel_windows: HashMap<String, Window>,
    /// Every answer waits this long first (a slow server), outside the state lock.
    slow: Option<Duration>,
    /// Files together larger than this are refused (413, code 40005); 10 MiB when unset.
    upload_limit: Option<usize>,
}

pub struct FakeDiscord {
    base: String,
    state: Arc<Mutex<State>>,
    server: Option<Arc<tiny_http::Server>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeDiscord {
    pub fn start() -> FakeDiscord {
        FakeDiscord::start_with(Options::default())
    }

    /// A fake with its own rate-limit windows (and enforcement).
    pub fn start_with(opts: Options) -> FakeDiscord {
        let server = Arc::new(
            tiny_http::Server::http("127.0.0.1:0").expect("fake discord: bind 127.0.0.1:0"),
        );
        let addr = server
            .server_addr()
            .to_ip()
            .expect("fake discord: IP listener");
        let state = Arc::new(Mutex::new(State {
            hooks: Vec::new(),
            requests: Vec::new(),
            next_message: 1_300_000_000_000_000_000,
            next_channel: 1_200_000_000_000_000_000,
            windows: HashMap::new(),
            opts,
            bots: Vec::new(),
            channels: Vec::new(),
            messages: Vec::new(),
            global_next: None,
            ban: None,
            channel_windows: HashMap::new(),
            slow: None,
            upload_limit: None,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (server, state, stop) = (server.clone(), state.clone(), stop.clone());
            std::thread::Builder::new()
                .name("fake-discord".into())
                .spawn(move || loop {
                    match server.recv() {
                        Ok(rq) => {
                            if stop.load(Ordering::SeqCst) {
                                break;
                            }
                            serve(&state, rq);
                        }
                        Err(_) => {
                            if stop.load(Ordering::SeqCst) {
                                break;
                            }
                        }
                    }
                })
                .expect("fake discord: spawn server thread")
        };
        FakeDiscord {
            base: format!("http://{addr}"),
            state,
            server: Some(server),
            stop,
            thread: Some(thread),
        }
    }

    /// "http://127.0.0.1:PORT"
    pub fn base(&self) -> String {
        self.base.clone()
    }

    /// Registers webhook (id, token) — re-registering an id replaces its token (a rotated
    /// token: the old one then gets 401/50027) — and returns its URL in the copied-from-Discord
    /// form without API version: "{base}/api/webhooks/{id}/{token}".
    pub fn webhook(&self, id: &str, token: &str, b: Behaviour) -> String {
        let mut st = lock(&self.state);
        st.hooks.retain(|h| h.id != id && h.token != token);
        let channel_id = st.next_channel.to_string();
        st.next_channel += 1 << 22;
        st.hooks.push(Hook {
            id: id.to_string(),
            token: token.to_string(),
            name: format!("mailbeacon-test-{id}"),
            channel_id,
            behaviour: b,
            flaky_count: 0,
            rate_limited_until: None,
        });
        format!("{}/api/webhooks/{id}/{token}", self.base)
    }

    /// Registers webhook (id, token) in the channel of the webhook whose token is `beside`: two
    /// webhooks of one channel share its message limit ([`Options::channel_limit`]).
    pub fn webhook_beside(&self, id: &str, token: &str, beside: &str, b: Behaviour) -> String {
        let url = self.webhook(id, token, b);
        let channel = self.webhook_channel(beside);
        let mut st = lock(&self.state);
        if let Some(h) = st.hooks.iter_mut().find(|h| h.token == token) {
            h.channel_id = channel;
        }
        url
    }

    /// Registers a bot token (its `Authorization: Bot TOKEN` is accepted everywhere).
    pub fn bot(&self, token: &str) {
        lock(&self.state).bots.push(token.to_string());
    }

    /// Registers a text channel the bots can post to.
    pub fn channel(&self, id: &str, b: Behaviour) {
        let mut st = lock(&self.state);
        st.channels.retain(|c| c.id != id);
        st.channels.push(Channel {
            id: id.to_string(),
            parent: None,
            forum: false,
            post: None,
            behaviour: b,
            flaky_count: 0,
            rate_limited_until: None,
        });
    }

    /// Creates a thread in channel `parent` (a bot channel or a webhook's channel); its id.
    pub fn thread(&self, parent: &str) -> String {
        let mut st = lock(&self.state);
        let id = st.next_channel.to_string();
        st.next_channel += 1 << 22;
        st.channels.push(Channel {
            id: id.clone(),
            parent: Some(parent.to_string()),
            forum: false,
            post: None,
            behaviour: Behaviour::Ok,
            flaky_count: 0,
            rate_limited_until: None,
        });
        id
    }

    /// The channel the webhook with this token posts to.
    pub fn webhook_channel(&self, token: &str) -> String {
        lock(&self.state)
            .hooks
            .iter()
            .find(|h| h.token == token)
            .map(|h| h.channel_id.clone())
            .unwrap_or_else(|| panic!("fake discord: no webhook with token {token:?}"))
    }

    /// The next POST, to whichever webhook or channel, answers a global 429.
    pub fn global_429_next(&self, retry_after: f64) {
        lock(&self.state).global_next = Some(retry_after);
    }

    /// Cloudflare bans this client for `lasting`: every request gets the HTML "error code:
    /// 1015" page (429, no rate-limit headers), with `Retry-After` when given.
    /// Every later answer comes only after `delay` (a slow server); `None` answers at once.
    pub fn set_slow(&self, delay: Option<Duration>) {
        lock(&self.state).slow = delay;
    }

    pub fn ban(&self, lasting: Duration, retry_after: Option<u64>) {
        lock(&self.state).ban = Some(Ban {
            until: Instant::now() + lasting,
            retry_after,
        });
    }

    /// Changes the behaviour of the webhook with this token (resets Flaky/RateLimited state).
    pub fn set_behaviour(&self, token: &str, b: Behaviour) {
        let mut st = lock(&self.state);
        let h = st
            .hooks
            .iter_mut()
            .find(|h| h.token == token)
            .unwrap_or_else(|| panic!("fake discord: no webhook with token {token:?}"));
        h.behaviour = b;
        h.flaky_count = 0;
        h.rate_limited_until = None;
    }

    /// The current behaviour of the webhook with this token (RateLimited turns into Ok once
    /// its window is over).
    pub fn behaviour(&self, token: &str) -> Option<Behaviour> {
        lock(&self.state)
            .hooks
            .iter()
            .find(|h| h.token == token)
            .map(|h| h.behaviour.clone())
    }

    /// Deletes the webhook: from now on it answers 404/10015 like a deleted Discord webhook.
    pub fn delete_webhook(&self, token: &str) {
        lock(&self.state).hooks.retain(|h| h.token != token);
    }
}

impl Drop for FakeDiscord {
    /// Stops the server thread and closes the listening socket (waits until the port refuses
    /// connections). Keep-alive connections a client still holds are not answered any more.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(server) = self.server.take() {
            server.unblock();
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
            let addr = server.server_addr().to_ip();
            drop(server); // tiny_http closes the listener from its accept thread
            if let Some(addr) = addr {
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline
                    && std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                        .is_ok()
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

// ------------------------------------------------------------------ handling

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn embed_titles(body: &Value) -> Vec<String> {
    body.get("embeds")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.get("title").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[path = "fake_discord/bot.rs"]
mod bot;
#[path = "fake_discord/forum.rs"]
mod forum;
#[path = "fake_discord/http.rs"]
mod http;
#[path = "fake_discord/seen.rs"]
mod seen;
#[path = "fake_discord/upload.rs"]
mod upload;
#[path = "fake_discord/validate.rs"]
mod validate;
#[path = "fake_discord/webhook.rs"]
mod webhook;

use bot::*;
use http::*;
use validate::*;
use webhook::*;
