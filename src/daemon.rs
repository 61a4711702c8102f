//! The daemon: opens the spool, starts the pipeline (one IMAP watcher thread per mailbox, one
//! dispatch task per sink), the health reducer, the indicator, the control socket and the
//! systemd notifications, then waits for signals.
//!
//! SIGTERM/SIGINT: every worker finishes the unit of work it holds (a spool transaction, an
//! in-flight POST) and the process exits 0 with the LED off. SIGHUP: the config is re-read; if
//! valid, the pipeline restarts with it and every sink that was dead is probed at once; if not,
//! the running configuration stays and the error is logged.
//!
//! This file holds that run loop: the signals, the reload, and the pause while the spool cannot
//! be written. What it starts lives in the submodules.

use crate::config::{Config, ConfigError, IndicatorConfig};
use crate::control;
use crate::dispatch::{digest::Digests, guard::Guard};
use crate::health::{Event, Health, Pattern, SinkState, Thresholds};
use crate::indicator::cdev;
use crate::spool::{Spool, SpoolError};
use crate::stop::Stop;
use crate::watchdog::Beats;
use disk::open_or_rebuild;
use health_feed::{guard_stats, health_actor, spool_stats};
use indicator::start_indicator;
use pipeline::Pipeline;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use systemd::{notify, watchdog};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::unbounded_channel;
use tokio::sync::watch;

mod disk;
mod health_feed;
mod housekeeping;
mod indicator;
pub(crate) mod memory;
mod pipeline;
mod systemd;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("indicator: {0}")]
    Gpio(#[from] cdev::GpioError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Found while running (a record that does not decode); the daemon stopped.
    #[error("spool damaged: {0}")]
    SpoolDamaged(String),
}

pub fn spool_dir(config: &Config) -> std::path::PathBuf {
    config.state_dir.join("spool")
}

/// Runs the daemon in the foreground until SIGTERM.
pub fn run(config_path: &Path) -> Result<(), RunError> {
    let config = Config::load(config_path)?;
    warn_about_rules(&config);
    let (spool, rebuilt) = open_or_rebuild(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve(config, spool, rebuilt))
}

/// Rules that can never match lose no mail (it lands in a later bucket), so they are logged, not
/// refused.
fn warn_about_rules(config: &Config) {
    for warning in config.warnings() {
        log::warn!("config {}: {warning}", config.path.display());
    }
}

fn thresholds(c: &IndicatorConfig) -> Thresholds {
    Thresholds {
        spool_warn: c.spool_warn,
        spool_alarm: c.spool_alarm,
        pending_age_alarm_s: c.pending_age_alarm.as_secs() as i64,
    }
}

fn configured(config: &Config) -> Event {
    Event::Configured {
        mailboxes: config
            .accounts
            .iter()
            .flat_map(|a| a.folders.iter().map(|f| (a.name.clone(), f.clone())))
            .collect(),
        sinks: config.sinks.iter().map(|s| s.name.clone()).collect(),
        thresholds: thresholds(&config.indicator),
    }
}

async fn serve(
    mut config: Config,
    opened: Spool,
    rebuilt: Option<disk::Rebuilt>,
) -> Result<(), RunError> {
    // `None` while the disk is in trouble: sled's files are closed then, so an operator can
    // unmount, repair and remount the file system under a running daemon.
    let mut spool = Some(opened.clone());
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let services = Stop::new();
    let (health_tx, health_rx) = unbounded_channel();
    let (snapshot_tx, snapshot_rx) = watch::channel(Health::default());
    let (pattern_tx, pattern_rx) = watch::channel(Pattern::Ok);
    let _ = health_tx.send(configured(&config));
    if let Some(r) = rebuilt {
        let _ = health_tx.send(Event::SpoolRebuilt {
            notice: r.notice,
            unreadable: r.unreadable,
        });
    }
    let health_task = tokio::spawn(health_actor(health_rx, snapshot_tx, pattern_tx));
    let beats = Beats::new();
    let indicator = start_indicator(
        &config.indicator,
        pattern_rx,
        services.clone(),
        beats.beat("indicator", Duration::from_secs(10)),
    )?;
    let (config_tx, config_rx) = watch::channel(Arc::new(config.clone()));
    let (listener, socket_files) = control::bind(&config)?;
    let socket = socket_files[0].clone();
    let slot: control::SpoolSlot = Arc::new(std::sync::RwLock::new(Some(opened.clone())));
    // "digest now" from the control socket reaches whichever pipeline runs.
    let digests = Arc::new(Digests::default());
    let ctx = control::Context {
        config: config_rx.clone(),
        spool: slot.clone(),
        health: snapshot_rx.clone(),
        digests: digests.clone(),
    };
    tokio::spawn(control::serve(listener, ctx, services.clone()));
    tokio::spawn(housekeeping::retention(
        config_rx.clone(),
        slot.clone(),
        services.clone(),
    ));
    let metrics = tokio::spawn(housekeeping::metrics(
        config_rx.clone(),
        slot.clone(),
        snapshot_rx.clone(),
        services.clone(),
    ));
    tokio::spawn(spool_stats(
        config_rx,
        slot.clone(),
        health_tx.clone(),
        services.clone(),
    ));
    // One guard for the life of the process: Discord counts invalid requests per IP, across reloads.
    let guard = Arc::new(Guard::new(config.discord.invalid_request_limit));
    tokio::spawn(guard_stats(
        guard.clone(),
        health_tx.clone(),
        services.clone(),
    ));
    let mut pipeline = Pipeline::start(
        &config,
        &opened,
        &health_tx,
        &HashSet::new(),
        &beats,
        &guard,
        &digests,
    );
    drop(opened);
    tokio::spawn(watchdog(beats.clone(), services.clone()));
    notify(&[sd_notify::NotifyState::Ready]);
    log::info!(
        "mailbeacon {} running: {} mailbox(es), {} sink(s), spool {}, control socket {}",
        env!("CARGO_PKG_VERSION"),
        config
            .accounts
            .iter()
            .map(|a| a.folders.len())
            .sum::<usize>(),
        config.sinks.len(),
        spool_dir(&config).display(),
        socket.display()
    );
    let mut health_rx = snapshot_rx.clone();
    // Set while the spool cannot be written: the pipeline is stopped until the disk is
    // writable again, then the spool is reopened (sled refuses every write after one failed).
    let mut broken: Option<String> = None;
    let mut recheck = tokio::time::interval(Duration::from_secs(5));
    let mut damaged = None;
    loop {
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            changed = health_rx.changed(), if broken.is_none() => {
                if changed.is_err() {
                    continue;
                }
                if let Some(reason) = health_rx.borrow().damaged.clone() {
                    log::error!("spool damaged ({reason}); stopping: run `mailbeacon spool salvage`");
                    damaged = Some(reason);
                    break;
                }
                let trouble = health_rx.borrow().disk.values().next().cloned();
                if let Some(reason) = trouble {
                    log::error!("spool: cannot write ({reason}); ingestion and delivery pause, mail stays on the server; the spool is reopened once the disk is writable");
                    pipeline.stop().await;
                    pipeline = Pipeline::idle();
                    broken = Some(reason);
                    // The interval ticked on while unused: without a reset, a burst of probes.
                    recheck.reset();
                    if let Ok(mut s) = slot.write() {
                        *s = None;
                    }
                    // Dropping the last handle flushes (and fails, quietly) and closes sled's files.
                    let closing = spool.take();
                    let _ = tokio::task::spawn_blocking(move || drop(closing)).await;
                }
            }
            _ = recheck.tick(), if broken.is_some() => {
                let Some(reopened) = disk::reopen(&config).await? else {
                    continue;
                };
                if let Ok(mut s) = slot.write() {
                    *s = Some(reopened.clone());
                }
                let _ = health_tx.send(Event::SpoolReopened);
                // Consume the snapshot up to the cleared state, or the stale disk trouble would
                // stop the new pipeline at once.
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    health_rx.wait_for(|h| h.disk.is_empty()),
                )
                .await;
                log::info!("spool: writable again and reopened; mail not yet on disk is fetched again, ingestion and delivery resume");
                pipeline = Pipeline::start(&config, &reopened, &health_tx, &HashSet::new(), &beats, &guard, &digests);
                spool = Some(reopened);
                broken = None;
            }
            _ = sighup.recv() => {
                if broken.is_some() {
                    log::warn!("reload deferred: the spool is not writable; send SIGHUP again once it is");
                    continue;
                }
                notify(&[sd_notify::NotifyState::Reloading]);
                match Config::load(&config.path) {
                    Err(e) => log::error!("reload refused, the running configuration stays: {e}"),
                    Ok(new) => {
                        warn_about_rules(&new);
                        if new.state_dir != config.state_dir || new.indicator.backend != config.indicator.backend || new.indicator.led != config.indicator.led {
                            log::warn!("reload: state_dir and indicator pins take effect only after a restart");
                        }
                        let dead: HashSet<String> = snapshot_rx.borrow().sinks.iter().filter(|(_, s)| s.state == SinkState::Dead).map(|(n, _)| n.clone()).collect();
                        pipeline.stop().await;
                        let _ = health_tx.send(configured(&new));
                        guard.set_limit(new.discord.invalid_request_limit);
                        pipeline = match &spool {
                            Some(spool) => Pipeline::start(&new, spool, &health_tx, &dead, &beats, &guard, &digests),
                            None => Pipeline::idle(),
                        };
                        log::info!("configuration reloaded; probing dead sinks now: {dead:?}");
                        config = new;
                        let _ = config_tx.send(Arc::new(config.clone()));
                    }
                }
                notify(&[sd_notify::NotifyState::Ready]);
            }
        }
    }
    log::info!("stopping: finishing the work in hand");
    notify(&[sd_notify::NotifyState::Stopping]);
    // The LED goes dark and the status says so at once, not after the work in hand.
    let _ = health_tx.send(Event::Stopping);
    pipeline.stop().await;
    services.trigger();
    let _ = metrics.await;
    housekeeping::final_metrics(&config, spool.as_ref(), &snapshot_rx.borrow());
    let _ = indicator.await;
    health_task.abort();
    for f in &socket_files {
        let _ = std::fs::remove_file(f);
    }
    if let Some(reason) = damaged {
        return Err(RunError::SpoolDamaged(reason));
    }
    if let Some(spool) = &spool {
        spool.flush()?;
    }
    log::info!("stopped cleanly");
    Ok(())
}
