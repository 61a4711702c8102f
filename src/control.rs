//! The control socket: while the daemon runs it owns the spool (sled locks the directory), so
//! the CLI asks the daemon over `$RUNTIME_DIRECTORY/control.sock` (else `<state_dir>/control.sock`,
//! mode 0660). Protocol: the client writes one JSON [`Request`] line; the daemon answers with
//! [`Reply`] lines (one for most requests, one per item for `items`, streamed) and closes. Both
//! ends use these two types, so a field renamed on one side cannot go unnoticed on the other.

use crate::config::Config;
use crate::health::Health;
use crate::spool::Spool;
use crate::status::{list, report, DumpRecord, Filter, Listed, StatusReport};
use crate::stop::Stop;
use crate::tools::{self, Answer, RetryTarget};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub(crate) enum Request {
    Status,
    Items {
        filter: Filter,
    },
    Retry {
        target: RetryTarget,
    },
    Drop {
        id: u64,
        yes: bool,
    },
    Probe {
        sink: String,
    },
    /// Send the digest of `bucket` (every digest bucket when `None`) now.
    Digest {
        bucket: Option<String>,
    },
}

/// One line of the daemon's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "lowercase")]
pub(crate) enum Reply {
    Status(Box<StatusReport>),
    /// One item of a listing.
    Item(Box<DumpRecord>),
    /// A record of a listing that could not be read (skipped; the rest follows).
    Unreadable {
        error: String,
    },
    /// The outcome of an operator's action (retry, drop, probe).
    Answer(Answer),
    /// "digest now": each bucket whose digest is sent now, with its pending count.
    Digest {
        buckets: Vec<DigestNow>,
    },
    /// The request could not be served.
    Error {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DigestNow {
    pub(crate) name: String,
    pub(crate) pending: u64,
}

/// Where the daemon listens: `$RUNTIME_DIRECTORY/control.sock`, else `<state_dir>/control.sock`.
fn socket_path(config: &Config) -> PathBuf {
    std::env::var_os("RUNTIME_DIRECTORY")
        // systemd may list several directories separated by ':'; ours is the first.
        .and_then(|p| {
            p.to_str()
                .and_then(|s| s.split(':').next())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| config.state_dir.clone())
        .join("control.sock")
}

/// Where the CLI looks: `<state_dir>/control.sock`, which is the socket itself or, when the
/// daemon runs under systemd, a link to it — an SSH shell has no `$RUNTIME_DIRECTORY`.
pub(crate) fn client_path(config: &Config) -> PathBuf {
    config.state_dir.join("control.sock")
}

/// The daemon's spool, empty for the moment it is being reopened after a disk error.
pub(crate) type SpoolSlot = Arc<std::sync::RwLock<Option<Spool>>>;

/// The spool in the slot, if any (a clone: the slot's lock is not held while it is used).
pub(crate) fn spool_in(slot: &SpoolSlot) -> Option<Spool> {
    slot.read().ok().and_then(|s| s.clone())
}

/// What request handlers read from the running daemon.
#[derive(Clone)]
pub(crate) struct Context {
    pub(crate) config: watch::Receiver<Arc<Config>>,
    pub(crate) spool: SpoolSlot,
    pub(crate) health: watch::Receiver<Health>,
    /// "digest now" requests and the running sinks' bells (rung after `spool retry` too, so
    /// idle sinks start at once).
    pub(crate) digests: Arc<crate::dispatch::digest::Digests>,
}

/// The answer to an operator's action, for requests that do not concern the running
/// configuration's sinks.
pub(crate) fn probe_sink(config: &Config, name: &str) -> Answer {
    match config.sinks.iter().find(|s| s.name == name) {
        Some(sink) => tools::probe(sink),
        None => Answer {
            code: 1,
            text: format!("no sink {name:?} in {}", config.path.display()),
        },
    }
}

/// Binds the socket, replacing a stale file from a crashed run, and links
/// [`client_path`] to it when they differ. Returns the paths to remove on a clean stop.
pub(crate) fn bind(config: &Config) -> std::io::Result<(tokio::net::UnixListener, Vec<PathBuf>)> {
    let path = socket_path(config);
    if path.exists() {
        if UnixStream::connect(&path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} answers: another daemon runs", path.display()),
            ));
        }
        std::fs::remove_file(&path)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = tokio::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))?;
    let mut made = vec![path.clone()];
    let link = client_path(config);
    if link != path {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&path, &link)?;
        made.push(link);
    }
    Ok((listener, made))
}

pub(crate) async fn serve(listener: tokio::net::UnixListener, ctx: Context, stop: Stop) {
    loop {
        let accepted = tokio::select! {
            _ = stop.wait() => break,
            a = listener.accept() => a,
        };
        let stream = match accepted.and_then(|(s, _)| s.into_std()) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("control: accept failed: {e}");
                continue;
            }
        };
        let ctx = ctx.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = handle(stream, &ctx) {
                log::debug!("control: client went away: {e}");
            }
        });
    }
}

fn handle(stream: UnixStream, ctx: &Context) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new((&stream).take(64 * 1024)).read_line(&mut line)?;
    let mut out = BufWriter::new(&stream);
    let mut send = |reply: Reply| -> std::io::Result<()> {
        serde_json::to_writer(&mut out, &reply)?;
        out.write_all(b"\n")
    };
    // `None` while the disk is full or read-only: status still answers, from the live view.
    let spool = spool_in(&ctx.spool);
    let request = match serde_json::from_str::<Request>(&line) {
        Ok(r) => r,
        Err(e) => {
            send(Reply::Error {
                error: format!("bad request: {e}"),
            })?;
            return out.flush();
        }
    };
    match (request, spool) {
        (Request::Status, spool) => {
            let config = ctx.config.borrow().clone();
            let health = ctx.health.borrow().clone();
            let now = chrono::Utc::now().timestamp();
            send(match report(&config, Some(&health), spool.as_ref(), now) {
                Ok(r) => Reply::Status(Box::new(r)),
                Err(e) => Reply::Error {
                    error: e.to_string(),
                },
            })?;
        }
        (Request::Probe { sink }, _) => {
            let config = ctx.config.borrow().clone();
            send(Reply::Answer(probe_sink(&config, &sink)))?;
        }
        (_, None) => send(Reply::Error {
            error: "the spool is closed until its disk is writable again (full or read-only); \
                    try again later"
                .into(),
        })?,
        (Request::Items { filter }, Some(spool)) => list(&spool, &filter, &mut |l| {
            send(match l {
                Listed::Record(r) => Reply::Item(r),
                Listed::Unreadable(error) => {
                    log::error!("spool: skipped in a listing: {error}");
                    Reply::Unreadable { error }
                }
            })
        })?,
        (Request::Retry { target }, Some(spool)) => {
            let answer = tools::retry(&spool, &target);
            if answer.code == 0 {
                ctx.digests.ring_all();
            }
            send(Reply::Answer(answer))?;
        }
        (Request::Drop { id, yes }, Some(spool)) => {
            send(Reply::Answer(tools::drop(&spool, id, yes)))?;
        }
        (Request::Digest { bucket }, Some(spool)) => {
            send(digest_now(ctx, &spool, bucket.as_deref()))?;
        }
    }
    out.flush()
}

/// "digest now": marks the buckets' mail due and wakes the delivery loops; answers with the
/// pending count of each bucket, or an error.
fn digest_now(ctx: &Context, spool: &Spool, bucket: Option<&str>) -> Reply {
    let config = ctx.config.borrow().clone();
    match crate::dispatch::digest::named(&config.buckets, bucket) {
        Err(error) => Reply::Error { error },
        Ok(names) => {
            ctx.digests
                .flush_now(&names, chrono::Utc::now().timestamp());
            let buckets = names
                .into_iter()
                .map(|name| {
                    let pending = spool.stats(&name).map_or(0, |s| s.pending);
                    log::info!(
                        "control: digest of bucket {name} requested now ({pending} pending)"
                    );
                    DigestNow { name, pending }
                })
                .collect();
            Reply::Digest { buckets }
        }
    }
}

/// The daemon's reply lines, read one at a time.
pub(crate) struct Replies(BufReader<UnixStream>);

impl Iterator for Replies {
    type Item = Result<Reply, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut line = String::new();
        match self.0.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(
                serde_json::from_str(&line)
                    .map_err(|_| format!("daemon answered: {}", line.trim())),
            ),
            Err(e) => Some(Err(format!("daemon: {e}"))),
        }
    }
}

/// Sends `request` to a running daemon; `None` when nothing answers on the socket.
pub(crate) fn ask(path: &Path, request: &Request) -> Option<Result<Replies, String>> {
    let mut stream = UnixStream::connect(path).ok()?;
    let sent = serde_json::to_vec(request)
        .map_err(std::io::Error::other)
        .and_then(|mut line| {
            line.push(b'\n');
            stream.write_all(&line)
        })
        .map(|_| Replies(BufReader::new(stream)))
        .map_err(|e| format!("daemon: {e}"));
    Some(sent)
}

/// The one reply of a request that has one; `None` when nothing answers on the socket. An
/// [`Reply::Error`] comes back as the error.
pub(crate) fn ask_one(path: &Path, request: &Request) -> Option<Result<Reply, String>> {
    let replies = ask(path, request)?;
    Some(replies.and_then(|mut r| match r.next() {
        Some(Ok(Reply::Error { error })) => Err(format!("daemon: {error}")),
        Some(reply) => reply,
        None => Err("the daemon closed the connection without an answer".into()),
    }))
}

/// A reply that is not the one the request asks for.
pub(crate) fn unexpected(reply: &Reply) -> String {
    let kind = serde_json::to_value(reply)
        .ok()
        .and_then(|v| v["reply"].as_str().map(str::to_string))
        .unwrap_or_default();
    format!("the daemon answered with a {kind} reply; is it another version of mailbeacon?")
}
