//! A ledger entry as stored: a few bytes, not JSON.
//!
//! Delivery writes one entry per mail, and sled writes each one about three times over while
//! the ledger grows (the update itself, then the 16-key leaf holding it rewritten whole at
//! consolidations and splits). As JSON an entry was ~125 bytes, of which the field names, the
//! sink (already in the key) and the `null`s were most; here it is ~35 (docs/benchmarks.md,
//! `catchup`).
//!
//! Layout, little-endian: [`COMPACT`], state, presence flags, attempts (u32), then when
//! present: `delivered_at` (i64), `message_id` (u16 length + UTF-8), `last_error` (u32 length +
//! UTF-8), role. Entries written as JSON before this layout (they start with `{`) still read.

use super::super::{Delivery, Role, SpoolError, State};

/// First byte of a compact entry; JSON starts with `{`.
const COMPACT: u8 = 0x02;

const DELIVERED_AT: u8 = 1;
const MESSAGE_ID: u8 = 2;
const LAST_ERROR: u8 = 4;
const ROLE: u8 = 8;

pub(super) fn encode(d: &Delivery) -> Vec<u8> {
    let id = d.message_id.as_deref().map(str::as_bytes);
    let error = d.last_error.as_deref().map(str::as_bytes);
    let mut out = Vec::with_capacity(24 + id.map_or(0, <[u8]>::len) + error.map_or(0, <[u8]>::len));
    let flags = [
        (d.delivered_at.is_some(), DELIVERED_AT),
        (id.is_some(), MESSAGE_ID),
        (error.is_some(), LAST_ERROR),
        (d.role.is_some(), ROLE),
    ]
    .iter()
    .filter(|(present, _)| *present)
    .fold(0, |flags, (_, flag)| flags | flag);
    out.extend_from_slice(&[COMPACT, state_byte(d.state), flags]);
    out.extend_from_slice(&d.attempts.to_le_bytes());
    if let Some(at) = d.delivered_at {
        out.extend_from_slice(&at.to_le_bytes());
    }
    if let Some(id) = id {
        // Discord's ids are ~19 digits; one that would not fit is cut, never the entry lost.
        let id = &id[..id.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(id.len() as u16).to_le_bytes());
        out.extend_from_slice(id);
    }
    if let Some(error) = error {
        let error = &error[..error.len().min(u32::MAX as usize)];
        out.extend_from_slice(&(error.len() as u32).to_le_bytes());
        out.extend_from_slice(error);
    }
    if let Some(role) = d.role {
        out.push(match role {
            Role::Fallback => 0,
            Role::Audit => 1,
        });
    }
    out
}

/// The entry stored under `key` for `sink`.
pub(super) fn decode(key: &[u8], sink: &str, bytes: &[u8]) -> Result<Delivery, SpoolError> {
    if bytes.first() != Some(&COMPACT) {
        return super::super::decode(key, bytes);
    }
    let corrupt = |what: &str| SpoolError::Corrupt {
        key: String::from_utf8_lossy(key).escape_debug().to_string(),
        reason: format!("a ledger entry {what}"),
    };
    let mut r = Reader { bytes: &bytes[1..] };
    let state = match r.take(1).ok_or_else(|| corrupt("ends early"))?[0] {
        0 => State::Pending,
        1 => State::Delivered,
        2 => State::Dead,
        _ => return Err(corrupt("has an unknown state")),
    };
    let flags = r.take(1).ok_or_else(|| corrupt("ends early"))?[0];
    let attempts = u32::from_le_bytes(r.array().ok_or_else(|| corrupt("ends early"))?);
    let delivered_at = (flags & DELIVERED_AT != 0)
        .then(|| r.array().map(i64::from_le_bytes))
        .map(|at| at.ok_or_else(|| corrupt("ends early")))
        .transpose()?;
    let message_id = (flags & MESSAGE_ID != 0)
        .then(|| {
            let len = u16::from_le_bytes(r.array()?);
            r.text(usize::from(len))
        })
        .map(|id| id.ok_or_else(|| corrupt("has a message id it cannot hold")))
        .transpose()?;
    let last_error = (flags & LAST_ERROR != 0)
        .then(|| {
            let len = u32::from_le_bytes(r.array()?);
            r.text(len as usize)
        })
        .map(|e| e.ok_or_else(|| corrupt("has an error it cannot hold")))
        .transpose()?;
    let role = (flags & ROLE != 0)
        .then(|| match r.take(1)?[0] {
            0 => Some(Role::Fallback),
            1 => Some(Role::Audit),
            _ => None,
        })
        .map(|role| role.ok_or_else(|| corrupt("has an unknown role")))
        .transpose()?;
    if !r.bytes.is_empty() {
        return Err(corrupt("has bytes after its end"));
    }
    Ok(Delivery {
        sink: sink.to_string(),
        state,
        attempts,
        last_error,
        delivered_at,
        message_id,
        role,
    })
}

fn state_byte(state: State) -> u8 {
    match state {
        State::Pending => 0,
        State::Delivered => 1,
        State::Dead => 2,
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.bytes.get(..n)?, self.bytes.get(n..)?);
        self.bytes = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn text(&mut self, n: usize) -> Option<String> {
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered() -> Delivery {
        Delivery {
            sink: "alerts".into(),
            state: State::Delivered,
            attempts: 3,
            last_error: None,
            delivered_at: Some(1_788_000_000),
            message_id: Some("1312345678901234567".into()),
            role: None,
        }
    }

    #[test]
    fn every_field_reads_back() {
        let mut failing = delivered();
        failing.state = State::Dead;
        failing.last_error = Some("webhook gone (404, code 10015) — é".into());
        failing.role = Some(Role::Audit);
        failing.message_id = None;
        let owed = Delivery::owed("alerts", Role::Fallback);
        for d in [delivered(), failing, owed] {
            assert_eq!(decode(b"k", "alerts", &encode(&d)).unwrap(), d);
        }
    }

    #[test]
    fn an_entry_is_a_third_of_its_json() {
        let d = delivered();
        let json = serde_json::to_vec(&d).unwrap();
        let compact = encode(&d);
        assert!(
            compact.len() * 3 <= json.len(),
            "{} vs {}",
            compact.len(),
            json.len()
        );
    }

    #[test]
    fn entries_written_as_json_still_read() {
        let d = delivered();
        let json = serde_json::to_vec(&d).unwrap();
        assert_eq!(decode(b"k", "alerts", &json).unwrap(), d);
    }

    #[test]
    fn a_damaged_entry_is_corrupt_not_a_panic() {
        let full = encode(&delivered());
        for cut in 1..full.len() {
            assert!(
                decode(b"k", "alerts", &full[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = full.clone();
        longer.push(0);
        assert!(decode(b"k", "alerts", &longer).is_err());
        let mut bad_state = full;
        bad_state[1] = 9;
        assert!(decode(b"k", "alerts", &bad_state).unwrap_err().is_damaged());
    }
}
