//! Item records outside sled: an append-only log that each record is written to once.
//!
//! sled keeps an item's record in a 16-key leaf that it writes again whole when the leaf is
//! consolidated (after 10 updates) and at each split, so a record reached the disk about four
//! times while the spool grew; and it keeps every value it wrote in memory until its cache
//! (256 shards, each acting only after 64 accesses) gets round to it, so a backlog's records
//! stayed resident (docs/benchmarks.md, `catchup`). Here a new item's record (the same bytes
//! as before, `codec.rs`) is appended to a segment file, and the `items` tree holds a
//! [`Pointer`] to it: 21 bytes that sled may rewrite as often as it likes.
//!
//! # Files
//! `bodies/<segment>.log`, the segment number in 16 hex digits. A spool opened starts a new
//! segment at its first write (so nothing is ever appended after a tail a crash may have torn)
//! and another once a segment holds [`SEGMENT_MAX`] bytes. Segments are only ever appended to,
//! and a closed one never changes.
//!
//! # Durability
//! An ingest appends its records and `fdatasync`s the segment (the directory too when the
//! segment is new) *before* the transaction that stores their pointers commits: sled may make a
//! commit durable at any moment after it (its flusher), so a pointer must never reach the disk
//! before what it points to. A record appended by a transaction that then failed, or was cut by
//! a power cut, is garbage no pointer names. Each pointer carries its record's length and CRC-32,
//! so a record that is not what was written is reported as damaged, never decoded.
//!
//! # Garbage
//! Records an item no longer points to (pruned, dropped, or rewritten in place in sled) stay
//! until no item points into their segment; [`Bodies::collect`] then deletes the segment. It
//! judges under the writer's lock, which an ingest holds from its append until its transaction
//! is durable, so no pointer into a segment can appear while it is being judged.
//!
//! Records written before this log (JSON or deflated, in the `items` tree) read as they are,
//! and items that are rewritten in place (a handover to a fallback sink, an audit mirror) are
//! written back into sled as before: the log holds only what ingest wrote.

use super::{bound, decode, Item, SpoolError, TxResult};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// First byte of an `items` value that points into the log (codec.rs uses 0x01, ledger entries
/// 0x02; JSON starts with `{`).
const POINTER: u8 = 0x03;

/// A segment takes no more after this many bytes (about 2,000 records of mail).
pub(super) const SEGMENT_MAX: u64 = 1 << 20;

/// No record is longer (a record inflates to at most 1 MiB, codec.rs): a damaged pointer
/// cannot make a read allocate without bound.
const RECORD_MAX: u32 = 1 << 20;

/// Where a record is: segment, offset, length and the CRC-32 of its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pointer {
    pub segment: u64,
    offset: u32,
    pub len: u32,
    crc: u32,
}

impl Pointer {
    const ENCODED: usize = 21;

    pub(super) fn encode(&self) -> [u8; Self::ENCODED] {
        let mut out = [0u8; Self::ENCODED];
        out[0] = POINTER;
        out[1..9].copy_from_slice(&self.segment.to_be_bytes());
        out[9..13].copy_from_slice(&self.offset.to_be_bytes());
        out[13..17].copy_from_slice(&self.len.to_be_bytes());
        out[17..21].copy_from_slice(&self.crc.to_be_bytes());
        out
    }

    /// The pointer an `items` value holds; `None` for a record stored in sled itself.
    pub(super) fn parse(value: &[u8]) -> Option<Pointer> {
        if value.len() != Self::ENCODED || value[0] != POINTER {
            return None;
        }
        let u32_at = |at: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&value[at..at + 4]);
            u32::from_be_bytes(b)
        };
        let mut segment = [0u8; 8];
        segment.copy_from_slice(&value[1..9]);
        Some(Pointer {
            segment: u64::from_be_bytes(segment),
            offset: u32_at(9),
            len: u32_at(13),
            crc: u32_at(17),
        })
    }
}

/// The bytes an `items` value stands for: the record's length for a pointer, else its own.
pub(super) fn stored_len(value: &[u8]) -> usize {
    Pointer::parse(value).map_or(value.len(), |p| p.len as usize)
}

/// The log of one spool directory.
pub(super) struct Bodies {
    dir: PathBuf,
    writer: Mutex<Writer>,
    /// The segment read last, kept open: delivery and retention read records in spool order.
    reader: Mutex<Option<(u64, File)>>,
}

struct Writer {
    /// The number the next new segment gets.
    next: u64,
    current: Option<Segment>,
    /// One write per append, reused.
    buf: Vec<u8>,
    /// Whether `bodies/` exists, its name durable in the spool directory.
    dir_made: bool,
}

struct Segment {
    number: u64,
    file: File,
    /// Bytes appended and synced; a failed append leaves it as it was, and the next one
    /// writes over whatever the failure left behind (nothing points there).
    len: u64,
    /// Whether the directory entry naming the segment is durable.
    named: bool,
}

/// The log's writer, held by an ingest from its append until its transaction is durable.
pub(super) struct BodyWriter<'a> {
    bodies: &'a Bodies,
    writer: MutexGuard<'a, Writer>,
}

fn segment_name(number: u64) -> String {
    format!("{number:016x}.log")
}

fn segment_number(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".log")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

fn io(e: std::io::Error) -> SpoolError {
    super::witness::io_error(e)
}

impl Bodies {
    /// The log in `spool/bodies`. Nothing is written until an append, which makes the directory
    /// when missing (so reading a spool from before the log changes nothing in it).
    pub(super) fn open(spool: &Path) -> Result<Bodies, SpoolError> {
        let dir = spool.join("bodies");
        let newest = Self::segments_in(&dir)?.into_iter().max().unwrap_or(0);
        Ok(Bodies {
            writer: Mutex::new(Writer {
                next: newest + 1,
                current: None,
                buf: Vec::new(),
                dir_made: dir.is_dir(),
            }),
            dir,
            reader: Mutex::new(None),
        })
    }

    /// The segment numbers in `dir`; none when it does not exist yet.
    fn segments_in(dir: &Path) -> Result<Vec<u64>, SpoolError> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io)?;
            if let Some(n) = entry.file_name().to_str().and_then(segment_number) {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// The writer; an ingest holds it until its transaction is durable.
    pub(super) fn writer(&self) -> Result<BodyWriter<'_>, SpoolError> {
        let writer = self
            .writer
            .lock()
            .map_err(|_| io(std::io::Error::other("the body log's writer is poisoned")))?;
        Ok(BodyWriter {
            bodies: self,
            writer,
        })
    }

    /// The record `pointer` names, checked against its length and CRC. `key` names the item in
    /// an error.
    pub(super) fn read(&self, key: &[u8], pointer: &Pointer) -> Result<Vec<u8>, SpoolError> {
        let corrupt = |reason: String| SpoolError::Corrupt {
            key: String::from_utf8_lossy(key).escape_debug().to_string(),
            reason,
        };
        if pointer.len > RECORD_MAX {
            return Err(corrupt(format!(
                "its record is said to be {} bytes long",
                pointer.len
            )));
        }
        let mut reader = self
            .reader
            .lock()
            .map_err(|_| io(std::io::Error::other("the body log's reader is poisoned")))?;
        if reader.as_ref().map(|(n, _)| *n) != Some(pointer.segment) {
            let path = self.dir.join(segment_name(pointer.segment));
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(corrupt(format!(
                        "its record's file bodies/{} is missing",
                        segment_name(pointer.segment)
                    )))
                }
                Err(e) => return Err(io(e)),
            };
            *reader = Some((pointer.segment, file));
        }
        let Some((_, file)) = reader.as_ref() else {
            return Err(io(std::io::Error::other("no segment open")));
        };
        let mut buf = vec![0u8; pointer.len as usize];
        match file.read_exact_at(&mut buf, u64::from(pointer.offset)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(corrupt(format!(
                    "its record in bodies/{} is cut short",
                    segment_name(pointer.segment)
                )))
            }
            Err(e) => return Err(io(e)),
        }
        if crc32fast::hash(&buf) != pointer.crc {
            return Err(corrupt(format!(
                "its record in bodies/{} is not what was written (CRC)",
                segment_name(pointer.segment)
            )));
        }
        Ok(buf)
    }

    /// The item an `items` value holds: decoded from the value itself, or from the record in
    /// the log it points to. `key` names the item in an error.
    pub(super) fn item(&self, key: &[u8], value: &[u8]) -> Result<Item, SpoolError> {
        match Pointer::parse(value) {
            Some(p) => decode(key, &self.read(key, &p)?),
            None => decode(key, value),
        }
    }

    /// An item as a transaction over `items` and `ledger` sees it: its record with its ledger
    /// entries laid over it, and the room it takes ([`bound::footprint`]). `None` when gone.
    pub(super) fn item_tx(
        &self,
        items: &TransactionalTree,
        ledger: &TransactionalTree,
        id: u64,
    ) -> TxResult<Option<(Item, u64)>> {
        let idb = id.to_be_bytes();
        let Some(value) = items.get(idb)? else {
            return Ok(None);
        };
        let mut item = self
            .item(&idb, &value)
            .map_err(ConflictableTransactionError::Abort)?;
        super::ledger::overlay_tx(ledger, &mut item)?;
        let cost = bound::footprint(stored_len(&value), &item);
        Ok(Some((item, cost)))
    }

    /// Deletes every closed segment that `live` (the segments pointed to, found by a scan of the
    /// `items` tree) does not name; returns how many. The scan runs only when there is a closed
    /// segment to judge, under the writer's lock.
    pub(super) fn collect(
        &self,
        live: impl FnOnce() -> Result<HashSet<u64>, SpoolError>,
    ) -> Result<usize, SpoolError> {
        let writer = self.writer()?;
        let current = writer.writer.current.as_ref().map(|s| s.number);
        let closed: Vec<u64> = Self::segments_in(&self.dir)?
            .into_iter()
            .filter(|n| Some(*n) != current)
            .collect();
        if closed.is_empty() {
            return Ok(0);
        }
        let live = live()?;
        let mut deleted = 0;
        for n in closed.into_iter().filter(|n| !live.contains(n)) {
            match std::fs::remove_file(self.dir.join(segment_name(n))) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
        }
        if deleted > 0 {
            if let Ok(mut reader) = self.reader.lock() {
                *reader = None;
            }
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(deleted)
    }
}

impl BodyWriter<'_> {
    /// Appends `records` in one write and makes them durable; returns a pointer to each.
    pub(super) fn append(&mut self, records: &[Vec<u8>]) -> Result<Vec<Pointer>, SpoolError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let w = &mut *self.writer;
        if !w.dir_made {
            let dir = &self.bodies.dir;
            std::fs::create_dir_all(dir).map_err(io)?;
            if let Some(spool) = dir.parent() {
                File::open(spool).and_then(|d| d.sync_all()).map_err(io)?;
            }
            w.dir_made = true;
        }
        if w.current.as_ref().is_none_or(|s| s.len >= SEGMENT_MAX) {
            // A number is used once, even by a segment whose creation failed half-way.
            let number = w.next;
            w.next += 1;
            let file = std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .read(true)
                .open(self.bodies.dir.join(segment_name(number)))
                .map_err(io)?;
            w.current = Some(Segment {
                number,
                file,
                len: 0,
                named: false,
            });
        }
        let Some(segment) = w.current.as_mut() else {
            return Err(io(std::io::Error::other("no segment to append to")));
        };
        if !segment.named {
            // The segment is found by its name: the name must be durable before a pointer is.
            File::open(&self.bodies.dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
            segment.named = true;
        }
        w.buf.clear();
        let mut pointers = Vec::with_capacity(records.len());
        for record in records {
            let too_long = || io(std::io::Error::other("a record too long for the body log"));
            let offset = u32::try_from(segment.len + w.buf.len() as u64).map_err(|_| too_long())?;
            let len = u32::try_from(record.len()).map_err(|_| too_long())?;
            pointers.push(Pointer {
                segment: segment.number,
                offset,
                len,
                crc: crc32fast::hash(record),
            });
            w.buf.extend_from_slice(record);
        }
        segment.file.write_all_at(&w.buf, segment.len).map_err(io)?;
        segment.file.sync_data().map_err(io)?;
        segment.len += w.buf.len() as u64;
        Ok(pointers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "mailbeacon-bodies-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn records_read_back_as_written_across_segments_and_reopens() {
        let dir = spool_dir("roundtrip");
        let bodies = Bodies::open(&dir).unwrap();
        let big = vec![7u8; (SEGMENT_MAX as usize) / 2 + 1];
        let mut pointers = Vec::new();
        for round in 0..3u8 {
            let records = vec![vec![round; 10], big.clone(), Vec::new()];
            pointers.extend(bodies.writer().unwrap().append(&records).unwrap());
        }
        // Each append past SEGMENT_MAX started a segment.
        assert_eq!(Bodies::segments_in(&dir.join("bodies")).unwrap().len(), 2);
        drop(bodies);
        let reopened = Bodies::open(&dir).unwrap();
        let first = Pointer::parse(&pointers[0].encode()).unwrap();
        assert_eq!(first, pointers[0]);
        assert_eq!(reopened.read(b"k", &first).unwrap(), vec![0u8; 10]);
        assert_eq!(reopened.read(b"k", &pointers[4]).unwrap(), big);
        assert_eq!(reopened.read(b"k", &pointers[8]).unwrap(), Vec::<u8>::new());
        // A reopened log never appends to an old segment.
        let p = reopened.writer().unwrap().append(&[vec![1]]).unwrap()[0];
        assert!(p.segment > pointers[8].segment && p.offset == 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_or_missing_record_is_reported_never_decoded() {
        let dir = spool_dir("damage");
        let bodies = Bodies::open(&dir).unwrap();
        let p = bodies
            .writer()
            .unwrap()
            .append(&[b"{\"a\":1}".to_vec()])
            .unwrap()[0];
        let path = dir.join("bodies").join(segment_name(p.segment));
        std::fs::write(&path, b"{\"a\":2}").unwrap();
        let fresh = Bodies::open(&dir).unwrap();
        let e = fresh.read(b"k", &p).unwrap_err();
        assert!(e.is_damaged() && e.to_string().contains("CRC"), "{e}");
        std::fs::write(&path, b"{").unwrap();
        let e = Bodies::open(&dir).unwrap().read(b"k", &p).unwrap_err();
        assert!(e.is_damaged() && e.to_string().contains("cut short"), "{e}");
        std::fs::remove_file(&path).unwrap();
        let e = Bodies::open(&dir).unwrap().read(b"k", &p).unwrap_err();
        assert!(e.is_damaged() && e.to_string().contains("missing"), "{e}");
        let huge = Pointer { len: u32::MAX, ..p };
        assert!(fresh.read(b"k", &huge).unwrap_err().is_damaged());
        // Values that are not pointers are left to the record decoder.
        assert_eq!(Pointer::parse(b"{\"id\":1}"), None);
        assert_eq!(Pointer::parse(&p.encode()[..20]), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn collect_deletes_closed_segments_nothing_points_to_and_keeps_the_rest() {
        let dir = spool_dir("collect");
        let bodies = Bodies::open(&dir).unwrap();
        let old = bodies.writer().unwrap().append(&[vec![1]]).unwrap()[0];
        drop(bodies);
        let bodies = Bodies::open(&dir).unwrap();
        let kept = bodies.writer().unwrap().append(&[vec![2]]).unwrap()[0];
        drop(bodies);
        let bodies = Bodies::open(&dir).unwrap();
        let current = bodies.writer().unwrap().append(&[vec![3]]).unwrap()[0];
        // Only `kept` is pointed to; the segment being written is never judged.
        let deleted = bodies
            .collect(|| Ok([kept.segment].into_iter().collect()))
            .unwrap();
        assert_eq!(deleted, 1);
        assert!(bodies.read(b"k", &old).unwrap_err().is_damaged());
        assert_eq!(bodies.read(b"k", &kept).unwrap(), vec![2]);
        assert_eq!(bodies.read(b"k", &current).unwrap(), vec![3]);
        // With only the segment being written, there is nothing to judge and no scan.
        let lone = spool_dir("collect-lone");
        let only = Bodies::open(&lone).unwrap();
        only.writer().unwrap().append(&[vec![4]]).unwrap();
        assert_eq!(only.collect(|| panic!("no scan")).unwrap(), 0);
        std::fs::remove_dir_all(&lone).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
