//! A stop signal that both blocking threads (IMAP) and async tasks (dispatch, indicator) can
//! wait on. The caller owns the trigger; every worker finishes the unit of work it holds.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone)]
pub struct Stop {
    flag: Arc<(Mutex<bool>, Condvar)>,
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Stop {
    fn default() -> Self {
        Stop::new()
    }
}

impl Stop {
    pub fn new() -> Stop {
        Stop {
            flag: Arc::new((Mutex::new(false), Condvar::new())),
            tx: Arc::new(watch::channel(false).0),
        }
    }

    pub fn trigger(&self) {
        let (lock, cv) = &*self.flag;
        if let Ok(mut stopped) = lock.lock() {
            *stopped = true;
        }
        cv.notify_all();
        self.tx.send_replace(true);
    }

    pub fn is_stopped(&self) -> bool {
        *self.tx.borrow()
    }

    /// Blocks up to `d`; returns true when stopped (early or already).
    pub fn sleep(&self, d: Duration) -> bool {
        let (lock, cv) = &*self.flag;
        let Ok(guard) = lock.lock() else { return true };
        match cv.wait_timeout_while(guard, d, |stopped| !*stopped) {
            Ok((stopped, _)) => *stopped,
            Err(_) => true,
        }
    }

    /// Completes once stopped.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_sleepers_and_waiters() {
        let stop = Stop::new();
        assert!(!stop.sleep(Duration::from_millis(1)));
        let s2 = stop.clone();
        let t = std::thread::spawn(move || s2.sleep(Duration::from_secs(30)));
        stop.trigger();
        assert!(t.join().unwrap());
        assert!(stop.is_stopped());
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(stop.wait());
    }
}
