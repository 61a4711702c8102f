//! Any Discord answer (status, rate-limit headers, body) classifies to one outcome without a
//! panic, and never tells the dispatcher to wait longer than a day.
//!
//! Input layout: two bytes of status, then seven header values and the body, separated by
//! 0xFF (a header slot that is empty or not UTF-8 is absent).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailbeacon::discord::classify::{classify, Headers, Outcome};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = u16::from_be_bytes([data[0], data[1]]) % 1000;
    let mut parts = data[2..].splitn(8, |b| *b == 0xFF);
    let mut next = || {
        parts
            .next()
            .filter(|p| !p.is_empty())
            .and_then(|p| std::str::from_utf8(p).ok())
            .map(str::to_string)
    };
    let headers = Headers {
        retry_after: next(),
        remaining: next(),
        reset_after: next(),
        scope: next(),
        global: next(),
        limit: next(),
        bucket: next(),
    };
    let body = parts.next().unwrap_or_default();
    let day = Duration::from_secs(86_400);
    if let Outcome::RateLimited { retry_after, .. } = classify(status, &headers, body) {
        assert!(retry_after <= day);
    }
    if let Some(reset) = headers.pace().reset_after {
        assert!(reset <= day);
    }
});
