//! What the daemon runs for as long as the process lives, across reloads and disk trouble: the
//! health reducer, the indicator, the control socket, retention, metrics, the spool and guard
//! statistics, the systemd watchdog, health notices and the heartbeat — and what every
//! pipeline shares (the invalid-request guard, the digest bells, the watchdog's beats).

use super::health_feed::{guard_stats, health_actor, spool_stats};
use super::indicator::start_indicator;
use super::pipeline::Pipeline;
use super::systemd::{notify, watchdog};
use super::{configured, housekeeping, spool_dir, RunError};
use crate::config::Config;
use crate::control;
use crate::discord::limits::Guard;
use crate::dispatch::digest::Digests;
use crate::health::{Event, Health, Pattern};
use crate::spool::Spool;
use crate::stop::Stop;
use crate::watchdog::Beats;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(crate) struct Services {
    /// Events into the health reducer.
    pub(crate) health: UnboundedSender<Event>,
    /// The reducer's latest snapshot.
    pub(crate) snapshot: watch::Receiver<Health>,
    /// One guard for the life of the process: Discord counts invalid requests per IP, across
    /// reloads.
    pub(crate) guard: Arc<Guard>,
    beats: Beats,
    /// "digest now" from the control socket reaches whichever pipeline runs.
    digests: Arc<Digests>,
    /// The spool the control socket, retention and statistics read; empty while it is closed.
    slot: control::SpoolSlot,
    config: watch::Sender<Arc<Config>>,
    socket_files: Vec<PathBuf>,
    stop: Stop,
    health_task: JoinHandle<()>,
    indicator: JoinHandle<()>,
    metrics: JoinHandle<()>,
}

impl Services {
    pub(crate) fn start(config: &Config, spool: &Spool) -> Result<Services, RunError> {
        let stop = Stop::new();
        let (health, health_rx) = unbounded_channel();
        let (snapshot_tx, snapshot) = watch::channel(Health::default());
        let (pattern_tx, pattern_rx) = watch::channel(Pattern::Ok);
        let _ = health.send(configured(config));
        let health_task = tokio::spawn(health_actor(health_rx, snapshot_tx, pattern_tx));
        let beats = Beats::new();
        let indicator = start_indicator(
            &config.indicator,
            pattern_rx,
            stop.clone(),
            beats.beat("indicator", Duration::from_secs(10)),
        )?;
        let (config_tx, config_rx) = watch::channel(Arc::new(config.clone()));
        let (listener, socket_files) = control::bind(config)?;
        let slot: control::SpoolSlot = Arc::new(std::sync::RwLock::new(Some(spool.clone())));
        let digests = Arc::new(Digests::default());
        let ctx = control::Context {
            config: config_rx.clone(),
            spool: slot.clone(),
            health: snapshot.clone(),
            digests: digests.clone(),
        };
        tokio::spawn(control::serve(listener, ctx, stop.clone()));
        tokio::spawn(housekeeping::retention(
            config_rx.clone(),
            slot.clone(),
            stop.clone(),
        ));
        let metrics = tokio::spawn(housekeeping::metrics(
            config_rx.clone(),
            slot.clone(),
            snapshot.clone(),
            stop.clone(),
        ));
        tokio::spawn(spool_stats(
            config_rx.clone(),
            slot.clone(),
            health.clone(),
            stop.clone(),
        ));
        let guard = Arc::new(Guard::new(config.discord.invalid_request_limit));
        tokio::spawn(guard_stats(guard.clone(), health.clone(), stop.clone()));
        // What was announced is remembered across reloads (and restarts: state_dir).
        crate::notice::run::start(
            config_rx,
            snapshot.clone(),
            health.clone(),
            guard.clone(),
            slot.clone(),
            stop.clone(),
        );
        tokio::spawn(watchdog(beats.clone(), stop.clone()));
        Ok(Services {
            health,
            snapshot,
            guard,
            beats,
            digests,
            slot,
            config: config_tx,
            socket_files,
            stop,
            health_task,
            indicator,
            metrics,
        })
    }

    /// The pipeline on `spool`; the sinks in `dead` are probed at once.
    pub(crate) fn pipeline(
        &self,
        config: &Config,
        spool: &Spool,
        dead: &HashSet<String>,
    ) -> Pipeline {
        Pipeline::start(
            config,
            spool,
            &self.health,
            dead,
            &self.beats,
            &self.guard,
            &self.digests,
        )
    }

    /// Tells systemd and the log that the daemon runs.
    pub(crate) fn ready(&self, config: &Config) {
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
            spool_dir(config).display(),
            self.socket_files[0].display()
        );
    }

    /// The spool the services read from now on (`None` while it is closed).
    pub(crate) fn lend(&self, spool: Option<Spool>) {
        if let Ok(mut s) = self.slot.write() {
            *s = spool;
        }
    }

    /// The reloaded config, for the services that read it.
    pub(crate) fn reconfigured(&self, config: &Config) {
        let _ = self.config.send(Arc::new(config.clone()));
    }

    /// The LED goes dark and the status says so at once, not after the work in hand.
    pub(crate) fn stopping(&self) {
        log::info!("stopping: finishing the work in hand");
        notify(&[sd_notify::NotifyState::Stopping]);
        let _ = self.health.send(Event::Stopping);
    }

    /// Stops every service (the pipeline has stopped): the last metrics, the LED off, the
    /// control socket removed.
    pub(crate) async fn stop(self, config: &Config, spool: Option<&Spool>) {
        self.stop.trigger();
        let _ = self.metrics.await;
        housekeeping::final_metrics(config, spool, &self.snapshot.borrow());
        let _ = self.indicator.await;
        self.health_task.abort();
        for f in &self.socket_files {
            let _ = std::fs::remove_file(f);
        }
    }
}
