//! Forum channels in the fake Discord: a webhook into a forum must name a new post
//! (`thread_name`, with optional `applied_tags`) or post into one (`?thread_id=`), else 400 code
//! 220001; a bot starts a post at `POST /channels/ID/threads` and cannot post to the forum
//! itself (50008). Each post is a thread (a channel whose parent is the forum) whose starter
//! message has the thread's id.

use super::*;

/// Makes `channel_id` (a bot channel, or a webhook's channel) a forum.
impl FakeDiscord {
    pub fn make_forum(&self, channel_id: &str) {
        let mut st = lock(&self.state);
        match st.channels.iter_mut().find(|c| c.id == channel_id) {
            Some(c) => c.forum = true,
            None => st.channels.push(Channel {
                id: channel_id.to_string(),
                parent: None,
                forum: true,
                post: None,
                behaviour: Behaviour::Ok,
                flaky_count: 0,
                rate_limited_until: None,
            }),
        }
    }

    /// The posts (threads) of a forum: (thread id, name, applied tags), oldest first.
    pub fn posts_in(&self, forum: &str) -> Vec<(String, String, Vec<String>)> {
        lock(&self.state)
            .channels
            .iter()
            .filter(|c| c.parent.as_deref() == Some(forum))
            .filter_map(|c| {
                let (name, tags) = c.post.clone()?;
                Some((c.id.clone(), name, tags))
            })
            .collect()
    }
}

/// A webhook message into forum `forum` without `thread_id`: a new post, or Discord's refusal.
pub(super) fn new_post(st: &mut State, forum: &str, body: &Value) -> Result<String, Reply> {
    let name = body
        .get("thread_name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        return Err(Reply::json(
            400,
            json!({ "message": "Webhooks posted to forum channels must have a thread_name or thread_id", "code": 220001 }),
        ));
    }
    if name.chars().count() > 100 {
        return Err(Reply::form_errors(json!({ "thread_name": { "_errors": [{
            "code": "BASE_TYPE_BAD_LENGTH", "message": "Must be between 1 and 100 in length."
        }]}})));
    }
    Ok(thread(st, forum, name, tags(body)))
}

fn tags(body: &Value) -> Vec<String> {
    body.get("applied_tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn thread(st: &mut State, forum: &str, name: &str, tags: Vec<String>) -> String {
    let id = st.next_message.to_string();
    st.next_message += 1 << 22;
    st.channels.push(Channel {
        id: id.clone(),
        parent: Some(forum.to_string()),
        forum: false,
        post: Some((name.to_string(), tags)),
        behaviour: Behaviour::Ok,
        flaky_count: 0,
        rate_limited_until: None,
    });
    id
}

/// `POST /channels/ID/threads` as a bot: `{name, applied_tags, message}` starts a post.
pub(super) fn bot_post(
    st: &mut State,
    forum: &str,
    method: &str,
    _headers: &[(String, String)],
    raw: &[u8],
    _now: Instant,
) -> Reply {
    if method != "POST" {
        return Reply::error(405, 0);
    }
    if !st.channels.iter().any(|c| c.id == forum && c.forum) {
        return Reply::error(404, 10003);
    }
    let body: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    let name = body.get("name").and_then(Value::as_str).unwrap_or("");
    let message = body.get("message").cloned().unwrap_or(Value::Null);
    if name.is_empty() || name.chars().count() > 100 || !message.is_object() {
        return Reply::error(400, 50035);
    }
    let id = thread(st, forum, name, tags(&body));
    // The starter message has the thread's id.
    st.messages.push(Created {
        id: id.clone(),
        channel_id: id.clone(),
        body: message,
        nonce: None,
        files: Vec::new(),
    });
    Reply::json(
        201,
        json!({ "id": id, "type": 11, "parent_id": forum, "name": name, "applied_tags": tags(&body) }),
    )
}
