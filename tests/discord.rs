//! Discord delivery end to end: the real binary, a real Dovecot and the fake Discord. Each test
//! asserts what a user would notice: where a message lands and how often, what `status` and the
//! LED say, and how hard a broken destination is hit.

mod dead_sinks;
mod delivery;
mod rate_limits;

use crate::common::config::Config;
use crate::common::daemon::{mail, Daemon};
use crate::common::dovecot::{Dovecot, PASSWORD};
use crate::common::fake_discord::Request;
use serde_json::Value;
use std::time::Duration;

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
