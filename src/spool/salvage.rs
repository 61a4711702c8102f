//! `spool salvage`: what can still be read from a damaged spool, copied into a fresh one.
//!
//! The damaged directory is only ever renamed aside (`spool.damaged-<unix time>`), never
//! changed or deleted: sled is opened on a *copy* of it, because opening runs recovery, which
//! writes. Items keep their order but get new ids from the fresh spool (sled's id counter cannot
//! be set), each with its `ledger` entries laid over it (an entry that cannot be read leaves
//! that delivery owed: sent again, not lost); the derived trees (`owed`, `pending`, `counts`)
//! are rebuilt from the items and cursors are copied as they are. A record that does not
//! decode, or a tree sled cannot read to its end, is counted as unreadable, never guessed at.
//!
//! [`rebuild`] is the same copy made by the daemon at start, without an operator, when sled
//! refuses the spool (docs/design.md invariant 9). It keeps the result only when no mailbox loses
//! its cursor: a lost cursor would make that mailbox start again "from now" and skip mail in
//! silence, so then the damaged spool is put back as it was and the daemon refuses it, for an
//! operator to `salvage` knowing what it costs.

use super::{decode, encode, key2, Item, Spool, SpoolError, State};
use sled::Transactional;
use std::path::{Path, PathBuf};

/// What a salvage did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Salvaged {
    pub items: u64,
    pub cursors: u64,
    /// Records (items, cursors) that could not be read, plus one per tree sled could not read
    /// to its end.
    pub unreadable: u64,
    /// Where the damaged spool now is.
    pub damaged: PathBuf,
    /// Why sled could not open the damaged spool at all (then nothing was copied).
    pub unopenable: Option<String>,
    /// Mailboxes (`account/folder`) the damaged spool had a cursor for and the fresh one has
    /// not: they start again as on a first run.
    pub lost_cursors: Vec<String>,
}

/// How often a progress line is printed while copying items.
const PROGRESS_EVERY: u64 = 10_000;

/// Moves `dir` aside and fills a fresh spool at `dir` with everything readable from it.
/// `progress` receives a line every [`PROGRESS_EVERY`] items.
pub(crate) fn salvage(
    dir: &Path,
    cache_bytes: u64,
    progress: &mut dyn FnMut(String),
) -> Result<Salvaged, SpoolError> {
    let io = |what: &str, e: std::io::Error| SpoolError::Open {
        path: dir.to_path_buf(),
        source: sled::Error::Io(std::io::Error::new(e.kind(), format!("{what}: {e}"))),
    };
    let name = dir
        .file_name()
        .map_or("spool".into(), |n| n.to_string_lossy());
    let parent = dir.parent().unwrap_or(Path::new("."));
    let stamp = chrono::Utc::now().timestamp();
    let damaged = parent.join(format!("{name}.damaged-{stamp}"));
    let work = parent.join(format!("{name}.salvage-{stamp}"));
    std::fs::rename(dir, &damaged).map_err(|e| io("cannot move the damaged spool aside", e))?;
    if let Err(e) = copy_dir(&damaged, &work) {
        let _ = std::fs::remove_dir_all(&work);
        let _ = std::fs::rename(&damaged, dir);
        return Err(io(
            "cannot copy the damaged spool (it is left as it was)",
            e,
        ));
    }
    let fresh = Spool::open(dir, cache_bytes)?;
    let mut done = Salvaged {
        damaged,
        ..Salvaged::default()
    };
    match open_damaged(&work, cache_bytes) {
        Ok(old) => {
            let bodies = super::bodies::Bodies::open(&work)?;
            copy((&old, &bodies), &fresh, &mut done, progress)?
        }
        Err(e) => done.unopenable = Some(e.to_string()),
    }
    fresh.flush()?;
    if let Ok(witness) = super::witness::Witness::load(&work) {
        done.lost_cursors = witness.missing(|a, f| {
            fresh
                .cursors
                .contains_key(key2(a, f.as_bytes()))
                .unwrap_or(false)
        });
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(done)
}

/// The daemon's rebuild of a spool sled refuses: [`salvage`], kept only when every mailbox
/// kept its cursor. `Ok(None)` when it was undone: the damaged spool is back at `dir`,
/// unchanged.
pub(crate) fn rebuild(dir: &Path, cache_bytes: u64) -> Result<Option<Salvaged>, SpoolError> {
    let done = salvage(dir, cache_bytes, &mut |line| log::info!("spool: {line}"))?;
    if done.unopenable.is_none() && done.lost_cursors.is_empty() {
        return Ok(Some(done));
    }
    // The fresh spool was dropped when salvage returned; sled may hold its lock a moment.
    for _ in 0..50 {
        if std::fs::remove_dir_all(dir).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::rename(&done.damaged, dir).map_err(|e| SpoolError::Open {
        path: dir.to_path_buf(),
        source: sled::Error::Io(std::io::Error::new(
            e.kind(),
            format!(
                "cannot put the damaged spool back from {}: {e}",
                done.damaged.display()
            ),
        )),
    })?;
    Ok(None)
}

/// Opens the working copy; when sled refuses it, once more without its `conf` file (sled
/// writes a default one, which is what the spool uses), in case only that was damaged; then
/// once more without its snapshot too (`snap.*`: sled then reads the whole log, which the
/// snapshot only summarises; a snapshot cut while being written is what sled's issues #1527
/// and #1533 report).
fn open_damaged(work: &Path, cache_bytes: u64) -> Result<sled::Db, sled::Error> {
    let open = || super::durable::config(work, cache_bytes).open();
    let without = |prefix: &str| -> bool {
        let Ok(entries) = std::fs::read_dir(work) else {
            return false;
        };
        let mut removed = false;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(prefix) {
                removed |= std::fs::remove_file(entry.path()).is_ok();
            }
        }
        removed
    };
    open().or_else(|first| {
        for prefix in ["conf", "snap."] {
            if without(prefix) {
                if let Ok(db) = open() {
                    return Ok(db);
                }
            }
        }
        Err(first)
    })
}

/// Copies what `old` (its sled database and body log) holds into `fresh`.
fn copy(
    (old, bodies): (&sled::Db, &super::bodies::Bodies),
    fresh: &Spool,
    done: &mut Salvaged,
    progress: &mut dyn FnMut(String),
) -> Result<(), SpoolError> {
    let items = old.open_tree("items").map_err(SpoolError::Storage)?;
    // Where each delivery stands; an entry not read sends its mail again rather than lose it.
    let ledger = old.open_tree("ledger").ok();
    for kv in items.iter() {
        let Ok((k, v)) = kv else {
            done.unreadable += 1;
            break;
        };
        // A record the body log does not have intact is as unreadable as one that does not
        // decode.
        let Ok(mut item) = bodies.item(&k, &v) else {
            done.unreadable += 1;
            continue;
        };
        if let Some(ledger) = &ledger {
            super::ledger::overlay_lenient(ledger, &mut item);
        }
        item.id = fresh.db.generate_id()?;
        fresh.restore(&item)?;
        done.items += 1;
        if done.items % PROGRESS_EVERY == 0 {
            progress(format!("salvage: {} items copied…", done.items));
        }
    }
    let cursors = old.open_tree("cursors").map_err(SpoolError::Storage)?;
    for kv in cursors.iter() {
        let Ok((k, v)) = kv else {
            done.unreadable += 1;
            break;
        };
        if decode::<super::Cursor>(&k, &v).is_err() {
            done.unreadable += 1;
            continue;
        }
        fresh.cursors.insert(k, v)?;
        done.cursors += 1;
    }
    fresh.remember_cursors()?;
    // Actions owed on the server, under fresh keys: the old ones may be ids the fresh spool
    // hands out again. One that cannot be read is lost: its mail stays as it is on the server.
    let actions = old.open_tree("actions").map_err(SpoolError::Storage)?;
    for kv in actions.iter() {
        let Ok((k, v)) = kv else {
            done.unreadable += 1;
            break;
        };
        let Ok(mut action) = decode::<super::Action>(&k, &v) else {
            done.unreadable += 1;
            continue;
        };
        action.item = fresh.db.generate_id()?;
        fresh
            .actions
            .insert(action.item.to_be_bytes(), encode(&action))?;
    }
    Ok(())
}

impl Spool {
    /// Writes `item` under its id with its owed, pending and count entries, as ingest and
    /// record would have left them.
    fn restore(&self, item: &Item) -> Result<(), SpoolError> {
        let idb = item.id.to_be_bytes();
        self.items.insert(idb, encode(item))?;
        let state = item.state();
        (&self.owed, &self.pending)
            .transaction(|(owed_t, pending_t)| {
                for d in item.deliveries.iter().filter(|d| d.state == State::Pending) {
                    super::owe(owed_t, &d.sink, item, true)?;
                }
                if state == State::Pending {
                    super::mark_pending(pending_t, item, true)?;
                }
                Ok(())
            })
            .map_err(SpoolError::from)?;
        let key = key2(&item.bucket, state.as_str().as_bytes());
        let count = self
            .counts
            .get(&key)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes);
        self.counts.insert(key, &(count + 1).to_be_bytes())?;
        Ok(())
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
