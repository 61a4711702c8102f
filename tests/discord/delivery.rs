//! Where a message lands and how often: a bot's nonce and a lost answer, threads, a backlog
//! drained most urgent first, refused embeds sent plain and then dead-lettered.

use super::{all_delivered, append_all, bucket, fallback, send, start, webhook};
use crate::common::config::config;
use crate::common::daemon::wait_until;
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord, Options, Request};
use std::time::Duration;

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
