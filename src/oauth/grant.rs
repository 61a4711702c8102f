//! The stored grant: `state_dir/oauth/ACCOUNT.json`, mode 0600, holding the refresh token and
//! the current access token with its expiry.
//!
//! It is the only copy of a refresh token, and Microsoft replaces that token on every use, so
//! every write is atomic and durable before anything relies on it: a temporary file in the same
//! folder is written and fsynced, renamed over the grant, and the folder is fsynced. A power
//! cut at any instant leaves either the old grant or the new one, never a torn file, and never
//! a state where the new refresh token was used while only the old one is on disk.

use crate::config::Secret;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// What the token endpoint granted.
#[derive(Clone)]
pub(crate) struct Grant {
    pub(crate) refresh_token: Secret,
    pub(crate) access_token: Secret,
    /// Unix seconds after which the access token is no longer accepted.
    pub(crate) expires_at: i64,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    refresh_token: String,
    access_token: String,
    expires_at: i64,
}

impl Grant {
    /// Reads the grant; `Ok(None)` when there is none yet.
    pub(crate) fn load(path: &Path) -> Result<Option<Grant>, String> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {}", path.display(), e.kind())),
        };
        // serde_json's errors name positions and expected tokens, never the values.
        let d: OnDisk = serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{} is not a grant this version can read: {e}",
                path.display()
            )
        })?;
        if d.refresh_token.is_empty() {
            return Ok(None);
        }
        Ok(Some(Grant {
            refresh_token: Secret::new(d.refresh_token),
            access_token: Secret::new(d.access_token),
            expires_at: d.expires_at,
        }))
    }

    /// Replaces the grant durably (see the module comment). When run as root (an operator's
    /// `sudo mailbeacon login`), the files are given to the owner of the state folder, the
    /// service user, who must read and renew them.
    pub(crate) fn save(&self, path: &Path) -> Result<(), String> {
        let fail = |what: &str, e: std::io::Error| format!("{what} {}: {}", path.display(), e);
        let dir = path.parent().unwrap_or(Path::new("."));
        let owner = dir.parent().and_then(|state| fs::metadata(state).ok());
        fs::create_dir_all(dir).map_err(|e| fail("cannot create the folder of", e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| fail("cannot restrict the folder of", e))?;
        let text = serde_json::to_vec(&OnDisk {
            version: 1,
            refresh_token: self.refresh_token.expose().to_string(),
            access_token: self.access_token.expose().to_string(),
            expires_at: self.expires_at,
        })
        .map_err(|e| format!("cannot encode the grant: {e}"))?;
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().to_string());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            if let Some(owner) = &owner {
                give(&tmp, dir, owner)?;
            }
            fs::rename(&tmp, path)?;
            File::open(dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.map_err(|e| fail("cannot write", e))
    }
}

/// Hands the file and its folder to the state folder's owner when this process (root) is not
/// that owner; a no-op for the service user itself.
fn give(file: &Path, dir: &Path, owner: &fs::Metadata) -> std::io::Result<()> {
    let me = fs::metadata(file)?;
    if me.uid() == owner.uid() && me.gid() == owner.gid() {
        return Ok(());
    }
    std::os::unix::fs::chown(dir, Some(owner.uid()), Some(owner.gid()))?;
    std::os::unix::fs::chown(file, Some(owner.uid()), Some(owner.gid()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("mb-grant-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_saved_grant_reads_back_private_and_leaves_no_temporary_file() {
        let state = temp("save");
        let path = state.join("oauth").join("home.json");
        assert!(Grant::load(&path).unwrap().is_none());
        let g = Grant {
            refresh_token: Secret::new("R1"),
            access_token: Secret::new("A1"),
            expires_at: 42,
        };
        g.save(&path).unwrap();
        let again = Grant {
            refresh_token: Secret::new("R2"),
            ..g
        };
        again.save(&path).unwrap();
        let back = Grant::load(&path).unwrap().unwrap();
        assert_eq!(back.refresh_token.expose(), "R2");
        assert_eq!(back.access_token.expose(), "A1");
        assert_eq!(back.expires_at, 42);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("home.json")]);
    }

    #[test]
    fn a_damaged_grant_is_an_error_that_shows_no_token() {
        let state = temp("bad");
        let path = state.join("g.json");
        fs::write(
            &path,
            br#"{"version":1,"refresh_token":"SECRET-R","access_token":5}"#,
        )
        .unwrap();
        let e = Grant::load(&path).err().unwrap();
        assert!(!e.contains("SECRET-R"), "{e}");
        assert!(e.contains("g.json"), "{e}");
    }
}
