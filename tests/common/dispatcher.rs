//! The daemon's delivery loop for one webhook, built in-process the way `mailbeacon run`
//! builds it, for tests and benchmarks that drive it against the fake Discord.

use mailbeacon::config::{SinkConfig, SinkTarget, WebhookUrl};
use mailbeacon::discord::limits::Guard;
use mailbeacon::discord::HttpSink;
use mailbeacon::dispatch::Dispatcher;
use mailbeacon::spool::Spool;
use std::sync::Arc;
use std::time::Duration;

/// A dispatcher for sink `name` posting to webhook `url`, draining `spool`, sharing `guard`.
pub fn webhook(name: &str, url: &str, spool: &Spool, guard: &Arc<Guard>) -> Dispatcher {
    let sink = SinkConfig {
        name: name.into(),
        target: SinkTarget::Webhook(WebhookUrl::parse(url).expect("a loopback webhook URL")),
        thread_id: None,
        forum: None,
        probe_every: Duration::from_secs(60),
        probe_max: Duration::from_secs(60),
        timeout: Duration::from_secs(10),
    };
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    Dispatcher {
        sink: Arc::new(HttpSink::new(sink)),
        spool: spool.clone(),
        buckets: Arc::new(Vec::new()),
        health: tx,
        wake: Default::default(),
        probe_every: Duration::from_secs(60),
        probe_max: Duration::from_secs(60),
        start_dead: false,
        disk_full: Default::default(),
        beat: mailbeacon::watchdog::Beat::detached(name),
        timeout: Duration::from_secs(10),
        guard: guard.clone(),
        digests: Default::default(),
        dead: Default::default(),
        links: Default::default(),
        forum: None,
        accounts: Default::default(),
        after: Default::default(),
    }
}
