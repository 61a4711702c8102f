//! Delivering the owed mail: one batch as one message (its files, its forum post or thread),
//! and after a 400 each of its mails once more as plain text.

use super::batch::{Batch, Kind};
use super::{quiet, upload, Dispatcher, LoopState, Next};
use crate::config::Bucket;
use crate::discord::limits::Route;
use crate::discord::{render, Level, Message, Outcome, Reply, Upload};
use crate::spool::{Item, Update};
use std::time::Duration;
use tokio::time::Instant;

impl Dispatcher {
    /// Sends one batch (or, after a 400, its items one by one, as plain text).
    pub(super) async fn deliver_some(&self, st: &mut LoopState) -> Next {
        let Some(mut batch) = self.next_batch().await else {
            return Next::At(Instant::now() + Duration::from_secs(5));
        };
        let Some(first) = batch.items.first() else {
            st.failures = 0;
            return Next::Idle;
        };
        let bucket = self.buckets.iter().find(|b| b.name == first.bucket);
        let upload = bucket
            .and_then(|b| b.upload_max)
            .filter(|_| batch.kind == Kind::Push && !first.attachments.is_empty());
        let forum_post = self.forum.is_some()
            && batch.kind == Kind::Push
            && bucket.is_none_or(|b| b.thread_id.is_none());
        if forum_post || upload.is_some() {
            // One mail per message: a forum post named after it, or a message with its files.
            batch.items.truncate(1);
        }
        let mut message = self.compose(&batch, bucket);
        let thread = self.address(&mut message.body, bucket, &batch.items);
        let files = match (upload, batch.items.first()) {
            (Some(max), Some(item)) => self.uploads(&mut message, item, max).await,
            _ => Vec::new(),
        };
        let Some(reply) = self
            .post_message(st, &mut message, thread.as_deref(), &files)
            .await
        else {
            return Next::Idle;
        };
        match reply.outcome {
            Outcome::Rejected { reason } => {
                log::warn!("sink {}: Discord refused a message of {} mails ({reason}); sending each as plain text", self.sink.name(), message.ids.len());
                let carried: Vec<Item> = batch
                    .items
                    .into_iter()
                    .filter(|i| message.ids.contains(&i.id))
                    .collect();
                self.shrink(st, bucket, carried).await
            }
            outcome => self.react(st, outcome, &message.ids, &batch.items).await,
        }
    }

    /// The message for `batch`: rendered, silent in the bucket's quiet hours, and (for mail
    /// pushed as it came) with links back to the mail.
    fn compose(&self, batch: &Batch, bucket: Option<&Bucket>) -> Message {
        let mut message = batch.render(bucket);
        quiet::silence(&mut message.body, bucket, crate::time::local_minute());
        if batch.kind == Kind::Push {
            crate::discord::render::add_links(&mut message, &batch.items, &self.links);
        }
        message
    }

    /// Posts `message` with `files`; when Discord refuses the files as too large, posts it
    /// once more without them, saying so. `None` when stopped while waiting.
    async fn post_message(
        &self,
        st: &mut LoopState,
        message: &mut Message,
        thread: Option<&str>,
        files: &[Upload],
    ) -> Option<Reply> {
        let reply = self
            .post(st, &message.body, &message.ids, Level::Full, thread, files)
            .await?;
        if files.is_empty() || !upload::too_large(&reply) {
            return Some(reply);
        }
        log::warn!("sink {}: Discord refused the attachments as too large; sending the message without them", self.sink.name());
        upload::say(
            message,
            "the attachments were not uploaded: Discord refused them as too large",
        );
        self.post(st, &message.body, &message.ids, Level::Full, thread, &[])
            .await
    }

    /// A forum sink's name and tags for a new post, or the bucket's thread to reply in.
    fn address(
        &self,
        body: &mut serde_json::Value,
        bucket: Option<&Bucket>,
        items: &[Item],
    ) -> Option<String> {
        let (template, first) = (self.forum.as_deref()?, items.first()?);
        crate::discord::render::forum::address(body, template, bucket, first)
    }

    /// Posts through the guard (into `thread` when given); `None` when stopped while waiting.
    pub(super) async fn post(
        &self,
        st: &mut LoopState,
        body: &serde_json::Value,
        ids: &[u64],
        level: Level,
        thread: Option<&str>,
        files: &[Upload],
    ) -> Option<Reply> {
        if !self.gate(st, Route::Post).await {
            return None;
        }
        let (sink, body) = (self.sink.clone(), body.clone());
        let thread = thread.map(str::to_string);
        let files = files.to_vec();
        // The same batch gets the same nonce, so a bot's repeat after a crash is recognised.
        let nonce = format!(
            "mb{:x}{}",
            ids.first().copied().unwrap_or(0) ^ ((ids.len() as u64) << 56),
            level as u8
        );
        let reply = self
            .blocking(move || sink.post_files(&body, &nonce, thread.as_deref(), &files))
            .await
            .unwrap_or(Reply {
                outcome: Outcome::Transient {
                    reason: "worker failed".into(),
                },
                pace: Default::default(),
                status: 0,
            });
        self.guard
            .observe(&st.who, Route::Post, &reply, Instant::now());
        crate::metrics::observe(self.sink.name(), &reply.outcome, ids.len());
        Some(reply)
    }

    /// After a 400: each item once more, minimal (plain content, no embeds); what Discord
    /// still refuses is dead-lettered with its words, kept in the spool.
    async fn shrink(&self, st: &mut LoopState, bucket: Option<&Bucket>, items: Vec<Item>) -> Next {
        for item in items {
            let mut message = render(bucket, std::slice::from_ref(&item), Level::Plain);
            quiet::silence(&mut message.body, bucket, crate::time::local_minute());
            let thread = self.address(&mut message.body, bucket, std::slice::from_ref(&item));
            let Some(reply) = self
                .post(
                    st,
                    &message.body,
                    &message.ids,
                    Level::Plain,
                    thread.as_deref(),
                    &[],
                )
                .await
            else {
                return Next::Idle;
            };
            match reply.outcome {
                Outcome::Rejected { reason } => {
                    log::error!("sink {}: item {} dead-lettered: Discord refuses even its plain form ({reason})", self.sink.name(), item.id);
                    self.record(vec![(item.id, Update::DeadLetter { error: reason })])
                        .await;
                }
                outcome => {
                    let ok = matches!(outcome, Outcome::Delivered { .. });
                    let next = self
                        .react(st, outcome, &message.ids, std::slice::from_ref(&item))
                        .await;
                    if !ok {
                        return next;
                    }
                }
            }
        }
        Next::At(Instant::now())
    }
}
