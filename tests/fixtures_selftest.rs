// Proves the test fixtures work: a real Dovecot on loopback and the fake Discord API.

use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

// ------------------------------------------------------------------ raw HTTP/1.1 client

type Headers = Vec<(String, String)>;

fn http_full(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Headers, String) {
    let host = base.strip_prefix("http://").expect("http base");
    let mut s = TcpStream::connect(host).expect("connect to fake discord");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response head");
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn http(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let (st, _, b) = http_full(base, method, path, headers, body);
    (st, b)
}

fn hdr<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn post_embed(d: &FakeDiscord, path: &str, title: &str) -> (u16, String) {
    let body = json!({ "embeds": [{ "title": title, "description": "d" }], "allowed_mentions": { "parse": [] } });
    http(&d.base(), "POST", path, &[JSON], &body.to_string())
}

// ------------------------------------------------------------------ raw IMAP

struct Imap {
    r: BufReader<TcpStream>,
    w: TcpStream,
    n: u32,
}

impl Imap {
    fn connect(port: u16) -> Imap {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect imap");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut i = Imap {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
            n: 0,
        };
        let mut greeting = String::new();
        i.r.read_line(&mut greeting).unwrap();
        assert!(greeting.starts_with("* OK"), "greeting: {greeting}");
        i
    }

    /// Sends a command; returns (untagged lines, tagged completion line).
    fn cmd(&mut self, c: &str) -> (Vec<String>, String) {
        self.n += 1;
        let tag = format!("t{}", self.n);
        write!(self.w, "{tag} {c}\r\n").unwrap();
        let mut untagged = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.r.read_line(&mut line).unwrap();
            assert!(n > 0, "IMAP connection closed during {c}");
            if line.starts_with(&format!("{tag} ")) {
                return (untagged, line.trim_end().to_string());
            }
            untagged.push(line.trim_end().to_string());
        }
    }
}

/// LOGIN + SELECT; returns (EXISTS, UIDVALIDITY).
fn imap_select(port: u16, user: &str, folder: &str) -> (u32, u32) {
    let mut i = Imap::connect(port);
    let (_, ok) = i.cmd(&format!("LOGIN {user} secret"));
    assert!(ok.contains(" OK "), "login: {ok}");
    let (lines, ok) = i.cmd(&format!("SELECT \"{folder}\""));
    assert!(ok.contains(" OK "), "select: {ok}");
    let mut exists = None;
    let mut uidvalidity = None;
    for l in &lines {
        if l.ends_with(" EXISTS") {
            exists = l.split_whitespace().nth(1).and_then(|n| n.parse().ok());
        }
        if let Some(p) = l.find("[UIDVALIDITY ") {
            uidvalidity = l[p + 13..].split(']').next().and_then(|n| n.parse().ok());
        }
    }
    i.cmd("LOGOUT");
    (exists.expect("EXISTS"), uidvalidity.expect("UIDVALIDITY"))
}

/// A TLS handshake on the imaps port trusting only `ca_file()`, read the greeting.
fn imaps_greeting(d: &Dovecot, server_name: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(d.ca_file()).expect("read ca_file"))
        .expect("add trust anchor");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", d.imaps_port())).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = BufReader::new(rustls::StreamOwned::new(conn, sock));
    let mut line = String::new();
    tls.read_line(&mut line).expect("TLS handshake + greeting");
    line
}

fn msg(subject: &str) -> Vec<u8> {
    format!(
        "From: Sender <sender@example.org>\r\nTo: alice@localhost\r\nSubject: {subject}\r\n\
         Date: Sat, 22 Nov 2025 12:00:00 +0000\r\nMessage-ID: <{subject}@example.org>\r\n\r\nHello.\r\n"
    )
    .into_bytes()
}

// ------------------------------------------------------------------ Dovecot

#[test]
fn dovecot_deliver_stop_restart_recreate() {
    let d = Dovecot::start();
    assert_ne!(d.imaps_port(), d.imap_port());

    // TLS with the fixture's cert as the only trust anchor, by name and by IP.
    assert!(imaps_greeting(&d, "localhost").starts_with("* OK"));
    assert!(imaps_greeting(&d, "127.0.0.1").starts_with("* OK"));

    assert!(d.uids("alice", "INBOX").is_empty());
    d.deliver("alice", "INBOX", &msg("one"));
    d.deliver("alice", "INBOX", &msg("two"));
    let uids = d.uids("alice", "INBOX");
    assert_eq!(uids.len(), 2, "{}", d.log());
    assert!(!d.is_seen("alice", "INBOX", uids[0]));
    assert!(!d.is_seen("alice", "INBOX", uids[1]));
    let (exists, uv1) = imap_select(d.imap_port(), "alice", "INBOX");
    assert_eq!(exists, 2);
    assert_eq!(uv1, d.uidvalidity("alice", "INBOX"));

    // \Seen set over IMAP is visible to is_seen.
    {
        let mut i = Imap::connect(d.imap_port());
        i.cmd("LOGIN alice secret");
        i.cmd("SELECT INBOX");
        let (_, ok) = i.cmd(&format!("UID STORE {} +FLAGS (\\Seen)", uids[0]));
        assert!(ok.contains(" OK "), "{ok}");
        i.cmd("LOGOUT");
    }
    assert!(d.is_seen("alice", "INBOX", uids[0]));
    assert!(!d.is_seen("alice", "INBOX", uids[1]));

    // bob exists and has his own empty INBOX.
    assert_eq!(imap_select(d.imap_port(), "bob", "INBOX").0, 0);

    // stop: an open session is cut, both ports are closed.
    let mut open = Imap::connect(d.imap_port());
    open.cmd("LOGIN alice secret");
    open.cmd("SELECT INBOX");
    d.stop();
    assert!(!d.is_running());
    assert!(TcpStream::connect(("127.0.0.1", d.imaps_port())).is_err());
    assert!(TcpStream::connect(("127.0.0.1", d.imap_port())).is_err());
    let mut rest = String::new();
    let t = std::time::Instant::now();
    let _ = open.r.read_to_string(&mut rest);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "open session sees EOF after stop"
    );

    d.restart();
    assert!(d.is_running());
    assert_eq!(d.uids("alice", "INBOX"), uids, "mail survives a restart");
    assert_eq!(imap_select(d.imap_port(), "alice", "INBOX"), (2, uv1));
    assert!(imaps_greeting(&d, "localhost").starts_with("* OK"));

    // INBOX: emptied, new UIDVALIDITY (seen over IMAP too).
    d.recreate_folder("alice", "INBOX");
    assert!(d.uids("alice", "INBOX").is_empty());
    let (exists, uv2) = imap_select(d.imap_port(), "alice", "INBOX");
    assert_eq!(exists, 0);
    assert_ne!(uv1, uv2);
    d.deliver("alice", "INBOX", &msg("three"));
    assert_eq!(d.uids("alice", "INBOX").len(), 1);
    assert_eq!(imap_select(d.imap_port(), "alice", "INBOX"), (1, uv2));

    // Another folder: created on delivery, really deleted and re-created (UIDs restart at 1).
    d.deliver("alice", "Alerts/Mail", &msg("four"));
    d.deliver("alice", "Alerts/Mail", &msg("five"));
    assert_eq!(d.uids("alice", "Alerts/Mail"), vec![1, 2]);
    let uv3 = d.uidvalidity("alice", "Alerts/Mail");
    d.recreate_folder("alice", "Alerts/Mail");
    assert!(d.uids("alice", "Alerts/Mail").is_empty());
    assert_ne!(uv3, d.uidvalidity("alice", "Alerts/Mail"));
    d.deliver("alice", "Alerts/Mail", &msg("six"));
    assert_eq!(d.uids("alice", "Alerts/Mail"), vec![1]);

    assert!(d.log().contains("starting up"));

    // Last, because Dovecot delays failed logins (auth_failure_delay 2 s, default).
    let mut i = Imap::connect(d.imap_port());
    let (_, no) = i.cmd("LOGIN alice wrong");
    assert!(no.contains(" NO "), "{no}");
}

#[test]
fn dovecot_instances_run_in_parallel_and_clean_up() {
    let handles: Vec<_> = (0..3)
        .map(|n| {
            std::thread::spawn(move || {
                let d = Dovecot::start();
                d.deliver("bob", "INBOX", &msg(&format!("p{n}")));
                assert_eq!(d.uids("bob", "INBOX"), vec![1]);
                (d.imaps_port(), d.imap_port(), d.dir().to_path_buf(), d)
            })
        })
        .collect();
    let all: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut ports: Vec<u16> = all.iter().flat_map(|(a, b, _, _)| [*a, *b]).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 6, "every instance has its own ports");
    for (imaps, imap, dir, d) in all {
        drop(d);
        assert!(TcpStream::connect(("127.0.0.1", imaps)).is_err());
        assert!(TcpStream::connect(("127.0.0.1", imap)).is_err());
        assert!(!dir.exists(), "temp dir removed");
    }
}

// ------------------------------------------------------------------ fake Discord

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
