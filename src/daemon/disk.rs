//! Opening the spool, and reopening it after disk trouble: sled refuses every write after one
//! failed, so while the disk cannot be written the spool is closed, and it is reopened only once
//! a probe write of a segment's size reaches the disk. At start, a spool sled refuses is
//! rebuilt without an operator when no mailbox loses its cursor ([`open_or_rebuild`]).

use super::{spool_dir, RunError};
use crate::config::Config;
use crate::spool::{Spool, SpoolError};
use std::path::Path;
use std::time::Duration;

/// Opens the spool, waiting up to 10 s while another process holds it: a `status` or `spool`
/// command run while the daemon starts holds the lock only for a moment.
fn open_spool(config: &Config) -> Result<Spool, SpoolError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match Spool::open(&spool_dir(config), config.spool_cache_bytes) {
            Err(SpoolError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Ok(spool) => {
                spool.count_bytes_if_missing()?;
                spool.cache_log_by_page();
                spool.set_size_limit(config.spool_max_bytes);
                return Ok(spool);
            }
            other => return other,
        }
    }
}

/// [`open_spool`] at start: a spool found damaged is rebuilt (`spool::rebuild`, the damaged
/// one kept aside) and reopened; the second value then says what happened, for the log, the
/// LED and the status. A rebuild that would lose a cursor is undone and the damage returned.
pub(crate) fn open_or_rebuild(config: &Config) -> Result<(Spool, Option<Rebuilt>), SpoolError> {
    let damage = match open_spool(config) {
        Err(e) if e.is_damaged() => e,
        other => return other.map(|s| (s, None)),
    };
    let dir = spool_dir(config);
    log::error!("spool damaged ({damage}); rebuilding it from what is readable");
    let Some(done) = crate::spool::rebuild(&dir, config.spool_cache_bytes)? else {
        log::error!(
            "spool: a rebuild would lose a mailbox's cursor (its mail would be skipped in \
             silence); the damaged spool is left as it was"
        );
        return Err(damage);
    };
    let notice = format!(
        "spool was damaged ({damage}) and rebuilt at start: {} item(s) and {} cursor(s) \
         copied, {} record(s) unreadable{}; the damaged spool is kept at {}",
        done.items,
        done.cursors,
        done.unreadable,
        if done.unreadable > 0 {
            " (their mail is still on the server, below the cursor: look for it there)"
        } else {
            ""
        },
        done.damaged.display()
    );
    log::error!("{notice}");
    let spool = open_spool(config)?;
    Ok((
        spool,
        Some(Rebuilt {
            notice,
            unreadable: done.unreadable,
        }),
    ))
}

/// What a rebuild at start did.
pub(crate) struct Rebuilt {
    pub(crate) notice: String,
    /// Records that could not be read: mail only the server still has.
    pub(crate) unreadable: u64,
}

/// Reopens the spool once its directory takes a write again; `None` while the disk is still in
/// trouble, to be tried again at the next recheck.
pub(crate) async fn reopen(config: &Config) -> Result<Option<Spool>, RunError> {
    if let Err(e) = writable(&spool_dir(config)) {
        log::debug!("spool: still not writable: {e}");
        return Ok(None);
    }
    match tokio::task::spawn_blocking({
        let c = config.clone();
        move || open_spool(&c)
    })
    .await
    {
        Ok(Ok(s)) => Ok(Some(s)),
        Ok(Err(e)) if e.is_disk_full() => {
            log::warn!("spool: cannot reopen yet ({e}); trying again");
            Ok(None)
        }
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(std::io::Error::other(e.to_string()).into()),
    }
}

/// Whether `dir` takes a write that reaches the disk: a file of 1 MiB, synced, then removed
/// (sled needs room for a segment, not just a byte).
fn writable(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let probe = dir.join(".writable-probe");
    let result = (|| {
        let mut f = std::fs::File::create(&probe)?;
        f.write_all(&vec![0u8; 1 << 20])?;
        f.sync_all()
    })();
    let _ = std::fs::remove_file(&probe);
    result
}
