//! The systemd watchdog is honest: the real binary, started as systemd would (`NOTIFY_SOCKET`,
//! `WATCHDOG_USEC`), sends `WATCHDOG=1` while its loops check in, and stops sending it when one
//! loop hangs — here an IMAP watcher stuck on a server that trickles its greeting one byte at a
//! time, so no read ever times out — so systemd would restart it. A healthy daemon beside it
//! keeps sending.

use crate::common::config::Config;
use crate::common::daemon::{temp_dir, Daemon};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Collects what the daemon sends to its notify socket, with arrival times.
struct NotifySocket {
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl NotifySocket {
    fn bind(path: &Path) -> NotifySocket {
        let sock = UnixDatagram::bind(path).expect("bind notify socket");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                s2.lock().unwrap().push((Instant::now(), text));
            }
        });
        NotifySocket { seen }
    }

    /// Arrival times of `WATCHDOG=1`.
    fn pings(&self) -> Vec<Instant> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1"))
            .map(|(t, _)| *t)
            .collect()
    }
}

/// An "IMAP server" that accepts and sends its greeting one byte a second, forever.
fn trickling_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                for b in b"* OK ".iter().cycle() {
                    if conn.write_all(&[*b]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            });
        }
    });
    port
}

/// A daemon config whose `home` account has `keys`, a 1 s read timeout and polls 15 min apart
/// (the default): a healthy IDLE then lasts its full renewal, many watchdog intervals.
fn config(dir: &Path, dovecot: &Dovecot, keys: &str, sink_url: &str) -> String {
    Config::new(dir, dovecot)
        .account(&format!(
            "timeout = \"1s\"\npoll_interval = \"15m\"\n{keys}"
        ))
        .webhook(sink_url)
        .text()
}

#[test]
fn watchdog_pings_stop_when_a_loop_hangs_and_continue_while_all_are_well() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "wdTOKEN", Behaviour::Ok);
    let env = |sock: &Path| {
        vec![
            ("NOTIFY_SOCKET".to_string(), sock.display().to_string()),
            ("WATCHDOG_USEC".to_string(), "1000000".to_string()),
        ]
    };

    let hung_dir = temp_dir("watchdog-hung");
    let hung_sock = hung_dir.join("notify.sock");
    let hung_notify = NotifySocket::bind(&hung_sock);
    let port = trickling_server();
    let hung_env = env(&hung_sock);
    let hung_env: Vec<(&str, &str)> = hung_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let hung = Daemon::start_with_env(
        &hung_dir,
        &config(
            &hung_dir,
            &dovecot,
            &format!("port = {port}\ntls = \"none\""),
            &url,
        ),
        &hung_env,
    );

    let ok_dir = temp_dir("watchdog-ok");
    let ok_sock = ok_dir.join("notify.sock");
    let ok_notify = NotifySocket::bind(&ok_sock);
    let ok_env = env(&ok_sock);
    let ok_env: Vec<(&str, &str)> = ok_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let keys = "idle_renew = \"10s\"";
    let ok = Daemon::start_with_env(&ok_dir, &config(&ok_dir, &dovecot, keys, &url), &ok_env);
    let started = Instant::now();

    // The stuck watcher promised to be back within its connect budget (2 × 1 s + 3 × 1 s +
    // 10 s); well past that, the hung daemon has gone quiet while the healthy one has not.
    std::thread::sleep(Duration::from_secs(22));
    let now = Instant::now();
    let hung_pings = hung_notify.pings();
    assert!(
        hung_pings.len() >= 5,
        "alive at first: {} pings",
        hung_pings.len()
    );
    let last = *hung_pings.last().unwrap();
    assert!(
        now - last > Duration::from_secs(4),
        "still pinging {:?} ago though a loop hangs\n{}",
        now - last,
        hung.log_text()
    );
    assert!(
        last - started < Duration::from_secs(20),
        "stopped pinging only after {:?}",
        last - started
    );
    assert!(
        hung.log_text().contains("watchdog: hung: imap home/INBOX"),
        "{}",
        hung.log_text()
    );

    let ok_pings = ok_notify.pings();
    let last_ok = *ok_pings.last().expect("healthy daemon pings");
    assert!(
        now - last_ok < Duration::from_secs(2) && ok_pings.len() >= 30,
        "the healthy daemon keeps pinging at half the interval: {} pings, last {:?} ago\n{}",
        ok_pings.len(),
        now - last_ok,
        ok.log_text()
    );
    assert!(
        !ok.log_text().contains("watchdog: hung"),
        "{}",
        ok.log_text()
    );
}
