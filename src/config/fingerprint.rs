//! `tls_fingerprint = "sha256:…"`: the SHA-256 of the one server certificate an account trusts,
//! whatever its issuer. Written as OpenSSL prints it (`openssl x509 -fingerprint -sha256`:
//! upper-case hex, colons) or as plain hex; case and colons are ignored when reading it. The
//! `sha256:` prefix is required so that a SHA-1 fingerprint pasted by mistake is named as such
//! instead of being refused as "wrong length".

use std::fmt;

/// A SHA-256 certificate fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub(crate) fn of(der: &[u8]) -> Fingerprint {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Fingerprint(out)
    }

    /// Reads `sha256:` followed by 64 hex digits, colons (or spaces) anywhere between them.
    pub(crate) fn parse(text: &str) -> Result<Fingerprint, String> {
        let text = text.trim();
        let Some((algo, hex)) = text.split_once(':') else {
            return Err("write it as \"sha256:\" followed by the 64 hex digits of the certificate's SHA-256 (`check --probe` prints it)".into());
        };
        if !algo.eq_ignore_ascii_case("sha256") {
            return Err(format!(
                "only sha256 fingerprints are accepted, not {algo:?} (`check --probe` prints the sha256 one)"
            ));
        }
        let digits: Vec<u8> = hex
            .bytes()
            .filter(|b| *b != b':' && !b.is_ascii_whitespace())
            .collect();
        if let Some(bad) = digits.iter().find(|b| !b.is_ascii_hexdigit()) {
            return Err(format!("{:?} is not a hex digit", char::from(*bad)));
        }
        if digits.len() != 64 {
            return Err(format!(
                "a sha256 fingerprint has 64 hex digits, this one has {}",
                digits.len()
            ));
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks(2)) {
            let text = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
            *byte = u8::from_str_radix(text, 16).map_err(|e| e.to_string())?;
        }
        Ok(Fingerprint(out))
    }
}

/// `sha256:AB:CD:…` — the form `openssl x509 -fingerprint -sha256` prints, and that
/// [`Fingerprint::parse`] reads back.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "71F0B9494442D8F5D81A02B5C3DB5EBE27358961EE71FA02B69F95A852E25FC4";

    #[test]
    fn colons_and_case_do_not_matter_and_display_reads_back() {
        let plain = Fingerprint::parse(&format!("sha256:{HEX}")).unwrap();
        let lower = Fingerprint::parse(&format!("SHA256:{}", HEX.to_lowercase())).unwrap();
        let colons = Fingerprint::parse(&plain.to_string()).unwrap();
        assert_eq!(plain, lower);
        assert_eq!(plain, colons);
        assert!(plain.to_string().starts_with("sha256:71:F0:B9:"), "{plain}");
        assert_eq!(plain.0[0], 0x71);
        assert_eq!(plain.0[31], 0xC4);
    }

    #[test]
    fn a_wrong_fingerprint_is_refused_with_the_reason() {
        let no_prefix = Fingerprint::parse(HEX).unwrap_err();
        assert!(no_prefix.contains("sha256:"), "{no_prefix}");
        let sha1 = Fingerprint::parse("sha1:AA:BB").unwrap_err();
        assert!(sha1.contains("only sha256"), "{sha1}");
        let short = Fingerprint::parse(&format!("sha256:{}", &HEX[..62])).unwrap_err();
        assert!(short.contains("this one has 62"), "{short}");
        let bad = Fingerprint::parse(&format!("sha256:{}x", &HEX[..63])).unwrap_err();
        assert!(bad.contains("'x' is not a hex digit"), "{bad}");
    }

    #[test]
    fn the_fingerprint_of_a_certificate_is_its_sha256() {
        // SHA-256 of the empty input (FIPS 180-2 test vector), as a stand-in DER.
        assert_eq!(
            Fingerprint::of(b"").to_string().replace(':', ""),
            "sha256E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
        );
    }
}
