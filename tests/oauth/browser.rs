//! The browser flow with PKCE, finished by the loopback redirect or by a pasted address.

use super::Login;
use crate::common::config::Config;
use crate::common::daemon::temp_dir;
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use crate::common::fake_oauth::FakeOAuth;
use std::path::Path;
use std::time::Duration;

/// A free loopback port for the browser flow's redirect.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Runs the browser flow: opens the printed address at the fake (which approves at once and
/// answers with the redirect) and hands the redirect back with `finish`.
fn browser_login(path: &Path, finish: impl FnOnce(&mut Login, String)) -> (bool, String) {
    let mut login = Login::start(path);
    let url = login.line("the authorization address", |l| l.contains("/authorize?"));
    login.line("that it waits", |l| {
        l.starts_with("Waiting for the redirect")
    });
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let answer = agent.get(url.trim()).call().expect("open the address");
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a redirect")
        .to_string();
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    finish(&mut login, location);
    login.finish()
}

#[test]
fn browser_login_with_pkce_finishes_by_redirect_or_by_a_pasted_address() {
    let oauth = FakeOAuth::start(Duration::from_secs(3600));
    let dovecot = Dovecot::start_oauth2(&oauth.url("/introspect"), "xoauth2 oauthbearer");
    let discord = FakeDiscord::start();
    let hook = discord.webhook("1", "hookTOKEN", Behaviour::Ok);
    let dir = temp_dir("oauth-browser");
    let secret = dir.join("client.secret");
    std::fs::write(&secret, "CLIENT-SECRET-9\n").expect("secret");
    let keys = format!(
        "client_id = \"{}\"\nclient_secret_file = \"{}\"\nauthorize_url = \"{}\"\ntoken_url = \"{}\"\nscopes = [\"imap\"]\nredirect_port = {}\n",
        crate::common::fake_oauth::CLIENT_ID,
        secret.display(),
        oauth.url("/authorize"),
        oauth.url("/token"),
        free_port()
    );
    let config = Config::new(&dir, &dovecot)
        .without("password")
        .account(&format!("auth = \"oauth2\"\n[account.oauth2]\n{keys}"))
        .webhook(&hook);
    let path = config.write();

    // The address pasted back, as after a browser on another machine failed to load it.
    let (ok, text) = browser_login(&path, |login, location| login.paste(&location));
    assert!(ok && text.contains("ok   imap home: logged in"), "{text}");
    assert!(text.contains("code_challenge_method=S256"), "{text}");

    // The redirect reaching the loopback port (a browser here, or an SSH port forward).
    let (ok, text) = browser_login(&path, |_, location| {
        let body = ureq::get(&location)
            .call()
            .expect("the redirect")
            .into_body()
            .read_to_string()
            .expect("body");
        assert!(body.contains("signed in"), "{body}");
    });
    assert!(ok && text.contains("ok   signed in"), "{text}");

    // A pasted address of another sign-in is refused, and nothing is stored over the grant.
    let (ok, text) = browser_login(&path, |login, location| {
        login.paste(&location.replace("state=", "state=x"))
    });
    assert!(!ok && text.contains("belongs to another sign-in"), "{text}");
    let exchanges = oauth.calls("authorization_code");
    assert_eq!(exchanges.len(), 2, "{exchanges:?}");
    assert!(
        exchanges.iter().all(|c| c.error.is_none()),
        "PKCE verified: {exchanges:?}"
    );
    assert!(!text.contains("CLIENT-SECRET-9"), "{text}");
    oauth.assert_no_token_in("login's output", &text);
}
