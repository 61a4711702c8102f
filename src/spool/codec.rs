//! How a spool record is written: JSON, and deflated when that makes it smaller.
//!
//! An item's record is about 0.9 KB of JSON for a mail with a full snippet, and sled writes it
//! about four times over while the spool grows: once as the update, then again each time the
//! 16-key leaf that holds it is rewritten whole (after 10 updates, and at each split). So the
//! record's size is what an SD card pays for ingest, several times over (docs/benchmarks.md,
//! `catchup`). Deflated (a fast level: the text is short, the gain of slower levels a few
//! bytes), a record shrinks to about 55–65 % of its JSON.
//!
//! A deflated record starts with [`DEFLATED`], a byte no JSON text starts with, so records
//! written before this format (plain JSON, starting with `{`) still read as they are, and the
//! two kinds may sit side by side in one spool. Small records (cursors, actions) are left as
//! JSON: deflate's own overhead would eat their gain. Ledger entries have a layout of their own
//! (`ledger/entry.rs`).

use super::SpoolError;

/// First byte of a deflated record (raw deflate follows).
const DEFLATED: u8 = 0x01;

/// Records shorter than this stay plain JSON.
const DEFLATE_FROM: usize = 256;

/// miniz's level 1: fastest; on 0.9 KB records within a few bytes of level 6.
const LEVEL: u8 = 1;

/// A record inflates to at most this: far above any record the spool writes (a mail's
/// fields are bounded, src/mail.rs), so a damaged record cannot make a read allocate without
/// bound.
const INFLATED_MAX: usize = 1 << 20;

pub(super) fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own plain structs to JSON cannot fail (no maps with non-string keys).
    let json = serde_json::to_vec(value).unwrap_or_default();
    if json.len() < DEFLATE_FROM {
        return json;
    }
    let deflated = miniz_oxide::deflate::compress_to_vec(&json, LEVEL);
    if deflated.len() + 1 >= json.len() {
        return json;
    }
    let mut out = Vec::with_capacity(deflated.len() + 1);
    out.push(DEFLATED);
    out.extend_from_slice(&deflated);
    out
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(
    key: &[u8],
    bytes: &[u8],
) -> Result<T, SpoolError> {
    let corrupt = |reason: String| SpoolError::Corrupt {
        key: String::from_utf8_lossy(key).escape_debug().to_string(),
        reason,
    };
    let inflated;
    let json = match bytes.split_first() {
        Some((&DEFLATED, deflated)) => {
            inflated = miniz_oxide::inflate::decompress_to_vec_with_limit(deflated, INFLATED_MAX)
                .map_err(|e| corrupt(format!("a deflated record does not inflate: {e}")))?;
            &inflated[..]
        }
        _ => bytes,
    };
    serde_json::from_slice(json).map_err(|e| corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Record {
        subject: String,
        snippet: String,
    }

    fn record(snippet_len: usize) -> Record {
        let words = [
            "parcel", "arrives", "Tuesday", "invoice", "attached", "thanks",
        ];
        let snippet = (0..)
            .map(|i| words[(i * 7 + i / 3) % words.len()])
            .scan(0, |len, w| {
                *len += w.len() + 1;
                (*len <= snippet_len).then_some(w)
            })
            .collect::<Vec<_>>()
            .join(" ");
        Record {
            subject: "Order 1234 has shipped".into(),
            snippet,
        }
    }

    #[test]
    fn a_full_record_is_deflated_and_reads_back() {
        let r = record(480);
        let json = serde_json::to_vec(&r).unwrap();
        let stored = encode(&r);
        assert_eq!(stored[0], DEFLATED);
        assert!(
            stored.len() < json.len() * 2 / 3,
            "{} of {}",
            stored.len(),
            json.len()
        );
        assert_eq!(decode::<Record>(b"k", &stored).unwrap(), r);
    }

    #[test]
    fn a_small_record_stays_json() {
        let r = record(20);
        let stored = encode(&r);
        assert_eq!(stored, serde_json::to_vec(&r).unwrap());
        assert_eq!(decode::<Record>(b"k", &stored).unwrap(), r);
    }

    #[test]
    fn records_written_as_plain_json_still_read() {
        let r = record(480);
        let old = serde_json::to_vec(&r).unwrap();
        assert_eq!(decode::<Record>(b"k", &old).unwrap(), r);
    }

    #[test]
    fn a_damaged_record_is_corrupt_not_a_panic() {
        let mut stored = encode(&record(480));
        stored.truncate(stored.len() / 2);
        let e = decode::<Record>(b"k", &stored).unwrap_err();
        assert!(e.is_damaged() && e.to_string().contains("inflate"), "{e}");
        for bad in [&b"\x01"[..], b"\x01\xff\xff\xff", b"\xff{not a record", b""] {
            assert!(decode::<Record>(b"k", bad).is_err());
        }
    }
}
