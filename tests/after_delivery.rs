//! Actions after delivery (`after_delivery = "seen" | "flag" | "move:FOLDER"`), end to end
//! with a real Dovecot and the fake Discord, the mailbox read back over IMAP: nothing happens
//! to a mail Discord has not acknowledged (a 5xx, a 403); once acknowledged it is marked or
//! moved once, a moved mail is not announced again, a SIGKILL between the acknowledgement and
//! the action loses nothing and repeats nothing; a server without `MOVE` moves with `UIDPLUS`
//! and expunges that one mail only, and one without either refuses to move at all; an action
//! done a second time (a crash before it was recorded done) changes nothing, and one whose
//! folder was re-created is refused.

use crate::common::config::Config;
use crate::common::daemon::{cli, mail, wait_until, Daemon};
use crate::common::dovecot::{Dovecot, PASSWORD};
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use mailbeacon::config::{Account, AfterDelivery};
use mailbeacon::imap::action::{apply, Applied, Refused};
use mailbeacon::spool::Action;
use std::time::Duration;

/// One mail as an IMAP client sees it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    uid: u32,
    message_id: String,
    flags: Vec<String>,
}

impl Seen {
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
    }
}

/// alice's `folder` read over IMAP (`EXAMINE`: reading changes nothing); empty when the
/// folder does not exist.
fn folder(dovecot: &Dovecot, folder: &str) -> Vec<Seen> {
    let tcp = std::net::TcpStream::connect(("127.0.0.1", dovecot.imap_port())).expect("connect");
    let mut client = imap::Client::new(tcp);
    client.read_greeting().expect("greeting");
    let mut s = client
        .login("alice", PASSWORD)
        .map_err(|(e, _)| e)
        .expect("login");
    let Ok(mailbox) = s.examine(folder) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if mailbox.exists > 0 {
        for f in s
            .uid_fetch("1:*", "(UID FLAGS ENVELOPE)")
            .expect("fetch")
            .iter()
        {
            let id = f
                .envelope()
                .and_then(|e| e.message_id.as_ref())
                .map(|m| String::from_utf8_lossy(m).to_string())
                .unwrap_or_default();
            out.push(Seen {
                uid: f.uid.unwrap_or(0),
                message_id: id,
                flags: f.flags().iter().map(|fl| fl.to_string()).collect(),
            });
        }
    }
    let _ = s.logout();
    out
}

fn find<'a>(mail: &'a [Seen], id: &str) -> Option<&'a Seen> {
    mail.iter().find(|m| m.message_id == format!("<{id}>"))
}

fn deliver(dovecot: &Dovecot, subject: &str, id: &str) {
    dovecot.deliver(
        "alice",
        "INBOX",
        &mail("Stripe <s@stripe.com>", subject, "paid", id),
    );
}

fn actions_owed(daemon: &Daemon) -> u64 {
    daemon.status()["actions_owed"].as_u64().unwrap_or(u64::MAX)
}

/// A payment is marked seen, everything else is moved to `target`.
fn buckets(target: &str) -> String {
    format!(
        "[[bucket]]\nname = \"stripe\"\nsinks = [\"alerts\"]\nrules = [{{ subject = 'payment' }}]\nafter_delivery = \"seen\"\n\
         [[bucket]]\nname = \"unknown\"\nsinks = [\"alerts\"]\nafter_delivery = \"move:{target}\""
    )
}

fn sink(url: &str) -> String {
    format!("[[sink]]\nname = \"alerts\"\nkind = \"webhook\"\nurl = \"{url}\"")
}

#[test]
fn mail_is_marked_or_moved_only_once_discord_acknowledged_it() {
    let dovecot = Dovecot::start();
    dovecot.doveadm(&["mailbox", "create", "-u", "alice", "Archive"]);
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "afterTOKEN", Behaviour::Status { http: 503, code: 0 });
    let daemon = Config::temp("after", &dovecot)
        .sinks(&sink(&url))
        .buckets(&buckets("Archive"))
        .start_watching();
    deliver(&dovecot, "A payment", "pay@stripe.com");
    deliver(&dovecot, "Lunch?", "lunch@example.org");

    // 503, then 403: the mail stays pending, unseen and where it is. (A failing sink retries
    // the oldest bucket's mail: one of the two is tried.)
    let tried = |daemon: &Daemon| {
        let dump = daemon.dump();
        dump.len() == 2 && dump.iter().any(|i| !i["last_error"].is_null())
    };
    wait_until(Duration::from_secs(20), "a 503", || tried(&daemon));
    discord.set_behaviour(
        "afterTOKEN",
        Behaviour::Status {
            http: 403,
            code: 50013,
        },
    );
    wait_until(Duration::from_secs(30), "the sink dead", || {
        daemon.sink_state("alerts") == "dead"
    });
    let inbox = folder(&dovecot, "INBOX");
    assert_eq!(inbox.len(), 2, "{inbox:?}");
    assert!(inbox.iter().all(|m| !m.has("\\Seen")), "{inbox:?}");
    assert!(folder(&dovecot, "Archive").is_empty());
    assert!(daemon.dump().iter().all(|i| i["state"] == "pending"));
    assert_eq!(actions_owed(&daemon), 0);

    // Acknowledged: the payment is marked seen in place, the other mail moved, each once.
    discord.set_behaviour("afterTOKEN", Behaviour::Ok);
    daemon.signal(libc::SIGHUP);
    wait_until(Duration::from_secs(30), "both actions done", || {
        daemon.dump().iter().all(|i| i["state"] == "delivered") && actions_owed(&daemon) == 0
    });
    let inbox = folder(&dovecot, "INBOX");
    let paid = find(&inbox, "pay@stripe.com").expect("the payment stays in INBOX");
    assert!(paid.has("\\Seen") && !paid.has("\\Flagged"), "{paid:?}");
    assert!(find(&inbox, "lunch@example.org").is_none(), "{inbox:?}");
    let archive = folder(&dovecot, "Archive");
    assert_eq!(archive.len(), 1, "{archive:?}");
    assert!(find(&archive, "lunch@example.org").is_some(), "{archive:?}");
    let log = daemon.log_text();
    assert!(
        log.contains("marked seen") && log.contains("moved to Archive"),
        "{log}"
    );

    // The moved mail is not fetched again: the next mail is the only new message.
    let channel = discord.webhook_channel("afterTOKEN");
    let before = discord.titles_in(&channel).len();
    deliver(&dovecot, "Another payment", "pay2@stripe.com");
    wait_until(Duration::from_secs(20), "the next mail", || {
        discord.titles_in(&channel).len() > before
    });
    wait_until(Duration::from_secs(20), "its action", || {
        actions_owed(&daemon) == 0
            && find(&folder(&dovecot, "INBOX"), "pay2@stripe.com").is_some_and(|m| m.has("\\Seen"))
    });
    let mut titles = discord.titles_in(&channel);
    titles.sort();
    assert_eq!(titles, ["A payment", "Another payment", "Lunch?"]);
}

#[test]
fn an_action_cut_off_by_sigkill_after_the_acknowledgement_is_done_once_after_restart() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "killTOKEN", Behaviour::Ok);
    // "Later" does not exist yet: the move is refused (TRYCREATE) and stays owed.
    let mut daemon = Config::temp("after-kill", &dovecot)
        .sinks(&sink(&url))
        .buckets(&buckets("Later"))
        .start_watching();
    deliver(&dovecot, "Lunch?", "lunch@example.org");
    wait_until(
        Duration::from_secs(20),
        "delivered, the move owed and tried",
        || {
            daemon.dump().iter().all(|i| i["state"] == "delivered")
                && actions_owed(&daemon) == 1
                && daemon.log_text().contains("move:Later failed")
        },
    );
    daemon.kill9();
    dovecot.doveadm(&["mailbox", "create", "-u", "alice", "Later"]);
    assert!(find(&folder(&dovecot, "INBOX"), "lunch@example.org").is_some());

    daemon.spawn();
    wait_until(Duration::from_secs(30), "the move done", || {
        actions_owed(&daemon) == 0
    });
    let later = folder(&dovecot, "Later");
    assert_eq!(later.len(), 1, "moved once: {later:?}");
    assert!(find(&later, "lunch@example.org").is_some());
    assert!(folder(&dovecot, "INBOX").is_empty());
    // Discord heard of it once: the acknowledged delivery was not repeated after the kill.
    let channel = discord.webhook_channel("killTOKEN");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(discord.titles_in(&channel), ["Lunch?"]);
    assert_eq!(actions_owed(&daemon), 0);
}

/// Dovecot's capabilities after login, without `MOVE` (and without `UIDPLUS` unless asked).
fn without_move(uidplus: bool) -> String {
    format!(
        "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE UNSELECT CHILDREN NAMESPACE LITERAL+{}",
        if uidplus { " UIDPLUS" } else { "" }
    )
}

#[test]
fn without_move_a_mail_is_copied_and_only_it_expunged_and_without_uidplus_never_moved() {
    for uidplus in [true, false] {
        let dovecot = Dovecot::start_with(&without_move(uidplus));
        dovecot.doveadm(&["mailbox", "create", "-u", "alice", "Archive"]);
        // Someone else's mail marked deleted, not expunged: it must stay.
        deliver(&dovecot, "Old one", "old@example.org");
        dovecot.doveadm(&[
            "flags",
            "add",
            "-u",
            "alice",
            "\\Deleted",
            "mailbox",
            "INBOX",
            "all",
        ]);
        let discord = FakeDiscord::start();
        let url = discord.webhook("1", "copyTOKEN", Behaviour::Ok);
        let config = Config::temp(&format!("after-copy-{uidplus}"), &dovecot)
            .sinks(&sink(&url))
            .buckets(&buckets("Archive"));
        let probe = cli(&config.write(), &["check", "--probe"]);
        let said = String::from_utf8_lossy(&probe.stdout).to_string();
        let daemon = config.start_watching();
        deliver(&dovecot, "Lunch?", "lunch@example.org");
        let inbox = || folder(&dovecot, "INBOX");
        if uidplus {
            assert!(
                probe.status.success() && said.contains("moved with COPY and UID EXPUNGE"),
                "{said}"
            );
            wait_until(Duration::from_secs(30), "the move done", || {
                actions_owed(&daemon) == 0 && find(&inbox(), "lunch@example.org").is_none()
            });
            let archive = folder(&dovecot, "Archive");
            assert_eq!(archive.len(), 1, "{archive:?}");
            assert!(find(&archive, "lunch@example.org").is_some());
        } else {
            assert!(
                !probe.status.success() && said.contains("neither MOVE nor UIDPLUS"),
                "{said}"
            );
            wait_until(Duration::from_secs(30), "the move refused", || {
                daemon.log_text().contains("neither MOVE nor UIDPLUS")
            });
            assert_eq!(actions_owed(&daemon), 1);
            assert!(find(&inbox(), "lunch@example.org").is_some());
            assert!(folder(&dovecot, "Archive").is_empty());
        }
        let old = find(&inbox(), "old@example.org").cloned();
        assert!(old.is_some_and(|m| m.has("\\Deleted")), "{:?}", inbox());
    }
}

#[test]
fn check_refuses_bad_actions_and_a_move_into_a_watched_folder() {
    let dovecot = Dovecot::start();
    for (value, says) in [
        ("move:", "\"move:\" needs a folder"),
        (
            "archive",
            "is not one of \"seen\", \"flag\", \"move:FOLDER\"",
        ),
        ("move:INBOX", "a folder account \"home\" watches"),
    ] {
        let config = Config::temp("after-check", &dovecot)
            .sinks("[[sink]]\nname = \"alerts\"\nkind = \"webhook\"\nurl = \"https://discord.com/api/webhooks/1/t\"")
            .buckets(&format!(
                "[[bucket]]\nname = \"unknown\"\nsinks = [\"alerts\"]\nafter_delivery = \"{}\"",
                value.replace('"', "\\\"")
            ))
            .write();
        let out = cli(&config, &["check"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{value}: {err}");
        assert!(
            err.contains("bucket[0] (unknown).after_delivery") && err.contains(says),
            "{value}: {err}"
        );
    }
}

/// An action on alice's INBOX as the spool would hold it.
fn action(uidvalidity: u32, uid: u32, after: AfterDelivery) -> Action {
    Action {
        item: 1,
        bucket: "unknown".into(),
        account: "home".into(),
        folder: "INBOX".into(),
        uidvalidity,
        uid,
        action: after,
        owed_at: 0,
        attempts: 0,
        last_error: None,
        copied: false,
    }
}

/// Each action once and then again, as after a crash before it was recorded done.
fn twice(account: &Account, a: Action, copied: &mut Vec<u32>) -> Vec<Applied> {
    let stop = mailbeacon::stop::Stop::new();
    let mut out = Vec::new();
    let mut actions = vec![a];
    for _ in 0..2 {
        let mut note = |a: &Action| copied.push(a.uid);
        let results = apply(
            account,
            "INBOX",
            actions[0].uidvalidity,
            &mut actions,
            &mut note,
            &stop,
        )
        .expect("a session");
        out.push(results[0].clone().expect("done"));
    }
    out
}

#[test]
fn an_action_done_again_changes_nothing_and_a_renumbered_folder_is_refused() {
    for moves in [true, false] {
        let dovecot = Dovecot::start_with(&if moves {
            String::new()
        } else {
            without_move(true)
        });
        dovecot.doveadm(&["mailbox", "create", "-u", "alice", "Archive"]);
        let path = Config::temp(&format!("after-again-{moves}"), &dovecot)
            .webhook("https://discord.com/api/webhooks/1/t")
            .write();
        let config = mailbeacon::config::Config::load(&path).expect("config");
        let account = &config.accounts[0];
        deliver(&dovecot, "Lunch?", "lunch@example.org");
        deliver(&dovecot, "Dinner?", "dinner@example.org");
        let uidvalidity = dovecot.uidvalidity("alice", "INBOX");
        let inbox = folder(&dovecot, "INBOX");
        let uid = |id: &str| find(&inbox, id).map(|m| m.uid).expect("delivered");
        let mut copied = Vec::new();

        let seen = action(uidvalidity, uid("dinner@example.org"), AfterDelivery::Seen);
        assert_eq!(twice(account, seen, &mut copied), [Applied::Done; 2]);
        let archive = AfterDelivery::Move("Archive".into());
        let lunch = uid("lunch@example.org");
        let moved = twice(
            account,
            action(uidvalidity, lunch, archive.clone()),
            &mut copied,
        );
        assert_eq!(moved, [Applied::Done, Applied::Gone]);
        assert_eq!(folder(&dovecot, "Archive").len(), 1, "moved once");
        assert_eq!(copied, if moves { vec![] } else { vec![lunch] });
        let inbox = folder(&dovecot, "INBOX");
        assert_eq!(inbox.len(), 1);
        assert!(find(&inbox, "dinner@example.org").is_some_and(|m| m.has("\\Seen")));

        // The folder re-created: the same UID may name another mail now; nothing is done.
        dovecot.recreate_folder("alice", "INBOX");
        deliver(&dovecot, "Someone else's", "else@example.org");
        let stop = mailbeacon::stop::Stop::new();
        let mut stale = vec![action(uidvalidity, 1, AfterDelivery::Flag)];
        let refused = apply(
            account,
            "INBOX",
            uidvalidity,
            &mut stale,
            &mut |_| {},
            &stop,
        );
        assert!(
            matches!(refused, Err(Refused::Renumbered { .. })),
            "{refused:?}"
        );
        let inbox = folder(&dovecot, "INBOX");
        assert!(inbox.iter().all(|m| !m.has("\\Flagged")), "{inbox:?}");
    }
}
