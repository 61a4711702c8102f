//! What a user needs to know about a server's certificate to act on a TLS failure: who it is
//! for (subject, subjectAltName), who issued it, when it is valid, and its SHA-256 fingerprint.
//!
//! A small DER walk over the X.509 structure (RFC 5280 4.1) rather than a parser crate: only
//! these few fields are read, and only to *describe* a certificate — trust decisions stay with
//! webpki (through rustls) and the fingerprint. Anything malformed yields `None` or a missing
//! field, never a panic. Text from the certificate is attacker-controlled and ends up in logs
//! and `status`: control characters are dropped and each value is capped.

use crate::config::Fingerprint;
use std::net::IpAddr;

/// The certificate's fields a message names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertInfo {
    /// `CN=…, O=…` (or `(no name)`).
    pub(crate) subject: String,
    pub(crate) issuer: String,
    /// Issuer and subject are the same name: self-signed, as home servers make them.
    pub(crate) self_issued: bool,
    /// The subject's commonName: what OpenSSL clients match when there is no subjectAltName.
    pub(crate) common_name: Option<String>,
    /// subjectAltName DNS names and IP addresses.
    pub(crate) names: Vec<String>,
    /// Seconds since the Unix epoch.
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) fingerprint: Fingerprint,
}

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// tbsCertificate's `[0] EXPLICIT version` and `[3] EXPLICIT extensions`.
const VERSION: u8 = 0xA0;
const EXTENSIONS: u8 = 0xA3;
/// GeneralName's `[2] dNSName` and `[7] iPAddress` (implicit, primitive).
const DNS_NAME: u8 = 0x82;
const IP_ADDRESS: u8 = 0x87;
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1D, 0x11];
const NAME_ATTRIBUTES: &[(&[u8], &str)] = &[
    (&[0x55, 0x04, 0x03], "CN"),
    (&[0x55, 0x04, 0x0B], "OU"),
    (&[0x55, 0x04, 0x0A], "O"),
];
/// Longest value shown from a certificate (a name, an organisation), and most names shown.
const MAX_VALUE: usize = 64;
const MAX_NAMES: usize = 8;

/// A cursor over DER: one tag-length-value at a time.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.0.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7F);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let (bytes, after) = rest.split_at(n);
            rest = after;
            bytes.iter().fold(0usize, |l, b| l << 8 | usize::from(*b))
        };
        if rest.len() < len {
            return None;
        }
        let (value, after) = rest.split_at(len);
        self.0 = after;
        Some((tag, value))
    }

    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        self.next().filter(|(t, _)| *t == tag).map(|(_, v)| v)
    }
}

impl CertInfo {
    /// Reads a DER certificate; `None` when it is not one.
    pub(crate) fn parse(der: &[u8]) -> Option<CertInfo> {
        let cert = Der(der).expect(SEQUENCE)?;
        let mut tbs = Der(Der(cert).expect(SEQUENCE)?);
        if tbs.0.first() == Some(&VERSION) {
            tbs.next()?;
        }
        tbs.next()?; // the serial number
        tbs.expect(SEQUENCE)?; // signature algorithm
        let issuer = tbs.expect(SEQUENCE)?;
        let mut validity = Der(tbs.expect(SEQUENCE)?);
        let not_before = time(validity.next()?)?;
        let not_after = time(validity.next()?)?;
        let subject = tbs.expect(SEQUENCE)?;
        tbs.expect(SEQUENCE)?; // subjectPublicKeyInfo
        let mut names = Vec::new();
        while let Some((tag, value)) = tbs.next() {
            if tag == EXTENSIONS {
                names = alt_names(value);
            }
        }
        Some(CertInfo {
            subject: render_name(subject),
            issuer: render_name(issuer),
            self_issued: issuer == subject,
            common_name: attribute(subject, NAME_ATTRIBUTES[0].0),
            names,
            not_before,
            not_after,
            fingerprint: Fingerprint::of(der),
        })
    }

    /// `CN=host, self-signed, valid 2026-12-04 until 2036-12-02` — for `check --probe`.
    pub(crate) fn summary(&self) -> String {
        let issuer = if self.self_issued {
            "self-signed".to_string()
        } else {
            format!("issued by {}", self.issuer)
        };
        let names = if self.names.is_empty() {
            String::new()
        } else {
            format!(", for {}", self.names.join(", "))
        };
        format!(
            "{}{names}, {issuer}, valid {} until {}",
            self.subject,
            day(self.not_before),
            day(self.not_after)
        )
    }

    /// The names a client may match: the subjectAltNames, else the commonName.
    pub(crate) fn host_names(&self) -> Vec<String> {
        if self.names.is_empty() {
            self.common_name.iter().cloned().collect()
        } else {
            self.names.clone()
        }
    }
}

/// `2026-12-04 14:03 UTC`.
pub(crate) fn moment(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map_or_else(
        || format!("{secs} s"),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

fn day(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map_or_else(|| format!("{secs} s"), |t| t.format("%Y-%m-%d").to_string())
}

/// UTCTime `YYMMDDHHMMSSZ` (years 1950–2049, RFC 5280 4.1.2.5.1) or GeneralizedTime
/// `YYYYMMDDHHMMSSZ`, as seconds since the Unix epoch.
fn time((tag, value): (u8, &[u8])) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?.strip_suffix('Z')?;
    let (year, rest) = match (tag, text.len()) {
        (UTC_TIME, 12) => {
            let yy: i32 = text.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        (GENERALIZED_TIME, 14) => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| rest.get(i..i + 2)?.parse::<u32>().ok();
    chrono::NaiveDate::from_ymd_opt(year, field(0)?, field(2)?)?
        .and_hms_opt(field(4)?, field(6)?, field(8)?)
        .map(|t| t.and_utc().timestamp())
}

/// The `(OID, value)` pairs of a Name: SEQUENCE OF SET OF SEQUENCE { OID, string }.
fn attributes(name: &[u8]) -> Vec<(&[u8], String)> {
    let mut out = Vec::new();
    let mut rdns = Der(name);
    while let Some((_, set)) = rdns.next() {
        let mut atvs = Der(set);
        while let Some(atv) = atvs.expect(SEQUENCE) {
            let mut atv = Der(atv);
            if let (Some(oid), Some((_, value))) = (atv.expect(OID), atv.next()) {
                out.push((oid, clean(&String::from_utf8_lossy(value))));
            }
        }
    }
    out
}

fn attribute(name: &[u8], oid: &[u8]) -> Option<String> {
    attributes(name)
        .into_iter()
        .find(|(o, _)| *o == oid)
        .map(|(_, v)| v)
}

/// `CN=…, OU=…, O=…`, the attributes a person recognises; `(no name)` when it has none.
fn render_name(name: &[u8]) -> String {
    let attrs = attributes(name);
    let parts: Vec<String> = NAME_ATTRIBUTES
        .iter()
        .flat_map(|(oid, label)| {
            attrs
                .iter()
                .filter(move |(o, _)| o == oid)
                .map(move |(_, v)| format!("{label}={v}"))
        })
        .take(MAX_NAMES)
        .collect();
    if parts.is_empty() {
        "(no name)".into()
    } else {
        parts.join(", ")
    }
}

/// The subjectAltName DNS names and IP addresses among the extensions.
fn alt_names(extensions: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let Some(list) = Der(extensions).expect(SEQUENCE) else {
        return out;
    };
    let mut list = Der(list);
    while let Some(ext) = list.expect(SEQUENCE) {
        let mut ext = Der(ext);
        if ext.expect(OID) != Some(OID_SUBJECT_ALT_NAME) {
            continue;
        }
        // `critical BOOLEAN DEFAULT FALSE` may come before the value.
        let value = std::iter::from_fn(|| ext.next()).find(|(t, _)| *t == OCTET_STRING);
        let Some(names) = value.and_then(|(_, v)| Der(v).expect(SEQUENCE)) else {
            continue;
        };
        let mut names = Der(names);
        while let Some((tag, v)) = names.next() {
            match (tag, v.len()) {
                (DNS_NAME, _) => out.push(clean(&String::from_utf8_lossy(v))),
                (IP_ADDRESS, _) => out.extend(ip(v).map(|a| a.to_string())),
                _ => {}
            }
        }
    }
    // Only shown (and tested for emptiness): a certificate with hundreds of names must not
    // make a message of hundreds of names.
    if out.len() > MAX_NAMES {
        let more = out.len() - MAX_NAMES;
        out.truncate(MAX_NAMES);
        out.push(format!("and {more} more"));
    }
    out
}

fn ip(octets: &[u8]) -> Option<IpAddr> {
    match octets.len() {
        4 => <[u8; 4]>::try_from(octets).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(octets).ok().map(IpAddr::from),
        _ => None,
    }
}

/// Certificate text is shown to the user: no control characters, no unbounded length.
fn clean(text: &str) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).collect();
    if out.chars().count() > MAX_VALUE {
        out = out.chars().take(MAX_VALUE).collect::<String>() + "…";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_a_certificate_loses_control_characters_and_is_capped() {
        assert_eq!(clean("mail\n\u{1b}[31mhost"), "mail[31mhost");
        let long = clean(&"x".repeat(300));
        assert_eq!(long.chars().count(), MAX_VALUE + 1);
        assert!(long.ends_with('…'));
    }
}
