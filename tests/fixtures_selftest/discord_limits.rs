//! The fake Discord refuses what Discord refuses: malformed requests, and every limit and field
//! kind of an execute-webhook body.

use super::{http, post_embed, JSON};
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use serde_json::{json, Value};

#[test]
fn discord_rejects_bad_requests_like_discord() {
    let d = FakeDiscord::start();
    d.webhook("444", "tok-v", Behaviour::Ok);
    let path = "/api/v10/webhooks/444/tok-v?wait=true";
    let code = |b: &str| serde_json::from_str::<Value>(b).unwrap()["code"].clone();

    // Missing Content-Type.
    let (st, body) = http(
        &d.base(),
        "POST",
        path,
        &[],
        &json!({"content": "hi"}).to_string(),
    );
    assert_eq!(st, 400);
    assert_eq!(code(&body), 50035);

    // Title too long.
    let long = "x".repeat(257);
    let (st, body) = post_embed(&d, path, &long);
    assert_eq!(st, 400);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], 50035);
    assert!(
        v["errors"]["embeds"]["0"]["title"]["_errors"].is_array(),
        "{v}"
    );

    // More than 10 embeds; more than 6000 characters over all embeds.
    let eleven: Vec<Value> = (0..11)
        .map(|i| json!({ "title": format!("t{i}") }))
        .collect();
    let (st, _) = http(
        &d.base(),
        "POST",
        path,
        &[JSON],
        &json!({ "embeds": eleven }).to_string(),
    );
    assert_eq!(st, 400);
    let big: Vec<Value> = (0..2)
        .map(|_| json!({ "description": "y".repeat(3001) }))
        .collect();
    let (st, body) = http(
        &d.base(),
        "POST",
        path,
        &[JSON],
        &json!({ "embeds": big }).to_string(),
    );
    assert_eq!(st, 400);
    assert!(body.contains("MAX_EMBED_SIZE_EXCEEDED"), "{body}");

    // Empty message; invalid JSON; forbidden username.
    let (st, body) = http(&d.base(), "POST", path, &[JSON], "{}");
    assert_eq!((st, code(&body)), (400, json!(50006)));
    let (st, body) = http(&d.base(), "POST", path, &[JSON], "{not json");
    assert_eq!((st, code(&body)), (400, json!(50109)));
    let (st, body) = http(
        &d.base(),
        "POST",
        path,
        &[JSON],
        &json!({ "content": "x", "username": "Discord bot" }).to_string(),
    );
    assert_eq!((st, code(&body)), (400, json!(50035)));

    // Exactly at the limits is fine.
    let ok: Vec<Value> = vec![
        json!({ "title": "t".repeat(256), "description": "d".repeat(4096) }),
        json!({ "description": "e".repeat(6000 - 256 - 4096) }),
    ];
    let (st, body) = http(
        &d.base(),
        "POST",
        path,
        &[JSON],
        &json!({ "embeds": ok }).to_string(),
    );
    assert_eq!(st, 200, "{body}");

    // Only the acknowledged POST counts as delivered.
    assert_eq!(d.delivered_titles("tok-v"), vec!["t".repeat(256)]);
    assert!(d.requests().iter().all(|r| r.status != 0));
}

/// Every limit and field kind of an execute-webhook body that a renderer can get wrong is refused
/// with 400/50035 and an `errors` tree naming the field; the same payload just inside passes.
#[test]
fn discord_checks_every_limit_and_field_kind() {
    let d = FakeDiscord::start();
    d.webhook("445", "tok-l", Behaviour::Ok);
    let post = |body: Value| {
        let (st, text) = http(
            &d.base(),
            "POST",
            "/api/v10/webhooks/445/tok-l?wait=true",
            &[JSON],
            &body.to_string(),
        );
        (
            st,
            serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
        )
    };
    let field = |name: &str, value: &str| json!({ "name": name, "value": value });
    let embed_with = |k: &str, v: Value| {
        let mut e = json!({ "title": "t" });
        e[k] = v;
        json!({ "embeds": [e] })
    };
    let refused: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "content 2001",
            json!({ "content": "c".repeat(2001) }),
            vec!["content"],
        ),
        (
            "description 4097",
            embed_with("description", json!("d".repeat(4097))),
            vec!["embeds", "0", "description"],
        ),
        (
            "footer 2049",
            embed_with("footer", json!({ "text": "f".repeat(2049) })),
            vec!["embeds", "0", "footer", "text"],
        ),
        (
            "footer empty",
            embed_with("footer", json!({ "text": "" })),
            vec!["embeds", "0", "footer", "text"],
        ),
        (
            "author 257",
            embed_with("author", json!({ "name": "a".repeat(257) })),
            vec!["embeds", "0", "author", "name"],
        ),
        (
            "26 fields",
            embed_with("fields", json!(vec![field("n", "v"); 26])),
            vec!["embeds", "0", "fields"],
        ),
        (
            "field name 257",
            embed_with("fields", json!([field(&"n".repeat(257), "v")])),
            vec!["embeds", "0", "fields", "0", "name"],
        ),
        (
            "field value 1025",
            embed_with("fields", json!([field("n", &"v".repeat(1025))])),
            vec!["embeds", "0", "fields", "0", "value"],
        ),
        (
            "field value empty",
            embed_with("fields", json!([field("n", "")])),
            vec!["embeds", "0", "fields", "0", "value"],
        ),
        (
            "field value blank",
            embed_with("fields", json!([field("n", " \n ")])),
            vec!["embeds", "0", "fields", "0", "value"],
        ),
        (
            "inline not a bool",
            embed_with(
                "fields",
                json!([{ "name": "n", "value": "v", "inline": "yes" }]),
            ),
            vec!["embeds", "0", "fields", "0", "inline"],
        ),
        (
            "timestamp garbage",
            embed_with("timestamp", json!("yesterday")),
            vec!["embeds", "0", "timestamp"],
        ),
        (
            "timestamp 31 Feb",
            embed_with("timestamp", json!("2026-02-31T10:00:00Z")),
            vec!["embeds", "0", "timestamp"],
        ),
        (
            "timestamp 25 h",
            embed_with("timestamp", json!("2026-02-01T25:61:61+03:39")),
            vec!["embeds", "0", "timestamp"],
        ),
        (
            "timestamp year 0",
            embed_with("timestamp", json!("0000-01-01T00:00:00Z")),
            vec!["embeds", "0", "timestamp"],
        ),
        (
            "timestamp year 10000",
            embed_with("timestamp", json!("10000-01-01T00:00:00Z")),
            vec!["embeds", "0", "timestamp"],
        ),
        (
            "parse: pings",
            json!({ "content": "x", "allowed_mentions": { "parse": ["pings"] } }),
            vec!["allowed_mentions", "parse", "0"],
        ),
        (
            "parse not a list",
            json!({ "content": "x", "allowed_mentions": { "parse": "everyone" } }),
            vec!["allowed_mentions", "parse"],
        ),
        (
            "users parsed and listed",
            json!({ "content": "x", "allowed_mentions": { "parse": ["users"], "users": ["1"] } }),
            vec!["allowed_mentions"],
        ),
        (
            "101 roles",
            json!({ "content": "x", "allowed_mentions": { "roles": vec!["1"; 101] } }),
            vec!["allowed_mentions", "roles"],
        ),
        (
            "role not a snowflake",
            json!({ "content": "x", "allowed_mentions": { "roles": ["admins"] } }),
            vec!["allowed_mentions", "roles"],
        ),
    ];
    for (what, body, path) in refused {
        let (st, v) = post(body);
        assert_eq!((st, v["code"].clone()), (400, json!(50035)), "{what}: {v}");
        let mut at = &v["errors"];
        for seg in &path {
            at = &at[*seg];
        }
        assert!(at["_errors"].is_array(), "{what}: errors at {path:?}: {v}");
    }

    let fields: Vec<Value> = (0..25)
        .map(|_| field(&"n".repeat(4), &"v".repeat(40)))
        .collect();
    let accepted = vec![
        json!({ "content": "c".repeat(2000), "allowed_mentions": { "parse": [] } }),
        json!({ "embeds": [{ "title": "t", "fields": fields, "footer": { "text": "f".repeat(2048) },
                             "author": { "name": "a".repeat(256) }, "timestamp": "2026-09-01T10:00:00Z" }] }),
        embed_with("timestamp", json!("9999-12-31T23:59:59.123456-12:00")),
        embed_with("timestamp", json!("2024-02-29T00:00:00+00:00")),
        json!({ "content": "x", "allowed_mentions": { "parse": [], "roles": ["123"] } }),
        json!({ "content": "x", "allowed_mentions": { "parse": ["everyone", "roles"], "users": ["1"], "replied_user": false } }),
    ];
    for body in accepted {
        let (st, v) = post(body.clone());
        assert_eq!(st, 200, "{body} → {v}");
    }
    // Each request records the answer, so a test can say which limit a payload broke.
    let requests = d.posts_to("tok-l");
    assert!(requests[0].response["errors"]["content"].is_object());
    assert!(requests.last().unwrap().response["id"].is_string());
}
