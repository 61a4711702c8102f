//! What makes a spool write survive a power cut: an `fsync` of the files sled wrote.
//!
//! sled 0.34's `flush()` writes its log with `sync_file_range` on Linux (its
//! `pagecache/iobuf.rs`), which persists neither the file's metadata nor the device's write
//! cache; a real `fsync` comes only from its background flusher, every 500 ms. Its `conf` file
//! is written once, without a sync, so a cut soon after the first start leaves it empty (and
//! sled rewrites it, unsynced again, on every later start); the blobs it writes for pages over a
//! quarter of a segment (`blobs/`) are never synced at all; a snapshot is renamed into place
//! without syncing the directory. So each durability point of the spool — an ingest with its
//! cursor, a recorded batch of deliveries, the end of a migration or salvage — is
//! [`Files::sync`] after sled's flush: `fdatasync` of the `db` file and of each blob created
//! since the last sync (then of `blobs/` itself). One sync per fetched chunk or recorded batch,
//! never per mail. [`Files::open`] syncs everything sled may have left unsynced while it opened
//! (recovery, snapshot, `conf`) and the directories that name them.
//!
//! # Page cache
//! Since Linux 6.16 ext4 caches a file in large folios (up to several MiB), and a small write
//! into a folio a sync has cleaned dirties — and counts in `write_bytes`, and holds in memory —
//! the whole folio again. sled's log gets large folios two ways: its recovery zeroes the torn
//! tail of a segment with one large write, just where it appends next, and its reads of pages
//! evicted from its cache read ahead. A process that runs long and writes small (the daemon)
//! calls [`Files::cache_by_page`] once open: the clean cache of the log is dropped and sled's
//! own descriptor of it reads no further than asked (`POSIX_FADV_RANDOM`), so each append
//! touches the 4 KiB pages it writes, as on older kernels. Measured with `cargo bench --bench
//! bench -- catchup` (docs/benchmarks.md): `write_bytes` per mail delivered 1.39–1.50 KiB in
//! every round since (fifteen, glibc and musl builds), against 1.56–4.96 without either advice (and 4.2–13.4 with the drop alone,
//! 2.0–4.7 with no read-ahead alone). What reaches the device is the same either way. The
//! short-lived commands (`spool ls`, `dump`) keep the defaults: they read, and read-ahead serves
//! them.
//!
//! # Test hook
//! `MAILBEACON_TEST_SEGMENT_SIZE` (bytes, a power of two from 4 KiB to 16 MiB) sets sled's
//! segment size, for tests/powercut.rs only: small segments make sled write blobs and move
//! live pages out of segments it reclaims all the time, so power cuts land during that work
//! too. An environment variable rather than a build feature, so that the test runs the very
//! binary that ships; a spool made with it cannot be opened without it (sled refuses a
//! different segment size), and the daemon logs a warning whenever it is set. (sled 0.34's
//! `snapshot_after_ops` does nothing; it writes a snapshot on every open that finds new log,
//! so cuts during start-up land in snapshot work.)

use super::SpoolError;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const SEGMENT_HOOK: &str = "MAILBEACON_TEST_SEGMENT_SIZE";

/// sled's configuration for the spool in `dir`, with the test hook's segment size when set.
pub(super) fn config(dir: &Path, cache_bytes: u64) -> sled::Config {
    let config = sled::Config::new().path(dir).cache_capacity(cache_bytes);
    match test_segment_size() {
        Some(size) => {
            log::warn!("spool: test hook {SEGMENT_HOOK}={size} sets sled's segment size");
            config.segment_size(size)
        }
        None => config,
    }
}

fn test_segment_size() -> Option<usize> {
    let size: usize = std::env::var(SEGMENT_HOOK).ok()?.trim().parse().ok()?;
    (size.is_power_of_two() && (4096..=1 << 24).contains(&size)).then_some(size)
}

/// sled's files in one spool directory, kept open for syncing.
pub(super) struct Files {
    dir: PathBuf,
    db: File,
    /// The highest blob (sled names them by log sequence number) synced so far; `None` before
    /// the first sync, which syncs them all.
    blobs_synced: Mutex<Option<u64>>,
}

impl Files {
    /// Syncs what sled wrote while opening `dir` — the log (recovery zeroes torn segments),
    /// snapshot, `conf`, every blob — and the directories, so a cut right after start finds all
    /// of it.
    pub(super) fn open(dir: &Path) -> Result<Files, SpoolError> {
        let db = File::open(dir.join("db")).map_err(super::witness::io_error)?;
        let files = Files {
            dir: dir.to_path_buf(),
            db,
            blobs_synced: Mutex::new(None),
        };
        let sync_all = || -> std::io::Result<()> {
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    File::open(entry.path())?.sync_all()?;
                }
            }
            files.sync_blobs()?;
            File::open(dir)?.sync_all()
        };
        sync_all().map_err(super::witness::io_error)?;
        Ok(files)
    }

    /// Drops the clean page cache of sled's log and turns read-ahead off on every descriptor this
    /// process has open on it (sled's own among them) — see "Page cache" above. Advice only:
    /// returns how many descriptors took it, and a failure changes nothing but the figure.
    pub(super) fn cache_by_page(&self) -> usize {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let Ok(db) = self.db.metadata() else {
            return 0;
        };
        // SAFETY: posix_fadvise(2) on a descriptor this struct owns; it only advises the kernel.
        unsafe {
            libc::posix_fadvise(self.db.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
        }
        let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
            return 0;
        };
        let mut advised = 0;
        for entry in fds.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            // The descriptor's file, followed through its /proc link; one closed since is skipped.
            let Ok(file) = std::fs::metadata(entry.path()) else {
                continue;
            };
            if (file.dev(), file.ino()) != (db.dev(), db.ino()) {
                continue;
            }
            // SAFETY: as above; the descriptor is open in this process (a race with its closing
            // can at worst advise whatever file reuses the number, which changes no data).
            if unsafe { libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_RANDOM) } == 0 {
                advised += 1;
            }
        }
        advised
    }

    /// Makes everything sled flushed durable: the log and the blobs created since the last sync.
    pub(super) fn sync(&self) -> Result<(), SpoolError> {
        self.db.sync_data().map_err(super::witness::io_error)?;
        self.sync_blobs().map_err(super::witness::io_error)
    }

    fn sync_blobs(&self) -> std::io::Result<()> {
        let blobs = self.dir.join("blobs");
        let Ok(mut synced) = self.blobs_synced.lock() else {
            return Err(std::io::Error::other("blob sync state poisoned"));
        };
        let (first, after) = (synced.is_none(), synced.unwrap_or(0));
        let mut newest = after;
        let mut any = first;
        let entries = match std::fs::read_dir(&blobs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Some(lsn) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if first || lsn > after {
                match File::open(entry.path()) {
                    Ok(f) => f.sync_data()?,
                    // sled removes blobs it no longer needs, at any moment.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                newest = newest.max(lsn);
                any = true;
            }
        }
        // A blob is found by its name: the directory entry must be durable too.
        if any {
            File::open(&blobs)?.sync_all()?;
        }
        *synced = Some(newest);
        Ok(())
    }
}
