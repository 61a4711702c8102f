//! The fake's HTTP front: one request in, routed, answered with Discord's error bodies and
//! rate-limit headers; process-wide trouble (a global 429, a Cloudflare ban) first.

use super::*;

pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: Option<Value>,
    pub(super) headers: Vec<(String, String)>,
    /// A non-JSON body (Cloudflare's HTML pages).
    pub(super) html: Option<String>,
}

impl Reply {
    pub(super) fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
            html: None,
        }
    }
    pub(super) fn error(status: u16, code: u32) -> Reply {
        let mut body = json!({ "message": error_message(status, code), "code": code });
        if code == 50035 {
            body["errors"] = json!({});
        }
        Reply::json(status, body)
    }
    pub(super) fn form_errors(errors: Value) -> Reply {
        Reply::json(
            400,
            json!({ "message": "Invalid Form Body", "code": 50035, "errors": errors }),
        )
    }
}

pub(super) fn error_message(status: u16, code: u32) -> String {
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

pub(super) fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub(super) fn serve(state: &Arc<Mutex<State>>, mut rq: tiny_http::Request) {
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

/// Splits `/api[/v10]/webhooks/{id}/{token}` into (id, token).
pub(super) fn parse_webhook_path(path: &str) -> Option<(String, String)> {
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

pub(super) fn handle(
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
pub(super) fn with_rate_headers(reply: &mut Reply, rl: Vec<(String, String)>) {
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
pub(super) fn process_wide(st: &mut State, method: &str, now: Instant) -> Option<Reply> {
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
