//! `mailbeacon demo`: the whole product on one machine with no credentials, in under a minute.
//!
//! It starts a throwaway Dovecot on loopback ([`dovecot`], installing `dovecot-imapd` with apt
//! when it is missing), a Discord stand-in on loopback ([`standin`]) and the real daemon (this
//! binary's `run`) with the `sim` LED drawn live in the terminal ([`screen`]). Then it tells the
//! story this product exists for ([`story`]): sample mail arrives and is sorted and delivered;
//! the noise webhook starts answering 403 and the spool holds the mail while the LED alarms; the
//! webhook is rotated, SIGHUP reloads, and the backlog drains with nothing lost. Everything
//! lives in one temp folder, removed on exit and on Ctrl-C ([`stage`]).

pub mod dovecot;
pub mod process;
pub(crate) mod screen;
pub(crate) mod stage;
pub(crate) mod standin;
mod story;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub(crate) struct Options {
    /// Redraw the LED line in place (a terminal); else print each change once.
    pub(crate) live: bool,
    /// Keep the demo folder (config and spool) after the end, to try the CLI on it.
    pub(crate) keep: bool,
}

/// What the story ended with.
pub(crate) struct Summary {
    pub(crate) sent: usize,
    pub(crate) delivered: usize,
    pub(crate) lost: usize,
    pub(crate) pings: u64,
}

/// Runs the demo; `Ok` only when it got to the end and nothing was lost.
pub(crate) fn run(options: &Options) -> Result<Summary, String> {
    let interrupted = on_interrupt()?;
    if !process::is_root() {
        return Err(
            "the demo needs root: Dovecot runs its mail processes as the `dovecot` \
                    user (try `sudo target/release/mailbeacon demo`)"
                .into(),
        );
    }
    ensure_dovecot()?;
    let screen = screen::Screen::new(options.live);
    let summary = story::tell(&screen, options, &interrupted)?;
    if summary.lost > 0 {
        return Err(format!("{} mail(s) lost", summary.lost));
    }
    Ok(summary)
}

/// Ctrl-C (and SIGTERM) set the returned flag instead of killing the demo, so that it stops its
/// daemon and Dovecot and removes its folder.
fn on_interrupt() -> Result<Arc<AtomicBool>, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let flag = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| format!("signal runtime: {e}"))?;
    let (mut int, mut term) = rt
        .block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            ))
        })
        .map_err(|e| format!("signal handler: {e}"))?;
    let set = flag.clone();
    std::thread::Builder::new()
        .name("demo-signals".into())
        .spawn(move || {
            rt.block_on(async {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            });
            set.store(true, Ordering::Relaxed);
        })
        .map_err(|e| format!("signal thread: {e}"))?;
    Ok(flag)
}

/// Installs `dovecot-imapd` (and `openssl`) with apt when Dovecot is missing, saying so.
fn ensure_dovecot() -> Result<(), String> {
    if dovecot::BINARIES
        .iter()
        .all(|b| process::find_bin(b).is_some())
    {
        return Ok(());
    }
    println!("Dovecot is not installed: installing dovecot-imapd with apt-get (once; needs root)");
    let apt = process::find_bin("apt-get")
        .ok_or("Dovecot is missing and there is no apt-get: install dovecot-imapd and openssl")?;
    let mut steps: Vec<Vec<&str>> = vec![vec!["update"]];
    steps.push(vec![
        "install",
        "-y",
        "--no-install-recommends",
        "dovecot-imapd",
        "openssl",
    ]);
    for args in steps {
        let status = std::process::Command::new(&apt)
            .args(["-o", "DPkg::Lock::Timeout=600"])
            .args(&args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("apt-get: {e}"))?;
        if !status.success() {
            return Err(format!(
                "apt-get {} failed ({status}); install dovecot-imapd as root and try again",
                args.join(" ")
            ));
        }
    }
    match dovecot::BINARIES
        .iter()
        .find(|b| process::find_bin(b).is_none())
    {
        Some(b) => Err(format!(
            "`{b}` is still missing after installing dovecot-imapd"
        )),
        None => Ok(()),
    }
}
