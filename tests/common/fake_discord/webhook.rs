//! Webhook routes: the webhook object, executing it within the route's and the channel's
//! limits, and the messages it creates.

use super::*;

/// `CreateThenFail`: the message exists, but the answer is lost (502).
pub(super) fn lose_answer(b: &mut Behaviour) -> Option<Reply> {
    if let Behaviour::CreateThenFail(n) = b {
        if *n > 0 {
            *n -= 1;
            return Some(Reply::error(502, 0));
        }
    }
    None
}

/// Stores a created message; its id.
pub(super) fn create(
    st: &mut State,
    channel_id: &str,
    body: &Value,
    nonce: Option<String>,
) -> String {
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
pub(super) fn rate_headers(
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

pub(super) fn get_webhook(h: &Hook) -> Reply {
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
pub(super) fn admit_post(
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

pub(super) fn execute(
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
pub(super) fn channel_full(st: &mut State, channel_id: &str, now: Instant) -> Option<Reply> {
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
pub(super) fn message_json(
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

pub(super) fn chrono_like_now() -> String {
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
