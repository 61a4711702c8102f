//! The daemon's periodic chores over the spool: retention and the size bound, and the metrics
//! file. Each runs on a timer, does its spool work on a blocking thread, and reads the
//! configuration afresh each round, so a reload applies at the next one.

use crate::config::Config;
use crate::control::{spool_in, SpoolSlot};
use crate::health::Health;
use crate::spool::Spool;
use crate::stop::Stop;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the size bound is checked.
const ROOM_EVERY: Duration = Duration::from_secs(5);
/// The longest gap between two retention passes.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Keeps the spool's bound in step with the config; prunes delivered items past
/// `keep_delivered`; near the bound, prunes delivered items early, oldest first.
pub(crate) async fn retention(config: watch::Receiver<Arc<Config>>, slot: SpoolSlot, stop: Stop) {
    let mut last_prune: Option<Instant> = None;
    let mut tick = tokio::time::interval(ROOM_EVERY);
    loop {
        tokio::select! {
            _ = stop.wait() => break,
            _ = tick.tick() => {}
        }
        let c = config.borrow().clone();
        let Some(spool) = spool_in(&slot) else {
            continue;
        };
        let due = last_prune.is_none_or(|t| t.elapsed() >= c.keep_delivered.min(PRUNE_EVERY));
        if due {
            last_prune = Some(Instant::now());
        }
        let _ = tokio::task::spawn_blocking(move || {
            chores(&c, &spool, due);
            super::memory::trim();
        })
        .await;
    }
}

fn chores(c: &Config, spool: &Spool, prune: bool) {
    spool.set_size_limit(c.spool_max_bytes);
    if prune {
        let cutoff = chrono::Utc::now().timestamp() - c.keep_delivered.as_secs() as i64;
        match spool.prune_delivered(cutoff) {
            Ok(p) if p.items > 0 => log::info!(
                "spool: pruned {} delivered item(s) older than keep_delivered ({} KiB)",
                p.items,
                p.bytes / 1024
            ),
            Ok(_) => {}
            Err(e) => log::error!("spool: retention pass failed: {e}"),
        }
    }
    // Start making room at 90 % of the bound and stop at 80 %, so ingestion rarely stops while
    // delivered mail could go instead.
    let limit = c.spool_max_bytes;
    let held = spool.held_bytes().unwrap_or(0);
    if held >= limit / 10 * 9 {
        match spool.prune_for_room(limit / 10 * 8) {
            Ok(p) if p.items > 0 => log::warn!(
                "spool: near spool_max_mb; pruned {} delivered item(s) early, oldest first ({} KiB)",
                p.items,
                p.bytes / 1024
            ),
            Ok(_) => {}
            Err(e) => log::error!("spool: cannot make room: {e}"),
        }
    }
}

/// Writes the metrics file every `metrics_every`, and once more on a clean stop.
pub(crate) async fn metrics(
    config: watch::Receiver<Arc<Config>>,
    slot: SpoolSlot,
    health: watch::Receiver<Health>,
    stop: Stop,
) {
    let mut failing = false;
    loop {
        let c = config.borrow().clone();
        let Some(m) = c.metrics.clone() else {
            tokio::select! {
                _ = stop.wait() => break,
                _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
            }
        };
        let h = health.borrow().clone();
        if let Some(spool) = spool_in(&slot) {
            let written = tokio::task::spawn_blocking(move || write(&c, &spool, &h)).await;
            match written {
                Ok(Err(e)) if !failing => {
                    log::warn!("metrics: cannot write {}: {e}", m.path.display());
                    failing = true;
                }
                Ok(Ok(())) if failing => {
                    log::info!("metrics: {} written again", m.path.display());
                    failing = false;
                }
                _ => {}
            }
        }
        if stop.is_stopped() {
            break;
        }
        tokio::select! {
            _ = stop.wait() => {}
            _ = tokio::time::sleep(m.every) => {}
        }
    }
}

/// The last file, written after the pipeline stopped: `mailbeacon_up 0`.
/// Nothing when the spool is closed (disk trouble): the file keeps its last figures.
pub(crate) fn final_metrics(c: &Config, spool: Option<&Spool>, health: &Health) {
    let Some(spool) = spool else {
        return;
    };
    let mut h = health.clone();
    h.stopping = true;
    if let Err(e) = write(c, spool, &h) {
        log::debug!("metrics: last write failed: {e}");
    }
}

fn write(c: &Config, spool: &Spool, h: &Health) -> std::io::Result<()> {
    let Some(m) = &c.metrics else {
        return Ok(());
    };
    let buckets = spool
        .bucket_stats(c.buckets.iter().map(|b| b.name.as_str()))
        .map_err(std::io::Error::other)?;
    let sinks: Vec<String> = c.sinks.iter().map(|s| s.name.clone()).collect();
    let text = crate::metrics::render(&crate::metrics::Snapshot {
        health: h,
        buckets: &buckets,
        counters: &crate::metrics::counters(),
        sinks: &sinks,
        spool_bytes: spool.held_bytes().map_err(std::io::Error::other)?,
        spool_max_bytes: c.spool_max_bytes,
        now: chrono::Utc::now().timestamp(),
    });
    crate::metrics::write_atomic(&m.path, &text)
}
