//! Triage: which bucket a mail belongs to. Pure: no I/O, no clock.
//!
//! Buckets are tried in file order; a bucket matches when any of its rules matches; a rule
//! matches when every field it names matches (regex search). A named header matches when any of
//! its occurrences does; a header the mail lacks never matches. The one bucket without rules is
//! the fallback and takes everything else, including mail that failed to parse.

use regex::Regex;
use std::fmt;

/// The fields of a mail that rules can look at. `from` is `Display Name <addr@host>`, or the
/// bare address when there is no name. `headers` holds only the headers some rule names.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    pub from: &'a str,
    pub subject: &'a str,
    pub to: &'a str,
    pub cc: &'a str,
    pub snippet: &'a str,
    pub headers: &'a Headers,
}

static NO_HEADERS: Headers = Headers(Vec::new());

impl Default for Fields<'_> {
    fn default() -> Self {
        Fields {
            from: "",
            subject: "",
            to: "",
            cc: "",
            snippet: "",
            headers: &NO_HEADERS,
        }
    }
}

impl Fields<'_> {
    /// Whether `re` finds a match in `field`: in any occurrence of a header, none if it is missing.
    fn finds(&self, field: Field<'_>, re: &Regex) -> bool {
        match field {
            Field::From => re.is_match(self.from),
            Field::Subject => re.is_match(self.subject),
            Field::To => re.is_match(self.to),
            Field::Cc => re.is_match(self.cc),
            Field::Snippet => re.is_match(self.snippet),
            Field::Header(name) => self.headers.values(name).any(|v| re.is_match(v)),
        }
    }
}

/// The decoded text of named headers, one entry per occurrence, in mail order. Names compare
/// ASCII case-insensitively, as RFC 5322 field names do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub(crate) fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl FromIterator<(String, String)> for Headers {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Headers(iter.into_iter().collect())
    }
}

/// Where one condition of a rule looks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field<'a> {
    From,
    Subject,
    To,
    Cc,
    Snippet,
    /// A header by name, as the config writes it.
    Header(&'a str),
}

impl PartialEq for Field<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Field::Header(a), Field::Header(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

/// The key as the config writes it: `subject`, `headers.List-Id`, `headers."X Odd"`.
impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::From => f.write_str("from"),
            Field::Subject => f.write_str("subject"),
            Field::To => f.write_str("to"),
            Field::Cc => f.write_str("cc"),
            Field::Snippet => f.write_str("snippet"),
            Field::Header(name) => {
                let bare = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if bare {
                    write!(f, "headers.{name}")
                } else {
                    write!(f, "headers.{name:?}")
                }
            }
        }
    }
}

/// One rule: every regex it names must find a match in its field.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rule {
    pub(crate) from: Option<Regex>,
    pub(crate) subject: Option<Regex>,
    pub(crate) to: Option<Regex>,
    pub(crate) cc: Option<Regex>,
    pub(crate) snippet: Option<Regex>,
    /// Header names (any case) and the regex one of their occurrences must match.
    pub(crate) headers: Vec<(String, Regex)>,
}

impl Rule {
    /// Every condition the rule names, the fixed fields first, then the headers.
    pub(crate) fn conditions(&self) -> impl Iterator<Item = (Field<'_>, &Regex)> {
        [
            (Field::From, &self.from),
            (Field::Subject, &self.subject),
            (Field::To, &self.to),
            (Field::Cc, &self.cc),
            (Field::Snippet, &self.snippet),
        ]
        .into_iter()
        .filter_map(|(field, re)| Some((field, re.as_ref()?)))
        .chain(
            self.headers
                .iter()
                .map(|(name, re)| (Field::Header(name), re)),
        )
    }

    /// A rule naming no field would match everything; config validation refuses it.
    pub(crate) fn is_empty(&self) -> bool {
        self.conditions().next().is_none()
    }

    pub(crate) fn matches(&self, mail: &Fields) -> bool {
        !self.is_empty() && self.conditions().all(|(field, re)| mail.finds(field, re))
    }
}

/// The ordered rule table of all buckets.
#[derive(Debug, Clone)]
pub struct Triage {
    ordered: Vec<(String, Vec<Rule>)>,
    fallback: String,
    header_names: Vec<String>,
}

impl Triage {
    /// `buckets` in file order; `fallback` is the bucket without rules.
    pub(crate) fn new(buckets: Vec<(String, Vec<Rule>)>, fallback: String) -> Triage {
        let ordered: Vec<(String, Vec<Rule>)> =
            buckets.into_iter().filter(|(_, r)| !r.is_empty()).collect();
        let mut header_names: Vec<String> = ordered
            .iter()
            .flat_map(|(_, rules)| rules.iter())
            .flat_map(|rule| rule.headers.iter())
            .map(|(name, _)| name.to_ascii_lowercase())
            .collect();
        header_names.sort();
        header_names.dedup();
        Triage {
            ordered,
            fallback,
            header_names,
        }
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

    /// The headers some rule names (lower case, each once): the only ones worth reading from a
    /// mail.
    pub fn header_names(&self) -> &[String] {
        &self.header_names
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

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn list_rule() -> Rule {
        Rule {
            headers: vec![(
                "List-Id".into(),
                Regex::new(r"<news\.example\.com>").unwrap(),
            )],
            ..Rule::default()
        }
    }

    #[test]
    fn a_header_matches_in_any_occurrence_and_any_case() {
        let rule = list_rule();
        let seen = headers(&[
            ("list-id", "Other <other.example.org>"),
            ("LIST-ID", "News <news.example.com>"),
        ]);
        let mail = Fields {
            headers: &seen,
            ..Fields::default()
        };
        assert!(rule.matches(&mail));
        let other = headers(&[("list-id", "Other <other.example.org>")]);
        assert!(!rule.matches(&Fields {
            headers: &other,
            ..Fields::default()
        }));
    }

    #[test]
    fn a_missing_header_never_matches_even_a_pattern_for_empty_text() {
        let rule = Rule {
            headers: vec![("X-Priority".into(), Regex::new("^$").unwrap())],
            ..Rule::default()
        };
        assert!(!rule.matches(&Fields::default()));
        let empty = headers(&[("x-priority", "")]);
        assert!(rule.matches(&Fields {
            headers: &empty,
            ..Fields::default()
        }));
    }

    #[test]
    fn headers_and_fields_must_all_match() {
        let rule = Rule {
            subject: re("(?i)digest"),
            ..list_rule()
        };
        let list = headers(&[("List-Id", "<news.example.com>")]);
        let mail = Fields {
            subject: "Weekly digest",
            headers: &list,
            ..Fields::default()
        };
        assert!(rule.matches(&mail));
        assert!(!rule.matches(&Fields {
            subject: "Hello",
            ..mail
        }));
        let t = Triage::new(
            vec![("news".into(), vec![rule]), ("unknown".into(), vec![])],
            "unknown".into(),
        );
        assert_eq!(t.bucket_for(&mail), "news");
        assert_eq!(t.bucket_for(&Fields::default()), "unknown");
    }

    #[test]
    fn the_table_names_the_headers_worth_reading() {
        let mut second = list_rule();
        second
            .headers
            .push(("X-Priority".into(), Regex::new("^1").unwrap()));
        let t = Triage::new(
            vec![
                ("a".into(), vec![list_rule()]),
                ("b".into(), vec![second]),
                ("unknown".into(), vec![]),
            ],
            "unknown".into(),
        );
        assert_eq!(t.header_names(), ["list-id", "x-priority"]);
        assert!(table().header_names().is_empty());
    }

    #[test]
    fn fields_are_named_as_the_config_writes_them() {
        assert_eq!(Field::Subject.to_string(), "subject");
        assert_eq!(Field::Header("List-Id").to_string(), "headers.List-Id");
        assert_eq!(Field::Header("X Odd").to_string(), "headers.\"X Odd\"");
        assert_eq!(Field::Header("list-id"), Field::Header("LIST-ID"));
        assert_ne!(Field::Header("list-id"), Field::From);
    }
}
