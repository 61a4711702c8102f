//! The corpus stored in a real Dovecot while the real daemon watches and posts.

use super::{discord_problems, footer_uid, EVERYTHING, FALLBACK, READABLE, UNREADABLE};
use crate::common::config::Config;
use crate::common::corpus::corpus;
use crate::common::daemon::temp_dir;
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn config(dir: &Path, dovecot: &Dovecot, url: &str) -> Config {
    Config::new(dir, dovecot)
        .account("poll_interval = \"300ms\"")
        .sinks(&format!(
            "[[sink]]\nname = \"alerts\"\nkind = \"webhook\"\nurl = \"{url}\""
        ))
        .buckets(&format!(
            r#"
# Matches every mail it can read: only a mail that reads badly reaches the fallback.
[[bucket]]
name = "{EVERYTHING}"
sinks = ["alerts"]
rules = [{{ subject = '^' }}]

[[bucket]]
name = "{FALLBACK}"
sinks = ["alerts"]

[indicator]
spool_warn = 1000
spool_alarm = 2000
"#
        ))
}

/// Stores one raw mail in alice's INBOX with `doveadm save`; when Dovecot refuses the bytes,
/// writes the file into the maildir and lets Dovecot index it. Returns which path was taken.
fn store(dovecot: &Dovecot, name: &str, raw: &[u8]) -> &'static str {
    let mut child = Command::new("doveadm")
        .arg("-c")
        .arg(dovecot.conf_path())
        .args(["save", "-u", "alice", "-m", "INBOX"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn doveadm save");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("doveadm stdin");
        let _ = stdin.write_all(raw);
    }
    let out = child.wait_with_output().expect("doveadm save");
    if out.status.success() {
        return "doveadm save";
    }
    eprintln!(
        "hostile: doveadm save refused {name}: {}; writing the maildir file instead",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let file = dovecot
        .dir()
        .join("mail/alice/new")
        .join(format!("hostile-{name}.localhost"));
    std::fs::write(&file, raw).expect("write maildir file");
    let chown = Command::new("chown")
        .arg("dovecot:dovecot")
        .arg(&file)
        .status()
        .expect("chown");
    assert!(chown.success(), "chown {}", file.display());
    let out = dovecot.doveadm(&["force-resync", "-u", "alice", "INBOX"]);
    assert!(
        out.status.success(),
        "doveadm force-resync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    "maildir file"
}

/// The stored file (maildir `cur/` or `new/`) of the one mail containing `marker`.
fn stored_mail(dovecot: &Dovecot, marker: &[u8]) -> Vec<u8> {
    let maildir = dovecot.dir().join("mail/alice");
    let mut found = Vec::new();
    for sub in ["cur", "new"] {
        for entry in std::fs::read_dir(maildir.join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            if bytes.windows(marker.len()).any(|w| w == marker) {
                found.push(bytes);
            }
        }
    }
    assert_eq!(
        found.len(),
        1,
        "one stored mail contains {:?}",
        String::from_utf8_lossy(marker)
    );
    found.remove(0)
}
#[test]
fn hostile_mail_is_spooled_delivered_and_inert() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("900", "hostileTOKEN", Behaviour::Ok);
    let dir = temp_dir("hostile");
    let mut daemon = config(&dir, &dovecot, &url).start_watching();

    let corpus = corpus();
    let mut paths: HashMap<&str, &str> = HashMap::new();
    for (name, raw) in &corpus {
        paths.insert(name, store(&dovecot, name, raw));
    }
    // The hostile bytes reached the server as they are: the NULs too.
    let stored = stored_mail(&dovecot, b"<nul-bytes@hostile.example>");
    assert!(
        stored.contains(&0),
        "Dovecot kept the NUL bytes of mail nul-bytes"
    );
    let uids = dovecot.uids("alice", "INBOX");
    assert_eq!(
        uids.len(),
        corpus.len(),
        "Dovecot stored every corpus mail once (paths: {paths:?})"
    );
    // Stored one after the other, so UIDs ascend in corpus order.
    let by_uid: HashMap<u32, &str> = uids
        .iter()
        .copied()
        .zip(corpus.iter().map(|c| c.0))
        .collect();
    let uid_of: HashMap<&str, u32> = by_uid.iter().map(|(u, n)| (*n, *u)).collect();

    // Wait until every mail is spooled and settled (or 30 s passed: then report what is wrong).
    let mut problems = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let dump = daemon.dump();
        if dump.len() >= corpus.len() && dump.iter().all(|i| i["state"] != "pending") {
            break;
        }
        if std::time::Instant::now() > deadline || daemon.exited().is_some() {
            problems.push(format!(
                "after 30 s: {} of {} mails spooled, {} still pending",
                dump.len(),
                corpus.len(),
                dump.iter().filter(|i| i["state"] == "pending").count()
            ));
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // The daemon is still up and healthy, and never panicked.
    if daemon.exited().is_some() {
        problems.push(format!("the daemon exited: {:?}", daemon.exited()));
    }
    let log = daemon.log_text();
    if let Some(line) = log.lines().find(|l| l.contains("panicked")) {
        problems.push(format!("the daemon log shows a panic: {line}"));
    }
    let status = daemon.status();
    let account = &status["accounts"][0];
    if account["state"] != "idle" && account["state"] != "polling"
        || !account["last_error"].is_null()
    {
        problems.push(format!("account is not healthy: {account}"));
    }
    if status["sinks"][0]["state"] != "ok" || status["indicator"]["pattern"] != "ok" {
        problems.push(format!(
            "sink {} and LED pattern {} (want ok, ok)",
            status["sinks"][0], status["indicator"]["pattern"]
        ));
    }

    // Every mail spooled exactly once, delivered, in the right bucket, with what was readable.
    let dump = daemon.dump();
    let mut items: HashMap<&str, Vec<&Value>> = HashMap::new();
    for item in &dump {
        let uid = item["uid"].as_u64().unwrap_or(0) as u32;
        match by_uid.get(&uid) {
            Some(name) => items.entry(name).or_default().push(item),
            None => problems.push(format!("spooled item for no corpus mail: {item}")),
        }
    }
    for (name, _) in &corpus {
        let Some(found) = items.get(name) else {
            problems.push(format!("{name}: not in the spool"));
            continue;
        };
        if found.len() != 1 {
            problems.push(format!("{name}: spooled {} times", found.len()));
        }
        let item = found[0];
        if item["state"] != "delivered" {
            problems.push(format!(
                "{name}: state {} ({})",
                item["state"], item["last_error"]
            ));
        }
        let flagged = !item["parse_error"].is_null();
        let want = if flagged { FALLBACK } else { EVERYTHING };
        if item["bucket"] != want {
            problems.push(format!(
                "{name}: bucket {} with parse_error {}",
                item["bucket"], item["parse_error"]
            ));
        }
        if UNREADABLE.contains(name) && !flagged {
            problems.push(format!(
                "{name}: unreadable, yet not flagged (parse_error null)"
            ));
        }
        if let Some((_, text)) = READABLE.iter().find(|(n, _)| n == name) {
            let seen = ["from", "subject", "snippet"]
                .iter()
                .any(|k| item[k].as_str().is_some_and(|v| v.contains(text)));
            if !seen {
                problems.push(format!(
                    "{name}: {text:?} was readable but is not in from/subject/snippet ({:.200})",
                    item.to_string()
                ));
            }
        }
    }

    // What reached Discord: each mail in exactly one acknowledged message, nothing refused,
    // nothing that pings or formats.
    let posts = discord.posts_to("hostileTOKEN");
    let mut delivered: HashMap<u32, usize> = HashMap::new();
    for p in posts.iter().filter(|p| (200..300).contains(&p.status)) {
        for e in p.body["embeds"].as_array().into_iter().flatten() {
            if let Some(uid) = footer_uid(e) {
                *delivered.entry(uid).or_default() += 1;
            }
        }
    }
    for (name, uid) in &uid_of {
        let n = delivered.get(uid).copied().unwrap_or(0);
        if n != 1 {
            problems.push(format!("{name}: delivered {n} times (uid {uid})"));
        }
    }
    problems.extend(discord_problems(&posts, &by_uid));

    // And it still stops cleanly.
    daemon.signal(libc::SIGTERM);
    let code = daemon.wait_exit(Duration::from_secs(15));
    if code != Some(0) {
        problems.push(format!("SIGTERM: exit code {code:?}"));
    }

    eprintln!(
        "hostile: {} mails ({} via doveadm save), {} POSTs",
        corpus.len(),
        paths.values().filter(|p| **p == "doveadm save").count(),
        posts.len()
    );
    assert!(
        problems.is_empty(),
        "{} problem(s) with hostile mail:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
