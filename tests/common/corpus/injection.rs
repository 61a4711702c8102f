//! Line endings, and text that could ping or format: bare LF and CR, mentions, markdown,
//! bidi overrides and zero-width characters, backslashes.

use super::{mail, INJECTION};

pub(super) fn mails() -> Vec<(&'static str, Vec<u8>)> {
    vec![
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
    ]
}
