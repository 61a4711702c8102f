//! `attachments = "upload"`: a mail's files sent with its message. They are fetched at
//! delivery, in a short IMAP session of their own (src/imap/part.rs), up to the bucket's
//! `attachments_max` in all. What is not sent is said in the message, never silently left out:
//! a file over the limit, one the server no longer has, and — when Discord refuses the message
//! as too large (413, code 40005) — every file, the message then going out without them. An
//! upload never holds a mail back: whatever happens to its files, the mail is delivered.

use super::Dispatcher;
use crate::config::Account;
use crate::discord::render::{escape, Message, MAX_CONTENT};
use crate::discord::{Outcome, Reply, Upload};
use crate::mail::Attachment;
use crate::spool::Item;
use std::time::Duration;

impl Dispatcher {
    /// The files of `item` that fit in `max` bytes, fetched; what was left out is added to the
    /// message's text.
    pub(super) async fn uploads(
        &self,
        message: &mut Message,
        item: &Item,
        max: u64,
    ) -> Vec<Upload> {
        let (wanted, mut notes) = within(&item.attachments, max);
        let Some(account) = self.accounts.get(&item.account).cloned() else {
            return Vec::new();
        };
        let mut files = Vec::new();
        if !wanted.is_empty() {
            files = self.fetch(account, item, &wanted, &mut notes).await;
        }
        if !notes.is_empty() {
            say(message, &format!("not uploaded: {}", notes.join(", ")));
        }
        files
    }

    /// The `wanted` files of `item`, fetched in an IMAP session of their own; a note for each
    /// that could not be.
    async fn fetch(
        &self,
        account: Account,
        item: &Item,
        wanted: &[Attachment],
        notes: &mut Vec<String>,
    ) -> Vec<Upload> {
        let (folder, uidvalidity, uid) = (item.folder.clone(), item.uidvalidity, item.uid);
        let parts = wanted.to_vec();
        // A login and up to `max` bytes over the account's link.
        self.beat
            .within(account.timeout * 4 + Duration::from_secs(10));
        let fetched = tokio::task::spawn_blocking(move || {
            let refs: Vec<&Attachment> = parts.iter().collect();
            crate::imap::part::fetch(&account, &folder, uidvalidity, uid, &refs)
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("worker failed: {e}")));
        let mut files = Vec::new();
        match fetched {
            Err(why) => {
                log::warn!(
                    "sink {}: attachments of item {} not fetched: {why}",
                    self.sink.name(),
                    item.id
                );
                notes.extend(wanted.iter().map(|a| not_fetched(&a.name, &why)));
            }
            Ok(results) => {
                for (a, r) in wanted.iter().zip(results) {
                    match r {
                        Ok(data) => files.push(Upload {
                            name: a.name.clone(),
                            mime: a.mime.clone(),
                            data,
                        }),
                        Err(why) => notes.push(not_fetched(&a.name, &why)),
                    }
                }
            }
        }
        files
    }
}

/// The note for a file that could not be fetched: its name comes from the mail, so it is
/// escaped like all mail text (and the reason with it, which may quote the server).
fn not_fetched(name: &str, why: &str) -> String {
    format!("{} (not fetched: {})", escape(name), escape(why))
}

/// The attachments that fit in `max` bytes together, in order, and a note for each that does
/// not.
fn within(attachments: &[Attachment], max: u64) -> (Vec<Attachment>, Vec<String>) {
    let mut notes = Vec::new();
    let mut wanted = Vec::new();
    let mut total = 0;
    for a in attachments {
        if total + a.size > max {
            notes.push(format!("{} (over attachments_max)", escape(&a.name)));
        } else {
            total += a.size;
            wanted.push(a.clone());
        }
    }
    (wanted, notes)
}

/// Discord's answer to files over its limit: 413, or code 40005 (request entity too large).
pub(super) fn too_large(reply: &Reply) -> bool {
    reply.status == 413
        || matches!(&reply.outcome, Outcome::Rejected { reason } if reason.contains("code 40005"))
}

/// Adds a line to the message's text, within Discord's 2,000 characters. Anything in `line`
/// from the mail (a file name) is escaped by the caller, like all mail text.
pub(super) fn say(message: &mut Message, line: &str) {
    let content = message.body["content"].as_str().unwrap_or("").to_string();
    let line = format!("\n📎 {line}");
    let room = MAX_CONTENT.saturating_sub(content.chars().count());
    let line = crate::text::ellipsize(&line, room);
    message.body["content"] = serde_json::json!(format!("{content}{line}"));
}

#[cfg(test)]
mod tests {
    use super::not_fetched;

    #[test]
    fn a_file_that_could_not_be_fetched_is_named_inertly() {
        let note = not_fetched("@everyone **win**.pdf", "server said [x](https://evil)");
        assert!(!note.contains("@everyone"), "{note}");
        assert!(!note.contains("**win**"), "{note}");
        assert!(!note.contains("[x](https"), "{note}");
        assert!(note.contains("not fetched"), "{note}");
    }
}
