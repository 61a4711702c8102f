//! The daemon: opens the spool, starts the pipeline (one IMAP watcher thread per mailbox, one
//! dispatch task per sink), the health reducer, the indicator, the control socket and the
//! systemd notifications, then waits for signals.
//!
//! SIGTERM/SIGINT: every worker finishes the unit of work it holds (a spool transaction, an
//! in-flight POST) and the process exits 0 with the LED off. SIGHUP: the config is re-read; if
//! valid, the pipeline restarts with it and every sink that was dead is probed at once; if not,
//! the running configuration stays and the error is logged.
//!
//! This file holds the supervisor: [`serve`] is the list of what the daemon runs and how it
//! stops. It takes its orders ([`Control`]: reload, stop) from a channel — fed by the process's
//! signals in [`run`], by a test directly — so the whole daemon can run inside a test. Its one
//! state is [`Store`]: the spool open with the pipeline working on it, or closed for a reason
//! while the disk cannot be written. What it starts lives in the submodules.

use crate::config::{Config, ConfigError, IndicatorConfig};
use crate::health::{Event, Health, SinkState, Thresholds};
use crate::indicator::cdev;
use crate::spool::{Spool, SpoolError};
use pipeline::Pipeline;
use services::Services;
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;
use systemd::notify;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

mod disk;
mod health_feed;
mod housekeeping;
mod indicator;
pub(crate) mod memory;
mod pipeline;
mod services;
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

pub(crate) fn spool_dir(config: &Config) -> std::path::PathBuf {
    config.state_dir.join("spool")
}

/// What a running daemon is told from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Re-read the config (SIGHUP).
    Reload,
    /// Finish the work in hand and stop (SIGTERM, SIGINT).
    Stop,
}

/// What the daemon starts with: the config, the spool, and what a rebuild of a damaged spool
/// at start did (see [`prepare`]).
pub struct Prepared {
    pub(crate) config: Config,
    pub(crate) spool: Spool,
    rebuilt: Option<disk::Rebuilt>,
}

/// The config and the spool the daemon starts with — a spool sled refuses is rebuilt here when
/// no mailbox loses its cursor; an error is the daemon's exit code.
pub fn prepare(config_path: &Path) -> Result<Prepared, RunError> {
    let config = Config::load(config_path)?;
    warn_about_rules(&config);
    let (spool, rebuilt) = disk::open_or_rebuild(&config)?;
    Ok(Prepared {
        config,
        spool,
        rebuilt,
    })
}

/// Runs the daemon in the foreground until SIGTERM.
pub(crate) fn run(config_path: &Path) -> Result<(), RunError> {
    let prepared = prepare(config_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let control = signals()?;
        serve(prepared, control).await
    })
}

/// The process's signals as [`Control`]s: SIGHUP reloads, SIGTERM and SIGINT stop.
fn signals() -> std::io::Result<mpsc::Receiver<Control>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let order = tokio::select! {
                _ = term.recv() => Control::Stop,
                _ = int.recv() => Control::Stop,
                _ = hup.recv() => Control::Reload,
            };
            if tx.send(order).await.is_err() {
                break;
            }
        }
    });
    Ok(rx)
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

/// Runs the daemon until `control` says stop (or its sender is gone): the services that live
/// as long as the process, the pipeline on the spool, and the reactions to what happens.
pub async fn serve(start: Prepared, mut control: mpsc::Receiver<Control>) -> Result<(), RunError> {
    let Prepared {
        mut config,
        spool: opened,
        rebuilt,
    } = start;
    let services = Services::start(&config, &opened)?;
    if let Some(r) = rebuilt {
        let _ = services.health.send(Event::SpoolRebuilt {
            notice: r.notice,
            unreadable: r.unreadable,
        });
    }
    let mut store = Store::Open {
        pipeline: services.pipeline(&config, &opened, &HashSet::new()),
        spool: opened,
    };
    services.ready(&config);
    let mut health = services.snapshot.clone();
    let mut recheck = tokio::time::interval(Duration::from_secs(5));
    let damaged = loop {
        let step = tokio::select! {
            order = control.recv() => match order {
                Some(Control::Reload) => Step::Reload,
                Some(Control::Stop) | None => Step::Stop,
            },
            step = trouble(&mut health), if store.is_open() => step,
            _ = recheck.tick(), if !store.is_open() => Step::Recheck,
        };
        match step {
            Step::Stop => break None,
            Step::Damaged(reason) => {
                log::error!("spool damaged ({reason}); stopping: run `mailbeacon spool salvage`");
                break Some(reason);
            }
            Step::DiskTrouble(reason) => {
                log::error!("spool: cannot write ({reason}); ingestion and delivery pause, mail stays on the server; the spool is reopened once the disk is writable");
                store = store.close(reason, &services).await;
                // The interval ticked on while unused: without a reset, a burst of probes.
                recheck.reset();
            }
            Step::Recheck => store = store.reopen(&config, &services, &mut health).await?,
            Step::Reload => {
                if let Store::Closed { .. } = store {
                    log::warn!(
                        "reload deferred: the spool is not writable; send SIGHUP again once it is"
                    );
                    continue;
                }
                notify(&[sd_notify::NotifyState::Reloading]);
                if let Some(new) = reload(&config) {
                    store = store.restart(&new, &services).await;
                    config = new;
                    services.reconfigured(&config);
                }
                notify(&[sd_notify::NotifyState::Ready]);
            }
        }
    };
    services.stopping();
    let spool = store.stop().await;
    services.stop(&config, spool.as_ref()).await;
    if let Some(reason) = damaged {
        return Err(RunError::SpoolDamaged(reason));
    }
    if let Some(spool) = &spool {
        spool.flush()?;
    }
    log::info!("stopped cleanly");
    Ok(())
}

/// What the supervisor does next.
enum Step {
    Stop,
    Reload,
    /// A record that does not decode: the daemon stops (exit 65).
    Damaged(String),
    /// The spool cannot be written (disk full or read-only).
    DiskTrouble(String),
    /// Time to see whether the disk takes writes again.
    Recheck,
}

/// Waits for the health snapshot to report the spool damaged or its disk in trouble.
async fn trouble(health: &mut watch::Receiver<Health>) -> Step {
    loop {
        if health.changed().await.is_err() {
            return std::future::pending().await;
        }
        let h = health.borrow();
        if let Some(reason) = h.damaged.clone() {
            return Step::Damaged(reason);
        }
        if let Some(reason) = h.disk.values().next().cloned() {
            return Step::DiskTrouble(reason);
        }
    }
}

/// The new config, or `None` (logged) when it does not load: the running one stays.
fn reload(config: &Config) -> Option<Config> {
    match Config::load(&config.path) {
        Err(e) => {
            log::error!("reload refused, the running configuration stays: {e}");
            None
        }
        Ok(new) => {
            warn_about_rules(&new);
            if new.state_dir != config.state_dir
                || new.indicator.backend != config.indicator.backend
                || new.indicator.led != config.indicator.led
            {
                log::warn!("reload: state_dir and indicator pins take effect only after a restart");
            }
            Some(new)
        }
    }
}

/// The spool and the pipeline working on it — or, while the disk cannot be written, neither:
/// sled's files are closed then, so an operator can unmount, repair and remount the file
/// system under a running daemon, and sled (which refuses every write after one failed) is
/// reopened afresh.
enum Store {
    Open { spool: Spool, pipeline: Pipeline },
    Closed { reason: String },
}

impl Store {
    fn is_open(&self) -> bool {
        matches!(self, Store::Open { .. })
    }

    /// Stops the pipeline and closes the spool.
    async fn close(self, reason: String, services: &Services) -> Store {
        if let Store::Open { spool, pipeline } = self {
            pipeline.stop().await;
            services.lend(None);
            // Dropping the last handle flushes (and fails, quietly) and closes sled's files.
            let _ = tokio::task::spawn_blocking(move || drop(spool)).await;
        }
        Store::Closed { reason }
    }

    /// Reopens the spool once its disk takes a write again, and starts a pipeline on it.
    async fn reopen(
        self,
        config: &Config,
        services: &Services,
        health: &mut watch::Receiver<Health>,
    ) -> Result<Store, RunError> {
        let Store::Closed { reason } = self else {
            return Ok(self);
        };
        let Some(spool) = disk::reopen(config).await? else {
            return Ok(Store::Closed { reason });
        };
        services.lend(Some(spool.clone()));
        let _ = services.health.send(Event::SpoolReopened);
        // Consume the snapshot up to the cleared state, or the stale disk trouble would close
        // the new store at once.
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            health.wait_for(|h| h.disk.is_empty()),
        )
        .await;
        log::info!("spool: writable again and reopened; mail not yet on disk is fetched again, ingestion and delivery resume");
        let pipeline = services.pipeline(config, &spool, &HashSet::new());
        Ok(Store::Open { spool, pipeline })
    }

    /// A new pipeline for the reloaded config; every sink that was dead is probed at once.
    async fn restart(self, new: &Config, services: &Services) -> Store {
        let Store::Open { spool, pipeline } = self else {
            return self;
        };
        let dead: HashSet<String> = services
            .snapshot
            .borrow()
            .sinks
            .iter()
            .filter(|(_, s)| s.state == SinkState::Dead)
            .map(|(n, _)| n.clone())
            .collect();
        pipeline.stop().await;
        let _ = services.health.send(configured(new));
        services.guard.set_limit(new.discord.invalid_request_limit);
        let pipeline = services.pipeline(new, &spool, &dead);
        log::info!("configuration reloaded; probing dead sinks now: {dead:?}");
        Store::Open { spool, pipeline }
    }

    /// Stops the pipeline, each worker finishing the unit of work it holds; the spool, if open.
    async fn stop(self) -> Option<Spool> {
        match self {
            Store::Open { spool, pipeline } => {
                pipeline.stop().await;
                Some(spool)
            }
            Store::Closed { .. } => None,
        }
    }
}
