//! A spooled mail and its delivery record per sink.

use crate::config::Severity;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Delivered,
    Dead,
}

impl State {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Delivered => "delivered",
            State::Dead => "dead",
        }
    }
}

/// Where one item stands with one sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub sink: String,
    pub state: State,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Unix seconds of Discord's acknowledgement.
    pub delivered_at: Option<i64>,
    pub message_id: Option<String>,
    /// Why this sink owes the item when it is not one of the bucket's own sinks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

impl Delivery {
    /// A delivery owed to `sink`, nothing tried yet.
    pub(crate) fn owed(sink: &str, role: Role) -> Delivery {
        Delivery {
            sink: sink.to_string(),
            state: State::Pending,
            attempts: 0,
            last_error: None,
            delivered_at: None,
            message_id: None,
            role: Some(role),
        }
    }
}

/// A delivery added after spooling: to a bucket's `fallback` sink (its sinks were dead, or the
/// mail waited past `escalate_after`), or a one-line mirror to its `audit` sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Fallback,
    Audit,
}

/// A mail as the spool keeps it: enough to render, find and audit it; not the whole body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: u64,
    pub bucket: String,
    pub account: String,
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: u32,
    pub message_id: Option<String>,
    pub from: String,
    pub subject: String,
    pub date: Option<String>,
    /// Unix seconds when the item became durable.
    pub spooled_at: i64,
    pub snippet: String,
    #[serde(default)]
    pub parse_error: Option<String>,
    /// The bucket's severity when the item was spooled: its place in each sink's queue.
    /// `None` for items spooled by a version that did not record it.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// One per sink of the bucket at spool time. Empty for a `hold` bucket.
    pub deliveries: Vec<Delivery>,
    /// What the mail carries besides its text (names, types, sizes, sections).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

impl Item {
    /// Dead if any sink dead-lettered it, pending while any sink still owes it, else delivered.
    /// An audit mirror owes a line about the mail, not the mail: it never holds it pending.
    pub fn state(&self) -> State {
        let mut owed = self
            .deliveries
            .iter()
            .filter(|d| d.role != Some(Role::Audit));
        if self
            .deliveries
            .iter()
            .any(|d| d.state == State::Dead && d.role != Some(Role::Audit))
        {
            State::Dead
        } else if owed.any(|d| d.state == State::Pending) {
            State::Pending
        } else {
            State::Delivered
        }
    }

    pub(crate) fn delivery_mut(&mut self, sink: &str) -> Option<&mut Delivery> {
        self.deliveries.iter_mut().find(|d| d.sink == sink)
    }

    pub(crate) fn delivery(&self, sink: &str) -> Option<&Delivery> {
        self.deliveries.iter().find(|d| d.sink == sink)
    }

    /// The [`fingerprint`] of the mail this item was spooled from, from the fields it keeps.
    pub(crate) fn fingerprint(&self) -> String {
        fingerprint_of(
            self.message_id.as_deref(),
            [
                &self.from,
                &self.subject,
                self.date.as_deref().unwrap_or(""),
                &self.snippet,
            ],
        )
    }
}

/// What the spool keeps of a mail: exactly the fields of it that an [`Item`] stores. The
/// reader of mail converts what it read into this (`impl From<&mail::Summary>` in
/// `src/mail.rs`); the spool knows nothing of mail parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mail {
    pub message_id: Option<String>,
    /// `Display Name <addr@host>`, or the bare address.
    pub from: String,
    pub subject: String,
    /// RFC 3339, from the Date header.
    pub date: Option<String>,
    pub snippet: String,
    /// Why the mail could not be read fully, when it could not.
    pub parse_error: Option<String>,
    pub attachments: Vec<Attachment>,
}

/// One attachment as the server describes it; nothing of its content. Stored in the item as
/// it is here (`src/mail.rs` uses this type for what it reads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Decoded and cleaned (see src/imap/structure.rs): a file name, never a path.
    pub name: String,
    /// `type/subtype`, lower case.
    pub mime: String,
    /// Bytes once decoded (estimated from the encoded size).
    pub size: u64,
    /// The IMAP section that holds it (`2`, `1.3`).
    pub section: String,
    /// Its Content-Transfer-Encoding (`base64`, `quoted-printable`, …), to undo after a fetch.
    #[serde(default)]
    pub encoding: String,
}

/// The per-mailbox cursor: everything at or below `last_uid` is in the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub uidvalidity: u32,
    pub last_uid: u32,
}

/// Fingerprint for recognising a mail again after a UIDVALIDITY change: the Message-ID, or an
/// FNV-1a hash of what was read when there is none.
pub(crate) fn fingerprint(mail: &Mail) -> String {
    fingerprint_of(
        mail.message_id.as_deref(),
        [
            &mail.from,
            &mail.subject,
            mail.date.as_deref().unwrap_or(""),
            &mail.snippet,
        ],
    )
}

/// [`fingerprint`] of the message id, else of from, subject, date and snippet, in that order.
fn fingerprint_of(message_id: Option<&str>, parts: [&str; 4]) -> String {
    if let Some(id) = message_id {
        return format!("m:{id}");
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    format!("h:{h:016x}")
}
