//! Rules on named headers, end to end: mail delivered to a real Dovecot is sorted by the real
//! daemon on headers that are folded, RFC 2047-encoded or repeated, and the spool shows where
//! each mail went.

use crate::common::config::Config;
use crate::common::daemon::{mail, temp_dir, wait_until};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use std::collections::BTreeMap;
use std::time::Duration;

/// Three held buckets: `news` and `urgent` by named headers, `unknown` for the rest.
fn config(dir: &std::path::Path, dovecot: &Dovecot, url: &str) -> Config {
    Config::new(dir, dovecot)
        .sinks(&format!(
            "[[sink]]\nname = \"alerts\"\nkind = \"webhook\"\nurl = \"{url}\""
        ))
        .buckets(
            r#"
[[bucket]]
name = "news"
mode = "hold"
rules = [{ headers = { "List-Id" = '<news\.example\.com>' } }]
[[bucket]]
name = "urgent"
mode = "hold"
rules = [{ from = 'alerts@', headers = { x-priority = '^1' } }]
[[bucket]]
name = "unknown"
mode = "hold"
"#,
        )
}

/// `headers` (CRLF-terminated lines) put in front of an ordinary message.
fn with_headers(headers: &str, from: &str, subject: &str) -> Vec<u8> {
    let mut raw = headers.as_bytes().to_vec();
    raw.extend(mail(
        from,
        subject,
        "Hello",
        &format!("{subject}@example.org"),
    ));
    raw
}

#[test]
fn mail_is_sorted_on_named_headers() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "rulesTOKEN", Behaviour::Ok);
    let dir = temp_dir("rules");
    let daemon = config(&dir, &dovecot, &url).start_watching();
    let mails = [
        // Encoded and folded: matched on the decoded, unfolded text, in any case of the name.
        (
            "list",
            "LIST-ID: =?UTF-8?Q?Caf=C3=A9_news?=\r\n <news.example.com>\r\n",
            "News <news@example.com>",
        ),
        // The second occurrence matches.
        (
            "urgent",
            "X-Priority: 3\r\nX-Priority: 1 (Highest)\r\n",
            "Monitor <alerts@example.net>",
        ),
        // A header the mail lacks never matches.
        ("missing", "", "Monitor <alerts@example.net>"),
        // Every condition of a rule must hold.
        (
            "other-sender",
            "X-Priority: 1\r\n",
            "Someone <someone@example.net>",
        ),
    ];
    for (subject, headers, from) in mails {
        dovecot.deliver("alice", "INBOX", &with_headers(headers, from, subject));
    }
    wait_until(Duration::from_secs(30), "4 mails in the spool", || {
        daemon.dump().len() == 4
    });
    let buckets: BTreeMap<String, String> = daemon
        .dump()
        .iter()
        .map(|r| {
            (
                r["subject"].as_str().unwrap_or("").to_string(),
                r["bucket"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expected: BTreeMap<String, String> = [
        ("list", "news"),
        ("urgent", "urgent"),
        ("missing", "unknown"),
        ("other-sender", "unknown"),
    ]
    .into_iter()
    .map(|(s, b)| (s.to_string(), b.to_string()))
    .collect();
    assert_eq!(buckets, expected, "{}", daemon.log_text());
    assert!(
        discord.posts_to("rulesTOKEN").is_empty(),
        "hold buckets post nothing"
    );
}
