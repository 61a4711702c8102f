//! The daemon on a grant `mailbeacon login` obtained: XOAUTH2 and OAUTHBEARER, a stale token
//! renewed, a SIGKILL after a rotation, a revoked grant, a throttled login.

use super::{config, delivered, device_login, grant_file, readme_transcript_matches, DEVICE};
use crate::common::daemon::{cli, send, temp_dir, wait_until};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use crate::common::fake_oauth::FakeOAuth;
use crate::common::notices::{description, notices_to, title};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

#[test]
fn device_login_then_the_daemon_delivers_with_xoauth2() {
    let oauth = FakeOAuth::start(Duration::from_secs(3600));
    let dovecot = Dovecot::start_oauth2(&oauth.url("/introspect"), "xoauth2");
    let discord = FakeDiscord::start();
    let hook = discord.webhook("1", "hookTOKEN", Behaviour::Ok);
    let config = config("oauth-device", &dovecot, &oauth.device_keys(), &hook);
    let path = config.write();

    // Approved only after a `slow_down` and an `authorization_pending` answer.
    oauth.slow_down_once();
    let text = device_login(&path, &oauth, Duration::from_secs(8));
    assert!(
        text.contains(&format!("open  {}", oauth.url("/device"))),
        "{text}"
    );
    assert!(
        text.contains("ok   signed in: the grant is stored in"),
        "{text}"
    );
    assert!(
        text.contains("ok   imap home: logged in to 127.0.0.1 as alice"),
        "{text}"
    );
    let polls = oauth.calls(DEVICE);
    let answers: Vec<_> = polls.iter().map(|c| c.error.as_deref()).collect();
    assert_eq!(
        answers,
        [Some("slow_down"), Some("authorization_pending"), None],
        "polls as RFC 8628 says: at the interval, slower after slow_down"
    );
    // The interval was 1 s; after slow_down it is 6 s (a slow machine only makes it longer).
    let gap = polls[1].at - polls[0].at;
    assert!(
        gap >= Duration::from_millis(5500),
        "polled again after {gap:?}"
    );

    readme_transcript_matches(&text);

    let grant = grant_file(&config);
    let mode = std::fs::metadata(&grant)
        .expect("grant stored")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", grant.display());

    let daemon = config.start_watching();
    send(&dovecot, "over xoauth2");
    delivered(&discord, "over xoauth2", 20);
    for (what, text) in [
        ("login's output", text),
        ("the daemon's log", daemon.log_text()),
        ("status", daemon.status().to_string()),
        ("the dump", format!("{:?}", daemon.dump())),
    ] {
        oauth.assert_no_token_in(what, &text);
    }
}

#[test]
fn oauthbearer_a_stale_token_is_renewed_and_a_kill_after_rotation_loses_nothing() {
    let oauth = FakeOAuth::start(Duration::from_secs(3600));
    let dovecot = Dovecot::start_oauth2(&oauth.url("/introspect"), "oauthbearer");
    let discord = FakeDiscord::start();
    let hook = discord.webhook("1", "hookTOKEN", Behaviour::Ok);
    let config = config("oauth-bearer", &dovecot, &oauth.device_keys(), &hook);
    device_login(&config.write(), &oauth, Duration::ZERO);
    let mut daemon = config.start_watching();
    send(&dovecot, "first");
    delivered(&discord, "first", 20);
    assert!(
        oauth.calls("refresh_token").is_empty(),
        "a fresh token needs no refresh"
    );

    // The token goes stale while the daemon idles; the server restarts, the daemon reconnects:
    // refused once, renewed, logged in; the mail that came meanwhile is delivered.
    oauth.deactivate_access_tokens();
    dovecot.restart();
    send(&dovecot, "after the restart");
    delivered(&discord, "after the restart", 40);
    let refreshes = oauth.calls("refresh_token");
    assert_eq!(refreshes.len(), 1, "{refreshes:?}");
    assert_eq!(refreshes[0].error, None);
    assert!(
        daemon.log_text().contains("renewing it once"),
        "{}",
        daemon.log_text()
    );

    // SIGKILL at once after the next refresh rotated the refresh token: the new one was on
    // disk before it was used, so the next start renews with it and logs in.
    oauth.deactivate_access_tokens();
    dovecot.restart();
    wait_until(Duration::from_secs(40), "the second refresh", || {
        oauth.calls("refresh_token").len() == 2
    });
    // The kill comes once the answer reached the daemon: the fake counts a refresh when it
    // arrives, and a kill before its answer is a kill before the rotation as the daemon sees it.
    let rotated = oauth
        .issued()
        .into_iter()
        .rev()
        .find(|t| t.starts_with("RT-"))
        .expect("a rotated refresh token");
    let grant = grant_file(&config);
    wait_until(Duration::from_secs(20), "the rotated token on disk", || {
        std::fs::read_to_string(&grant).is_ok_and(|g| g.contains(&rotated))
    });
    daemon.kill9();
    send(&dovecot, "after the kill");
    oauth.deactivate_access_tokens();
    daemon.spawn();
    delivered(&discord, "after the kill", 40);
    let refreshes = oauth.calls("refresh_token");
    assert!(
        refreshes.iter().all(|c| c.error.is_none()),
        "every refresh presented the newest refresh token: {refreshes:?}"
    );
    oauth.assert_no_token_in("the daemon's log", &daemon.log_text());
}

#[test]
fn a_revoked_grant_is_auth_failed_with_the_remedy_and_the_endpoint_is_not_hammered() {
    let oauth = FakeOAuth::start(Duration::from_secs(3600));
    let dovecot = Dovecot::start_oauth2(&oauth.url("/introspect"), "xoauth2 oauthbearer");
    let discord = FakeDiscord::start();
    let hook = discord.webhook("1", "hookTOKEN", Behaviour::Ok);
    let config = config("oauth-revoked", &dovecot, &oauth.device_keys(), &hook)
        .sinks("[notices]\nnotify_after = \"2s\"");
    let path = config.write();

    // Before any sign-in: the remedy is named at once.
    let probe = cli(&path, &["check", "--probe"]);
    let text = String::from_utf8_lossy(&probe.stdout).to_string();
    assert!(!probe.status.success(), "{text}");
    assert!(
        text.contains("FAIL imap home: login refused: no OAuth grant is stored for account home")
            && text.contains("run `mailbeacon login home`"),
        "{text}"
    );

    device_login(&path, &oauth, Duration::ZERO);
    let daemon = config.start_watching();
    oauth.revoke_all();
    dovecot.restart();
    wait_until(Duration::from_secs(40), "auth_failed", || {
        daemon.status()["accounts"][0]["state"] == "auth_failed"
    });
    let status = daemon.status();
    let error = status["accounts"][0]["last_error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        error.contains("refused the stored OAuth grant")
            && error.contains("run `mailbeacon login home`"),
        "{status}"
    );
    assert_eq!(status["indicator"]["pattern"], "dead", "{status}");

    // Refused logins back off for at least a minute: no second refresh within 15 s.
    let after = oauth.calls("refresh_token").len();
    std::thread::sleep(Duration::from_secs(15));
    assert_eq!(
        oauth.calls("refresh_token").len(),
        after,
        "the token endpoint was asked again"
    );
    assert!(after <= 1, "{:?}", oauth.calls("refresh_token"));

    // The user away from home hears of it in the channel, with what to run (after, when
    // Dovecot's restart took longer than notify_after, a notice that it was unreachable).
    let refused = || {
        notices_to(&discord, "hookTOKEN")
            .into_iter()
            .find(|n| title(n) == "IMAP home/INBOX: login refused")
    };
    wait_until(
        Duration::from_secs(20),
        "the refused grant announced",
        || refused().is_some(),
    );
    let notice = &refused().unwrap();
    let said = description(notice);
    assert!(
        said.contains("refused the stored OAuth grant")
            && said.contains("run `mailbeacon login home`")
            && !said.contains("password"),
        "{said}"
    );
    oauth.assert_no_token_in("the notice", &notice.body.to_string());

    let probe = cli(&path, &["check", "--probe"]);
    let text = String::from_utf8_lossy(&probe.stdout).to_string();
    assert!(
        !probe.status.success()
            && text.contains("invalid_grant")
            && text.contains("run `mailbeacon login home`"),
        "{text}"
    );
    for (what, text) in [
        ("check --probe", text),
        ("the daemon's log", daemon.log_text()),
        ("status", status.to_string()),
    ] {
        oauth.assert_no_token_in(what, &text);
    }
}

/// Microsoft answers a login it throttles with `NO … Suggested Backoff Time`: that is no
/// refused token, so the daemon neither renews the token (a rotation for nothing) nor shows
/// `auth_failed`; it waits as asked and logs in.
#[test]
fn a_throttled_oauth_login_waits_and_renews_nothing() {
    use crate::common::scripted_imap::{Quirks, ScriptedImap};
    let oauth = FakeOAuth::start(Duration::from_secs(3600));
    let server = ScriptedImap::start(Quirks {
        xoauth2: true,
        refuse_auth: Some("Request is throttled. Suggested Backoff Time: 3000 milliseconds".into()),
        ..Quirks::default()
    });
    let discord = FakeDiscord::start();
    let hook = discord.webhook("1", "hookTOKEN", Behaviour::Ok);
    let dir = temp_dir("oauth-throttled");
    let grant = dir.join("state/oauth/home.json");
    std::fs::create_dir_all(grant.parent().unwrap()).unwrap();
    let far = chrono::Utc::now().timestamp() + 3600;
    std::fs::write(
        &grant,
        format!(
            r#"{{"version":1,"refresh_token":"RT-0","access_token":"AT-0","expires_at":{far}}}"#
        ),
    )
    .unwrap();
    let config = format!(
        "state_dir = \"{}\"\n[[account]]\nname = \"home\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"alice\"\nauth = \"oauth2\"\n[account.oauth2]\n{}\n[[sink]]\nname = \"alerts\"\nkind = \"webhook\"\nurl = \"{hook}\"\n[[bucket]]\nname = \"unknown\"\nsinks = [\"alerts\"]\n",
        dir.join("state").display(),
        server.port,
        oauth.device_keys()
    );
    let daemon = crate::common::daemon::Daemon::start(&dir, &config);
    let mut states = std::collections::BTreeSet::new();
    wait_until(
        Duration::from_secs(30),
        "logged in after the throttle",
        || {
            let status = daemon.status();
            states.insert(
                status["accounts"][0]["state"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            );
            status["accounts"][0]["state"] == "idle"
        },
    );
    assert!(!states.contains("auth_failed"), "{states:?}");
    assert!(
        oauth.calls("refresh_token").is_empty(),
        "a throttle renews no token"
    );
    let logins = server.commands("(sasl response)");
    assert_eq!(logins.len(), 2, "{logins:?}");
    let waited = logins[1].at - logins[0].at;
    assert!(waited >= Duration::from_millis(2900), "waited {waited:?}");
}
