//! The channel limit Discord announces in no header (about 30 messages per 60 s per channel,
//! shared by every webhook posting into it): the fake Discord enforces it, scaled down to 30
//! per 1.5 s, on a channel with two webhooks, each owed every mail of a backlog. The daemon's
//! own delivery loops (one per sink, one shared guard) drain it in-process. What a user would
//! notice: every mail delivered through both, and the channel refuses messages only while the
//! limit is being learned — the first window — never once it is known, for either webhook.

use crate::common::dispatcher;
use crate::common::fake_discord::{Behaviour, FakeDiscord, Options};
use mailbeacon::discord::limits::Guard;
use mailbeacon::spool::Mail;
use mailbeacon::spool::{Cursor, NewItem, Spool, State};
use mailbeacon::stop::Stop;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAILS: u32 = 600;
/// The channel's hidden limit: Discord's 30 per 60 s, windows divided by 40.
const CHANNEL: (u32, Duration) = (30, Duration::from_millis(1500));

fn spool(dir: &std::path::Path) -> Spool {
    let spool = Spool::open(dir, 2 << 20).expect("open a spool");
    let items: Vec<NewItem> = (1..=MAILS)
        .map(|uid| NewItem {
            bucket: "alerts".into(),
            severity: mailbeacon::config::Severity::P2,
            uid,
            mail: Mail {
                from: "Monitor <monitor@example.org>".into(),
                subject: format!("Alert {uid:04}"),
                ..Mail::default()
            },
            sinks: vec!["a".into(), "b".into()],
        })
        .collect();
    let cursor = Cursor {
        uidvalidity: 1,
        last_uid: MAILS,
    };
    spool
        .ingest("home", "INBOX", cursor, &items, false)
        .expect("spool the backlog");
    spool
}

#[test]
fn one_shared_429_teaches_the_channel_limit_to_every_webhook_of_the_channel() {
    let discord = FakeDiscord::start_with(Options {
        rl_limit: 5,
        rl_window: Duration::from_millis(100),
        enforce: true,
        channel_limit: Some(CHANNEL),
    });
    let a = discord.webhook("901", "tokenA", Behaviour::Ok);
    let b = discord.webhook_beside("902", "tokenB", "tokenA", Behaviour::Ok);
    let channel = discord.webhook_channel("tokenA");
    assert_eq!(discord.webhook_channel("tokenB"), channel);
    let dir = std::env::temp_dir().join(format!("mb-shared-limit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let spool = spool(&dir);
    let guard = Arc::new(Guard::new(100));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let stop = Stop::new();
    let tasks = [("a", &a), ("b", &b)].map(|(name, url)| {
        runtime.spawn(dispatcher::webhook(name, url, &spool, &guard).run(stop.clone()))
    });
    let started = Instant::now();
    while spool.stats("alerts").map_or(true, |s| s.pending > 0) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no progress: {:?}",
            spool.stats("alerts")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.trigger();
    for task in tasks {
        let _ = runtime.block_on(task);
    }
    let delivered = spool
        .iter()
        .filter(|i| i.as_ref().is_ok_and(|i| i.state() == State::Delivered))
        .count();
    assert_eq!(
        delivered, MAILS as usize,
        "every mail delivered through both"
    );

    let posts: Vec<_> = discord
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    let accepted = posts.iter().filter(|r| r.status == 200).count();
    let refused: Vec<usize> = posts
        .iter()
        .enumerate()
        .filter(|(_, r)| r.status == 429)
        .map(|(i, _)| i)
        .collect();
    eprintln!(
        "shared limit: {} POSTs, {accepted} accepted, 429s at POSTs {refused:?}, {:.1} s",
        posts.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(accepted >= 2 * (MAILS as usize / 10), "{accepted} messages");
    // Learning: the one 429, and at most one more from the other webhook's request already on
    // its way when the first came back. Both in the first window, none after it.
    assert!(!refused.is_empty(), "the limit was never reached");
    assert!(refused.len() <= 2, "429s at POSTs {refused:?}");
    assert!(
        refused.iter().all(|&i| i <= CHANNEL.0 as usize + 2),
        "a 429 after the first window: at POSTs {refused:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
