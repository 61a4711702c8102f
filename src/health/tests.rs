use super::*;

const T: Thresholds = Thresholds {
    spool_warn: 5,
    spool_alarm: 10,
    pending_age_alarm_s: 3600,
};

fn health() -> Health {
    let mut h = Health::default();
    h.apply(
        Event::Configured {
            mailboxes: vec![("a".into(), "INBOX".into())],
            sinks: vec!["s".into()],
            thresholds: T,
        },
        0,
    );
    h
}

fn sink(state: SinkState) -> Event {
    Event::Sink {
        name: "s".into(),
        state,
        error: Some("HTTP 403".into()),
        delivered: false,
    }
}

fn pending(n: u64, oldest: i64) -> Event {
    Event::Spool(vec![BucketStats {
        name: "b".into(),
        pending: n,
        delivered: 0,
        dead: 0,
        oldest_pending_at: Some(oldest),
    }])
}

#[test]
fn nothing_wrong_is_ok() {
    assert_eq!(health().pattern(0), Pattern::Ok);
}

#[test]
fn worst_wins() {
    let mut h = health();
    h.apply(sink(SinkState::Retrying), 0);
    assert_eq!(h.pattern(0), Pattern::Backlog);
    h.apply(sink(SinkState::Dead), 0);
    assert_eq!(h.pattern(0), Pattern::Dead);
    assert!(
        h.summary(0).contains("sink s dead: HTTP 403"),
        "{}",
        h.summary(0)
    );
    h.apply(pending(11, 0), 0);
    assert_eq!(h.pattern(0), Pattern::Alarm);
    h.apply(pending(1, 0), 0);
    assert_eq!(h.pattern(0), Pattern::Dead);
    assert_eq!(h.pattern(3601), Pattern::Alarm, "too old");
    h.apply(Event::Stopping, 0);
    assert_eq!(h.pattern(0), Pattern::Off);
}

#[test]
fn imap_trouble_and_full_disks_show() {
    let mut h = health();
    let acct = |state| Event::Account {
        account: "a".into(),
        folder: "INBOX".into(),
        state,
        error: Some("bad password".into()),
        cursor: None,
    };
    h.apply(acct(AccountState::AuthFailed), 0);
    assert_eq!(h.pattern(0), Pattern::Dead);
    let row = |h: &Health| h.accounts[&("a".into(), "INBOX".into())].clone();
    assert_eq!(
        (row(&h).last_error_at, row(&h).recovered_at),
        (Some(0), None)
    );
    let recovered = Event::Account {
        account: "a".into(),
        folder: "INBOX".into(),
        state: AccountState::Idle,
        error: None,
        cursor: None,
    };
    h.apply(recovered, 7);
    assert_eq!(h.pattern(0), Pattern::Ok);
    assert_eq!(row(&h).last_ok, Some(7));
    assert_eq!(row(&h).recovered_at, Some(7), "the old error is past");
    let disk = |writer: &str, full: Option<&str>| Event::Disk {
        writer: writer.into(),
        full: full.map(str::to_string),
    };
    h.apply(disk("imap a/INBOX", Some("No space left on device")), 0);
    h.apply(disk("sink s", Some("No space left on device")), 0);
    assert_eq!(h.pattern(0), Pattern::Alarm);
    h.apply(disk("imap a/INBOX", None), 0);
    assert_eq!(h.pattern(0), Pattern::Alarm, "the sink has not written yet");
    h.apply(disk("sink s", None), 0);
    assert_eq!(h.pattern(0), Pattern::Ok);
    let full = |full: Option<&str>| Event::SpoolFull {
        writer: "imap a/INBOX".into(),
        full: full.map(str::to_string),
    };
    h.apply(full(Some("spool full")), 0);
    assert_eq!(h.pattern(0), Pattern::Alarm);
    assert!(
        h.summary(0).contains("spool full (imap a/INBOX)"),
        "{}",
        h.summary(0)
    );
    h.apply(full(None), 0);
    assert_eq!(h.pattern(0), Pattern::Ok);
}

#[test]
fn backlog_is_above_the_warn_threshold() {
    let mut h = health();
    h.apply(pending(5, 0), 0);
    assert_eq!(h.pattern(0), Pattern::Ok);
    h.apply(pending(6, 0), 0);
    assert_eq!(h.pattern(0), Pattern::Backlog);
}

#[test]
fn a_ban_or_the_invalid_request_limit_shows_dead_a_global_limit_backlog() {
    let mut h = health();
    let discord = |state| {
        Event::Discord(DiscordHealth {
            state,
            invalid_requests: 4,
            limit: 100,
            paused_until: Some(0),
        })
    };
    h.apply(discord(DiscordState::Banned), 0);
    assert_eq!(h.pattern(0), Pattern::Dead);
    assert!(h.summary(0).contains("banned"), "{}", h.summary(0));
    h.apply(discord(DiscordState::Paused), 0);
    assert_eq!(h.pattern(0), Pattern::Dead);
    h.apply(discord(DiscordState::RateLimited), 0);
    assert_eq!(h.pattern(0), Pattern::Backlog);
    h.apply(discord(DiscordState::Ok), 0);
    assert_eq!(h.pattern(0), Pattern::Ok);
}

#[test]
fn a_reload_forgets_removed_parts() {
    let mut h = health();
    h.apply(sink(SinkState::Dead), 0);
    h.apply(
        Event::Configured {
            mailboxes: vec![],
            sinks: vec![],
            thresholds: T,
        },
        0,
    );
    assert_eq!(h.pattern(0), Pattern::Ok);
}
