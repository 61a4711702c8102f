//! A mail's attachments read from its BODYSTRUCTURE (RFC 3501 7.4.2), without downloading them:
//! name, type, size and the section that a later `BODY.PEEK[section]` would fetch.
//!
//! Listed: parts with `Content-Disposition: attachment`, and other parts that carry a file
//! name, except the small images a mail shows inline (a logo, a tracking pixel: an image
//! under [`INLINE_IMAGE`] that is inline or referenced by Content-ID). Body text parts without a
//! name are the mail's text, not attachments. Names come from the mail: RFC 2047 and RFC 2231
//! encodings are decoded, any path is cut off, control characters are dropped and the length
//! is capped, so a name can neither reach outside its line nor look like a path.

use crate::mail::Attachment;
use imap_proto::types::{BodyContentCommon, BodyContentSinglePart, BodyStructure, ContentEncoding};
use std::borrow::Cow;

/// Images below this size shown inline are decoration, not attachments.
const INLINE_IMAGE: u64 = 16 * 1024;
/// At most this many attachments are kept per mail (a mail can carry thousands of parts).
const MAX: usize = 20;
const NAME_CHARS: usize = 100;

/// The attachments of a mail whose structure is `bs`, in part order.
pub(crate) fn attachments(bs: &BodyStructure<'_>) -> Vec<Attachment> {
    let mut out = Vec::new();
    walk(bs, "", &mut out);
    out
}

fn walk(bs: &BodyStructure<'_>, section: &str, out: &mut Vec<Attachment>) {
    let here = |n: usize| {
        if section.is_empty() {
            n.to_string()
        } else {
            format!("{section}.{n}")
        }
    };
    match bs {
        BodyStructure::Multipart { bodies, .. } => {
            for (i, b) in bodies.iter().enumerate() {
                if out.len() >= MAX {
                    return;
                }
                walk(b, &here(i + 1), out);
            }
        }
        BodyStructure::Basic { common, other, .. }
        | BodyStructure::Text { common, other, .. }
        | BodyStructure::Message { common, other, .. } => {
            // A single-part mail's only part is section 1 (RFC 3501 6.4.5).
            let section = if section.is_empty() {
                "1".to_string()
            } else {
                section.to_string()
            };
            if let Some(a) = attachment(common, other, section) {
                out.push(a);
            }
        }
    }
}

fn attachment(
    common: &BodyContentCommon<'_>,
    other: &BodyContentSinglePart<'_>,
    section: String,
) -> Option<Attachment> {
    let disposition = common
        .disposition
        .as_ref()
        .map(|d| d.ty.to_ascii_lowercase());
    let name = common
        .disposition
        .as_ref()
        .and_then(|d| param(&d.params, "filename"))
        .or_else(|| param(&common.ty.params, "name"));
    let mime = format!(
        "{}/{}",
        common.ty.ty.to_ascii_lowercase(),
        common.ty.subtype.to_ascii_lowercase()
    );
    let size = decoded_size(other);
    let attached = disposition.as_deref() == Some("attachment");
    let message = mime == "message/rfc822";
    if !attached && name.is_none() && !message {
        return None;
    }
    let inline = disposition.as_deref() == Some("inline") || other.id.is_some();
    if !attached && mime.starts_with("image/") && inline && size < INLINE_IMAGE {
        return None;
    }
    let name = name.map(|n| clean(&n)).filter(|n| !n.is_empty());
    Some(Attachment {
        name: name.unwrap_or_else(|| {
            if message {
                "attached message.eml"
            } else {
                "attachment"
            }
            .into()
        }),
        mime: crate::text::truncate_chars(&mime, 80).to_string(),
        size,
        section,
        encoding: match &other.transfer_encoding {
            ContentEncoding::SevenBit => "7bit".into(),
            ContentEncoding::EightBit => "8bit".into(),
            ContentEncoding::Binary => "binary".into(),
            ContentEncoding::Base64 => "base64".into(),
            ContentEncoding::QuotedPrintable => "quoted-printable".into(),
            ContentEncoding::Other(o) => crate::text::truncate_chars(o, 40).to_ascii_lowercase(),
        },
    })
}

/// What the part holds once decoded: base64 carries 57 bytes in each 78-byte line.
fn decoded_size(other: &BodyContentSinglePart<'_>) -> u64 {
    let octets = u64::from(other.octets);
    match other.transfer_encoding {
        ContentEncoding::Base64 => octets * 57 / 78,
        _ => octets,
    }
}

/// A parameter's value: `key`, or RFC 2231's `key*` (charset'language'percent-encoded) and
/// continuations `key*0`, `key*1*`, … joined in order.
fn param(params: &Option<Vec<(Cow<'_, str>, Cow<'_, str>)>>, key: &str) -> Option<String> {
    let params = params.as_ref()?;
    let plain = params.iter().find(|(k, _)| k.eq_ignore_ascii_case(key));
    if let Some((_, v)) = plain {
        return Some(decode_words(v));
    }
    let mut pieces: Vec<(u32, bool, &str)> = params
        .iter()
        .filter_map(|(k, v)| {
            let rest = k
                .get(key.len()..)
                .filter(|_| k.len() > key.len() && k[..key.len()].eq_ignore_ascii_case(key))?;
            let rest = rest.strip_prefix('*')?;
            let (index, encoded) = match rest.strip_suffix('*') {
                Some(n) => (n, true),
                None if rest.is_empty() => ("0", true),
                None => (rest, false),
            };
            Some((index.parse().ok()?, encoded, v.as_ref()))
        })
        .collect();
    if pieces.is_empty() {
        return None;
    }
    pieces.sort_by_key(|p| p.0);
    let mut bytes = Vec::new();
    for (i, (_, encoded, value)) in pieces.iter().enumerate() {
        let value = if i == 0 && *encoded {
            // charset'language'value: only UTF-8 and ASCII are read; others come out lossy.
            value.splitn(3, '\'').nth(2).unwrap_or(value)
        } else {
            value
        };
        if *encoded {
            bytes.extend(percent_decode(value));
        } else {
            bytes.extend_from_slice(value.as_bytes());
        }
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// RFC 2047 encoded words (`=?UTF-8?B?…?=`), as mail clients put them in file names, decoded
/// in place: text around them is kept as it is (`=?…?=.pdf` stays one name).
fn decode_words(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(at) = rest.find("=?") {
        out.push_str(&rest[..at]);
        let word = &rest[at + 1..];
        let mut stream = mail_parser::parsers::MessageStream::new(word.as_bytes());
        match stream.decode_rfc2047() {
            Some(text) if word.is_char_boundary(stream.offset()) => {
                out.push_str(&text);
                rest = &word[stream.offset()..];
            }
            _ => {
                out.push_str("=?");
                rest = &rest[at + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn percent_decode(s: &str) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b.get(i..i + 3) {
            Some([b'%', h, l]) if hex(*h).is_some() && hex(*l).is_some() => {
                out.push((hex(*h).unwrap_or(0) * 16 + hex(*l).unwrap_or(0)) as u8);
                i += 3;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

/// A file name fit to show and to upload: its last path component, no control or direction
/// characters, whitespace folded, at most [`NAME_CHARS`] characters.
pub(crate) fn clean(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let visible: String = last
        .chars()
        .filter(|c| !c.is_control())
        .filter(|c| !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}'..='\u{200F}'))
        .collect();
    let name = crate::text::collapse_whitespace(&visible, NAME_CHARS);
    let name = name.trim_start_matches('.');
    name.to_string()
}

#[cfg(test)]
mod tests;
