use super::*;
use crate::discord::Pace;
use Route::{Get, Post};

fn who(global: Option<u64>) -> Who {
    Who {
        sink: "s".into(),
        resource: format!("webhook {global:?}"),
        global,
    }
}

fn reply(status: u16, outcome: Outcome) -> Reply {
    Reply {
        outcome,
        pace: Pace::default(),
        status,
    }
}

fn limited(secs: u64, scope: Scope) -> Reply {
    reply(
        429,
        Outcome::RateLimited {
            retry_after: Duration::from_secs(secs),
            scope,
        },
    )
}

fn ok() -> Reply {
    reply(
        200,
        Outcome::Delivered {
            message_id: "1".into(),
        },
    )
}

#[test]
fn only_401_403_and_unshared_429_count() {
    let g = Guard::new(100);
    let (w, t0) = (who(None), Instant::now());
    g.observe(
        &w,
        Post,
        &reply(401, Outcome::Dead { reason: "x".into() }),
        t0,
    );
    g.observe(
        &w,
        Post,
        &reply(403, Outcome::Dead { reason: "x".into() }),
        t0,
    );
    g.observe(
        &w,
        Post,
        &reply(404, Outcome::Dead { reason: "x".into() }),
        t0,
    );
    g.observe(
        &w,
        Post,
        &reply(400, Outcome::Rejected { reason: "x".into() }),
        t0,
    );
    g.observe(&w, Post, &limited(1, Scope::User), t0);
    g.observe(&w, Post, &limited(1, Scope::Shared), t0);
    g.observe(&w, Post, &ok(), t0);
    assert_eq!(g.snapshot(t0, 0).invalid_requests, 3);
    assert_eq!(g.snapshot(t0 + INVALID_WINDOW, 0).invalid_requests, 0);
}

#[test]
fn at_the_limit_every_sink_waits_for_the_window_to_drain() {
    let g = Guard::new(3);
    let t0 = Instant::now();
    for i in 0..3 {
        let at = t0 + Duration::from_secs(i);
        g.observe(
            &who(Some(i)),
            Get,
            &reply(401, Outcome::Dead { reason: "x".into() }),
            at,
        );
    }
    let t = t0 + Duration::from_secs(5);
    assert_eq!(
        g.admit(&who(Some(9)), Post, t),
        Gate::Wait {
            until: t0 + INVALID_WINDOW,
            why: Why::TooManyInvalid
        },
        "another sink, too"
    );
    let snap = g.snapshot(t, 1000);
    assert_eq!(snap.state, DiscordState::Paused);
    assert_eq!(snap.paused_until, Some(1000 + 595));
    assert_eq!(g.admit(&who(Some(9)), Post, t0 + INVALID_WINDOW), Gate::Go);
}

#[test]
fn a_global_429_pauses_its_scope() {
    let g = Guard::new(100);
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs(3);
    // A bot's global limit pauses the sinks with its token.
    g.observe(&who(Some(7)), Post, &limited(3, Scope::Global), t0);
    assert_eq!(
        g.admit(&who(Some(7)), Post, t0),
        Gate::Wait {
            until,
            why: Why::Global
        }
    );
    assert_eq!(g.admit(&who(Some(8)), Post, t0), Gate::Go, "another token");
    // A webhook's pauses every sink.
    g.observe(&who(None), Post, &limited(3, Scope::Global), t0);
    assert_eq!(
        g.admit(&who(Some(8)), Post, t0),
        Gate::Wait {
            until,
            why: Why::Global
        }
    );
    assert_eq!(g.snapshot(t0, 0).state, DiscordState::RateLimited);
    assert_eq!(g.admit(&who(Some(8)), Post, until), Gate::Go);
    assert_eq!(g.snapshot(until, 0).state, DiscordState::Ok);
}

#[test]
fn a_user_429_waits_on_its_own_budget_only() {
    let g = Guard::new(100);
    let t0 = Instant::now();
    g.observe(&who(None), Post, &limited(2, Scope::User), t0);
    assert_eq!(
        g.admit(&who(None), Post, t0),
        Gate::Wait {
            until: t0 + Duration::from_secs(2),
            why: Why::Pacing
        }
    );
    assert_eq!(g.admit(&who(Some(1)), Post, t0), Gate::Go);
}

#[test]
fn a_ban_pauses_everyone_then_one_probe_asks() {
    let g = Guard::new(100);
    let t0 = Instant::now();
    g.observe(&who(None), Post, &limited(60, Scope::Banned), t0);
    let until = t0 + Duration::from_secs(60);
    for w in [who(None), who(Some(1))] {
        assert_eq!(
            g.admit(&w, Post, t0),
            Gate::Wait {
                until,
                why: Why::Banned
            }
        );
    }
    assert_eq!(g.snapshot(t0, 0).state, DiscordState::Banned);
    assert_eq!(g.admit(&who(Some(1)), Post, until), Gate::ProbeBan);
    assert!(
        matches!(
            g.admit(&who(None), Post, until),
            Gate::Wait {
                why: Why::Banned,
                ..
            }
        ),
        "only one probe"
    );
    // Still banned: another pause.
    g.observe(&who(Some(1)), Get, &limited(30, Scope::Banned), until);
    let again = until + Duration::from_secs(30);
    assert_eq!(
        g.admit(&who(None), Post, until),
        Gate::Wait {
            until: again,
            why: Why::Banned
        }
    );
    assert_eq!(g.admit(&who(None), Get, again), Gate::ProbeBan);
    g.observe(&who(None), Get, &ok(), again);
    assert_eq!(g.admit(&who(Some(1)), Post, again), Gate::Go);
    assert_eq!(g.snapshot(again, 0).state, DiscordState::Ok);
}
