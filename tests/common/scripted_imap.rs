//! A small IMAP server on 127.0.0.1 (plaintext, which the config allows to loopback) that plays
//! what Dovecot cannot show: Courier's default IDLE (new mail told only in the answer to `DONE`
//! and to other commands), Microsoft's and Gmail's throttling answers, a multi-message `FETCH`
//! with `{0}` bodies or a UID left out, a UID expunged between `SEARCH` and `FETCH`,
//! unsolicited `FETCH` during IDLE (iCloud), `EXISTS` before IDLE's `+` (Microsoft), the `ID`
//! capability, and a server that stops answering. It records every command line it reads, with when and on which connection, so
//! a test can tell a wait from a retry storm.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How the server departs from a plain, prompt IMAP server. Each one-shot quirk is used up by
/// the first command it applies to.
#[derive(Clone, Debug, Default)]
pub struct Quirks {
    /// Courier with `IMAP_ENHANCEDIDLE=0`: nothing during IDLE; `* N EXISTS` only before the
    /// tagged answer to `DONE` and to other commands.
    pub courier_idle: bool,
    /// Answers for the next `UID SEARCH` commands, one each, in order: `NO <text>`.
    pub refuse_searches: Vec<String>,
    /// The next `UID SEARCH` that finds mail is answered `OK [THROTTLED]` (Gmail).
    pub throttled_ok: bool,
    /// Multi-message `FETCH`: every message but the first comes as a `{0}` body, though its
    /// `RFC822.SIZE` says otherwise.
    pub empty_bodies: bool,
    /// The next multi-message `FETCH` leaves its last UID out of the answer.
    pub omit_once: bool,
    /// A UID that `UID SEARCH UID n:*` lists but that is gone by the `FETCH` (expunged).
    pub vanishing: Option<u32>,
    /// `* 1 FETCH (FLAGS (\Seen))` every 100 ms while a client idles (iCloud).
    pub unsolicited_fetch: bool,
    /// `ID` in the capabilities (RFC 2971).
    pub offer_id: bool,
    /// On the first connection, nothing is answered after `LOGIN`.
    pub silent_first: bool,
    /// `AUTH=XOAUTH2` in the capabilities; any token logs in.
    pub xoauth2: bool,
    /// The next `AUTHENTICATE` is answered `NO <text>` (Microsoft's throttle).
    pub refuse_auth: Option<String>,
    /// This mail arrives just as the next `IDLE` starts, and its `* N EXISTS` is sent before
    /// IDLE's `+` (Microsoft, which tells of new mail at once, whatever the client is doing).
    pub exists_before_idle: Option<Vec<u8>>,
}

/// One command line the server read.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    /// The line without its tag (`UID SEARCH UID 3:*`, `DONE`).
    pub command: String,
}

struct State {
    quirks: Quirks,
    mails: Vec<Vec<u8>>,
    seen: Vec<Seen>,
    connections: usize,
}

pub struct ScriptedImap {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl ScriptedImap {
    /// Listens on a free port of 127.0.0.1 with an empty INBOX (UIDVALIDITY 7; mail `n` has UID
    /// `n`), serving each connection on its own thread for as long as the test runs.
    pub fn start(quirks: Quirks) -> ScriptedImap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the scripted IMAP server");
        let port = listener.local_addr().expect("its port").port();
        let state = Arc::new(Mutex::new(State {
            quirks,
            mails: Vec::new(),
            seen: Vec::new(),
            connections: 0,
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                let conn = {
                    let mut s = lock(&state);
                    s.connections += 1;
                    s.connections
                };
                std::thread::spawn(move || {
                    let _ = Connection::new(stream, state, conn).and_then(|c| c.serve());
                });
            }
        });
        ScriptedImap { port, state }
    }

    /// Puts mails into INBOX at once (one `EXISTS` tells of them all).
    pub fn add(&self, mails: Vec<Vec<u8>>) {
        lock(&self.state).mails.extend(mails);
    }

    /// Changes the quirks for what follows.
    pub fn set(&self, change: impl FnOnce(&mut Quirks)) {
        change(&mut lock(&self.state).quirks);
    }

    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }

    /// The commands read that start with `prefix`.
    pub fn commands(&self, prefix: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.command.starts_with(prefix))
            .collect()
    }

    pub fn connections(&self) -> usize {
        lock(&self.state).connections
    }
}

/// One client's connection: what it was told, and whether it idles.
struct Connection {
    out: TcpStream,
    reader: BufReader<TcpStream>,
    state: Arc<Mutex<State>>,
    conn: usize,
    /// The message count this client was last told.
    told: usize,
    /// The tag of the IDLE in progress.
    idling: Option<String>,
    /// The tag of the `AUTHENTICATE` whose response line comes next.
    authenticating: Option<String>,
    silent: bool,
}

fn capabilities(q: &Quirks) -> String {
    let mut caps = String::from("IMAP4rev1 IDLE");
    if q.offer_id {
        caps += " ID";
    }
    if q.xoauth2 {
        caps += " AUTH=XOAUTH2";
    }
    caps
}

impl Connection {
    fn new(stream: TcpStream, state: Arc<Mutex<State>>, conn: usize) -> std::io::Result<Self> {
        // Short reads: an idling client is sent news between its lines.
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok(Connection {
            out: stream.try_clone()?,
            reader: BufReader::new(stream),
            state,
            conn,
            told: 0,
            idling: None,
            authenticating: None,
            silent: false,
        })
    }

    fn serve(mut self) -> std::io::Result<()> {
        let caps = capabilities(&lock(&self.state).quirks);
        self.send(&format!("* OK [CAPABILITY {caps}] scripted IMAP ready\r\n"))?;
        let mut line = Vec::new();
        loop {
            match self.reader.read_until(b'\n', &mut line) {
                Ok(0) => return Ok(()),
                Ok(_) if line.ends_with(b"\n") => {
                    let text = String::from_utf8_lossy(&line).trim_end().to_string();
                    line.clear();
                    if !self.command(&text)? {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if self.idling.is_some() && !self.silent {
                        self.idle_tick()?;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn send(&mut self, text: &str) -> std::io::Result<()> {
        self.out.write_all(text.as_bytes())
    }

    /// `* N EXISTS` when mail arrived since this client was last told.
    fn news(&mut self) -> std::io::Result<()> {
        let count = lock(&self.state).mails.len();
        if count > self.told {
            self.told = count;
            self.send(&format!("* {count} EXISTS\r\n"))?;
        }
        Ok(())
    }

    fn idle_tick(&mut self) -> std::io::Result<()> {
        let quirks = lock(&self.state).quirks.clone();
        if !quirks.courier_idle {
            self.news()?;
        }
        if quirks.unsolicited_fetch {
            self.send("* 1 FETCH (FLAGS (\\Seen))\r\n")?;
        }
        Ok(())
    }

    /// Answers one line; false after LOGOUT.
    fn command(&mut self, text: &str) -> std::io::Result<bool> {
        if let Some(tag) = self.authenticating.take() {
            // The SASL response line: refused once when asked to, else logged in.
            let refusal = lock(&self.state).quirks.refuse_auth.take();
            lock(&self.state).seen.push(Seen {
                at: Instant::now(),
                command: "(sasl response)".into(),
            });
            return match refusal {
                Some(text) => self.done(&tag, &format!("NO {text}")),
                None => self.done(&tag, "OK AUTHENTICATE completed"),
            };
        }
        let (tag, command) = match &self.idling {
            Some(tag) if text.eq_ignore_ascii_case("DONE") => (tag.clone(), "DONE".to_string()),
            _ => match text.split_once(' ') {
                Some((tag, rest)) => (tag.to_string(), rest.to_string()),
                None => (text.to_string(), String::new()),
            },
        };
        let quirks = {
            let mut s = lock(&self.state);
            s.seen.push(Seen {
                at: Instant::now(),
                command: command.clone(),
            });
            s.quirks.clone()
        };
        if self.silent {
            return Ok(true);
        }
        let upper = command.to_ascii_uppercase();
        let word = upper.split(' ').next().unwrap_or("");
        match word {
            "CAPABILITY" => self.send(&format!("* CAPABILITY {}\r\n", capabilities(&quirks)))?,
            "AUTHENTICATE" => {
                self.authenticating = Some(tag);
                return self.send("+ \r\n").map(|_| true);
            }
            "LOGIN" => {
                self.silent = quirks.silent_first && self.conn == 1;
                if self.silent {
                    return Ok(true);
                }
            }
            "ID" => self.send("* ID (\"name\" \"scripted\" \"version\" \"1\")\r\n")?,
            "EXAMINE" | "SELECT" => {
                let count = lock(&self.state).mails.len();
                self.told = count;
                self.send(&format!(
                    "* {count} EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT {}] ok\r\n",
                    count + 1
                ))?;
            }
            "NOOP" => self.news()?,
            "IDLE" => {
                self.idling = Some(tag);
                let early = lock(&self.state).quirks.exists_before_idle.take();
                if let Some(mail) = early {
                    lock(&self.state).mails.push(mail);
                    self.news()?;
                }
                return self.send("+ idling\r\n").map(|_| true);
            }
            "DONE" => {
                self.idling = None;
                self.news()?;
                return self.done(&tag, "OK IDLE completed");
            }
            "LOGOUT" => {
                self.send("* BYE scripted IMAP logging out\r\n")?;
                self.done(&tag, "OK LOGOUT completed")?;
                return Ok(false);
            }
            "UID" if upper.starts_with("UID SEARCH") => return self.search(&tag, &upper),
            "UID" if upper.starts_with("UID FETCH") => return self.fetch(&tag, &upper),
            _ => return self.done(&tag, "BAD unknown command"),
        }
        self.done(&tag, "OK done")
    }

    fn done(&mut self, tag: &str, text: &str) -> std::io::Result<bool> {
        self.send(&format!("{tag} {text}\r\n")).map(|_| true)
    }

    /// `UID SEARCH UID a:*` or `UID SEARCH UID n`.
    fn search(&mut self, tag: &str, upper: &str) -> std::io::Result<bool> {
        let refusal = {
            let mut s = lock(&self.state);
            (!s.quirks.refuse_searches.is_empty()).then(|| s.quirks.refuse_searches.remove(0))
        };
        if let Some(text) = refusal {
            return self.done(tag, &format!("NO {text}"));
        }
        self.news()?;
        let (count, vanishing) = {
            let s = lock(&self.state);
            (s.mails.len() as u32, s.quirks.vanishing)
        };
        let set = upper.rsplit(' ').next().unwrap_or("");
        let found: Vec<u32> = match set.split_once(':') {
            Some((from, _)) => {
                let from: u32 = from.parse().unwrap_or(1);
                // RFC 3501: `n:*` always includes the highest UID.
                (from.min(count.max(1))..=count).collect()
            }
            None => set
                .parse::<u32>()
                .ok()
                .filter(|u| *u <= count && Some(*u) != vanishing)
                .into_iter()
                .collect(),
        };
        let list: String = found.iter().map(|u| format!(" {u}")).collect();
        self.send(&format!("* SEARCH{list}\r\n"))?;
        let throttle = {
            let mut s = lock(&self.state);
            let t = s.quirks.throttled_ok && !found.is_empty();
            if t {
                s.quirks.throttled_ok = false;
            }
            t
        };
        if throttle {
            return self.done(tag, "OK [THROTTLED] SEARCH completed");
        }
        self.done(tag, "OK SEARCH completed")
    }

    /// `UID FETCH 1,2,5 (UID RFC822.SIZE BODY.PEEK[]<0.65536>)`.
    fn fetch(&mut self, tag: &str, upper: &str) -> std::io::Result<bool> {
        self.news()?;
        let set = upper.split(' ').nth(2).unwrap_or("");
        let uids: Vec<u32> = set.split(',').filter_map(|u| u.parse().ok()).collect();
        let multi = uids.len() > 1;
        let (mails, quirks) = {
            let mut s = lock(&self.state);
            let q = s.quirks.clone();
            if multi {
                s.quirks.omit_once = false;
            }
            (s.mails.clone(), q)
        };
        for (i, uid) in uids.iter().enumerate() {
            let Some(mail) = mails.get((*uid as usize).wrapping_sub(1)) else {
                continue;
            };
            if Some(*uid) == quirks.vanishing || (multi && quirks.omit_once && i + 1 == uids.len())
            {
                continue;
            }
            let body: &[u8] = if multi && quirks.empty_bodies && i > 0 {
                b""
            } else {
                mail
            };
            self.send(&format!(
                "* {uid} FETCH (UID {uid} RFC822.SIZE {} BODY[]<0> {{{}}}\r\n",
                mail.len(),
                body.len()
            ))?;
            self.out.write_all(body)?;
            self.send(")\r\n")?;
        }
        self.done(tag, "OK FETCH completed")
    }
}
