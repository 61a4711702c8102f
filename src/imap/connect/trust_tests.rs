//! The trust decisions and refusal sentences of `trust.rs` and `refusal.rs`, on real
//! certificates made by the `openssl` command: the one-liner home servers use (CA:TRUE, no
//! subjectAltName), and a private CA with a server certificate it signed. Dates and
//! fingerprints are read back with `openssl x509`, independently of the DER walk in `cert.rs`.

use super::cert::CertInfo;
use super::refusal::Refusal;
use super::*;
use crate::health::AccountState;
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const DAY: i64 = 86_400;

struct Certs {
    dir: PathBuf,
}

impl Certs {
    /// A one-liner `one.pem` (CN=localhost), and `ca.pem` (CN=Home Test CA, O=Testers)
    /// signing `leaf.pem` (CN=mail.home.test, SAN DNS:mail.home.test, IP:192.168.1.5).
    fn make(tag: &str) -> Certs {
        let dir = std::env::temp_dir().join(format!("mb-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = Certs { dir };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        c.openssl(
            &[
                &["req", "-x509"],
                &ec[..],
                &["-days", "30", "-subj", "/CN=localhost"],
            ]
            .concat(),
            "one",
        );
        c.openssl(
            &[
                &["req", "-x509"],
                &ec[..],
                &["-days", "60", "-subj", "/CN=Home Test CA/O=Testers"],
            ]
            .concat(),
            "ca",
        );
        c.openssl(
            &[&["req"], &ec[..], &["-subj", "/CN=mail.home.test"]].concat(),
            "leaf-req",
        );
        let ext = c.dir.join("leaf.ext");
        std::fs::write(
            &ext,
            "subjectAltName=DNS:mail.home.test,IP:192.168.1.5\nbasicConstraints=CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let p = |f: &str| c.dir.join(f).display().to_string();
        let ext = ext.display().to_string();
        c.run(&[
            "x509",
            "-req",
            "-in",
            &p("leaf-req.pem"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-set_serial",
            "7",
            "-days",
            "20",
            "-extfile",
            &ext,
            "-out",
            &p("leaf.pem"),
        ]);
        c
    }

    /// `openssl ARGS -keyout NAME.key -out NAME.pem`.
    fn openssl(&self, args: &[&str], name: &str) {
        let key = self.dir.join(format!("{name}.key")).display().to_string();
        let out = self.dir.join(format!("{name}.pem")).display().to_string();
        self.run(&[args, &["-keyout", &key, "-out", &out]].concat());
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    fn der(&self, name: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(self.path(name)).unwrap()
    }

    /// `sha256:AB:…` as `openssl x509 -fingerprint -sha256` prints it.
    fn fingerprint(&self, name: &str) -> String {
        let p = self.path(name).display().to_string();
        let line = self.run(&["x509", "-noout", "-fingerprint", "-sha256", "-in", &p]);
        format!("sha256:{}", line.split_once('=').unwrap().1)
    }

    /// notBefore or notAfter (`-startdate` / `-enddate`), in seconds since the epoch.
    fn date(&self, name: &str, which: &str) -> i64 {
        let p = self.path(name).display().to_string();
        let line = self.run(&["x509", "-noout", which, "-in", &p]);
        let text = line.split_once('=').unwrap().1;
        chrono::NaiveDateTime::parse_from_str(text, "%b %e %H:%M:%S %Y GMT")
            .unwrap()
            .and_utc()
            .timestamp()
    }

    /// A verifier trusting the certificates in `ca_files` (as `ca_file`), and maybe a pin.
    fn trust(&self, ca_files: &[&str], pin: Option<&str>) -> Trust {
        let mut roots = rustls::RootCertStore::empty();
        let own: Vec<_> = ca_files.iter().map(|n| self.der(n)).collect();
        for c in &own {
            roots.add(c.clone()).unwrap();
        }
        let pin = pin.map(|p| crate::config::Fingerprint::parse(p).unwrap());
        Trust::new(roots, own, pin, &provider()).unwrap()
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn at(secs: i64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(secs as u64))
}

fn host(name: &str) -> ServerName<'static> {
    ServerName::try_from(name.to_string()).unwrap()
}

fn judge(t: &Trust, der: &CertificateDer<'_>, name: &str, now: i64) -> Result<(), Refusal> {
    t.judge(der, &[], &host(name), &[], at(now))
}

fn day(secs: i64) -> String {
    super::cert::moment(secs)
}

#[test]
fn a_one_liner_given_as_ca_file_is_trusted_for_its_name_within_its_dates() {
    let c = Certs::make("one");
    let (one, trust) = (c.der("one"), c.trust(&["one"], None));
    let (from, until) = (c.date("one", "-startdate"), c.date("one", "-enddate"));
    assert_eq!(judge(&trust, &one, "localhost", from + DAY), Ok(()));

    let wrong = judge(&trust, &one, "192.168.1.5", from + DAY).unwrap_err();
    assert!(
        wrong
            .sentence
            .contains("is for localhost, not for \"192.168.1.5\"")
            && wrong.sentence.contains("set host to"),
        "{wrong}"
    );
    let old = judge(&trust, &one, "localhost", until + DAY).unwrap_err();
    assert!(
        old.sentence.contains(&format!("expired on {}", day(until)))
            && old
                .sentence
                .contains(&format!("clock says {}", day(until + DAY)))
            && !old.clock,
        "{old}"
    );
    let early = judge(&trust, &one, "localhost", from - DAY).unwrap_err();
    assert!(
        early.clock
            && early
                .sentence
                .contains(&format!("valid only from {}", day(from))),
        "{early}"
    );
}

#[test]
fn a_one_liner_not_trusted_is_named_a_ca_certificate_with_the_remedy() {
    let c = Certs::make("ca-leaf");
    let now = c.date("one", "-startdate") + DAY;
    let refused = judge(&c.trust(&["ca"], None), &c.der("one"), "localhost", now).unwrap_err();
    let s = &refused.sentence;
    assert!(
        s.starts_with("the server's certificate (CN=localhost) is a CA certificate"),
        "{s}"
    );
    assert!(s.contains("give that certificate itself as ca_file"), "{s}");
    assert!(
        s.contains(&format!("tls_fingerprint = \"{}\"", c.fingerprint("one"))),
        "{s}"
    );
    let imap = from_tls(&refused.clone().into_rustls());
    assert_eq!(imap.state(), AccountState::TlsFailed);
    assert_eq!(imap.to_string(), format!("TLS: {s}"));
}

#[test]
fn an_unknown_issuer_is_named_with_the_remedy() {
    let c = Certs::make("issuer");
    let now = c.date("leaf", "-startdate") + DAY;
    let refused = judge(
        &c.trust(&["one"], None),
        &c.der("leaf"),
        "mail.home.test",
        now,
    )
    .unwrap_err()
    .sentence;
    assert!(
        refused.contains("(CN=mail.home.test) is issued by CN=Home Test CA, O=Testers, which this device does not trust")
            && refused.contains("as ca_file")
            && refused.contains(&c.fingerprint("leaf")),
        "{refused}"
    );
    // Given its CA, the same certificate is trusted.
    assert_eq!(
        judge(
            &c.trust(&["ca"], None),
            &c.der("leaf"),
            "mail.home.test",
            now
        ),
        Ok(())
    );
    assert_eq!(
        judge(&c.trust(&["ca"], None), &c.der("leaf"), "192.168.1.5", now),
        Ok(())
    );
}

#[test]
fn a_certificate_from_a_trusted_ca_names_its_names_and_dates() {
    let c = Certs::make("ca-names");
    let (trust, leaf) = (c.trust(&["ca"], None), c.der("leaf"));
    let (from, until) = (c.date("leaf", "-startdate"), c.date("leaf", "-enddate"));
    let wrong = judge(&trust, &leaf, "nas.home.test", from + DAY)
        .unwrap_err()
        .sentence;
    assert!(
        wrong.contains("is for mail.home.test, 192.168.1.5, not for \"nas.home.test\""),
        "{wrong}"
    );
    let old = judge(&trust, &leaf, "mail.home.test", until + DAY).unwrap_err();
    assert!(
        old.sentence.contains(&format!("expired on {}", day(until))) && !old.clock,
        "{old}"
    );
    let early = judge(&trust, &leaf, "mail.home.test", from - DAY).unwrap_err();
    assert!(
        early.clock && early.sentence.contains(&day(from)),
        "{early}"
    );
    let imap = from_tls(&early.into_rustls());
    assert!(matches!(imap, ImapError::Clock(_)), "{imap}");
    assert_eq!(imap.state(), AccountState::Backoff);
}

#[test]
fn a_pin_accepts_exactly_its_certificate_whatever_the_issuer_and_name() {
    let c = Certs::make("pin");
    let now = c.date("leaf", "-startdate") + DAY;
    let pinned = c.trust(&["one"], Some(&c.fingerprint("leaf")));
    assert_eq!(judge(&pinned, &c.der("leaf"), "10.0.0.9", now), Ok(()));
    // A certificate its CA vouches for is still refused when it is not the pinned one.
    let other = c.trust(&["ca"], Some(&c.fingerprint("one")));
    let refused = judge(&other, &c.der("leaf"), "mail.home.test", now)
        .unwrap_err()
        .sentence;
    assert!(
        refused.contains(&format!(
            "has fingerprint {}, not the pinned {}",
            c.fingerprint("leaf"),
            c.fingerprint("one")
        )),
        "{refused}"
    );
    let late = c.date("leaf", "-enddate") + DAY;
    let old = judge(&pinned, &c.der("leaf"), "mail.home.test", late).unwrap_err();
    assert!(old.sentence.contains("expired on"), "{old}");
}

#[test]
fn the_certificate_is_described_as_openssl_reads_it() {
    let c = Certs::make("describe");
    let leaf = CertInfo::parse(&c.der("leaf")).unwrap();
    assert_eq!(leaf.subject, "CN=mail.home.test");
    assert_eq!(leaf.issuer, "CN=Home Test CA, O=Testers");
    assert_eq!(leaf.names, ["mail.home.test", "192.168.1.5"]);
    assert!(!leaf.self_issued);
    assert_eq!(leaf.not_before, c.date("leaf", "-startdate"));
    assert_eq!(leaf.not_after, c.date("leaf", "-enddate"));
    assert_eq!(leaf.fingerprint.to_string(), c.fingerprint("leaf"));
    let one = CertInfo::parse(&c.der("one")).unwrap();
    assert!(one.self_issued && one.names.is_empty(), "{one:?}");
    assert_eq!(one.host_names(), ["localhost"]);
    assert!(
        one.summary()
            .starts_with("CN=localhost, self-signed, valid "),
        "{}",
        one.summary()
    );
    assert_eq!(CertInfo::parse(b"\x30\x03\x02\x01"), None);
}

#[test]
fn a_certificate_with_many_names_is_described_with_a_few() {
    let c = Certs::make("many");
    let names: Vec<String> = (1..=20).map(|i| format!("DNS:h{i}.home.test")).collect();
    let ext = format!("subjectAltName={}", names.join(","));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let args = [
        &["req", "-x509"],
        &ec[..],
        &["-subj", "/CN=many", "-addext", &ext],
    ]
    .concat();
    c.openssl(&args, "many");
    let now = c.date("many", "-startdate") + DAY;
    let refused = judge(
        &c.trust(&["many"], None),
        &c.der("many"),
        "other.home.test",
        now,
    )
    .unwrap_err()
    .sentence;
    assert!(
        refused.contains("is for h1.home.test, h2.home.test,")
            && refused.contains("h8.home.test, and 12 more, not for \"other.home.test\""),
        "{refused}"
    );
}
