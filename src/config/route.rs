//! A bucket's routes besides its own sinks: `fallback` (with `escalate_after`) and `audit`.

use super::raw::RawBucket;
use super::{ConfigError, Loader, Mode, Severity, SinkConfig};
use std::time::Duration;

pub(super) struct Route {
    pub(crate) fallback: Option<String>,
    pub(crate) escalate_after: Option<Duration>,
    pub(crate) audit: Option<String>,
}

impl Loader<'_> {
    pub(super) fn route(
        &self,
        key: &dyn Fn(&str) -> String,
        b: &RawBucket,
        severity: Severity,
        mode: Mode,
        sinks: &[SinkConfig],
    ) -> Result<Route, ConfigError> {
        let known = |field: &str, name: &Option<String>| -> Result<(), ConfigError> {
            match name {
                Some(n) if !sinks.iter().any(|s| &s.name == n) => {
                    let names: Vec<&str> = sinks.iter().map(|s| s.name.as_str()).collect();
                    Err(self.err(
                        key(field),
                        format!("no [[sink]] is named {n:?} (sinks: {})", names.join(", ")),
                    ))
                }
                Some(n) if b.sinks.contains(n) => Err(self.err(
                    key(field),
                    format!("{n:?} is already one of this bucket's sinks; name another sink"),
                )),
                _ => Ok(()),
            }
        };
        known("fallback", &b.fallback)?;
        known("audit", &b.audit)?;
        if mode == Mode::Hold && (b.fallback.is_some() || b.audit.is_some()) {
            return Err(self.err(
                key(if b.fallback.is_some() { "fallback" } else { "audit" }),
                "a bucket with mode = \"hold\" delivers nothing, so it has nothing to fail over or mirror",
            ));
        }
        if b.fallback.is_some() && b.fallback == b.audit {
            return Err(self.err(
                key("audit"),
                "must not be the fallback sink too (a mail would be posted there twice)",
            ));
        }
        let escalate_after = match b.escalate_after.as_deref() {
            None => None,
            Some(_) if b.fallback.is_none() => {
                return Err(self.err(
                    key("escalate_after"),
                    "needs a fallback sink to escalate to: set fallback = \"SINK\"",
                ))
            }
            Some(_) if severity > Severity::P1 => {
                return Err(self.err(
                    key("escalate_after"),
                    "escalation is for severity P0 and P1 only",
                ))
            }
            Some(d) => Some(self.duration(&key("escalate_after"), Some(d), "0s")?),
        };
        Ok(Route {
            fallback: b.fallback.clone(),
            escalate_after,
            audit: b.audit.clone(),
        })
    }
}
