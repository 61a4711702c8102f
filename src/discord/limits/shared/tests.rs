use super::*;
use crate::discord::limits::{Gate, Guard, Route::Post, Who};
use crate::discord::{Outcome, Pace, Reply, Scope};

#[tokio::test(start_paused = true)]
async fn after_one_shared_429_each_window_takes_the_limit_then_waits() {
    let mut s = SharedLimits::default();
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    for i in 0..30 {
        assert_eq!(s.wait("w", ms(i * 10)), None, "nothing known yet");
        s.sent("w", ms(i * 10));
    }
    // The 31st at 300 ms: the window (from 0) ends at 3 s.
    s.limited("w", ms(300), Duration::from_millis(2700));
    // Each of the 30 leaves the span (3 s and the margin, 80 ms) in turn, so a new message
    // goes as each old one leaves; the 31st of the next window waits for the first of it.
    for i in 0..30 {
        let t = ms(3080 + i * 10);
        assert_eq!(s.wait("w", t), None);
        s.sent("w", t);
    }
    let until = s.wait("w", ms(3380)).expect("the 31st waits");
    assert_eq!(until, ms(3080 + 3080));
    assert_eq!(s.wait("w", ms(6160)), None, "the first has left the span");
    assert_eq!(s.wait("other", ms(3380)), None, "per channel");
}

#[tokio::test(start_paused = true)]
async fn a_limit_is_forgotten_ten_minutes_after_the_last_shared_429() {
    let mut s = SharedLimits::default();
    let t0 = Instant::now();
    s.sent("w", t0);
    s.limited("w", t0 + Duration::from_secs(1), Duration::from_secs(40));
    let later = t0 + Duration::from_secs(50);
    s.sent("w", later);
    assert!(s.wait("w", later).is_some(), "one per 41 s, as learned");
    let much_later = t0 + Duration::from_secs(700);
    s.sent("w", much_later);
    s.sent("w", much_later);
    assert_eq!(s.wait("w", much_later), None);
}

/// Discord's channel window as the fake Discord keeps it: fixed, starting with the first
/// message after the last one ended. `Err(retry_after)` for a message past the limit.
struct Channel {
    limit: u32,
    window: Duration,
    start: Option<Instant>,
    count: u32,
}

impl Channel {
    fn post(&mut self, now: Instant) -> Result<(), Duration> {
        if self.start.is_none_or(|s| now >= s + self.window) {
            self.start = Some(now);
            self.count = 0;
        }
        if self.count < self.limit {
            self.count += 1;
            return Ok(());
        }
        Err(self.start.map_or(Duration::ZERO, |s| s + self.window - now))
    }
}

/// A backlog paced by its webhook just under the channel's rate at first, so Discord's first
/// windows pass without a 429, then faster: the one 429 must teach the real limit (30 per
/// 10 s, not 80 in the 30 s since the first message) and no second 429 may follow.
#[tokio::test(start_paused = true)]
async fn one_429_teaches_the_window_even_when_earlier_windows_passed_unrefused() {
    let mut s = SharedLimits::default();
    let mut discord = Channel {
        limit: 30,
        window: Duration::from_secs(10),
        start: None,
        count: 0,
    };
    let t0 = Instant::now();
    let latency = Duration::from_millis(5);
    let (mut now, mut sent, mut refused) = (t0, 0, Vec::new());
    while sent < 300 {
        if let Some(until) = s.wait("c", now) {
            now = until;
            continue;
        }
        match discord.post(now) {
            Ok(()) => {
                s.sent("c", now + latency);
                sent += 1;
            }
            Err(retry_after) => {
                s.limited("c", now + latency, retry_after);
                refused.push(now - t0);
                now += retry_after;
            }
        }
        // The webhook's own pace: 2.5 messages a second for 25 s, then 5.
        let spacing = if now - t0 < Duration::from_secs(25) {
            400
        } else {
            200
        };
        now += latency + Duration::from_millis(spacing);
    }
    assert_eq!(refused.len(), 1, "429s at {refused:?}");
    assert!(refused[0] > Duration::from_secs(20), "in the third window");
    let rules = &s.by["c"].rules;
    assert!(
        rules.iter().any(|&(limit, window)| limit == 30
            && window > Duration::from_millis(9900)
            && window <= Duration::from_secs(10)),
        "the real limit among the rules: {rules:?}"
    );
}

fn who(webhook: &str) -> Who {
    Who {
        sink: webhook.into(),
        resource: format!("webhook {webhook}"),
        global: None,
    }
}

fn answer(status: u16, outcome: Outcome) -> Reply {
    Reply {
        outcome,
        pace: Pace {
            channel: (status == 200).then(|| "900".to_string()),
            ..Pace::default()
        },
        status,
    }
}

/// Two webhooks of one channel: the limit one of them learned holds for both.
#[tokio::test(start_paused = true)]
async fn the_limit_learned_through_one_webhook_holds_for_every_webhook_of_its_channel() {
    let guard = Guard::new(100);
    let (a, b) = (who("a"), who("b"));
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let ok = || {
        answer(
            200,
            Outcome::Delivered {
                message_id: "1".into(),
            },
        )
    };
    for i in 0..30 {
        let w = if i % 2 == 0 { &a } else { &b };
        assert_eq!(guard.admit(w, Post, ms(i * 10)), Gate::Go);
        guard.observe(w, Post, &ok(), ms(i * 10 + 5));
    }
    assert_eq!(guard.admit(&a, Post, ms(300)), Gate::Go);
    let refused = answer(
        429,
        Outcome::RateLimited {
            retry_after: Duration::from_millis(2700),
            scope: Scope::Shared,
        },
    );
    guard.observe(&a, Post, &refused, ms(305));
    // The next window (3 s and the margin after the first): 15 through each webhook fill it;
    // the next of either waits.
    for i in 0..30 {
        let w = if i % 2 == 0 { &a } else { &b };
        assert_eq!(guard.admit(w, Post, ms(3100 + i * 10)), Gate::Go);
        guard.observe(w, Post, &ok(), ms(3105 + i * 10));
    }
    for w in [&a, &b] {
        assert!(
            matches!(guard.admit(w, Post, ms(3500)), Gate::Wait { .. }),
            "{} waits for the channel's window",
            w.sink
        );
    }
}

/// A message admitted and not yet answered counts: two webhooks admitted at once cannot both
/// take the window's last place.
#[tokio::test(start_paused = true)]
async fn messages_in_flight_count_toward_the_window() {
    let mut s = SharedLimits::default();
    let t0 = Instant::now();
    s.sent("c", t0);
    s.sent("c", t0 + Duration::from_millis(1));
    s.limited("c", t0 + Duration::from_millis(10), Duration::from_secs(1));
    let next = t0 + Duration::from_secs(2);
    s.sent("c", next);
    assert_eq!(s.wait("c", next), None, "one of two places left");
    s.admitted("c");
    assert!(s.wait("c", next).is_some(), "the last place is taken");
    s.answered("c");
    assert_eq!(s.wait("c", next), None, "refused: the place is free again");
}

/// A webhook whose first answer was the 429 did not know its channel yet: what it learned
/// moves to the channel once an answer names it.
#[tokio::test(start_paused = true)]
async fn what_a_webhook_learned_before_its_channel_was_known_moves_to_the_channel() {
    let mut s = SharedLimits::default();
    let t0 = Instant::now();
    s.sent("webhook 1", t0);
    s.limited(
        "webhook 1",
        t0 + Duration::from_millis(10),
        Duration::from_secs(1),
    );
    s.rename("webhook 1", "channel 9");
    let later = t0 + Duration::from_secs(2);
    s.sent("channel 9", later);
    assert!(
        s.wait("channel 9", later).is_some(),
        "one per second, as learned"
    );
}
