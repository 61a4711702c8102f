//! The hostile mail corpus: bad encodings, missing and 8-bit headers, NUL bytes, a 10 MB
//! attachment, 50 nested multiparts, a 4,000-character subject, a 1 MB header line, mention and
//! markdown injection, bidi overrides, zero-width characters, invalid UTF-8, … Generated here,
//! the same every run, for tests/hostile.rs (against Dovecot, with what each mail must become)
//! and tests/servers.rs (the same mail through Cyrus and Courier).

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

pub fn b64(data: &[u8]) -> String {
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
pub fn corpus() -> Vec<(&'static str, Vec<u8>)> {
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

pub fn mail_dated(name: &str, date: &str) -> Vec<u8> {
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
