//! Delivery loops under the guard they share: pacing from the headers, a global 429, a ban,
//! the invalid-request limit.

use super::*;

#[tokio::test(start_paused = true)]
async fn nothing_remaining_waits_for_the_reset_before_sending() {
    let spool = spool_with(25);
    let sink = scripted(delivered());
    *sink.pace.lock().unwrap() = Pace {
        bucket: Some("b1".into()),
        remaining: Some(0),
        reset_after: Some(Duration::from_secs(5)),
        channel: None,
    };
    let (stop, task, _rx) = start(sink.clone(), &spool);
    tokio::time::sleep(Duration::from_millis(4900)).await;
    assert_eq!(post_count(&sink), 1, "no second post before Reset-After");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(post_count(&sink), 2);
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.trigger();
    task.await.unwrap();
    assert_eq!(post_count(&sink), 3);
    assert!(states(&spool).iter().all(|s| *s == State::Delivered));
}

#[tokio::test(start_paused = true)]
async fn a_global_429_pauses_every_sink() {
    let spool = spool_for(1, &["a", "b"]);
    let guard = Arc::new(Guard::new(100));
    let a = named(
        scripted(|n| match n {
            1 => Outcome::RateLimited {
                retry_after: Duration::from_secs(30),
                scope: Scope::Global,
            },
            _ => Outcome::Delivered {
                message_id: "a".into(),
            },
        }),
        "a",
        "webhook 1",
    );
    let b = named(scripted(delivered()), "b", "webhook 2");
    let (stop_a, task_a, _ra) = start_guarded(a.clone(), &spool, guard.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(post_count(&a), 1);
    let (stop_b, task_b, mut rb) = start_guarded(b.clone(), &spool, guard.clone());
    tokio::time::sleep(Duration::from_secs(28)).await;
    assert_eq!(
        post_count(&b),
        0,
        "another webhook waits out the global limit too"
    );
    assert_eq!(post_count(&a), 1, "a 429 is not retried early");
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (stop, task) in [(stop_a, task_a), (stop_b, task_b)] {
        stop.trigger();
        task.await.unwrap();
    }
    assert_eq!((post_count(&a), post_count(&b)), (2, 1));
    assert!(states(&spool).iter().all(|s| *s == State::Delivered));
    let mut told = false;
    while let Ok(ev) = rb.try_recv() {
        told |= matches!(
            ev,
            Event::Sink {
                state: SinkState::RateLimited,
                ..
            }
        );
    }
    assert!(told, "the paused sink says so in its state");
    let item = spool.iter().next().unwrap().unwrap();
    assert_eq!(
        item.delivery("a").unwrap().attempts,
        1,
        "a 429 is no failure"
    );
}

#[tokio::test(start_paused = true)]
async fn a_ban_pauses_every_sink_then_one_probe_lifts_it() {
    let spool = spool_for(1, &["a", "b"]);
    let guard = Arc::new(Guard::new(100));
    let a = named(
        scripted(|n| match n {
            1 => Outcome::RateLimited {
                retry_after: Duration::from_secs(60),
                scope: Scope::Banned,
            },
            _ => Outcome::Delivered {
                message_id: "a".into(),
            },
        }),
        "a",
        "webhook 1",
    );
    let b = named(scripted(delivered()), "b", "webhook 2");
    for s in [&a, &b] {
        *s.probe_ok.lock().unwrap() = true;
    }
    let (stop_a, task_a, _ra) = start_guarded(a.clone(), &spool, guard.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (stop_b, task_b, _rb) = start_guarded(b.clone(), &spool, guard.clone());
    tokio::time::sleep(Duration::from_secs(58)).await;
    let probes = || *a.probes.lock().unwrap() + *b.probes.lock().unwrap();
    assert_eq!((post_count(&a), post_count(&b), probes()), (1, 0, 0));
    assert_eq!(
        guard.snapshot(Instant::now(), 0).state,
        crate::health::DiscordState::Banned
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    for (stop, task) in [(stop_a, task_a), (stop_b, task_b)] {
        stop.trigger();
        task.await.unwrap();
    }
    assert_eq!(probes(), 1, "one probe asks for everyone");
    assert_eq!((post_count(&a), post_count(&b)), (2, 1));
    assert!(states(&spool).iter().all(|s| *s == State::Delivered));
}

#[tokio::test(start_paused = true)]
async fn at_the_invalid_request_limit_every_sink_waits_for_the_window() {
    let spool = spool_for(1, &["a", "b"]);
    let guard = Arc::new(Guard::new(3));
    // Three answers that count (429, user scope), one second apart.
    let a = named(
        scripted(|n| match n {
            1..=3 => Outcome::RateLimited {
                retry_after: Duration::from_secs(1),
                scope: Scope::User,
            },
            _ => Outcome::Delivered {
                message_id: "a".into(),
            },
        }),
        "a",
        "webhook 1",
    );
    let b = named(scripted(delivered()), "b", "webhook 2");
    let (stop_a, task_a, _ra) = start_guarded(a.clone(), &spool, guard.clone());
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(post_count(&a), 3);
    let (stop_b, task_b, _rb) = start_guarded(b.clone(), &spool, guard.clone());
    tokio::time::sleep(Duration::from_secs(590)).await;
    assert_eq!(
        (post_count(&a), post_count(&b)),
        (3, 0),
        "nobody sends until the first counted answer is 10 minutes old"
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    for (stop, task) in [(stop_a, task_a), (stop_b, task_b)] {
        stop.trigger();
        task.await.unwrap();
    }
    assert_eq!((post_count(&a), post_count(&b)), (4, 1));
}
