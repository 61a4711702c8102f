use super::*;
use crate::discord::Pace;
use crate::mail::Summary;
use crate::spool::{Cursor, NewItem, State};
use std::sync::Mutex;

/// A sink that answers from a script and records what it was asked.
struct Scripted {
    posts: Mutex<Vec<serde_json::Value>>,
    probes: Mutex<u32>,
    answer: Mutex<Box<dyn FnMut(usize) -> Outcome + Send>>,
    probe_ok: Mutex<bool>,
}

impl Sink for Scripted {
    fn name(&self) -> &str {
        "s"
    }
    fn post(&self, body: &serde_json::Value, _nonce: &str) -> Reply {
        let n = {
            let mut p = self.posts.lock().unwrap();
            p.push(body.clone());
            p.len()
        };
        Reply {
            outcome: (self.answer.lock().unwrap())(n),
            pace: Pace::default(),
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
            outcome,
            pace: Pace::default(),
        }
    }
}

fn scripted(answer: impl FnMut(usize) -> Outcome + Send + 'static) -> Arc<Scripted> {
    Arc::new(Scripted {
        posts: Mutex::default(),
        probes: Mutex::default(),
        answer: Mutex::new(Box::new(answer)),
        probe_ok: Mutex::new(false),
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
            summary: Summary {
                subject: format!("mail {uid}"),
                ..Summary::default()
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
    };
    let stop = Stop::new();
    let task = tokio::spawn(d.run(stop.clone()));
    (stop, task, rx)
}

fn states(spool: &Spool) -> Vec<State> {
    spool.iter().map(|i| i.unwrap().state()).collect()
}

#[test]
fn backoff_doubles_to_five_minutes_with_jitter() {
    assert_eq!(backoff(1, 0.999_999).as_millis(), 999);
    assert_eq!(backoff(1, 0.0), Duration::from_millis(500));
    assert_eq!(backoff(4, 0.0), Duration::from_secs(4));
    assert_eq!(backoff(40, 0.0), Duration::from_secs(150));
    assert!(backoff(40, 0.999) < Duration::from_secs(300));
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
async fn refused_payloads_shrink_then_dead_letter() {
    let spool = spool_with(2);
    // Every form of item 1 is refused; item 2 passes once small.
    let sink = scripted(|n| match n {
        1 => Outcome::Rejected {
            reason: "HTTP 400 (code 50035)".into(),
        },
        2 | 3 => Outcome::Rejected {
            reason: "HTTP 400 (code 50035)".into(),
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
    let dead = spool.iter().next().unwrap().unwrap();
    assert!(dead.deliveries[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("50035"));
}
