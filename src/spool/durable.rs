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
