//! The on-disk encoding of an item, pinned: records written by the version before the spool
//! had its own [`Mail`] record (captured from its `items` tree: the JSON, and the deflated form
//! [`codec`](super::codec) stores) decode into today's [`Item`] and encode back to the same
//! bytes, and a mail spooled today is written as those bytes.

use super::ingest::Mailbox;
use super::*;
use crate::mail::Summary;

/// An item as `ingest` wrote it: every field set, two sinks, one attachment.
const FULL: &str = r#"{"id":0,"bucket":"alerts","account":"home","folder":"INBOX","uidvalidity":7,"uid":42,"message_id":"abc@example.org","from":"Ops <ops@example.org>","subject":"Disk \"full\" on ñ","date":"2026-12-04T17:00:00Z","spooled_at":1796406840,"snippet":"the disk\tis full","parse_error":"no Date","severity":"P1","deliveries":[{"sink":"s","state":"pending","attempts":0,"last_error":null,"delivered_at":null,"message_id":null},{"sink":"t","state":"pending","attempts":0,"last_error":null,"delivered_at":null,"message_id":null}],"attachments":[{"name":"log.txt","mime":"text/plain","size":1234,"section":"2","encoding":"base64"}]}"#;

/// [`FULL`] as the `items` tree holds it: deflated.
const FULL_STORED: &str = "01b551414ec33010fc4ab4e70049885ab01042880b17e0c0014151e5c6dbd6d4b12def0615501fc51bf818eb52503f80944b66766776c61f600da8aa84d9d0ad904181769898a004dd7561f0195a861e0598076730c9c8f5cde5ed83008335afda5963f90dd4b804f907d53625f448a41738cddaa067dd05ae751f1d1e86b490bd790abdc8dc462ace42a47df65c681a662fd8b14c5c595a1513980fce4da008bef8fa14de6846219baa191dd4cd41d5ded7635555f23d0a4b31048766aa45a01e9f8eda6a74d24a40f236c66d425e62614479c2968aac2d5b5127c229a6149248fb505c659312085f316df3c15d2d73069dcd0812a8a70f20eb57329feb22ce1b0a227a637d8ea999b18fd265eed769e25f7d2f794ad849ed4efdc1f68bcbc8a6fcf36071ff1f8f67796b66dd2d7bf4f95ac9e5759f2b766171c8ebecdcdb2dc0b8e6a3e8b4f5f91afb8ea0eae6b8cd3d756c83972e1a61d077615b828299261cb5b079de7c03";

/// An item without a message id or attachments, after a delivery that owed an audit mirror:
/// rewritten whole by `record`.
const MIRRORED: &str = r#"{"id":1,"bucket":"b","account":"home","folder":"INBOX","uidvalidity":7,"uid":9,"message_id":null,"from":"","subject":"mail 9","date":null,"spooled_at":1796406840,"snippet":"","parse_error":null,"severity":"P3","deliveries":[{"sink":"s","state":"delivered","attempts":1,"last_error":null,"delivered_at":77,"message_id":"m\u0001"},{"sink":"log","state":"pending","attempts":0,"last_error":null,"delivered_at":null,"message_id":null,"role":"audit"}]}"#;

/// [`MIRRORED`] as the `items` tree holds it: deflated.
const MIRRORED_STORED: &str = "018550bb4ec34010fc15b4f515b68862ec928e062891005967df261cb997ee110945fe77c67608a1a2dcd9999d993d9156d4d58286321e385347030992e3e88b9ba70f6f19c0ce1bc511db87c7fba7170045aba3345ae9fc455d23083375ad20cb29c93df7f355578c11b48bde42084d2ac3278f198395dadcb48094cc4cdd4a4cc17bc3aa9760d44dbbdd54dbbb4d2528391dc2120d822063e29e63f44873d6f191e392839e6f41516cf48c70a2eef54449bb032c1336292f767466b0022673661b32b878829129ff3d7ea12eb11a34bd6e48f6ad545555d3242e46c6ef71f6c72ab053dacdc8af113afd67b436bbb65a91880fa18c2c783c4defd337";

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn json(item: &Item) -> String {
    String::from_utf8(serde_json::to_vec(item).unwrap()).unwrap()
}

fn full_mail() -> NewItem {
    NewItem {
        bucket: "alerts".into(),
        severity: crate::config::Severity::P1,
        uid: 42,
        // Through the reader's conversion, as the watcher hands it over.
        mail: Mail::from(&Summary {
            from: "Ops <ops@example.org>".into(),
            to: "me@example.org".into(),
            cc: "you@example.org".into(),
            subject: "Disk \"full\" on ñ".into(),
            date: Some("2026-12-04T17:00:00Z".into()),
            message_id: Some("abc@example.org".into()),
            snippet: "the disk\tis full".into(),
            parse_error: Some("no Date".into()),
            attachments: vec![Attachment {
                name: "log.txt".into(),
                mime: "text/plain".into(),
                size: 1234,
                section: "2".into(),
                encoding: "base64".into(),
            }],
        }),
        sinks: vec!["s".into(), "t".into()],
    }
}

#[test]
fn records_written_before_read_back_and_encode_to_the_same_bytes() {
    for (text, stored) in [(FULL, FULL_STORED), (MIRRORED, MIRRORED_STORED)] {
        let stored = unhex(stored);
        let item: Item = decode(b"k", &stored).unwrap();
        assert_eq!(encode(&item), stored);
        assert_eq!(json(&item), text);
        // A record from before deflating reads as the same item.
        assert_eq!(decode::<Item>(b"k", text.as_bytes()).unwrap(), item);
    }
    let item: Item = decode(b"k", &unhex(FULL_STORED)).unwrap();
    assert_eq!(item.attachments[0].size, 1234);
    assert_eq!(item.deliveries.len(), 2);
    let mirrored: Item = decode(b"k", &unhex(MIRRORED_STORED)).unwrap();
    assert_eq!(mirrored.delivery("log").unwrap().role, Some(Role::Audit));
    assert_eq!(mirrored.state(), State::Delivered);
}

#[test]
fn a_mail_spooled_now_is_written_as_before() {
    let new = full_mail();
    let mailbox = Mailbox {
        account: "home",
        folder: "INBOX",
        uidvalidity: 7,
    };
    let item = new.record(0, 1796406840, &mailbox);
    assert_eq!(json(&item), FULL);
    assert_eq!(encode(&item), unhex(FULL_STORED));
    // And through `ingest`, but for the id and the time it was spooled.
    let d = std::env::temp_dir().join(format!("mb-spool-format-{}", fastrand::u64(..)));
    let spool = Spool::open(&d, 1 << 20).unwrap();
    let cursor = Cursor {
        uidvalidity: 7,
        last_uid: 42,
    };
    let id = spool
        .ingest("home", "INBOX", cursor, &[new], false)
        .unwrap()[0];
    // The items tree points into the body log, which holds the record in the same encoding.
    let value = spool.items.get(id.to_be_bytes()).unwrap().unwrap();
    let pointer = super::bodies::Pointer::parse(&value).expect("a pointer into the body log");
    let record = spool.bodies.read(b"k", &pointer).unwrap();
    let mut stored: Item = decode(b"k", &record).unwrap();
    assert_eq!(record, encode(&stored));
    (stored.id, stored.spooled_at) = (0, 1796406840);
    assert_eq!(stored, item);
    drop(spool);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn fingerprints_are_those_of_the_mail_as_spooled() {
    // Captured from the version before: a mail without a message id hashes its fields.
    let mut new = full_mail();
    assert_eq!(fingerprint(&new.mail), "m:abc@example.org");
    new.mail.message_id = None;
    let hashed = fingerprint(&new.mail);
    let mailbox = Mailbox {
        account: "home",
        folder: "INBOX",
        uidvalidity: 7,
    };
    assert_eq!(new.record(0, 0, &mailbox).fingerprint(), hashed);
    let mirrored: Item = decode(b"k", &unhex(MIRRORED_STORED)).unwrap();
    assert_eq!(mirrored.fingerprint(), "h:a16965537988ab51");
}
