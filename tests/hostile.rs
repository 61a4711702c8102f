//! Hostile mail against the real binary. A corpus generated here (bad encodings, missing and
//! 8-bit headers, NUL bytes, a 10 MB attachment, 50 nested multiparts, a 4,000-character subject,
//! a 1 MB header line, mention and markdown injection, bidi overrides, zero-width characters,
//! invalid UTF-8, …) is stored in a real Dovecot while the daemon watches the mailbox and posts
//! to the fake Discord. What a user would notice is asserted: the daemon keeps running and
//! healthy, every mail is spooled exactly once and delivered exactly once, Discord never refused
//! a payload, nothing from a mail can ping or format, and a mail that reads badly lands in the
//! fallback bucket with whatever could be read.
//!
//! Here: what a Discord payload must never hold. `parsing`: the corpus and the library's reading
//! of it; `daemon`: the run.

mod daemon;
mod parsing;

use crate::common::fake_discord::Request;
use serde_json::Value;
use std::collections::HashMap;

/// The bucket every readable mail lands in (its rule matches any subject).
const EVERYTHING: &str = "everything";
/// The fallback bucket: no rules; takes every mail that reads badly.
const FALLBACK: &str = "unknown";

/// Mails that cannot be read as a message at all: each must be flagged and in the fallback.
const UNREADABLE: &[&str] = &[
    "empty",
    "just-crlf",
    "binary-garbage",
    "no-header-block",
    "no-from-subject-or-id",
    "1mb-filler-header-first",
    // From and Subject lie beyond the first 64 KiB, the most the daemon reads of a mail.
    "20000-headers",
];

/// (mail, text that must still be found in the spooled item): "whatever was readable".
const READABLE: &[(&str, &str)] = &[
    ("no-header-block", "nothing but text"),
    ("no-from-subject-or-id", "body is still readable"),
    ("nul-bytes", "nul in the body"),
    ("header-without-colon", "after the broken line"),
    ("bare-lf", "bare line feeds"),
    ("multipart-never-closed", "closing boundary never comes"),
    ("multipart-nested-50", "fifty levels down"),
    ("attachment-10mb", "report attached"),
    ("base64-not-base64", "base64 that is not"),
    ("utf8-headers-8bit", "Grüße"),
];

/// Every string in a JSON value except under `allowed_mentions`, with its path.
fn strings(v: &Value, path: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((path, s.clone())),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                strings(x, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                if k != "allowed_mentions" {
                    strings(x, format!("{path}.{k}"), out);
                }
            }
        }
        _ => {}
    }
}

/// Discord's limits, counted in code points like Discord does; the first one broken.
fn over_limit(body: &Value) -> Option<String> {
    let n = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    if n(&body["content"]) > 2000 {
        return Some("content > 2000".into());
    }
    let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
    if embeds.len() > 10 {
        return Some("more than 10 embeds".into());
    }
    let mut total = 0;
    for e in &embeds {
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        let checks = [
            ("title", n(&e["title"]), 256),
            ("description", n(&e["description"]), 4096),
            ("footer", n(&e["footer"]["text"]), 2048),
            ("author", n(&e["author"]["name"]), 256),
            ("fields", fields.len(), 25),
        ];
        for (what, len, max) in checks {
            if len > max {
                return Some(format!("{what} {len} > {max}"));
            }
        }
        total += n(&e["title"]) + n(&e["description"]) + n(&e["footer"]["text"]);
        total += n(&e["author"]["name"]);
        for f in &fields {
            if n(&f["name"]) > 256 || n(&f["value"]) > 1024 {
                return Some("field name > 256 or value > 1024".into());
            }
            total += n(&f["name"]) + n(&f["value"]);
        }
    }
    (total > 6000).then(|| format!("embeds total {total} > 6000"))
}

/// Markdown that would format, link or quote: a special character not escaped by a backslash.
fn unescaped_markdown(s: &str) -> Option<char> {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '_' | '~' | '|' | '`' | '[' | ']' | '(' | ')' | '<' | '>' | '#' => {
                return Some(c)
            }
            _ => {}
        }
    }
    None
}

/// What in a rendered string could ping, pretend to be a mention, or disguise text.
fn inert_problem(s: &str) -> Option<String> {
    let mention = regex::Regex::new(r"<@[!&]?[0-9]|<#[0-9]|</[^>\\]*:[0-9]").expect("regex");
    if let Some(m) = mention.find(s) {
        return Some(format!("mention syntax {:?}", m.as_str()));
    }
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '@' && it.peek() != Some(&'\u{200B}') {
            return Some("an '@' not neutralised by U+200B".into());
        }
        if matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
            return Some(format!("bidi control U+{:04X}", c as u32));
        }
        if c.is_control() && c != '\n' {
            return Some(format!("control character U+{:04X}", c as u32));
        }
    }
    None
}

/// The UID in an embed footer (`bucket · account/folder · uid N`).
fn footer_uid(embed: &Value) -> Option<u32> {
    embed["footer"]["text"]
        .as_str()?
        .rsplit("uid ")
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Which mail a string of a POST came from: `embeds[N]` names the mail by its footer's UID.
fn source(body: &Value, path: &str, names: &HashMap<u32, &str>) -> String {
    let embed = path
        .strip_prefix(".embeds[")
        .and_then(|r| r.split(']').next())
        .and_then(|n| n.parse::<usize>().ok());
    embed
        .and_then(|n| footer_uid(&body["embeds"][n]))
        .and_then(|uid| names.get(&uid))
        .map_or_else(|| "the message".to_string(), |n| format!("mail {n}"))
}

/// Problems a user would see in what reached Discord; `names` maps UIDs to corpus names.
fn discord_problems(posts: &[Request], names: &HashMap<u32, &str>) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, p) in posts.iter().enumerate() {
        if !(200..300).contains(&p.status) {
            problems.push(format!(
                "POST {i} was refused with {}: {}",
                p.status, p.response
            ));
        }
        if let Some(why) = over_limit(&p.body) {
            problems.push(format!("POST {i} breaks a Discord limit: {why}"));
        }
        if p.body["allowed_mentions"] != serde_json::json!({ "parse": [] }) {
            problems.push(format!(
                "POST {i} allowed_mentions is {} (must permit nothing)",
                p.body["allowed_mentions"]
            ));
        }
        let mut all = Vec::new();
        strings(&p.body, String::new(), &mut all);
        for (path, s) in &all {
            let at = format!("POST {i} {path} ({})", source(&p.body, path, names));
            if let Some(why) = inert_problem(s) {
                problems.push(format!("{at}: {why} in {s:.120?}"));
            }
            let from_mail = path.ends_with(".title")
                || path.ends_with(".description")
                || path.ends_with(".value");
            let placeholder = matches!(s.as_str(), "(no subject)" | "(unknown sender)");
            if from_mail && !placeholder {
                if let Some(c) = unescaped_markdown(s) {
                    problems.push(format!("{at}: unescaped {c:?} in {s:.120?}"));
                }
            }
            if path.ends_with(".title") && s.trim().is_empty() {
                problems.push(format!("{at}: a blank title"));
            }
        }
    }
    problems
}
