//! The ledger on disk: `state_dir/notices.json`, replaced whole and durably (a temporary file
//! beside it, fsync, rename, fsync of the directory), so a power cut leaves the old ledger or
//! the new one, never half of one. It lives apart from the spool: losing it costs at most a
//! repeated notice, never mail.
//!
//! A ledger that cannot be read (missing, or damaged) starts empty and says so in the log.

use super::ledger::Ledger;
use std::io::Write;
use std::path::{Path, PathBuf};

pub(crate) fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("notices.json")
}

pub(crate) fn load(path: &Path) -> Ledger {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            log::warn!(
                "notices: {} does not parse ({e}); starting with nothing announced",
                path.display()
            );
            Ledger::default()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ledger::default(),
        Err(e) => {
            log::warn!(
                "notices: cannot read {} ({e}); starting with nothing announced",
                path.display()
            );
            Ledger::default()
        }
    }
}

pub(crate) fn save(path: &Path, ledger: &Ledger) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(ledger).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable only once the directory is synced.
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_ledger_reads_back_and_a_damaged_one_starts_empty() {
        let dir = std::env::temp_dir().join(format!("mb-notices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = path(&dir);
        let l = Ledger {
            daily_last: Some("2026-12-04".into()),
            ..Ledger::default()
        };
        save(&p, &l).unwrap();
        assert_eq!(load(&p), l);
        assert!(!p.with_extension("json.tmp").exists());
        std::fs::write(&p, b"{\"entries\": {").unwrap();
        assert_eq!(load(&p), Ledger::default());
        assert_eq!(load(&dir.join("absent.json")), Ledger::default());
    }
}
