//! Hostile mail bytes through everything a mail meets before Discord: the summary, the header
//! read for rules, triage, and rendering at each shrink level. Beyond "no panic", what a user
//! would notice is checked: the payload stays within Discord's limits, and nothing from the
//! mail can ping anyone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailbeacon::config::Config;
use mailbeacon::config::Severity;
use mailbeacon::discord::render::{render, Level, MAX_CONTENT, MAX_EMBEDS, MAX_EMBED_TOTAL};
use mailbeacon::spool::Item;
use serde_json::Value;
use std::path::Path;
use std::sync::OnceLock;

const CONFIG: &str = r#"
[[account]]
name = "a"
host = "127.0.0.1"
tls = "none"
username = "u"
password = "p"

[[sink]]
name = "s"
kind = "webhook"
url = "https://discord.com/api/webhooks/1/x"

[[bucket]]
name = "pager"
severity = "P1"
sinks = ["s"]
mention = "role:123456789012345678"
rules = [{ subject = '(?i)down|alert' }]

[[bucket]]
name = "lists"
sinks = ["s"]
rules = [{ headers = { "List-Id" = '.' } }]

[[bucket]]
name = "rest"
sinks = ["s"]
"#;

fn config() -> &'static Config {
    static CONFIG_ONCE: OnceLock<Config> = OnceLock::new();
    CONFIG_ONCE.get_or_init(
        || match Config::parse(Path::new("fuzz.toml"), CONFIG, false) {
            Ok(c) => c,
            Err(e) => panic!("the fuzz config must be valid: {e}"),
        },
    )
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        Value::Object(o) => o.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

fn check(body: &Value, ping: &str) {
    let content = body["content"].as_str().unwrap_or_default();
    assert!(content.chars().count() <= MAX_CONTENT, "content too long");
    let rest = content.strip_prefix(ping).unwrap_or(content);
    let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
    assert!(embeds.len() <= MAX_EMBEDS);
    let mut texts = vec![rest.to_string()];
    embeds.iter().for_each(|e| strings(e, &mut texts));
    // Mentions (`@everyone`, `<@id>`, `<#id>`, `<t:…>`) need a bare `@` or `<`: every `@` must be
    // broken by a zero-width space and every `<` escaped.
    for t in &texts {
        let chars: Vec<char> = t.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            match c {
                '@' => assert_eq!(chars.get(i + 1), Some(&'\u{200B}'), "bare @ in {t:?}"),
                '<' => assert!(i > 0 && chars[i - 1] == '\\', "bare < in {t:?}"),
                _ => {}
            }
        }
    }
    let mut total = 0;
    for e in &embeds {
        assert!(chars(&e["title"]) <= 256 && chars(&e["title"]) > 0);
        assert!(chars(&e["description"]) <= 4096);
        assert!(chars(&e["footer"]["text"]) <= 2048);
        for f in e["fields"].as_array().into_iter().flatten() {
            assert!(
                chars(&f["value"]) <= 1024 && !f["value"].as_str().unwrap_or("").trim().is_empty()
            );
        }
        total += chars(&e["title"]) + chars(&e["description"]) + chars(&e["footer"]["text"]);
    }
    assert!(total <= MAX_EMBED_TOTAL, "embeds total {total}");
    let parse = &body["allowed_mentions"]["parse"];
    assert!(
        parse.as_array().is_some_and(|p| p.is_empty()),
        "only configured mentions may ping"
    );
}

fuzz_target!(|raw: &[u8]| {
    let config = config();
    let triage = config.triage();
    let summary = mailbeacon::mail::summarize(raw);
    let headers = mailbeacon::mail::header_values(raw, triage.header_names());
    let bucket = if summary.parse_error.is_some() {
        triage.fallback().to_string()
    } else {
        triage
            .bucket_for(&mailbeacon::triage::Fields {
                headers: &headers,
                ..summary.fields()
            })
            .to_string()
    };
    let item = Item {
        id: 1,
        bucket: bucket.clone(),
        account: "a".into(),
        folder: "INBOX".into(),
        uidvalidity: 1,
        uid: 1,
        message_id: summary.message_id.clone(),
        from: summary.from.clone(),
        subject: summary.subject.clone(),
        date: summary.date.clone(),
        spooled_at: 0,
        snippet: summary.snippet.clone(),
        parse_error: summary.parse_error.clone(),
        severity: Some(Severity::P3),
        deliveries: Vec::new(),
        attachments: summary.attachments.clone(),
    };
    let b = config.bucket(&bucket);
    let ping = if bucket == "pager" {
        "<@&123456789012345678> "
    } else {
        ""
    };
    let items = vec![item; 12];
    for level in [Level::Full, Level::Small, Level::Plain] {
        let message = render(b, &items, level);
        assert!(!message.ids.is_empty());
        check(&message.body, ping);
    }
});
