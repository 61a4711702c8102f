//! Header fields at their extremes: dates, Message-IDs (10 KB, duplicated), 3,000 addresses,
//! a 3,000-character name, emoji and zalgo, a 60 KB word, whitespace everywhere.

use super::{mail, mail_dated};

pub(super) fn mails() -> Vec<(&'static str, Vec<u8>)> {
    vec![
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
    ]
}
