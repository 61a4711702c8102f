//! The control socket: while the daemon runs it owns the spool (sled locks the directory), so
//! the CLI asks the daemon over `$RUNTIME_DIRECTORY/control.sock` (else `<state_dir>/control.sock`,
//! mode 0660). Protocol: the client writes one JSON request line; the daemon answers with JSON
//! lines (one for `status`, one per item for `items`, streamed) and closes.

use crate::config::Config;
use crate::health::Health;
use crate::spool::Spool;
use crate::status::{dump, report, Filter};
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
pub enum Request {
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

/// Where the daemon listens: `$RUNTIME_DIRECTORY/control.sock`, else `<state_dir>/control.sock`.
pub fn socket_path(config: &Config) -> PathBuf {
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
pub fn client_path(config: &Config) -> PathBuf {
    config.state_dir.join("control.sock")
}

/// The daemon's spool, empty for the moment it is being reopened after a disk error.
pub type SpoolSlot = Arc<std::sync::RwLock<Option<Spool>>>;

/// The spool in the slot, if any (a clone: the slot's lock is not held while it is used).
pub fn spool_in(slot: &SpoolSlot) -> Option<Spool> {
    slot.read().ok().and_then(|s| s.clone())
}

/// What request handlers read from the running daemon.
#[derive(Clone)]
pub struct Context {
    pub config: watch::Receiver<Arc<Config>>,
    pub spool: SpoolSlot,
    pub health: watch::Receiver<Health>,
    /// "digest now" requests and the running sinks' bells (rung after `spool retry` too, so
    /// idle sinks start at once).
    pub digests: Arc<crate::dispatch::digest::Digests>,
}

/// The answer to an operator's action, for requests that do not concern the running
/// configuration's sinks.
pub fn probe_sink(config: &Config, name: &str) -> Answer {
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
pub fn bind(config: &Config) -> std::io::Result<(tokio::net::UnixListener, Vec<PathBuf>)> {
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

pub async fn serve(listener: tokio::net::UnixListener, ctx: Context, stop: Stop) {
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
    // `None` while the disk is full or read-only: status still answers, from the live view.
    let spool = spool_in(&ctx.spool);
    match serde_json::from_str::<Request>(&line) {
        Ok(Request::Status) => {
            let config = ctx.config.borrow().clone();
            let health = ctx.health.borrow().clone();
            match report(
                &config,
                Some(&health),
                spool.as_ref(),
                chrono::Utc::now().timestamp(),
            ) {
                Ok(r) => serde_json::to_writer(&mut out, &r)?,
                Err(e) => {
                    serde_json::to_writer(&mut out, &serde_json::json!({ "error": e.to_string() }))?
                }
            }
            out.write_all(b"\n")?;
        }
        Ok(Request::Probe { sink }) => {
            let config = ctx.config.borrow().clone();
            serde_json::to_writer(&mut out, &probe_sink(&config, &sink))?;
            out.write_all(b"\n")?;
        }
        Ok(_) if spool.is_none() => {
            serde_json::to_writer(
                &mut out,
                &serde_json::json!({ "error": "the spool is closed until its disk is writable again (full or read-only); try again later" }),
            )?;
            out.write_all(b"\n")?;
        }
        Ok(Request::Items { filter }) => {
            if let Some(spool) = &spool {
                dump(spool, &filter, &mut out)?;
            }
        }
        Ok(Request::Retry { target }) => {
            if let Some(spool) = &spool {
                let answer = tools::retry(spool, &target);
                if answer.code == 0 {
                    ctx.digests.ring_all();
                }
                serde_json::to_writer(&mut out, &answer)?;
                out.write_all(b"\n")?;
            }
        }
        Ok(Request::Drop { id, yes }) => {
            if let Some(spool) = &spool {
                serde_json::to_writer(&mut out, &tools::drop(spool, id, yes))?;
                out.write_all(b"\n")?;
            }
        }
        Ok(Request::Digest { bucket }) => {
            if let Some(spool) = &spool {
                serde_json::to_writer(&mut out, &digest_now(ctx, spool, bucket.as_deref()))?;
                out.write_all(b"\n")?;
            }
        }
        Err(e) => {
            serde_json::to_writer(
                &mut out,
                &serde_json::json!({ "error": format!("bad request: {e}") }),
            )?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()
}

/// "digest now": marks the buckets' mail due and wakes the delivery loops; answers with the
/// pending count of each bucket, or an error.
fn digest_now(ctx: &Context, spool: &Spool, bucket: Option<&str>) -> serde_json::Value {
    let config = ctx.config.borrow().clone();
    match crate::dispatch::digest::named(&config.buckets, bucket) {
        Err(e) => serde_json::json!({ "error": e }),
        Ok(names) => {
            ctx.digests
                .flush_now(&names, chrono::Utc::now().timestamp());
            let buckets: Vec<serde_json::Value> = names
                .iter()
                .map(|n| {
                    let pending = spool.stats(n).map_or(0, |s| s.pending);
                    log::info!("control: digest of bucket {n} requested now ({pending} pending)");
                    serde_json::json!({ "name": n, "pending": pending })
                })
                .collect();
            serde_json::json!({ "digest": buckets })
        }
    }
}

/// Sends `request` to a running daemon; `None` when nothing answers on the socket.
pub fn ask(path: &Path, request: &Request) -> Option<std::io::Result<BufReader<UnixStream>>> {
    let mut stream = UnixStream::connect(path).ok()?;
    let sent = serde_json::to_vec(request)
        .map_err(std::io::Error::other)
        .and_then(|mut line| {
            line.push(b'\n');
            stream.write_all(&line)
        })
        .map(|_| BufReader::new(stream));
    Some(sent)
}
