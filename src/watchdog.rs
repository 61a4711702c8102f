//! Liveness of the loops that do the work, for an honest systemd watchdog.
//!
//! Each loop (every IMAP watcher, every delivery loop, the indicator) holds a [`Beat`] and
//! checks in before each step with a promise: "I will be back within `d`" — the step's own
//! bound (a read timeout, a backoff wait, an LED step) plus slack. A loop waiting for an event
//! that may never come (a sink with nothing to send) promises nothing. `WATCHDOG=1` goes to
//! systemd only while no loop has broken its promise; a loop stuck past it (a read that never
//! times out, a GPIO write that blocks, a deadlock) withholds it, and `WatchdogSec=` restarts
//! the service. Since the check runs on the async runtime, a frozen runtime withholds it too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// No promise: the loop waits for an event.
const WAITING: u64 = u64::MAX;

struct Inner {
    name: String,
    epoch: Instant,
    /// Milliseconds since `epoch` by which the loop promised to check in again.
    due_ms: AtomicU64,
}

/// One loop's check-in handle. Dropping it (the loop ended) removes it from the watch.
#[derive(Clone)]
pub struct Beat(Arc<Inner>);

impl Beat {
    /// A beat nobody watches (tests and tools that run a loop on its own).
    pub fn detached(name: &str) -> Beat {
        Beat(Arc::new(Inner {
            name: name.to_string(),
            epoch: Instant::now(),
            due_ms: AtomicU64::new(WAITING),
        }))
    }

    /// Checks in, promising to check in again within `d`.
    pub(crate) fn within(&self, d: Duration) {
        let due = self.0.epoch.elapsed().saturating_add(d);
        let ms = u64::try_from(due.as_millis()).unwrap_or(WAITING - 1);
        self.0.due_ms.store(ms.min(WAITING - 1), Ordering::Relaxed);
    }

    /// Checks in before waiting for an event that may not come; promises nothing.
    pub(crate) fn waiting(&self) {
        self.0.due_ms.store(WAITING, Ordering::Relaxed);
    }

    pub(crate) fn name(&self) -> &str {
        &self.0.name
    }

    /// How long past its promise the loop is, if it is.
    fn overdue(&self) -> Option<Duration> {
        let due = self.0.due_ms.load(Ordering::Relaxed);
        if due == WAITING {
            return None;
        }
        let late = self
            .0
            .epoch
            .elapsed()
            .checked_sub(Duration::from_millis(due))?;
        (!late.is_zero()).then_some(late)
    }
}

/// Every live loop's beat.
#[derive(Clone, Default)]
pub(crate) struct Beats {
    beats: Arc<Mutex<Vec<Weak<Inner>>>>,
}

impl Beats {
    pub(crate) fn new() -> Beats {
        Beats::default()
    }

    /// Registers a loop; it starts with a generous first promise of `first`.
    pub(crate) fn beat(&self, name: impl Into<String>, first: Duration) -> Beat {
        let inner = Arc::new(Inner {
            name: name.into(),
            epoch: Instant::now(),
            due_ms: AtomicU64::new(WAITING),
        });
        if let Ok(mut beats) = self.beats.lock() {
            beats.retain(|w| w.strong_count() > 0);
            beats.push(Arc::downgrade(&inner));
        }
        let beat = Beat(inner);
        beat.within(first);
        beat
    }

    /// The loops past their promise, with how late each is; empty when all are well.
    pub(crate) fn overdue(&self) -> Vec<(String, Duration)> {
        let Ok(mut beats) = self.beats.lock() else {
            return vec![("watchdog registry".into(), Duration::ZERO)];
        };
        beats.retain(|w| w.strong_count() > 0);
        beats
            .iter()
            .filter_map(Weak::upgrade)
            .map(Beat)
            .filter_map(|b| b.overdue().map(|late| (b.name().to_string(), late)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_promise_is_overdue_until_the_loop_checks_in_again() {
        let beats = Beats::new();
        let imap = beats.beat("imap home/INBOX", Duration::from_millis(30));
        let sink = beats.beat("sink alerts", Duration::from_secs(60));
        assert!(beats.overdue().is_empty());
        std::thread::sleep(Duration::from_millis(60));
        let late = beats.overdue();
        assert_eq!(late.len(), 1, "{late:?}");
        assert_eq!(late[0].0, "imap home/INBOX");
        assert!(late[0].1 >= Duration::from_millis(20), "{late:?}");
        imap.within(Duration::from_secs(60));
        assert!(beats.overdue().is_empty());
        // Waiting for an event promises nothing, so it is never late.
        sink.waiting();
        imap.waiting();
        std::thread::sleep(Duration::from_millis(5));
        assert!(beats.overdue().is_empty());
    }

    #[test]
    fn a_finished_loop_leaves_the_watch() {
        let beats = Beats::new();
        let gone = beats.beat("imap old/INBOX", Duration::from_millis(1));
        let clone = gone.clone();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(beats.overdue().len(), 1);
        drop(gone);
        assert_eq!(beats.overdue().len(), 1, "a clone still holds it");
        drop(clone);
        assert!(beats.overdue().is_empty());
    }
}
