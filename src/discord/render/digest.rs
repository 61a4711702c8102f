//! Digest and audit messages: many mails as lines of text instead of one embed each.
//!
//! A digest message is one embed whose description lists one mail per line (time, sender,
//! subject), as many as fit in 4,096 characters; the rest go into the next message. An audit
//! message is plain content, one line per delivered mail, within 2,000 characters. Mail text
//! is escaped as in every other message, and an audit line can never ping.

use super::{colour, cut, escaped_or, mention, Message, DESCRIPTION, MAX_CONTENT, TITLE};
use crate::config::{Bucket, Severity};
use crate::spool::{Item, Role, State};
use serde_json::json;

/// One mail's line in a digest, at most this long.
const LINE: usize = 300;
/// Mails per audit message: one line each.
pub(crate) const AUDIT_LINES: usize = 10;

fn clock(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map_or_else(String::new, |t| t.format("%H:%M").to_string())
}

fn line(item: &Item) -> String {
    let from = escaped_or(&item.from, "(unknown sender)", 80);
    let subject = escaped_or(&item.subject, "(no subject)", LINE);
    cut(
        &format!("`{}` {from} — {subject}", clock(item.spooled_at)),
        LINE,
    )
}

/// As many of `items` (one bucket, oldest first) as fit in one digest message; at least one.
pub(crate) fn render_digest(bucket: Option<&Bucket>, items: &[Item]) -> Message {
    let severity = bucket.map_or(Severity::P3, |b| b.severity);
    let name = bucket.map_or_else(
        || items.first().map_or("", |i| i.bucket.as_str()).to_string(),
        |b| b.name.clone(),
    );
    let (ping, allowed) = mention(bucket);
    let mut description = String::new();
    let mut chars = 0;
    let mut ids = Vec::new();
    for item in items {
        let l = line(item);
        let n = l.chars().count() + 1;
        if !ids.is_empty() && chars + n > DESCRIPTION {
            break;
        }
        if !description.is_empty() {
            description.push('\n');
        }
        description.push_str(&l);
        chars += n;
        ids.push(item.id);
    }
    let noun = if ids.len() == 1 { "mail" } else { "mails" };
    let title = cut(
        &format!("Digest · {} · {} {noun}", super::escape(&name), ids.len()),
        TITLE,
    );
    let footer = format!("{} · mailbeacon digest", name);
    let footer = cut(&footer, 256);
    let embed_chars = title.chars().count() + description.chars().count() + footer.chars().count();
    let content = cut(
        &format!(
            "{ping}**{}** · digest of {} {noun}",
            super::escape(&name),
            ids.len()
        ),
        MAX_CONTENT,
    );
    Message {
        body: json!({
            "content": content,
            "embeds": [{ "title": title, "description": description, "color": colour(severity), "footer": { "text": footer } }],
            "allowed_mentions": allowed,
        }),
        ids,
        embed_chars,
    }
}

/// Where a mail was delivered, for its audit line.
fn delivered_to(item: &Item) -> String {
    let sinks: Vec<&str> = item
        .deliveries
        .iter()
        .filter(|d| d.state == State::Delivered && d.role != Some(Role::Audit))
        .map(|d| d.sink.as_str())
        .collect();
    if sinks.is_empty() {
        "?".to_string()
    } else {
        sinks.join(", ")
    }
}

/// Up to [`AUDIT_LINES`] of `items` as one plain message, one line per mail; never pings.
pub(crate) fn render_audit(items: &[Item]) -> Message {
    let mut content = String::new();
    let mut ids = Vec::new();
    for item in items.iter().take(AUDIT_LINES) {
        let l = cut(
            &format!(
                "✓ {} → {}: {} — {}",
                super::escape(&item.bucket),
                super::escape(&delivered_to(item)),
                escaped_or(&item.from, "(unknown sender)", 60),
                escaped_or(&item.subject, "(no subject)", 100)
            ),
            MAX_CONTENT / AUDIT_LINES - 1,
        );
        if !content.is_empty() {
            content.push('\n');
        }
        content.push_str(&l);
        ids.push(item.id);
    }
    Message {
        body: json!({ "content": content, "allowed_mentions": { "parse": [] } }),
        ids,
        embed_chars: 0,
    }
}

#[cfg(test)]
mod tests;
