use super::*;
use crate::health::Event;
use std::time::Duration;

fn snapshot_text() -> String {
    let mut h = Health::default();
    h.apply(
        Event::Sink {
            name: "noise".into(),
            state: SinkState::Dead,
            error: Some("HTTP 403".into()),
            delivered: false,
        },
        0,
    );
    h.apply(
        Event::Account {
            account: "home".into(),
            folder: "INBOX".into(),
            state: AccountState::Idle,
            error: None,
            cursor: None,
        },
        1_700_000_000,
    );
    let buckets = [BucketStats {
        name: "say \"hi\"".into(),
        pending: 3,
        delivered: 5,
        dead: 1,
        oldest_pending_at: Some(1_700_000_000 - 42),
    }];
    let mut counters = Counters::default();
    counters.answers.insert(("alerts".into(), "delivered"), 4);
    counters.answers.insert(("alerts".into(), "transient"), 2);
    counters
        .answers
        .insert(("alerts".into(), "rate_limited"), 1);
    counters.mails.insert("alerts".into(), 17);
    render(&Snapshot {
        health: &h,
        buckets: &buckets,
        counters: &counters,
        sinks: &["alerts".into(), "noise".into()],
        spool_bytes: 1234,
        spool_max_bytes: 1 << 30,
        now: 1_700_000_000,
    })
}

#[test]
fn the_file_says_what_an_operator_graphs() {
    let text = snapshot_text();
    for line in [
        r#"mailbeacon_deliveries_total{sink="alerts",outcome="delivered"} 4"#,
        r#"mailbeacon_deliveries_total{sink="noise",outcome="dead"} 0"#,
        r#"mailbeacon_delivered_mails_total{sink="alerts"} 17"#,
        r#"mailbeacon_retries_total{sink="alerts"} 3"#,
        r#"mailbeacon_sink_state{sink="noise",state="dead"} 1"#,
        r#"mailbeacon_sink_state{sink="noise",state="ok"} 0"#,
        r#"mailbeacon_sink_state{sink="alerts",state="ok"} 1"#,
        r#"mailbeacon_spool_items{bucket="say \"hi\"",state="pending"} 3"#,
        r#"mailbeacon_oldest_pending_age_seconds{bucket="say \"hi\""} 42"#,
        r#"mailbeacon_imap_state{account="home",folder="INBOX",state="idle"} 1"#,
        r#"mailbeacon_imap_last_success_timestamp_seconds{account="home",folder="INBOX"} 1700000000"#,
        "mailbeacon_spool_bytes 1234",
        r#"mailbeacon_indicator_pattern{pattern="dead"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
    }
}

#[test]
fn every_line_is_valid_exposition_format() {
    let text = snapshot_text();
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            assert!(typed.insert(name.to_string()), "{name} typed twice");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
        let name = series.split('{').next().unwrap();
        assert!(typed.contains(name), "{name} has no TYPE before it");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{name}"
        );
    }
}

#[test]
fn the_file_is_replaced_whole() {
    let dir = std::env::temp_dir().join(format!("mb-metrics-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mailbeacon.prom");
    write_atomic(&path, "a 1\n").unwrap();
    write_atomic(&path, "a 2\n").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 2\n");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["mailbeacon.prom"], "no temporary file left behind");
    assert!(write_atomic(&dir.join("missing/x.prom"), "a 1\n").is_err());
}

#[test]
fn answers_are_counted_by_outcome() {
    observe(
        "metrics-test-sink",
        &Outcome::Delivered {
            message_id: "1".into(),
        },
        3,
    );
    observe(
        "metrics-test-sink",
        &Outcome::RateLimited {
            retry_after: Duration::from_secs(1),
            scope: crate::discord::Scope::User,
        },
        3,
    );
    let c = counters();
    assert_eq!(c.answers[&("metrics-test-sink".into(), "delivered")], 1);
    assert_eq!(c.answers[&("metrics-test-sink".into(), "rate_limited")], 1);
    assert_eq!(c.mails["metrics-test-sink"], 3);
}
