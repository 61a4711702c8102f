//! Every error Discord documents, and a network that misbehaves, against the real
//! binary: what each does to the sink (`status`), to the mail (`spool dump`) and to Discord
//! (how often it is asked again). A TCP stand-in in front of the fake Discord resets
//! connections, or accepts them and never answers, or passes them through.

use crate::common::config::start_watching;
use crate::common::daemon::{send, wait_until, Daemon};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn sink(daemon: &Daemon, name: &str) -> Value {
    daemon.status()["sinks"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

fn item(daemon: &Daemon, subject: &str) -> Value {
    daemon
        .dump()
        .into_iter()
        .find(|r| r["subject"] == subject)
        .unwrap_or(Value::Null)
}

/// What the agent must do with each answer of the notes' table.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reaction {
    /// Stop posting, probe, keep the mail pending.
    Dead,
    /// Once more as plain text, then dead-letter with Discord's words.
    Rejected,
    /// Back off and retry; the mail is delivered once Discord recovers.
    Transient,
}

const CODES: &[(u16, u32, Reaction)] = &[
    (404, 10015, Reaction::Dead),
    (404, 10003, Reaction::Dead),
    (401, 50027, Reaction::Dead),
    (403, 50001, Reaction::Dead),
    (403, 50013, Reaction::Dead),
    (403, 40333, Reaction::Dead),
    (400, 50035, Reaction::Rejected),
    (400, 50006, Reaction::Rejected),
    (400, 40005, Reaction::Rejected),
    (500, 0, Reaction::Transient),
    (502, 0, Reaction::Transient),
    (503, 130000, Reaction::Transient),
];

#[test]
fn each_status_and_error_code_gets_its_own_reaction() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let (mut sinks, mut buckets) = (String::new(), String::new());
    // A short timeout: the fake (one thread) can leave a request of the first burst of twelve
    // new connections unread; the agent gives up on it and retries, as it would with Discord.
    for (i, (http, code, _)) in CODES.iter().enumerate() {
        let token = format!("t{http}x{code}");
        let url = discord.webhook(
            &format!("{}", 600 + i),
            &token,
            Behaviour::Status {
                http: *http,
                code: *code,
            },
        );
        sinks += &format!("[[sink]]\nname = \"s{http}-{code}\"\nkind = \"webhook\"\nurl = \"{url}\"\nprobe_every = \"1s\"\nprobe_max = \"2s\"\ntimeout = \"3s\"\n");
        buckets += &format!("[[bucket]]\nname = \"b{http}-{code}\"\nsinks = [\"s{http}-{code}\"]\nrules = [{{ subject = '^Code {http}-{code}$' }}]\n");
    }
    buckets += "[[bucket]]\nname = \"other\"\nsinks = [\"s500-0\"]\n";
    let daemon = start_watching("codes", &dovecot, &sinks, &buckets);
    for (http, code, _) in CODES {
        send(&dovecot, &format!("Code {http}-{code}"));
    }
    wait_until(Duration::from_secs(60), "every sink to react", || {
        CODES.iter().all(|(http, code, reaction)| {
            let s = sink(&daemon, &format!("s{http}-{code}"));
            let i = item(&daemon, &format!("Code {http}-{code}"));
            match reaction {
                Reaction::Dead => s["state"] == "dead",
                Reaction::Rejected => i["state"] == "dead",
                Reaction::Transient => s["state"] == "retrying",
            }
        })
    });
    // Long enough for several probes and retries.
    std::thread::sleep(Duration::from_secs(4));
    for (http, code, reaction) in CODES {
        let what = format!("HTTP {http} code {code} ({reaction:?})");
        let s = sink(&daemon, &format!("s{http}-{code}"));
        let i = item(&daemon, &format!("Code {http}-{code}"));
        // Posts Discord answered with this status (a first request that timed out in the
        // crowd of new connections is retried, and is no answer).
        let posts = discord
            .posts_to(&format!("t{http}x{code}"))
            .iter()
            .filter(|p| p.status == *http)
            .count();
        let error = i["last_error"].as_str().unwrap_or("").to_string();
        if *code != 0 {
            assert!(
                error.contains(&code.to_string()),
                "{what}: the mail says why: {i}"
            );
        }
        match reaction {
            Reaction::Dead => {
                assert_eq!(s["state"], "dead", "{what}: {s}");
                assert_eq!(
                    posts, 1,
                    "{what}: a dead sink is probed, never posted to again"
                );
                assert_eq!(i["state"], "pending", "{what}: the mail stays owed");
            }
            Reaction::Rejected => {
                assert_eq!(
                    posts, 2,
                    "{what}: the full message, then once as plain text"
                );
                assert_eq!(i["state"], "dead", "{what}: dead-lettered, kept: {i}");
                assert_ne!(s["state"], "dead", "{what}: the sink itself is fine");
            }
            Reaction::Transient => {
                assert_eq!(s["state"], "retrying", "{what}: {s}");
                assert!(posts >= 2, "{what}: retried ({posts})");
                assert_eq!(i["state"], "pending", "{what}");
            }
        }
    }
    // Discord recovers: every mail a transient error held back is delivered.
    for (http, code, _) in CODES.iter().filter(|c| c.2 == Reaction::Transient) {
        discord.set_behaviour(&format!("t{http}x{code}"), Behaviour::Ok);
    }
    wait_until(
        Duration::from_secs(30),
        "the transient mail delivered",
        || {
            CODES
                .iter()
                .filter(|c| c.2 == Reaction::Transient)
                .all(|(http, code, _)| {
                    item(&daemon, &format!("Code {http}-{code}"))["state"] == "delivered"
                })
        },
    );
}

/// A TCP stand-in on loopback: 0 resets each connection, 1 accepts and never answers, 2 passes
/// bytes through to `target`.
struct Wire {
    port: u16,
    mode: Arc<AtomicU8>,
}

const RESET: u8 = 0;
const HANG: u8 = 1;
const PASS: u8 = 2;

impl Wire {
    fn start(target: &str) -> Wire {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(RESET));
        let (m, target) = (
            mode.clone(),
            target.trim_start_matches("http://").to_string(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                match m.load(Ordering::SeqCst) {
                    RESET => {
                        // Unread bytes at close make the kernel answer with a reset.
                        std::thread::sleep(Duration::from_millis(50));
                        let _ = conn.shutdown(Shutdown::Both);
                    }
                    HANG => {
                        std::thread::spawn(move || {
                            std::thread::sleep(Duration::from_secs(60));
                            drop(conn);
                        });
                    }
                    _ => {
                        let Ok(up) = TcpStream::connect(&target) else {
                            continue;
                        };
                        pipe(conn.try_clone().unwrap(), up.try_clone().unwrap());
                        pipe(up, conn);
                    }
                }
            }
        });
        Wire { port, mode }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

#[test]
fn resets_timeouts_and_a_slow_server_are_retried_never_dead_and_lose_nothing() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("650", "netTOKEN", Behaviour::Ok);
    let wire = Wire::start(&discord.base());
    let url = url.replace(&discord.base(), &format!("http://127.0.0.1:{}", wire.port));
    let sinks = format!(
        "[[sink]]\nname = \"net\"\nkind = \"webhook\"\nurl = \"{url}\"\ntimeout = \"1s\"\n"
    );
    let daemon = start_watching(
        "network",
        &dovecot,
        &sinks,
        "[[bucket]]\nname = \"all\"\nsinks = [\"net\"]\n",
    );

    // Resets: retried with backoff, never dead, not counted as invalid requests.
    send(&dovecot, "Through resets");
    wait_until(Duration::from_secs(20), "the sink retrying", || {
        sink(&daemon, "net")["state"] == "retrying"
    });
    let reset_error = sink(&daemon, "net")["last_error"].to_string();
    // Timeouts: a server that accepts and never answers.
    wire.set(HANG);
    wait_until(Duration::from_secs(20), "a timeout", || {
        sink(&daemon, "net")["last_error"]
            .as_str()
            .is_some_and(|e| {
                e.to_lowercase().contains("timeout") || e.to_lowercase().contains("timed out")
            })
    });
    assert_eq!(
        sink(&daemon, "net")["state"],
        "retrying",
        "a timeout never kills a sink"
    );
    assert_eq!(item(&daemon, "Through resets")["state"], "pending");
    assert_eq!(daemon.status()["discord"]["invalid_requests_10min"], 0);
    // The network heals: delivered, and Discord saw it once (no request reached it before).
    wire.set(PASS);
    wait_until(
        Duration::from_secs(40),
        "delivery through the healed network",
        || item(&daemon, "Through resets")["state"] == "delivered",
    );
    assert_eq!(
        discord.delivered_titles("netTOKEN"),
        ["Through resets"],
        "reset said: {reset_error}"
    );

    // A slow server inside the timeout is just slow.
    discord.set_slow(Some(Duration::from_millis(600)));
    send(&dovecot, "Slow but fine");
    wait_until(Duration::from_secs(20), "the slow delivery", || {
        item(&daemon, "Slow but fine")["state"] == "delivered"
    });
    // One slower than the timeout is retried until it answers in time; the mail may arrive
    // twice (Discord kept a message whose answer came too late), never zero times.
    discord.set_slow(Some(Duration::from_millis(1500)));
    send(&dovecot, "Slower than the timeout");
    wait_until(Duration::from_secs(20), "a timed-out attempt", || {
        discord
            .posts_to("netTOKEN")
            .iter()
            .any(|p| p.raw_body.contains("Slower than the timeout"))
    });
    assert_eq!(item(&daemon, "Slower than the timeout")["state"], "pending");
    discord.set_slow(None);
    wait_until(
        Duration::from_secs(40),
        "delivery once the server is quick again",
        || item(&daemon, "Slower than the timeout")["state"] == "delivered",
    );
    assert_ne!(sink(&daemon, "net")["state"], "dead");
    let titles = discord.delivered_titles("netTOKEN");
    assert!(
        titles.iter().any(|t| t == "Slower than the timeout"),
        "{titles:?}"
    );
}
