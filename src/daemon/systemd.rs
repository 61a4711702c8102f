//! What the daemon tells systemd: readiness, reloading, stopping and the one-line status
//! (`sd_notify`), and the watchdog that sends `WATCHDOG=1` only while every loop checks in.

use crate::stop::Stop;
use crate::watchdog::Beats;
use std::time::Duration;

pub(crate) fn notify(states: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        if let Err(e) = sd_notify::notify(states) {
            log::warn!("systemd notify failed: {e}");
        }
    }
}

/// Tells systemd the agent is alive (`WATCHDOG=1`, at half of `WatchdogSec=`) only while every
/// loop keeps its promise to check in; names a loop that breaks it in the log, with or without
/// a systemd watchdog. Without `WATCHDOG=1`, systemd kills and restarts the service.
pub(crate) async fn watchdog(beats: Beats, stop: Stop) {
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
