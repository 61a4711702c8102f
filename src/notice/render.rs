//! A notice as Discord sees it: one short embed — what, since when, what it holds back, the
//! remedy — and a one-line content that pings nobody. Only `[notices] mention`, only on an
//! alarm-level announcement or reminder, may ping, and `allowed_mentions` permits exactly it.
//!
//! Reasons can carry a server's words (an IMAP refusal), so they are escaped like mail text.

use super::ledger::{Kind, Notice};
use crate::config::Mention;
use crate::discord::render::escape;
use crate::health::Pattern;
use crate::text::ellipsize;
use serde_json::{json, Value};

const GREEN: u32 = 0x2E_CC_71;
const DETAIL: usize = 1000;

fn colour(level: Pattern) -> u32 {
    match level {
        Pattern::Alarm => 0xE7_4C_3C,
        Pattern::Dead => 0xE6_7E_22,
        _ => 0xF1_C4_0F,
    }
}

/// Discord renders `<t:UNIX:f>` in the reader's own time zone.
fn when(t: i64) -> String {
    format!("<t:{t}:f>")
}

fn holds_text(n: &Notice) -> Option<String> {
    match &n.kind {
        Kind::Recovery {
            held: Some(held),
            pending,
            ..
        } => {
            let noun = if *held == 1 { "mail" } else { "mails" };
            Some(match pending {
                Some(0) | None => format!("{held} {noun} held back meanwhile; all delivered now."),
                Some(p) => format!("{held} {noun} held back meanwhile; {p} still pending."),
            })
        }
        Kind::Recovery { held: None, .. } => {
            Some("Mail waited on the server meanwhile and is fetched now.".into())
        }
        _ => None,
    }
}

/// The mention for this notice, as (content prefix, allowed_mentions).
fn ping(n: &Notice, mention: Option<&Mention>) -> (String, Value) {
    let loud = n.trouble.level == Pattern::Alarm && !matches!(n.kind, Kind::Recovery { .. });
    match mention.filter(|_| loud) {
        Some(Mention::Role(id)) => (format!("<@&{id}> "), json!({ "parse": [], "roles": [id] })),
        Some(Mention::Everyone) => ("@everyone ".into(), json!({ "parse": ["everyone"] })),
        None => (String::new(), json!({ "parse": [] })),
    }
}

/// The request body of one notice.
pub(crate) fn render(n: &Notice, mention: Option<&Mention>) -> Value {
    let t = &n.trouble;
    // Names come from the operator's config; only a component's words (a server's refusal) are escaped.
    let what = t.what.clone();
    let detail = escape(&ellipsize(&t.detail, DETAIL));
    let (title, colour, description, word) = match &n.kind {
        Kind::Trouble => (
            what,
            colour(t.level),
            format!("{detail}\n\n{}", t.remedy),
            "trouble",
        ),
        Kind::Reminder => (
            format!("Still: {what}"),
            colour(t.level),
            format!("{detail}\n\n{}", t.remedy),
            "reminder",
        ),
        Kind::Recovery { lasted, .. } => (
            format!("Over: {what}"),
            GREEN,
            format!(
                "It lasted {}.{}",
                crate::time::age(*lasted),
                holds_text(n).map_or(String::new(), |h| format!(" {h}"))
            ),
            "resolved",
        ),
    };
    let (prefix, allowed) = ping(n, mention);
    json!({
        "content": format!("{prefix}**mailbeacon** · {word}"),
        "embeds": [{
            "title": ellipsize(&title, 256),
            "description": description,
            "color": colour,
            "fields": [{ "name": "Since", "value": when(n.since), "inline": true }],
            "footer": { "text": "mailbeacon health notice" },
        }],
        "allowed_mentions": allowed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notice::{Holds, Trouble};

    fn notice(level: Pattern, kind: Kind) -> Notice {
        Notice {
            kind,
            trouble: Trouble {
                key: "imap home/INBOX".into(),
                level,
                what: "IMAP home/INBOX: login refused".into(),
                detail: "NO [AUTHENTICATIONFAILED] @everyone <@&1> *bad*".into(),
                remedy: "Check the password, then `systemctl reload mailbeacon`.".into(),
                sink: None,
                holds: Holds::Server,
            },
            since: 1_700_000_000,
            channels: vec![],
        }
    }

    #[test]
    fn a_notice_says_what_since_when_and_the_remedy_and_pings_nobody() {
        let body = render(
            &notice(Pattern::Dead, Kind::Trouble),
            Some(&Mention::Role("9".into())),
        );
        assert_eq!(
            body["allowed_mentions"],
            json!({ "parse": [] }),
            "dead is not alarm"
        );
        assert_eq!(body["content"], "**mailbeacon** · trouble");
        let e = &body["embeds"][0];
        assert_eq!(e["title"], "IMAP home/INBOX: login refused");
        let d = e["description"].as_str().unwrap();
        assert!(d.contains("systemctl reload mailbeacon"), "{d}");
        assert!(
            d.contains("@\u{200B}everyone") && d.contains("\\*bad\\*"),
            "server words escaped: {d}"
        );
        assert_eq!(e["fields"][0]["value"], "<t:1700000000:f>");
    }

    #[test]
    fn only_an_alarm_announcement_carries_the_configured_mention() {
        let role = Mention::Role("42".into());
        let body = render(&notice(Pattern::Alarm, Kind::Trouble), Some(&role));
        assert_eq!(
            body["allowed_mentions"],
            json!({ "parse": [], "roles": ["42"] })
        );
        assert!(body["content"].as_str().unwrap().starts_with("<@&42> "));
        let over = Kind::Recovery {
            lasted: 60,
            held: Some(3),
            pending: Some(0),
        };
        let body = render(&notice(Pattern::Alarm, over), Some(&role));
        assert_eq!(body["allowed_mentions"], json!({ "parse": [] }));
        let body = render(&notice(Pattern::Alarm, Kind::Trouble), None);
        assert_eq!(body["allowed_mentions"], json!({ "parse": [] }));
    }

    #[test]
    fn the_end_says_how_long_and_how_many_mails_were_held() {
        let over = Kind::Recovery {
            lasted: 3 * 3600 + 120,
            held: Some(20),
            pending: Some(0),
        };
        let body = render(&notice(Pattern::Dead, over), None);
        let d = body["embeds"][0]["description"].as_str().unwrap();
        assert!(
            d.contains("3h02m") && d.contains("20 mails held back meanwhile; all delivered now"),
            "{d}"
        );
        assert!(body["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .starts_with("Over: "));
        let one = Kind::Recovery {
            lasted: 60,
            held: Some(1),
            pending: Some(0),
        };
        let body = render(&notice(Pattern::Dead, one), None);
        let d = body["embeds"][0]["description"].as_str().unwrap();
        assert!(d.contains(" 1 mail held back meanwhile;"), "{d}");
    }
}
