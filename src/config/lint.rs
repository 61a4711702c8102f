//! Warnings about rules that load but cannot do what they say: a pattern that matches no text at
//! all, one that needs more characters than its field ever holds, a rule shadowed by an earlier
//! bucket's rule, and a bucket no mail can reach. Pure, over the loaded buckets: `check` prints
//! the warnings and `run` logs them. None stops the agent, because a dead rule loses no mail —
//! the mail lands in a later bucket or the fallback — it only sorts it where the operator did
//! not mean it to go.
//!
//! The analysis is sound, not complete: every warning is certain, but not every dead rule is
//! found. Shadowing is judged on identical patterns only (the same parsed pattern on the same
//! field), never on one pattern's language containing another's.

use super::Bucket;
use crate::mail::{FIELD_CHARS, SNIPPET_CHARS};
use crate::triage::{Field, Rule};
use regex_syntax::hir::{Hir, HirKind};
use std::fmt;

/// One thing `check` has to say about a configuration that is valid nonetheless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where, as config errors name it: `bucket[1] (news).rules[0].subject`.
    pub(crate) key: String,
    pub(crate) reason: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Every warning about `buckets`, in file order.
pub(crate) fn warnings(buckets: &[Bucket]) -> Vec<Warning> {
    let mut out = Vec::new();
    // The rules of earlier buckets that can match, with their place: a later rule whose
    // conditions include all of one of these never gets a mail.
    let mut live: Vec<(String, Vec<Condition>)> = Vec::new();
    for (b, bucket) in buckets.iter().enumerate() {
        if bucket.rules.is_empty() {
            continue;
        }
        let bucket_key = format!("bucket[{b}] ({})", bucket.name);
        let mut reachable = Vec::new();
        for (r, rule) in bucket.rules.iter().enumerate() {
            let key = format!("{bucket_key}.rules[{r}]");
            match verdict(rule, &live) {
                Verdict::Live(conditions) => reachable.push((key, conditions)),
                Verdict::Never { field, why } => out.push(Warning {
                    key: format!("{key}.{field}"),
                    reason: format!("can never match: {why}"),
                }),
                Verdict::Shadowed { by } => out.push(Warning {
                    key,
                    reason: format!(
                        "can never match: {by} matches every mail this rule matches, and buckets are tried in file order"
                    ),
                }),
            }
        }
        if reachable.is_empty() {
            out.push(Warning {
                key: bucket_key,
                reason: "no mail can reach this bucket: none of its rules can ever match"
                    .to_string(),
            });
        }
        live.extend(reachable);
    }
    out
}

enum Verdict<'r> {
    Live(Vec<Condition<'r>>),
    Never { field: Field<'r>, why: String },
    Shadowed { by: String },
}

fn verdict<'r>(rule: &'r Rule, earlier: &[(String, Vec<Condition>)]) -> Verdict<'r> {
    let conditions: Vec<Condition> = rule.conditions().map(Condition::new).collect();
    for c in &conditions {
        if let Some(why) = c.never() {
            return Verdict::Never {
                field: c.field,
                why,
            };
        }
    }
    let shadow = earlier
        .iter()
        .find(|(_, theirs)| theirs.iter().all(|t| conditions.contains(t)));
    match shadow {
        Some((by, _)) => Verdict::Shadowed { by: by.clone() },
        None => Verdict::Live(conditions),
    }
}

/// One field and its pattern, parsed the way the regex crate parses it.
#[derive(Debug)]
struct Condition<'r> {
    field: Field<'r>,
    pattern: &'r str,
    /// `None` only if regex-syntax disagrees with the regex crate, which compiled the pattern;
    /// then the condition is judged by its text alone.
    hir: Option<Hir>,
}

impl<'r> Condition<'r> {
    fn new((field, re): (Field<'r>, &'r regex::Regex)) -> Self {
        Condition {
            field,
            pattern: re.as_str(),
            hir: regex_syntax::Parser::new().parse(re.as_str()).ok(),
        }
    }

    /// Why no text this field can hold is matched, if that is certain.
    fn never(&self) -> Option<String> {
        let hir = self.hir.as_ref()?;
        if hir.properties().minimum_len().is_none() {
            return Some("the pattern matches no text at all".to_string());
        }
        let (need, max) = (min_chars(hir)?, max_chars(self.field)?);
        (need > max).then(|| {
            format!(
                "the pattern needs at least {need} characters and {} holds at most {max}",
                self.field
            )
        })
    }
}

/// The same field and the same pattern: two parses that are equal match the same texts.
impl PartialEq for Condition<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.field == other.field
            && match (&self.hir, &other.hir) {
                (Some(a), Some(b)) => a == b,
                _ => self.pattern == other.pattern,
            }
    }
}

/// The longest text the agent ever keeps in `field` (see `mail::summarize`); headers are not
/// cut.
fn max_chars(field: Field<'_>) -> Option<usize> {
    match field {
        Field::From | Field::To | Field::Cc | Field::Subject => Some(FIELD_CHARS),
        Field::Snippet => Some(SNIPPET_CHARS),
        Field::Header(_) => None,
    }
}

/// The fewest characters (not bytes, which `Properties::minimum_len` counts) of any text `hir`
/// matches; `None` when it matches none.
fn min_chars(hir: &Hir) -> Option<usize> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Some(0),
        // A pattern for `&str` only matches valid UTF-8, so its literals are whole characters.
        HirKind::Literal(lit) => Some(String::from_utf8_lossy(&lit.0).chars().count()),
        HirKind::Class(class) => class.minimum_len().map(|_| 1),
        HirKind::Repetition(rep) if rep.min == 0 => Some(0),
        HirKind::Repetition(rep) => min_chars(&rep.sub).map(|n| n.saturating_mul(rep.min as usize)),
        HirKind::Capture(cap) => min_chars(&cap.sub),
        HirKind::Concat(subs) => subs
            .iter()
            .try_fold(0usize, |sum, sub| Some(sum.saturating_add(min_chars(sub)?))),
        HirKind::Alternation(subs) => subs.iter().filter_map(min_chars).min(),
    }
}

#[cfg(test)]
mod tests;
