//! Triage: which bucket a mail belongs to. Pure: no I/O, no clock.
//!
//! Buckets are tried in file order; a bucket matches when any of its rules matches; a rule
//! matches when every field it names matches (regex search). The one bucket without rules is the
//! fallback and takes everything else, including mail that failed to parse.

use regex::Regex;

/// The fields of a mail that rules can look at. `from` is `Display Name <addr@host>`, or the
/// bare address when there is no name.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fields<'a> {
    pub from: &'a str,
    pub subject: &'a str,
    pub to: &'a str,
    pub cc: &'a str,
    pub snippet: &'a str,
}

/// One rule: every regex it names must match its field.
#[derive(Debug, Clone, Default)]
pub struct Rule {
    pub from: Option<Regex>,
    pub subject: Option<Regex>,
    pub to: Option<Regex>,
    pub cc: Option<Regex>,
    pub snippet: Option<Regex>,
}

impl Rule {
    #[allow(clippy::type_complexity)]
    fn parts(&self) -> [(Option<&Regex>, for<'m> fn(&Fields<'m>) -> &'m str); 5] {
        [
            (self.from.as_ref(), |f| f.from),
            (self.subject.as_ref(), |f| f.subject),
            (self.to.as_ref(), |f| f.to),
            (self.cc.as_ref(), |f| f.cc),
            (self.snippet.as_ref(), |f| f.snippet),
        ]
    }

    /// A rule naming no field would match everything; config validation refuses it.
    pub fn is_empty(&self) -> bool {
        self.parts().iter().all(|(re, _)| re.is_none())
    }

    pub fn matches(&self, mail: &Fields) -> bool {
        !self.is_empty()
            && self
                .parts()
                .iter()
                .all(|(re, field)| re.is_none_or(|re| re.is_match(field(mail))))
    }
}

/// The ordered rule table of all buckets.
#[derive(Debug, Clone)]
pub struct Triage {
    ordered: Vec<(String, Vec<Rule>)>,
    fallback: String,
}

impl Triage {
    /// `buckets` in file order; `fallback` is the bucket without rules.
    pub fn new(buckets: Vec<(String, Vec<Rule>)>, fallback: String) -> Triage {
        let ordered = buckets.into_iter().filter(|(_, r)| !r.is_empty()).collect();
        Triage { ordered, fallback }
    }

    /// The first bucket with a matching rule, else the fallback.
    pub fn bucket_for(&self, mail: &Fields) -> &str {
        self.ordered
            .iter()
            .find(|(_, rules)| rules.iter().any(|r| r.matches(mail)))
            .map_or(self.fallback.as_str(), |(name, _)| name.as_str())
    }

    pub fn fallback(&self) -> &str {
        &self.fallback
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(s: &str) -> Option<Regex> {
        Some(Regex::new(s).unwrap())
    }

    fn table() -> Triage {
        Triage::new(
            vec![
                (
                    "vip".into(),
                    vec![Rule {
                        from: re("(?i)boss@corp\\.example"),
                        ..Rule::default()
                    }],
                ),
                (
                    "stripe".into(),
                    vec![
                        Rule {
                            from: re("@stripe\\.com>?$"),
                            ..Rule::default()
                        },
                        Rule {
                            subject: re("(?i)payment"),
                            ..Rule::default()
                        },
                    ],
                ),
                (
                    "both".into(),
                    vec![Rule {
                        from: re("a@b"),
                        subject: re("hello"),
                        ..Rule::default()
                    }],
                ),
                ("unknown".into(), vec![]),
            ],
            "unknown".into(),
        )
    }

    #[test]
    fn first_matching_bucket_wins_in_file_order() {
        let t = table();
        let mail = Fields {
            from: "Boss <boss@corp.example>",
            subject: "Payment due",
            ..Fields::default()
        };
        assert_eq!(t.bucket_for(&mail), "vip");
        let mail = Fields {
            from: "Stripe <receipts@stripe.com>",
            ..Fields::default()
        };
        assert_eq!(t.bucket_for(&mail), "stripe");
        let mail = Fields {
            from: "x@y",
            subject: "Your PAYMENT",
            ..Fields::default()
        };
        assert_eq!(t.bucket_for(&mail), "stripe");
    }

    #[test]
    fn a_rule_needs_every_named_field() {
        let t = table();
        let only_from = Fields {
            from: "a@b",
            subject: "bye",
            ..Fields::default()
        };
        assert_eq!(t.bucket_for(&only_from), "unknown");
        let both = Fields {
            from: "a@b",
            subject: "hello there",
            ..Fields::default()
        };
        assert_eq!(t.bucket_for(&both), "both");
    }

    #[test]
    fn everything_else_falls_back() {
        assert_eq!(table().bucket_for(&Fields::default()), "unknown");
        assert!(!Rule::default().matches(&Fields::default()));
    }
}
