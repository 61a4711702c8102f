//! Discord's limits: a user and a shared 429, a global one, Cloudflare's ban page, the
//! invalid-request limit.

use super::{all_delivered, bucket, count, discord_status, fallback, secs, send, start, webhook};
use crate::common::daemon::{blinks, wait_until};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use std::time::Duration;

#[test]
fn a_user_429_is_waited_out_and_counted_a_shared_one_is_not_counted() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let limited = |scope| Behaviour::RateLimited {
        retry_after: 2.0,
        scope,
        global: false,
    };
    let user = discord.webhook("401", "userTOKEN", limited("user"));
    let shared = discord.webhook("402", "sharedTOKEN", limited("shared"));
    let sinks = format!(
        "{}{}",
        webhook("user", &user, ""),
        webhook("shared", &shared, "")
    );
    let buckets = format!("{}{}", bucket("u", "P2", "U", "user"), fallback("shared"));
    let daemon = start("scopes", &dovecot, "", &sinks, &buckets);
    send(&dovecot, "U one");
    send(&dovecot, "S one");
    wait_until(Duration::from_secs(30), "both delivered", || {
        all_delivered(&daemon, 2)
    });
    for token in ["userTOKEN", "sharedTOKEN"] {
        let posts = discord.posts_to(token);
        assert_eq!(
            posts.iter().map(|p| p.status).collect::<Vec<_>>(),
            vec![429, 200],
            "{token}"
        );
        let waited = posts[1].at.duration_since(posts[0].at);
        assert!(
            secs(waited) >= 1.9,
            "{token}: retried after {waited:?}, before retry_after"
        );
    }
    let d = discord_status(&daemon);
    assert_eq!(
        d["invalid_requests_10min"], 1,
        "the user-scope 429 counts, the shared one not: {d}"
    );
    assert!(
        daemon.dump().iter().all(|r| r["attempts"] == 1),
        "a 429 is not a failed attempt"
    );
}

#[test]
fn a_global_429_pauses_every_sink() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let a = discord.webhook("501", "aTOKEN", Behaviour::Ok);
    let b = discord.webhook("502", "bTOKEN", Behaviour::Ok);
    let sinks = format!("{}{}", webhook("a", &a, ""), webhook("b", &b, ""));
    let buckets = format!("{}{}", bucket("a", "P2", "A", "a"), fallback("b"));
    let daemon = start("global", &dovecot, "", &sinks, &buckets);
    discord.global_429_next(4.0);
    send(&dovecot, "A first");
    assert!(discord.wait_until(Duration::from_secs(20), |d| !d
        .posts_to("aTOKEN")
        .is_empty()));
    let limited_at = discord.posts_to("aTOKEN")[0].at;
    assert_eq!(discord.posts_to("aTOKEN")[0].status, 429);
    // Mail for the other webhook arrives during the pause.
    send(&dovecot, "B during the pause");
    wait_until(Duration::from_secs(3), "status to say rate limited", || {
        discord_status(&daemon)["state"] == "rate_limited"
    });
    wait_until(Duration::from_secs(30), "both delivered", || {
        all_delivered(&daemon, 2)
    });
    for token in ["aTOKEN", "bTOKEN"] {
        let first_ok = discord
            .posts_to(token)
            .into_iter()
            .find(|p| p.status == 200)
            .unwrap();
        let after = first_ok.at.duration_since(limited_at);
        assert!(
            secs(after) >= 3.9,
            "{token} posted {after:?} after a global 429 of 4 s"
        );
    }
}

#[test]
fn a_cloudflare_ban_pauses_every_sink_shows_banned_and_ends_with_one_probe() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let a = discord.webhook("601", "aTOKEN", Behaviour::Ok);
    let b = discord.webhook("602", "bTOKEN", Behaviour::Ok);
    let sinks = format!("{}{}", webhook("a", &a, ""), webhook("b", &b, ""));
    let buckets = format!("{}{}", bucket("a", "P2", "A", "a"), fallback("b"));
    let daemon = start("ban", &dovecot, "", &sinks, &buckets);
    // Banned for 4 s; Cloudflare says to come back in 5.
    discord.ban(Duration::from_secs(4), Some(5));
    send(&dovecot, "A banned");
    assert!(discord.wait_until(Duration::from_secs(20), |d| !d.requests().is_empty()));
    let banned_at = discord.requests()[0].at;
    let banned_unix = now_unix();
    send(&dovecot, "B during the ban");
    wait_until(Duration::from_secs(3), "status to say banned", || {
        discord_status(&daemon)["state"] == "banned"
    });
    let status = daemon.status();
    assert_eq!(status["indicator"]["pattern"], "dead", "{status}");
    assert!(
        status["summary"].as_str().unwrap_or("").contains("banned"),
        "{status}"
    );
    assert!(status["discord"]["paused_until"].is_string(), "{status}");
    wait_until(Duration::from_secs(30), "both delivered", || {
        all_delivered(&daemon, 2)
    });
    assert!(
        blinks(&daemon.trace_edges(), "led", banned_unix, 125.0, 250.0, 4),
        "the LED blinks the dead pattern during the ban"
    );
    let requests = discord.requests();
    assert_eq!(requests[0].status, 429);
    let rest = &requests[1..];
    let first = &rest[0];
    assert!(
        secs(first.at.duration_since(banned_at)) >= 4.9,
        "nothing at all during Cloudflare's Retry-After: {:?} after",
        first.at.duration_since(banned_at)
    );
    assert_eq!(first.method, "GET", "one probe asks first");
    assert_eq!(first.status, 200);
    assert_eq!(count(rest, "GET", None), 1, "one probe for every sink");
    wait_until(Duration::from_secs(3), "status to say ok", || {
        discord_status(&daemon)["state"] == "ok"
    });
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn at_the_invalid_request_limit_every_sink_pauses_and_says_so() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let bad = discord.webhook(
        "901",
        "badTOKEN",
        Behaviour::Status {
            http: 403,
            code: 50013,
        },
    );
    let good = discord.webhook("902", "goodTOKEN", Behaviour::Ok);
    let sinks = format!(
        "{}{}",
        webhook("bad", &bad, "probe_every = \"1s\"\nprobe_max = \"1s\""),
        webhook("good", &good, "")
    );
    let buckets = format!("{}{}", bucket("bad", "P2", "X", "bad"), fallback("good"));
    let top = "[discord]\ninvalid_request_limit = 3";
    let daemon = start("limit", &dovecot, top, &sinks, &buckets);
    send(&dovecot, "X forbidden");
    wait_until(
        Duration::from_secs(30),
        "the limit to pause every sink",
        || discord_status(&daemon)["state"] == "paused",
    );
    send(&dovecot, "Fine mail");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        discord
            .requests()
            .iter()
            .filter(|r| r.status == 403)
            .count(),
        3,
        "no request after the third 403"
    );
    assert!(
        discord.posts_to("goodTOKEN").is_empty(),
        "the healthy sink pauses too"
    );
    let status = daemon.status();
    assert_eq!(status["discord"]["invalid_requests_10min"], 3);
    assert_eq!(status["discord"]["invalid_request_limit"], 3);
    assert_eq!(status["indicator"]["pattern"], "dead");
    assert!(
        status["summary"]
            .as_str()
            .unwrap_or("")
            .contains("invalid requests"),
        "{status}"
    );
    assert!(
        daemon.log_text().contains("every sink pauses"),
        "the log says so"
    );
    let human = crate::common::daemon::cli(&daemon.config, &["status"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("3 invalid requests"), "{text}");
}
