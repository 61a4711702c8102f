use super::*;

mod props;
use crate::spool::{Delivery, State};

fn item(id: u64, subject: &str, from: &str, snippet: &str) -> Item {
    Item {
        id,
        bucket: "unknown".into(),
        account: "home".into(),
        folder: "INBOX".into(),
        uidvalidity: 1,
        uid: id as u32,
        message_id: None,
        from: from.into(),
        subject: subject.into(),
        date: Some("2026-09-01T10:00:00Z".into()),
        spooled_at: 0,
        snippet: snippet.into(),
        parse_error: None,
        severity: None,
        deliveries: vec![Delivery {
            sink: "s".into(),
            state: State::Pending,
            attempts: 0,
            last_error: None,
            delivered_at: None,
            message_id: None,
            role: None,
        }],
        attachments: Vec::new(),
    }
}

fn bucket(mention: Option<Mention>) -> Bucket {
    Bucket {
        name: "vip".into(),
        severity: Severity::P0,
        mode: crate::config::Mode::Push,
        sinks: vec![],
        rules: vec![],
        mention,
        digest_every: None,
        fallback: None,
        escalate_after: None,
        audit: None,
        applied_tags: Vec::new(),
        thread_id: None,
        upload_max: None,
    }
}

/// Text that Discord would turn into a ping or a mention.
fn pings(s: &str) -> bool {
    let mention = regex::Regex::new(r"<@[!&]?[0-9]|<#[0-9]").unwrap();
    s.contains("@everyone") || s.contains("@here") || mention.is_match(s)
}

/// Every string in the message body, wherever it sits.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

fn assert_within_limits(m: &Message) {
    let b = &m.body;
    assert!(b["content"].as_str().unwrap_or("").chars().count() <= MAX_CONTENT);
    let embeds = b["embeds"].as_array().cloned().unwrap_or_default();
    assert!(embeds.len() <= MAX_EMBEDS);
    let mut total = 0;
    for e in &embeds {
        let n = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
        assert!(n(&e["title"]) <= TITLE && n(&e["description"]) <= DESCRIPTION);
        assert!(n(&e["footer"]["text"]) <= FOOTER);
        // Discord refuses an empty field value; a blank title reads as a glitch.
        assert!(!e["title"].as_str().unwrap_or("").trim().is_empty(), "{e}");
        for f in e["fields"].as_array().cloned().unwrap_or_default() {
            assert!(n(&f["value"]) <= FIELD_VALUE && n(&f["name"]) <= 256);
            assert!(!f["value"].as_str().unwrap_or("").trim().is_empty(), "{e}");
            total += n(&f["value"]) + n(&f["name"]);
        }
        total += n(&e["title"]) + n(&e["description"]) + n(&e["footer"]["text"]);
    }
    assert!(total <= MAX_EMBED_TOTAL, "{total}");
    assert_eq!(total, m.embed_chars);
}

#[test]
fn mail_cannot_ping_or_format() {
    let hostile = item(
        1,
        "@everyone <@123> <@&456> **bold** [click](http://x)",
        "@here <a@b>",
        "> quote\n# head `code`",
    );
    let m = render(None, &[hostile], Level::Full);
    assert_eq!(m.body["allowed_mentions"], json!({ "parse": [] }));
    let mut all = Vec::new();
    strings(&m.body, &mut all);
    for s in all {
        assert!(!pings(&s), "{s}");
        assert!(!s.contains("**bold**") && !s.contains("[click]"), "{s}");
    }
}

#[test]
fn a_configured_mention_is_the_only_ping() {
    let m = render(
        Some(&bucket(Some(Mention::Role("42".into())))),
        &[item(1, "@everyone", "x", "")],
        Level::Full,
    );
    assert_eq!(
        m.body["allowed_mentions"],
        json!({ "parse": [], "roles": ["42"] })
    );
    assert!(m.body["content"].as_str().unwrap().starts_with("<@&42> "));
    let m = render(
        Some(&bucket(Some(Mention::Everyone))),
        &[item(1, "s", "x", "")],
        Level::Full,
    );
    assert_eq!(m.body["allowed_mentions"], json!({ "parse": ["everyone"] }));
    assert_eq!(m.body["embeds"][0]["color"], json!(0xE74C3C));
}

#[test]
fn text_that_escapes_to_nothing_gets_a_placeholder() {
    let invisible = "\u{202E}\u{2066}\u{1}\u{1B}\u{200B}";
    let m = render(
        None,
        &[item(1, invisible, invisible, invisible)],
        Level::Full,
    );
    let e = &m.body["embeds"][0];
    assert_eq!(e["title"], "(no subject)");
    assert_eq!(e["fields"][0]["value"], "(unknown sender)");
    assert!(e.get("description").is_none(), "{e}");
    assert_within_limits(&m);
}

#[test]
fn batches_stop_at_ten_embeds_and_six_thousand_characters() {
    let small: Vec<Item> = (0..25).map(|i| item(i, "hi", "a@b", "short")).collect();
    let m = render(None, &small, Level::Full);
    assert_eq!(m.ids, (0..10).collect::<Vec<_>>());
    let big: Vec<Item> = (0..10)
        .map(|i| item(i, &"s".repeat(300), &"f".repeat(2000), &"x".repeat(500)))
        .collect();
    let m = render(None, &big, Level::Full);
    assert!(m.ids.len() < 10 && !m.ids.is_empty());
    assert_within_limits(&m);
}

#[test]
fn cuts_are_visible_and_never_leave_a_dangling_escape() {
    let m = render(None, &[item(1, &"*".repeat(1000), "a", "")], Level::Full);
    let title = m.body["embeds"][0]["title"].as_str().unwrap();
    assert!(title.ends_with('…') && !title.ends_with("\\…"), "{title}");
    assert_within_limits(&m);
}

/// Regression (fuzz/artifacts crash-b510dd18): a cut right after an `@` dropped its
/// zero-width space. Every `@` from a mail must stay disarmed, wherever the cut falls.
#[test]
fn a_cut_never_separates_an_at_sign_from_its_guard() {
    for pad in 250..260 {
        let subject = format!("{}@everyone", "x".repeat(pad));
        let m = render(None, &[item(1, &subject, "a", "")], Level::Full);
        let title = m.body["embeds"][0]["title"].as_str().unwrap();
        let chars: Vec<char> = title.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            if *c == '@' {
                assert_eq!(chars.get(i + 1), Some(&'\u{200B}'), "{title}");
            }
        }
        assert_within_limits(&m);
    }
}

#[test]
fn smaller_levels_shrink() {
    let it = item(1, "subject", "from", &"x".repeat(500));
    let small = render(None, std::slice::from_ref(&it), Level::Small);
    assert!(small.body["embeds"][0].get("description").is_none());
    let plain = render(None, &[it.clone(), it], Level::Plain);
    assert!(plain.body.get("embeds").is_none());
    assert_eq!(plain.ids.len(), 1);
}

#[test]
fn arbitrary_mail_stays_within_limits_and_never_pings() {
    let alphabet: Vec<char> = "@<>&#*_~|`\\[]():-everyonehr1! \n\u{200B}\u{202E}é日\0x"
        .chars()
        .collect();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut text = |max: usize| -> String {
        (0..rng.usize(0..max))
            .map(|_| alphabet[rng.usize(..alphabet.len())])
            .collect()
    };
    for _ in 0..300 {
        let items: Vec<Item> = (0..12)
            .map(|i| item(i, &text(600), &text(1500), &text(500)))
            .collect();
        for level in [Level::Full, Level::Small, Level::Plain] {
            let m = render(None, &items, level);
            assert_within_limits(&m);
            assert_eq!(m.body["allowed_mentions"], json!({ "parse": [] }));
            let mut all = Vec::new();
            strings(&m.body, &mut all);
            for s in all {
                assert!(!pings(&s), "{s:?}");
            }
        }
    }
}
