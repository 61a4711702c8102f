//! The dead-man's switch: `[heartbeat] url = …, every = "5m"`. While the agent is healthy it
//! calls the URL; while a trouble has lasted `notify_after` (the same troubles the notices
//! announce, at the dead or alarm level) it reports failure in the form its monitor reads
//! (healthchecks.io's `/fail`, Uptime Kuma's `status=down`), or, `plain`, says nothing. When
//! the board itself dies the calls stop, and the monitor alerts the user: the one failure no
//! message from the board can report.
//!
//! The call runs on a blocking thread with its own timeout, in its own task: a slow or dead
//! monitor never holds up ingest or delivery. The URL is a secret (it is the monitor's
//! credential): it appears in no log line, error or status field.

use crate::config::{HeartbeatConfig, HeartbeatStyle};
use crate::health::{Event, HeartbeatReport, Pattern};
use crate::notice::Trouble;
use crate::stop::Stop;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;

/// One call: method, URL, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) post: bool,
    pub(crate) url: String,
    pub(crate) body: Option<String>,
}

/// The call for `style` given the trouble to report, if any (`None`: no call at all).
pub(crate) fn call(style: HeartbeatStyle, url: &str, trouble: Option<&str>) -> Option<Call> {
    let get = |url: String| Call {
        post: false,
        url,
        body: None,
    };
    match (style, trouble) {
        (HeartbeatStyle::Plain, None) | (HeartbeatStyle::Healthchecks, None) => {
            Some(get(url.to_string()))
        }
        (HeartbeatStyle::Plain, Some(_)) => None,
        (HeartbeatStyle::Healthchecks, Some(reason)) => Some(Call {
            post: true,
            url: format!("{}/fail", url.trim_end_matches('/')),
            body: Some(reason.to_string()),
        }),
        (HeartbeatStyle::UptimeKuma, t) => {
            // A copied push URL carries `?status=up&msg=OK&ping=`: ours replace them.
            let base = url.split('?').next().unwrap_or(url);
            let (status, msg) = t.map_or(("up", "OK"), |r| ("down", r));
            Some(get(format!(
                "{base}?status={status}&msg={}&ping=",
                crate::text::percent_encode(msg)
            )))
        }
    }
}

/// The one-line reason for the worst trouble at the dead or alarm level, if any.
pub(crate) fn reason(troubles: &[Trouble]) -> Option<String> {
    troubles
        .iter()
        .filter(|t| t.level >= Pattern::Dead)
        .max_by_key(|t| t.level)
        .map(|t| {
            let more = troubles.iter().filter(|t| t.level >= Pattern::Dead).count() - 1;
            let tail = if more > 0 {
                format!(" (+{more} more)")
            } else {
                String::new()
            };
            crate::text::collapse_whitespace(&format!("{}: {}{tail}", t.what, t.detail), 200)
        })
}

/// Makes one call; `Err` with a reason that never contains the URL.
fn perform(c: &Call, url: &str, timeout: std::time::Duration) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let result = if c.post {
        agent
            .post(&c.url)
            .content_type("text/plain")
            .send(c.body.as_deref().unwrap_or(""))
    } else {
        agent.get(&c.url).call()
    };
    match result {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
        Err(e) => Err(scrub(&e.to_string(), &[url, &c.url])),
    }
}

/// Removes the URL (and its path, where the monitor's token lives) from an error text.
fn scrub(text: &str, urls: &[&str]) -> String {
    let mut out = text.to_string();
    for u in urls {
        out = out.replace(u, "[heartbeat url]");
        let path = u.splitn(4, '/').nth(3).unwrap_or("");
        if path.len() > 1 {
            out = out.replace(path, "[redacted]");
        }
    }
    out
}

/// Calls the monitor every `every` until stopped, reading the troubles the notice task
/// publishes.
pub(crate) async fn run(
    config: watch::Receiver<Arc<crate::config::Config>>,
    troubles: watch::Receiver<Vec<Trouble>>,
    health: UnboundedSender<Event>,
    stop: Stop,
) {
    let mut report = HeartbeatReport::default();
    loop {
        let Some(hb) = config.borrow().heartbeat.clone() else {
            // No heartbeat configured (a reload may add one).
            tokio::select! {
                _ = stop.wait() => break,
                _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => continue,
            }
        };
        let started = tokio::time::Instant::now();
        beat(&hb, &troubles, &mut report, &stop).await;
        let _ = health.send(Event::Heartbeat(report.clone()));
        tokio::select! {
            _ = stop.wait() => break,
            _ = tokio::time::sleep_until(started + hb.every) => {}
        }
    }
}

async fn beat(
    hb: &HeartbeatConfig,
    troubles: &watch::Receiver<Vec<Trouble>>,
    report: &mut HeartbeatReport,
    stop: &Stop,
) {
    let why = reason(&troubles.borrow());
    let now = chrono::Utc::now().timestamp();
    report.last_at = Some(now);
    report.reported_healthy = Some(why.is_none());
    if why.is_some() {
        report.reported_down += 1;
    }
    let Some(c) = call(hb.style, hb.url.expose(), why.as_deref()) else {
        return;
    };
    let (url, timeout) = (hb.url.expose().to_string(), hb.timeout);
    // A thread of its own, not the runtime's blocking pool: a hanging monitor then holds up
    // neither a stop (the runtime waits for its pool) nor anything else.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("heartbeat".into())
        .spawn(move || {
            let _ = tx.send(perform(&c, &url, timeout));
        });
    let result = match spawned {
        Ok(_) => tokio::select! {
            _ = stop.wait() => return,
            r = rx => r.unwrap_or_else(|_| Err("worker failed".into())),
        },
        Err(e) => Err(format!("cannot start a thread: {e}")),
    };
    match result {
        Ok(()) => {
            report.last_ok = Some(now);
            report.last_error = None;
        }
        Err(e) => {
            log::warn!("heartbeat: the monitor did not acknowledge: {e}");
            report.failures += 1;
            report.last_error = Some(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_style_reports_health_and_trouble_as_its_monitor_reads_it() {
        let hc = "https://hc-ping.com/UUID";
        assert_eq!(
            call(HeartbeatStyle::Healthchecks, hc, None).unwrap().url,
            hc
        );
        let fail = call(
            HeartbeatStyle::Healthchecks,
            hc,
            Some("Sink noise is dead: HTTP 403"),
        )
        .unwrap();
        assert!(fail.post);
        assert_eq!(fail.url, "https://hc-ping.com/UUID/fail");
        assert_eq!(fail.body.as_deref(), Some("Sink noise is dead: HTTP 403"));
        let kuma = "https://kuma.lan/api/push/TOKEN?status=up&msg=OK&ping=";
        assert_eq!(
            call(HeartbeatStyle::UptimeKuma, kuma, None).unwrap().url,
            "https://kuma.lan/api/push/TOKEN?status=up&msg=OK&ping="
        );
        assert_eq!(
            call(HeartbeatStyle::UptimeKuma, kuma, Some("disk full: 100%"))
                .unwrap()
                .url,
            "https://kuma.lan/api/push/TOKEN?status=down&msg=disk%20full%3A%20100%25&ping="
        );
        assert_eq!(call(HeartbeatStyle::Plain, hc, None).unwrap().url, hc);
        assert_eq!(
            call(HeartbeatStyle::Plain, hc, Some("x")),
            None,
            "silence is the alarm"
        );
    }

    #[test]
    fn errors_never_carry_the_url() {
        let url = "https://hc-ping.com/SECRET-UUID";
        let text = scrub(
            "io: connect https://hc-ping.com/SECRET-UUID/fail: refused (SECRET-UUID)",
            &[url, &format!("{url}/fail")],
        );
        assert!(!text.contains("SECRET-UUID"), "{text}");
    }
}
