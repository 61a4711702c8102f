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

/// Caps glibc's arenas and fixes its `mmap` threshold. Called first by every command, before
/// any thread starts.
pub(crate) fn tune() {
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
