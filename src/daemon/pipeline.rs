//! The pipeline: one IMAP watcher thread per mailbox and one dispatch task per sink (plus the
//! failover watch and the loop of actions after delivery), all built from one configuration and stopped together, each finishing the
//! unit of work it holds.

use crate::config::{Account, Config};
use crate::discord::limits::Guard;
use crate::discord::HttpSink;
use crate::dispatch::{after::After, digest::Digests, failover, Dispatcher};
use crate::health::Event;
use crate::imap::{tls_config, Watcher};
use crate::spool::Spool;
use crate::stop::Stop;
use crate::watchdog::Beats;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The workers built from one configuration; replaced whole on reload.
pub(crate) struct Pipeline {
    stop: Stop,
    watchers: Vec<std::thread::JoinHandle<()>>,
    dispatchers: Vec<JoinHandle<()>>,
}

impl Pipeline {
    pub(crate) fn start(
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
        let mut by_sink = HashMap::new();
        let mut dispatchers = Vec::new();
        let dead_sinks = Arc::new(failover::DeadSinks::default());
        let links = Arc::new(open_links(config));
        let accounts = Arc::new(accounts_by_name(config));
        let after = Arc::new(Notify::new());
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
                links: links.clone(),
                forum: s.forum.clone(),
                accounts: accounts.clone(),
                after: after.clone(),
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
        let runner = After {
            spool: spool.clone(),
            accounts,
            wake: after,
            beat: beats.beat("after delivery", Duration::from_secs(60)),
        };
        dispatchers.push(tokio::spawn(runner.run(stop.clone())));
        let mut watchers = Vec::new();
        for a in &config.accounts {
            let Some(tls) = tls_or_report(a, health) else {
                continue;
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
                watchers.extend(spawn_watcher(w, stop.clone()));
            }
        }
        Pipeline {
            stop,
            watchers,
            dispatchers,
        }
    }

    /// Signals every worker and waits until each finished the unit of work it held.
    pub(crate) async fn stop(self) {
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

/// Each account's `open_url`, by account name, for the links in a post.
fn open_links(config: &Config) -> HashMap<String, String> {
    config
        .accounts
        .iter()
        .filter_map(|a| Some((a.name.clone(), a.open_url.clone()?)))
        .collect()
}

/// Every account by name, for the dispatchers and the actions after delivery.
fn accounts_by_name(config: &Config) -> HashMap<String, Account> {
    config
        .accounts
        .iter()
        .map(|a| (a.name.clone(), a.clone()))
        .collect()
}

/// The TLS configuration of account `a`; when it cannot be built, the error is logged and
/// reported to health for each of its folders, and the account gets no watcher.
fn tls_or_report(
    a: &Account,
    health: &UnboundedSender<Event>,
) -> Option<Arc<rustls::ClientConfig>> {
    match tls_config(a) {
        Ok(t) => Some(t),
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
            None
        }
    }
}

/// Runs watcher `w` on a thread of its own, named after its mailbox.
fn spawn_watcher(w: Watcher, stop: Stop) -> Option<std::thread::JoinHandle<()>> {
    let name = format!("imap {}/{}", w.account.name, w.folder);
    match std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || w.run(stop))
    {
        Ok(h) => Some(h),
        Err(e) => {
            log::error!("{name}: cannot start a thread: {e}");
            None
        }
    }
}
