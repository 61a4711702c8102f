//! `mailbeacon setup` answered as a user would, through a pseudo-terminal: a self-signed home
//! server (the test Dovecot) with a wrong password first, a webhook of the fake Discord with one
//! test message, VIP and payment buckets, no LED. The config it writes passes
//! `check --probe` and the daemon started on it delivers the next mail. Re-run scripted with
//! `--yes`, setup keeps what it does not ask about; a scripted run missing an answer names the
//! flag and writes nothing.

use crate::common::daemon::{temp_dir, wait_until, Daemon, BIN};
use crate::common::dovecot::{Dovecot, PASSWORD};
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use crate::common::fake_oauth::FakeOAuth;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
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

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `mailbeacon setup --yes` for the config `dir/mailbeacon.toml`, its state in `dir/state`,
/// with alice's self-signed Dovecot as the server ("other") and no LED; stdin closed.
fn scripted_setup(dir: &Path, dovecot: &Dovecot) -> Command {
    let path = |name: &str| dir.join(name).to_str().expect("utf-8").to_string();
    let mut command = Command::new(BIN);
    command
        .args(["setup", "--yes", "--config", &path("mailbeacon.toml")])
        .args(["--state-dir", &path("state"), "--provider", "other"])
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &dovecot.imaps_port().to_string(),
        ])
        .arg("--ca-file")
        .arg(dovecot.ca_file())
        .args(["--gpio", "none"])
        .stdin(Stdio::null());
    command
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

#[test]
fn setup_again_with_yes_keeps_what_it_does_not_ask_about() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1402", "setuptoken-d4e5f6", Behaviour::Ok);
    let channel = discord.webhook_channel("setuptoken-d4e5f6");
    let dir = temp_dir("setup-yes");
    let config = dir.join("mailbeacon.toml");
    let answers = dir.join("answers");
    std::fs::create_dir_all(&answers).expect("mkdir");
    std::fs::write(answers.join("password"), format!("{PASSWORD}\n")).expect("write");
    std::fs::write(answers.join("webhook"), format!("{url}\n")).expect("write");
    let scripted = |extra: &[&str]| -> std::process::Output {
        scripted_setup(&dir, &dovecot)
            .arg("--password-file")
            .arg(answers.join("password"))
            .arg("--webhook-file")
            .arg(answers.join("webhook"))
            .args(extra)
            .output()
            .expect("run setup")
    };

    // Scripted without the user name: it says which flag is missing and writes nothing.
    let out = scripted(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("give --username"), "{stderr}");
    assert!(!config.exists(), "nothing is written by a failed setup");

    let out = scripted(&[
        "--username",
        "alice",
        "--buckets",
        "customers",
        "--customers",
        "support@shop.example",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        discord.messages_in(&channel).is_empty(),
        "no test message unless asked"
    );

    // The user edits the file by hand, then runs setup again for the payments bucket.
    let mine = std::fs::read_to_string(&config).expect("config");
    let mine = format!("# my Pi in the hall\nspool_max_mb = 64\n{mine}").replace(
        "[[account]]\nname = \"home\"\n",
        "[[account]]\nname = \"home\"\nfolders = [\"INBOX\"] # only the inbox\n",
    );
    std::fs::write(&config, &mine).expect("edit");
    let out = scripted(&[
        "--username",
        "alice",
        "--buckets",
        "payments",
        "--no-test-message",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("editing"), "{stdout}");
    let after = std::fs::read_to_string(&config).expect("config");
    assert!(
        after.starts_with("# my Pi in the hall\nspool_max_mb = 64\n"),
        "{after}"
    );
    assert!(
        after.contains("folders = [\"INBOX\"] # only the inbox"),
        "{after}"
    );
    assert!(after.contains("name = \"customers\""), "{after}");
    assert!(after.contains("name = \"payments\""), "{after}");
    assert_eq!(after.matches("[[account]]").count(), 1, "{after}");
    assert_eq!(after.matches("name = \"other\"").count(), 1, "{after}");
    let at = |name: &str| after.find(&format!("name = \"{name}\"")).unwrap_or(0);
    assert!(
        at("other") > at("payments"),
        "everything else is the last bucket:\n{after}"
    );
}

/// The README's setup transcript, each line (up to a `…`) in the real one, in order.
fn readme_transcript() -> Vec<String> {
    let readme = include_str!("../README.md");
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

/// The README's scripted setup: every flag it uses is one `setup` has.
#[test]
fn the_readme_scripted_setup_uses_real_flags() {
    let readme = include_str!("../README.md");
    let start = readme
        .find("mailbeacon setup --yes")
        .expect("the README shows a scripted setup");
    let command = &readme[start..];
    let command = &command[..command.find("```").unwrap_or(command.len())];
    let help = std::process::Command::new(BIN)
        .args(["setup", "--help"])
        .output()
        .expect("setup --help");
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    let flags: Vec<&str> = command
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .collect();
    assert!(flags.len() >= 8, "{command}");
    for flag in flags {
        assert!(
            help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
            "{flag} is no flag of setup:\n{help}"
        );
    }
}

#[test]
fn setup_scripted_for_a_bot_posts_its_test_message_and_keeps_the_token_in_a_file() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let token = "bot-token-g7h8i9";
    discord.bot(token);
    let channel = "1460000000000000001";
    discord.channel(channel, Behaviour::Ok);
    let dir = temp_dir("setup-bot");
    let config = dir.join("mailbeacon.toml");
    std::fs::write(dir.join("given-password"), PASSWORD).expect("write");
    std::fs::write(dir.join("given-token"), token).expect("write");
    let path = |name: &str| dir.join(name).to_str().expect("utf-8").to_string();
    let out = scripted_setup(&dir, &dovecot)
        .args([
            "--username",
            "alice",
            "--password-file",
            &path("given-password"),
        ])
        .args(["--discord", "bot", "--bot-token-file", &path("given-token")])
        .args([
            "--channel",
            channel,
            "--noise-channel",
            "none",
            "--test-message",
        ])
        .args(["--api-base", &format!("{}/api/v10", discord.base())])
        .args(["--buckets", "none"])
        .output()
        .expect("run setup");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ok   sink alerts: test message posted"),
        "{stdout}"
    );
    assert_eq!(discord.messages_in(channel).len(), 1, "{stdout}");
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(!text.contains(token), "{text}");
    assert!(
        text.contains("kind = \"bot\"") && text.contains(&format!("channel_id = \"{channel}\"")),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("bot.token")).expect("token file"),
        format!("{token}\n")
    );
    assert!(!stdout.contains(token), "{stdout}");
}

#[test]
fn setup_signs_an_oauth_account_in_and_the_daemon_delivers_with_the_grant() {
    let oauth = FakeOAuth::start(Duration::from_secs(3600));
    let dovecot = Dovecot::start_oauth2(&oauth.url("/introspect"), "xoauth2");
    let discord = FakeDiscord::start();
    let url = discord.webhook("1403", "setuptoken-oauth", Behaviour::Ok);
    let channel = discord.webhook_channel("setuptoken-oauth");
    let dir = temp_dir("setup-oauth");
    let config = dir.join("mailbeacon.toml");
    std::fs::write(dir.join("given-webhook"), &url).expect("write");
    let path = |name: &str| dir.join(name).to_str().expect("utf-8").to_string();
    let mut child = scripted_setup(&dir, &dovecot)
        .args(["--username", "alice", "--auth", "oauth2"])
        .args(["--client-id", crate::common::fake_oauth::CLIENT_ID])
        .args(["--oauth-device-url", &oauth.url("/devicecode")])
        .args(["--oauth-token-url", &oauth.url("/token")])
        .args(["--oauth-scopes", "offline_access, imap"])
        .args([
            "--webhook-file",
            &path("given-webhook"),
            "--buckets",
            "none",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run setup");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // The user reads the code off the terminal and approves it on their phone.
    let mut shown = String::new();
    let code = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("setup showed no code:\n{shown}"));
        shown.push_str(&line);
        shown.push('\n');
        if line.contains("Enter the code") {
            break line.split_whitespace().last().expect("a code").to_string();
        }
    };
    oauth.approve(&code);
    let out = child.wait_with_output().expect("setup ends");
    for line in lines.try_iter() {
        shown.push_str(&line);
        shown.push('\n');
    }
    assert!(
        out.status.success(),
        "{shown}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        shown.contains("ok   imap home: logged in to 127.0.0.1 as alice"),
        "{shown}"
    );
    oauth.assert_no_token_in("setup's output", &shown);
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains("auth = \"oauth2\""), "{text}");
    let grant = dir.join("state/oauth/home.json");
    assert_eq!(mode(&grant), 0o600, "the grant is private");

    let daemon = Daemon::start(&dir, &text);
    crate::common::config::wait_watching(&daemon);
    dovecot.deliver(
        "alice",
        "INBOX",
        &crate::common::daemon::mail(
            "Ann <ann@example.com>",
            "Signed in by setup",
            "Hi.",
            "<o1@example.com>",
        ),
    );
    wait_until(Duration::from_secs(30), "the mail in the channel", || {
        discord
            .titles_in(&channel)
            .iter()
            .any(|t| t.contains("Signed in by setup"))
    });
}

#[test]
fn setup_with_a_webhook_discord_no_longer_knows_says_what_to_do_and_writes_nothing() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let gone = format!("{}/api/webhooks/1409/never-made", discord.base());
    let dir = temp_dir("setup-gone");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("given-password"), PASSWORD).expect("write");
    std::fs::write(dir.join("given-webhook"), &gone).expect("write");
    let out = scripted_setup(&dir, &dovecot)
        .args(["--username", "alice", "--password-file"])
        .arg(dir.join("given-password"))
        .arg("--webhook-file")
        .arg(dir.join("given-webhook"))
        .output()
        .expect("run setup");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("copy it again"), "{stderr}");
    assert!(
        !stderr.contains("never-made"),
        "no secret in the error: {stderr}"
    );
    assert!(!dir.join("mailbeacon.toml").exists());
}
