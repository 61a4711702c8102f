//! Mail as the rest of the agent sees it: the few fields that triage, the spool and Discord
//! need, read from hostile bytes. Parsing never fails: what cannot be read is left empty and the
//! reason recorded, so a bad mail is still spooled (in the fallback bucket) rather than lost.

use crate::text::{collapse_whitespace, truncate_chars};
use crate::triage::Headers;
use mail_parser::parsers::MessageStream;
use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders};

/// At most this many characters of body text travel with the item.
pub const SNIPPET_CHARS: usize = 500;

/// At most this many characters of `from`, `to`, `cc`, `subject` and the message id: RFC 5322's
/// line limit, which no honest header needs to exceed.
pub(crate) const FIELD_CHARS: usize = 998;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// `Display Name <addr@host>`, or the bare address.
    pub from: String,
    pub to: String,
    pub cc: String,
    pub subject: String,
    /// RFC 3339, from the Date header.
    pub date: Option<String>,
    pub message_id: Option<String>,
    pub snippet: String,
    /// Why the mail could not be read fully, when it could not.
    pub parse_error: Option<String>,
    /// What the mail carries besides its text, from the server's BODYSTRUCTURE.
    pub attachments: Vec<Attachment>,
}

/// One attachment as the server describes it: the spool's record of it, kept as read.
pub(crate) use crate::spool::Attachment;

/// What the spool keeps of a mail: everything but `to` and `cc`, which only triage reads.
impl From<&Summary> for crate::spool::Mail {
    fn from(s: &Summary) -> Self {
        crate::spool::Mail {
            message_id: s.message_id.clone(),
            from: s.from.clone(),
            subject: s.subject.clone(),
            date: s.date.clone(),
            snippet: s.snippet.clone(),
            parse_error: s.parse_error.clone(),
            attachments: s.attachments.clone(),
        }
    }
}

impl Summary {
    /// The summary's fields for triage; the headers rules name come from [`header_values`].
    pub fn fields(&self) -> crate::triage::Fields<'_> {
        crate::triage::Fields {
            from: &self.from,
            subject: &self.subject,
            to: &self.to,
            cc: &self.cc,
            snippet: &self.snippet,
            ..crate::triage::Fields::default()
        }
    }
}

/// The first text of any part when the body has none: an empty text alternative beside an HTML
/// one, or the only words sent as a `text/*` attachment. HTML becomes its readable text (tags,
/// styles and scripts dropped, entities decoded).
fn first_readable_part(msg: &mail_parser::Message<'_>) -> String {
    msg.parts
        .iter()
        .filter(|p| p.is_text())
        .map(|p| {
            let text = p.text_contents().unwrap_or("");
            if p.is_text_html() {
                collapse_whitespace(
                    &mail_parser::decoders::html::html_to_text(text),
                    SNIPPET_CHARS,
                )
            } else {
                collapse_whitespace(text, SNIPPET_CHARS)
            }
        })
        .find(|t| !t.is_empty())
        .unwrap_or_default()
}

/// Reads what can be read from a raw RFC 5322 message.
pub fn summarize(raw: &[u8]) -> Summary {
    // Only the first 64 KiB are fetched, so a long header block may end mid-header with no
    // blank line after it: close it, or the parser drops the last header.
    let closed;
    let raw = if body_start(raw).is_none() {
        closed = [raw, b"\r\n\r\n"].concat();
        &closed[..]
    } else {
        raw
    };
    let Some(msg) = MessageParser::default().parse(raw) else {
        return Summary {
            snippet: fallback_snippet(raw),
            parse_error: Some("not a parseable RFC 5322 message".into()),
            ..Summary::default()
        };
    };
    let headers_missing =
        msg.from().is_none() && msg.subject().is_none() && msg.message_id().is_none();
    let mut snippet = msg
        .body_text(0)
        .map(|t| collapse_whitespace(&t, SNIPPET_CHARS))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| first_readable_part(&msg));
    let mut parse_error =
        headers_missing.then(|| "no From, Subject or Message-ID header".to_string());
    // A body the parser could not split into parts (a multipart without a boundary): no text,
    // no attachment, yet bytes are there. Keep them as raw text and say so.
    let raw_body = body_start(raw).map_or(&[][..], |at| &raw[at..]);
    let unsplit = msg
        .content_type()
        .is_some_and(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
        && msg.parts.len() <= 1;
    if snippet.is_empty() && unsplit && raw_body.iter().any(|b| !b.is_ascii_whitespace()) {
        snippet = fallback_snippet(raw_body);
        parse_error.get_or_insert_with(|| {
            "the body could not be split into its parts; kept as raw text".to_string()
        });
    }
    Summary {
        from: msg.from().map(addresses).unwrap_or_default(),
        to: msg.to().map(addresses).unwrap_or_default(),
        cc: msg.cc().map(addresses).unwrap_or_default(),
        subject: truncate_chars(msg.subject().unwrap_or(""), FIELD_CHARS).to_string(),
        date: msg.date().and_then(utc_rfc3339),
        message_id: msg
            .message_id()
            .map(|m| truncate_chars(m, FIELD_CHARS).to_string()),
        parse_error,
        snippet,
        attachments: Vec::new(),
    }
}

/// Where the body begins: after the first empty line (CRLF or bare LF).
fn body_start(raw: &[u8]) -> Option<usize> {
    let mut at = 0;
    for line in raw.split_inclusive(|b| *b == b'\n') {
        at += line.len();
        if line == b"\n" || line == b"\r\n" {
            return Some(at);
        }
    }
    None
}

/// The Date header as RFC 3339 in UTC, or nothing when it names no real instant (31 February,
/// 25:61, an offset of +99:99).
fn utc_rfc3339(d: &mail_parser::DateTime) -> Option<String> {
    let local = chrono::NaiveDate::from_ymd_opt(i32::from(d.year), d.month.into(), d.day.into())?
        .and_hms_opt(d.hour.into(), d.minute.into(), d.second.into())?;
    if d.tz_hour > 14 || d.tz_minute > 59 {
        return None;
    }
    let offset = i64::from(d.tz_hour) * 3600 + i64::from(d.tz_minute) * 60;
    let offset = if d.tz_before_gmt { -offset } else { offset };
    let utc = local.checked_sub_signed(chrono::TimeDelta::seconds(offset))?;
    Some(
        utc.and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// For bytes that are not a message at all: printable text only, bounded.
fn fallback_snippet(raw: &[u8]) -> String {
    let head = &raw[..raw.len().min(SNIPPET_CHARS * 4)];
    collapse_whitespace(&String::from_utf8_lossy(head), SNIPPET_CHARS)
}

fn addresses(a: &Address<'_>) -> String {
    let mut out = Vec::new();
    for addr in a.iter() {
        let email = addr.address().unwrap_or("");
        match addr.name() {
            Some(name) if !name.is_empty() && !email.is_empty() => {
                out.push(format!("{name} <{email}>"))
            }
            Some(name) if !name.is_empty() => out.push(name.to_string()),
            _ => out.push(email.to_string()),
        }
    }
    truncate_chars(&out.join(", "), FIELD_CHARS).to_string()
}

/// The decoded (RFC 2047), unfolded text of every occurrence of the top-level headers in `names`
/// (compared case-insensitively), for rules on arbitrary headers. Only the headers some rule
/// names are read, and they stay beside the summary, not in it: the spool keeps the same few
/// fields whatever the rules look at. A second, headers-only parse keeps [`summarize`] as it is;
/// with no header rules it costs nothing.
pub fn header_values(raw: &[u8], names: &[String]) -> Headers {
    if names.is_empty() {
        return Headers::default();
    }
    let Some(msg) = MessageParser::new().parse_headers(raw) else {
        return Headers::default();
    };
    msg.headers()
        .iter()
        .filter(|h| {
            names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(h.name.as_str()))
        })
        .map(|h| {
            let value = raw
                .get(h.offset_start as usize..h.offset_end as usize)
                .unwrap_or_default();
            (h.name.as_str().to_string(), header_text(value))
        })
        .collect()
}

/// One header's value as text, whatever type the parser would give that header (an address
/// list, a date): what the sender wrote, encoded words decoded and folds joined.
fn header_text(value: &[u8]) -> String {
    // The unstructured parser ends a value at a line break; the last header may have none.
    let mut line = value.to_vec();
    line.push(b'\n');
    match MessageStream::new(&line).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_usual_fields() {
        let raw = b"From: \"Stripe\" <receipts@stripe.com>\r\nTo: me@example.net\r\nSubject: =?UTF-8?B?UGF5bWVudCDinJM=?=\r\nDate: Tue, 1 Sep 2026 10:00:00 +0000\r\nMessage-ID: <abc@stripe.com>\r\n\r\nHello\r\n\r\n  world\r\n";
        let s = summarize(raw);
        assert_eq!(s.from, "Stripe <receipts@stripe.com>");
        assert_eq!(s.to, "me@example.net");
        assert_eq!(s.subject, "Payment \u{2713}");
        assert_eq!(s.message_id.as_deref(), Some("abc@stripe.com"));
        assert_eq!(s.date.as_deref(), Some("2026-09-01T10:00:00Z"));
        assert_eq!(s.snippet, "Hello world");
        assert_eq!(s.parse_error, None);
    }

    #[test]
    fn an_html_only_newsletter_reads_as_its_text() {
        let raw = b"From: news@shop.example\r\nSubject: News\r\nMessage-ID: <n@shop>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><head><style>body{color:red}</style><script>var x=1;</script></head><body><p>Hello &amp; welcome&nbsp;to <b>our</b>\r\n   news</p><div>Second&#8212;line</div></body></html>\r\n";
        let s = summarize(raw);
        assert_eq!(s.snippet, "Hello & welcome to our news Second\u{2014}line");
        assert_eq!(s.parse_error, None);
    }

    #[test]
    fn text_only_in_an_attachment_or_an_html_alternative_is_still_shown() {
        let attachment = b"From: a@b.example\r\nSubject: Scan\r\nMessage-ID: <s@b>\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=a.bin\r\n\r\nbinary\r\n--XX\r\nContent-Type: text/plain; name=notes.txt\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\nThe readable   text\r\n--XX--\r\n";
        assert_eq!(summarize(attachment).snippet, "The readable text");
        let alternative = b"From: a@b.example\r\nSubject: Alt\r\nMessage-ID: <t@b>\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\nContent-Type: text/plain\r\n\r\n \r\n--YY\r\nContent-Type: text/html\r\n\r\n<p>Only <i>here</i></p>\r\n--YY--\r\n";
        assert_eq!(summarize(alternative).snippet, "Only here");
    }

    #[test]
    fn bad_input_is_summarised_not_refused() {
        for raw in [
            &b""[..],
            b"\0\0\0\xff\xfe",
            b"no headers at all",
            b"Subject: \xff\xfe bad\r\n\r\nbody",
        ] {
            let s = summarize(raw);
            assert!(s.snippet.chars().count() <= SNIPPET_CHARS);
        }
        assert!(summarize(b"").parse_error.is_some());
    }

    #[test]
    fn snippet_is_bounded() {
        let mut raw = b"From: a@b\r\nSubject: long\r\n\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b'x', 100_000));
        assert_eq!(summarize(&raw).snippet.chars().count(), SNIPPET_CHARS);
    }

    fn wanted(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn named_headers_are_decoded_unfolded_and_all_kept() {
        let raw = b"From: a@b\r\nList-ID: =?UTF-8?Q?Caf=C3=A9?= news\r\n <news.example.com>\r\nX-Tag: one\r\nSubject: hi\r\nx-tag: two\r\nX-Other: no\r\n\r\nbody\r\n";
        let h = header_values(raw, &wanted(&["list-id", "X-TAG"]));
        assert_eq!(
            h.values("List-Id").collect::<Vec<_>>(),
            ["Café news <news.example.com>"]
        );
        assert_eq!(h.values("x-tag").collect::<Vec<_>>(), ["one", "two"]);
        assert_eq!(
            h.values("X-Other").count(),
            0,
            "only named headers are read"
        );
    }

    #[test]
    fn standard_headers_are_read_as_written_text() {
        let raw = b"From: \"Stripe\" <receipts@stripe.com>\r\nDate: Tue, 1 Sep 2026 10:00:00 +0000\r\nX-Last: end";
        let h = header_values(raw, &wanted(&["from", "date", "x-last"]));
        assert_eq!(
            h.values("from").collect::<Vec<_>>(),
            ["\"Stripe\" <receipts@stripe.com>"]
        );
        assert_eq!(
            h.values("date").collect::<Vec<_>>(),
            ["Tue, 1 Sep 2026 10:00:00 +0000"]
        );
        assert_eq!(h.values("x-last").collect::<Vec<_>>(), ["end"]);
    }

    #[test]
    fn header_values_of_bad_input_are_empty_not_a_failure() {
        assert_eq!(header_values(b"From: a@b\r\n\r\n", &[]), Headers::default());
        for raw in [&b""[..], b"\0\0\xff", b"X-Tag: \xff\xfe\r\n\r\n"] {
            let h = header_values(raw, &wanted(&["x-tag"]));
            assert!(h.values("x-tag").all(|v| v.len() < 16));
        }
    }
}
