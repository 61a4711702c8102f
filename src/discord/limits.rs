//! Discord's rate limits as one process meets them: every request to Discord, from any sink,
//! asks the one [`Guard`] first and tells it the answer.
//!
//! - `guard`: the invalid-request count, global 429s and a Cloudflare ban, over every sink;
//! - `pace`: each (bucket, webhook/channel) budget from the `X-RateLimit-*` headers;
//! - `shared`: a channel's message limit no header announces, learned from one `shared` 429;
//! - `window`: the sliding 10 minutes in which invalid requests count.
//!
//! What to send, where and when is dispatch's (src/dispatch.rs); this module only says whether a
//! request may go now, and learns from what Discord answered.

mod guard;
mod pace;
mod shared;
mod window;

pub use guard::Guard;
pub(crate) use guard::{Gate, Why};

use super::Sink;

/// A route Discord rate-limits on its own for each resource (webhook or channel): its budget is
/// the route's bucket, learned from the first answer's `X-RateLimit-Bucket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Route {
    /// `POST` a message (executing a webhook, or a bot's message to a channel): it also counts
    /// toward the channel's shared message limit.
    Post,
    /// `GET` the webhook or the channel: a probe, which posts nothing.
    Get,
}

/// Who is asking: the sink (for the log), the resource Discord keys its limits on, and the
/// scope of a global 429.
#[derive(Debug, Clone)]
pub(crate) struct Who {
    pub(crate) sink: String,
    /// The webhook (`webhook ID`) or the channel a bot posts to (`channel ID`).
    pub(crate) resource: String,
    /// `None` for a webhook (a global limit is the IP's), a fingerprint of a bot's token.
    pub(crate) global: Option<u64>,
}

impl Who {
    /// The rate-limit identity of `sink`.
    pub(crate) fn of(sink: &dyn Sink) -> Who {
        Who {
            sink: sink.name().to_string(),
            resource: sink.resource(),
            global: sink.global_scope(),
        }
    }
}
