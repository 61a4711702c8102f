//! What the health snapshot is judged to be, and the property that no notice pings anyone,
//! for any sequence of health events, unless `[notices] mention` is set — and then only that
//! one mention, on an alarm.

use super::ledger::{Ledger, Rules};
use super::render::render;
use super::*;
use crate::config::{Config, Mention};
use crate::health::{DiscordHealth, Event, Thresholds};
use crate::spool::BucketStats;
use proptest::prelude::*;
use serde_json::json;

const CONFIG: &str = r#"
state_dir = "/tmp/mb-notice-tests"
[[account]]
name = "home"
host = "imap.example.net"
username = "me"
password = "pw"
[[sink]]
name = "alerts"
kind = "webhook"
url = "https://discord.com/api/webhooks/1/tokA"
[[sink]]
name = "noise"
kind = "webhook"
url = "https://discord.com/api/webhooks/2/tokB"
[[bucket]]
name = "vip"
severity = "P1"
sinks = ["alerts"]
rules = [{ from = "boss" }]
[[bucket]]
name = "unknown"
sinks = ["noise"]
"#;

fn config() -> Config {
    Config::parse(std::path::Path::new("t.toml"), CONFIG, false).unwrap()
}

fn configured() -> Event {
    Event::Configured {
        mailboxes: vec![("home".into(), "INBOX".into())],
        sinks: vec!["alerts".into(), "noise".into()],
        thresholds: Thresholds {
            spool_warn: 5,
            spool_alarm: 10,
            pending_age_alarm_s: 3600,
        },
    }
}

fn stats(vip: u64, unknown: u64) -> Event {
    let b = |name: &str, pending| BucketStats {
        name: name.into(),
        pending,
        delivered: 0,
        dead: 0,
        oldest_pending_at: (pending > 0).then_some(0),
    };
    Event::Spool(vec![b("vip", vip), b("unknown", unknown)])
}

fn judged(h: &Health, key: &str) -> Judgement {
    observe(h, &config(), 10)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, j)| j)
        .unwrap()
}

#[test]
fn a_dead_sink_is_trouble_for_itself_only_and_holds_its_buckets_mail() {
    let mut h = Health::default();
    h.apply(configured(), 0);
    assert_eq!(
        judged(&h, "sink noise"),
        Judgement::Unknown,
        "nothing sent yet"
    );
    h.apply(
        Event::Sink {
            name: "noise".into(),
            state: SinkState::Dead,
            error: Some("HTTP 403 (code 50013)".into()),
            delivered: false,
        },
        0,
    );
    h.apply(stats(2, 7), 0);
    let Judgement::Trouble(t) = judged(&h, "sink noise") else {
        panic!("not trouble")
    };
    assert_eq!(t.sink.as_deref(), Some("noise"));
    assert!(
        t.detail.contains("50013") && t.remedy.contains("systemctl reload"),
        "{t:?}"
    );
    assert_eq!(
        pending(&h, &config(), &t.holds),
        Some(7),
        "only the unknown bucket's mail"
    );
    assert_eq!(
        judged(&h, "spool backlog"),
        Judgement::Trouble(match judged(&h, "spool backlog") {
            Judgement::Trouble(t) => t,
            _ => panic!("9 pending is past the warning level of 5"),
        })
    );
}

#[test]
fn a_refused_login_says_what_to_do_and_a_reconnect_is_not_yet_known() {
    let mut h = Health::default();
    h.apply(configured(), 0);
    let acct = |state| Event::Account {
        account: "home".into(),
        folder: "INBOX".into(),
        state,
        error: Some("NO [AUTHENTICATIONFAILED] Invalid credentials".into()),
        cursor: None,
    };
    h.apply(acct(AccountState::AuthFailed), 0);
    let Judgement::Trouble(t) = judged(&h, "imap home/INBOX") else {
        panic!("not trouble")
    };
    assert_eq!(t.what, "IMAP home/INBOX: login refused");
    assert!(t.remedy.contains("password"), "{}", t.remedy);
    assert_eq!(t.holds, Holds::Server);
    h.apply(acct(AccountState::Connecting), 0);
    assert_eq!(judged(&h, "imap home/INBOX"), Judgement::Unknown);
    h.apply(acct(AccountState::Idle), 0);
    assert_eq!(judged(&h, "imap home/INBOX"), Judgement::Clear);
}

fn trouble(h: &Health, key: &str) -> Trouble {
    match judged(h, key) {
        Judgement::Trouble(t) => t,
        other => panic!("{key}: {other:?}"),
    }
}

#[test]
fn every_trouble_state_is_told_with_its_level_and_a_remedy() {
    let acct = |state, error: &str| Event::Account {
        account: "home".into(),
        folder: "INBOX".into(),
        state,
        error: Some(error.into()),
        cursor: None,
    };
    for (state, what, remedy) in [
        (AccountState::TlsFailed, "TLS refused", "tls_fingerprint"),
        (AccountState::MailboxMissing, "folder missing", "`folders`"),
        (AccountState::Backoff, "unreachable", "retrying by itself"),
        (
            AccountState::Backoff,
            "throttled by the server",
            "waits as long as the server asks",
        ),
        (AccountState::Error, "server error", "retrying by itself"),
    ] {
        let mut h = Health::default();
        h.apply(configured(), 0);
        let words = if what.starts_with("throttled") {
            "NO Request is throttled. Suggested Backoff Time: 2000 milliseconds"
        } else {
            "the server's words"
        };
        h.apply(acct(state, words), 0);
        let t = trouble(&h, "imap home/INBOX");
        assert_eq!(t.what, format!("IMAP home/INBOX: {what}"));
        assert_eq!(t.detail, words);
        assert!(t.remedy.contains(remedy), "{state:?}: {}", t.remedy);
        assert_eq!((t.level, t.holds), (Pattern::Dead, Holds::Server));
    }

    // The spool: past its warning level, its alarm level, and its oldest mail too old.
    let mut h = Health::default();
    h.apply(configured(), 0);
    h.apply(stats(6, 5), 0);
    let t = trouble(&h, "spool alarm");
    assert_eq!(t.what, "Spool past its alarm level (10 mails)");
    assert_eq!(
        (t.level, t.detail.as_str()),
        (Pattern::Alarm, "11 mails pending")
    );
    assert_eq!(trouble(&h, "spool backlog").level, Pattern::Backlog);
    let old = observe(&h, &config(), 3601 + 10);
    assert!(
        old.iter().any(|(k, j)| k == "spool age"
            && matches!(j, Judgement::Trouble(t) if t.level == Pattern::Alarm && t.detail.contains("1h"))),
        "{old:?}"
    );
    assert_eq!(
        judged(&h, "spool age"),
        Judgement::Clear,
        "10 s is not too old"
    );

    // The disk full or read-only, by any writer: mail waits on the server.
    for event in [
        Event::Disk {
            writer: "imap home/INBOX".into(),
            full: Some("No space left on device".into()),
        },
        Event::SpoolFull {
            writer: "imap home/INBOX".into(),
            full: Some("spool_max_mb reached".into()),
        },
        Event::Disk {
            writer: "sink noise".into(),
            full: Some("Read-only file system".into()),
        },
    ] {
        let mut h = Health::default();
        h.apply(configured(), 0);
        h.apply(event, 0);
        let t = trouble(&h, "disk");
        assert_eq!((t.level, t.holds.clone()), (Pattern::Alarm, Holds::Server));
        assert!(t.remedy.contains("resumes by itself"), "{}", t.remedy);
    }

    // A Cloudflare ban and the invalid-request pause: every sink waits.
    for (state, why) in [
        (DiscordState::Banned, "1015"),
        (DiscordState::Paused, "invalid requests"),
    ] {
        let mut h = Health::default();
        h.apply(configured(), 0);
        h.apply(
            Event::Discord(DiscordHealth {
                state,
                ..Default::default()
            }),
            0,
        );
        let t = trouble(&h, "discord");
        assert_eq!(t.what, "Every sink is paused");
        assert!(t.detail.contains(why), "{}", t.detail);
        assert_eq!(t.sink, None, "told in every working channel");
    }
}

#[test]
fn a_refused_oauth_login_says_to_sign_in_again_not_to_check_a_password() {
    let Judgement::Trouble(t) = mailbox(
        "imap work/INBOX",
        "work",
        true,
        AccountState::AuthFailed,
        Some("login.example refused the stored OAuth grant of account work (invalid_grant)"),
    ) else {
        panic!("not trouble")
    };
    assert_eq!(t.what, "IMAP work/INBOX: login refused");
    assert!(
        t.remedy.contains("run `mailbeacon login work`") && !t.remedy.contains("password"),
        "{}",
        t.remedy
    );
}

/// Any health event, with hostile text wherever a component's words can appear.
fn event() -> impl Strategy<Value = Event> {
    let words = prop_oneof![
        Just("@everyone".to_string()),
        Just("<@&987> @here".to_string()),
        Just("<@123> **x**".to_string()),
        ".{0,40}",
    ];
    let sink_state = prop_oneof![
        Just(SinkState::Ok),
        Just(SinkState::Retrying),
        Just(SinkState::RateLimited),
        Just(SinkState::Dead)
    ];
    let account_state = prop_oneof![
        Just(AccountState::Connecting),
        Just(AccountState::Idle),
        Just(AccountState::Backoff),
        Just(AccountState::AuthFailed),
        Just(AccountState::TlsFailed),
        Just(AccountState::MailboxMissing),
        Just(AccountState::Error)
    ];
    let discord = prop_oneof![
        Just(DiscordState::Ok),
        Just(DiscordState::Banned),
        Just(DiscordState::Paused)
    ];
    prop_oneof![
        (
            prop_oneof![Just("alerts"), Just("noise")],
            sink_state,
            words.clone()
        )
            .prop_map(|(n, state, e)| Event::Sink {
                name: n.into(),
                state,
                error: Some(e),
                delivered: false
            }),
        (account_state, words.clone()).prop_map(|(state, e)| Event::Account {
            account: "home".into(),
            folder: "INBOX".into(),
            state,
            error: Some(e),
            cursor: None
        }),
        (0u64..30, 0u64..30).prop_map(|(a, b)| stats(a, b)),
        (any::<bool>(), words.clone()).prop_map(|(full, e)| Event::Disk {
            writer: "imap home/INBOX".into(),
            full: full.then_some(e)
        }),
        (any::<bool>(), words).prop_map(|(full, e)| Event::SpoolFull {
            writer: "imap home/INBOX".into(),
            full: full.then_some(e)
        }),
        discord.prop_map(|state| Event::Discord(DiscordHealth {
            state,
            ..Default::default()
        })),
    ]
}

fn pings(s: &str) -> bool {
    let mention = regex::Regex::new(r"<@[!&]?[0-9]|<#[0-9]").unwrap();
    s.contains("@everyone") || s.contains("@here") || mention.is_match(s)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_notice_pings_anyone_unless_configured(
        events in proptest::collection::vec((event(), 0i64..200), 1..40),
        mention in prop_oneof![Just(None), Just(Some(Mention::Role("42".into()))), Just(Some(Mention::Everyone))],
    ) {
        let config = config();
        let rules = Rules { notify_after: 120, remind_every: 3600 };
        let mut h = Health::default();
        h.apply(configured(), 0);
        let mut ledger = Ledger::default();
        let mut now = 0;
        for (e, dt) in events {
            now += dt;
            h.apply(e, now);
            let observed = observe(&h, &config, now);
            for n in ledger.step(&observed, &|holds| pending(&h, &config, holds), now, rules) {
                let body = render(&n, mention.as_ref());
                let content = body["content"].as_str().unwrap_or("");
                let allowed = &body["allowed_mentions"];
                match (&mention, n.trouble.level, &n.kind) {
                    (Some(m), Pattern::Alarm, super::ledger::Kind::Trouble | super::ledger::Kind::Reminder) => {
                        let expected = match m {
                            Mention::Role(id) => json!({ "parse": [], "roles": [id] }),
                            Mention::Everyone => json!({ "parse": ["everyone"] }),
                        };
                        prop_assert_eq!(allowed, &expected);
                    }
                    _ => {
                        prop_assert_eq!(allowed, &json!({ "parse": [] }));
                        prop_assert!(!pings(content), "{}", content);
                    }
                }
                // Whatever a component said stays inert: only the agent's own content may ping.
                let embed = body["embeds"].to_string();
                prop_assert!(!pings(&embed), "{}", embed);
            }
        }
    }
}

#[test]
fn the_daily_summary_counts_each_bucket_and_shows_each_sink_and_pings_nobody() {
    let mut h = Health::default();
    h.apply(configured(), 0);
    h.apply(stats(2, 0), 0);
    h.apply(
        Event::Sink {
            name: "noise".into(),
            state: SinkState::Dead,
            error: Some("HTTP 403".into()),
            delivered: false,
        },
        0,
    );
    let received = [("vip".to_string(), 3), ("unknown".to_string(), 10)].into();
    let body = super::daily::render(&config(), &h, &received);
    let e = &body["embeds"][0];
    let lines = e["description"].as_str().unwrap();
    assert!(
        lines.contains("**vip**: 3 mails in 24 h · 2 pending · 0 dead")
            && lines.contains("**unknown**: 10 mails in 24 h · 0 pending · 0 dead"),
        "{lines}"
    );
    assert_eq!(e["fields"][0]["value"], "alerts ok · noise dead");
    assert_eq!(body["allowed_mentions"], json!({ "parse": [] }));
}

#[test]
fn notices_go_to_every_working_channel_once_and_never_to_the_dead_sink() {
    let twin = CONFIG.replace(
        "[[bucket]]\nname = \"vip\"",
        "[[sink]]\nname = \"alerts-again\"\nkind = \"webhook\"\nurl = \"https://discord.com/api/webhooks/1/tokA\"\n[[bucket]]\nname = \"vip\"",
    );
    let config = Config::parse(std::path::Path::new("t.toml"), &twin, false).unwrap();
    let names = |v: Vec<crate::config::SinkConfig>| -> Vec<String> {
        v.into_iter().map(|s| s.name).collect()
    };
    let mut h = Health::default();
    h.apply(configured(), 0);
    let to = super::run::targets(&config, &h, None, &[]);
    assert_eq!(
        names(to),
        ["alerts", "noise"],
        "the same webhook twice is one channel"
    );
    let to = super::run::targets(&config, &h, Some("noise"), &[]);
    assert_eq!(names(to), ["alerts"], "never the sink in trouble");
    h.apply(
        Event::Sink {
            name: "alerts".into(),
            state: SinkState::Dead,
            error: None,
            delivered: false,
        },
        0,
    );
    let to = super::run::targets(&config, &h, None, &[]);
    assert_eq!(
        names(to),
        ["noise"],
        "never a dead sink, nor another sink on its webhook"
    );
    h.apply(
        Event::Sink {
            name: "alerts".into(),
            state: SinkState::Ok,
            error: None,
            delivered: true,
        },
        0,
    );
    let to = super::run::targets(&config, &h, Some("alerts-again"), &[]);
    assert_eq!(
        names(to),
        ["noise"],
        "the sink in trouble's webhook under another name"
    );
    let to = super::run::targets(&config, &h, None, &["noise".to_string()]);
    assert_eq!(
        names(to),
        ["noise"],
        "an end goes where its announcement went"
    );
}
