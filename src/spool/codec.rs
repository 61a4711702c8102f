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
//!
//! An ingest's records share one compressor ([`encode_all`]), reset between them and dropped
//! after: a fresh one is ~230 KB of tables, which musl's allocator (the static board builds)
//! maps and unmaps for every record — 84 µs a record against 11 µs with the compressor kept,
//! on x86_64 musl (about 0.36 s of a 5,000-mail catch-up) — and so does glibc's under the
//! 64 KiB mmap threshold the daemon sets (`src/daemon/memory.rs`). Kept no longer than the
//! batch, it costs no memory between fetches. The output is the same bytes.

use super::SpoolError;
use miniz_oxide::deflate::core::{
    compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};

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

/// One record.
pub(super) fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    encode_with(value, &mut None)
}

/// The records of `values`, in order, with one compressor among them.
pub(super) fn encode_all<T: serde::Serialize>(values: &[T]) -> Vec<Vec<u8>> {
    let mut compressor = None;
    values
        .iter()
        .map(|v| encode_with(v, &mut compressor))
        .collect()
}

/// A record, deflated with `compressor` (made at the first record that needs one).
fn encode_with<T: serde::Serialize>(
    value: &T,
    compressor: &mut Option<Box<CompressorOxide>>,
) -> Vec<u8> {
    // Serialising our own plain structs to JSON cannot fail (no maps with non-string keys).
    let json = serde_json::to_vec(value).unwrap_or_default();
    if json.len() < DEFLATE_FROM {
        return json;
    }
    match deflate(&json, compressor) {
        Some(deflated) if deflated.len() < json.len() => deflated,
        _ => json,
    }
}

/// [`DEFLATED`] and `json` as raw deflate, with `compressor` (reset if it was used before).
/// `None` if the compressor fails, which leaves the record plain JSON.
fn deflate(json: &[u8], compressor: &mut Option<Box<CompressorOxide>>) -> Option<Vec<u8>> {
    let compressor: &mut CompressorOxide = match compressor {
        Some(used) => {
            used.reset();
            used
        }
        None => compressor.insert(Box::new(CompressorOxide::new(
            create_comp_flags_from_zip_params(LEVEL.into(), 0, 0),
        ))),
    };
    // Room for what deflate makes of text; grown if a record does not fit.
    let mut out = vec![0u8; 1 + json.len() / 2 + 64];
    out[0] = DEFLATED;
    let (mut written, mut input) = (1, json);
    loop {
        let (status, read, wrote) =
            compress(compressor, input, &mut out[written..], TDEFLFlush::Finish);
        written += wrote;
        input = input.get(read..).unwrap_or_default();
        match status {
            TDEFLStatus::Done => break,
            // Deflate never needs much more than its input; a compressor that asks for more is
            // not trusted further.
            TDEFLStatus::Okay if out.len() <= 2 * json.len() + 1024 => {
                let more = out.len();
                out.resize(out.len() + more, 0);
            }
            _ => return None,
        }
    }
    out.truncate(written);
    Some(out)
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

    /// A compressor reset between records makes exactly what a fresh one makes, and
    /// a record that deflate cannot shrink (so its output outgrows the first guess) still
    /// comes back whole.
    #[test]
    fn the_kept_compressor_makes_what_a_fresh_one_makes_record_after_record() {
        let mut compressor = None;
        for n in [300, 5_000, 700, 40_000] {
            let json = serde_json::to_vec(&record(n)).unwrap();
            let kept = deflate(&json, &mut compressor).unwrap();
            let fresh = miniz_oxide::deflate::compress_to_vec(&json, LEVEL);
            assert_eq!(kept[0], DEFLATED);
            assert_eq!(&kept[1..], &fresh[..], "record of {n}");
        }
        let mut rng = fastrand::Rng::with_seed(7);
        let noise: Vec<u8> = (0..20_000).map(|_| rng.u8(..)).collect();
        let deflated = deflate(&noise, &mut compressor).unwrap();
        assert!(
            deflated.len() > noise.len() / 2 + 65,
            "the guess was outgrown"
        );
        let back = miniz_oxide::inflate::decompress_to_vec(&deflated[1..]).unwrap();
        assert_eq!(back, noise);
    }
}
