//! Bot routes: a channel's object for probes, and posting as a bot (token, User-Agent, nonces).

use super::*;

/// `{id}` or `{id}/messages` under `/api/v10/channels/`, as a bot.
pub(super) fn bot_route(
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

pub(super) fn channel_object(c: &Channel) -> Reply {
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

pub(super) fn bot_post(
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
