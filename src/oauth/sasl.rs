//! The two SASL mechanisms that carry an OAuth 2.0 bearer token to IMAP: Google's and
//! Microsoft's `XOAUTH2`, and RFC 7628's `OAUTHBEARER`. Each sends one initial response with the
//! token; when the server refuses it, it sends an error challenge (base64 JSON) and waits for
//! the client to end the exchange (`""` for XOAUTH2, `%x01` for OAUTHBEARER, RFC 7628 3.2.3),
//! after which the command fails with NO.

use crate::config::Mechanism;
use std::cell::RefCell;

/// One `AUTHENTICATE` exchange (the imap crate base64-encodes what `process` returns).
pub(crate) struct Exchange<'a> {
    mechanism: Mechanism,
    user: &'a str,
    token: &'a str,
    host: &'a str,
    port: u16,
    /// The server's error challenge, kept for the message: it names no secret.
    refusal: RefCell<Option<String>>,
    sent: RefCell<bool>,
}

impl<'a> Exchange<'a> {
    pub(crate) fn new(
        mechanism: Mechanism,
        user: &'a str,
        token: &'a str,
        host: &'a str,
        port: u16,
    ) -> Self {
        Exchange {
            mechanism,
            user,
            token,
            host,
            port,
            refusal: RefCell::new(None),
            sent: RefCell::new(false),
        }
    }

    /// The first response: the token and who it is for.
    pub(crate) fn initial(&self) -> Vec<u8> {
        match self.mechanism {
            Mechanism::XOAuth2 => {
                format!("user={}\x01auth=Bearer {}\x01\x01", self.user, self.token).into_bytes()
            }
            // RFC 7628 3.1: gs2-header with the authzid, then key=value pairs split by %x01.
            Mechanism::OAuthBearer => format!(
                "n,a={},\x01host={}\x01port={}\x01auth=Bearer {}\x01\x01",
                saslname(self.user),
                self.host,
                self.port,
                self.token
            )
            .into_bytes(),
        }
    }

    /// What the server said when it refused the token (its JSON, or its text), if it did.
    pub(crate) fn refusal(&self) -> Option<String> {
        self.refusal.borrow().clone()
    }
}

impl imap::Authenticator for Exchange<'_> {
    type Response = Vec<u8>;

    fn process(&self, challenge: &[u8]) -> Vec<u8> {
        if !*self.sent.borrow() {
            *self.sent.borrow_mut() = true;
            return self.initial();
        }
        let text = String::from_utf8_lossy(challenge);
        *self.refusal.borrow_mut() = Some(crate::text::collapse_whitespace(&text, 200));
        match self.mechanism {
            Mechanism::XOAuth2 => Vec::new(),
            Mechanism::OAuthBearer => vec![0x01],
        }
    }
}

/// RFC 5801's saslname: `,` and `=` escaped.
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// The mechanism to use: the one the config forces, else OAUTHBEARER (the standard) when
/// offered, else XOAUTH2 (all Microsoft offers). `None` when the server offers neither.
pub(crate) fn choose(
    forced: Option<Mechanism>,
    offered: impl Fn(&str) -> bool,
) -> Option<Mechanism> {
    match forced {
        Some(m) => offered(m.name()).then_some(m),
        None if offered("OAUTHBEARER") => Some(Mechanism::OAuthBearer),
        None if offered("XOAUTH2") => Some(Mechanism::XOAuth2),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap::Authenticator;

    #[test]
    fn xoauth2_sends_user_and_bearer_then_ends_on_refusal() {
        let x = Exchange::new(
            Mechanism::XOAuth2,
            "me@example.com",
            "tok",
            "imap.example",
            993,
        );
        assert_eq!(
            x.process(b""),
            b"user=me@example.com\x01auth=Bearer tok\x01\x01".to_vec()
        );
        assert!(x.refusal().is_none());
        let reply = x.process(br#"{"status":"401","schemes":"bearer"}"#);
        assert!(reply.is_empty());
        assert_eq!(
            x.refusal().as_deref(),
            Some(r#"{"status":"401","schemes":"bearer"}"#)
        );
    }

    #[test]
    fn oauthbearer_follows_rfc_7628() {
        let x = Exchange::new(Mechanism::OAuthBearer, "a,b=c", "tok", "imap.example", 993);
        assert_eq!(
            x.process(b""),
            b"n,a=a=2Cb=3Dc,\x01host=imap.example\x01port=993\x01auth=Bearer tok\x01\x01".to_vec()
        );
        assert_eq!(x.process(br#"{"status":"invalid_token"}"#), vec![0x01]);
    }

    #[test]
    fn the_mechanism_comes_from_what_the_server_offers() {
        let both = |m: &str| m == "XOAUTH2" || m == "OAUTHBEARER";
        let ms = |m: &str| m == "XOAUTH2";
        assert_eq!(choose(None, both), Some(Mechanism::OAuthBearer));
        assert_eq!(choose(None, ms), Some(Mechanism::XOAuth2));
        assert_eq!(
            choose(Some(Mechanism::XOAuth2), both),
            Some(Mechanism::XOAuth2)
        );
        assert_eq!(choose(Some(Mechanism::OAuthBearer), ms), None);
        assert_eq!(choose(None, |_| false), None);
    }
}
