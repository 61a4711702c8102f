//! A `[[bucket]]`: where matching mail goes, validated — severity, delivery mode, sinks, mention,
//! and its rules, each pattern compiled once under a size limit.

use super::raw::{RawBucket, RawRule};
use super::{AfterDelivery, ConfigError, Loader, SinkConfig};
use crate::triage::{Field, Rule};
use regex::{Regex, RegexBuilder};
use std::time::Duration;

/// P0 is the most urgent: its mail is delivered before P1's, and so on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Severity {
    P0,
    P1,
    P2,
    P3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Push,
    Digest,
    Hold,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mention {
    Role(String),
    Everyone,
}

#[derive(Debug, Clone)]
pub struct Bucket {
    pub(crate) name: String,
    pub(crate) severity: Severity,
    pub(crate) mode: Mode,
    pub(crate) sinks: Vec<String>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) mention: Option<Mention>,
    pub(crate) digest_every: Option<Duration>,
    /// Also delivers to this sink when every sink of the bucket is dead, or (P0/P1) when a
    /// mail waited longer than `escalate_after`.
    pub(crate) fallback: Option<String>,
    pub(crate) escalate_after: Option<Duration>,
    /// Receives a one-line mirror of every delivery of the bucket's mail.
    pub(crate) audit: Option<String>,
    /// Local minutes `(start, end)` during which its messages arrive without a push
    /// notification (src/config/notices.rs); `None` for P0/P1 or `quiet = false`.
    pub(crate) quiet: Option<(u32, u32)>,
    /// Forum sinks: the tags a new post of this bucket gets (at most 5, Discord's limit).
    pub(crate) applied_tags: Vec<String>,
    /// Forum sinks: post this bucket's mail into this existing thread instead of new posts.
    pub(crate) thread_id: Option<String>,
    /// `attachments = "upload"`: each mail's attachments, up to this many bytes in all, are
    /// fetched at delivery and sent with its message. `None`: only listed.
    pub(crate) upload_max: Option<u64>,
    /// What is done to the mail on the server once Discord acknowledged it; `None`: nothing.
    pub(crate) after_delivery: Option<AfterDelivery>,
}

/// Discord's upload limit for a webhook message: larger is refused (413, code 40005).
const DISCORD_UPLOAD_LIMIT: u64 = 10 * 1024 * 1024;

/// `"8MiB"`, `"500KiB"`, `"1024"`: a size in bytes.
fn bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => (&t[..at], t[at..].trim()),
        None => (t, ""),
    };
    let n: u64 = number.parse().ok()?;
    let unit = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1024,
        "mib" | "m" => 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(unit)
}

impl Loader<'_> {
    pub(super) fn bucket(
        &self,
        i: usize,
        b: RawBucket,
        sinks: &[SinkConfig],
    ) -> Result<Bucket, ConfigError> {
        let key = |k: &str| format!("bucket[{i}] ({}).{k}", b.name);
        if b.name.trim().is_empty() || b.name.contains('\0') {
            return Err(self.err(format!("bucket[{i}].name"), "must not be empty"));
        }
        let severity = self.severity(&key, b.severity.as_deref())?;
        let mode = self.mode(&key, b.mode.as_deref())?;
        self.bucket_sinks(&key, &b.sinks, mode, sinks)?;
        let mention = self.mention(&key, b.mention.as_deref(), severity)?;
        let route = self.route(&key, &b, severity, mode, sinks)?;
        let (applied_tags, thread_id) = self.forum_keys(&key, &b, sinks)?;
        let upload_max = self.uploads(&key, &b)?;
        let after_delivery = self.after_delivery(&key, &b, mode)?;
        let rules = b
            .rules
            .into_iter()
            .enumerate()
            .map(|(r, rule)| self.rule(&key(&format!("rules[{r}]")), rule))
            .collect::<Result<Vec<_>, _>>()?;
        let digest_every = match mode {
            Mode::Digest => {
                Some(self.duration(&key("digest_every"), b.digest_every.as_deref(), "1h")?)
            }
            _ => None,
        };
        Ok(Bucket {
            name: b.name,
            severity,
            mode,
            sinks: b.sinks,
            rules,
            mention,
            digest_every,
            fallback: route.fallback,
            escalate_after: route.escalate_after,
            audit: route.audit,
            quiet: None,
            applied_tags,
            thread_id,
            upload_max,
            after_delivery,
        })
    }

    /// `severity`: P3 unless given.
    fn severity(
        &self,
        key: &dyn Fn(&str) -> String,
        text: Option<&str>,
    ) -> Result<Severity, ConfigError> {
        match text.unwrap_or("P3") {
            "P0" => Ok(Severity::P0),
            "P1" => Ok(Severity::P1),
            "P2" => Ok(Severity::P2),
            "P3" => Ok(Severity::P3),
            other => Err(self.err(
                key("severity"),
                format!("{other:?} is not one of P0, P1, P2, P3"),
            )),
        }
    }

    /// `mode`: push unless given.
    fn mode(&self, key: &dyn Fn(&str) -> String, text: Option<&str>) -> Result<Mode, ConfigError> {
        match text.unwrap_or("push") {
            "push" => Ok(Mode::Push),
            "digest" => Ok(Mode::Digest),
            "hold" => Ok(Mode::Hold),
            other => Err(self.err(
                key("mode"),
                format!("{other:?} is not one of push, digest, hold"),
            )),
        }
    }

    /// `sinks`: each one a configured `[[sink]]`; at least one unless the bucket holds.
    fn bucket_sinks(
        &self,
        key: &dyn Fn(&str) -> String,
        named: &[String],
        mode: Mode,
        sinks: &[SinkConfig],
    ) -> Result<(), ConfigError> {
        for s in named {
            if !sinks.iter().any(|k| &k.name == s) {
                return Err(self.err(key("sinks"), format!("no [[sink]] is named {s:?}")));
            }
        }
        if named.is_empty() && mode != Mode::Hold {
            return Err(self.err(
                key("sinks"),
                "list at least one sink (or set mode = \"hold\")",
            ));
        }
        Ok(())
    }

    /// `mention`: a role by id, or everyone (P0 only).
    fn mention(
        &self,
        key: &dyn Fn(&str) -> String,
        text: Option<&str>,
        severity: Severity,
    ) -> Result<Option<Mention>, ConfigError> {
        match text {
            None => Ok(None),
            Some("everyone") if severity == Severity::P0 => Ok(Some(Mention::Everyone)),
            Some("everyone") => Err(self.err(
                key("mention"),
                "\"everyone\" is allowed only for severity P0",
            )),
            Some(m) => match m.strip_prefix("role:") {
                Some(id) if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) => {
                    Ok(Some(Mention::Role(id.to_string())))
                }
                _ => Err(self.err(
                    key("mention"),
                    format!("{m:?} is not \"role:ID\" or \"everyone\""),
                )),
            },
        }
    }

    /// `attachments` (`"list"`, the default, or `"upload"`) and `attachments_max` (`"8MiB"`,
    /// `"500KiB"` or bytes; at most Discord's 10 MiB).
    fn uploads(
        &self,
        key: &dyn Fn(&str) -> String,
        b: &RawBucket,
    ) -> Result<Option<u64>, ConfigError> {
        let upload = match b.attachments.as_deref() {
            None | Some("list") => false,
            Some("upload") => true,
            Some(other) => {
                return Err(self.err(
                    key("attachments"),
                    format!("{other:?} is not one of list, upload"),
                ))
            }
        };
        let max = match b.attachments_max.as_deref() {
            None => 8 * 1024 * 1024,
            Some(_) if !upload => {
                return Err(self.err(
                    key("attachments_max"),
                    "has no effect without attachments = \"upload\"",
                ))
            }
            Some(text) => bytes(text).ok_or_else(|| {
                self.err(
                    key("attachments_max"),
                    format!("{text:?} is not a size like \"8MiB\", \"500KiB\" or bytes"),
                )
            })?,
        };
        if max == 0 || max > DISCORD_UPLOAD_LIMIT {
            return Err(self.err(
                key("attachments_max"),
                "must be more than 0 and at most 10MiB (Discord's limit for a webhook)",
            ));
        }
        Ok(upload.then_some(max))
    }

    /// `applied_tags` and `thread_id`: numeric ids, meaningful only when one of the bucket's
    /// sinks posts to a forum (`forum = true`).
    fn forum_keys(
        &self,
        key: &dyn Fn(&str) -> String,
        b: &RawBucket,
        sinks: &[SinkConfig],
    ) -> Result<(Vec<String>, Option<String>), ConfigError> {
        let numeric = |id: &String| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit());
        let tags = b.applied_tags.clone().unwrap_or_default();
        if tags.len() > 5 || !tags.iter().all(numeric) {
            return Err(self.err(
                key("applied_tags"),
                "must be at most 5 numeric tag ids (the forum's tags)",
            ));
        }
        if b.thread_id.as_ref().is_some_and(|t| !numeric(t)) {
            return Err(self.err(key("thread_id"), "must be a numeric Discord id"));
        }
        let forum = sinks
            .iter()
            .any(|s| s.forum.is_some() && b.sinks.contains(&s.name));
        if (!tags.is_empty() || b.thread_id.is_some()) && !forum {
            return Err(self.err(
                key(if tags.is_empty() {
                    "thread_id"
                } else {
                    "applied_tags"
                }),
                "has no effect: none of the bucket's sinks has forum = true",
            ));
        }
        Ok((tags, b.thread_id.clone()))
    }

    fn rule(&self, key: &str, r: RawRule) -> Result<Rule, ConfigError> {
        let re = |field: Field, value: Option<String>| -> Result<Option<Regex>, ConfigError> {
            value
                .map(|v| compile(&v).map_err(|reason| self.err(format!("{key}.{field}"), reason)))
                .transpose()
        };
        let mut headers = Vec::new();
        for (name, pattern) in r.headers {
            // RFC 5322 field names: printable ASCII except the colon.
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                return Err(self.err(
                    format!("{key}.{}", Field::Header(&name)),
                    "not a header name (printable ASCII, no spaces, no colon)",
                ));
            }
            if let Some(re) = re(Field::Header(&name), Some(pattern))? {
                headers.push((name, re));
            }
        }
        let rule = Rule {
            from: re(Field::From, r.from)?,
            subject: re(Field::Subject, r.subject)?,
            to: re(Field::To, r.to)?,
            cc: re(Field::Cc, r.cc)?,
            snippet: re(Field::Snippet, r.snippet)?,
            headers,
        };
        if rule.is_empty() {
            return Err(self.err(
                key,
                "a rule must name at least one of from, subject, to, cc, snippet, headers",
            ));
        }
        Ok(rule)
    }
}

/// The most memory one compiled rule pattern may take: the regex crate's own default, pinned here
/// so that it cannot grow under us. Every rule stays compiled for the life of the agent; a
/// pattern past this (`\w{250}`: a large count of a Unicode class) is a config error that says
/// so, not a board out of memory.
const REGEX_SIZE_LIMIT: usize = 10 << 20;

fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => format!(
                "regex is too large once compiled (over {} MiB): use smaller counted repetitions, or ASCII classes with (?-u)",
                limit >> 20
            ),
            other => format!("regex does not compile: {other}"),
        })
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{load, GOOD};

    #[test]
    fn rules_match_named_headers() {
        let c = load(
            "headers",
            &GOOD.replace(
                "rules = [{ from",
                "rules = [{ headers = { \"List-Id\" = '<news\\.example\\.com>', X-Priority = '^1' } }, { from",
            ),
        )
        .unwrap();
        let rule = &c.buckets[0].rules[0];
        let names: Vec<&str> = rule.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["List-Id", "X-Priority"]);
        assert_eq!(c.triage().header_names(), ["list-id", "x-priority"]);
        let e = load(
            "header-regex",
            &GOOD.replace(
                "rules = [{ from",
                "rules = [{ headers = { \"List-Id\" = '(news' } }, { from",
            ),
        )
        .unwrap_err();
        assert_eq!(e.key, "bucket[0] (stripe).rules[0].headers.List-Id", "{e}");
        assert!(e.reason.contains("regex does not compile"), "{e}");
        let e = load(
            "header-name",
            &GOOD.replace(
                "rules = [{ from",
                "rules = [{ headers = { \"List Id\" = 'x' } }, { from",
            ),
        )
        .unwrap_err();
        assert_eq!(
            e.key, "bucket[0] (stripe).rules[0].headers.\"List Id\"",
            "{e}"
        );
        assert!(e.reason.contains("not a header name"), "{e}");
        let e = load(
            "header-none",
            &GOOD.replace("rules = [{ from", "rules = [{ headers = {} }, { from"),
        )
        .unwrap_err();
        assert!(
            e.key.ends_with("rules[0]") && e.reason.contains("headers"),
            "{e}"
        );
    }

    #[test]
    fn a_pattern_too_large_to_compile_is_a_config_error() {
        let e = load("huge", &GOOD.replace("(?i)payment", "\\w{5000}")).unwrap_err();
        assert_eq!(e.key, "bucket[0] (stripe).rules[1].subject", "{e}");
        assert!(e.reason.contains("too large"), "{e}");
        // An ordinary Unicode pattern is far below the limit.
        load("sized", &GOOD.replace("(?i)payment", "(?i)\\w{20} payment")).unwrap();
    }
}
