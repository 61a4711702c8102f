//! Actions after delivery (a bucket's `after_delivery`), done in a short session of their own:
//! the watcher's sessions only ever `EXAMINE`. This one `SELECT`s the folder (read-write),
//! checks its UIDVALIDITY against the one the mail was spooled under — a re-created folder's
//! UIDs name other mail, so its actions are refused, never applied — and then, per mail:
//! - `seen` / `flag`: `UID STORE uid +FLAGS.SILENT (\Seen)` / `(\Flagged)`;
//! - `move:F`: `UID MOVE uid F` (RFC 6851) when the server offers `MOVE`; else, with `UIDPLUS`
//!   (RFC 4315), `UID COPY`, `UID STORE +FLAGS.SILENT (\Deleted)` and `UID EXPUNGE uid`, which
//!   removes that one mail only. Without either it refuses: a plain `EXPUNGE` would also remove
//!   every other mail someone marked `\Deleted` in the folder.
//!
//! Doing an action again is harmless: flags are added, not toggled, and a moved mail's UID is
//! gone from the folder (UIDs are never reused under one UIDVALIDITY), so a second `UID MOVE`
//! or `UID STORE` finds nothing. The copy of a move without `MOVE` is the one step that would
//! repeat: its caller records it durably before the original is expunged.

use super::{login_until, tls_config, ImapError, Session};
use crate::config::{Account, AfterDelivery};
use crate::spool::Action;
use crate::stop::Stop;

/// Why none of a folder's actions could be tried.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Login, `SELECT`, the connection: worth trying again later.
    #[error("{0}")]
    Session(#[from] ImapError),
    /// The folder's UIDVALIDITY is not the mail's: its UIDs name other mail now.
    #[error("{folder} was re-created since the mail was delivered (UIDVALIDITY {was} → {now}); its UIDs name other mail now")]
    Renumbered { folder: String, was: u32, now: u32 },
}

/// What one action came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Done,
    /// The mail is no longer in the folder (moved or deleted by someone else, or by an
    /// earlier attempt that was not recorded): nothing left to do.
    Gone,
}

/// Said when a move is asked of a server that offers neither `MOVE` nor `UIDPLUS`.
pub(crate) const NO_SAFE_MOVE: &str = "the server offers neither MOVE nor UIDPLUS: moving would need a plain EXPUNGE, which also removes other mail marked deleted; mail is not moved (use \"seen\" or \"flag\" with this server)";

/// Does `actions`, all of `folder` under `uidvalidity`, in one session; one result each.
/// `copied` is called after the copy of a move without `MOVE`, before the original is
/// expunged, so that the caller can record it. A `stop` shuts the connection down at once: an
/// action cut off is done again next time, which is harmless.
pub fn apply(
    account: &Account,
    folder: &str,
    uidvalidity: u32,
    actions: &mut [Action],
    copied: &mut dyn FnMut(&Action),
    stop: &Stop,
) -> Result<Vec<Result<Applied, String>>, Refused> {
    let tls = tls_config(account)?;
    let (mut s, _interrupt) = login_until(account, &tls, stop)?;
    let caps = s.capabilities().map_err(ImapError::from_imap)?;
    let can = Can {
        moves: caps.has_str("MOVE"),
        uidplus: caps.has_str("UIDPLUS"),
    };
    drop(caps);
    let mailbox = s.select(folder).map_err(ImapError::from_imap)?;
    if mailbox.uid_validity != Some(uidvalidity) {
        let _ = s.logout();
        return Err(Refused::Renumbered {
            folder: folder.to_string(),
            was: uidvalidity,
            now: mailbox.uid_validity.unwrap_or(0),
        });
    }
    let out = actions
        .iter_mut()
        .map(|a| one(&mut s, can, a, copied))
        .collect();
    let _ = s.logout();
    Ok(out)
}

/// What the server offers for moving mail.
#[derive(Debug, Clone, Copy)]
struct Can {
    moves: bool,
    uidplus: bool,
}

fn one(
    s: &mut Session,
    can: Can,
    a: &mut Action,
    copied: &mut dyn FnMut(&Action),
) -> Result<Applied, String> {
    let err = |e: imap::Error| ImapError::from_imap(e).to_string();
    let uid = a.uid.to_string();
    if !present(s, &uid)? {
        return Ok(Applied::Gone);
    }
    let target = match &a.action {
        AfterDelivery::Seen => return add_flag(s, &uid, "\\Seen"),
        AfterDelivery::Flag => return add_flag(s, &uid, "\\Flagged"),
        AfterDelivery::Move(target) => target.clone(),
    };
    if can.moves {
        s.uid_mv(&uid, &target).map_err(err)?;
        return Ok(Applied::Done);
    }
    if !can.uidplus {
        return Err(NO_SAFE_MOVE.to_string());
    }
    if !a.copied {
        s.uid_copy(&uid, quote(&target)?).map_err(err)?;
        a.copied = true;
        copied(a);
    }
    s.uid_store(&uid, "+FLAGS.SILENT (\\Deleted)")
        .map_err(err)?;
    s.uid_expunge(&uid).map_err(err)?;
    Ok(Applied::Done)
}

/// Adds `flag` (a mail that has it already, read meanwhile in a mail client, keeps it).
fn add_flag(s: &mut Session, uid: &str, flag: &str) -> Result<Applied, String> {
    s.uid_store(uid, format!("+FLAGS.SILENT ({flag})"))
        .map_err(|e| ImapError::from_imap(e).to_string())?;
    Ok(Applied::Done)
}

/// Whether the mail `uid` is still in the selected folder.
fn present(s: &mut Session, uid: &str) -> Result<bool, String> {
    let found = s
        .uid_search(format!("UID {uid}"))
        .map_err(|e| ImapError::from_imap(e).to_string())?;
    Ok(uid.parse().is_ok_and(|u: u32| found.contains(&u)))
}

/// A mailbox name as an IMAP quoted string (the imap crate quotes it for `MOVE`, not `COPY`).
fn quote(name: &str) -> Result<String, String> {
    if name.contains(['\r', '\n', '\0']) {
        return Err(format!("{name:?} cannot be a folder name"));
    }
    Ok(format!(
        "\"{}\"",
        name.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn folder_names_are_quoted_for_copy() {
        assert_eq!(quote("Archive").unwrap(), "\"Archive\"");
        assert_eq!(quote("a \"b\" \\c").unwrap(), "\"a \\\"b\\\" \\\\c\"");
        assert!(quote("x\r\nA1 LOGOUT").is_err());
    }
}
