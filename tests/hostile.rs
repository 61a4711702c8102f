//! Hostile mail against the real binary. A corpus generated here (bad encodings, missing and
//! 8-bit headers, NUL bytes, a 10 MB attachment, 50 nested multiparts, a 4,000-character subject,
//! a 1 MB header line, mention and markdown injection, bidi overrides, zero-width characters,
//! invalid UTF-8, …) is stored in a real Dovecot while the daemon watches the mailbox and posts
//! to the fake Discord. What a user would notice is asserted: the daemon keeps running and
//! healthy, every mail is spooled exactly once and delivered exactly once, Discord never refused
//! a payload, nothing from a mail can ping or format, and a mail that reads badly lands in the
//! fallback bucket with whatever could be read.

use crate::common::config::Config;
use crate::common::corpus::{b64, corpus, mail_dated};
use crate::common::daemon::temp_dir;
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord, Request};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The bucket every readable mail lands in (its rule matches any subject).
const EVERYTHING: &str = "everything";
/// The fallback bucket: no rules; takes every mail that reads badly.
const FALLBACK: &str = "unknown";

/// Mails that cannot be read as a message at all: each must be flagged and in the fallback.
const UNREADABLE: &[&str] = &[
    "empty",
    "just-crlf",
    "binary-garbage",
    "no-header-block",
    "no-from-subject-or-id",
    "1mb-filler-header-first",
    // From and Subject lie beyond the first 64 KiB, the most the daemon reads of a mail.
    "20000-headers",
];

/// (mail, text that must still be found in the spooled item): "whatever was readable".
const READABLE: &[(&str, &str)] = &[
    ("no-header-block", "nothing but text"),
    ("no-from-subject-or-id", "body is still readable"),
    ("nul-bytes", "nul in the body"),
    ("header-without-colon", "after the broken line"),
    ("bare-lf", "bare line feeds"),
    ("multipart-never-closed", "closing boundary never comes"),
    ("multipart-nested-50", "fifty levels down"),
    ("attachment-10mb", "report attached"),
    ("base64-not-base64", "base64 that is not"),
    ("utf8-headers-8bit", "Grüße"),
];

// ------------------------------------------------------------------------------------ checks

#[test]
fn the_corpus_is_what_it_claims() {
    let c = corpus();
    let names: Vec<&str> = c.iter().map(|(n, _)| *n).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "corpus names are unique");
    for n in UNREADABLE.iter().chain(READABLE.iter().map(|(n, _)| n)) {
        assert!(names.contains(n), "{n} is in the corpus");
    }
    let size = |n: &str| c.iter().find(|(x, _)| *x == n).map_or(0, |(_, b)| b.len());
    assert!(size("attachment-10mb") >= 10_000_000);
    assert!(size("subject-1mb") >= 1 << 20);
    assert_eq!(b64(b"@everyone"), "QGV2ZXJ5b25l");
}

/// Every corpus mail read in-process, in full (the daemon reads only the first 64 KiB): the
/// reader never panics and never returns more than it promised.
#[test]
fn every_corpus_mail_is_summarised_without_a_panic() {
    let mut panicked = Vec::new();
    for (name, raw) in corpus() {
        match std::panic::catch_unwind(|| mailbeacon::mail::summarize(&raw)) {
            Ok(s) => assert!(
                s.snippet.chars().count() <= mailbeacon::mail::SNIPPET_CHARS,
                "{name}: snippet too long"
            ),
            Err(_) => panicked.push(name),
        }
    }
    assert!(
        panicked.is_empty(),
        "the mail reader panicked on {panicked:?}"
    );
}

/// `spool dump` promises RFC 3339 UTC times (docs/design.md, "Times"); the `date` of an item is the
/// mail's Date header as [`summarize`](mailbeacon::mail::summarize) reads it.
#[test]
fn a_mails_date_is_spooled_as_rfc3339_utc_or_not_at_all() {
    let cases = [
        (
            "Tue, 01 Sep 2026 12:00:00 +0200",
            Some("2026-09-01T10:00:00Z"),
        ),
        ("31 Dec 2026 23:59:59 -1200", Some("2027-01-01T11:59:59Z")),
        ("Tue, 31 Feb 2026 25:61:61 +9999", None),
    ];
    let mut wrong = Vec::new();
    for (header, want) in cases {
        let got = mailbeacon::mail::summarize(&mail_dated("date", header)).date;
        let valid = got
            .as_deref()
            .is_none_or(|d| chrono::DateTime::parse_from_rfc3339(d).is_ok() && d.ends_with('Z'));
        if !valid || (want.is_some() && got.as_deref() != want) {
            wrong.push(format!("Date: {header} → {got:?} (want {want:?})"));
        }
    }
    assert!(
        wrong.is_empty(),
        "dates not in RFC 3339 UTC:\n{}",
        wrong.join("\n")
    );
}

/// A multipart without a boundary parameter is malformed, but its text is plainly there: it
/// must reach the snippet (or the mail must be flagged and its raw text kept).
#[test]
fn a_multipart_without_a_boundary_keeps_its_text() {
    let raw = corpus()
        .into_iter()
        .find(|(n, _)| *n == "multipart-no-boundary")
        .map(|(_, raw)| raw)
        .expect("in the corpus");
    let s = mailbeacon::mail::summarize(&raw);
    assert!(
        s.snippet.contains("no boundary at all"),
        "snippet {:?}, parse_error {:?}",
        s.snippet,
        s.parse_error
    );
}

/// The daemon reads at most the first 64 KiB of a mail, so a long header block ends in the
/// middle of a header; what was read of that header is still the best there is.
#[test]
fn a_header_cut_off_by_the_end_of_the_data_is_still_read() {
    let cut = b"From: c@example.org\r\nSubject: the last header, cut off".to_vec();
    let s = mailbeacon::mail::summarize(&cut);
    assert_eq!(s.subject, "the last header, cut off");
}

// ------------------------------------------------------------------------ the real daemon

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

/// Every string in a JSON value except under `allowed_mentions`, with its path.
fn strings(v: &Value, path: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((path, s.clone())),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                strings(x, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                if k != "allowed_mentions" {
                    strings(x, format!("{path}.{k}"), out);
                }
            }
        }
        _ => {}
    }
}

/// Discord's limits, counted in code points like Discord does; the first one broken.
fn over_limit(body: &Value) -> Option<String> {
    let n = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    if n(&body["content"]) > 2000 {
        return Some("content > 2000".into());
    }
    let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
    if embeds.len() > 10 {
        return Some("more than 10 embeds".into());
    }
    let mut total = 0;
    for e in &embeds {
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        let checks = [
            ("title", n(&e["title"]), 256),
            ("description", n(&e["description"]), 4096),
            ("footer", n(&e["footer"]["text"]), 2048),
            ("author", n(&e["author"]["name"]), 256),
            ("fields", fields.len(), 25),
        ];
        for (what, len, max) in checks {
            if len > max {
                return Some(format!("{what} {len} > {max}"));
            }
        }
        total += n(&e["title"]) + n(&e["description"]) + n(&e["footer"]["text"]);
        total += n(&e["author"]["name"]);
        for f in &fields {
            if n(&f["name"]) > 256 || n(&f["value"]) > 1024 {
                return Some("field name > 256 or value > 1024".into());
            }
            total += n(&f["name"]) + n(&f["value"]);
        }
    }
    (total > 6000).then(|| format!("embeds total {total} > 6000"))
}

/// Markdown that would format, link or quote: a special character not escaped by a backslash.
fn unescaped_markdown(s: &str) -> Option<char> {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '_' | '~' | '|' | '`' | '[' | ']' | '(' | ')' | '<' | '>' | '#' => {
                return Some(c)
            }
            _ => {}
        }
    }
    None
}

/// What in a rendered string could ping, pretend to be a mention, or disguise text.
fn inert_problem(s: &str) -> Option<String> {
    let mention = regex::Regex::new(r"<@[!&]?[0-9]|<#[0-9]|</[^>\\]*:[0-9]").expect("regex");
    if let Some(m) = mention.find(s) {
        return Some(format!("mention syntax {:?}", m.as_str()));
    }
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '@' && it.peek() != Some(&'\u{200B}') {
            return Some("an '@' not neutralised by U+200B".into());
        }
        if matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
            return Some(format!("bidi control U+{:04X}", c as u32));
        }
        if c.is_control() && c != '\n' {
            return Some(format!("control character U+{:04X}", c as u32));
        }
    }
    None
}

/// The UID in an embed footer (`bucket · account/folder · uid N`).
fn footer_uid(embed: &Value) -> Option<u32> {
    embed["footer"]["text"]
        .as_str()?
        .rsplit("uid ")
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Which mail a string of a POST came from: `embeds[N]` names the mail by its footer's UID.
fn source(body: &Value, path: &str, names: &HashMap<u32, &str>) -> String {
    let embed = path
        .strip_prefix(".embeds[")
        .and_then(|r| r.split(']').next())
        .and_then(|n| n.parse::<usize>().ok());
    embed
        .and_then(|n| footer_uid(&body["embeds"][n]))
        .and_then(|uid| names.get(&uid))
        .map_or_else(|| "the message".to_string(), |n| format!("mail {n}"))
}

/// Problems a user would see in what reached Discord; `names` maps UIDs to corpus names.
fn discord_problems(posts: &[Request], names: &HashMap<u32, &str>) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, p) in posts.iter().enumerate() {
        if !(200..300).contains(&p.status) {
            problems.push(format!(
                "POST {i} was refused with {}: {}",
                p.status, p.response
            ));
        }
        if let Some(why) = over_limit(&p.body) {
            problems.push(format!("POST {i} breaks a Discord limit: {why}"));
        }
        if p.body["allowed_mentions"] != serde_json::json!({ "parse": [] }) {
            problems.push(format!(
                "POST {i} allowed_mentions is {} (must permit nothing)",
                p.body["allowed_mentions"]
            ));
        }
        let mut all = Vec::new();
        strings(&p.body, String::new(), &mut all);
        for (path, s) in &all {
            let at = format!("POST {i} {path} ({})", source(&p.body, path, names));
            if let Some(why) = inert_problem(s) {
                problems.push(format!("{at}: {why} in {s:.120?}"));
            }
            let from_mail = path.ends_with(".title")
                || path.ends_with(".description")
                || path.ends_with(".value");
            let placeholder = matches!(s.as_str(), "(no subject)" | "(unknown sender)");
            if from_mail && !placeholder {
                if let Some(c) = unescaped_markdown(s) {
                    problems.push(format!("{at}: unescaped {c:?} in {s:.120?}"));
                }
            }
            if path.ends_with(".title") && s.trim().is_empty() {
                problems.push(format!("{at}: a blank title"));
            }
        }
    }
    problems
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
