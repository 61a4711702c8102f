//! The link back to the mail: an account's `open_url` template filled in for one item, which
//! becomes the embed's `url` so the alert's title opens the mail in the user's webmail.
//!
//! Only four values ever enter the URL, each percent-encoded as a whole (RFC 3986 unreserved
//! characters kept): `{message_id}` (the one value from the mail itself), `{uid}`, `{folder}`
//! and `{account}`. Nothing else from the mail can shape it, so a hostile Message-ID cannot add
//! a path, a query or a scheme.

use crate::spool::Item;
use crate::text::percent_encode as encode;

/// The placeholders a template may use.
pub(crate) const PLACEHOLDERS: &[&str] = &["{message_id}", "{uid}", "{folder}", "{account}"];

/// Discord refuses an embed URL longer than this (a 400 for the whole message).
const MAX_URL: usize = 2048;

/// Why a template cannot be used, for the config's error; `None` when it can.
pub(crate) fn invalid(template: &str) -> Option<String> {
    if !(template.starts_with("https://") || template.starts_with("http://")) {
        return Some("must start with https:// (or http://)".into());
    }
    super::unknown_placeholder(template, PLACEHOLDERS)
}

/// The link for `item`, or `None` when the template needs a Message-ID the mail lacks or the
/// result would be too long for Discord.
pub(crate) fn url(template: &str, item: &Item) -> Option<String> {
    let message_id = match &item.message_id {
        Some(id) if !id.is_empty() => encode(id),
        _ if template.contains("{message_id}") => return None,
        _ => String::new(),
    };
    let url = template
        .replace("{message_id}", &message_id)
        .replace("{uid}", &item.uid.to_string())
        .replace("{folder}", &encode(&item.folder))
        .replace("{account}", &encode(&item.account));
    (url.len() <= MAX_URL).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(message_id: Option<&str>) -> Item {
        Item {
            id: 1,
            bucket: "unknown".into(),
            account: "home".into(),
            folder: "INBOX/Rechnungen".into(),
            uidvalidity: 1,
            uid: 42,
            message_id: message_id.map(str::to_string),
            from: String::new(),
            subject: String::new(),
            date: None,
            spooled_at: 0,
            snippet: String::new(),
            parse_error: None,
            severity: None,
            deliveries: Vec::new(),
            attachments: Vec::new(),
        }
    }

    const GMAIL: &str = "https://mail.google.com/mail/u/0/#search/rfc822msgid:{message_id}";

    #[test]
    fn a_message_id_is_encoded_whole_and_cannot_reshape_the_url() {
        let hostile = item(Some("a/../b?x=1#y@evil.example <script>"));
        let link = url(GMAIL, &hostile).unwrap();
        assert_eq!(
            link,
            "https://mail.google.com/mail/u/0/#search/rfc822msgid:a%2F..%2Fb%3Fx%3D1%23y%40evil.example%20%3Cscript%3E"
        );
        let other = url("https://mail.example/{account}/{folder}/{uid}", &hostile);
        assert_eq!(
            other.as_deref(),
            Some("https://mail.example/home/INBOX%2FRechnungen/42")
        );
    }

    #[test]
    fn no_link_without_the_message_id_it_needs_or_past_discords_limit() {
        assert_eq!(url(GMAIL, &item(None)), None);
        assert_eq!(url(GMAIL, &item(Some(&"x".repeat(3000)))), None);
        assert!(url("https://m.example/{uid}", &item(None)).is_some());
    }

    #[test]
    fn templates_are_checked() {
        assert_eq!(invalid(GMAIL), None);
        assert!(invalid("javascript:alert(1)").unwrap().contains("https://"));
        assert!(invalid("https://m.example/{subject}")
            .unwrap()
            .contains("{subject}"));
    }
}
