//! What the fake Discord saw and made: the messages of each channel, every request, the
//! titles a webhook acknowledged.

use super::{embed_titles, lock, Created, FakeDiscord, Request};
use std::time::{Duration, Instant};

impl FakeDiscord {
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
