//! Watching mailboxes like a production mail client, against a real Dovecot: IDLE brings mail
//! at once and survives a server restart and its own renewals; a server without IDLE is
//! polled; a re-created mailbox (new UIDVALIDITY) repeats nothing and loses nothing; several
//! accounts and folders each keep their own cursor, and a missing folder is named as such; the
//! first run honours `start_at` and `backfill` and never marks mail as read.

use crate::common::config::Config;
use crate::common::daemon::{mail, wait_until, Daemon};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use serde_json::Value;
use std::time::{Duration, Instant};

/// One `[[account]]` on the test Dovecot with a short read timeout, so a server that goes
/// away is noticed within seconds.
fn account(dovecot: &Dovecot, name: &str, user: &str, extra: &str) -> String {
    crate::common::config::account(dovecot, name, user, &format!("timeout = \"5s\"\n{extra}"))
}

/// The daemon watching `accounts`, every mail to one webhook.
fn start(tag: &str, dovecot: &Dovecot, accounts: &str, url: &str) -> Daemon {
    Config::temp(tag, dovecot)
        .accounts(accounts)
        .webhook(url)
        .start()
}

fn subjects(dump: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = dump
        .iter()
        .map(|i| i["subject"].as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

fn account_row(status: &Value, name: &str, folder: &str) -> Value {
    status["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["name"] == name && a["folder"] == folder)
        .cloned()
        .unwrap_or(Value::Null)
}

fn watching(daemon: &Daemon, name: &str, folder: &str) -> bool {
    daemon
        .try_status()
        .is_some_and(|s| account_row(&s, name, folder)["state"] == "idle")
}

#[test]
fn idle_brings_mail_at_once_and_survives_a_server_restart() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "idleTOKEN", Behaviour::Ok);
    // An hour between polls: only IDLE can bring mail within seconds.
    let acct = account(
        &dovecot,
        "home",
        "alice",
        "poll_interval = \"1h\"\nidle_renew = \"10s\"",
    );
    let daemon = start("idle", &dovecot, &acct, &url);
    wait_until(Duration::from_secs(20), "INBOX watched", || {
        watching(&daemon, "home", "INBOX")
    });

    let sent = Instant::now();
    dovecot.deliver(
        "alice",
        "INBOX",
        &mail("a@example.org", "Idle one", "x", "i1@x"),
    );
    wait_until(Duration::from_secs(5), "IDLE to bring the mail", || {
        daemon.dump().len() == 1
    });
    eprintln!("IDLE: APPEND → spooled in {:?}", sent.elapsed());

    // The server goes away mid-IDLE: health says so, with the kind of failure.
    dovecot.stop();
    wait_until(
        Duration::from_secs(10),
        "the account to show backoff",
        || {
            let row = account_row(&daemon.status(), "home", "INBOX");
            row["state"] == "backoff" && row["last_error"].as_str().is_some_and(|e| !e.is_empty())
        },
    );
    dovecot.restart();
    // Mail that lands before the watcher is back is found by the poll on reconnect.
    dovecot.deliver(
        "alice",
        "INBOX",
        &mail("a@example.org", "While away", "x", "i2@x"),
    );
    wait_until(Duration::from_secs(30), "reconnected and caught up", || {
        daemon.dump().len() == 2 && watching(&daemon, "home", "INBOX")
    });

    // Past one IDLE renewal the connection still brings mail at once.
    std::thread::sleep(Duration::from_secs(12));
    let sent = Instant::now();
    dovecot.deliver(
        "alice",
        "INBOX",
        &mail("a@example.org", "After renewal", "x", "i3@x"),
    );
    wait_until(Duration::from_secs(5), "IDLE after renewal", || {
        daemon.dump().len() == 3
    });
    eprintln!("IDLE after renewal: {:?}", sent.elapsed());

    let dump = daemon.dump();
    assert_eq!(
        subjects(&dump),
        ["After renewal", "Idle one", "While away"],
        "each mail exactly once"
    );
    wait_until(Duration::from_secs(10), "all delivered", || {
        discord.delivered_titles("idleTOKEN").len() == 3
    });
    // BODY.PEEK: watching never marks mail as read.
    for uid in dovecot.uids("alice", "INBOX") {
        assert!(
            !dovecot.is_seen("alice", "INBOX", uid),
            "uid {uid} marked seen"
        );
    }
}

#[test]
fn a_server_without_idle_is_polled() {
    let dovecot = Dovecot::start_with(
        "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ UIDPLUS",
    );
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "pollTOKEN", Behaviour::Ok);
    let acct = account(&dovecot, "home", "alice", "poll_interval = \"2s\"");
    let daemon = start("noidle", &dovecot, &acct, &url);
    wait_until(Duration::from_secs(20), "INBOX watched", || {
        watching(&daemon, "home", "INBOX")
    });
    assert!(
        daemon.log_text().contains("does not offer IDLE"),
        "{}",
        daemon.log_text()
    );
    for i in 0..3 {
        dovecot.deliver(
            "alice",
            "INBOX",
            &mail(
                "p@example.org",
                &format!("Polled {i}"),
                "x",
                &format!("p{i}@x"),
            ),
        );
    }
    wait_until(Duration::from_secs(10), "the poll to find the mail", || {
        daemon.dump().len() == 3
    });
    assert_eq!(
        subjects(&daemon.dump()),
        ["Polled 0", "Polled 1", "Polled 2"]
    );
}

#[test]
fn a_recreated_mailbox_repeats_nothing_and_loses_nothing() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "uvTOKEN", Behaviour::Ok);
    dovecot.deliver(
        "alice",
        "Work",
        &mail("w@example.org", "Before", "x", "before@x"),
    );
    let acct = account(
        &dovecot,
        "home",
        "alice",
        "folders = [\"Work\"]\npoll_interval = \"2s\"",
    );
    let daemon = start("uidvalidity", &dovecot, &acct, &url);
    wait_until(Duration::from_secs(20), "Work watched", || {
        watching(&daemon, "home", "Work")
    });
    let a = mail("w@example.org", "Alpha", "x", "alpha@x");
    dovecot.deliver("alice", "Work", &a);
    dovecot.deliver(
        "alice",
        "Work",
        &mail("w@example.org", "Beta", "x", "beta@x"),
    );
    wait_until(Duration::from_secs(10), "two mails spooled", || {
        daemon.dump().len() == 2
    });
    let old_validity = account_row(&daemon.status(), "home", "Work")["uidvalidity"].clone();

    // The folder is deleted and re-created: new UIDVALIDITY, UIDs from 1 again. Alpha is
    // copied back (a restore), and Gamma is new.
    dovecot.recreate_folder("alice", "Work");
    dovecot.deliver("alice", "Work", &a);
    dovecot.deliver(
        "alice",
        "Work",
        &mail("w@example.org", "Gamma", "x", "gamma@x"),
    );
    wait_until(Duration::from_secs(30), "the new folder caught up", || {
        let row = account_row(&daemon.status(), "home", "Work");
        row["uidvalidity"] != old_validity && daemon.dump().len() >= 3
    });
    // A restore may trickle in after the rescan: still no repeat.
    dovecot.deliver(
        "alice",
        "Work",
        &mail("w@example.org", "Beta", "x", "beta@x"),
    );
    dovecot.deliver(
        "alice",
        "Work",
        &mail("w@example.org", "Delta", "x", "delta@x"),
    );
    wait_until(Duration::from_secs(10), "Delta spooled", || {
        subjects(&daemon.dump()).contains(&"Delta".to_string())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        subjects(&daemon.dump()),
        ["Alpha", "Beta", "Delta", "Gamma"],
        "mail from before the first run stays out, nothing repeats, nothing is lost"
    );
    assert!(daemon.log_text().contains("UIDVALIDITY changed"));
}

#[test]
fn several_accounts_and_folders_each_keep_their_own_cursor() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "manyTOKEN", Behaviour::Ok);
    let accounts = account(
        &dovecot,
        "alice",
        "alice",
        "folders = [\"INBOX\", \"Work\", \"Missing\"]\npoll_interval = \"2s\"",
    ) + &account(
        &dovecot,
        "bob",
        "bob",
        "folders = [\"INBOX\", \"Alerts\"]\npoll_interval = \"2s\"",
    );
    // The folders exist before the first run (except Missing).
    for (user, folder) in [("alice", "Work"), ("bob", "Alerts")] {
        dovecot.deliver(user, folder, &mail("o@example.org", "Old", "x", "old@x"));
    }
    let daemon = start("many", &dovecot, &accounts, &url);
    let boxes = [
        ("alice", "INBOX"),
        ("alice", "Work"),
        ("bob", "INBOX"),
        ("bob", "Alerts"),
    ];
    wait_until(Duration::from_secs(30), "four mailboxes watched", || {
        boxes.iter().all(|(a, f)| watching(&daemon, a, f))
    });
    wait_until(Duration::from_secs(10), "the missing folder named", || {
        let row = account_row(&daemon.status(), "alice", "Missing");
        row["state"] == "mailbox_missing"
            && row["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("Missing"))
    });
    for (user, folder) in boxes {
        for i in 0..2 {
            dovecot.deliver(
                user,
                folder,
                &mail(
                    "n@example.org",
                    &format!("{user} {folder} {i}"),
                    "x",
                    &format!("{user}.{folder}.{i}@x"),
                ),
            );
        }
    }
    wait_until(Duration::from_secs(20), "eight mails spooled", || {
        daemon.dump().len() == 8
    });
    let dump = daemon.dump();
    for item in &dump {
        let subject = item["subject"].as_str().unwrap_or_default();
        let expected = format!(
            "{} {} ",
            item["account"].as_str().unwrap_or_default(),
            item["folder"].as_str().unwrap_or_default()
        );
        assert!(subject.starts_with(&expected), "{item}");
    }
    let status = daemon.status();
    for (user, folder) in boxes {
        let row = account_row(&status, user, folder);
        assert_eq!(
            row["uidvalidity"].as_u64(),
            Some(u64::from(dovecot.uidvalidity(user, folder))),
            "{row}"
        );
        assert_eq!(
            row["last_uid"].as_u64(),
            Some(u64::from(dovecot.uidnext(user, folder) - 1)),
            "{row}"
        );
    }
    // The health line names the broken folder; the LED shows trouble.
    assert_eq!(status["indicator"]["pattern"], "dead", "{status}");
}

#[test]
fn the_first_run_honours_start_at_and_backfill() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "firstTOKEN", Behaviour::Ok);
    let now = chrono::Utc::now().fixed_offset();
    let days = |d: i64| now - chrono::TimeDelta::days(d);
    let m = |subject: &str| mail("f@example.org", subject, "x", &format!("{subject}@x"));
    dovecot.append_received("alice", "INBOX", &m("Ten days old"), days(10), false);
    dovecot.append_received("alice", "INBOX", &m("Yesterday"), days(1), false);
    dovecot.append_received("alice", "INBOX", &m("Yesterday read"), days(1), true);
    let accounts = [
        ("unseen2d", "start_at = \"unseen\"\nbackfill = \"2d\""),
        ("all", "start_at = \"all\""),
        ("now", ""),
    ]
    .iter()
    .map(|(name, extra)| {
        account(
            &dovecot,
            name,
            "alice",
            &format!("{extra}\npoll_interval = \"2s\""),
        )
    })
    .collect::<String>();
    let daemon = start("first-run", &dovecot, &accounts, &url);
    wait_until(Duration::from_secs(30), "three accounts watched", || {
        ["unseen2d", "all", "now"]
            .iter()
            .all(|a| watching(&daemon, a, "INBOX"))
    });
    let of = |account: &str| {
        let mine: Vec<Value> = daemon
            .dump()
            .into_iter()
            .filter(|i| i["account"] == account)
            .collect();
        subjects(&mine)
    };
    assert_eq!(of("unseen2d"), ["Yesterday"]);
    assert_eq!(of("all"), ["Ten days old", "Yesterday", "Yesterday read"]);
    assert!(of("now").is_empty());
    // New mail reaches every account, whatever it started with.
    dovecot.deliver("alice", "INBOX", &m("Fresh"));
    wait_until(Duration::from_secs(10), "fresh mail everywhere", || {
        ["unseen2d", "all", "now"]
            .iter()
            .all(|a| of(a).contains(&"Fresh".to_string()))
    });
    // Backfilling did not mark anything read.
    let uids = dovecot.uids("alice", "INBOX");
    let seen = uids
        .iter()
        .filter(|u| dovecot.is_seen("alice", "INBOX", **u))
        .count();
    assert_eq!(seen, 1, "only the mail appended as read is read");
}

#[test]
fn server_restarts_mid_fetch_lose_nothing_and_repeat_nothing() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "restartTOKEN", Behaviour::Ok);
    let acct = account(&dovecot, "home", "alice", "poll_interval = \"2s\"");
    let daemon = start("restart-fetch", &dovecot, &acct, &url);
    wait_until(Duration::from_secs(20), "INBOX watched", || {
        watching(&daemon, "home", "INBOX")
    });
    let mut sent = 0;
    for round in 0..3 {
        for _ in 0..120 {
            dovecot.deliver(
                "alice",
                "INBOX",
                &mail(
                    "r@example.org",
                    &format!("Mail {sent:04}"),
                    "x",
                    &format!("m{sent}@x"),
                ),
            );
            sent += 1;
        }
        // Cut the server while the watcher is still fetching this round.
        let spooled = daemon.dump().len();
        eprintln!("round {round}: {spooled}/{sent} spooled when the server went away");
        dovecot.restart();
    }
    wait_until(Duration::from_secs(60), "every mail spooled", || {
        daemon.dump().len() >= sent
    });
    std::thread::sleep(Duration::from_secs(3));
    let dump = daemon.dump();
    let mut got = subjects(&dump);
    got.dedup();
    assert_eq!(got.len(), sent, "nothing lost");
    assert_eq!(dump.len(), sent, "nothing spooled twice");
}
