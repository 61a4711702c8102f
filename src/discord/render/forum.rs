//! Forum and media channels: there a message is either a new post, named by the sink's
//! `thread_name` template and tagged with its bucket's `applied_tags`, or a reply in an
//! existing thread (the bucket's `thread_id`). Without either Discord refuses it (400, code
//! 220001). A thread name is shown as plain text (no markdown, no mentions), but it comes from
//! the mail: control and direction characters are dropped and it is cut to Discord's 100.

use crate::config::Bucket;
use crate::spool::Item;
use serde_json::{json, Value};

/// The placeholders a `thread_name` may use.
pub(crate) const PLACEHOLDERS: &[&str] = &["{subject}", "{from}", "{bucket}", "{account}"];

/// Discord's limit for a thread's name.
const NAME: usize = 100;

/// Why a template cannot name posts, for the config's error; `None` when it can.
pub(crate) fn invalid(template: &str) -> Option<String> {
    if template.trim().is_empty() {
        return Some("must not be empty".into());
    }
    super::unknown_placeholder(template, PLACEHOLDERS)
}

/// The name of the post for `item`.
pub(crate) fn thread_name(template: &str, item: &Item) -> String {
    let filled = template
        .replace("{subject}", &item.subject)
        .replace("{from}", &item.from)
        .replace("{bucket}", &item.bucket)
        .replace("{account}", &item.account);
    let visible: String = filled
        .chars()
        .filter(|c| !c.is_control() || *c == ' ')
        .filter(|c| !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}'..='\u{200F}'))
        .collect();
    let name = crate::text::collapse_whitespace(&visible, NAME);
    if name.is_empty() {
        "(no subject)".to_string()
    } else {
        name
    }
}

/// Makes `body` fit a forum sink (its `thread_name` template): a new post named after `first`
/// with the bucket's tags, or — when the bucket names a thread — a reply there, whose id is
/// returned for the request's address.
pub(crate) fn address(
    body: &mut Value,
    template: &str,
    bucket: Option<&Bucket>,
    first: &Item,
) -> Option<String> {
    if let Some(thread) = bucket.and_then(|b| b.thread_id.clone()) {
        return Some(thread);
    }
    body["thread_name"] = json!(thread_name(template, first));
    let tags = bucket.map_or(&[][..], |b| b.applied_tags.as_slice());
    if !tags.is_empty() {
        body["applied_tags"] = json!(tags);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(subject: &str) -> Item {
        Item {
            id: 1,
            bucket: "stripe".into(),
            account: "home".into(),
            folder: "INBOX".into(),
            uidvalidity: 1,
            uid: 1,
            message_id: None,
            from: "Stripe <s@stripe.com>".into(),
            subject: subject.into(),
            date: None,
            spooled_at: 0,
            snippet: String::new(),
            parse_error: None,
            severity: None,
            deliveries: Vec::new(),
            attachments: Vec::new(),
        }
    }

    #[test]
    fn names_come_from_the_mail_cleaned_and_cut() {
        assert_eq!(
            thread_name("{subject}", &item("Payment\r\n  received")),
            "Payment received"
        );
        assert_eq!(
            thread_name("{bucket}: {subject}", &item("\u{202E}evil")),
            "stripe: evil"
        );
        assert_eq!(thread_name("{subject}", &item("\u{0007}")), "(no subject)");
        let long = thread_name("{from} {subject}", &item(&"x".repeat(300)));
        assert_eq!(long.chars().count(), NAME);
    }

    #[test]
    fn a_post_gets_its_name_and_tags_and_a_thread_bucket_replies_there() {
        let mut bucket = Bucket {
            name: "stripe".into(),
            severity: crate::config::Severity::P2,
            mode: crate::config::Mode::Push,
            sinks: vec!["forum".into()],
            rules: Vec::new(),
            mention: None,
            digest_every: None,
            fallback: None,
            escalate_after: None,
            audit: None,
            quiet: None,
            applied_tags: Vec::new(),
            thread_id: None,
            upload_max: None,
            after_delivery: None,
        };
        bucket.applied_tags = vec!["111".into(), "222".into()];
        let mut body = json!({"content": "x"});
        assert_eq!(
            address(&mut body, "{subject}", Some(&bucket), &item("Paid")),
            None
        );
        assert_eq!(body["thread_name"], "Paid");
        assert_eq!(body["applied_tags"], json!(["111", "222"]));
        bucket.thread_id = Some("999".into());
        let mut body = json!({"content": "x"});
        assert_eq!(
            address(&mut body, "{subject}", Some(&bucket), &item("Paid")).as_deref(),
            Some("999")
        );
        assert!(body.get("thread_name").is_none());
    }

    #[test]
    fn templates_are_checked() {
        assert_eq!(invalid("{bucket} · {subject}"), None);
        assert!(invalid(" ").is_some());
        assert!(invalid("{snippet}").unwrap().contains("{snippet}"));
    }
}
