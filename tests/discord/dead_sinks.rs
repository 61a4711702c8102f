//! A dead destination: a webhook deleted mid-backlog, the probes' doubling schedule and the
//! 401s they count.

use super::{
    all_delivered, append_all, count, discord_status, fallback, pending, secs, send, start, webhook,
};
use crate::common::daemon::wait_until;
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord, Options, Request};
use std::time::{Duration, Instant};

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
