//! The notice task: once a second it judges the health snapshot, steps the ledger, saves it
//! when it changed, and hands each owed notice to a sender that posts it to the chosen sinks,
//! one after another, in order. It lives for the whole process (across reloads: it reads the
//! current configuration each round) and never holds up ingest or delivery: posting happens
//! on its own task, and a notice waits in the guard like any message.
//!
//! The troubles that lasted `notify_after` are published for the heartbeat (src/heartbeat.rs).

use super::ledger::{Kind, Ledger, Notice, Rules};
use super::{daily, observe, pending, post, render, store, Trouble};
use crate::config::{Config, SinkConfig};
use crate::control::SpoolSlot;
use crate::discord::limits::Guard;
use crate::health::{Event, Health, LastNotice, NoticeReport, SinkState};
use crate::stop::Stop;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;

/// One notice ready to go.
struct Outgoing {
    kind: &'static str,
    body: serde_json::Value,
    to: Vec<SinkConfig>,
}

pub(crate) struct Notices {
    pub(crate) config: watch::Receiver<Arc<Config>>,
    pub(crate) health: watch::Receiver<Health>,
    pub(crate) events: UnboundedSender<Event>,
    pub(crate) guard: Arc<Guard>,
    pub(crate) spool: SpoolSlot,
    /// The troubles that lasted `notify_after`, worst first, for the heartbeat.
    pub(crate) troubles: watch::Sender<Vec<Trouble>>,
}

/// Where a notice goes: `preferred` if any (where its announcement went), else the configured
/// notice sinks (default every sink); never `avoid`, never a dead sink, each channel once. A
/// sink that shares its webhook or channel with `avoid` or a dead sink is that dead channel
/// too: a notice there would be one more refused request.
pub(super) fn targets(
    config: &Config,
    h: &Health,
    avoid: Option<&str>,
    preferred: &[String],
) -> Vec<SinkConfig> {
    let chosen: Vec<&SinkConfig> = match (&config.notices.sinks, preferred.is_empty()) {
        (_, false) => config
            .sinks
            .iter()
            .filter(|s| preferred.contains(&s.name))
            .collect(),
        (Some(names), true) => config
            .sinks
            .iter()
            .filter(|s| names.contains(&s.name))
            .collect(),
        (None, true) => config.sinks.iter().collect(),
    };
    let dead: HashSet<String> = config
        .sinks
        .iter()
        .filter(|s| {
            Some(s.name.as_str()) == avoid
                || h.sinks
                    .get(&s.name)
                    .is_some_and(|x| x.state == SinkState::Dead)
        })
        .map(post::resource)
        .collect();
    let mut seen = HashSet::new();
    chosen
        .into_iter()
        .filter(|s| !dead.contains(&post::resource(s)) && seen.insert(post::resource(s)))
        .cloned()
        .collect()
}

fn word(kind: &Kind) -> &'static str {
    match kind {
        Kind::Trouble => "trouble",
        Kind::Reminder => "reminder",
        Kind::Recovery { .. } => "resolved",
    }
}

impl Notices {
    pub(crate) async fn run(self, stop: Stop) {
        let path = store::path(&self.config.borrow().state_dir);
        let mut ledger = tokio::task::spawn_blocking({
            let p = path.clone();
            move || store::load(&p)
        })
        .await
        .unwrap_or_default();
        let (tx, rx) = unbounded_channel();
        let sender = tokio::spawn(send_all(
            rx,
            self.guard.clone(),
            self.events.clone(),
            stop.clone(),
        ));
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = stop.wait() => break,
                _ = tick.tick() => {}
            }
            let before = ledger.durable();
            let owed = self.round(&mut ledger).await;
            // Saved before anything is posted: a crash in between loses a notice (the
            // reminder recalls it), it never repeats one.
            if ledger.durable() != before {
                let (p, l) = (path.clone(), ledger.clone());
                let saved = tokio::task::spawn_blocking(move || store::save(&p, &l)).await;
                if let Ok(Err(e)) = saved {
                    log::error!("notices: cannot save {}: {e}", path.display());
                }
            }
            for o in owed {
                let _ = tx.send(o);
            }
        }
        drop(tx);
        let _ = sender.await;
    }

    /// One round: judge, step, choose channels; the notices owed.
    async fn round(&self, ledger: &mut Ledger) -> Vec<Outgoing> {
        let config = self.config.borrow().clone();
        let h = self.health.borrow().clone();
        if h.stopping {
            return Vec::new();
        }
        let now = chrono::Utc::now().timestamp();
        let rules = Rules {
            notify_after: config.notices.notify_after.as_secs() as i64,
            remind_every: config.notices.remind_every.as_secs() as i64,
        };
        let observed = observe(&h, &config, now);
        let notices = ledger.step(&observed, &|holds| pending(&h, &config, holds), now, rules);
        let current: Vec<Trouble> = ledger.current().into_iter().cloned().collect();
        self.troubles
            .send_if_modified(|old| std::mem::replace(old, current.clone()) != current);
        let mut out = Vec::new();
        if !config.notices.enabled {
            return out;
        }
        for n in notices {
            out.push(self.outgoing(&config, &h, ledger, n));
        }
        if let Some(o) = daily::due(&config, &h, ledger, &self.spool).await {
            let to = targets(&config, &h, None, &[]);
            out.push(Outgoing {
                kind: "daily",
                body: o,
                to,
            });
        }
        out
    }

    fn outgoing(&self, config: &Config, h: &Health, ledger: &mut Ledger, n: Notice) -> Outgoing {
        let to = match n.kind {
            // Where it was announced; if none of those works now (or it was announced
            // nowhere, as when the only sink died), wherever works — the revived sink too.
            Kind::Recovery { .. } => Some(targets(config, h, None, &n.channels))
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| targets(config, h, None, &[])),
            _ => targets(config, h, n.trouble.sink.as_deref(), &[]),
        };
        if n.kind == Kind::Trouble {
            let names: Vec<String> = to.iter().map(|s| s.name.clone()).collect();
            ledger.sent_to(&n.trouble.key, &names);
        }
        log::warn!(
            "notice ({}): {} — to {}",
            word(&n.kind),
            n.trouble.what,
            if to.is_empty() {
                "no working sink".to_string()
            } else {
                to.iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        Outgoing {
            kind: word(&n.kind),
            body: render::render(&n, config.notices.mention.as_ref()),
            to,
        }
    }
}

/// Posts each notice to each of its sinks in turn, and tells health how it went.
async fn send_all(
    mut rx: UnboundedReceiver<Outgoing>,
    guard: Arc<Guard>,
    events: UnboundedSender<Event>,
    stop: Stop,
) {
    let mut report = NoticeReport::default();
    while let Some(o) = rx.recv().await {
        let title = o.body["embeds"][0]["title"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let mut last = LastNotice {
            at: chrono::Utc::now().timestamp(),
            kind: o.kind.to_string(),
            title,
            delivered_to: Vec::new(),
            failed: Vec::new(),
        };
        for sink in &o.to {
            match post::post(sink, &o.body, &guard, &stop).await {
                Ok(()) => {
                    report.sent += 1;
                    last.delivered_to.push(sink.name.clone());
                }
                Err(reason) => {
                    log::warn!("notice to sink {}: not delivered: {reason}", sink.name);
                    report.failed += 1;
                    last.failed.push(format!("{}: {reason}", sink.name));
                }
            }
        }
        report.last = Some(last);
        let _ = events.send(Event::Notices(report.clone()));
        if stop.is_stopped() {
            break;
        }
    }
}

/// Starts the notice task and the heartbeat for the life of the process.
pub(crate) fn start(
    config: watch::Receiver<Arc<Config>>,
    health: watch::Receiver<Health>,
    events: UnboundedSender<Event>,
    guard: Arc<Guard>,
    spool: SpoolSlot,
    stop: Stop,
) {
    let (troubles, seen) = watch::channel(Vec::new());
    let notices = Notices {
        config: config.clone(),
        health,
        events: events.clone(),
        guard,
        spool,
        troubles,
    };
    tokio::spawn(notices.run(stop.clone()));
    tokio::spawn(crate::heartbeat::run(config, seen, events, stop));
}
