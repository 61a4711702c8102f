use super::*;
use crate::spool::{Delivery, Item, State};

fn item(id: u64, subject: &str, from: &str) -> Item {
    Item {
        id,
        bucket: "news".into(),
        account: "home".into(),
        folder: "INBOX".into(),
        uidvalidity: 1,
        uid: id as u32,
        message_id: None,
        from: from.into(),
        subject: subject.into(),
        date: None,
        spooled_at: 36_000 + id as i64 * 60,
        snippet: String::new(),
        parse_error: None,
        severity: None,
        deliveries: vec![Delivery {
            sink: "alerts".into(),
            state: State::Delivered,
            attempts: 1,
            last_error: None,
            delivered_at: Some(1),
            message_id: Some("9".into()),
            role: None,
        }],
        attachments: Vec::new(),
    }
}

#[test]
fn a_digest_lists_one_line_per_mail_in_one_embed() {
    let items: Vec<Item> = (0..3)
        .map(|i| item(i, &format!("report {i}"), "Bob <b@x>"))
        .collect();
    let m = render_digest(None, &items);
    assert_eq!(m.ids, vec![0, 1, 2]);
    let e = &m.body["embeds"][0];
    assert_eq!(e["title"], "Digest · news · 3 mails");
    let lines: Vec<&str> = e["description"].as_str().unwrap().lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1], "`10:01` Bob \\<b@\u{200B}x\\> — report 1");
    assert_eq!(m.body["allowed_mentions"], json!({ "parse": [] }));
}

#[test]
fn a_long_digest_is_split_at_the_description_limit() {
    let items: Vec<Item> = (0..200).map(|i| item(i, &"s".repeat(400), "a@b")).collect();
    let mut rest: &[Item] = &items;
    let mut messages = 0;
    while !rest.is_empty() {
        let m = render_digest(None, rest);
        let d = m.body["embeds"][0]["description"].as_str().unwrap();
        assert!(d.chars().count() <= DESCRIPTION, "{}", d.chars().count());
        assert!(m.embed_chars <= crate::discord::render::MAX_EMBED_TOTAL);
        assert!(!m.ids.is_empty());
        rest = &rest[m.ids.len()..];
        messages += 1;
    }
    // 300-character lines: 13 to a message.
    assert_eq!(messages, 16);
}

#[test]
fn audit_lines_say_where_a_mail_went_and_never_ping() {
    let items: Vec<Item> = (0..12)
        .map(|i| item(i, "@everyone <@&1>", "@here"))
        .collect();
    let m = render_audit(&items);
    assert_eq!(m.ids.len(), AUDIT_LINES);
    let content = m.body["content"].as_str().unwrap();
    assert!(content.chars().count() <= MAX_CONTENT);
    assert!(
        content.lines().all(|l| l.starts_with("✓ news → alerts: ")),
        "{content}"
    );
    assert!(
        !content.contains("@everyone") && !content.contains("@here") && !content.contains("<@&")
    );
    assert_eq!(m.body["allowed_mentions"], json!({ "parse": [] }));
    assert!(m.body.get("embeds").is_none());
}
