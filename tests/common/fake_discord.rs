#![allow(dead_code)]
//! A faithful fake of Discord's webhook and bot HTTP API on 127.0.0.1:0 (see
//! shared/notes/discord.md).
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

    /// Changes the behaviour of a bot channel (resets Flaky/RateLimited state).
    pub fn set_channel_behaviour(&self, id: &str, b: Behaviour) {
        let mut st = lock(&self.state);
        let c = st
            .channels
            .iter_mut()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("fake discord: no channel {id:?}"));
        c.behaviour = b;
        c.flaky_count = 0;
        c.rate_limited_until = None;
    }

    /// Every message created in this channel (or thread), in order.
    pub fn messages_in(&self, channel_id: &str) -> Vec<Created> {
        lock(&self.state)
            .messages
            .iter()
            .filter(|m| m.channel_id == channel_id)
            .cloned()
            .collect()
    }

    /// Embed titles of every message created in this channel, in order.
    pub fn titles_in(&self, channel_id: &str) -> Vec<String> {
        self.messages_in(channel_id)
            .iter()
            .flat_map(|m| embed_titles(&m.body))
            .collect()
    }

    /// Requests whose path names this channel id.
    pub fn requests_to_channel(&self, channel_id: &str) -> Vec<Request> {
        lock(&self.state)
            .requests
            .iter()
            .filter(|r| r.path.split('/').any(|seg| seg == channel_id))
            .cloned()
            .collect()
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

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.state).requests.clone()
    }

    /// How many requests have been received so far (cheap: nothing is copied). A request is
    /// counted before its answer is sent, so a kill the moment this grows lands mid-POST.
    pub fn request_count(&self) -> usize {
        lock(&self.state).requests.len()
    }

    /// POSTs whose path has `{token}` as a segment, in order.
    pub fn posts_to(&self, token: &str) -> Vec<Request> {
        lock(&self.state)
            .requests
            .iter()
            .filter(|r| r.method == "POST" && r.path.split('/').any(|seg| seg == token))
            .cloned()
            .collect()
    }

    /// Titles of every embed (that has a title) in every acknowledged (2xx) POST to this
    /// token, in order.
    pub fn delivered_titles(&self, token: &str) -> Vec<String> {
        self.posts_to(token)
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .flat_map(|r| embed_titles(&r.body))
            .collect()
    }

    /// Waits up to `timeout` until `cond(self)` holds; returns whether it did.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut cond: impl FnMut(&FakeDiscord) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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

struct Reply {
    status: u16,
    body: Option<Value>,
    headers: Vec<(String, String)>,
    /// A non-JSON body (Cloudflare's HTML pages).
    html: Option<String>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
            html: None,
        }
    }
    fn error(status: u16, code: u32) -> Reply {
        let mut body = json!({ "message": error_message(status, code), "code": code });
        if code == 50035 {
            body["errors"] = json!({});
        }
        Reply::json(status, body)
    }
    fn form_errors(errors: Value) -> Reply {
        Reply::json(
            400,
            json!({ "message": "Invalid Form Body", "code": 50035, "errors": errors }),
        )
    }
}

fn error_message(status: u16, code: u32) -> String {
    match code {
        10003 => "Unknown Channel".into(),
        10015 => "Unknown Webhook".into(),
        20028 => {
            "The write action you are performing on the channel has hit the write rate limit".into()
        }
        40005 => "Request entity too large".into(),
        40333 => "internal network error".into(),
        50001 => "Missing Access".into(),
        50006 => "Cannot send an empty message".into(),
        50013 => "Missing Permissions".into(),
        50027 => "Invalid Webhook Token".into(),
        50035 => "Invalid Form Body".into(),
        50109 => "The request body contains invalid JSON.".into(),
        130000 => "API resource is currently overloaded. Try again later.".into(),
        _ => {
            let reason = match status {
                400 => "Bad Request",
                401 => "Unauthorized",
                403 => "Forbidden",
                404 => "Not Found",
                405 => "Method Not Allowed",
                413 => "Payload Too Large",
                429 => "Too Many Requests",
                500 => "Internal Server Error",
                502 => "Bad Gateway",
                503 => "Service Unavailable",
                504 => "Gateway Timeout",
                _ => "Error",
            };
            format!("{status}: {reason}")
        }
    }
}

fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn serve(state: &Arc<Mutex<State>>, mut rq: tiny_http::Request) {
    let method = rq.method().as_str().to_ascii_uppercase();
    let url = rq.url().to_string();
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (url.clone(), String::new()),
    };
    let headers: Vec<(String, String)> = rq
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_string(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    let mut raw = Vec::new();
    let _ = rq.as_reader().read_to_end(&mut raw);
    let raw_body = String::from_utf8_lossy(&raw).to_string();
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let slow = lock(state).slow;
    if let Some(delay) = slow {
        std::thread::sleep(delay);
    }

    // A message with files: its JSON goes through the usual checks, the files onto it.
    let (raw, headers, files) = match upload::split(&headers, &raw) {
        Some((json, files)) => {
            let mut as_json: Vec<(String, String)> = headers
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("content-type"))
                .cloned()
                .collect();
            as_json.push(("Content-Type".into(), "application/json".into()));
            (json, as_json, files)
        }
        None => (raw, headers, Vec::new()),
    };
    let reply = {
        let mut st = lock(state);
        let limit = st.upload_limit.unwrap_or(10 * 1024 * 1024);
        let reply = if files.iter().map(|f| f.2.len()).sum::<usize>() > limit {
            Reply::json(
                413,
                json!({ "message": "Request entity too large", "code": 40005 }),
            )
        } else {
            let before = st.messages.len();
            let reply = handle(&mut st, &method, &path, &query, &headers, &raw);
            if st.messages.len() > before {
                if let Some(created) = st.messages.last_mut() {
                    created.files = files;
                }
            }
            reply
        };
        st.requests.push(Request {
            method,
            path,
            query,
            headers,
            body,
            status: reply.status,
            raw_body,
            response: reply.body.clone().unwrap_or(Value::Null),
            at: Instant::now(),
        });
        reply
    };

    let data = match (&reply.body, &reply.html, reply.status) {
        (_, _, 204) => Vec::new(),
        (_, Some(html), _) => html.clone().into_bytes(),
        (None, None, _) => Vec::new(),
        (Some(v), None, _) => serde_json::to_vec(v).unwrap_or_default(),
    };
    let mut resp = tiny_http::Response::from_data(data)
        .with_status_code(reply.status)
        .with_chunked_threshold(usize::MAX);
    if reply.html.is_some() {
        resp.add_header(header("Content-Type", "text/html; charset=UTF-8"));
    } else if reply.body.is_some() && reply.status != 204 {
        resp.add_header(header("Content-Type", "application/json"));
    }
    for (k, v) in &reply.headers {
        resp.add_header(header(k, v));
    }
    let _ = rq.respond(resp);
}

pub(crate) fn header(k: &str, v: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("valid header")
}

#[path = "fake_discord/forum.rs"]
mod forum;
#[path = "fake_discord/upload.rs"]
mod upload;

/// Splits `/api[/v10]/webhooks/{id}/{token}` into (id, token).
fn parse_webhook_path(path: &str) -> Option<(String, String)> {
    let rest = path
        .strip_prefix("/api/v10/webhooks/")
        .or_else(|| path.strip_prefix("/api/webhooks/"))?;
    let mut it = rest.split('/');
    let id = it.next()?;
    let token = it.next()?;
    if it.next().is_some() || id.is_empty() || token.is_empty() {
        return None;
    }
    Some((id.to_string(), token.to_string()))
}

fn handle(
    st: &mut State,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    raw: &[u8],
) -> Reply {
    let now = Instant::now();
    if let Some(reply) = process_wide(st, method, now) {
        return reply;
    }
    if let Some(rest) = path.strip_prefix("/api/v10/channels/") {
        return bot_route(st, method, rest, headers, raw, now);
    }
    let Some((id, token)) = parse_webhook_path(path) else {
        return Reply::error(404, 0);
    };
    let route: &'static str = match method {
        "POST" => BUCKET_EXECUTE,
        "GET" => BUCKET_GET,
        _ => {
            return Reply::error(405, 0);
        }
    };
    let rl = match rate_headers(st, &id, route, now) {
        Ok(rl) => rl,
        Err(over) => return over,
    };

    let mut reply = match st.hooks.iter().position(|h| h.id == id) {
        None => Reply::error(404, 10015),
        Some(i) if st.hooks[i].token != token => Reply::error(401, 50027),
        Some(i) if method == "GET" => get_webhook(&st.hooks[i]),
        Some(i) => {
            let wait = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .any(|(k, v)| k == "wait" && v.eq_ignore_ascii_case("true"));
            let thread_id = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "thread_id")
                .map(|(_, v)| v.to_string());
            execute(st, i, headers, raw, wait, thread_id, now)
        }
    };
    with_rate_headers(&mut reply, rl);
    reply
}

/// Rate-limit headers on every answer; a 429 overrides Remaining/Reset-After itself.
fn with_rate_headers(reply: &mut Reply, rl: Vec<(String, String)>) {
    for (k, v) in rl {
        if !reply
            .headers
            .iter()
            .any(|(hk, _)| hk.eq_ignore_ascii_case(&k))
        {
            reply.headers.push((k, v));
        }
    }
}

/// A Cloudflare ban (every request) or a pending global 429 (the next POST).
fn process_wide(st: &mut State, method: &str, now: Instant) -> Option<Reply> {
    if let Some(ban) = &st.ban {
        if now < ban.until {
            let mut r = Reply {
                status: 429,
                body: None,
                headers: Vec::new(),
                html: Some("<!DOCTYPE html>\n<html><head><title>Access denied | discord.com used Cloudflare to restrict access</title></head>\n<body><h1>Error 1015</h1><p>You are being rate limited.</p>\n<p>error code: 1015</p></body></html>\n".into()),
            };
            if let Some(secs) = ban.retry_after {
                r.headers.push(("Retry-After".into(), secs.to_string()));
            }
            return Some(r);
        }
        st.ban = None;
    }
    if method == "POST" {
        if let Some(retry_after) = st.global_next.take() {
            let mut r = Reply::json(
                429,
                json!({ "message": "You are being rate limited.", "retry_after": retry_after, "global": true }),
            );
            r.headers.push((
                "Retry-After".into(),
                (retry_after.ceil() as u64).to_string(),
            ));
            r.headers.push(("X-RateLimit-Global".into(), "true".into()));
            r.headers
                .push(("X-RateLimit-Scope".into(), "global".into()));
            return Some(r);
        }
    }
    None
}

/// `{id}` or `{id}/messages` under `/api/v10/channels/`, as a bot.
fn bot_route(
    st: &mut State,
    method: &str,
    rest: &str,
    headers: &[(String, String)],
    raw: &[u8],
    now: Instant,
) -> Reply {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let authorised = header("Authorization")
        .and_then(|a| a.strip_prefix("Bot "))
        .is_some_and(|t| st.bots.iter().any(|b| b == t));
    if !authorised {
        return Reply::json(401, json!({ "message": "401: Unauthorized", "code": 0 }));
    }
    if !header("User-Agent").is_some_and(|ua| ua.starts_with("DiscordBot (")) {
        return Reply::error(403, 40333);
    }
    if let Some((id, "threads")) = rest.split_once('/') {
        return forum::bot_post(st, id, method, headers, raw, now);
    }
    let (channel_id, posting) = match rest.split_once('/') {
        Some((id, "messages")) if method == "POST" => (id.to_string(), true),
        None if method == "GET" => (rest.to_string(), false),
        _ => return Reply::error(405, 0),
    };
    let route = if posting {
        BUCKET_CHANNEL_POST
    } else {
        BUCKET_CHANNEL_GET
    };
    let rl = match rate_headers(st, &channel_id, route, now) {
        Ok(rl) => rl,
        Err(over) => return over,
    };
    let Some(i) = st.channels.iter().position(|c| c.id == channel_id) else {
        return Reply::error(404, 10003);
    };
    let mut reply = if posting && st.channels[i].forum {
        Reply::json(
            400,
            json!({ "message": "Cannot send messages in a non-text channel", "code": 50008 }),
        )
    } else if posting {
        bot_post(st, i, headers, raw, now)
    } else if let Behaviour::Status { http, code } = st.channels[i].behaviour {
        if matches!(http, 401 | 403 | 404) {
            Reply::error(http, code)
        } else {
            channel_object(&st.channels[i])
        }
    } else {
        channel_object(&st.channels[i])
    };
    with_rate_headers(&mut reply, rl);
    reply
}

fn channel_object(c: &Channel) -> Reply {
    Reply::json(
        200,
        json!({
            "id": c.id,
            "type": if c.forum { 15 } else if c.parent.is_some() { 11 } else { 0 },
            "guild_id": "1100000000000000000",
            "name": format!("channel-{}", c.id),
            "parent_id": c.parent,
        }),
    )
}

fn bot_post(
    st: &mut State,
    i: usize,
    headers: &[(String, String)],
    raw: &[u8],
    now: Instant,
) -> Reply {
    let c = &mut st.channels[i];
    let body = match admit_post(
        &mut c.behaviour,
        &mut c.flaky_count,
        &mut c.rate_limited_until,
        headers,
        raw,
        now,
    ) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let channel_id = c.id.clone();
    let nonce = body.get("nonce").and_then(|n| match n {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    if nonce.as_ref().is_some_and(|n| n.chars().count() > 25) {
        return Reply::form_errors(json!({ "nonce": { "_errors": [{
            "code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 25 or fewer in length."
        }]}}));
    }
    let enforce = body.get("enforce_nonce").and_then(Value::as_bool) == Some(true);
    if let (Some(n), true) = (&nonce, enforce) {
        if let Some(m) = st
            .messages
            .iter()
            .find(|m| m.channel_id == channel_id && m.nonce.as_ref() == Some(n))
        {
            // Discord returns the message this nonce already created; nothing new is posted.
            let (id, body) = (m.id.clone(), m.body.clone());
            return Reply::json(200, message_json(&id, &channel_id, &body, "bot", None));
        }
    }
    let id = create(st, &channel_id, &body, nonce);
    if let Some(r) = lose_answer(&mut st.channels[i].behaviour) {
        return r;
    }
    Reply::json(200, message_json(&id, &channel_id, &body, "bot", None))
}

/// `CreateThenFail`: the message exists, but the answer is lost (502).
fn lose_answer(b: &mut Behaviour) -> Option<Reply> {
    if let Behaviour::CreateThenFail(n) = b {
        if *n > 0 {
            *n -= 1;
            return Some(Reply::error(502, 0));
        }
    }
    None
}

/// Stores a created message; its id.
fn create(st: &mut State, channel_id: &str, body: &Value, nonce: Option<String>) -> String {
    let id = st.next_message.to_string();
    st.next_message += 1 << 22;
    st.messages.push(Created {
        id: id.clone(),
        channel_id: channel_id.to_string(),
        body: body.clone(),
        nonce,
        files: Vec::new(),
    });
    id
}

/// The request budget of (route bucket, webhook/channel): its headers, or a 429 when the
/// budget is spent and enforcement is on.
fn rate_headers(
    st: &mut State,
    id: &str,
    bucket: &'static str,
    now: Instant,
) -> Result<Vec<(String, String)>, Reply> {
    let opts = st.opts;
    let w = st
        .windows
        .entry((id.to_string(), bucket))
        .or_insert(Window {
            start: now,
            count: 0,
        });
    if now.duration_since(w.start) >= opts.rl_window {
        w.start = now;
        w.count = 0;
    }
    w.count += 1;
    let remaining = opts.rl_limit.saturating_sub(w.count);
    let reset_after = (opts.rl_window.saturating_sub(now.duration_since(w.start))).as_secs_f64();
    let headers = vec![
        ("X-RateLimit-Limit".into(), opts.rl_limit.to_string()),
        ("X-RateLimit-Remaining".into(), remaining.to_string()),
        (
            "X-RateLimit-Reset".into(),
            format!("{:.3}", epoch_secs() + reset_after),
        ),
        (
            "X-RateLimit-Reset-After".into(),
            format!("{reset_after:.3}"),
        ),
        ("X-RateLimit-Bucket".into(), bucket.to_string()),
    ];
    if opts.enforce && w.count > opts.rl_limit {
        let left = (reset_after * 1000.0).ceil() / 1000.0;
        let mut r = Reply::json(
            429,
            json!({ "message": "You are being rate limited.", "retry_after": left, "global": false }),
        );
        r.headers
            .push(("Retry-After".into(), (left.ceil() as u64).to_string()));
        r.headers.push(("X-RateLimit-Scope".into(), "user".into()));
        r.headers.extend(headers);
        return Err(r);
    }
    Ok(headers)
}

fn get_webhook(h: &Hook) -> Reply {
    if let Behaviour::Status { http, code } = h.behaviour {
        if matches!(http, 401 | 403 | 404) {
            return Reply::error(http, code);
        }
    }
    Reply::json(
        200,
        json!({
            "id": h.id,
            "token": h.token,
            "name": h.name,
            "channel_id": h.channel_id,
            "guild_id": "1100000000000000000",
            "application_id": null,
            "avatar": null,
            "type": 1,
        }),
    )
}

/// What every POST goes through before a message is created, webhook or bot: an active rate
/// limit, a configured failure, Discord's validation, flakiness. The parsed body when it passes.
fn admit_post(
    behaviour: &mut Behaviour,
    flaky_count: &mut u32,
    rate_limited_until: &mut Option<Instant>,
    headers: &[(String, String)],
    raw: &[u8],
    now: Instant,
) -> Result<Value, Reply> {
    // 1. An active rate limit.
    if let Behaviour::RateLimited {
        retry_after,
        scope,
        global,
    } = behaviour.clone()
    {
        let first = rate_limited_until.is_none();
        if first {
            *rate_limited_until = Some(now + Duration::from_secs_f64(retry_after.max(0.0)));
        }
        let until = rate_limited_until.expect("set above");
        if now < until || first {
            let left = until.saturating_duration_since(now).as_secs_f64();
            let left = (left * 1000.0).round() / 1000.0;
            let mut r = Reply::json(
                429,
                json!({
                    "message": "You are being rate limited.",
                    "retry_after": left,
                    "global": global,
                }),
            );
            r.headers
                .push(("Retry-After".into(), (left.ceil() as u64).to_string()));
            r.headers
                .push(("X-RateLimit-Scope".into(), scope.to_string()));
            if global {
                r.headers.push(("X-RateLimit-Global".into(), "true".into()));
            }
            r.headers.push(("X-RateLimit-Remaining".into(), "0".into()));
            r.headers
                .push(("X-RateLimit-Reset-After".into(), format!("{left:.3}")));
            r.headers.push((
                "X-RateLimit-Reset".into(),
                format!("{:.3}", epoch_secs() + left),
            ));
            return Err(r);
        }
        *behaviour = Behaviour::Ok;
        *rate_limited_until = None;
    }

    // 2. A configured failure.
    if let Behaviour::Status { http, code } = *behaviour {
        return Err(Reply::error(http, code));
    }

    // 3. Validation like Discord's.
    let ct_ok = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("content-type")
            && v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
    });
    if !ct_ok {
        return Err(Reply::form_errors(json!({ "_errors": [{
            "code": "CONTENT_TYPE_INVALID",
            "message": "Expected \"Content-Type\" header to be one of {'application/json', 'application/x-www-form-urlencoded', 'multipart/form-data'}."
        }]})));
    }
    let body: Value = match serde_json::from_slice(raw) {
        Ok(v) => v,
        Err(_) => return Err(Reply::error(400, 50109)),
    };
    validate(&body)?;
    if *behaviour == Behaviour::RejectEmbeds
        && body
            .get("embeds")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty())
    {
        return Err(Reply::form_errors(json!({ "embeds": { "0": { "_errors": [{
            "code": "EMBED_REJECTED", "message": "This embed cannot be sent here."
        }]}}})));
    }

    // 4. Flakiness (counted over valid POSTs).
    if let Behaviour::FlakyEvery(n) = *behaviour {
        *flaky_count += 1;
        if n > 0 && *flaky_count % n == 0 {
            return Err(Reply::error(500, 0));
        }
    }
    Ok(body)
}

fn execute(
    st: &mut State,
    i: usize,
    headers: &[(String, String)],
    raw: &[u8],
    wait: bool,
    thread_id: Option<String>,
    now: Instant,
) -> Reply {
    let h = &mut st.hooks[i];
    let body = match admit_post(
        &mut h.behaviour,
        &mut h.flaky_count,
        &mut h.rate_limited_until,
        headers,
        raw,
        now,
    ) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let hook_channel = h.channel_id.clone();
    let in_forum = st.channels.iter().any(|c| c.id == hook_channel && c.forum);
    // A thread must exist and belong to the webhook's channel.
    let channel_id = match thread_id {
        None if in_forum => match forum::new_post(st, &hook_channel, &body) {
            Ok(thread) => thread,
            Err(reply) => return reply,
        },
        None => hook_channel,
        Some(t) => {
            let ok = st
                .channels
                .iter()
                .any(|c| c.id == t && c.parent.as_deref() == Some(hook_channel.as_str()));
            if !ok {
                return Reply::json(400, json!({ "message": "Unknown Channel", "code": 10003 }));
            }
            t
        }
    };

    if let Some(r) = channel_full(st, &channel_id, now) {
        return r;
    }

    // 5. Success.
    let msg_id = create(st, &channel_id, &body, None);
    if let Some(r) = lose_answer(&mut st.hooks[i].behaviour) {
        return r;
    }
    if !wait {
        return Reply {
            status: 204,
            body: None,
            headers: Vec::new(),
            html: None,
        };
    }
    let h = &st.hooks[i];
    let username = body
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or(&h.name)
        .to_string();
    Reply::json(
        200,
        message_json(&msg_id, &channel_id, &body, &username, Some(&h.id)),
    )
}

/// The channel's shared window is full: a `shared` 429 that no header warned of (the
/// webhook's own `X-RateLimit-Remaining` may still be above 0).
fn channel_full(st: &mut State, channel_id: &str, now: Instant) -> Option<Reply> {
    let (limit, window) = st.opts.channel_limit?;
    let w = st
        .channel_windows
        .entry(channel_id.to_string())
        .or_insert(Window {
            start: now,
            count: 0,
        });
    if now.duration_since(w.start) >= window {
        w.start = now;
        w.count = 0;
    }
    if w.count < limit {
        w.count += 1;
        return None;
    }
    let left = window
        .saturating_sub(now.duration_since(w.start))
        .as_secs_f64();
    let left = (left * 1000.0).ceil() / 1000.0;
    let mut r = Reply::json(
        429,
        json!({ "message": "You are being rate limited.", "retry_after": left, "global": false, "code": 20028 }),
    );
    r.headers
        .push(("Retry-After".into(), (left.ceil() as u64).to_string()));
    r.headers
        .push(("X-RateLimit-Scope".into(), "shared".into()));
    Some(r)
}

/// The message object Discord answers with.
fn message_json(
    id: &str,
    channel_id: &str,
    body: &Value,
    username: &str,
    webhook_id: Option<&str>,
) -> Value {
    let embeds: Vec<Value> = body
        .get("embeds")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut e| {
            if let Some(o) = e.as_object_mut() {
                o.entry("type").or_insert(json!("rich"));
            }
            e
        })
        .collect();
    json!({
        "id": id,
        "type": 0,
        "content": body.get("content").and_then(Value::as_str).unwrap_or(""),
        "channel_id": channel_id,
        "author": { "id": webhook_id.unwrap_or("1150000000000000000"), "username": username, "avatar": null, "discriminator": "0000", "bot": true },
        "attachments": [],
        "embeds": embeds,
        "mentions": [],
        "mention_roles": [],
        "pinned": false,
        "mention_everyone": false,
        "tts": false,
        "timestamp": chrono_like_now(),
        "edited_timestamp": null,
        "flags": 0,
        "components": [],
        "nonce": body.get("nonce").cloned().unwrap_or(Value::Null),
        "webhook_id": webhook_id,
    })
}

fn chrono_like_now() -> String {
    // Seconds since the epoch as an ISO-8601 UTC timestamp (civil-from-days algorithm).
    let secs = epoch_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000000+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// ------------------------------------------------------------------ validation

fn push_err(errors: &mut Map<String, Value>, path: &[&str], code: &str, message: String) {
    let mut cur = errors;
    for seg in path {
        let next = cur
            .entry(seg.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        cur = next.as_object_mut().unwrap();
    }
    let list = cur
        .entry("_errors")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(a) = list.as_array_mut() {
        a.push(json!({ "code": code, "message": message }));
    }
}

/// Checks a string field: type and max length. Returns its length (0 if absent).
fn check_str(
    errors: &mut Map<String, Value>,
    obj: &Value,
    key: &str,
    path: &[&str],
    max: usize,
    required: bool,
) -> usize {
    let mut p: Vec<&str> = path.to_vec();
    p.push(key);
    match obj.get(key) {
        None | Some(Value::Null) => {
            if required {
                push_err(
                    errors,
                    &p,
                    "BASE_TYPE_REQUIRED",
                    "This field is required".into(),
                );
            }
            0
        }
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if required && s.trim().is_empty() {
                push_err(
                    errors,
                    &p,
                    "BASE_TYPE_REQUIRED",
                    "This field is required".into(),
                );
            }
            if n > max {
                push_err(
                    errors,
                    &p,
                    "BASE_TYPE_MAX_LENGTH",
                    format!("Must be {max} or fewer in length."),
                );
            }
            n
        }
        Some(_) => {
            push_err(
                errors,
                &p,
                "STRING_TYPE_CONVERT",
                "Could not interpret value as string.".into(),
            );
            0
        }
    }
}

fn validate(body: &Value) -> Result<(), Reply> {
    if !body.is_object() {
        return Err(Reply::form_errors(json!({ "_errors": [{
            "code": "DICT_TYPE_CONVERT", "message": "Only dictionaries may be used in a DictType"
        }]})));
    }
    let mut errors = Map::new();

    check_str(&mut errors, body, "content", &[], 2000, false);

    if let Some(u) = body.get("username") {
        match u.as_str() {
            Some(s) => {
                let n = s.chars().count();
                let lower = s.to_lowercase();
                if !(1..=80).contains(&n) {
                    push_err(
                        &mut errors,
                        &["username"],
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 80 in length.".into(),
                    );
                }
                for bad in ["discord", "clyde"] {
                    if lower.contains(bad) {
                        push_err(
                            &mut errors,
                            &["username"],
                            "USERNAME_INVALID_CONTAINS",
                            format!("Username cannot contain \"{bad}\""),
                        );
                    }
                }
                if matches!(lower.trim(), "everyone" | "here") {
                    push_err(
                        &mut errors,
                        &["username"],
                        "USERNAME_INVALID",
                        "Username is invalid".into(),
                    );
                }
            }
            None if u.is_null() => {}
            None => push_err(
                &mut errors,
                &["username"],
                "STRING_TYPE_CONVERT",
                "Could not interpret value as string.".into(),
            ),
        }
    }

    let mut n_embeds = 0;
    match body.get("embeds") {
        None | Some(Value::Null) => {}
        Some(Value::Array(embeds)) => {
            n_embeds = embeds.len();
            if embeds.len() > 10 {
                push_err(
                    &mut errors,
                    &["embeds"],
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 10 or fewer in length.".into(),
                );
            }
            let mut total = 0usize;
            for (i, e) in embeds.iter().enumerate() {
                let idx = i.to_string();
                let p: [&str; 2] = ["embeds", &idx];
                if !e.is_object() {
                    push_err(
                        &mut errors,
                        &p,
                        "DICT_TYPE_CONVERT",
                        "Only dictionaries may be used in a DictType".into(),
                    );
                    continue;
                }
                total += check_str(&mut errors, e, "title", &p, 256, false);
                total += check_str(&mut errors, e, "description", &p, 4096, false);
                if let Some(url) = e.get("url").and_then(Value::as_str) {
                    let ok = (url.starts_with("http://") || url.starts_with("https://"))
                        && !url.contains(char::is_whitespace)
                        && url.len() > "https://".len();
                    if !ok {
                        push_err(
                            &mut errors,
                            &["embeds", &idx, "url"],
                            "URL_TYPE_INVALID_URL",
                            "Not a well formed URL.".into(),
                        );
                    }
                }
                if let Some(c) = e.get("color") {
                    let ok = c.is_null() || c.as_u64().map(|v| v <= 0xFF_FF_FF).unwrap_or(false);
                    if !ok {
                        push_err(
                            &mut errors,
                            &["embeds", &idx, "color"],
                            "NUMBER_TYPE_COERCE",
                            format!("Value \"{c}\" is not int."),
                        );
                    }
                }
                if let Some(ts) = e.get("timestamp") {
                    let ok = ts.is_null() || ts.as_str().is_some_and(is_iso8601);
                    if !ok {
                        push_err(
                            &mut errors,
                            &["embeds", &idx, "timestamp"],
                            "DATE_TIME_TYPE_PARSE",
                            format!("Could not parse {ts}. Should be ISO8601."),
                        );
                    }
                }
                if let Some(f) = e.get("footer").filter(|f| !f.is_null()) {
                    total += check_str(
                        &mut errors,
                        f,
                        "text",
                        &["embeds", &idx, "footer"],
                        2048,
                        true,
                    );
                }
                if let Some(a) = e.get("author").filter(|a| !a.is_null()) {
                    total += check_str(
                        &mut errors,
                        a,
                        "name",
                        &["embeds", &idx, "author"],
                        256,
                        true,
                    );
                }
                match e.get("fields") {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(fields)) => {
                        if fields.len() > 25 {
                            push_err(
                                &mut errors,
                                &["embeds", &idx, "fields"],
                                "BASE_TYPE_MAX_LENGTH",
                                "Must be 25 or fewer in length.".into(),
                            );
                        }
                        for (j, f) in fields.iter().enumerate() {
                            let jdx = j.to_string();
                            let fp: [&str; 4] = ["embeds", &idx, "fields", &jdx];
                            total += check_str(&mut errors, f, "name", &fp, 256, true);
                            total += check_str(&mut errors, f, "value", &fp, 1024, true);
                            if f.get("inline")
                                .is_some_and(|v| !v.is_null() && !v.is_boolean())
                            {
                                let mut ip = fp.to_vec();
                                ip.push("inline");
                                push_err(
                                    &mut errors,
                                    &ip,
                                    "BOOLEAN_TYPE_CONVERT",
                                    "Must be either true or false.".into(),
                                );
                            }
                        }
                    }
                    Some(_) => push_err(
                        &mut errors,
                        &["embeds", &idx, "fields"],
                        "BASE_TYPE_LIST",
                        "Must be an array.".into(),
                    ),
                }
            }
            if total > 6000 {
                push_err(
                    &mut errors,
                    &["embeds"],
                    "MAX_EMBED_SIZE_EXCEEDED",
                    "Embed size exceeds maximum size of 6000".into(),
                );
            }
        }
        Some(_) => push_err(
            &mut errors,
            &["embeds"],
            "BASE_TYPE_LIST",
            "Must be an array.".into(),
        ),
    }

    match body.get("allowed_mentions") {
        None | Some(Value::Null) => {}
        Some(Value::Object(am)) => check_allowed_mentions(&mut errors, am),
        Some(_) => push_err(
            &mut errors,
            &["allowed_mentions"],
            "DICT_TYPE_CONVERT",
            "Only dictionaries may be used in a DictType".into(),
        ),
    }

    if !errors.is_empty() {
        return Err(Reply::form_errors(Value::Object(errors)));
    }
    let has_content = body
        .get("content")
        .and_then(Value::as_str)
        .map(|c| !c.trim().is_empty())
        .unwrap_or(false);
    if !has_content && n_embeds == 0 {
        return Err(Reply::error(400, 50006));
    }
    Ok(())
}

/// `allowed_mentions` as Discord checks it: `parse` holds only "roles", "users", "everyone";
/// `roles` and `users` are lists of at most 100 snowflakes; a kind may not be both parsed and
/// listed; `replied_user` is a bool.
fn check_allowed_mentions(errors: &mut Map<String, Value>, am: &Map<String, Value>) {
    let parse: Vec<&str> = match am.get("parse") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => {
            for (i, v) in a.iter().enumerate() {
                if !matches!(v.as_str(), Some("roles" | "users" | "everyone")) {
                    let idx = i.to_string();
                    push_err(
                        errors,
                        &["allowed_mentions", "parse", &idx],
                        "BASE_TYPE_CHOICES",
                        format!("Value must be one of {{'roles', 'users', 'everyone'}}, got {v}."),
                    );
                }
            }
            a.iter().filter_map(Value::as_str).collect()
        }
        Some(_) => {
            push_err(
                errors,
                &["allowed_mentions", "parse"],
                "BASE_TYPE_LIST",
                "Must be an array.".into(),
            );
            Vec::new()
        }
    };
    for kind in ["roles", "users"] {
        let list = match am.get(kind) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(a)) => a,
            Some(_) => {
                push_err(
                    errors,
                    &["allowed_mentions", kind],
                    "BASE_TYPE_LIST",
                    "Must be an array.".into(),
                );
                continue;
            }
        };
        if list.len() > 100 {
            push_err(
                errors,
                &["allowed_mentions", kind],
                "BASE_TYPE_MAX_LENGTH",
                "Must be 100 or fewer in length.".into(),
            );
        }
        let snowflake = |v: &Value| match v {
            Value::String(s) => !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()),
            Value::Number(n) => n.is_u64(),
            _ => false,
        };
        if !list.iter().all(snowflake) {
            push_err(
                errors,
                &["allowed_mentions", kind],
                "NUMBER_TYPE_COERCE",
                "Value is not snowflake.".into(),
            );
        }
        if !list.is_empty() && parse.contains(&kind) {
            push_err(
                errors,
                &["allowed_mentions"],
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                format!("parse:[\"{kind}\"] and {kind}: [ids...] are mutually exclusive."),
            );
        }
    }
    if am
        .get("replied_user")
        .is_some_and(|v| !v.is_null() && !v.is_boolean())
    {
        push_err(
            errors,
            &["allowed_mentions", "replied_user"],
            "BOOLEAN_TYPE_CONVERT",
            "Must be either true or false.".into(),
        );
    }
}

/// An ISO 8601 date-time as Discord's API (Python's `datetime`) reads it:
/// `YYYY-MM-DDTHH:MM[:SS[.ffffff]]` with an optional `Z` or `±HH:MM` offset, year 1..=9999, real
/// calendar dates, seconds below 60 (no leap second), offsets below 24 h.
fn is_iso8601(s: &str) -> bool {
    fn num(s: &str, range: std::ops::RangeInclusive<u32>) -> Option<u32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok().filter(|n| range.contains(n))
    }
    let Some((date, time)) = s.split_once(['T', ' ']) else {
        return false;
    };
    let d: Vec<&str> = date.split('-').collect();
    let (Some(y), Some(m)) = (
        d.first()
            .filter(|y| y.len() == 4)
            .and_then(|y| num(y, 1..=9999)),
        d.get(1)
            .filter(|m| m.len() == 2)
            .and_then(|m| num(m, 1..=12)),
    ) else {
        return false;
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if d.len() != 3 || d[2].len() != 2 || num(d[2], 1..=days).is_none() {
        return false;
    }
    let (clock, offset) = if let Some(c) = time.strip_suffix('Z') {
        (c, None)
    } else if let Some(i) = time.rfind(['+', '-']) {
        (&time[..i], Some(&time[i + 1..]))
    } else {
        (time, None)
    };
    if let Some(o) = offset {
        let ok = o.len() == 5
            && o.as_bytes()[2] == b':'
            && num(&o[..2], 0..=23).is_some()
            && num(&o[3..], 0..=59).is_some();
        if !ok {
            return false;
        }
    }
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, "0"));
    let t: Vec<&str> = hms.split(':').collect();
    let two = |x: &&str| x.len() == 2;
    (2..=3).contains(&t.len())
        && t.iter().all(two)
        && num(t[0], 0..=23).is_some()
        && num(t[1], 0..=59).is_some()
        && t.get(2).is_none_or(|sec| num(sec, 0..=59).is_some())
        && (1..=6).contains(&frac.len())
        && num(frac, 0..=999_999).is_some()
}
