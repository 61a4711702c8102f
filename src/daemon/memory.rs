//! The allocator's side of the daemon's memory: glibc's defaults suit a server with many busy
//! threads, not an appliance that idles with a large spool open.
//!
//! Two habits of glibc's `malloc` keep freed memory resident in this process: one arena per
//! thread that ever allocated (tokio's workers, sled's flusher, one per IMAP watcher), and a
//! threshold for `mmap` that rises each time a large block is freed, after which sled's 512 KiB
//! log buffers come from the heap and their holes stay there. [`tune`] caps both; [`trim`],
//! called by housekeeping, hands the heap's free pages back. Measured in `benches/daemon.rs`
//! (`backlog`). musl's allocator (the static Pi builds) returns memory by itself: there both
//! are no-ops.
//!
//! And one habit of the kernel, whatever the allocator: where transparent huge pages are
//! `always` on (Debian's arm64 kernel, which the emulated Pi 3B boots), the first touch of an
//! anonymous region that spans an aligned 2 MiB makes it a 2 MiB page: each thread's stack,
//! sled's log buffers. The daemon's peak RSS on the emulated Pi was 37 MB, 24 MB of it huge
//! pages (`AnonHugePages`, tests/powercut.rs `pi_3b_backlog_peak_memory`). A process that
//! holds a few MB gains nothing from them, so [`tune`] opts this one out.

/// Caps glibc's arenas and fixes its `mmap` threshold, and turns transparent huge pages off for
/// this process. Called first by every command, before any thread starts.
pub(crate) fn tune() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments and sets a flag of this process only.
    // A kernel without it refuses with EINVAL, which changes nothing: the result is not needed.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 * 1024);
    }
}

/// Returns free heap pages to the kernel.
pub(crate) fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases memory malloc holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}
