//! A stop signal that both blocking threads (IMAP) and async tasks (dispatch, indicator) can
//! wait on. The caller owns the trigger; every worker finishes the unit of work it holds, except
//! a read from an IMAP server, which is cut (its socket shut down): nothing read in it has been
//! spooled, so it is read again after the restart.

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone)]
pub struct Stop {
    flag: Arc<(Mutex<bool>, Condvar)>,
    tx: Arc<watch::Sender<bool>>,
    /// Sockets a blocked reader waits on (an IMAP session); shut down on trigger so it wakes.
    sockets: Arc<Mutex<Vec<(u64, TcpStream)>>>,
    next_socket: Arc<AtomicU64>,
}

/// While held, stopping shuts the socket down; dropping it unregisters the socket.
pub(crate) struct Interrupt<'a> {
    stop: &'a Stop,
    id: u64,
}

impl Drop for Interrupt<'_> {
    fn drop(&mut self) {
        if let Ok(mut sockets) = self.stop.sockets.lock() {
            sockets.retain(|(id, _)| *id != self.id);
        }
    }
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
            sockets: Arc::default(),
            next_socket: Arc::default(),
        }
    }

    /// Makes a read blocked on `socket` end when this stop triggers: the socket is shut down
    /// (at once if already stopped). Only for waits whose interruption loses nothing.
    pub(crate) fn interrupts(&self, socket: TcpStream) -> Interrupt<'_> {
        let id = self.next_socket.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut sockets) = self.sockets.lock() {
            if self.is_stopped() {
                let _ = socket.shutdown(Shutdown::Both);
            }
            sockets.push((id, socket));
        }
        Interrupt { stop: self, id }
    }

    pub fn trigger(&self) {
        let (lock, cv) = &*self.flag;
        if let Ok(mut stopped) = lock.lock() {
            *stopped = true;
        }
        cv.notify_all();
        if let Ok(sockets) = self.sockets.lock() {
            self.tx.send_replace(true);
            for (_, s) in sockets.iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        } else {
            self.tx.send_replace(true);
        }
    }

    pub(crate) fn is_stopped(&self) -> bool {
        *self.tx.borrow()
    }

    /// Blocks up to `d`; returns true when stopped (early or already).
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        let (lock, cv) = &*self.flag;
        let Ok(guard) = lock.lock() else { return true };
        match cv.wait_timeout_while(guard, d, |stopped| !*stopped) {
            Ok((stopped, _)) => *stopped,
            Err(_) => true,
        }
    }

    /// Completes once stopped.
    pub(crate) async fn wait(&self) {
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

    #[test]
    fn stopping_wakes_a_blocked_reader() {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let _server = listener.accept().unwrap();
        let stop = Stop::new();
        let s2 = stop.clone();
        let reader = std::thread::spawn(move || {
            let _guard = s2.interrupts(client.try_clone().unwrap());
            let mut buf = [0u8; 8];
            (&client).read(&mut buf).map_err(|e| e.kind())
        });
        std::thread::sleep(Duration::from_millis(50));
        stop.trigger();
        // A shut-down socket reads end-of-stream instead of blocking forever.
        assert_eq!(reader.join().unwrap(), Ok(0));
        // Registering after the stop shuts the socket at once.
        let late = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let _guard = stop.interrupts(late.try_clone().unwrap());
        assert_eq!((&late).read(&mut [0u8; 1]).ok(), Some(0));
    }
}
