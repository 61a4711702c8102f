//! Charsets and encodings: 8-bit and invalid UTF-8 headers, unknown charsets, broken and
//! hostile encoded words, transfer encodings that lie, UTF-7 and UTF-16, HTML entities.

use super::{b64, cat, mail, INJECTION};

pub(super) fn mails() -> Vec<(&'static str, Vec<u8>)> {
    vec![
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
    ]
}
