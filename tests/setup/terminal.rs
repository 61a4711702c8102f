//! `mailbeacon setup` at a pseudo-terminal, answered as a user would, against the README's
//! transcript; the daemon on the config it writes delivers the next mail.

use super::mode;
use crate::common::daemon::{temp_dir, wait_until, Daemon, BIN};
use crate::common::dovecot::{Dovecot, PASSWORD};
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `mailbeacon` running on the slave side of a pseudo-terminal, as over SSH.
struct Terminal {
    child: Child,
    master: File,
    seen: Arc<Mutex<String>>,
    /// How much of `seen` earlier `expect`s consumed.
    at: usize,
}

impl Terminal {
    fn start(args: &[&str]) -> Terminal {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two descriptors into the integers given; the name, termios
        // and window-size arguments may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened by openpty and are owned here alone.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut command = Command::new(BIN);
        command
            .args(args)
            .stdin(Stdio::from(slave.try_clone().expect("dup pty")))
            .stdout(Stdio::from(slave.try_clone().expect("dup pty")))
            .stderr(Stdio::from(slave));
        let child = command.spawn().expect("run mailbeacon setup");
        let seen = Arc::new(Mutex::new(String::new()));
        let mut reader = master.try_clone().expect("dup master");
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the child has closed the terminal.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                sink.lock().map(|mut s| s.push_str(&text)).ok();
            }
        });
        // The command above holds the slave only until spawn returns; the child has its own.
        drop(command);
        Terminal {
            child,
            master,
            seen,
            at: 0,
        }
    }

    fn transcript(&self) -> String {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits for `text` after what was already expected; returns what came before it.
    fn expect(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let all = self.transcript();
            if let Some(i) = all[self.at..].find(text) {
                let before = all[self.at..self.at + i].to_string();
                self.at += i + text.len();
                return before;
            }
            if Instant::now() > deadline {
                panic!("setup never printed {text:?}; the terminal showed:\n{all}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Answers the question `prompt` with `answer` (and Enter).
    fn answer(&mut self, prompt: &str, answer: &str) {
        self.expect(prompt);
        self.master
            .write_all(format!("{answer}\r").as_bytes())
            .expect("type into the terminal");
    }

    fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait for setup") {
                return s.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("setup did not end:\n{}", self.transcript());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
#[test]
fn setup_answered_at_a_terminal_gives_a_daemon_that_delivers_the_next_mail() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1401", "setuptoken-a1b2c3", Behaviour::Ok);
    let channel = discord.webhook_channel("setuptoken-a1b2c3");
    let dir = temp_dir("setup-pty");
    let config = dir.join("mailbeacon.toml");
    let state = dir.join("state");
    let args = [
        "setup",
        "--config",
        config.to_str().expect("utf-8 path"),
        "--state-dir",
        state.to_str().expect("utf-8 path"),
    ];
    let mut t = Terminal::start(&args);
    t.answer("Account name [home]: ", "");
    t.answer(
        "Mail provider (gmail, outlook, office365, icloud, yahoo, fastmail, other) [gmail]: ",
        "other",
    );
    t.answer("IMAP server: ", "127.0.0.1");
    t.answer("TLS (implicit, starttls) [implicit]: ", "");
    t.answer("Port [993]: ", &dovecot.imaps_port().to_string());
    let ca = dovecot.ca_file();
    t.answer("or none [none]: ", ca.to_str().expect("utf-8 path"));
    t.answer("Mail address (the login's user name): ", "alice");
    t.answer("Login with (password, oauth2) [password]: ", "");
    t.answer("(not shown): ", "not-the-password");
    let refused = t.expect("Try again? [Y/n] ");
    assert!(refused.contains("FAIL imap home:"), "{refused}");
    t.master.write_all(b"\r").expect("type");
    // Asked again, each question offers the last answer: only the password is typed anew.
    t.answer("other) [other]: ", "");
    t.answer("IMAP server [127.0.0.1]: ", "");
    t.answer("[implicit]: ", "");
    t.answer(&format!("Port [{}]: ", dovecot.imaps_port()), "");
    t.answer(&format!("or none [{}]: ", ca.display()), "");
    t.answer("Mail address (the login's user name) [alice]: ", "");
    t.answer("Login with (password, oauth2) [password]: ", "");
    t.answer("(not shown): ", PASSWORD);
    let login = t.expect("Post to Discord with a webhook or a bot (webhook, bot) [webhook]: ");
    assert!(
        login.contains("ok   imap home: logged in to 127.0.0.1 as alice"),
        "{login}"
    );
    t.master.write_all(b"\r").expect("type");
    t.answer("Copy Webhook URL) (not shown): ", &url);
    t.expect("ok   sink alerts answers");
    assert!(
        discord.messages_in(&channel).is_empty(),
        "the probe must not post"
    );
    t.answer("It will show there. [y/N] ", "y");
    t.expect("ok   sink alerts: test message posted");
    t.answer("mail no other bucket takes? [y/N] ", "");
    t.answer("comma list, or none) [payments]: ", "vip, payments");
    t.answer(
        "VIP senders' addresses (comma-separated): ",
        "boss@example.com",
    );
    t.expect("ok   buckets: vip, payments, other (everything else)");
    t.answer("or none) [none]: ", "none");
    t.expect("ok   no LED or buzzer");
    t.expect("$ mailbeacon check --probe --config");
    t.expect("ok   account home");
    // Setup's last line: everything before it has been read off the terminal too.
    t.expect("Next: `sudo systemctl enable --now mailbeacon`");
    let code = t.wait();
    let transcript = t.transcript();
    std::fs::write(dir.join("setup.transcript"), &transcript).expect("keep the transcript");
    assert_eq!(code, 0, "setup failed:\n{transcript}");
    let shown = transcript.replace('\r', "");
    let mut from = 0;
    let readme = readme_transcript();
    assert!(readme.len() > 20, "{readme:?}");
    for line in readme {
        match shown[from..].find(&line) {
            Some(i) => from += i + line.len(),
            None => panic!(
                "the README's setup transcript shows {line:?}, setup printed (from there on):\n{}",
                &shown[from..]
            ),
        }
    }
    for secret in [PASSWORD, "not-the-password", "setuptoken-a1b2c3"] {
        assert!(
            !transcript.contains(secret),
            "{secret} was shown:\n{transcript}"
        );
    }
    let posted = discord.messages_in(&channel);
    assert_eq!(posted.len(), 1, "one test message");

    // What was written: private files, the secrets in files of their own.
    let text = std::fs::read_to_string(&config).expect("config written");
    for secret in [PASSWORD, "setuptoken-a1b2c3"] {
        assert!(!text.contains(secret), "{secret} in the config:\n{text}");
    }
    assert_eq!(mode(&config), 0o600);
    let pass = dir.join("home.pass");
    let hook = dir.join("alerts.url");
    assert_eq!(
        std::fs::read_to_string(&pass).expect("password file"),
        format!("{PASSWORD}\n")
    );
    assert_eq!(
        std::fs::read_to_string(&hook).expect("webhook file"),
        format!("{url}\n")
    );
    assert_eq!((mode(&pass), mode(&hook)), (0o600, 0o600));

    // The daemon on that config: a VIP's mail reaches the channel.
    let daemon = Daemon::start(&dir, &text);
    crate::common::config::wait_watching(&daemon);
    dovecot.deliver(
        "alice",
        "INBOX",
        &crate::common::daemon::mail(
            "Boss <boss@example.com>",
            "Board meeting moved",
            "At 3.",
            "<b1@example.com>",
        ),
    );
    wait_until(
        Duration::from_secs(30),
        "the VIP mail in the channel",
        || {
            discord
                .titles_in(&channel)
                .iter()
                .any(|t| t.contains("Board meeting moved"))
        },
    );
    let dumped = crate::common::daemon::dump(&config);
    assert!(
        dumped.iter().any(|r| r["bucket"] == "vip"),
        "the mail went to the vip bucket: {dumped:?}"
    );
}

/// The README's setup transcript, each line (up to a `…`) in the real one, in order.
fn readme_transcript() -> Vec<String> {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("<!-- setup transcript -->\n```text\n")
        .expect("the README shows a setup transcript");
    let block = &readme[start..];
    let block = &block[block.find("```text\n").map_or(0, |i| i + 8)..];
    let end = block.find("```").expect("the transcript block ends");
    block[..end]
        .lines()
        .map(|l| l.split('…').next().unwrap_or(l).to_string())
        .collect()
}
