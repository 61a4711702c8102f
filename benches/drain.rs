//! `drain`: 1,000 pending mails through the fake Discord (tests/common/fake_discord.rs), which
//! enforces a webhook bucket of 5 requests per 2 s and a channel limit of 30 messages per 60 s
//! shared by every webhook and announced by no header (a `shared` 429, like Discord). Both
//! windows are scaled down by the same factor ([`SCALE`] = 20: 5 per 100 ms and 30 per 3 s) so a
//! round takes seconds; the limits keep their ratio, so the figures hold for the real windows
//! scaled up by 20.
//!
//! The delivery loop runs in-process (the daemon's own `Dispatcher`, `HttpSink` and `Guard`)
//! over a fresh spool whose 1,000 mails are already pending, timed from its start until the
//! spool holds every mail as delivered. Reported against the most the two limits allow: 10
//! mails a message, at most min(5 / 2 s, 30 / 60 s) messages per second — the channel's, so
//! 5 mails/s, 100 mails/s scaled — and against the least time they allow for the whole
//! backlog (a fresh channel takes a full window at once). Goal: ≥ 90 % of the allowed rate and
//! ≤ 1 429 per 100 requests.

use super::Row;
use crate::fake_discord::{Behaviour, FakeDiscord, Options};
use mailbeacon::discord::limits::Guard;
use mailbeacon::spool::Mail;
use mailbeacon::spool::{Cursor, NewItem, Spool, State};
use mailbeacon::stop::Stop;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAILS: u32 = 1000;
/// Real windows divided by this.
const SCALE: u32 = 20;
const WEBHOOK: (u32, Duration) = (5, Duration::from_secs(2));
const CHANNEL: (u32, Duration) = (30, Duration::from_secs(60));
const PER_MESSAGE: f64 = 10.0;

struct Round {
    elapsed: Duration,
    requests: usize,
    limited: usize,
}

/// The most mails per second the limits allow, sustained, at the scaled windows.
fn allowed_rate() -> f64 {
    let per_s = |(n, w): (u32, Duration)| f64::from(n) / (w / SCALE).as_secs_f64();
    per_s(WEBHOOK).min(per_s(CHANNEL)) * PER_MESSAGE
}

/// The least time the limits allow for the whole backlog at the scaled windows: the last
/// message cannot go before the windows it needs have passed (a fresh start gets a full window
/// at once, so this beats the sustained rate).
fn least_time() -> Duration {
    let messages = (f64::from(MAILS) / PER_MESSAGE).ceil() as u32;
    let forced = |(n, w): (u32, Duration)| (w / SCALE) * ((messages - 1) / n);
    forced(WEBHOOK).max(forced(CHANNEL))
}

fn spool(dir: &std::path::Path) -> Spool {
    let spool = Spool::open(dir, 16 << 20).expect("open a spool");
    let items: Vec<NewItem> = (1..=MAILS)
        .map(|uid| NewItem {
            bucket: "bench".into(),
            severity: mailbeacon::config::Severity::P2,
            uid,
            mail: Mail {
                from: "Monitor <monitor@example.org>".into(),
                subject: format!("Alert {uid:04}: disk usage above threshold"),
                snippet: "The volume /srv is 91% full. ".repeat(4),
                ..Mail::default()
            },
            sinks: vec!["alerts".into()],
        })
        .collect();
    let cursor = Cursor {
        uidvalidity: 1,
        last_uid: MAILS,
    };
    spool
        .ingest("bench", "INBOX", cursor, &items, false)
        .expect("spool the backlog");
    spool
}

fn round(n: usize) -> Round {
    let discord = FakeDiscord::start_with(Options {
        rl_limit: WEBHOOK.0,
        rl_window: WEBHOOK.1 / SCALE,
        enforce: true,
        channel_limit: Some((CHANNEL.0, CHANNEL.1 / SCALE)),
    });
    let url = discord.webhook("900", "drainTOKEN", Behaviour::Ok);
    let dir = std::env::temp_dir().join(format!("mb-bench-drain-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let spool = spool(&dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dispatcher = crate::dispatcher::webhook("alerts", &url, &spool, &Arc::new(Guard::new(100)));
    let stop = Stop::new();
    let started = Instant::now();
    let task = runtime.spawn(dispatcher.run(stop.clone()));
    while spool.stats("bench").map_or(true, |s| s.pending > 0) {
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "drain: no progress"
        );
    }
    let elapsed = started.elapsed();
    stop.trigger();
    let _ = runtime.block_on(task);
    let delivered = spool
        .iter()
        .filter(|i| i.as_ref().is_ok_and(|i| i.state() == State::Delivered))
        .count();
    assert_eq!(delivered, MAILS as usize, "every mail delivered");
    let requests = discord.requests();
    let _ = std::fs::remove_dir_all(&dir);
    Round {
        elapsed,
        requests: requests.len(),
        limited: requests.iter().filter(|r| r.status == 429).count(),
    }
}

fn median<T: Copy + PartialOrd>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

pub fn run() -> Vec<Row> {
    let rounds = std::env::var("MAILBEACON_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or(5);
    let mut all = Vec::new();
    for n in 0..rounds {
        eprintln!("bench drain: round {}/{rounds}", n + 1);
        let r = round(n);
        eprintln!(
            "bench drain: {:.2} s, {} requests, {} × 429",
            r.elapsed.as_secs_f64(),
            r.requests,
            r.limited
        );
        all.push(r);
    }
    let rate = median(
        all.iter()
            .map(|r| f64::from(MAILS) / r.elapsed.as_secs_f64())
            .collect(),
    );
    let requests = median(all.iter().map(|r| r.requests).collect());
    let limited = median(all.iter().map(|r| r.limited).collect());
    let allowed = allowed_rate();
    let per_100 = limited as f64 * 100.0 / requests.max(1) as f64;
    let share = rate * 100.0 / allowed;
    vec![
        Row::new(
            "drain",
            &format!("{MAILS} pending mails → fake Discord, windows ÷{SCALE}"),
            format!("{rate:.1} mails/s"),
        )
        .goal("≥ 90 % of allowed", share >= 90.0)
        .note(&format!(
            "{share:.0} % of the {allowed:.0} mails/s the limits allow; median of {rounds}"
        )),
        Row::new(
            "drain",
            "time to drain vs the least the limits allow",
            format!("{:.2} s", f64::from(MAILS) / rate),
        )
        .note(&format!(
            "least {:.2} s: {:.0} % of the fastest possible drain",
            least_time().as_secs_f64(),
            least_time().as_secs_f64() * rate * 100.0 / f64::from(MAILS)
        )),
        Row::new("drain", "requests sent (incl. 429s)", requests.to_string()).note(&format!(
            "{:.0} mails per request",
            f64::from(MAILS) / requests.max(1) as f64
        )),
        Row::new("drain", "429s received", limited.to_string())
            .goal("≤ 1 per 100 requests", per_100 <= 1.0)
            .note(&format!("{per_100:.1} per 100 requests")),
    ]
}
