//! Which files hold secrets, and who else can read them — for `check --probe`.
//!
//! A secret sits in the config itself (`password`, `url`, `token` inline), in a `*_file`, or in
//! a systemd credential (`$CREDENTIALS_DIRECTORY/NAME`). Each such file should be readable by
//! its owner and, at most, the `mailbeacon` group (the package installs the config as
//! `0640 root:mailbeacon`); readable by every user, or by some other group, is a warning.

use super::raw::RawConfig;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A file that holds a secret, and the config key that points at it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SecretFile {
    pub(crate) key: String,
    pub(crate) path: PathBuf,
}

/// The files holding secrets for the config at `path` (which must parse): the config itself
/// when any secret is inline, then every `*_file` and readable credential, in file order.
pub(crate) fn secret_files(path: &Path) -> Vec<SecretFile> {
    let Some(raw) = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| toml::from_str::<RawConfig>(&t).ok())
    else {
        return Vec::new();
    };
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    let mut inline = Vec::new();
    let mut files = Vec::new();
    let mut add = |key: String, file: &Option<PathBuf>, credential: &Option<String>| {
        if let Some(f) = file {
            files.push(SecretFile {
                key: format!("{key}_file"),
                path: f.clone(),
            });
        }
        if let (Some(dir), Some(name)) = (&credentials, credential) {
            files.push(SecretFile {
                key: format!("{key} credential"),
                path: dir.join(name),
            });
        }
    };
    for (i, a) in raw.account.iter().enumerate() {
        let key = format!("account[{i}] ({}).password", a.name);
        if a.password.is_some() {
            inline.push(key.clone());
        }
        add(key, &a.password_file, &a.credential);
        if let Some(o) = &a.oauth2 {
            let key = format!("account[{i}] ({}).oauth2.client_secret", a.name);
            if o.client_secret.is_some() {
                inline.push(key.clone());
            }
            add(key, &o.client_secret_file, &o.client_secret_credential);
        }
    }
    for (i, s) in raw.sink.iter().enumerate() {
        let which = if s.kind == "bot" { "token" } else { "url" };
        let key = format!("sink[{i}] ({}).{which}", s.name);
        if s.url.is_some() || s.token.is_some() {
            inline.push(key.clone());
        }
        add(key.clone(), &s.url_file, &s.credential);
        if s.token_file.is_some() {
            add(key, &s.token_file, &None);
        }
    }
    if let Some(first) = inline.first() {
        files.insert(
            0,
            SecretFile {
                key: format!("the config ({first} inline)"),
                path: path.to_path_buf(),
            },
        );
    }
    files
}

/// `Ok(mode)` when only the owner and at most the `mailbeacon` (or root) group can read the
/// file, else `Err(why)`; `Err` also when it cannot be examined.
pub(crate) fn exposure(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {}", path.display(), e.kind()))?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o004 != 0 {
        return Err(format!(
            "{} is mode {mode:04o}: every user on this machine can read it \
             (chmod 600, or 640 with group mailbeacon)",
            path.display()
        ));
    }
    if mode & 0o040 != 0 {
        let group = group_name(meta.gid()).unwrap_or_else(|| meta.gid().to_string());
        if group != "mailbeacon" && meta.gid() != 0 {
            return Err(format!(
                "{} is mode {mode:04o}, group {group}: every member of {group} can read it \
                 (chgrp mailbeacon, or chmod 600)",
                path.display()
            ));
        }
    }
    Ok(format!("mode {mode:04o}"))
}

/// The name of group `gid` from /etc/group.
fn group_name(gid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == gid).then(|| name.to_string())
    })
}
