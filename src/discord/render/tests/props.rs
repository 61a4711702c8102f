//! The property of DESIGN.md's invariant 7: whatever a mail holds — mention and markdown
//! syntax, right-to-left and zero-width characters, control characters, huge strings — every
//! rendered payload (push at each level, digest, audit) is within every Discord limit and pings
//! nobody, except the one mention a bucket configured, placed by the agent.

use super::{assert_within_limits, bucket, item, pings, strings};
use crate::config::Mention;
use crate::discord::render::digest::{render_audit, render_digest};
use crate::discord::render::{render, Level, Message, DESCRIPTION, MAX_CONTENT};
use crate::spool::Item;
use proptest::prelude::*;
use serde_json::json;

/// Pieces hostile mail is made of, and any character at all.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("@everyone".to_string()),
        Just("@here".to_string()),
        Just("<@123456789>".to_string()),
        Just("<@!42>".to_string()),
        Just("<@&987>".to_string()),
        Just("<#555>".to_string()),
        Just("**".to_string()),
        Just("```".to_string()),
        Just("\n> ".to_string()),
        Just("\n# ".to_string()),
        Just("\n-# ".to_string()),
        Just("[click](https://evil.example)".to_string()),
        Just("\u{202E}".to_string()),
        Just("\u{2066}".to_string()),
        Just("\u{200B}".to_string()),
        Just("\u{FEFF}".to_string()),
        Just("مرحبا".to_string()),
        Just("日本語".to_string()),
        Just("\\".to_string()),
        Just("@".to_string()),
        Just("<".to_string()),
        any::<char>().prop_map(String::from),
    ]
}

/// Text of a few pieces, or now and then one piece repeated into a huge string.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(piece(), 0..40).prop_map(|v| v.concat()),
        1 => (piece(), 1..3000usize).prop_map(|(p, n)| p.repeat(n)),
    ]
}

fn mail() -> impl Strategy<Value = (String, String, String, Option<String>)> {
    (text(), text(), text(), prop::option::of(text()))
}

fn mention() -> impl Strategy<Value = Option<Mention>> {
    prop_oneof![
        Just(None),
        Just(Some(Mention::Role("4242".into()))),
        Just(Some(Mention::Everyone)),
    ]
}

/// No string of the payload pings, apart from the configured mention at the start of content.
fn assert_no_ping(m: &Message, configured: &Option<Mention>) {
    let expected = match configured {
        None => json!({ "parse": [] }),
        Some(Mention::Role(id)) => json!({ "parse": [], "roles": [id] }),
        Some(Mention::Everyone) => json!({ "parse": ["everyone"] }),
    };
    assert_eq!(m.body["allowed_mentions"], expected);
    let mut body = m.body.clone();
    if let Some(content) = body["content"].as_str() {
        let prefix = match configured {
            None => "",
            Some(Mention::Role(_)) => "<@&4242> ",
            Some(Mention::Everyone) => "@everyone ",
        };
        assert!(content.starts_with(prefix), "{content:?}");
        body["content"] = json!(content[prefix.len()..].to_string());
    }
    let mut all = Vec::new();
    strings(&body, &mut all);
    for s in all {
        assert!(!pings(&s), "{s:?}");
    }
}

fn items(mails: &[(String, String, String, Option<String>)]) -> Vec<Item> {
    mails
        .iter()
        .enumerate()
        .map(|(i, (subject, from, snippet, date))| {
            let mut it = item(i as u64, subject, from, snippet);
            it.date = date.clone();
            // Every other mail carries attachments named by hostile text, a few or many.
            if i % 2 == 1 {
                let a = crate::mail::Attachment {
                    name: subject.clone(),
                    mime: from.clone(),
                    size: snippet.len() as u64 * 1000,
                    section: "2".into(),
                    encoding: "base64".into(),
                };
                it.attachments = vec![a; 1 + snippet.len() % 9];
            }
            it
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_mail_renders_within_limits_and_pings_only_as_configured(
        mails in prop::collection::vec(mail(), 1..13),
        configured in mention(),
    ) {
        let all = items(&mails);
        let b = bucket(configured.clone());
        for level in [Level::Full, Level::Small, Level::Plain] {
            let m = render(Some(&b), &all, level);
            assert!(!m.ids.is_empty());
            assert_within_limits(&m);
            assert_no_ping(&m, &configured);
        }
        let d = render_digest(Some(&b), &all);
        assert!(!d.ids.is_empty());
        assert_within_limits(&d);
        assert!(d.body["embeds"][0]["description"].as_str().unwrap_or("").chars().count() <= DESCRIPTION);
        assert_no_ping(&d, &configured);
        let a = render_audit(&all);
        assert!(a.body["content"].as_str().unwrap_or("").chars().count() <= MAX_CONTENT);
        assert_no_ping(&a, &None);
    }

    /// The new fields: a link built from any Message-ID stays inside the template's URL (one
    /// encoded value, no new path, query or fragment), and a forum post's name from any mail
    /// is 1 to 100 visible characters without control or direction characters.
    #[test]
    fn links_and_forum_names_from_any_mail_stay_in_their_bounds(
        mails in prop::collection::vec(mail(), 1..4),
        message_id in text(),
    ) {
        let mut all = items(&mails);
        all[0].message_id = Some(message_id);
        let template = "https://mail.example/open?id={message_id}&f={folder}";
        let links = std::collections::HashMap::from([("home".to_string(), template.to_string())]);
        let mut m = render(Some(&bucket(None)), &all, Level::Full);
        crate::discord::render::add_links(&mut m, &all, &links);
        assert_within_limits(&m);
        if let Some(url) = m.body["embeds"][0]["url"].as_str() {
            let id = url
                .strip_prefix("https://mail.example/open?id=")
                .and_then(|rest| rest.strip_suffix("&f=INBOX"))
                .unwrap_or_else(|| panic!("{url}"));
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)), "{url}");
            assert!(url.len() <= 2048);
        }
        let mut body = m.body.clone();
        let b = bucket(None);
        crate::discord::render::forum::address(&mut body, "{subject} {from}", Some(&b), &all[0]);
        let name = body["thread_name"].as_str().unwrap_or("");
        let n = name.chars().count();
        assert!((1..=100).contains(&n), "{name:?}");
        assert!(!name.chars().any(|c| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}')), "{name:?}");
    }
}
