//! One attachment's bytes, fetched for an upload at delivery time: a short session of its own
//! (the watcher's stays read-only and busy with its folder), `EXAMINE` (read-only, so nothing
//! is marked seen), the UIDVALIDITY checked against the item's (a re-created folder's UID
//! names another mail), `UID FETCH uid BODY.PEEK[section]`, and the transfer encoding undone.
//! A part larger than the caller's limit is not fetched at all.

use super::{login, tls_config, ImapError};
use crate::config::Account;
use crate::mail::Attachment;
use base64::Engine;
use imap_proto::types::SectionPath;

/// The bytes of each of `parts` of the mail `uid` in `folder`, decoded; `Err` for the whole
/// session (login, folder, UIDVALIDITY), per part for a part the server did not return.
pub(crate) fn fetch(
    account: &Account,
    folder: &str,
    uidvalidity: u32,
    uid: u32,
    parts: &[&Attachment],
) -> Result<Vec<Result<Vec<u8>, String>>, ImapError> {
    let tls = tls_config(account)?;
    let mut s = login(account, &tls)?;
    let mailbox = s.examine(folder).map_err(ImapError::from_imap)?;
    if mailbox.uid_validity != Some(uidvalidity) {
        let _ = s.logout();
        return Err(ImapError::Mailbox(format!(
            "{folder} was re-created since the mail was spooled (UIDVALIDITY {uidvalidity} → {})",
            mailbox.uid_validity.unwrap_or(0)
        )));
    }
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        out.push(one(&mut s, uid, part));
    }
    let _ = s.logout();
    Ok(out)
}

fn one(s: &mut super::Session, uid: u32, part: &Attachment) -> Result<Vec<u8>, String> {
    let path =
        section_path(&part.section).ok_or_else(|| format!("bad section {:?}", part.section))?;
    let fetches = s
        .uid_fetch(uid.to_string(), format!("BODY.PEEK[{}]", part.section))
        .map_err(|e| ImapError::from_imap(e).to_string())?;
    let data = fetches
        .iter()
        .find_map(|f| f.section(&path))
        .ok_or_else(|| "the server returned no data for it (the mail is gone?)".to_string())?;
    decode(data, &part.encoding)
}

/// `2.1` → the imap crate's section path.
fn section_path(section: &str) -> Option<SectionPath> {
    let parts: Option<Vec<u32>> = section.split('.').map(|n| n.parse().ok()).collect();
    parts
        .filter(|p| !p.is_empty())
        .map(|p| SectionPath::Part(p, None))
}

/// Undoes the part's Content-Transfer-Encoding.
pub(crate) fn decode(data: &[u8], encoding: &str) -> Result<Vec<u8>, String> {
    match encoding.to_ascii_lowercase().as_str() {
        "base64" => {
            let clean: Vec<u8> = data
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(&clean)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&clean))
                .map_err(|e| format!("its base64 does not decode: {e}"))
        }
        "quoted-printable" => Ok(quoted_printable(data)),
        _ => Ok(data.to_vec()),
    }
}

/// RFC 2045 6.7: `=XX` escapes and soft line breaks (`=` at a line's end).
fn quoted_printable(data: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        match data[i..] {
            [b'=', b'\r', b'\n', ..] => i += 3,
            [b'=', b'\n', ..] => i += 2,
            [b'=', h, l, ..] if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            [b, ..] => {
                out.push(b);
                i += 1;
            }
            [] => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_encodings_are_undone() {
        assert_eq!(decode(b"aGVs\r\nbG8=\r\n", "base64").unwrap(), b"hello");
        assert_eq!(decode(b"aGVsbG8", "BASE64").unwrap(), b"hello");
        assert!(decode(b"!!!", "base64").is_err());
        assert_eq!(
            decode(b"caf=C3=A9 =\r\nau lait=3D", "quoted-printable").unwrap(),
            "café au lait=".as_bytes()
        );
        assert_eq!(decode(b"as is", "7bit").unwrap(), b"as is");
    }

    #[test]
    fn sections_become_paths() {
        assert_eq!(
            section_path("2.1"),
            Some(SectionPath::Part(vec![2, 1], None))
        );
        assert_eq!(section_path("x"), None);
        assert_eq!(section_path(""), None);
    }
}
