use super::*;
use std::io::Write;

pub(super) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .unwrap();
    p
}

pub(super) fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mb-config-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub(super) const GOOD: &str = r#"
state_dir = "/tmp/x"
[[account]]
name = "home"
host = "imap.example.net"
username = "me"
password_file = "PASS"
[[sink]]
name = "alerts"
kind = "webhook"
url = "https://discord.com/api/webhooks/1/tok"
[[bucket]]
name = "stripe"
severity = "P2"
sinks = ["alerts"]
rules = [{ from = '@stripe\.com>?$' }, { subject = '(?i)payment' }]
[[bucket]]
name = "unknown"
sinks = ["alerts"]
"#;

pub(super) fn load(tag: &str, text: &str) -> Result<Config, ConfigError> {
    let dir = tempdir(tag);
    let pass = write(&dir, "pass", "pw-from-file\n");
    let text = text.replace("PASS", &pass.display().to_string());
    Config::load(&write(&dir, "c.toml", &text))
}

#[test]
fn loads_the_design_example_shape() {
    let c = load("good", GOOD).unwrap();
    assert_eq!(c.accounts[0].password.expose(), "pw-from-file");
    assert_eq!(c.accounts[0].port, 993);
    assert_eq!(c.accounts[0].folders, vec!["INBOX"]);
    assert_eq!(c.accounts[0].poll_interval, Duration::from_secs(900));
    assert_eq!(c.triage().fallback(), "unknown");
    let SinkTarget::Webhook(w) = &c.sinks[0].target else {
        panic!()
    };
    assert_eq!(w.expose(), "https://discord.com/api/v10/webhooks/1/tok");
}

#[test]
fn errors_name_file_key_and_reason() {
    let e = load(
        "typo",
        &GOOD.replace("severity = \"P2\"", "severty = \"P2\""),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("c.toml") && e.to_string().contains("severty"),
        "{e}"
    );
    let e = load("regex", &GOOD.replace("(?i)payment", "(unclosed")).unwrap_err();
    assert!(
        e.key.contains("rules[1].subject") && e.reason.contains("regex"),
        "{e}"
    );
    let e = load(
        "sink",
        &GOOD.replace("sinks = [\"alerts\"]\nrules", "sinks = [\"nope\"]\nrules"),
    )
    .unwrap_err();
    assert!(e.key.contains("sinks") && e.reason.contains("nope"), "{e}");
    let e = load(
        "fallback",
        &GOOD.replace(
            "name = \"unknown\"",
            "name = \"unknown\"\nrules = [{ subject = 'x' }]",
        ),
    )
    .unwrap_err();
    assert!(e.reason.contains("exactly one bucket"), "{e}");
    let e = load(
        "plain",
        &GOOD.replace("username", "tls = \"none\"\nusername"),
    )
    .unwrap_err();
    assert!(e.reason.contains("loopback"), "{e}");
    for bad in ["0", "5000"] {
        let e = load("cache", &format!("spool_cache_mb = {bad}\n{GOOD}")).unwrap_err();
        assert!(
            e.key == "spool_cache_mb" && e.reason.contains("1 to 4096"),
            "{bad}: {e}"
        );
    }
    let c = load("cache-ok", &format!("spool_cache_mb = 1\n{GOOD}")).unwrap();
    assert_eq!(c.spool_cache_bytes, 1 << 20);
}

#[test]
fn secrets_never_reach_errors() {
    let e = load(
        "http",
        &GOOD.replace(
            "https://discord.com/api/webhooks/1/tok",
            "http://evil.example/api/webhooks/1/SECRETTOKEN",
        ),
    )
    .unwrap_err();
    assert!(!e.to_string().contains("SECRETTOKEN"), "{e}");
    let e = load(
        "twice",
        &GOOD.replace("password_file", "password = \"SECRETPW\"\npassword_file"),
    )
    .unwrap_err();
    assert!(
        !e.to_string().contains("SECRETPW") && e.reason.contains("only one"),
        "{e}"
    );
    let c = load("dbg", GOOD).unwrap();
    assert!(!format!("{c:?}").contains("pw-from-file") && !format!("{c:?}").contains("/tok"));
}

#[test]
fn rules_that_can_never_match_are_warnings_not_errors() {
    let c = load("clean", GOOD).unwrap();
    assert_eq!(c.warnings(), []);
    let c = load(
        "never",
        &GOOD.replace(
            "name = \"unknown\"",
            "name = \"receipts\"\nsinks = [\"alerts\"]\nrules = [{ from = '@stripe\\.com>?$', subject = 'receipt' }, { snippet = '[^\\s\\S]' }]\n[[bucket]]\nname = \"unknown\"",
        ),
    )
    .unwrap();
    let lines: Vec<String> = c.warnings().iter().map(|w| w.to_string()).collect();
    assert_eq!(
        lines,
        [
            "bucket[1] (receipts).rules[0]: can never match: bucket[0] (stripe).rules[0] matches every mail this rule matches, and buckets are tried in file order",
            "bucket[1] (receipts).rules[1].snippet: can never match: the pattern matches no text at all",
            "bucket[1] (receipts): no mail can reach this bucket: none of its rules can ever match",
        ]
    );
}

#[test]
fn sinks_take_a_thread_and_the_guard_a_limit() {
    let c = load(
        "thread",
        &GOOD.replace("url = ", "thread_id = \"77\"\nurl = "),
    )
    .unwrap();
    assert_eq!(c.sinks[0].thread_id.as_deref(), Some("77"));
    assert_eq!(c.discord.invalid_request_limit, 100);
    let e = load(
        "thread-bad",
        &GOOD.replace("url = ", "thread_id = \"x7\"\nurl = "),
    )
    .unwrap_err();
    assert!(e.key.ends_with("thread_id"), "{e}");
    let c = load(
        "limit",
        &format!("[discord]\ninvalid_request_limit = 20\n{GOOD}")
            .replace("state_dir = \"/tmp/x\"", ""),
    )
    .unwrap();
    assert_eq!(c.discord.invalid_request_limit, 20);
    let e = load(
        "limit-bad",
        &GOOD.replace(
            "[[account]]",
            "[discord]\ninvalid_request_limit = 20000\n[[account]]",
        ),
    )
    .unwrap_err();
    assert!(e.key == "discord.invalid_request_limit", "{e}");
}

#[test]
fn fallback_escalation_and_audit_are_checked() {
    let with_severity = |severity: &str, bucket_extra: &str| {
        let text = GOOD
            .replace(
                "[[bucket]]\nname = \"stripe\"",
                "[[sink]]\nname = \"pager\"\nkind = \"webhook\"\nurl = \"https://discord.com/api/webhooks/2/t\"\n[[bucket]]\nname = \"stripe\"",
            )
            .replace(
                "severity = \"P2\"",
                &format!("severity = \"{severity}\"\n{bucket_extra}"),
            );
        load("route", &text)
    };
    let with = |extra: &str| with_severity("P1", extra);
    let ok = with("fallback = \"pager\"\nescalate_after = \"10m\"\naudit = \"alerts2\"");
    assert!(ok.unwrap_err().to_string().ends_with(
        "bucket[0] (stripe).audit: no [[sink]] is named \"alerts2\" (sinks: alerts, pager)"
    ));
    let c = with("fallback = \"pager\"\nescalate_after = \"10m\"").unwrap();
    assert_eq!(c.buckets[0].fallback.as_deref(), Some("pager"));
    assert_eq!(c.buckets[0].escalate_after, Some(Duration::from_secs(600)));
    let err = |extra: &str| with(extra).unwrap_err().to_string();
    assert!(err("fallback = \"nope\"").contains("fallback: no [[sink]] is named \"nope\""));
    assert!(err("fallback = \"alerts\"").contains("already one of this bucket's sinks"));
    assert!(err("escalate_after = \"5m\"").contains("escalate_after: needs a fallback sink"));
    assert!(err("fallback = \"pager\"\naudit = \"pager\"").contains("must not be the fallback"));
    assert!(
        with_severity("P2", "fallback = \"pager\"\nescalate_after = \"1m\"")
            .unwrap_err()
            .to_string()
            .contains("escalation is for severity P0 and P1 only")
    );
}

#[test]
fn a_pinned_fingerprint_is_read_in_any_spelling_and_refused_when_malformed() {
    let hex = "71f0b9494442d8f5d81a02b5c3db5ebe27358961ee71fa02b69f95a852e25fc4";
    let pin = |value: &str| {
        GOOD.replace(
            "username",
            &format!("tls_fingerprint = \"{value}\"\nusername"),
        )
    };
    let c = load("pin", &pin(&format!("sha256:{hex}"))).unwrap();
    let seen = c.accounts[0].tls_fingerprint.expect("the pin");
    assert!(seen.to_string().starts_with("sha256:71:F0:B9:49"), "{seen}");
    let e = load("pin-short", &pin("sha256:71:F0")).unwrap_err();
    assert!(
        e.key == "account[0] (home).tls_fingerprint" && e.reason.contains("64 hex digits"),
        "{e}"
    );
    let both = pin(&format!("sha256:{hex}")).replace("username", "ca_file = \"PASS\"\nusername");
    let e = load("pin-ca", &both).unwrap_err();
    assert!(e.reason.contains("keep one of them"), "{e}");
}
