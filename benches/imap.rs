//! Sections `ingest` and `idle`: the IMAP watcher in-process against a real Dovecot on
//! loopback (see the table of sections in `bench.rs`).

use crate::dovecot::{self, Dovecot};
use crate::{env_usize, median, progress, temp_dir, Row};
use mailbeacon::config::Config;
use mailbeacon::imap::Watcher;
use mailbeacon::spool::{Cursor, Spool};
use mailbeacon::stop::Stop;
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the watcher asks for per mail (`src/imap/mod.rs`); the bare fetch asks for the same.
const FETCH_ITEMS: &str = "(UID RFC822.SIZE BODY.PEEK[]<0.65536>)";
/// UIDs per `UID FETCH`, as the watcher chunks them.
const CHUNK: usize = 50;
const FOLDER: &str = "INBOX";

pub fn ingest() -> Vec<Row> {
    let n = env_usize("MAILBEACON_BENCH_MAILS", 10_000);
    let rounds = env_usize("MAILBEACON_BENCH_ROUNDS", 5);
    progress("ingest", "starting Dovecot");
    let dovecot = Dovecot::start();
    let started = Instant::now();
    fill_maildir(&dovecot, n);
    let uids = dovecot.uids("alice", FOLDER);
    assert_eq!(uids.len(), n, "Dovecot indexed every mail");
    let last = *uids.last().expect("mail in the folder");
    let uidvalidity = dovecot.uidvalidity("alice", FOLDER);
    progress(
        "ingest",
        &format!(
            "{n} mails waiting in Dovecot ({:.1} s to prepare)",
            started.elapsed().as_secs_f64()
        ),
    );

    let dir = temp_dir("ingest");
    let config = load_config(&dir, &dovecot);
    let tls = mailbeacon::imap::tls_config(&config.accounts[0]).expect("TLS configuration");
    let bare_tls = bare_tls_config(&dovecot.ca_file());

    // One untimed pass warms Dovecot's index cache and the page cache for both contenders.
    bare_fetch(&bare_tls, dovecot.imaps_port(), n);
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let t = watcher_ingest(&config, &tls, &dir, uidvalidity, last, n);
        let b = bare_fetch(&bare_tls, dovecot.imaps_port(), n);
        progress(
            "ingest",
            &format!(
                "round {round}/{rounds}: mailbeacon {:.2} s, bare fetch {:.2} s",
                t.as_secs_f64(),
                b.as_secs_f64()
            ),
        );
        ours.push(t);
        bare.push(b);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (t, b) = (median(ours), median(bare));
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let ratio = t.as_secs_f64() / b.as_secs_f64();
    vec![
        Row::new(
            "ingest",
            &format!("mailbeacon: {n} mails IMAP → durable spool"),
            format!("{:.0} mails/s", rate(t)),
        )
        .goal("≥ 1,000 mails/s", rate(t) >= 1_000.0)
        .note(&format!(
            "{:.2} s; median of {rounds} rounds",
            t.as_secs_f64()
        )),
        Row::new(
            "ingest",
            &format!("bare IMAP fetch of the same {n} mails"),
            format!("{:.0} mails/s", rate(b)),
        )
        .note(&format!("{:.2} s; the floor", b.as_secs_f64())),
        Row::new("ingest", "mailbeacon / bare fetch", format!("{ratio:.2}×"))
            .goal("≤ 2×", ratio <= 2.0)
            .note("time ratio"),
    ]
}

/// A small, ordinary mail: a handful of senders so triage has work, a short text body.
fn small_mail(i: usize) -> String {
    let (name, addr) = match i % 5 {
        0 => ("Stripe", "receipts@stripe.com"),
        1 => ("Boss", "boss@corp.example"),
        2 => ("Newsletter", "news@lists.example.org"),
        3 => ("Shop", "orders@shop.example"),
        _ => ("Friend", "friend@example.net"),
    };
    format!(
        "From: {name} <{addr}>\r\nTo: alice@example.net\r\nSubject: Message number {i} about your order\r\n\
         Date: Tue, 01 Sep 2026 10:{:02}:{:02} +0000\r\nMessage-ID: <bench-{i}@example.net>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello Alice,\r\n\r\nthis is message {i}. Nothing urgent: a receipt, a reminder, a note.\r\n\
         Regards,\r\n{name}\r\n",
        i / 60 % 60,
        i % 60,
    )
}

/// Writes `n` mails straight into alice's maildir `new/` (seconds, where `doveadm save` per mail
/// would take minutes) and lets Dovecot index them.
fn fill_maildir(dovecot: &Dovecot, n: usize) {
    // Any doveadm access creates the maildir (cur/, new/, tmp/).
    let _ = dovecot.uidnext("alice", FOLDER);
    let new = dovecot.dir().join("mail/alice/new");
    assert!(new.is_dir(), "{} exists", new.display());
    for i in 0..n {
        let file = new.join(format!(
            "{}.M{i}P{}.bench",
            1_788_000_000 + i,
            std::process::id()
        ));
        std::fs::write(&file, small_mail(i)).expect("write maildir file");
        if (i + 1) % 2_000 == 0 {
            progress("ingest", &format!("wrote {}/{n} mails", i + 1));
        }
    }
    let status = std::process::Command::new("chown")
        .args(["-R", "dovecot:dovecot"])
        .arg(dovecot.dir().join("mail/alice"))
        .status()
        .expect("run chown");
    assert!(status.success(), "chown the maildir");
    progress("ingest", "Dovecot is indexing them");
}

fn load_config(dir: &Path, dovecot: &Dovecot) -> Config {
    let text = format!(
        r#"
state_dir = "{state}"

[[account]]
name = "bench"
host = "127.0.0.1"
port = {port}
username = "alice"
password = "secret"
ca_file = "{ca}"
idle = false
poll_interval = "1h"

[[sink]]
name = "alerts"
kind = "webhook"
url = "http://127.0.0.1:9/api/webhooks/1/never-contacted"

[[bucket]]
name = "vip"
severity = "P1"
sinks = ["alerts"]
rules = [{{ from = '(?i)boss@corp\.example' }}]

[[bucket]]
name = "stripe"
severity = "P2"
sinks = ["alerts"]
rules = [{{ from = '@stripe\.com>?$' }}, {{ subject = '(?i)payment' }}]

[[bucket]]
name = "unknown"
sinks = ["alerts"]
"#,
        state = dir.join("state").display(),
        port = dovecot.imaps_port(),
        ca = dovecot.ca_file().display(),
    );
    let path = dir.join("bench.toml");
    std::fs::write(&path, text).expect("write bench config");
    Config::load(&path).unwrap_or_else(|e| panic!("bench config: {e}"))
}

/// mailbeacon's own path, in-process: a watcher on a fresh spool whose cursor starts at 0, timed
/// from the first connect until the cursor covers the last UID (every mail below it is flushed
/// to disk together with it).
fn watcher_ingest(
    config: &Config,
    tls: &Arc<rustls::ClientConfig>,
    dir: &Path,
    uidvalidity: u32,
    last: u32,
    n: usize,
) -> Duration {
    let spool_dir = dir.join("spool");
    let _ = std::fs::remove_dir_all(&spool_dir);
    let spool = Spool::open(&spool_dir, config.spool_cache_bytes).expect("open spool");
    let account = config.accounts[0].clone();
    let name = account.name.clone();
    let start_cursor = Cursor {
        uidvalidity,
        last_uid: 0,
    };
    spool
        .ingest(&name, FOLDER, start_cursor, &[], false)
        .expect("seed the cursor");
    let (health, _events) = tokio::sync::mpsc::unbounded_channel();
    let watcher = Watcher {
        account,
        folder: FOLDER.into(),
        spool: spool.clone(),
        triage: Arc::new(config.triage()),
        buckets: Arc::new(config.buckets.clone()),
        health,
        wakes: Vec::new(),
        tls: tls.clone(),
        beat: mailbeacon::watchdog::Beat::detached("bench"),
    };
    let stop = Stop::new();
    let (done_tx, done) = std::sync::mpsc::channel();
    let start = Instant::now();
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            watcher.run(stop);
            let _ = done_tx.send(());
        });
    }
    loop {
        let cursor = spool.cursor(&name, FOLDER).expect("read the cursor");
        if cursor.is_some_and(|c| c.last_uid >= last) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "ingest did not finish within 10 minutes (cursor {cursor:?})"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed = start.elapsed();
    stop.trigger();
    if done.recv_timeout(Duration::from_secs(30)).is_err() {
        progress("ingest", "the watcher did not stop within 30 s; leaving it");
    }
    let spooled = spool.iter().count();
    assert_eq!(spooled, n, "every mail is in the spool");
    drop(spool);
    let _ = std::fs::remove_dir_all(&spool_dir);
    elapsed
}

/// The same TLS as the watcher's (rustls, ring, safe default versions), trusting only the
/// fixture's certificate.
fn bare_tls_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// The floor: connect, log in, EXAMINE, `UID SEARCH`, then `UID FETCH` in chunks of 50 with the
/// watcher's items, reading every body and doing nothing with it.
fn bare_fetch(tls: &Arc<rustls::ClientConfig>, port: u16, n: usize) -> Duration {
    let start = Instant::now();
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect to Dovecot");
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let conn = rustls::ClientConnection::new(tls.clone(), name).expect("TLS client");
    let stream = rustls::StreamOwned::new(conn, tcp);
    let mut client = imap::Client::new(stream);
    client.read_greeting().expect("greeting");
    let mut session = client
        .login("alice", dovecot::PASSWORD)
        .map_err(|(e, _)| e)
        .expect("login");
    session.examine(FOLDER).expect("EXAMINE");
    let mut uids: Vec<u32> = session
        .uid_search("UID 1:*")
        .expect("UID SEARCH")
        .into_iter()
        .collect();
    uids.sort_unstable();
    let (mut fetched, mut bytes) = (0, 0);
    for chunk in uids.chunks(CHUNK) {
        let set = chunk
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let fetches = session.uid_fetch(&set, FETCH_ITEMS).expect("UID FETCH");
        for f in fetches.iter() {
            fetched += 1;
            bytes += f.body().map_or(0, <[u8]>::len);
        }
    }
    let elapsed = start.elapsed();
    let _ = session.logout();
    assert_eq!(fetched, n, "the bare fetch got every mail");
    assert!(bytes > 0);
    elapsed
}

/// APPEND → spooled with IDLE: the watcher runs in-process on a fresh spool; a second session
/// appends one mail at a time and the clock stops when the spool counts it.
pub fn idle_latency() -> Vec<Row> {
    const N: usize = 50;
    progress("idle", "starting Dovecot");
    let dovecot = Dovecot::start();
    let dir = temp_dir("idle");
    let mut config = load_config(&dir, &dovecot);
    config.accounts[0].idle = true;
    config.accounts[0].poll_interval = Duration::from_secs(3600);
    let tls = mailbeacon::imap::tls_config(&config.accounts[0]).expect("TLS configuration");
    let spool = Spool::open(&dir.join("spool"), 16 << 20).expect("open spool");
    let (health, _events) = tokio::sync::mpsc::unbounded_channel();
    let watcher = Watcher {
        account: config.accounts[0].clone(),
        folder: FOLDER.into(),
        spool: spool.clone(),
        triage: Arc::new(config.triage()),
        buckets: Arc::new(config.buckets.clone()),
        health,
        wakes: Vec::new(),
        tls,
        beat: mailbeacon::watchdog::Beat::detached("bench"),
    };
    let stop = Stop::new();
    let runner = {
        let stop = stop.clone();
        std::thread::spawn(move || watcher.run(stop))
    };
    // The cursor moves in the same flushed transaction as the items it covers.
    let spooled = || {
        spool
            .cursor("bench", FOLDER)
            .ok()
            .flatten()
            .map_or(0, |c| c.last_uid)
    };
    // The first run writes a cursor; then the watcher idles.
    let ready = Instant::now();
    while spool.cursor("bench", FOLDER).ok().flatten().is_none() {
        assert!(
            ready.elapsed() < Duration::from_secs(20),
            "watcher never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    let tcp = TcpStream::connect(("127.0.0.1", dovecot.imap_port())).expect("connect");
    let mut client = imap::Client::new(tcp);
    client.read_greeting().expect("greeting");
    let mut session = client
        .login("alice", "secret")
        .map_err(|(e, _)| e)
        .expect("login");
    let mut latencies = Vec::with_capacity(N);
    for i in 0..N {
        let before = spooled();
        session
            .append(FOLDER, small_mail(i).as_bytes())
            .finish()
            .expect("APPEND");
        let t = Instant::now();
        while spooled() <= before {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "mail {i} never spooled"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        latencies.push(t.elapsed());
        // Let the watcher return to IDLE, as it would between real mails.
        std::thread::sleep(Duration::from_millis(200));
        if (i + 1) % 10 == 0 {
            progress("idle", &format!("{}/{N} mails", i + 1));
        }
    }
    let _ = session.logout();
    stop.trigger();
    let _ = runner.join();
    let _ = std::fs::remove_dir_all(&dir);
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    vec![
        Row::new(
            "idle",
            &format!("APPEND → spooled with IDLE, p50 of {N}"),
            ms(pct(50)),
        )
        .note("polls an hour apart: IDLE alone brings the mail"),
        Row::new(
            "idle",
            &format!("APPEND → spooled with IDLE, p99 of {N}"),
            ms(pct(99)),
        )
        .goal("≤ 1 s", pct(99) <= Duration::from_secs(1))
        .note("mostly Dovecot's own delay before it notifies"),
    ]
}
