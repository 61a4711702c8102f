//! The tasks that keep the health state current: the reducer that applies events and publishes
//! the snapshot (for `status`) and the pattern (for the indicator), and the samplers that feed it
//! the spool's per-bucket totals and the Discord guard's count.

use super::systemd::notify;
use crate::config::Config;
use crate::control;
use crate::discord::limits::Guard;
use crate::health::{Event, Health, Pattern};
use crate::spool::SpoolError;
use crate::stop::Stop;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;

/// Applies events to the health state and publishes the result: snapshot for `status`,
/// pattern for the indicator, one line for the journal and systemd when it changes.
pub(crate) async fn health_actor(
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
pub(crate) async fn spool_stats(
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
            let stats = s.bucket_stats(c.buckets.iter().map(|b| b.name.as_str()))?;
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
pub(crate) async fn guard_stats(guard: Arc<Guard>, health: UnboundedSender<Event>, stop: Stop) {
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
