//! Multiparts and sizes: no boundary, never closed, 50 deep, a 10 MB attachment, subjects at
//! and far past Discord's title limit, a 1 MB header line, 20,000 headers.

use super::{attachment_10mb, cat, mail, nested_multipart, nested_rfc822};

pub(super) fn mails() -> Vec<(&'static str, Vec<u8>)> {
    vec![
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
    ]
}
