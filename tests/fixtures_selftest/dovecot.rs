//! The Dovecot fixture: delivery, stop, restart, a re-created folder, instances side by side,
//! seen through a raw IMAP client and a TLS handshake.

use crate::common::dovecot::Dovecot;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

// ------------------------------------------------------------------ raw IMAP

struct Imap {
    r: BufReader<TcpStream>,
    w: TcpStream,
    n: u32,
}

impl Imap {
    fn connect(port: u16) -> Imap {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect imap");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut i = Imap {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
            n: 0,
        };
        let mut greeting = String::new();
        i.r.read_line(&mut greeting).unwrap();
        assert!(greeting.starts_with("* OK"), "greeting: {greeting}");
        i
    }

    /// Sends a command; returns (untagged lines, tagged completion line).
    fn cmd(&mut self, c: &str) -> (Vec<String>, String) {
        self.n += 1;
        let tag = format!("t{}", self.n);
        write!(self.w, "{tag} {c}\r\n").unwrap();
        let mut untagged = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.r.read_line(&mut line).unwrap();
            assert!(n > 0, "IMAP connection closed during {c}");
            if line.starts_with(&format!("{tag} ")) {
                return (untagged, line.trim_end().to_string());
            }
            untagged.push(line.trim_end().to_string());
        }
    }
}

/// LOGIN + SELECT; returns (EXISTS, UIDVALIDITY).
fn imap_select(port: u16, user: &str, folder: &str) -> (u32, u32) {
    let mut i = Imap::connect(port);
    let (_, ok) = i.cmd(&format!("LOGIN {user} secret"));
    assert!(ok.contains(" OK "), "login: {ok}");
    let (lines, ok) = i.cmd(&format!("SELECT \"{folder}\""));
    assert!(ok.contains(" OK "), "select: {ok}");
    let mut exists = None;
    let mut uidvalidity = None;
    for l in &lines {
        if l.ends_with(" EXISTS") {
            exists = l.split_whitespace().nth(1).and_then(|n| n.parse().ok());
        }
        if let Some(p) = l.find("[UIDVALIDITY ") {
            uidvalidity = l[p + 13..].split(']').next().and_then(|n| n.parse().ok());
        }
    }
    i.cmd("LOGOUT");
    (exists.expect("EXISTS"), uidvalidity.expect("UIDVALIDITY"))
}

/// A TLS handshake on the imaps port trusting only `ca_file()`, read the greeting.
fn imaps_greeting(d: &Dovecot, server_name: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(d.ca_file()).expect("read ca_file"))
        .expect("add trust anchor");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", d.imaps_port())).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = BufReader::new(rustls::StreamOwned::new(conn, sock));
    let mut line = String::new();
    tls.read_line(&mut line).expect("TLS handshake + greeting");
    line
}

fn msg(subject: &str) -> Vec<u8> {
    format!(
        "From: Sender <sender@example.org>\r\nTo: alice@localhost\r\nSubject: {subject}\r\n\
         Date: Sat, 22 Nov 2025 12:00:00 +0000\r\nMessage-ID: <{subject}@example.org>\r\n\r\nHello.\r\n"
    )
    .into_bytes()
}

// ------------------------------------------------------------------ Dovecot

#[test]
fn dovecot_deliver_stop_restart_recreate() {
    let d = Dovecot::start();
    assert_ne!(d.imaps_port(), d.imap_port());

    // TLS with the fixture's cert as the only trust anchor, by name and by IP.
    assert!(imaps_greeting(&d, "localhost").starts_with("* OK"));
    assert!(imaps_greeting(&d, "127.0.0.1").starts_with("* OK"));

    assert!(d.uids("alice", "INBOX").is_empty());
    d.deliver("alice", "INBOX", &msg("one"));
    d.deliver("alice", "INBOX", &msg("two"));
    let uids = d.uids("alice", "INBOX");
    assert_eq!(uids.len(), 2, "{}", d.log());
    assert!(!d.is_seen("alice", "INBOX", uids[0]));
    assert!(!d.is_seen("alice", "INBOX", uids[1]));
    let (exists, uv1) = imap_select(d.imap_port(), "alice", "INBOX");
    assert_eq!(exists, 2);
    assert_eq!(uv1, d.uidvalidity("alice", "INBOX"));

    // \Seen set over IMAP is visible to is_seen.
    {
        let mut i = Imap::connect(d.imap_port());
        i.cmd("LOGIN alice secret");
        i.cmd("SELECT INBOX");
        let (_, ok) = i.cmd(&format!("UID STORE {} +FLAGS (\\Seen)", uids[0]));
        assert!(ok.contains(" OK "), "{ok}");
        i.cmd("LOGOUT");
    }
    assert!(d.is_seen("alice", "INBOX", uids[0]));
    assert!(!d.is_seen("alice", "INBOX", uids[1]));

    // bob exists and has his own empty INBOX.
    assert_eq!(imap_select(d.imap_port(), "bob", "INBOX").0, 0);

    // stop: an open session is cut, both ports are closed.
    let mut open = Imap::connect(d.imap_port());
    open.cmd("LOGIN alice secret");
    open.cmd("SELECT INBOX");
    d.stop();
    assert!(!d.is_running());
    assert!(TcpStream::connect(("127.0.0.1", d.imaps_port())).is_err());
    assert!(TcpStream::connect(("127.0.0.1", d.imap_port())).is_err());
    let mut rest = String::new();
    let t = std::time::Instant::now();
    let _ = open.r.read_to_string(&mut rest);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "open session sees EOF after stop"
    );

    d.restart();
    assert!(d.is_running());
    assert_eq!(d.uids("alice", "INBOX"), uids, "mail survives a restart");
    assert_eq!(imap_select(d.imap_port(), "alice", "INBOX"), (2, uv1));
    assert!(imaps_greeting(&d, "localhost").starts_with("* OK"));

    // INBOX: emptied, new UIDVALIDITY (seen over IMAP too).
    d.recreate_folder("alice", "INBOX");
    assert!(d.uids("alice", "INBOX").is_empty());
    let (exists, uv2) = imap_select(d.imap_port(), "alice", "INBOX");
    assert_eq!(exists, 0);
    assert_ne!(uv1, uv2);
    d.deliver("alice", "INBOX", &msg("three"));
    assert_eq!(d.uids("alice", "INBOX").len(), 1);
    assert_eq!(imap_select(d.imap_port(), "alice", "INBOX"), (1, uv2));

    // Another folder: created on delivery, really deleted and re-created (UIDs restart at 1).
    d.deliver("alice", "Alerts/Mail", &msg("four"));
    d.deliver("alice", "Alerts/Mail", &msg("five"));
    assert_eq!(d.uids("alice", "Alerts/Mail"), vec![1, 2]);
    let uv3 = d.uidvalidity("alice", "Alerts/Mail");
    d.recreate_folder("alice", "Alerts/Mail");
    assert!(d.uids("alice", "Alerts/Mail").is_empty());
    assert_ne!(uv3, d.uidvalidity("alice", "Alerts/Mail"));
    d.deliver("alice", "Alerts/Mail", &msg("six"));
    assert_eq!(d.uids("alice", "Alerts/Mail"), vec![1]);

    assert!(d.log().contains("starting up"));

    // Last, because Dovecot delays failed logins (auth_failure_delay 2 s, default).
    let mut i = Imap::connect(d.imap_port());
    let (_, no) = i.cmd("LOGIN alice wrong");
    assert!(no.contains(" NO "), "{no}");
}

#[test]
fn dovecot_instances_run_in_parallel_and_clean_up() {
    let handles: Vec<_> = (0..3)
        .map(|n| {
            std::thread::spawn(move || {
                let d = Dovecot::start();
                d.deliver("bob", "INBOX", &msg(&format!("p{n}")));
                assert_eq!(d.uids("bob", "INBOX"), vec![1]);
                (d.imaps_port(), d.imap_port(), d.dir().to_path_buf(), d)
            })
        })
        .collect();
    let all: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut ports: Vec<u16> = all.iter().flat_map(|(a, b, _, _)| [*a, *b]).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 6, "every instance has its own ports");
    for (imaps, imap, dir, d) in all {
        drop(d);
        assert!(TcpStream::connect(("127.0.0.1", imaps)).is_err());
        assert!(TcpStream::connect(("127.0.0.1", imap)).is_err());
        assert!(!dir.exists(), "temp dir removed");
    }
}
