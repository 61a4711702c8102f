use super::*;
use crate::config::{Mode, Severity};
use regex::Regex;

fn re(s: &str) -> Option<Regex> {
    Some(Regex::new(s).unwrap())
}

fn bucket(name: &str, rules: Vec<Rule>) -> Bucket {
    Bucket {
        name: name.into(),
        severity: Severity::P3,
        mode: Mode::Push,
        sinks: vec!["alerts".into()],
        rules,
        mention: None,
        digest_every: None,
        fallback: None,
        escalate_after: None,
        audit: None,
        applied_tags: Vec::new(),
        thread_id: None,
        upload_max: None,
    }
}

fn from(p: &str) -> Rule {
    Rule {
        from: re(p),
        ..Rule::default()
    }
}

fn subject(p: &str) -> Rule {
    Rule {
        subject: re(p),
        ..Rule::default()
    }
}

fn header(name: &str, p: &str) -> Rule {
    Rule {
        headers: vec![(name.into(), Regex::new(p).unwrap())],
        ..Rule::default()
    }
}

fn lines(buckets: &[Bucket]) -> Vec<String> {
    warnings(buckets).iter().map(Warning::to_string).collect()
}

#[test]
fn a_sound_table_has_nothing_to_say() {
    let buckets = [
        bucket(
            "stripe",
            vec![from(r"@stripe\.com>?$"), subject("(?i)payment")],
        ),
        bucket("news", vec![header("List-Id", r"<news\.example\.com>")]),
        bucket(
            "billing",
            vec![Rule {
                subject: re("(?i)invoice"),
                to: re("billing@"),
                ..Rule::default()
            }],
        ),
        bucket("unknown", vec![]),
    ];
    assert_eq!(lines(&buckets), Vec::<String>::new());
}

#[test]
fn a_pattern_that_matches_nothing_is_named_with_its_field() {
    let buckets = [
        bucket("never", vec![subject(r"[a&&b]"), from("boss@")]),
        bucket("unknown", vec![]),
    ];
    assert_eq!(
        lines(&buckets),
        ["bucket[0] (never).rules[0].subject: can never match: the pattern matches no text at all"]
    );
    let buckets = [bucket("h", vec![header("X-Priority", r"\P{any}")])];
    assert_eq!(
        lines(&buckets),
        [
            "bucket[0] (h).rules[0].headers.X-Priority: can never match: the pattern matches no text at all",
            "bucket[0] (h): no mail can reach this bucket: none of its rules can ever match",
        ]
    );
}

#[test]
fn a_pattern_longer_than_its_field_can_hold() {
    let snippet = |p: &str| Rule {
        snippet: re(p),
        ..Rule::default()
    };
    let buckets = [bucket(
        "long",
        vec![
            snippet(&format!("x{{{SNIPPET_CHARS}}}")),
            snippet(&format!("(?:ab|c){{{}}}y", SNIPPET_CHARS)),
            subject(&format!("^.{{{}}}", FIELD_CHARS + 1)),
            // Characters, not bytes: 400 two-byte letters fit in a 500-character snippet.
            snippet("é{400}"),
            // Headers are not cut, so no length is too long for them.
            header("References", "x{5000}"),
        ],
    )];
    assert_eq!(
        lines(&buckets),
        [
            "bucket[0] (long).rules[1].snippet: can never match: the pattern needs at least 501 characters and snippet holds at most 500",
            "bucket[0] (long).rules[2].subject: can never match: the pattern needs at least 999 characters and subject holds at most 998",
        ]
    );
}

#[test]
fn a_rule_shadowed_by_an_earlier_bucket_is_named_with_the_rule_that_wins() {
    let buckets = [
        bucket(
            "stripe",
            vec![from(r"@stripe\.com>?$"), subject("(?i)payment")],
        ),
        bucket(
            "billing",
            vec![
                // Every condition of stripe's rules[1], and one more: stripe takes these mails.
                Rule {
                    subject: re("(?i)payment"),
                    to: re("billing@"),
                    ..Rule::default()
                },
                // A different pattern on the same field is not judged: it may match elsewhere.
                subject("(?i)payments?"),
            ],
        ),
        // The same pattern on another field, or another header, is no shadow either.
        bucket(
            "other",
            vec![Rule {
                to: re(r"@stripe\.com>?$"),
                ..Rule::default()
            }],
        ),
        bucket("unknown", vec![]),
    ];
    assert_eq!(
        lines(&buckets),
        ["bucket[1] (billing).rules[0]: can never match: bucket[0] (stripe).rules[1] matches every mail this rule matches, and buckets are tried in file order"]
    );
}

#[test]
fn a_bucket_whose_every_rule_is_shadowed_gets_no_mail() {
    let buckets = [
        bucket("news", vec![header("List-Id", "news"), subject("digest")]),
        bucket(
            "later",
            vec![
                // Header names compare in any case, as mail does.
                header("LIST-ID", "news"),
                Rule {
                    subject: re("digest"),
                    headers: vec![("X-Priority".into(), Regex::new("^1").unwrap())],
                    ..Rule::default()
                },
            ],
        ),
        bucket("unknown", vec![]),
    ];
    let got = lines(&buckets);
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(got[0]
        .starts_with("bucket[1] (later).rules[0]: can never match: bucket[0] (news).rules[0] "));
    assert!(got[1]
        .starts_with("bucket[1] (later).rules[1]: can never match: bucket[0] (news).rules[1] "));
    assert_eq!(
        got[2],
        "bucket[1] (later): no mail can reach this bucket: none of its rules can ever match"
    );
}

#[test]
fn identical_means_the_same_parse_not_the_same_spelling() {
    let buckets = [
        bucket("a", vec![from("a|b")]),
        bucket("b", vec![from("[ab]")]),
        bucket("unknown", vec![]),
    ];
    assert_eq!(warnings(&buckets).len(), 2, "{:#?}", lines(&buckets));
    // Only rules that can match shadow: a dead rule is reported once, where it is.
    let buckets = [
        bucket("dead", vec![subject("[a&&b]")]),
        bucket("b", vec![subject("[a&&b]"), from("x")]),
    ];
    let got = lines(&buckets);
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(
        got[2].starts_with("bucket[1] (b).rules[0].subject: can never match: the pattern"),
        "{got:#?}"
    );
}

#[test]
fn minimum_characters_of_a_pattern() {
    let min = |p: &str| min_chars(&regex_syntax::Parser::new().parse(p).unwrap());
    assert_eq!(min(""), Some(0));
    assert_eq!(min(r"^\b$"), Some(0));
    assert_eq!(min("héllo"), Some(5));
    assert_eq!(min("(?i)k"), Some(1));
    assert_eq!(min(r"\p{Cyrillic}{3}"), Some(3));
    assert_eq!(min("(ab|c)+d?"), Some(1));
    assert_eq!(min("x{3,}(?:yz){0}"), Some(3));
    assert_eq!(min("a[a&&b]"), None);
    assert_eq!(min("a|[a&&b]"), Some(1));
    assert_eq!(min("(?:[a&&b])*x"), Some(1));
}
