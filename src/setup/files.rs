//! What `setup` writes: the secret files and the config, each atomically (temporary file,
//! fsync, rename, folder fsync) and private — `0640 root:mailbeacon` when run as root (the
//! package's service group, as the config itself is installed), the invoking user's own
//! `0600` otherwise. The config is validated exactly as `check` does before it replaces the
//! old one, so a failed setup leaves the old config in place.

use super::ask::Ask;
use super::document::Document;
use super::Plan;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub(crate) fn write(path: &Path, doc: &Document, plan: &Plan, ask: &mut Ask) -> Result<(), String> {
    let owner = owner();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    for (file, content) in &plan.secrets {
        private(file, format!("{content}\n").as_bytes(), owner)?;
        ask.say(&format!(
            "ok   wrote {} ({})",
            file.display(),
            describe(owner)
        ));
    }
    let text = doc.text();
    crate::config::Config::parse(path, &text, true)
        .map_err(|e| format!("the config setup made does not load ({e}); the old one stays"))?;
    private(path, text.as_bytes(), owner)
}

/// `Some(gid)` of the `mailbeacon` group when run as root, `None` for the invoking user.
type Owner = Option<u32>;

fn owner() -> Owner {
    if !crate::system::is_root() {
        return None;
    }
    let name = CString::new("mailbeacon").ok()?;
    // SAFETY: getgrnam reads the group database and returns a pointer to static storage
    // (or null); only the gid is copied out, at once.
    let group = unsafe { libc::getgrnam(name.as_ptr()) };
    if group.is_null() {
        return Some(0);
    }
    // SAFETY: non-null, points at the struct getgrnam filled in.
    Some(unsafe { (*group).gr_gid })
}

fn describe(owner: Owner) -> String {
    match owner {
        Some(0) => "0600 root:root".into(),
        Some(_) => "0640 root:mailbeacon".into(),
        None => "0600, yours".into(),
    }
}

/// Writes `path` atomically and durably with the owner and mode setup promises.
fn private(path: &Path, bytes: &[u8], owner: Owner) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().to_string());
    let tmp = dir.join(format!(".{name}.setup.{}", std::process::id()));
    let mode = match owner {
        Some(gid) if gid != 0 => 0o640,
        _ => 0o600,
    };
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if let Some(gid) = owner {
            std::os::unix::fs::chown(&tmp, Some(0), Some(gid))?;
        }
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(fail)
}
