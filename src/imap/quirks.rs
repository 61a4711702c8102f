//! What real IMAP servers do that RFC 3501 alone does not prepare a client for, read from their
//! answers by pure functions: how long a throttling server asks us to wait (Microsoft's
//! `Suggested Backoff Time: N milliseconds`, Gmail's `[THROTTLED]`), what the poll's
//! `UID SEARCH` answer says besides the UIDs (an `EXISTS` count, a `[THROTTLED]` in its `OK`),
//! and the RFC 2971 `ID` a client introduces itself with. The watcher in `src/imap/mod.rs`
//! acts on what these return.

use imap_proto::{MailboxDatum, Response, Status};
use std::time::Duration;

/// Gmail's `[THROTTLED]` names no wait; this is long enough for its bandwidth limiter to
/// notice a client that slowed down, and short next to a poll interval.
pub const THROTTLED_PAUSE: Duration = Duration::from_secs(15);
/// Bounds on a wait a server asks for: a zero or absurd number must neither spin nor stall.
const SHORTEST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(10 * 60);
/// Microsoft's wording, compared without case.
const BACKOFF_TEXT: &str = "suggested backoff time:";

/// The wait a server's response text asks for, if it says the client is throttled: Microsoft's
/// `NO Request is throttled. Suggested Backoff Time: 2000 milliseconds` → 2 s; Gmail's
/// `[THROTTLED]` (in an `OK` or a `NO`) → [`THROTTLED_PAUSE`].
pub fn throttle_pause(text: &str) -> Option<Duration> {
    let lower = text.to_ascii_lowercase();
    if let Some(at) = lower.find(BACKOFF_TEXT) {
        let digits: String = lower[at + BACKOFF_TEXT.len()..]
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let asked = digits
            .parse::<u64>()
            .map_or(THROTTLED_PAUSE, Duration::from_millis);
        return Some(asked.clamp(SHORTEST_PAUSE, LONGEST_PAUSE));
    }
    (lower.contains("[throttled]") || lower.contains("request is throttled"))
        .then_some(THROTTLED_PAUSE)
}

/// [`throttle_pause`] for a command that failed: only a `NO` or `BAD` carries the server's text.
pub fn throttled(e: &imap::Error) -> Option<Duration> {
    match e {
        imap::Error::No(no) => throttle_pause(&no.information),
        imap::Error::Bad(bad) => throttle_pause(&bad.information),
        _ => None,
    }
}

/// The RFC 2971 `ID` command: Gmail expects one, and a server's log then names the client.
pub fn id_command() -> String {
    format!(
        "ID (\"name\" \"mailbeacon\" \"version\" \"{}\")",
        env!("CARGO_PKG_VERSION")
    )
}

/// What the answer to one `UID SEARCH` said.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Searched {
    /// The UIDs found, as the server listed them.
    pub uids: Vec<u32>,
    /// The last `* N EXISTS` in the answer: the mailbox's message count as of the search.
    pub exists: Option<u32>,
    /// `* N EXPUNGE` responses after the last `EXISTS` (each lowers the count by one).
    pub expunged: u32,
    /// The wait a `[THROTTLED]` in the tagged `OK` asks for.
    pub pause: Option<Duration>,
}

/// Reads the raw answer to a `UID SEARCH` (untagged lines, then the tagged `OK`). Anything else
/// the server says meanwhile — unsolicited `FETCH` (iCloud), `RECENT`, `OK` notices — is
/// ignored. `None` when a line does not parse.
pub fn read_search(mut data: &[u8]) -> Option<Searched> {
    let mut found = Searched::default();
    while !data.is_empty() {
        let (rest, response) = imap_proto::parser::parse_response(data).ok()?;
        match response {
            Response::MailboxData(MailboxDatum::Search(uids)) => found.uids.extend(uids),
            Response::MailboxData(MailboxDatum::Exists(n)) => {
                found.exists = Some(n);
                found.expunged = 0;
            }
            Response::Expunge(_) => found.expunged += 1,
            Response::Done {
                status: Status::Ok,
                information: Some(text),
                ..
            } => found.pause = throttle_pause(&text),
            _ => {}
        }
        data = rest;
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsofts_suggested_backoff_is_waited_as_asked() {
        let no = "Request is throttled. Suggested Backoff Time: 2000 milliseconds";
        assert_eq!(throttle_pause(no), Some(Duration::from_secs(2)));
        let odd = "request is throttled. suggested backoff time:   0 milliseconds";
        assert_eq!(throttle_pause(odd), Some(SHORTEST_PAUSE));
        let huge = "Suggested Backoff Time: 99999999999 milliseconds";
        assert_eq!(throttle_pause(huge), Some(LONGEST_PAUSE));
        let garbled = "Request is throttled. Suggested Backoff Time: soon";
        assert_eq!(throttle_pause(garbled), Some(THROTTLED_PAUSE));
    }

    #[test]
    fn gmails_throttled_pauses_and_ordinary_answers_do_not() {
        assert_eq!(throttle_pause("[THROTTLED] Success"), Some(THROTTLED_PAUSE));
        assert_eq!(throttle_pause("Success"), None);
        assert_eq!(throttle_pause("Mailbox is full"), None);
        assert_eq!(throttled(&imap::Error::ConnectionLost), None);
    }

    #[test]
    fn a_search_answer_gives_uids_the_count_and_a_throttle() {
        let answer = b"* 4 EXISTS\r\n* 2 FETCH (FLAGS (\\Seen))\r\n* SEARCH 7 9\r\n\
                       * 1 RECENT\r\na5 OK [THROTTLED] SEARCH completed\r\n";
        let found = read_search(answer);
        assert_eq!(
            found,
            Some(Searched {
                uids: vec![7, 9],
                exists: Some(4),
                expunged: 0,
                pause: Some(THROTTLED_PAUSE),
            })
        );
        let plain = read_search(b"* 3 EXPUNGE\r\n* SEARCH\r\na6 OK done\r\n");
        assert_eq!(
            plain,
            Some(Searched {
                expunged: 1,
                ..Searched::default()
            })
        );
        assert_eq!(read_search(b"* SEARCH 1 x\r\n"), None);
    }

    #[test]
    fn the_id_names_this_client() {
        let id = id_command();
        assert!(id.starts_with("ID (\"name\" \"mailbeacon\" \"version\" \""));
        assert!(id.ends_with("\")"), "{id}");
    }
}
