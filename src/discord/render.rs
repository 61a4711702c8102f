//! Turning spooled items into a Discord message that Discord will accept and that cannot ping.
//!
//! Mail text is hostile: markdown and mention syntax are escaped, `@` is neutralised with a
//! zero-width space, every field is cut on a character boundary with a visible "…", and every
//! request carries `allowed_mentions` that permits nothing except the one mention the bucket
//! configured (placed by the agent in `content`, never taken from the mail).

use crate::config::{Bucket, Mention, Severity};
use crate::spool::Item;
use crate::text::{ellipsize, truncate_chars};
use serde_json::{json, Value};

pub(crate) mod digest;
pub(crate) mod forum;
pub(crate) mod link;

pub const MAX_EMBEDS: usize = 10;
pub const MAX_EMBED_TOTAL: usize = 6000;
pub const MAX_CONTENT: usize = 2000;
pub(crate) const TITLE: usize = 256;
pub(crate) const DESCRIPTION: usize = 4096;
const FIELD_VALUE: usize = 1024;
const FOOTER: usize = 2048;

/// How hard to shrink: `Full` first; after a 400, `Small` (title and footer only), then `Plain`
/// (one line of text content, no embeds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Full,
    Small,
    Plain,
}

/// A ready request body and the items it carries.
#[derive(Debug, Clone)]
pub struct Message {
    pub body: Value,
    pub ids: Vec<u64>,
    pub embed_chars: usize,
}

/// Why `template` (an `open_url` or a `thread_name`) cannot be used: a `{` that opens none of
/// the `known` placeholders. `None` when every one does.
fn unknown_placeholder(template: &str, known: &[&str]) -> Option<String> {
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        let tail = &rest[at..];
        match known.iter().find(|p| tail.starts_with(**p)) {
            Some(p) => rest = &tail[p.len()..],
            None => {
                return Some(format!(
                    "unknown placeholder at {:?}: use {}",
                    tail.chars().take(16).collect::<String>(),
                    known.join(", ")
                ))
            }
        }
    }
    None
}

/// Backslash-escapes markdown, breaks mention syntax, drops control characters.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' | '*' | '_' | '~' | '|' | '`' | '>' | '<' | '#' | '-' | '[' | ']' | '(' | ')'
            | ':' => {
                out.push('\\');
                out.push(c);
            }
            '@' => out.push_str("@\u{200B}"),
            // Bidi overrides and other invisible controls could disguise a sender.
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => {}
            c if c.is_control() && c != '\n' => {}
            c => out.push(c),
        }
    }
    out
}

/// Whether nothing a reader could see is left: only whitespace and zero-width characters.
fn is_blank(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_whitespace()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
    })
}

/// Escaped mail text cut to `max`, or `placeholder` when escaping left nothing visible (a sender
/// made only of bidi or control characters): Discord refuses an empty field value with a 400,
/// and a blank title looks like a glitch.
fn escaped_or(text: &str, placeholder: &str, max: usize) -> String {
    let escaped = escape(text);
    if is_blank(&escaped) {
        placeholder.to_string()
    } else {
        cut(&escaped, max)
    }
}

/// `ellipsize` for escaped text: never leaves a dangling backslash that would eat the "…", nor
/// an `@` cut off from the zero-width space that disarms it (found by the `mail` fuzzer).
fn cut(escaped: &str, max: usize) -> String {
    if escaped.chars().count() <= max {
        return escaped.to_string();
    }
    let mut s = truncate_chars(escaped, max.saturating_sub(1)).to_string();
    let trailing = s.chars().rev().take_while(|c| *c == '\\').count();
    if trailing % 2 == 1 {
        s.pop();
    }
    if s.ends_with('@') {
        s.pop();
    }
    s.push('…');
    s
}

pub(crate) fn colour(severity: Severity) -> u32 {
    match severity {
        Severity::P0 => 0xE7_4C_3C,
        Severity::P1 => 0xE6_7E_22,
        Severity::P2 => 0xF1_C4_0F,
        Severity::P3 => 0x95_A5_A6,
    }
}

fn embed(item: &Item, severity: Severity, level: Level) -> (Value, usize) {
    let title = escaped_or(&item.subject, "(no subject)", TITLE);
    let footer = ellipsize(
        &format!(
            "{} · {}/{} · uid {}",
            item.bucket, item.account, item.folder, item.uid
        ),
        FOOTER,
    );
    let mut chars = title.chars().count() + footer.chars().count();
    let mut e = json!({ "title": title, "color": colour(severity), "footer": { "text": footer } });
    if level == Level::Full {
        let from = escaped_or(&item.from, "(unknown sender)", FIELD_VALUE);
        chars += "From".len() + from.chars().count();
        e["fields"] = json!([{ "name": "From", "value": from, "inline": false }]);
        if let Some(listed) = attachments(item) {
            chars += "Attachments".len() + listed.chars().count();
            if let Some(fields) = e["fields"].as_array_mut() {
                fields.push(json!({ "name": "Attachments", "value": listed, "inline": false }));
            }
        }
        let description = cut(&escape(&item.snippet), DESCRIPTION);
        if !is_blank(&description) {
            chars += description.chars().count();
            e["description"] = json!(description);
        }
        if let Some(date) = item
            .date
            .as_deref()
            .filter(|d| chrono::DateTime::parse_from_rfc3339(d).is_ok())
        {
            e["timestamp"] = json!(date);
        }
    }
    (e, chars)
}

/// At most this many attachments are named in an embed; the rest are counted.
const LISTED: usize = 5;

/// The attachments' lines (`name · type · size`, names escaped like any mail text), or `None`.
fn attachments(item: &Item) -> Option<String> {
    if item.attachments.is_empty() {
        return None;
    }
    let mut lines: Vec<String> = item
        .attachments
        .iter()
        .take(LISTED)
        .map(|a| {
            format!(
                "{} · {} · {}",
                escaped_or(&a.name, "attachment", 120),
                escape(&a.mime),
                size(a.size)
            )
        })
        .collect();
    if item.attachments.len() > LISTED {
        lines.push(format!("and {} more", item.attachments.len() - LISTED));
    }
    Some(cut(&lines.join("\n"), FIELD_VALUE))
}

/// `182 KB`, `1.4 MB`: sizes as people read them.
fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{} KB", b.div_ceil(1024)),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// The mention the bucket configured, as (content prefix, allowed_mentions).
fn mention(bucket: Option<&Bucket>) -> (String, Value) {
    match bucket.and_then(|b| b.mention.as_ref()) {
        Some(Mention::Role(id)) => (format!("<@&{id}> "), json!({ "parse": [], "roles": [id] })),
        Some(Mention::Everyone) => ("@everyone ".to_string(), json!({ "parse": ["everyone"] })),
        None => (String::new(), json!({ "parse": [] })),
    }
}

/// Renders as many of `items` (same bucket, oldest first) as fit in one message: at most 10
/// embeds and 6,000 embed characters. At least one item is always taken.
pub fn render(bucket: Option<&Bucket>, items: &[Item], level: Level) -> Message {
    let severity = bucket.map_or(Severity::P3, |b| b.severity);
    let name = bucket.map_or_else(
        || items.first().map_or("", |i| i.bucket.as_str()).to_string(),
        |b| b.name.clone(),
    );
    let (ping, allowed) = mention(bucket);
    if level == Level::Plain {
        let item = &items[..items.len().min(1)];
        let line = item.first().map_or(String::new(), |i| {
            format!("{} — {}", escape(&i.from), escape(&i.subject))
        });
        let content = cut(&format!("{ping}**{}**: {line}", escape(&name)), MAX_CONTENT);
        return Message {
            body: json!({ "content": content, "allowed_mentions": allowed }),
            ids: item.iter().map(|i| i.id).collect(),
            embed_chars: 0,
        };
    }
    let mut embeds = Vec::new();
    let mut ids = Vec::new();
    let mut total = 0;
    for item in items.iter().take(MAX_EMBEDS) {
        let (e, chars) = embed(item, severity, level);
        if !embeds.is_empty() && total + chars > MAX_EMBED_TOTAL {
            break;
        }
        total += chars;
        embeds.push(e);
        ids.push(item.id);
    }
    let count = ids.len();
    let noun = if count == 1 { "mail" } else { "mails" };
    let content = cut(
        &format!("{ping}**{}** · {count} new {noun}", escape(&name)),
        MAX_CONTENT,
    );
    Message {
        body: json!({ "content": content, "embeds": embeds, "allowed_mentions": allowed }),
        ids,
        embed_chars: total,
    }
}

/// Sets each embed's `url` to the link back to its mail, where its account has an `open_url`
/// (see [`link`]); the title then opens the mail. Embeds follow `message.ids`.
pub(crate) fn add_links(
    message: &mut Message,
    items: &[Item],
    links: &std::collections::HashMap<String, String>,
) {
    let Some(embeds) = message
        .body
        .get_mut("embeds")
        .and_then(|e| e.as_array_mut())
    else {
        return;
    };
    for (embed, id) in embeds.iter_mut().zip(&message.ids) {
        let Some(item) = items.iter().find(|i| i.id == *id) else {
            continue;
        };
        if let Some(url) = links.get(&item.account).and_then(|t| link::url(t, item)) {
            embed["url"] = json!(url);
        }
    }
}

#[cfg(test)]
mod tests;
