//! Hostile mail against the real binary. A corpus generated here (bad encodings, missing and
//! 8-bit headers, NUL bytes, a 10 MB attachment, 50 nested multiparts, a 4,000-character subject,
//! a 1 MB header line, mention and markdown injection, bidi overrides, zero-width characters,
//! invalid UTF-8, …) is stored in a real Dovecot while the daemon watches the mailbox and posts
//! to the fake Discord. What a user would notice is asserted: the daemon keeps running and
//! healthy, every mail is spooled exactly once and delivered exactly once, Discord never refused
//! a payload, nothing from a mail can ping or format, and a mail that reads badly lands in the
//! fallback bucket with whatever could be read.

mod common;

use common::config::Config;
use common::daemon::temp_dir;
use common::dovecot::Dovecot;
use common::fake_discord::{Behaviour, FakeDiscord, Request};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

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

// ------------------------------------------------------------------------------------ corpus

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn b64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Deterministic noise (xorshift): the same corpus every run.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// A mail with the usual headers (From, To, Subject, Date, Message-ID) and `extra` headers.
fn mail(name: &str, from: &str, subject: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: alice@example.net\r\nSubject: {subject}\r\nDate: Tue, 01 Sep 2026 10:00:00 +0000\r\nMessage-ID: <{name}@hostile.example>\r\n{extra}\r\n{body}\r\n"
    )
    .into_bytes()
}

const INJECTION: &str = "@everyone @here <@123> <@!123> <@&456> <#789> </cmd:1> \
[x](http://evil.example) [click](<http://evil.example>) **bold** __under__ ~~strike~~ \
||spoiler|| `code` ```block``` \\*escaped\\* <:emoji:1> <t:0:R>";

/// Every hostile mail, by name. Names are unique; the order is the delivery order.
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let mut c: Vec<(&'static str, Vec<u8>)> = vec![
        (
            "ordinary",
            mail(
                "ordinary",
                "Alice <alice@example.org>",
                "An ordinary mail",
                "Content-Type: text/plain; charset=utf-8\r\n",
                "Nothing to see here.",
            ),
        ),
        ("empty", Vec::new()),
        ("just-crlf", b"\r\n".to_vec()),
        ("binary-garbage", noise(4096, 0x9E37_79B9_7F4A_7C15)),
        (
            "no-header-block",
            b"\r\nnothing but text, no headers at all @everyone\r\n".to_vec(),
        ),
        (
            "no-from-subject-or-id",
            b"Date: Tue, 01 Sep 2026 10:00:00 +0000\r\nX-Whatever: 1\r\n\r\nThe body is still readable.\r\n"
                .to_vec(),
        ),
        (
            "nul-bytes",
            cat(&[
                b"From: Nul\0Sender <nul@example.org>\r\nTo: alice@example.net\r\nSubject: nul\0in\0subject\r\n",
                b"Message-ID: <nul-bytes@hostile.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
                b"nul in the body \0\0\0 and after\r\n",
            ]),
        ),
        (
            "header-without-colon",
            b"From: a@example.org\r\nThis header line has no colon at all\r\nSubject: after the broken line\r\nMessage-ID: <header-without-colon@hostile.example>\r\n\r\nbody\r\n"
                .to_vec(),
        ),
        (
            "continuation-first",
            b" a folded continuation with nothing before it\r\nFrom: b@example.org\r\nSubject: continuation first\r\n\r\nbody\r\n"
                .to_vec(),
        ),
        (
            "headers-only-no-newline",
            b"From: c@example.org\r\nSubject: headers only, no body, no final newline".to_vec(),
        ),
        (
            "latin1-headers-8bit",
            b"From: J\xfcrgen M\xfcller <j@example.org>\r\nSubject: Caf\xe9 cr\xe8me \xab8-bit\xbb\r\nMessage-ID: <latin1@hostile.example>\r\n\r\nbody \xe9\xe8\r\n"
                .to_vec(),
        ),
        (
            "utf8-headers-8bit",
            "From: Jürgen <j@exämple.org>\r\nSubject: Grüße 日本語 \u{1F4E7}\r\nMessage-ID: <utf8-8bit@hostile.example>\r\n\r\nbody\r\n"
                .as_bytes()
                .to_vec(),
        ),
        (
            "invalid-utf8",
            cat(&[
                b"From: Bad \xc3\x28 Utf8 <bad@example.org>\r\nSubject: overlong \xc0\xaf surrogate \xed\xa0\x80 too big \xf4\x90\x80\x80 cut \xe2\x82\r\n",
                b"Message-ID: <invalid-utf8@hostile.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
                b"body \xff\xfe\xfd \xc3\x28 \xed\xa0\x80 <@\xff123>\r\n",
            ]),
        ),
        (
            "unknown-charset",
            mail(
                "unknown-charset",
                "=?x-klingon?B?QGV2ZXJ5b25l?= <k@example.org>",
                "=?x-klingon?Q?nuqneH?= =?utf-8?Q?ok?=",
                "Content-Type: text/plain; charset=x-klingon\r\n",
                "qapla'",
            ),
        ),
        (
            "broken-encoded-words",
            mail(
                "broken-encoded-words",
                "=?utf-8?B?!!!?= <e@example.org>",
                "=?utf-8?B?!!!not base64?= =?utf-8?Q?=ZZ=?= =?utf-8?B?QGV2 =?utf-8??= =?==?=",
                "",
                "body",
            ),
        ),
        (
            "encoded-word-mentions",
            mail(
                "encoded-word-mentions",
                &format!("=?utf-8?B?{}?= <m@example.org>", b64(b"@everyone <@123>")),
                &format!("=?utf-8?B?{}?=", b64(INJECTION.as_bytes())),
                "",
                "body",
            ),
        ),
        (
            "encoded-word-controls",
            mail(
                "encoded-word-controls",
                "=?utf-8?Q?=E2=80=AEmoc.live=E2=80=AC?= <r@example.org>",
                "=?utf-8?Q?line=0D=0Abreak=00nul=07bell=E2=80=AE@everyone=E2=80=8B?=",
                "",
                "body",
            ),
        ),
        (
            "from-only-bidi-override",
            mail(
                "from-only-bidi-override",
                "=?utf-8?Q?=E2=80=AE?=",
                "a sender that is only a bidi override",
                "",
                "body",
            ),
        ),
        (
            "from-only-controls",
            mail(
                "from-only-controls",
                "=?utf-8?Q?=01=02=1B?=",
                "a sender that is only control characters",
                "",
                "body",
            ),
        ),
        (
            "subject-only-invisible",
            mail(
                "subject-only-invisible",
                "i@example.org",
                "=?utf-8?Q?=E2=80=AE=E2=80=AC=01=1B?=",
                "Content-Type: text/plain; charset=utf-8\r\n",
                "\u{202E}\u{2066}",
            ),
        ),
        (
            "base64-not-base64",
            mail(
                "base64-not-base64",
                "d@example.org",
                "base64 that is not",
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n",
                "this is *not* base64 !!! @@@ ~~~\r\n====\r\n\0",
            ),
        ),
        (
            "quoted-printable-broken",
            mail(
                "quoted-printable-broken",
                "q@example.org",
                "broken quoted-printable",
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n",
                "bad =ZZ escape, cut =4\r\nsoft =\r\nbreak, nul =00, rlo =E2=80=AE@everyone, at =40here, trailing =",
            ),
        ),
        (
            "transfer-encoding-unknown",
            mail(
                "transfer-encoding-unknown",
                "u@example.org",
                "an unknown transfer encoding",
                "Content-Type: ;;;;===; charset=\"\r\nContent-Transfer-Encoding: x-uuencode\r\n",
                "begin 644 x\r\n#0V%T\r\nend",
            ),
        ),
        (
            "utf7-at-sign",
            mail(
                "utf7-at-sign",
                "s@example.org",
                "=?utf-7?Q?+AEA-everyone?=",
                "Content-Type: text/plain; charset=utf-7\r\n",
                "+AEA-everyone +ADw-+AEA-123+AD4-",
            ),
        ),
        (
            "utf16-body",
            cat(&[
                b"From: w@example.org\r\nSubject: utf-16 body\r\nMessage-ID: <utf16@hostile.example>\r\nContent-Type: text/plain; charset=utf-16\r\n\r\n",
                &"\u{FEFF}@everyone in utf-16"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes)
                    .collect::<Vec<u8>>(),
                b"\xd8\r\n",
            ]),
        ),
        (
            "html-entities",
            mail(
                "html-entities",
                "h@example.org",
                "html only",
                "Content-Type: text/html; charset=utf-8\r\n",
                "<html><body><script>alert(1)</script><p>&#64;everyone &lt;@123&gt; &#x3C;#789&#x3E;</p>\
                 <a href=\"http://evil.example\">[x](http://evil.example)</a>&#8238;&#8203;&#0;</body></html>",
            ),
        ),
        (
            "multipart-no-boundary",
            mail(
                "multipart-no-boundary",
                "mp@example.org",
                "multipart without a boundary",
                "MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n",
                "--\r\nContent-Type: text/plain\r\n\r\nno boundary at all\r\n--\r\n",
            ),
        ),
        (
            "multipart-never-closed",
            mail(
                "multipart-never-closed",
                "mp@example.org",
                "multipart never closed",
                "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n",
                "--b1\r\nContent-Type: text/plain\r\n\r\nthe closing boundary never comes\r\n--b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n--b2\r\nContent-Type: text/plain\r\n\r\nnor this one",
            ),
        ),
        ("multipart-nested-50", nested_multipart(50)),
        ("rfc822-nested-50", nested_rfc822(50)),
        ("attachment-10mb", attachment_10mb()),
        (
            "subject-4000",
            mail(
                "subject-4000",
                "long@example.org",
                &"<@123>*_".repeat(500),
                "",
                "a 4,000-character subject that doubles when escaped",
            ),
        ),
        // Discord's title limit (256) falls right after an '@': the cut must not strip the
        // zero-width space that disarms it (the `mail` fuzzer found this one).
        (
            "at-sign-at-the-title-cut",
            mail(
                "at-sign-at-the-title-cut",
                "cut@example.org",
                &format!("{}@everyone", "x".repeat(254)),
                "",
                "a mention cut in half",
            ),
        ),
        (
            "escaped-at-sign-at-the-title-cut",
            mail(
                "escaped-at-sign-at-the-title-cut",
                "cut@example.org",
                &format!("{}@here", "*".repeat(127)),
                "",
                "escapes push the mention to the cut",
            ),
        ),
        (
            "subject-1mb",
            mail(
                "subject-1mb",
                "huge@example.org",
                &"@everyone ".repeat(110_000),
                "",
                "a 1 MB subject line",
            ),
        ),
        (
            "1mb-filler-header-first",
            cat(&[
                b"X-Filler: ",
                &vec![b'f'; 1 << 20],
                b"\r\nFrom: late@example.org\r\nSubject: after a 1 MB header\r\n\r\nbody\r\n",
            ]),
        ),
        (
            "20000-headers",
            cat(&[
                (0..20_000)
                    .map(|i| format!("X-H-{i}: v\r\n"))
                    .collect::<String>()
                    .as_bytes(),
                b"From: many@example.org\r\nSubject: many headers\r\n\r\nbody\r\n",
            ]),
        ),
        (
            "bare-lf",
            b"From: lf@example.org\nSubject: bare LF\nMessage-ID: <bare-lf@hostile.example>\n\nbare line feeds\nonly\n"
                .to_vec(),
        ),
        (
            "bare-cr",
            b"From: cr@example.org\rSubject: bare CR\rMessage-ID: <bare-cr@hostile.example>\r\rbare carriage returns\r"
                .to_vec(),
        ),
        (
            "mentions-everywhere",
            mail(
                "mentions-everywhere",
                "\"@everyone <@123> <@&456>\" <everyone@here.example>",
                "@here <@&456> <#789> <@!42> @everyone",
                "Content-Type: text/plain; charset=utf-8\r\n",
                "@everyone\r\n@here\r\n<@123> <@!123> <@&456> <#789>\r\n",
            ),
        ),
        (
            "markdown-injection",
            mail(
                "markdown-injection",
                "\"[x](http://evil.example) **boss**\" <md@example.org>",
                INJECTION,
                "Content-Type: text/plain; charset=utf-8\r\n",
                &format!(
                    "# heading\r\n## h2\r\n-# subtext\r\n> quote\r\n>>> block quote\r\n- list\r\n1. list\r\n{INJECTION}\r\n\\ trailing backslash \\"
                ),
            ),
        ),
        (
            "bidi-and-zero-width",
            mail(
                "bidi-and-zero-width",
                "\"\u{202E}gro.elpmaxe@ssob\u{202C}\" <bidi@example.org>",
                "@\u{200B}everyone @\u{200D}here <@\u{2060}123> \u{202E}evil\u{202C} \u{2066}x\u{2069} \u{FEFF}bom",
                "Content-Type: text/plain; charset=utf-8\r\n",
                "\u{202E}reversed\u{202C} @\u{200C}everyone \u{200F}rlm\u{200E}lrm \u{2028}ls\u{2029}ps",
            ),
        ),
        (
            "backslashes",
            mail(
                "backslashes",
                "\"\\\\\\\" <bs@example.org>",
                "\\\\\\*not bold\\* ends with a backslash \\",
                "",
                "\\\\\\\\ <\\@123> \\",
            ),
        ),
        (
            "date-garbage",
            mail_dated("date-garbage", "Tue, 31 Feb 2026 25:61:61 +9999"),
        ),
        ("date-year-0", mail_dated("date-year-0", "1 Jan 0000 00:00:00 +0000")),
        (
            "date-after-9999",
            mail_dated("date-after-9999", "31 Dec 9999 23:59:59 -1200"),
        ),
        ("date-empty", mail_dated("date-empty", "")),
        (
            "message-id-10k",
            format!(
                "From: id@example.org\r\nSubject: huge message id\r\nMessage-ID: <{}@x>\r\n\r\nbody\r\n",
                "i".repeat(10_000)
            )
            .into_bytes(),
        ),
        (
            "duplicate-message-id-1",
            mail("duplicate", "dup@example.org", "first of two with one Message-ID", "", "one"),
        ),
        (
            "duplicate-message-id-2",
            mail("duplicate", "dup@example.org", "second of two with one Message-ID", "", "two"),
        ),
        (
            "from-3000-addresses",
            mail(
                "from-3000-addresses",
                &(0..3000)
                    .map(|i| format!("\"*{i}*\" <u{i}@example.org>"))
                    .collect::<Vec<_>>()
                    .join(", "),
                "three thousand senders",
                "",
                "body",
            ),
        ),
        (
            "display-name-3000",
            mail(
                "display-name-3000",
                &format!("\"{}\" <dn@example.org>", "*_`|~".repeat(600)),
                "a 3,000-character display name",
                "",
                "body",
            ),
        ),
        (
            "astral-emoji-subject",
            mail(
                "astral-emoji-subject",
                "emoji@example.org",
                &"\u{1F4A3}".repeat(2000),
                "",
                &"\u{1F9E8}".repeat(5000),
            ),
        ),
        (
            "zalgo",
            mail(
                "zalgo",
                "z@example.org",
                &format!("z{}", "\u{0336}\u{0337}\u{0338}".repeat(1000)),
                "",
                &format!("z{}", "\u{0300}".repeat(20_000)),
            ),
        ),
        (
            "body-60k-one-word",
            mail(
                "body-60k-one-word",
                "w@example.org",
                "one 60 KB word",
                "",
                &"w".repeat(60_000),
            ),
        ),
        (
            "whitespace-everywhere",
            mail(
                "whitespace-everywhere",
                "\"   \" <ws@example.org>",
                "   \t  ",
                "",
                " \r\n\t\r\n \r\n",
            ),
        ),
    ];
    c.dedup_by_key(|(n, _)| *n);
    c
}

fn mail_dated(name: &str, date: &str) -> Vec<u8> {
    format!(
        "From: date@example.org\r\nSubject: {name}\r\nDate: {date}\r\nMessage-ID: <{name}@hostile.example>\r\n\r\nbody\r\n"
    )
    .into_bytes()
}

fn nested_multipart(depth: usize) -> Vec<u8> {
    let mut s = String::from(
        "From: nest@example.org\r\nSubject: fifty nested multiparts\r\nMessage-ID: <nested-50@hostile.example>\r\nMIME-Version: 1.0\r\n",
    );
    for i in 0..depth {
        s.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"n{i}\"\r\n\r\n--n{i}\r\n"
        ));
    }
    s.push_str("Content-Type: text/plain\r\n\r\nfifty levels down\r\n");
    for i in (0..depth).rev() {
        s.push_str(&format!("--n{i}--\r\n"));
    }
    s.into_bytes()
}

fn nested_rfc822(depth: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..depth {
        s.push_str(&format!(
            "From: r{i}@example.org\r\nSubject: level {i}\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"
        ));
    }
    s.push_str("From: inner@example.org\r\nSubject: innermost\r\n\r\nfifty messages down\r\n");
    s.into_bytes()
}

fn attachment_10mb() -> Vec<u8> {
    let mut s = String::from(
        "From: big@example.org\r\nSubject: a 10 MB attachment\r\nMessage-ID: <attachment-10mb@hostile.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"att\"\r\n\r\n--att\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nreport attached\r\n--att\r\nContent-Type: application/octet-stream; name=\"x.bin\"\r\nContent-Disposition: attachment; filename=\"x.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    let encoded = b64(&noise(7_500_000, 42));
    for line in encoded.as_bytes().chunks(76) {
        s.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        s.push_str("\r\n");
    }
    s.push_str("--att--\r\n");
    s.into_bytes()
}

// ------------------------------------------------------------------------------------ checks

#[test]
fn the_corpus_is_what_it_claims() {
    let c = corpus();
    let names: Vec<&str> = c.iter().map(|(n, _)| *n).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "corpus names are unique");
    for n in UNREADABLE.iter().chain(READABLE.iter().map(|(n, _)| n)) {
        assert!(names.contains(n), "{n} is in the corpus");
    }
    let size = |n: &str| c.iter().find(|(x, _)| *x == n).map_or(0, |(_, b)| b.len());
    assert!(size("attachment-10mb") >= 10_000_000);
    assert!(size("subject-1mb") >= 1 << 20);
    assert_eq!(b64(b"@everyone"), "QGV2ZXJ5b25l");
}

/// Every corpus mail read in-process, in full (the daemon reads only the first 64 KiB): the
/// reader never panics and never returns more than it promised.
#[test]
fn every_corpus_mail_is_summarised_without_a_panic() {
    let mut panicked = Vec::new();
    for (name, raw) in corpus() {
        match std::panic::catch_unwind(|| mailbeacon::mail::summarize(&raw)) {
            Ok(s) => assert!(
                s.snippet.chars().count() <= mailbeacon::mail::SNIPPET_CHARS,
                "{name}: snippet too long"
            ),
            Err(_) => panicked.push(name),
        }
    }
    assert!(
        panicked.is_empty(),
        "the mail reader panicked on {panicked:?}"
    );
}

/// `spool dump` promises RFC 3339 UTC times (DESIGN.md, "Times"); the `date` of an item is the
/// mail's Date header as [`summarize`](mailbeacon::mail::summarize) reads it.
#[test]
fn a_mails_date_is_spooled_as_rfc3339_utc_or_not_at_all() {
    let cases = [
        (
            "Tue, 01 Sep 2026 12:00:00 +0200",
            Some("2026-09-01T10:00:00Z"),
        ),
        ("31 Dec 2026 23:59:59 -1200", Some("2027-01-01T11:59:59Z")),
        ("Tue, 31 Feb 2026 25:61:61 +9999", None),
    ];
    let mut wrong = Vec::new();
    for (header, want) in cases {
        let got = mailbeacon::mail::summarize(&mail_dated("date", header)).date;
        let valid = got
            .as_deref()
            .is_none_or(|d| chrono::DateTime::parse_from_rfc3339(d).is_ok() && d.ends_with('Z'));
        if !valid || (want.is_some() && got.as_deref() != want) {
            wrong.push(format!("Date: {header} → {got:?} (want {want:?})"));
        }
    }
    assert!(
        wrong.is_empty(),
        "dates not in RFC 3339 UTC:\n{}",
        wrong.join("\n")
    );
}

/// A multipart without a boundary parameter is malformed, but its text is plainly there: it
/// must reach the snippet (or the mail must be flagged and its raw text kept).
#[test]
fn a_multipart_without_a_boundary_keeps_its_text() {
    let raw = corpus()
        .into_iter()
        .find(|(n, _)| *n == "multipart-no-boundary")
        .map(|(_, raw)| raw)
        .expect("in the corpus");
    let s = mailbeacon::mail::summarize(&raw);
    assert!(
        s.snippet.contains("no boundary at all"),
        "snippet {:?}, parse_error {:?}",
        s.snippet,
        s.parse_error
    );
}

/// The daemon reads at most the first 64 KiB of a mail, so a long header block ends in the
/// middle of a header; what was read of that header is still the best there is.
#[test]
fn a_header_cut_off_by_the_end_of_the_data_is_still_read() {
    let cut = b"From: c@example.org\r\nSubject: the last header, cut off".to_vec();
    let s = mailbeacon::mail::summarize(&cut);
    assert_eq!(s.subject, "the last header, cut off");
}

// ------------------------------------------------------------------------ the real daemon

fn config(dir: &Path, dovecot: &Dovecot, url: &str) -> Config {
    Config::new(dir, dovecot)
        .account("poll_interval = \"300ms\"")
        .sinks(&format!(
            "[[sink]]\nname = \"alerts\"\nkind = \"webhook\"\nurl = \"{url}\""
        ))
        .buckets(&format!(
            r#"
# Matches every mail it can read: only a mail that reads badly reaches the fallback.
[[bucket]]
name = "{EVERYTHING}"
sinks = ["alerts"]
rules = [{{ subject = '^' }}]

[[bucket]]
name = "{FALLBACK}"
sinks = ["alerts"]

[indicator]
spool_warn = 1000
spool_alarm = 2000
"#
        ))
}

/// Stores one raw mail in alice's INBOX with `doveadm save`; when Dovecot refuses the bytes,
/// writes the file into the maildir and lets Dovecot index it. Returns which path was taken.
fn store(dovecot: &Dovecot, name: &str, raw: &[u8]) -> &'static str {
    let mut child = Command::new("doveadm")
        .arg("-c")
        .arg(dovecot.conf_path())
        .args(["save", "-u", "alice", "-m", "INBOX"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn doveadm save");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("doveadm stdin");
        let _ = stdin.write_all(raw);
    }
    let out = child.wait_with_output().expect("doveadm save");
    if out.status.success() {
        return "doveadm save";
    }
    eprintln!(
        "hostile: doveadm save refused {name}: {}; writing the maildir file instead",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let file = dovecot
        .dir()
        .join("mail/alice/new")
        .join(format!("hostile-{name}.localhost"));
    std::fs::write(&file, raw).expect("write maildir file");
    let chown = Command::new("chown")
        .arg("dovecot:dovecot")
        .arg(&file)
        .status()
        .expect("chown");
    assert!(chown.success(), "chown {}", file.display());
    let out = dovecot.doveadm(&["force-resync", "-u", "alice", "INBOX"]);
    assert!(
        out.status.success(),
        "doveadm force-resync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    "maildir file"
}

/// The stored file (maildir `cur/` or `new/`) of the one mail containing `marker`.
fn stored_mail(dovecot: &Dovecot, marker: &[u8]) -> Vec<u8> {
    let maildir = dovecot.dir().join("mail/alice");
    let mut found = Vec::new();
    for sub in ["cur", "new"] {
        for entry in std::fs::read_dir(maildir.join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            if bytes.windows(marker.len()).any(|w| w == marker) {
                found.push(bytes);
            }
        }
    }
    assert_eq!(
        found.len(),
        1,
        "one stored mail contains {:?}",
        String::from_utf8_lossy(marker)
    );
    found.remove(0)
}

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

#[test]
fn hostile_mail_is_spooled_delivered_and_inert() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("900", "hostileTOKEN", Behaviour::Ok);
    let dir = temp_dir("hostile");
    let mut daemon = config(&dir, &dovecot, &url).start_watching();

    let corpus = corpus();
    let mut paths: HashMap<&str, &str> = HashMap::new();
    for (name, raw) in &corpus {
        paths.insert(name, store(&dovecot, name, raw));
    }
    // The hostile bytes reached the server as they are: the NULs too.
    let stored = stored_mail(&dovecot, b"<nul-bytes@hostile.example>");
    assert!(
        stored.contains(&0),
        "Dovecot kept the NUL bytes of mail nul-bytes"
    );
    let uids = dovecot.uids("alice", "INBOX");
    assert_eq!(
        uids.len(),
        corpus.len(),
        "Dovecot stored every corpus mail once (paths: {paths:?})"
    );
    // Stored one after the other, so UIDs ascend in corpus order.
    let by_uid: HashMap<u32, &str> = uids
        .iter()
        .copied()
        .zip(corpus.iter().map(|c| c.0))
        .collect();
    let uid_of: HashMap<&str, u32> = by_uid.iter().map(|(u, n)| (*n, *u)).collect();

    // Wait until every mail is spooled and settled (or 30 s passed: then report what is wrong).
    let mut problems = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let dump = daemon.dump();
        if dump.len() >= corpus.len() && dump.iter().all(|i| i["state"] != "pending") {
            break;
        }
        if std::time::Instant::now() > deadline || daemon.exited().is_some() {
            problems.push(format!(
                "after 30 s: {} of {} mails spooled, {} still pending",
                dump.len(),
                corpus.len(),
                dump.iter().filter(|i| i["state"] == "pending").count()
            ));
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // The daemon is still up and healthy, and never panicked.
    if daemon.exited().is_some() {
        problems.push(format!("the daemon exited: {:?}", daemon.exited()));
    }
    let log = daemon.log_text();
    if let Some(line) = log.lines().find(|l| l.contains("panicked")) {
        problems.push(format!("the daemon log shows a panic: {line}"));
    }
    let status = daemon.status();
    let account = &status["accounts"][0];
    if account["state"] != "idle" && account["state"] != "polling"
        || !account["last_error"].is_null()
    {
        problems.push(format!("account is not healthy: {account}"));
    }
    if status["sinks"][0]["state"] != "ok" || status["indicator"]["pattern"] != "ok" {
        problems.push(format!(
            "sink {} and LED pattern {} (want ok, ok)",
            status["sinks"][0], status["indicator"]["pattern"]
        ));
    }

    // Every mail spooled exactly once, delivered, in the right bucket, with what was readable.
    let dump = daemon.dump();
    let mut items: HashMap<&str, Vec<&Value>> = HashMap::new();
    for item in &dump {
        let uid = item["uid"].as_u64().unwrap_or(0) as u32;
        match by_uid.get(&uid) {
            Some(name) => items.entry(name).or_default().push(item),
            None => problems.push(format!("spooled item for no corpus mail: {item}")),
        }
    }
    for (name, _) in &corpus {
        let Some(found) = items.get(name) else {
            problems.push(format!("{name}: not in the spool"));
            continue;
        };
        if found.len() != 1 {
            problems.push(format!("{name}: spooled {} times", found.len()));
        }
        let item = found[0];
        if item["state"] != "delivered" {
            problems.push(format!(
                "{name}: state {} ({})",
                item["state"], item["last_error"]
            ));
        }
        let flagged = !item["parse_error"].is_null();
        let want = if flagged { FALLBACK } else { EVERYTHING };
        if item["bucket"] != want {
            problems.push(format!(
                "{name}: bucket {} with parse_error {}",
                item["bucket"], item["parse_error"]
            ));
        }
        if UNREADABLE.contains(name) && !flagged {
            problems.push(format!(
                "{name}: unreadable, yet not flagged (parse_error null)"
            ));
        }
        if let Some((_, text)) = READABLE.iter().find(|(n, _)| n == name) {
            let seen = ["from", "subject", "snippet"]
                .iter()
                .any(|k| item[k].as_str().is_some_and(|v| v.contains(text)));
            if !seen {
                problems.push(format!(
                    "{name}: {text:?} was readable but is not in from/subject/snippet ({:.200})",
                    item.to_string()
                ));
            }
        }
    }

    // What reached Discord: each mail in exactly one acknowledged message, nothing refused,
    // nothing that pings or formats.
    let posts = discord.posts_to("hostileTOKEN");
    let mut delivered: HashMap<u32, usize> = HashMap::new();
    for p in posts.iter().filter(|p| (200..300).contains(&p.status)) {
        for e in p.body["embeds"].as_array().into_iter().flatten() {
            if let Some(uid) = footer_uid(e) {
                *delivered.entry(uid).or_default() += 1;
            }
        }
    }
    for (name, uid) in &uid_of {
        let n = delivered.get(uid).copied().unwrap_or(0);
        if n != 1 {
            problems.push(format!("{name}: delivered {n} times (uid {uid})"));
        }
    }
    problems.extend(discord_problems(&posts, &by_uid));

    // And it still stops cleanly.
    daemon.signal(libc::SIGTERM);
    let code = daemon.wait_exit(Duration::from_secs(15));
    if code != Some(0) {
        problems.push(format!("SIGTERM: exit code {code:?}"));
    }

    eprintln!(
        "hostile: {} mails ({} via doveadm save), {} POSTs",
        corpus.len(),
        paths.values().filter(|p| **p == "doveadm save").count(),
        posts.len()
    );
    assert!(
        problems.is_empty(),
        "{} problem(s) with hostile mail:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
