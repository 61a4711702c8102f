//! Mail broken in its structure: nothing, garbage, no header block, NUL bytes, malformed
//! header lines.

use super::{cat, mail, noise};

pub(super) fn mails() -> Vec<(&'static str, Vec<u8>)> {
    vec![
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
    ]
}
