//! The fake Discord's webhooks: acknowledged and recorded, errors by status, an unknown
//! webhook and a bad token, flaky and rate-limited answers, the server gone once dropped.

use super::{hdr, http, http_full, post_embed, JSON};
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use serde_json::{json, Value};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn discord_ok_webhook_acknowledges_and_records() {
    let d = FakeDiscord::start();
    let url = d.webhook("111", "tok-ok", Behaviour::Ok);
    assert_eq!(url, format!("{}/api/webhooks/111/tok-ok", d.base()));

    let (st, h, body) = http_full(
        &d.base(),
        "POST",
        "/api/v10/webhooks/111/tok-ok?wait=true",
        &[JSON],
        &json!({ "embeds": [{ "title": "First", "color": 3447003 }] }).to_string(),
    );
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let id1: u64 = v["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(v["embeds"][0]["title"], "First");
    assert!(v["channel_id"].is_string());
    assert_eq!(hdr(&h, "X-RateLimit-Limit"), Some("5"));
    assert_eq!(hdr(&h, "X-RateLimit-Remaining"), Some("4"));
    assert!(hdr(&h, "X-RateLimit-Reset-After").is_some());
    assert!(hdr(&h, "X-RateLimit-Reset").is_some());
    assert!(hdr(&h, "X-RateLimit-Bucket").is_some());

    let (st, body) = post_embed(&d, "/api/v10/webhooks/111/tok-ok?wait=true", "Second");
    assert_eq!(st, 200);
    let id2: u64 = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(id2 > id1, "message ids increase");

    // Without wait=true: 204, no body — still delivered.
    let (st, body) = post_embed(&d, "/api/v10/webhooks/111/tok-ok", "Third");
    assert_eq!((st, body.as_str()), (204, ""));

    // The version-less (copied) URL works too and is recorded as such.
    let (st, _) = post_embed(&d, "/api/webhooks/111/tok-ok?wait=true", "Fourth");
    assert_eq!(st, 200);
    let posts = d.posts_to("tok-ok");
    assert_eq!(posts.len(), 4);
    assert!(posts[..3].iter().all(|r| r.is_v10()));
    assert!(!posts[3].is_v10());
    assert_eq!(posts[0].query_param("wait"), Some("true"));
    assert_eq!(posts[0].header("content-type"), Some("application/json"));

    assert_eq!(
        d.delivered_titles("tok-ok"),
        vec!["First", "Second", "Third", "Fourth"]
    );

    // GET probe.
    let (st, body) = http(&d.base(), "GET", "/api/v10/webhooks/111/tok-ok", &[], "");
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["id"].as_str(), v["type"].as_u64()),
        (Some("111"), Some(1))
    );

    // Remaining counts down within the window and never below 0 (not enforced).
    let d2 = FakeDiscord::start();
    d2.webhook("222", "tok-rl", Behaviour::Ok);
    let remaining: Vec<String> = (0..7)
        .map(|i| {
            let (st, h, _) = http_full(
                &d2.base(),
                "POST",
                "/api/v10/webhooks/222/tok-rl?wait=true",
                &[JSON],
                &json!({ "content": format!("m{i}") }).to_string(),
            );
            assert_eq!(st, 200);
            hdr(&h, "X-RateLimit-Remaining").unwrap().to_string()
        })
        .collect();
    assert_eq!(remaining, ["4", "3", "2", "1", "0", "0", "0"]);
    assert_eq!(d2.requests().len(), 7);
}

#[test]
fn discord_status_webhook_answers_errors_to_post_and_get() {
    let d = FakeDiscord::start();
    d.webhook(
        "333",
        "tok-403",
        Behaviour::Status {
            http: 403,
            code: 50013,
        },
    );
    let (st, body) = post_embed(&d, "/api/v10/webhooks/333/tok-403?wait=true", "x");
    assert_eq!(st, 403);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], 50013);
    assert_eq!(v["message"], "Missing Permissions");
    let (st, body) = http(&d.base(), "GET", "/api/v10/webhooks/333/tok-403", &[], "");
    assert_eq!(st, 403);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], 50013);
    assert!(d.delivered_titles("tok-403").is_empty());

    // set_behaviour switches it back.
    d.set_behaviour("tok-403", Behaviour::Ok);
    assert_eq!(
        post_embed(&d, "/api/v10/webhooks/333/tok-403?wait=true", "y").0,
        200
    );
    assert_eq!(d.delivered_titles("tok-403"), vec!["y"]);

    // A 500 Status: GET still answers 200.
    d.set_behaviour("tok-403", Behaviour::Status { http: 500, code: 0 });
    assert_eq!(
        post_embed(&d, "/api/v10/webhooks/333/tok-403?wait=true", "z").0,
        500
    );
    assert_eq!(
        http(&d.base(), "GET", "/api/v10/webhooks/333/tok-403", &[], "").0,
        200
    );
}

#[test]
fn discord_unknown_webhook_and_bad_token() {
    let d = FakeDiscord::start();
    d.webhook("555", "tok-good", Behaviour::Ok);
    let (st, body) = post_embed(&d, "/api/v10/webhooks/999/nope?wait=true", "x");
    assert_eq!(st, 404);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["code"].as_u64(), v["message"].as_str()),
        (Some(10015), Some("Unknown Webhook"))
    );
    assert_eq!(
        http(&d.base(), "GET", "/api/v10/webhooks/999/nope", &[], "").0,
        404
    );

    // Known id, wrong token → 401 / 50027 like Discord.
    let (st, body) = post_embed(&d, "/api/v10/webhooks/555/tok-bad?wait=true", "x");
    assert_eq!(st, 401);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], 50027);

    // Deleted webhook → 404.
    d.delete_webhook("tok-good");
    assert_eq!(
        post_embed(&d, "/api/v10/webhooks/555/tok-good?wait=true", "x").0,
        404
    );
    // Unknown route.
    assert_eq!(http(&d.base(), "GET", "/api/v10/users/@me", &[], "").0, 404);
}

#[test]
fn discord_flaky_and_rate_limited() {
    let d = FakeDiscord::start();
    d.webhook("666", "tok-flaky", Behaviour::FlakyEvery(2));
    let statuses: Vec<u16> = (0..4)
        .map(|i| {
            post_embed(
                &d,
                "/api/v10/webhooks/666/tok-flaky?wait=true",
                &format!("f{i}"),
            )
            .0
        })
        .collect();
    assert_eq!(statuses, [200, 500, 200, 500]);
    assert_eq!(d.delivered_titles("tok-flaky"), vec!["f0", "f2"]);

    d.webhook(
        "777",
        "tok-429",
        Behaviour::RateLimited {
            retry_after: 0.4,
            scope: "shared",
            global: false,
        },
    );
    let path = "/api/v10/webhooks/777/tok-429?wait=true";
    let body = json!({ "embeds": [{ "title": "r" }] }).to_string();
    let (st, h, b) = http_full(&d.base(), "POST", path, &[JSON], &body);
    assert_eq!(st, 429);
    let v: Value = serde_json::from_str(&b).unwrap();
    let ra = v["retry_after"].as_f64().unwrap();
    assert!(ra > 0.3 && ra <= 0.4, "{ra}");
    assert_eq!(v["global"], false);
    assert_eq!(hdr(&h, "Retry-After"), Some("1"));
    assert_eq!(hdr(&h, "X-RateLimit-Scope"), Some("shared"));
    assert_eq!(hdr(&h, "X-RateLimit-Global"), None);
    // Hammering inside the window: still 429.
    assert_eq!(http(&d.base(), "POST", path, &[JSON], &body).0, 429);
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(http(&d.base(), "POST", path, &[JSON], &body).0, 200);
    assert_eq!(d.behaviour("tok-429"), Some(Behaviour::Ok));
    assert_eq!(d.delivered_titles("tok-429"), vec!["r"]);

    // Global limit carries X-RateLimit-Global.
    d.set_behaviour(
        "tok-429",
        Behaviour::RateLimited {
            retry_after: 2.5,
            scope: "global",
            global: true,
        },
    );
    let (st, h, b) = http_full(&d.base(), "POST", path, &[JSON], &body);
    assert_eq!(st, 429);
    assert_eq!(hdr(&h, "Retry-After"), Some("3"));
    assert_eq!(hdr(&h, "X-RateLimit-Global"), Some("true"));
    assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["global"], true);
}

#[test]
fn discord_stops_on_drop() {
    let d = FakeDiscord::start();
    let base = d.base();
    d.webhook("888", "tok", Behaviour::Ok);
    assert_eq!(
        post_embed(&d, "/api/v10/webhooks/888/tok?wait=true", "x").0,
        200
    );
    drop(d);
    let host = base.strip_prefix("http://").unwrap();
    assert!(
        TcpStream::connect(host).is_err(),
        "server still listening after drop"
    );
}
