//! Discord delivery end to end: the real binary, a real Dovecot and the fake Discord. Each test
//! asserts what a user would notice: where a message lands and how often, what `status` and the
//! LED say, and how hard a broken destination is hit.

use crate::common::config::{config, Config};
use crate::common::daemon::{blinks, mail, wait_until, Daemon};
use crate::common::dovecot::{Dovecot, PASSWORD};
use crate::common::fake_discord::{Behaviour, FakeDiscord, Options, Request};
use serde_json::Value;
use std::time::{Duration, Instant};

fn webhook(name: &str, url: &str, extra: &str) -> String {
    format!("[[sink]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"{url}\"\n{extra}\n")
}

/// A bucket for mail whose subject starts with `prefix`, delivered to `sink`.
fn bucket(name: &str, severity: &str, prefix: &str, sink: &str) -> String {
    format!("[[bucket]]\nname = \"{name}\"\nseverity = \"{severity}\"\nsinks = [\"{sink}\"]\nrules = [{{ subject = '^{prefix} ' }}]\n")
}

fn fallback(sink: &str) -> String {
    format!("[[bucket]]\nname = \"other\"\nseverity = \"P3\"\nsinks = [\"{sink}\"]\n")
}

fn start(tag: &str, dovecot: &Dovecot, top: &str, sinks: &str, buckets: &str) -> Daemon {
    Config::temp(tag, dovecot)
        .top(top)
        .sinks(sinks)
        .buckets(buckets)
        .start_watching()
}

fn send(dovecot: &Dovecot, subject: &str) {
    let id = subject.replace(' ', ".");
    dovecot.deliver(
        "alice",
        "INBOX",
        &mail(
            "Sender <s@example.org>",
            subject,
            "hello",
            &format!("{id}@example.org"),
        ),
    );
}

/// Many mails over one IMAP connection (a process per mail would take a minute for 1,000).
fn append_all(dovecot: &Dovecot, subjects: &[String]) {
    let tcp = std::net::TcpStream::connect(("127.0.0.1", dovecot.imap_port())).unwrap();
    let mut client = imap::Client::new(tcp);
    client.read_greeting().unwrap();
    let mut session = client.login("alice", PASSWORD).map_err(|(e, _)| e).unwrap();
    for s in subjects {
        let raw = mail(
            "Sender <s@example.org>",
            s,
            "hello",
            &format!("{}@example.org", s.replace(' ', ".")),
        );
        session.append("INBOX", &raw).finish().unwrap();
    }
    let _ = session.logout();
}

fn discord_status(daemon: &Daemon) -> Value {
    daemon.status()["discord"].clone()
}

fn pending(daemon: &Daemon) -> usize {
    daemon
        .dump()
        .iter()
        .filter(|r| r["state"] == "pending")
        .count()
}

fn all_delivered(daemon: &Daemon, n: usize) -> bool {
    let dump = daemon.dump();
    dump.len() == n && dump.iter().all(|r| r["state"] == "delivered")
}

fn count(requests: &[Request], method: &str, status: Option<u16>) -> usize {
    requests
        .iter()
        .filter(|r| r.method == method && status.is_none_or(|s| r.status == s))
        .count()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[test]
fn a_bot_posts_as_a_bot_and_a_lost_answer_creates_no_second_message() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    discord.bot("BOTsecretTOKEN");
    // The first post creates its message but the answer is lost (502): the retry must not
    // create a second one.
    discord.channel("555", Behaviour::CreateThenFail(1));
    let sinks = format!(
        "[[sink]]\nname = \"bot\"\nkind = \"bot\"\nchannel_id = \"555\"\ntoken = \"BOTsecretTOKEN\"\napi_base = \"{}/api/v10\"\n",
        discord.base()
    );
    let daemon = start("bot", &dovecot, "", &sinks, &fallback("bot"));
    send(&dovecot, "Bot mail");
    wait_until(Duration::from_secs(30), "the mail delivered", || {
        all_delivered(&daemon, 1)
    });

    let created = discord.messages_in("555");
    assert_eq!(
        created.len(),
        1,
        "exactly one message in the channel: {created:?}"
    );
    assert_eq!(discord.titles_in("555"), vec!["Bot mail"]);
    let posts: Vec<Request> = discord
        .requests_to_channel("555")
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(
        posts.iter().map(|p| p.status).collect::<Vec<_>>(),
        vec![502, 200]
    );
    assert_eq!(
        posts[0].body["nonce"], posts[1].body["nonce"],
        "a repeat carries the same nonce"
    );
    for p in &posts {
        assert_eq!(p.body["enforce_nonce"], true);
        assert!(p.body["nonce"].as_str().is_some_and(|n| n.len() <= 25));
        assert_eq!(p.header("Authorization"), Some("Bot BOTsecretTOKEN"));
        assert!(p
            .header("User-Agent")
            .is_some_and(|ua| ua.starts_with("DiscordBot (")));
        assert_eq!(p.path, "/api/v10/channels/555/messages");
    }
    let dump = daemon.dump();
    assert_eq!(
        dump[0]["discord_message_ids"][0],
        created[0].id.as_str(),
        "the first message is the one recorded"
    );
    assert!(!daemon.status().to_string().contains("BOTsecretTOKEN"));
    assert!(
        !daemon.log_text().contains("BOTsecretTOKEN"),
        "no token in the log"
    );
}

#[test]
fn webhook_and_bot_sinks_post_into_their_threads() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let hook = discord.webhook("300", "hookTOKEN", Behaviour::Ok);
    let hook_thread = discord.thread(&discord.webhook_channel("hookTOKEN"));
    discord.bot("BOTTOKEN");
    discord.channel("777", Behaviour::Ok);
    let bot_thread = discord.thread("777");
    let sinks = format!(
        "{}\n[[sink]]\nname = \"bot\"\nkind = \"bot\"\nchannel_id = \"777\"\nthread_id = \"{bot_thread}\"\ntoken = \"BOTTOKEN\"\napi_base = \"{}/api/v10\"\nprobe_every = \"1s\"\n",
        webhook("hook", &hook, &format!("thread_id = \"{hook_thread}\"")),
        discord.base()
    );
    let buckets = format!("{}{}", bucket("b", "P2", "B", "bot"), fallback("hook"));
    let daemon = start("thread", &dovecot, "", &sinks, &buckets);
    send(&dovecot, "W threaded");
    send(&dovecot, "B threaded");
    wait_until(Duration::from_secs(30), "both delivered", || {
        all_delivered(&daemon, 2)
    });
    assert_eq!(discord.titles_in(&hook_thread), vec!["W threaded"]);
    assert_eq!(discord.titles_in(&bot_thread), vec!["B threaded"]);
    assert!(
        discord.messages_in("777").is_empty(),
        "nothing in the bot's parent channel"
    );
    for p in discord.posts_to("hookTOKEN") {
        assert_eq!(p.query_param("thread_id"), Some(hook_thread.as_str()));
        assert_eq!(p.query_param("wait"), Some("true"));
    }
    // A thread that is not the webhook's is a dead destination, and says so.
    let other = discord.thread("999");
    let sinks = webhook(
        "hook",
        &hook,
        &format!("thread_id = \"{other}\"\nprobe_every = \"1s\""),
    );
    std::fs::write(
        &daemon.config,
        config(&daemon.dir, &dovecot, "", &sinks, &fallback("hook")),
    )
    .unwrap();
    daemon.signal(libc::SIGHUP);
    send(&dovecot, "W lost thread");
    wait_until(Duration::from_secs(30), "the sink dead", || {
        daemon.sink_state("hook") == "dead"
    });
    let status = daemon.status();
    let hook_status = &status["sinks"][0];
    assert!(
        hook_status["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("10003"),
        "{status}"
    );
}

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
fn a_webhook_deleted_mid_backlog_is_dead_loses_nothing_and_is_only_probed() {
    let dovecot = Dovecot::start();
    // One request per 2 s per webhook: the backlog drains over several posts.
    let discord = FakeDiscord::start_with(Options {
        rl_limit: 1,
        rl_window: Duration::from_secs(2),
        enforce: true,
        ..Options::default()
    });
    let url = discord.webhook("700", "goneTOKEN", Behaviour::Ok);
    let sinks = webhook("gone", &url, "probe_every = \"1s\"\nprobe_max = \"2s\"");
    let daemon = start("deleted", &dovecot, "", &sinks, &fallback("gone"));
    let subjects: Vec<String> = (0..30).map(|i| format!("Backlog {i:02}")).collect();
    append_all(&dovecot, &subjects);
    assert!(discord.wait_until(Duration::from_secs(30), |d| {
        d.posts_to("goneTOKEN").iter().any(|p| p.status == 200)
    }));
    discord.delete_webhook("goneTOKEN");
    wait_until(Duration::from_secs(30), "the sink dead", || {
        daemon.sink_state("gone") == "dead"
    });
    let died = discord
        .posts_to("goneTOKEN")
        .into_iter()
        .find(|p| p.status == 404)
        .expect("a post was answered 404")
        .at;
    std::thread::sleep(Duration::from_secs(5));
    let after: Vec<Request> = discord
        .requests()
        .into_iter()
        .filter(|r| r.at > died)
        .collect();
    assert_eq!(
        count(&after, "POST", None),
        0,
        "no post to a deleted webhook"
    );
    assert!(
        count(&after, "GET", None) >= 2,
        "probes with GET: {after:?}"
    );
    let dump = daemon.dump();
    assert_eq!(dump.len(), 30, "every mail is in the spool");
    assert!(
        dump.iter().all(|r| r["state"] != "dead"),
        "nothing dead-lettered"
    );
    let owed = pending(&daemon);
    assert!(owed > 0, "some mail still owed");
    assert_eq!(
        discord_status(&daemon)["invalid_requests_10min"],
        0,
        "404s do not count"
    );
    assert_eq!(daemon.status()["indicator"]["pattern"], "dead");
    // The webhook comes back (same URL): a probe revives it and the rest drains, each mail once.
    discord.webhook("700", "goneTOKEN", Behaviour::Ok);
    wait_until(Duration::from_secs(60), "the backlog to drain", || {
        all_delivered(&daemon, 30)
    });
    let titles = discord.delivered_titles("goneTOKEN");
    let mut sorted = titles.clone();
    sorted.sort();
    assert_eq!(sorted, subjects, "each mail exactly once");
    assert_eq!(titles, subjects, "oldest first");
}

#[test]
fn a_dead_sink_probes_on_a_doubling_schedule_and_its_401s_are_counted() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook(
        "800",
        "badTOKEN",
        Behaviour::Status {
            http: 401,
            code: 50027,
        },
    );
    let sinks = webhook("bad", &url, "probe_every = \"1s\"\nprobe_max = \"4s\"");
    let daemon = start("probes", &dovecot, "", &sinks, &fallback("bad"));
    send(&dovecot, "Into the void");
    wait_until(Duration::from_secs(30), "the sink dead", || {
        daemon.sink_state("bad") == "dead"
    });
    std::thread::sleep(Duration::from_secs(13));
    let requests = discord.requests();
    assert_eq!(
        count(&requests, "POST", None),
        1,
        "posted once, then only probed"
    );
    let gets: Vec<Instant> = requests
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.at)
        .collect();
    let post_at = requests.iter().find(|r| r.method == "POST").unwrap().at;
    let mut gaps = vec![secs(gets[0].duration_since(post_at))];
    gaps.extend(gets.windows(2).map(|w| secs(w[1].duration_since(w[0]))));
    // 1 s, doubling, capped at 4 s.
    for (gap, want) in gaps.iter().zip([1.0, 2.0, 4.0, 4.0]) {
        assert!((gap - want).abs() < 0.6, "probe gaps {gaps:?}");
    }
    assert!(gaps.len() >= 4, "probe gaps {gaps:?}");
    // Every 401 the agent received is counted, the post and each probe.
    let counted = || {
        discord_status(&daemon)["invalid_requests_10min"]
            .as_u64()
            .unwrap_or(0)
    };
    wait_until(Duration::from_secs(5), "status to count every 401", || {
        let answered = count(&discord.requests(), "GET", Some(401)) + 1;
        counted() == answered as u64
    });
    assert!(counted() <= 8, "far below Discord's 10,000");
    assert_eq!(pending(&daemon), 1, "the mail stays owed");
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

#[test]
fn a_backlog_drains_most_urgent_first_in_a_tenth_of_the_requests() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start_with(Options {
        rl_limit: 5,
        rl_window: Duration::from_millis(300),
        enforce: true,
        ..Options::default()
    });
    let url = discord.webhook(
        "1000",
        "backlogTOKEN",
        Behaviour::Status {
            http: 404,
            code: 10015,
        },
    );
    let sinks = webhook("main", &url, "probe_every = \"1s\"\nprobe_max = \"1s\"");
    let buckets = format!(
        "{}{}{}",
        bucket("page", "P0", "PAGE", "main"),
        bucket("bill", "P1", "BILL", "main"),
        fallback("main")
    );
    let daemon = start("backlog", &dovecot, "", &sinks, &buckets);
    // 1,000 mails, the urgent ones scattered through the noise.
    let subjects: Vec<String> = (0..1000)
        .map(|i| match i % 50 {
            7 => format!("PAGE {i:04}"),
            3 | 13 | 23 | 33 => format!("BILL {i:04}"),
            _ => format!("noise {i:04}"),
        })
        .collect();
    append_all(&dovecot, &subjects);
    wait_until(Duration::from_secs(120), "1,000 mails spooled", || {
        daemon.dump().len() == 1000
    });
    let before = discord.posts_to("backlogTOKEN").len();
    discord.set_behaviour("backlogTOKEN", Behaviour::Ok);
    wait_until(Duration::from_secs(120), "the backlog to drain", || {
        all_delivered(&daemon, 1000)
    });
    let posts: Vec<Request> = discord
        .posts_to("backlogTOKEN")
        .into_iter()
        .skip(before)
        .collect();
    assert!(
        posts.len() <= 105,
        "{} requests for 1,000 mails",
        posts.len()
    );
    assert_eq!(
        posts.iter().filter(|p| p.status == 429).count(),
        0,
        "paced from the headers, never rate limited"
    );
    let titles = discord.delivered_titles("backlogTOKEN");
    let rank = |t: &String| match &t[..4] {
        "PAGE" => 0,
        "BILL" => 1,
        _ => 3,
    };
    let mut expected = subjects.clone();
    expected.sort_by_key(|t| rank(t));
    assert_eq!(titles.len(), 1000);
    assert_eq!(
        titles, expected,
        "P0, then P1, then the rest, oldest first within each"
    );
}

#[test]
fn refused_embeds_go_plain_and_what_is_refused_twice_is_dead_lettered_and_kept() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let plain = discord.webhook("1101", "plainTOKEN", Behaviour::RejectEmbeds);
    let refuse = discord.webhook(
        "1102",
        "refuseTOKEN",
        Behaviour::Status {
            http: 400,
            code: 50035,
        },
    );
    let sinks = format!(
        "{}{}",
        webhook("plain", &plain, ""),
        webhook("refuse", &refuse, "")
    );
    let buckets = format!("{}{}", bucket("p", "P2", "P", "plain"), fallback("refuse"));
    let daemon = start("rejected", &dovecot, "", &sinks, &buckets);
    send(&dovecot, "P plain one");
    send(&dovecot, "R refused one");
    wait_until(Duration::from_secs(30), "both settled", || {
        daemon
            .dump()
            .iter()
            .filter(|r| r["state"] != "pending")
            .count()
            == 2
    });
    // Embeds refused, plain content accepted: the mail arrives as text.
    let shown = discord.messages_in(&discord.webhook_channel("plainTOKEN"));
    assert_eq!(shown.len(), 1);
    assert!(shown[0].body.get("embeds").is_none());
    assert!(
        shown[0].body["content"]
            .as_str()
            .unwrap_or("")
            .contains("plain one"),
        "{:?}",
        shown[0].body
    );
    // Refused in both forms: dead-lettered with the API's words, still in the spool.
    let dump = daemon.dump();
    let dead = dump
        .iter()
        .find(|r| r["subject"] == "R refused one")
        .unwrap();
    assert_eq!(dead["state"], "dead");
    assert!(
        dead["last_error"].as_str().unwrap_or("").contains("50035"),
        "{dead}"
    );
    let posts = discord.posts_to("refuseTOKEN").len();
    assert_eq!(posts, 2, "the message, then its plain form, once");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        discord.posts_to("refuseTOKEN").len(),
        posts,
        "no retry loop"
    );
    let status = daemon.status();
    let other = status["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "other")
        .unwrap()
        .clone();
    assert_eq!(other["dead"], 1, "{status}");
}
