//! The hostile mail corpus: bad encodings, missing and 8-bit headers, NUL bytes, a 10 MB
//! attachment, 50 nested multiparts, a 4,000-character subject, a 1 MB header line, mention and
//! markdown injection, bidi overrides, zero-width characters, invalid UTF-8, … Generated here,
//! the same every run, for tests/hostile.rs (against Dovecot, with what each mail must become)
//! and tests/servers.rs (the same mail through Cyrus and Courier).

mod broken;
mod encodings;
mod fields;
mod injection;
mod sizes;

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
    let mut c: Vec<(&'static str, Vec<u8>)> = [
        broken::mails(),
        encodings::mails(),
        sizes::mails(),
        injection::mails(),
        fields::mails(),
    ]
    .concat();
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
