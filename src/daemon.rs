//! The daemon: opens the spool, starts the pipeline (one IMAP watcher thread per mailbox, one
//! dispatch task per sink), the health reducer, the indicator, the control socket and the
//! systemd notifications, then waits for signals.
//!
//! SIGTERM/SIGINT: every worker finishes the unit of work it holds (a spool transaction, an
//! in-flight POST) and the process exits 0 with the LED off. SIGHUP: the config is re-read; if
//! valid, the pipeline restarts with it and every sink that was dead is probed at once; if not,
//! the running configuration stays and the error is logged.

use crate::config::{Backend, Config, ConfigError, IndicatorConfig};
use crate::control;
use crate::discord::HttpSink;
use crate::dispatch::{digest::Digests, failover, guard::Guard, Dispatcher};
use crate::health::{Event, Health, Pattern, SinkState, Thresholds};
use crate::imap::{tls_config, Watcher};
use crate::indicator::{cdev, sim, Indicator, Logical};
use crate::spool::{Spool, SpoolError};
use crate::stop::Stop;
use crate::watchdog::{Beat, Beats};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

mod housekeeping;

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
    let spool = open_spool(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve(config, spool))
}

/// Rules that can never match lose no mail (it lands in a later bucket), so they are logged, not
/// refused.
fn warn_about_rules(config: &Config) {
    for warning in config.warnings() {
        log::warn!("config {}: {warning}", config.path.display());
    }
}

/// Opens the spool, waiting up to 10 s while another process holds it: a `status` or `spool`
/// command run while the daemon starts holds the lock only for a moment.
fn open_spool(config: &Config) -> Result<Spool, SpoolError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match Spool::open(&spool_dir(config), config.spool_cache_bytes) {
            Err(SpoolError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Ok(spool) => {
                spool.count_bytes_if_missing()?;
                spool.set_size_limit(config.spool_max_bytes);
                return Ok(spool);
            }
            other => return other,
        }
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

fn notify(states: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        if let Err(e) = sd_notify::notify(states) {
            log::warn!("systemd notify failed: {e}");
        }
    }
}

async fn serve(mut config: Config, opened: Spool) -> Result<(), RunError> {
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
                if let Err(e) = writable(&spool_dir(&config)) {
                    log::debug!("spool: still not writable: {e}");
                    continue;
                }
                let reopened = match tokio::task::spawn_blocking({
                    let c = config.clone();
                    move || open_spool(&c)
                }).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) if e.is_disk_full() => {
                        log::warn!("spool: cannot reopen yet ({e}); trying again");
                        continue;
                    }
                    Ok(Err(e)) => return Err(e.into()),
                    Err(e) => return Err(std::io::Error::other(e.to_string()).into()),
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
    pipeline.stop().await;
    let _ = health_tx.send(Event::Stopping);
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

/// Tells systemd the agent is alive (`WATCHDOG=1`, at half of `WatchdogSec=`) only while every
/// loop keeps its promise to check in; names a loop that breaks it in the log, with or without
/// a systemd watchdog. Without `WATCHDOG=1`, systemd kills and restarts the service.
async fn watchdog(beats: Beats, stop: Stop) {
    let interval = sd_notify::watchdog_enabled();
    let every = interval.map_or(Duration::from_secs(5), |d| {
        (d / 2).max(Duration::from_millis(100))
    });
    if let Some(d) = interval {
        log::info!("watchdog: systemd expects a sign of life every {d:?}");
    }
    let mut tick = tokio::time::interval(every);
    let mut late_before: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            _ = stop.wait() => break,
            _ = tick.tick() => {}
        }
        let late = beats.overdue();
        let names: Vec<String> = late.iter().map(|(n, _)| n.clone()).collect();
        if late.is_empty() {
            if interval.is_some() {
                notify(&[sd_notify::NotifyState::Watchdog]);
            }
            if !late_before.is_empty() {
                log::info!("watchdog: every loop checks in again");
            }
        } else if names != late_before {
            let list = late
                .iter()
                .map(|(n, d)| format!("{n} ({}s overdue)", d.as_secs()))
                .collect::<Vec<_>>()
                .join(", ");
            log::error!(
                "watchdog: hung: {list}{}",
                if interval.is_some() {
                    "; withholding WATCHDOG=1 so systemd restarts the service"
                } else {
                    ""
                }
            );
        }
        late_before = names;
    }
}

/// Applies events to the health state and publishes the result: snapshot for `status`,
/// pattern for the indicator, one line for the journal and systemd when it changes.
async fn health_actor(
    mut events: UnboundedReceiver<Event>,
    snapshot: watch::Sender<Health>,
    pattern: watch::Sender<Pattern>,
) {
    let mut health = Health::default();
    let mut last = String::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => health.apply(ev, chrono::Utc::now().timestamp()),
                None => break,
            },
            _ = tick.tick() => {}
        }
        let now = chrono::Utc::now().timestamp();
        while let Ok(ev) = events.try_recv() {
            health.apply(ev, now);
        }
        let p = health.pattern(now);
        pattern.send_if_modified(|old| std::mem::replace(old, p) != p);
        let summary = health.summary(now);
        if summary != last {
            match p {
                Pattern::Dead | Pattern::Alarm => log::error!("health: {summary}"),
                Pattern::Backlog => log::warn!("health: {summary}"),
                _ => log::info!("health: {summary}"),
            }
            notify(&[sd_notify::NotifyState::Status(&summary)]);
            last = summary;
        }
        snapshot.send_if_modified(|old| {
            let changed = *old != health;
            if changed {
                *old = health.clone();
            }
            changed
        });
    }
}

/// Feeds per-bucket totals to health twice a second (ages grow even when nothing happens).
async fn spool_stats(
    config: watch::Receiver<Arc<Config>>,
    slot: control::SpoolSlot,
    health: UnboundedSender<Event>,
    stop: Stop,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = stop.wait() => break,
            _ = tick.tick() => {}
        }
        let c = config.borrow().clone();
        let Some(s) = control::spool_in(&slot) else {
            continue;
        };
        match tokio::task::spawn_blocking(move || {
            let stats = crate::status::bucket_stats(&c, &s)?;
            let now = chrono::Utc::now().timestamp();
            // Mail held for a digest that is not due yet is scheduled, not a backlog.
            Ok::<_, SpoolError>(
                stats
                    .into_iter()
                    .map(|b| match c.bucket(&b.name).and_then(|k| k.digest_every) {
                        Some(every) => crate::dispatch::digest::as_health_sees(b, every, now),
                        None => b,
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .await
        {
            Ok(Ok(stats)) => {
                let _ = health.send(Event::Spool(stats));
            }
            Ok(Err(e)) => log::error!("spool: cannot read totals: {e}"),
            Err(_) => {}
        }
    }
}

/// Feeds the shared guard's count and pauses to health twice a second (the window drains with
/// time alone).
async fn guard_stats(guard: Arc<Guard>, health: UnboundedSender<Event>, stop: Stop) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last = None;
    loop {
        tokio::select! {
            _ = stop.wait() => break,
            _ = tick.tick() => {}
        }
        let now = tokio::time::Instant::now();
        let snapshot = guard.snapshot(now, chrono::Utc::now().timestamp());
        if last.as_ref() != Some(&snapshot) {
            last = Some(snapshot.clone());
            let _ = health.send(Event::Discord(snapshot));
        }
    }
}

fn start_indicator(
    c: &IndicatorConfig,
    patterns: watch::Receiver<Pattern>,
    stop: Stop,
    beat: Beat,
) -> Result<JoinHandle<()>, RunError> {
    let done = async move { stop.wait().await };
    Ok(match &c.backend {
        Backend::Cdev { chip } => {
            let mut gpio = cdev::open_chip(chip)?;
            let led = cdev::output(&mut gpio, chip, c.led.line, c.led.active_low, "led")?;
            let led2 = c
                .led2
                .map(|p| cdev::output(&mut gpio, chip, p.line, p.active_low, "led2"))
                .transpose()?;
            let buzzer = c
                .buzzer
                .map(|p| cdev::output(&mut gpio, chip, p.line, p.active_low, "buzzer"))
                .transpose()?;
            log::info!(
                "indicator: GPIO chip {chip}, led line {}{}",
                c.led.line,
                c.buzzer
                    .map_or(String::new(), |b| format!(", buzzer line {}", b.line))
            );
            let ind = Indicator::new(
                Logical::new(led, c.led.active_low, "led"),
                led2.map(|p| Logical::new(p, c.led2.is_some_and(|x| x.active_low), "led2")),
                buzzer.map(|p| Logical::new(p, c.buzzer.is_some_and(|x| x.active_low), "buzzer")),
                c.quiet_hours,
                c.buzzer_repeat,
            )
            .with_beat(beat.clone());
            tokio::spawn(async move {
                // Dropping the returned pins releases the lines.
                drop(ind.run(patterns, done).await);
            })
        }
        Backend::Sim { .. } | Backend::None => {
            let trace = match &c.backend {
                Backend::Sim { trace: Some(path) } => Some(sim::open_trace(path)?),
                _ => None,
            };
            let pin = |name| sim::SimPin::new(name, trace.clone());
            let ind = Indicator::new(
                Logical::new(pin("led"), false, "led"),
                c.led2.map(|_| Logical::new(pin("led2"), false, "led2")),
                c.buzzer
                    .map(|_| Logical::new(pin("buzzer"), false, "buzzer")),
                c.quiet_hours,
                c.buzzer_repeat,
            )
            .with_beat(beat.clone());
            tokio::spawn(async move {
                drop(ind.run(patterns, done).await);
            })
        }
    })
}

/// Whether `dir` takes a write that reaches the disk: a file of 1 MiB, synced, then removed
/// (sled needs room for a segment, not just a byte).
fn writable(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let probe = dir.join(".writable-probe");
    let result = (|| {
        let mut f = std::fs::File::create(&probe)?;
        f.write_all(&vec![0u8; 1 << 20])?;
        f.sync_all()
    })();
    let _ = std::fs::remove_file(&probe);
    result
}

/// The workers built from one configuration; replaced whole on reload.
struct Pipeline {
    stop: Stop,
    watchers: Vec<std::thread::JoinHandle<()>>,
    dispatchers: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// No workers (while the spool cannot be written).
    fn idle() -> Pipeline {
        Pipeline {
            stop: Stop::new(),
            watchers: Vec::new(),
            dispatchers: Vec::new(),
        }
    }

    fn start(
        config: &Config,
        spool: &Spool,
        health: &UnboundedSender<Event>,
        dead: &HashSet<String>,
        beats: &Beats,
        guard: &Arc<Guard>,
        digests: &Arc<Digests>,
    ) -> Pipeline {
        let stop = Stop::new();
        let buckets = Arc::new(config.buckets.clone());
        let triage = Arc::new(config.triage());
        let mut wakes = Vec::new();
        let mut by_sink = std::collections::HashMap::new();
        let mut dispatchers = Vec::new();
        let dead_sinks = Arc::new(failover::DeadSinks::default());
        for s in &config.sinks {
            let wake = Arc::new(Notify::new());
            wakes.push(wake.clone());
            by_sink.insert(s.name.clone(), wake.clone());
            let d = Dispatcher {
                sink: Arc::new(HttpSink::new(s.clone())),
                spool: spool.clone(),
                buckets: buckets.clone(),
                health: health.clone(),
                wake,
                probe_every: s.probe_every,
                probe_max: s.probe_max,
                start_dead: dead.contains(&s.name),
                disk_full: Default::default(),
                beat: beats.beat(
                    format!("sink {}", s.name),
                    s.timeout + Duration::from_secs(10),
                ),
                timeout: s.timeout,
                guard: guard.clone(),
                digests: digests.clone(),
                dead: dead_sinks.clone(),
            };
            dispatchers.push(tokio::spawn(d.run(stop.clone())));
        }
        digests.set_wakes(by_sink.clone());
        dispatchers.push(tokio::spawn(failover::watch(
            buckets.clone(),
            spool.clone(),
            dead_sinks,
            by_sink,
            stop.clone(),
        )));
        let mut watchers = Vec::new();
        for a in &config.accounts {
            let tls = match tls_config(a.ca_file.as_deref()) {
                Ok(t) => t,
                Err(e) => {
                    log::error!("imap {}: {e}", a.name);
                    for f in &a.folders {
                        let _ = health.send(Event::Account {
                            account: a.name.clone(),
                            folder: f.clone(),
                            state: e.state(),
                            error: Some(e.to_string()),
                            cursor: None,
                        });
                    }
                    continue;
                }
            };
            for folder in &a.folders {
                let w = Watcher {
                    account: a.clone(),
                    folder: folder.clone(),
                    spool: spool.clone(),
                    triage: triage.clone(),
                    buckets: buckets.clone(),
                    health: health.clone(),
                    wakes: wakes.clone(),
                    tls: tls.clone(),
                    beat: beats.beat(format!("imap {}/{folder}", a.name), a.timeout * 5),
                };
                let s = stop.clone();
                match std::thread::Builder::new()
                    .name(format!("imap {}/{folder}", a.name))
                    .spawn(move || w.run(s))
                {
                    Ok(h) => watchers.push(h),
                    Err(e) => log::error!("imap {}/{folder}: cannot start a thread: {e}", a.name),
                }
            }
        }
        Pipeline {
            stop,
            watchers,
            dispatchers,
        }
    }

    /// Signals every worker and waits until each finished the unit of work it held.
    async fn stop(self) {
        self.stop.trigger();
        for d in self.dispatchers {
            let _ = d.await;
        }
        let watchers = self.watchers;
        let _ = tokio::task::spawn_blocking(move || {
            for w in watchers {
                let _ = w.join();
            }
        })
        .await;
    }
}
