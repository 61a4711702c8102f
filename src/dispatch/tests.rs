use super::*;

mod guarded;
mod modes;
use crate::discord::{Outcome, Pace, Reply, Scope};
use crate::spool::Mail;
use crate::spool::{Cursor, NewItem, State};
use std::sync::Mutex;

/// A sink that answers from a script and records what it was asked.
struct Scripted {
    posts: Mutex<Vec<serde_json::Value>>,
    probes: Mutex<u32>,
    answer: Mutex<Box<dyn FnMut(usize) -> Outcome + Send>>,
    probe_ok: Mutex<bool>,
    pace: Mutex<Pace>,
    global: Mutex<Option<u64>>,
    resource: Mutex<String>,
    name: String,
}

impl Sink for Scripted {
    fn name(&self) -> &str {
        &self.name
    }
    fn post(&self, body: &serde_json::Value, _nonce: &str, _thread: Option<&str>) -> Reply {
        let n = {
            let mut p = self.posts.lock().unwrap();
            p.push(body.clone());
            p.len()
        };
        let outcome = (self.answer.lock().unwrap())(n);
        Reply {
            status: status_of(&outcome),
            outcome,
            pace: self.pace.lock().unwrap().clone(),
        }
    }
    fn probe(&self) -> Reply {
        *self.probes.lock().unwrap() += 1;
        let ok = *self.probe_ok.lock().unwrap();
        let outcome = if ok {
            Outcome::Delivered {
                message_id: "w".into(),
            }
        } else {
            Outcome::Dead {
                reason: "HTTP 403".into(),
            }
        };
        Reply {
            status: status_of(&outcome),
            outcome,
            pace: Pace::default(),
        }
    }

    fn global_scope(&self) -> Option<u64> {
        *self.global.lock().unwrap()
    }

    fn resource(&self) -> String {
        self.resource.lock().unwrap().clone()
    }
}

/// The HTTP status Discord would have answered with.
fn status_of(outcome: &Outcome) -> u16 {
    match outcome {
        Outcome::Delivered { .. } => 200,
        Outcome::RateLimited { .. } => 429,
        Outcome::Transient { .. } => 503,
        Outcome::Dead { reason } if reason.contains("404") => 404,
        Outcome::Dead { .. } => 403,
        Outcome::Rejected { .. } => 400,
    }
}

fn scripted(answer: impl FnMut(usize) -> Outcome + Send + 'static) -> Arc<Scripted> {
    Arc::new(Scripted {
        posts: Mutex::default(),
        probes: Mutex::default(),
        answer: Mutex::new(Box::new(answer)),
        probe_ok: Mutex::new(false),
        pace: Mutex::default(),
        global: Mutex::default(),
        resource: Mutex::new("webhook 1".into()),
        name: "s".into(),
    })
}

fn spool_with(n: u32) -> Spool {
    let dir = std::env::temp_dir().join(format!(
        "mb-dispatch-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let spool = Spool::open(&dir, 1 << 20).unwrap();
    let items: Vec<NewItem> = (1..=n)
        .map(|uid| NewItem {
            bucket: "b".into(),
            severity: crate::config::Severity::P3,
            uid,
            mail: Mail {
                subject: format!("mail {uid}"),
                ..Mail::default()
            },
            sinks: vec!["s".into()],
        })
        .collect();
    spool
        .ingest(
            "a",
            "INBOX",
            Cursor {
                uidvalidity: 1,
                last_uid: n,
            },
            &items,
            false,
        )
        .unwrap();
    spool
}

fn start(
    sink: Arc<Scripted>,
    spool: &Spool,
) -> (
    Stop,
    tokio::task::JoinHandle<()>,
    tokio::sync::mpsc::UnboundedReceiver<Event>,
) {
    start_guarded(sink, spool, Arc::new(Guard::new(100)))
}

fn start_guarded(
    sink: Arc<Scripted>,
    spool: &Spool,
    guard: Arc<Guard>,
) -> (
    Stop,
    tokio::task::JoinHandle<()>,
    tokio::sync::mpsc::UnboundedReceiver<Event>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let d = Dispatcher {
        sink,
        spool: spool.clone(),
        buckets: Arc::new(vec![]),
        health: tx,
        wake: Arc::new(Notify::new()),
        probe_every: Duration::from_secs(60),
        probe_max: Duration::from_secs(1800),
        start_dead: false,
        disk_full: Default::default(),
        beat: crate::watchdog::Beat::detached("sink test"),
        timeout: Duration::from_secs(30),
        guard,
        digests: Default::default(),
        dead: Default::default(),
        links: Default::default(),
        forum: None,
        accounts: Default::default(),
        after: Default::default(),
    };
    let stop = Stop::new();
    let task = tokio::spawn(d.run(stop.clone()));
    (stop, task, rx)
}

fn states(spool: &Spool) -> Vec<State> {
    spool.iter().map(|i| i.unwrap().state()).collect()
}

#[tokio::test(start_paused = true)]
async fn a_batch_is_one_message_and_leaves_pending_only_when_acknowledged() {
    let spool = spool_with(12);
    let sink = scripted(|n| Outcome::Delivered {
        message_id: format!("m{n}"),
    });
    let (stop, task, _rx) = start(sink.clone(), &spool);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.trigger();
    task.await.unwrap();
    assert_eq!(sink.posts.lock().unwrap().len(), 2, "10 + 2");
    assert!(states(&spool).iter().all(|s| *s == State::Delivered));
    let ids: Vec<_> = spool
        .iter()
        .map(|i| i.unwrap().deliveries[0].message_id.clone().unwrap())
        .collect();
    assert_eq!(ids.iter().filter(|m| *m == "m1").count(), 10);
}

#[tokio::test(start_paused = true)]
async fn a_dead_sink_stops_posting_and_probes_on_a_doubling_schedule() {
    let spool = spool_with(3);
    let sink = scripted(|_| Outcome::Dead {
        reason: "HTTP 403 (code 50013: Missing Permissions)".into(),
    });
    let (stop, task, mut rx) = start(sink.clone(), &spool);
    // 60 + 120 + 240 s of probing fit in 10 minutes; posting would have continued otherwise.
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(sink.posts.lock().unwrap().len(), 1);
    assert_eq!(*sink.probes.lock().unwrap(), 3);
    assert!(
        states(&spool).iter().all(|s| *s == State::Pending),
        "nothing marked delivered"
    );
    let mut saw_dead = false;
    while let Ok(ev) = rx.try_recv() {
        saw_dead |= matches!(
            ev,
            Event::Sink {
                state: SinkState::Dead,
                ..
            }
        );
    }
    assert!(saw_dead);
    // The channel comes back: the next probe revives it and the backlog drains.
    *sink.probe_ok.lock().unwrap() = true;
    *sink.answer.lock().unwrap() = Box::new(|n| Outcome::Delivered {
        message_id: format!("m{n}"),
    });
    tokio::time::sleep(Duration::from_secs(500)).await;
    stop.trigger();
    task.await.unwrap();
    assert!(states(&spool).iter().all(|s| *s == State::Delivered));
}

#[tokio::test(start_paused = true)]
async fn transient_failures_back_off_and_keep_the_item() {
    let spool = spool_with(1);
    let sink = scripted(|n| {
        if n < 4 {
            Outcome::Transient {
                reason: "HTTP 502".into(),
            }
        } else {
            Outcome::Delivered {
                message_id: "ok".into(),
            }
        }
    });
    let (stop, task, _rx) = start(sink.clone(), &spool);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        sink.posts.lock().unwrap().len(),
        1,
        "no retry before the backoff"
    );
    assert_eq!(states(&spool), vec![State::Pending]);
    tokio::time::sleep(Duration::from_secs(20)).await;
    stop.trigger();
    task.await.unwrap();
    assert_eq!(sink.posts.lock().unwrap().len(), 4);
    let item = spool.iter().next().unwrap().unwrap();
    assert_eq!(item.state(), State::Delivered);
    assert_eq!(item.deliveries[0].attempts, 4);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_wait_and_do_not_count_as_failures() {
    let spool = spool_with(1);
    let sink = scripted(|n| {
        if n == 1 {
            Outcome::RateLimited {
                retry_after: Duration::from_secs(7),
                scope: Scope::User,
            }
        } else {
            Outcome::Delivered {
                message_id: "ok".into(),
            }
        }
    });
    let (stop, task, _rx) = start(sink.clone(), &spool);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(sink.posts.lock().unwrap().len(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.trigger();
    task.await.unwrap();
    assert_eq!(sink.posts.lock().unwrap().len(), 2);
    assert_eq!(
        spool.iter().next().unwrap().unwrap().deliveries[0].attempts,
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_batch_goes_plain_once_then_dead_letters() {
    let spool = spool_with(2);
    // The batch is refused, then item 1's plain form; item 2's plain form passes.
    let sink = scripted(|n| match n {
        1 | 2 => Outcome::Rejected {
            reason: "HTTP 400 (code 50035: Invalid Form Body)".into(),
        },
        _ => Outcome::Delivered {
            message_id: "ok".into(),
        },
    });
    let (stop, task, _rx) = start(sink.clone(), &spool);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.trigger();
    task.await.unwrap();
    assert_eq!(states(&spool), vec![State::Dead, State::Delivered]);
    let posts = sink.posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 3, "one batch, then one plain post per item");
    assert!(posts[1..].iter().all(|p| p.get("embeds").is_none()));
    let dead = spool.iter().next().unwrap().unwrap();
    assert!(dead.deliveries[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("50035"));
}

/// A spool whose `n` items are owed to each of `sinks`.
fn spool_for(n: u32, sinks: &[&str]) -> Spool {
    let spool = spool_with(0);
    let items: Vec<NewItem> = (1..=n)
        .map(|uid| NewItem {
            bucket: "b".into(),
            severity: crate::config::Severity::P3,
            uid,
            mail: Mail {
                subject: format!("mail {uid}"),
                ..Mail::default()
            },
            sinks: sinks.iter().map(|s| s.to_string()).collect(),
        })
        .collect();
    let cursor = Cursor {
        uidvalidity: 1,
        last_uid: n,
    };
    spool.ingest("a", "INBOX", cursor, &items, false).unwrap();
    spool
}

fn named(sink: Arc<Scripted>, name: &str, resource: &str) -> Arc<Scripted> {
    let mut s = Arc::try_unwrap(sink).ok().unwrap();
    s.name = name.into();
    *s.resource.get_mut().unwrap() = resource.into();
    Arc::new(s)
}

fn delivered() -> impl FnMut(usize) -> Outcome + Send + 'static {
    |n| Outcome::Delivered {
        message_id: format!("m{n}"),
    }
}

fn post_count(sink: &Scripted) -> usize {
    sink.posts.lock().unwrap().len()
}

#[tokio::test(start_paused = true)]
async fn a_sink_that_dies_again_after_each_revival_waits_longer_each_time() {
    // The probe passes (the webhook exists) but every post is refused (its thread is gone).
    let spool = spool_with(1);
    let sink = scripted(|_| Outcome::Dead {
        reason: "HTTP 400 (code 10003: Unknown Channel)".into(),
    });
    *sink.probe_ok.lock().unwrap() = true;
    let (stop, task, _rx) = start(sink.clone(), &spool);
    tokio::time::sleep(Duration::from_secs(600)).await;
    stop.trigger();
    task.await.unwrap();
    // Posts at 0, 60, 180 and 420 s: the wait doubles (60, 120, 240 s) instead of staying 60 s.
    assert_eq!(post_count(&sink), 4);
    assert_eq!(states(&spool), vec![State::Pending], "still owed");
}
