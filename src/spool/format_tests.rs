//! The on-disk encoding of an item, pinned: records written by the version before the spool
//! had its own [`Mail`] record (captured from its `items` tree) decode into today's [`Item`] and
//! encode back to the same bytes, and a mail spooled today is written as those bytes.

use super::ingest::Mailbox;
use super::*;
use crate::mail::Summary;

/// An item as `ingest` wrote it: every field set, two sinks, one attachment.
const FULL: &str = r#"{"id":0,"bucket":"alerts","account":"home","folder":"INBOX","uidvalidity":7,"uid":42,"message_id":"abc@example.org","from":"Ops <ops@example.org>","subject":"Disk \"full\" on ñ","date":"2026-12-04T17:00:00Z","spooled_at":1796406840,"snippet":"the disk\tis full","parse_error":"no Date","severity":"P1","deliveries":[{"sink":"s","state":"pending","attempts":0,"last_error":null,"delivered_at":null,"message_id":null},{"sink":"t","state":"pending","attempts":0,"last_error":null,"delivered_at":null,"message_id":null}],"attachments":[{"name":"log.txt","mime":"text/plain","size":1234,"section":"2","encoding":"base64"}]}"#;

/// An item without a message id or attachments, after a delivery that owed an audit mirror:
/// rewritten whole by `record`.
const MIRRORED: &str = r#"{"id":1,"bucket":"b","account":"home","folder":"INBOX","uidvalidity":7,"uid":9,"message_id":null,"from":"","subject":"mail 9","date":null,"spooled_at":1796406840,"snippet":"","parse_error":null,"severity":"P3","deliveries":[{"sink":"s","state":"delivered","attempts":1,"last_error":null,"delivered_at":77,"message_id":"m\u0001"},{"sink":"log","state":"pending","attempts":0,"last_error":null,"delivered_at":null,"message_id":null,"role":"audit"}]}"#;

fn full_mail() -> NewItem {
    NewItem {
        bucket: "alerts".into(),
        severity: crate::config::Severity::P1,
        uid: 42,
        summary: Summary {
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
        },
        sinks: vec!["s".into(), "t".into()],
    }
}

#[test]
fn records_written_before_read_back_and_encode_to_the_same_bytes() {
    for bytes in [FULL, MIRRORED] {
        let item: Item = decode(b"k", bytes.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(encode(&item)).unwrap(), bytes);
    }
    let item: Item = decode(b"k", FULL.as_bytes()).unwrap();
    assert_eq!(item.attachments[0].size, 1234);
    assert_eq!(item.deliveries.len(), 2);
    let mirrored: Item = decode(b"k", MIRRORED.as_bytes()).unwrap();
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
    let item = new.record(new.mail(), 0, 1796406840, &mailbox);
    assert_eq!(String::from_utf8(encode(&item)).unwrap(), FULL);
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
    let mut stored: Item =
        decode(b"k", &spool.items.get(id.to_be_bytes()).unwrap().unwrap()).unwrap();
    (stored.id, stored.spooled_at) = (0, 1796406840);
    assert_eq!(stored, item);
    drop(spool);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn fingerprints_are_those_of_the_mail_as_spooled() {
    // Captured from the version before: a mail without a message id hashes its fields.
    let mut new = full_mail();
    assert_eq!(fingerprint(&new.mail()), "m:abc@example.org");
    new.summary.message_id = None;
    let hashed = fingerprint(&new.mail());
    let mailbox = Mailbox {
        account: "home",
        folder: "INBOX",
        uidvalidity: 7,
    };
    assert_eq!(new.record(new.mail(), 0, 0, &mailbox).fingerprint(), hashed);
    let mirrored: Item = decode(b"k", MIRRORED.as_bytes()).unwrap();
    assert_eq!(mirrored.fingerprint(), "h:a16965537988ab51");
}
