//! The corpus, and what the library reads of it without a daemon: summaries without a
//! panic, dates, a multipart without a boundary, a header cut off by the end of the data.

use super::{READABLE, UNREADABLE};
use crate::common::corpus::{b64, corpus, mail_dated};

#[test]
fn the_corpus_is_what_it_claims() {
    let c = corpus();
    let names: Vec<&str> = c.iter().map(|(n, _)| *n).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "corpus names are unique");
    for n in UNREADABLE.iter().chain(READABLE.iter().map(|(n, _)| n)) {
        assert!(names.contains(n), "{n} is in the corpus");
    }
    let size = |n: &str| c.iter().find(|(x, _)| *x == n).map_or(0, |(_, b)| b.len());
    assert!(size("attachment-10mb") >= 10_000_000);
    assert!(size("subject-1mb") >= 1 << 20);
    assert_eq!(b64(b"@everyone"), "QGV2ZXJ5b25l");
}

/// Every corpus mail read in-process, in full (the daemon reads only the first 64 KiB): the
/// reader never panics and never returns more than it promised.
#[test]
fn every_corpus_mail_is_summarised_without_a_panic() {
    let mut panicked = Vec::new();
    for (name, raw) in corpus() {
        match std::panic::catch_unwind(|| mailbeacon::mail::summarize(&raw)) {
            Ok(s) => assert!(
                s.snippet.chars().count() <= mailbeacon::mail::SNIPPET_CHARS,
                "{name}: snippet too long"
            ),
            Err(_) => panicked.push(name),
        }
    }
    assert!(
        panicked.is_empty(),
        "the mail reader panicked on {panicked:?}"
    );
}

/// `spool dump` promises RFC 3339 UTC times (docs/design.md, "Times"); the `date` of an item is the
/// mail's Date header as [`summarize`](mailbeacon::mail::summarize) reads it.
#[test]
fn a_mails_date_is_spooled_as_rfc3339_utc_or_not_at_all() {
    let cases = [
        (
            "Tue, 01 Sep 2026 12:00:00 +0200",
            Some("2026-09-01T10:00:00Z"),
        ),
        ("31 Dec 2026 23:59:59 -1200", Some("2027-01-01T11:59:59Z")),
        ("Tue, 31 Feb 2026 25:61:61 +9999", None),
    ];
    let mut wrong = Vec::new();
    for (header, want) in cases {
        let got = mailbeacon::mail::summarize(&mail_dated("date", header)).date;
        let valid = got
            .as_deref()
            .is_none_or(|d| chrono::DateTime::parse_from_rfc3339(d).is_ok() && d.ends_with('Z'));
        if !valid || (want.is_some() && got.as_deref() != want) {
            wrong.push(format!("Date: {header} → {got:?} (want {want:?})"));
        }
    }
    assert!(
        wrong.is_empty(),
        "dates not in RFC 3339 UTC:\n{}",
        wrong.join("\n")
    );
}

/// A multipart without a boundary parameter is malformed, but its text is plainly there: it
/// must reach the snippet (or the mail must be flagged and its raw text kept).
#[test]
fn a_multipart_without_a_boundary_keeps_its_text() {
    let raw = corpus()
        .into_iter()
        .find(|(n, _)| *n == "multipart-no-boundary")
        .map(|(_, raw)| raw)
        .expect("in the corpus");
    let s = mailbeacon::mail::summarize(&raw);
    assert!(
        s.snippet.contains("no boundary at all"),
        "snippet {:?}, parse_error {:?}",
        s.snippet,
        s.parse_error
    );
}

/// The daemon reads at most the first 64 KiB of a mail, so a long header block ends in the
/// middle of a header; what was read of that header is still the best there is.
#[test]
fn a_header_cut_off_by_the_end_of_the_data_is_still_read() {
    let cut = b"From: c@example.org\r\nSubject: the last header, cut off".to_vec();
    let s = mailbeacon::mail::summarize(&cut);
    assert_eq!(s.subject, "the last header, cut off");
}
