//! What real IMAP servers do that RFC 3501 alone does not prepare a client for. Read from
//! their answers by pure functions: how long a throttling server asks us to wait (Microsoft's
//! `Suggested Backoff Time: N milliseconds`, Gmail's `[THROTTLED]`), what the poll's
//! `UID SEARCH` answer says besides the UIDs (an `EXISTS` count, a `[THROTTLED]` in its `OK`),
//! and the RFC 2971 `ID` a client introduces itself with. Acted on by the watcher's methods
//! at the end: a throttled command waits as asked and is sent again on the same connection.

use super::{Carry, ImapError, Session, Watcher};
use crate::health::AccountState;
use crate::stop::Stop;
use imap_proto::{MailboxDatum, Response, Status};
use std::time::Duration;

/// Commands sent per throttling answer before the watcher gives up on the connection.
const THROTTLED_TRIES: u32 = 4;

/// Gmail's `[THROTTLED]` names no wait; this is long enough for its bandwidth limiter to
/// notice a client that slowed down, and short next to a poll interval.
const THROTTLED_PAUSE: Duration = Duration::from_secs(15);
/// Bounds on a wait a server asks for: a zero or absurd number must neither spin nor stall.
const SHORTEST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(10 * 60);
/// Microsoft's wording, compared without case.
const BACKOFF_TEXT: &str = "suggested backoff time:";

/// The wait a server's response text asks for, if it says the client is throttled: Microsoft's
/// `NO Request is throttled. Suggested Backoff Time: 2000 milliseconds` → 2 s; Gmail's
/// `[THROTTLED]` (in an `OK` or a `NO`) → [`THROTTLED_PAUSE`].
pub(crate) fn throttle_pause(text: &str) -> Option<Duration> {
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
pub(crate) fn throttled(e: &imap::Error) -> Option<Duration> {
    match e {
        imap::Error::No(no) => throttle_pause(&no.information),
        imap::Error::Bad(bad) => throttle_pause(&bad.information),
        _ => None,
    }
}

/// The RFC 2971 `ID` command: Gmail expects one, and a server's log then names the client.
fn id_command() -> String {
    format!(
        "ID (\"name\" \"mailbeacon\" \"version\" \"{}\")",
        env!("CARGO_PKG_VERSION")
    )
}

/// What the answer to one `UID SEARCH` said.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Searched {
    /// The UIDs found, as the server listed them.
    pub(crate) uids: Vec<u32>,
    /// The last `* N EXISTS` in the answer: the mailbox's message count as of the search.
    pub(crate) exists: Option<u32>,
    /// `* N EXPUNGE` responses after the last `EXISTS` (each lowers the count by one).
    pub(crate) expunged: u32,
    /// The wait a `[THROTTLED]` in the tagged `OK` asks for.
    pub(crate) pause: Option<Duration>,
}

/// Reads the raw answer to a `UID SEARCH` (untagged lines, then the tagged `OK`). Anything else
/// the server says meanwhile — unsolicited `FETCH` (iCloud), `RECENT`, `OK` notices — is
/// ignored. `None` when a line does not parse.
pub(crate) fn read_search(mut data: &[u8]) -> Option<Searched> {
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

/// How to show a failed session and the least wait before reconnecting after it. A server
/// that throttles logins (Microsoft answers `LOGIN` with such a `NO`) names its wait; a
/// reconnect before it would be throttled again, and it is not refused credentials: it shows
/// as `backoff`, not as `auth_failed` on the LED.
pub(super) fn after(e: &ImapError) -> (AccountState, Duration) {
    if let Some(pause) = throttle_pause(&e.to_string()) {
        return (AccountState::Backoff, pause);
    }
    match e {
        // Refused credentials will not fix themselves quickly: at least a minute.
        ImapError::Auth(_) => (e.state(), Duration::from_secs(60)),
        _ => (e.state(), Duration::ZERO),
    }
}

impl Watcher {
    /// Runs `command`, and when the server answers that it throttles this client (Microsoft's
    /// `Suggested Backoff Time`, Gmail's `[THROTTLED]`) waits as asked and sends it again on
    /// the same connection: reconnecting at once is what such a server counts against a
    /// client. After [`THROTTLED_TRIES`] the error goes up, and [`Watcher::run`] reconnects
    /// no sooner than the server asked.
    pub(super) fn patiently<T>(
        &self,
        s: &mut Session,
        stop: &Stop,
        command: impl FnMut(&mut Session) -> imap::Result<T>,
    ) -> Result<T, ImapError> {
        self.patiently_as(s, stop, command, ImapError::from_imap)
    }

    /// [`Watcher::patiently`], classifying the final error with `classify`.
    pub(super) fn patiently_as<T>(
        &self,
        s: &mut Session,
        stop: &Stop,
        mut command: impl FnMut(&mut Session) -> imap::Result<T>,
        classify: impl Fn(imap::Error) -> ImapError,
    ) -> Result<T, ImapError> {
        let mut tries = 1;
        loop {
            match command(s) {
                Ok(answer) => return Ok(answer),
                Err(e) => match throttled(&e) {
                    Some(pause) if tries < THROTTLED_TRIES => {
                        tries += 1;
                        let said = match &e {
                            imap::Error::No(no) => format!("NO {}", no.information),
                            imap::Error::Bad(bad) => format!("BAD {}", bad.information),
                            other => other.to_string(),
                        };
                        self.throttled(pause, &said, stop)?;
                    }
                    _ => return Err(classify(e)),
                },
            }
        }
    }

    /// Waits `pause` as a throttling server asked (`said`), in the log and in health.
    pub(super) fn throttled(
        &self,
        pause: Duration,
        said: &str,
        stop: &Stop,
    ) -> Result<(), ImapError> {
        log::warn!(
            "imap {}: the server throttles this client ({said}); waiting {pause:?} as it asks",
            self.label()
        );
        self.report(
            AccountState::Backoff,
            Some(format!(
                "throttled by the server, waiting {pause:?}: {said}"
            )),
            None,
        );
        self.alive_for(pause);
        if stop.sleep(pause) {
            return Err(ImapError::Network("stopping".into()));
        }
        Ok(())
    }

    /// RFC 2971 `ID`, sent when the server offers it (Gmail expects it). Nothing in the answer
    /// is read; a refusal is logged and ignored. An answer the imap crate cannot parse leaves
    /// the connection out of step, so it fails this session once, and `ID` is not sent again.
    pub(super) fn introduce(&self, s: &mut Session, carry: &mut Carry) -> Result<(), ImapError> {
        match s.run_command_and_check_ok(id_command()) {
            Ok(()) => Ok(()),
            Err(imap::Error::No(_) | imap::Error::Bad(_)) => {
                log::info!("imap {}: the server refused ID; ignored", self.label());
                Ok(())
            }
            Err(e @ (imap::Error::Io(_) | imap::Error::ConnectionLost)) => {
                Err(ImapError::from_imap(e))
            }
            Err(e) => {
                carry.skip_id = true;
                log::warn!(
                    "imap {}: unreadable answer to ID ({e}); reconnecting without it",
                    self.label()
                );
                Err(ImapError::Protocol(format!("unreadable answer to ID: {e}")))
            }
        }
    }
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
    fn a_throttled_login_waits_as_asked_and_is_no_auth_failure() {
        let throttled = ImapError::Auth(
            "Request is throttled. Suggested Backoff Time: 3000 milliseconds".into(),
        );
        assert_eq!(
            after(&throttled),
            (AccountState::Backoff, Duration::from_secs(3))
        );
        let refused = ImapError::Auth("[AUTHENTICATIONFAILED] Invalid credentials".into());
        assert_eq!(
            after(&refused),
            (AccountState::AuthFailed, Duration::from_secs(60))
        );
        let gone = ImapError::Network("connection lost".into());
        assert_eq!(after(&gone), (AccountState::Backoff, Duration::ZERO));
    }

    #[test]
    fn the_id_names_this_client() {
        let id = id_command();
        assert!(id.starts_with("ID (\"name\" \"mailbeacon\" \"version\" \""));
        assert!(id.ends_with("\")"), "{id}");
    }
}
