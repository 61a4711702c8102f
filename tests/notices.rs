//! Trouble reaches the user wherever they are (docs/operations.md, "Trouble away from home"),
//! against the real binary, a real Dovecot, the fake Discord and a fake heartbeat monitor on
//! 127.0.0.1:
//! - a dead sink that revives before `notify_after` says nothing;
//! - a restart while a trouble is announced does not announce it again;
//! - a refused IMAP login is announced with its remedy, the heartbeat reports failure, then
//!   success once it is fixed, and the end is told;
//! - notices go only to `[notices] sinks`, and in a forum channel each is a post of its own;
//! - a server unreachable, then refusing the login, is told as each (two remedies);
//! - a heartbeat monitor that hangs does not slow delivery;
//! - during quiet hours P3 mail arrives silently (flag 4096), P1 mail and opted-out buckets
//!   notify.
//!
//! Durations are made short by config (`notify_after = "2s"`); no test asserts a tight upper
//! bound on time.

use crate::common::config::Config;
use crate::common::daemon::{send, temp_dir, wait_until};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use crate::common::notices::{all_notices, closed_port, description, notices_to, title, Monitor};
use std::path::Path;
use std::time::{Duration, Instant};

const NOTICE_DEAD: Behaviour = Behaviour::Status {
    http: 403,
    code: 50013,
};

/// Sinks `alerts` (working) and `noise` (probed every second); P3 mail to `noise`.
fn two_sinks(
    dir: &Path,
    dovecot: &Dovecot,
    alerts: &str,
    noise: &str,
    notify_after: &str,
) -> Config {
    Config::new(dir, dovecot)
        .sinks(&format!(
            "[[sink]]\nname = \"alerts\"\nkind = \"webhook\"\nurl = \"{alerts}\"\n\n\
             [[sink]]\nname = \"noise\"\nkind = \"webhook\"\nurl = \"{noise}\"\nprobe_every = \"1s\"\nprobe_max = \"1s\""
        ))
        .buckets(&format!(
            "[[bucket]]\nname = \"unknown\"\nsinks = [\"noise\"]\n\n[notices]\nnotify_after = \"{notify_after}\""
        ))
}

#[test]
fn a_dead_sink_that_revives_before_notify_after_says_nothing() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let alerts = discord.webhook("100", "alertsTOKEN", Behaviour::Ok);
    let noise = discord.webhook("200", "noiseTOKEN", NOTICE_DEAD);
    let dir = temp_dir("notice-blip");
    let daemon = two_sinks(&dir, &dovecot, &alerts, &noise, "15s").start_watching();
    send(&dovecot, "Blip one");
    wait_until(Duration::from_secs(30), "the noise sink to be dead", || {
        daemon.sink_state("noise") == "dead"
    });
    let dead_at = Instant::now();
    // Fixed at once: the next probe revives it and the mail goes out.
    discord.set_behaviour("noiseTOKEN", Behaviour::Ok);
    wait_until(Duration::from_secs(20), "the mail delivered", || {
        !discord.delivered_titles("noiseTOKEN").is_empty()
    });
    assert!(
        dead_at.elapsed() < Duration::from_secs(15),
        "the sink took longer than notify_after to revive; the test proves nothing"
    );
    // Past notify_after (15 s) from the moment it died, and a little more.
    std::thread::sleep(Duration::from_secs(18).saturating_sub(dead_at.elapsed()));
    assert!(
        all_notices(&discord).is_empty(),
        "a blip shorter than notify_after produced a notice: {:?}",
        all_notices(&discord).iter().map(title).collect::<Vec<_>>()
    );
}

#[test]
fn a_restart_while_a_trouble_is_announced_does_not_announce_it_again() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let alerts = discord.webhook("100", "alertsTOKEN", Behaviour::Ok);
    let noise = discord.webhook("200", "noiseTOKEN", NOTICE_DEAD);
    let dir = temp_dir("notice-restart");
    let mut daemon = two_sinks(&dir, &dovecot, &alerts, &noise, "2s").start_watching();
    send(&dovecot, "Held across a restart");
    wait_until(Duration::from_secs(30), "the dead sink announced", || {
        notices_to(&discord, "alertsTOKEN").len() == 1
    });
    // A hard stop (power cut) right after the announcement, and a new start.
    daemon.kill9();
    daemon.spawn();
    wait_until(Duration::from_secs(30), "the noise sink dead again", || {
        daemon.sink_state("noise") == "dead"
    });
    // Well past notify_after after the restart: still the one announcement.
    std::thread::sleep(Duration::from_secs(6));
    let titles: Vec<String> = notices_to(&discord, "alertsTOKEN")
        .iter()
        .map(title)
        .collect();
    assert_eq!(
        titles,
        vec!["Sink noise is dead"],
        "announced again after a restart"
    );
    assert!(
        notices_to(&discord, "noiseTOKEN").is_empty(),
        "never to the dead sink"
    );
}

#[test]
fn notices_go_only_to_the_named_sinks_and_in_a_forum_each_is_a_post_of_its_own() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let alerts = discord.webhook("100", "alertsTOKEN", Behaviour::Ok);
    let board = discord.webhook("300", "boardTOKEN", Behaviour::Ok);
    let forum = discord.webhook_channel("boardTOKEN");
    discord.make_forum(&forum);
    let noise = discord.webhook("200", "noiseTOKEN", NOTICE_DEAD);
    let dir = temp_dir("notice-forum");
    let _daemon = Config::new(&dir, &dovecot)
        .sinks(&format!(
            "[[sink]]\nname = \"alerts\"\nkind = \"webhook\"\nurl = \"{alerts}\"\n\n\
             [[sink]]\nname = \"board\"\nkind = \"webhook\"\nurl = \"{board}\"\nforum = true\n\n\
             [[sink]]\nname = \"noise\"\nkind = \"webhook\"\nurl = \"{noise}\"\nprobe_every = \"1s\"\nprobe_max = \"1s\""
        ))
        .buckets(
            "[[bucket]]\nname = \"unknown\"\nsinks = [\"noise\"]\n\n\
             [notices]\nsinks = [\"board\", \"noise\"]\nnotify_after = \"2s\"",
        )
        .start_watching();
    send(&dovecot, "Held for the board");
    wait_until(
        Duration::from_secs(30),
        "the notice posted in the forum",
        || !discord.posts_in(&forum).is_empty(),
    );
    // The webhook revives at its next probe and the held mail goes out; its end is told.
    discord.set_behaviour("noiseTOKEN", Behaviour::Ok);
    wait_until(Duration::from_secs(30), "the recovery posted", || {
        discord.posts_in(&forum).len() >= 2
    });
    let names: Vec<String> = discord.posts_in(&forum).into_iter().map(|p| p.1).collect();
    assert_eq!(names, ["Sink noise is dead", "Over: Sink noise is dead"]);
    assert!(
        discord
            .posts_to("boardTOKEN")
            .iter()
            .all(|r| (200..300).contains(&r.status)),
        "Discord refused a notice in the forum (220001 without thread_name)"
    );
    let starter = notices_to(&discord, "boardTOKEN");
    assert_eq!(starter.len(), 2, "each notice once");
    assert!(
        description(&starter[1]).contains("1 mail held back meanwhile; all delivered now"),
        "{}",
        description(&starter[1])
    );
    assert!(
        all_notices(&discord)
            .iter()
            .all(|r| r.path.contains("/300/")),
        "a notice went to a sink not named in [notices] sinks, or to the dead one"
    );
}

/// The home account with `password`, one webhook, short notices, and a healthchecks-style
/// heartbeat every second whose URL is read from a file.
fn imap_config(dir: &Path, dovecot: &Dovecot, alerts: &str, password: &str, hb: &Path) -> Config {
    Config::new(dir, dovecot)
        .account(&format!("password = \"{password}\""))
        .webhook(alerts)
        .sinks(&format!(
            "[notices]\nnotify_after = \"2s\"\n\n[heartbeat]\nurl_file = \"{}\"\nevery = \"1s\"\nstyle = \"healthchecks\"",
            hb.display()
        ))
}

#[test]
fn a_refused_login_is_announced_with_its_remedy_and_the_heartbeat_reports_it_until_fixed() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let alerts = discord.webhook("100", "alertsTOKEN", Behaviour::Ok);
    let monitor = Monitor::start(None);
    let dir = temp_dir("notice-imap");
    let hb = dir.join("heartbeat.url");
    std::fs::write(&hb, format!("{}/ping/SECRETUUID\n", monitor.base)).unwrap();
    let daemon = imap_config(&dir, &dovecot, &alerts, "wrong", &hb).start();

    wait_until(
        Duration::from_secs(40),
        "the refused login announced",
        || !notices_to(&discord, "alertsTOKEN").is_empty(),
    );
    let notice = &notices_to(&discord, "alertsTOKEN")[0];
    assert_eq!(title(notice), "IMAP home/INBOX: login refused");
    assert!(
        description(notice).contains("password"),
        "{}",
        description(notice)
    );
    wait_until(
        Duration::from_secs(20),
        "the heartbeat to report failure",
        || {
            monitor
                .calls()
                .iter()
                .any(|c| c.method == "POST" && c.url == "/ping/SECRETUUID/fail")
        },
    );
    let fail = monitor
        .calls()
        .into_iter()
        .find(|c| c.url.ends_with("/fail"))
        .unwrap();
    assert!(
        fail.body.contains("login refused"),
        "one-line reason: {}",
        fail.body
    );

    // The operator fixes the password and reloads.
    imap_config(
        &dir,
        &dovecot,
        &alerts,
        crate::common::dovecot::PASSWORD,
        &hb,
    )
    .write();
    daemon.signal(libc::SIGHUP);
    wait_until(Duration::from_secs(30), "the recovery told", || {
        notices_to(&discord, "alertsTOKEN").len() >= 2
    });
    let over = &notices_to(&discord, "alertsTOKEN")[1];
    assert_eq!(title(over), "Over: IMAP home/INBOX: login refused");
    assert!(
        description(over).contains("waited on the server"),
        "{}",
        description(over)
    );
    wait_until(
        Duration::from_secs(20),
        "the heartbeat healthy again",
        || {
            let calls = monitor.calls();
            let last_fail = calls.iter().rposition(|c| c.url.ends_with("/fail"));
            last_fail.is_some_and(|i| calls[i + 1..].iter().any(|c| c.url == "/ping/SECRETUUID"))
        },
    );
    let status = daemon.status();
    assert_eq!(status["heartbeat"]["reported_healthy"], true, "{status}");
    assert!(
        status["heartbeat"]["reported_down"].as_u64().unwrap_or(0) >= 1,
        "{status}"
    );
    assert!(
        !status.to_string().contains("SECRETUUID"),
        "heartbeat URL in status"
    );
    assert!(
        !daemon.log_text().contains("SECRETUUID"),
        "heartbeat URL in the log"
    );
}

#[test]
fn a_server_unreachable_then_refusing_the_login_is_told_as_each() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let alerts = discord.webhook("100", "alertsTOKEN", Behaviour::Ok);
    let dir = temp_dir("notice-change");
    let closed = closed_port();
    let config = |keys: &str| {
        Config::new(&dir, &dovecot)
            .account(keys)
            .webhook(&alerts)
            .sinks("[notices]\nnotify_after = \"2s\"")
    };
    let daemon = config(&format!("port = {closed}")).start();
    wait_until(
        Duration::from_secs(30),
        "the unreachable server told",
        || !notices_to(&discord, "alertsTOKEN").is_empty(),
    );
    assert_eq!(
        title(&notices_to(&discord, "alertsTOKEN")[0]),
        "IMAP home/INBOX: unreachable"
    );
    // The server answers again, and refuses the login: another remedy, so another notice.
    config("password = \"wrong\"").write();
    daemon.signal(libc::SIGHUP);
    wait_until(Duration::from_secs(30), "the refused login told", || {
        notices_to(&discord, "alertsTOKEN").len() >= 2
    });
    let refused = &notices_to(&discord, "alertsTOKEN")[1];
    assert_eq!(title(refused), "IMAP home/INBOX: login refused");
    assert!(
        description(refused).contains("Check the password"),
        "{}",
        description(refused)
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        notices_to(&discord, "alertsTOKEN").len(),
        2,
        "one notice per state"
    );
}

#[test]
fn a_hanging_heartbeat_monitor_does_not_slow_delivery() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let alerts = discord.webhook("100", "alertsTOKEN", Behaviour::Ok);
    // Every answer takes a minute; the agent waits up to 50 s for each.
    let monitor = Monitor::start(Some(Duration::from_secs(60)));
    let dir = temp_dir("notice-hang");
    let _daemon = Config::new(&dir, &dovecot)
        .webhook(&alerts)
        .sinks(&format!(
            "[heartbeat]\nurl = \"{}/ping/HANG\"\nevery = \"1s\"\ntimeout = \"50s\"",
            monitor.base
        ))
        .start_watching();
    wait_until(
        Duration::from_secs(20),
        "a heartbeat call in progress",
        || !monitor.calls().is_empty(),
    );
    let sent = Instant::now();
    send(&dovecot, "Through a hanging heartbeat");
    // Were delivery waiting on the heartbeat, this would take 50 s or more.
    wait_until(Duration::from_secs(30), "the mail delivered", || {
        discord.delivered_titles("alertsTOKEN") == vec!["Through a hanging heartbeat"]
    });
    eprintln!("delivered {:?} after it was sent", sent.elapsed());
    assert_eq!(
        monitor.calls().len(),
        1,
        "one call at a time, never a pile-up"
    );
}

/// `"HH:MM-HH:MM"` from an hour before to an hour after the present local time.
fn quiet_now() -> String {
    use chrono::Timelike;
    let now = chrono::Local::now();
    let m = (now.hour() * 60 + now.minute()) as i64;
    let hm = |m: i64| {
        let m = m.rem_euclid(24 * 60);
        format!("{:02}:{:02}", m / 60, m % 60)
    };
    format!("{}-{}", hm(m - 60), hm(m + 60))
}

#[test]
fn during_quiet_hours_p3_mail_arrives_silently_and_p1_mail_notifies() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let alerts = discord.webhook("100", "alertsTOKEN", Behaviour::Ok);
    let dir = temp_dir("notice-quiet");
    let _daemon = Config::new(&dir, &dovecot)
        .sinks(&format!("[[sink]]\nname = \"alerts\"\nkind = \"webhook\"\nurl = \"{alerts}\""))
        .buckets(&format!(
            "[[bucket]]\nname = \"vip\"\nseverity = \"P1\"\nsinks = [\"alerts\"]\nrules = [{{ subject = 'Urgent' }}]\n\n\
             [[bucket]]\nname = \"loud\"\nseverity = \"P3\"\nquiet = false\nsinks = [\"alerts\"]\nrules = [{{ subject = 'Loud' }}]\n\n\
             [[bucket]]\nname = \"unknown\"\nseverity = \"P3\"\nsinks = [\"alerts\"]\n\n\
             [indicator]\nquiet_hours = \"{}\"",
            quiet_now()
        ))
        .start_watching();
    for s in ["Urgent invoice", "Loud newsletter", "Quiet newsletter"] {
        send(&dovecot, s);
    }
    wait_until(Duration::from_secs(30), "three mails delivered", || {
        discord.delivered_titles("alertsTOKEN").len() == 3
    });
    let flags = |subject: &str| {
        discord
            .posts_to("alertsTOKEN")
            .into_iter()
            .find(|r| r.embed_titles().contains(&subject.to_string()))
            .map(|r| r.body["flags"].as_u64().unwrap_or(0))
            .unwrap()
    };
    assert_eq!(
        flags("Quiet newsletter") & 4096,
        4096,
        "P3 in quiet hours is silent"
    );
    assert_eq!(flags("Urgent invoice") & 4096, 0, "P1 always notifies");
    assert_eq!(flags("Loud newsletter") & 4096, 0, "quiet = false opts out");
}
