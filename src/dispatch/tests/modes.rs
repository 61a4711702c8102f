//! Digest buckets, audit mirrors and failover with scripted sinks on a real spool. The digest
//! schedule is the wall clock, so these run in real time (a few seconds in all).

use super::*;
use crate::config::{Mode, Severity};

fn bucket(mode: Mode, severity: Severity, sinks: &[&str]) -> Bucket {
    Bucket {
        name: "b".into(),
        severity,
        mode,
        sinks: sinks.iter().map(|s| s.to_string()).collect(),
        rules: vec![],
        mention: None,
        digest_every: (mode == Mode::Digest).then_some(Duration::from_secs(3600)),
        fallback: None,
        escalate_after: None,
        audit: None,
        applied_tags: Vec::new(),
        thread_id: None,
        upload_max: None,
    }
}

struct Run {
    stop: Stop,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    digests: Arc<digest::Digests>,
}

/// A loop per sink over one spool, sharing what a pipeline shares, plus the failover watcher.
fn launch(sinks: &[Arc<Scripted>], spool: &Spool, buckets: Vec<Bucket>) -> Run {
    let buckets = Arc::new(buckets);
    let (digests, dead) = (
        Arc::new(digest::Digests::default()),
        Arc::new(failover::DeadSinks::default()),
    );
    let guard = Arc::new(Guard::new(100));
    let stop = Stop::new();
    let mut tasks = Vec::new();
    let mut wakes = std::collections::HashMap::new();
    for sink in sinks {
        let wake = Arc::new(Notify::new());
        wakes.insert(sink.name.clone(), wake.clone());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        std::mem::forget(rx);
        let d = Dispatcher {
            sink: sink.clone(),
            spool: spool.clone(),
            buckets: buckets.clone(),
            health: tx,
            wake,
            probe_every: Duration::from_secs(60),
            probe_max: Duration::from_secs(60),
            start_dead: false,
            disk_full: Default::default(),
            beat: crate::watchdog::Beat::detached("sink test"),
            timeout: Duration::from_secs(30),
            guard: guard.clone(),
            digests: digests.clone(),
            dead: dead.clone(),
            links: Default::default(),
            forum: None,
            accounts: Default::default(),
        };
        tasks.push(tokio::spawn(d.run(stop.clone())));
    }
    digests.set_wakes(wakes.clone());
    tasks.push(tokio::spawn(failover::watch(
        buckets,
        spool.clone(),
        dead,
        wakes,
        stop.clone(),
    )));
    Run {
        stop,
        tasks,
        digests,
    }
}

impl Run {
    async fn end(self) {
        self.stop.trigger();
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..100 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn digest_lines(post: &serde_json::Value) -> usize {
    post["embeds"][0]["description"]
        .as_str()
        .map_or(0, |d| d.lines().count())
}

#[tokio::test]
async fn a_digest_waits_for_its_time_then_lists_every_mail_once_acknowledged() {
    let spool = spool_for(30, &["s"]);
    let sink = scripted(delivered());
    let run = launch(
        std::slice::from_ref(&sink),
        &spool,
        vec![bucket(Mode::Digest, Severity::P3, &["s"])],
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(post_count(&sink), 0, "nothing before the digest is due");
    assert!(states(&spool).iter().all(|s| *s == State::Pending));
    run.digests
        .flush_now(&["b".into()], chrono::Utc::now().timestamp());
    until("the digest", || {
        states(&spool).iter().all(|s| *s == State::Delivered)
    })
    .await;
    run.end().await;
    let posts = sink.posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 1, "one message lists all 30");
    assert_eq!(posts[0]["embeds"][0]["title"], "Digest · b · 30 mails");
    assert_eq!(digest_lines(&posts[0]), 30);
}

#[tokio::test]
async fn a_digest_that_fails_keeps_its_mails_pending_and_is_sent_again() {
    let spool = spool_for(12, &["s"]);
    let sink = scripted(|n| match n {
        1 => Outcome::Transient {
            reason: "HTTP 502".into(),
        },
        n => Outcome::Delivered {
            message_id: format!("m{n}"),
        },
    });
    let run = launch(
        std::slice::from_ref(&sink),
        &spool,
        vec![bucket(Mode::Digest, Severity::P3, &["s"])],
    );
    run.digests
        .flush_now(&["b".into()], chrono::Utc::now().timestamp());
    until("the first attempt", || post_count(&sink) == 1).await;
    assert!(
        states(&spool).iter().all(|s| *s == State::Pending),
        "an unacknowledged digest delivers nothing"
    );
    until("the repeat", || {
        states(&spool).iter().all(|s| *s == State::Delivered)
    })
    .await;
    run.end().await;
    let posts = sink.posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 2);
    assert_eq!(
        digest_lines(&posts[1]),
        12,
        "the repeat lists every mail again"
    );
}

#[tokio::test]
async fn a_digest_falls_due_at_its_boundary() {
    let spool = spool_for(5, &["s"]);
    let sink = scripted(delivered());
    let mut b = bucket(Mode::Digest, Severity::P3, &["s"]);
    b.digest_every = Some(Duration::from_secs(1));
    let run = launch(std::slice::from_ref(&sink), &spool, vec![b]);
    until("the digest", || {
        states(&spool).iter().all(|s| *s == State::Delivered)
    })
    .await;
    run.end().await;
    assert_eq!(post_count(&sink), 1);
}

#[tokio::test]
async fn every_delivery_is_mirrored_as_one_line_to_the_audit_sink() {
    let spool = spool_for(3, &["s"]);
    let sink = scripted(delivered());
    let log = named(
        scripted(|_| Outcome::Transient {
            reason: "HTTP 503".into(),
        }),
        "log",
        "webhook 2",
    );
    let mut b = bucket(Mode::Push, Severity::P3, &["s"]);
    b.audit = Some("log".into());
    let run = launch(&[sink.clone(), log.clone()], &spool, vec![b]);
    until("the audit attempt", || post_count(&log) >= 1).await;
    assert!(
        states(&spool).iter().all(|s| *s == State::Delivered),
        "an audit line that did not go out yet holds no mail pending"
    );
    *log.answer.lock().unwrap() = Box::new(delivered());
    until("the audit lines", || {
        spool.iter().all(|i| {
            i.unwrap()
                .delivery("log")
                .is_some_and(|d| d.state == State::Delivered)
        })
    })
    .await;
    run.end().await;
    assert_eq!(post_count(&sink), 1);
    let last = log.posts.lock().unwrap().last().cloned().unwrap();
    let lines: Vec<String> = last["content"]
        .as_str()
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("✓ b → s: "), "{lines:?}");
    assert!(last.get("embeds").is_none());
}

#[tokio::test]
async fn a_bucket_whose_sinks_are_dead_fails_over_and_still_owes_its_own_sink() {
    let spool = spool_for(4, &["s"]);
    let sink = scripted(|_| Outcome::Dead {
        reason: "HTTP 404 (code 10015: Unknown Webhook)".into(),
    });
    let fallback = named(scripted(delivered()), "f", "webhook 2");
    let mut b = bucket(Mode::Push, Severity::P3, &["s"]);
    b.fallback = Some("f".into());
    let run = launch(&[sink.clone(), fallback.clone()], &spool, vec![b]);
    until("the fallback's delivery", || {
        spool.iter().all(|i| {
            i.unwrap()
                .delivery("f")
                .is_some_and(|d| d.state == State::Delivered)
        })
    })
    .await;
    run.end().await;
    assert_eq!(post_count(&fallback), 1, "4 mails in one message");
    assert_eq!(post_count(&sink), 1, "a dead sink is not posted to again");
    assert!(
        states(&spool).iter().all(|s| *s == State::Pending),
        "the dead sink still owes them"
    );
}

#[tokio::test]
async fn urgent_mail_that_waits_too_long_is_escalated_and_other_mail_is_not() {
    let spool = spool_for(2, &["s"]);
    let sink = scripted(|_| Outcome::Transient {
        reason: "HTTP 500".into(),
    });
    let fallback = named(scripted(delivered()), "f", "webhook 2");
    let mut b = bucket(Mode::Push, Severity::P1, &["s"]);
    b.fallback = Some("f".into());
    b.escalate_after = Some(Duration::from_secs(1));
    let run = launch(&[sink.clone(), fallback.clone()], &spool, vec![b.clone()]);
    until("the escalation", || post_count(&fallback) == 1).await;
    run.end().await;
    // The same wait on a sink that delivers: nothing to escalate.
    let spool = spool_for(2, &["s"]);
    let (sink, fallback) = (
        scripted(delivered()),
        named(scripted(delivered()), "f", "webhook 2"),
    );
    let run = launch(&[sink.clone(), fallback.clone()], &spool, vec![b]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    run.end().await;
    assert_eq!((post_count(&sink), post_count(&fallback)), (1, 0));
}
