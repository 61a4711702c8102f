//! A bucket's `after_delivery`: what the agent does to a mail on the server once Discord has
//! acknowledged it — `"seen"` (set `\Seen`), `"flag"` (set `\Flagged`) or `"move:FOLDER"`.
//! Nothing by default: the watcher only ever reads.

use super::raw::RawBucket;
use super::{Account, ConfigError, Loader, Mode};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What happens to a delivered mail on the server. Stored with each owed action in the spool,
/// so its serialised form is part of the spool's format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterDelivery {
    Seen,
    Flag,
    Move(String),
}

impl AfterDelivery {
    /// `"seen"`, `"flag"`, `"move:FOLDER"`; the reason in words otherwise.
    pub(crate) fn parse(text: &str) -> Result<AfterDelivery, String> {
        match text {
            "seen" => Ok(AfterDelivery::Seen),
            "flag" => Ok(AfterDelivery::Flag),
            _ => match text.strip_prefix("move:") {
                Some(folder) if folder.trim().is_empty() => {
                    Err("\"move:\" needs a folder: \"move:Archive\"".into())
                }
                // The folder goes into an IMAP command as a quoted string by the imap crate;
                // line breaks and NUL could never be a folder name there.
                Some(folder) if folder.chars().any(|c| c.is_control()) => {
                    Err("the folder of \"move:\" must not hold control characters".into())
                }
                Some(folder) => Ok(AfterDelivery::Move(folder.to_string())),
                None => Err(format!(
                    "{text:?} is not one of \"seen\", \"flag\", \"move:FOLDER\""
                )),
            },
        }
    }
}

impl fmt::Display for AfterDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AfterDelivery::Seen => f.write_str("seen"),
            AfterDelivery::Flag => f.write_str("flag"),
            AfterDelivery::Move(folder) => write!(f, "move:{folder}"),
        }
    }
}

impl Loader<'_> {
    /// `after_delivery`, refused where it could never act (a `hold` bucket delivers nothing).
    pub(super) fn after_delivery(
        &self,
        key: &dyn Fn(&str) -> String,
        b: &RawBucket,
        mode: Mode,
    ) -> Result<Option<AfterDelivery>, ConfigError> {
        let Some(text) = b.after_delivery.as_deref() else {
            return Ok(None);
        };
        let action = AfterDelivery::parse(text).map_err(|r| self.err(key("after_delivery"), r))?;
        if mode == Mode::Hold {
            return Err(self.err(
                key("after_delivery"),
                "has no effect: a hold bucket delivers nothing to acknowledge",
            ));
        }
        Ok(Some(action))
    }

    /// A move into a folder that an account watches would bring the mail back as new there
    /// (a moved mail gets a new UID, above that folder's cursor) and announce it twice.
    pub(super) fn moves_leave_watched_folders(
        &self,
        buckets: &[super::Bucket],
        accounts: &[Account],
    ) -> Result<(), ConfigError> {
        for (i, b) in buckets.iter().enumerate() {
            let Some(AfterDelivery::Move(target)) = &b.after_delivery else {
                continue;
            };
            let watched = accounts.iter().find(|a| {
                a.folders
                    .iter()
                    .any(|f| f == target || (is_inbox(f) && is_inbox(target)))
            });
            if let Some(a) = watched {
                return Err(self.err(
                    format!("bucket[{i}] ({}).after_delivery", b.name),
                    format!(
                        "moves mail into {target:?}, a folder account {:?} watches: the moved mail would be announced again; move it to a folder no account watches",
                        a.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// RFC 3501: `INBOX` is case-insensitive.
fn is_inbox(folder: &str) -> bool {
    folder.eq_ignore_ascii_case("INBOX")
}

#[cfg(test)]
mod tests {
    use super::AfterDelivery;
    use crate::config::tests::{load, GOOD};

    fn with(value: &str) -> String {
        GOOD.replace(
            "severity = \"P2\"",
            &format!("severity = \"P2\"\nafter_delivery = {value:?}"),
        )
    }

    #[test]
    fn the_three_actions_load() {
        for (text, want) in [
            ("seen", AfterDelivery::Seen),
            ("flag", AfterDelivery::Flag),
            (
                "move:Archive/2026",
                AfterDelivery::Move("Archive/2026".into()),
            ),
        ] {
            let c = load("after-ok", &with(text)).unwrap();
            assert_eq!(c.buckets[0].after_delivery, Some(want.clone()));
            assert_eq!(want.to_string(), text);
            assert_eq!(c.buckets[1].after_delivery, None);
        }
    }

    #[test]
    fn bad_values_name_the_key_and_what_to_write() {
        let key = "bucket[0] (stripe).after_delivery";
        for (value, says) in [
            ("move:", "needs a folder"),
            ("move:  ", "needs a folder"),
            ("delete", "is not one of"),
            ("Seen", "is not one of"),
            ("move:INBOX", "a folder account \"home\" watches"),
            ("move:inbox", "would be announced again"),
        ] {
            let e = load("after-bad", &with(value)).unwrap_err();
            assert_eq!(e.key, key, "{value}: {e}");
            assert!(e.reason.contains(says), "{value}: {e}");
        }
        let held = with("seen").replace("severity = \"P2\"", "severity = \"P2\"\nmode = \"hold\"");
        let e = load("after-hold", &held).unwrap_err();
        assert!(e.reason.contains("hold bucket"), "{e}");
    }
}
