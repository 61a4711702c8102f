//! What the tests that boot a QEMU machine share (tests/pi.rs, tests/powercut.rs).

use std::sync::{Mutex, MutexGuard};

/// One VM at a time: each is a TCG guest, and this machine may have 2 cores. Held for the
/// whole of a test that boots one; a test that panicked while holding it does not stop the next.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static ONE_VM: Mutex<()> = Mutex::new(());
    ONE_VM.lock().unwrap_or_else(|e| e.into_inner())
}
