//! `[indicator]`: the LED/buzzer backend and pins, quiet hours, and the spool thresholds that
//! turn the light to warning and alarm, validated.

use super::raw::{RawIndicator, RawPin};
use super::{ConfigError, Loader};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Backend {
    Cdev { chip: String },
    Sim { trace: Option<PathBuf> },
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pin {
    pub(crate) line: u32,
    pub(crate) active_low: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndicatorConfig {
    pub(crate) backend: Backend,
    pub(crate) led: Pin,
    pub(crate) buzzer: Option<Pin>,
    pub(crate) led2: Option<Pin>,
    /// Local minutes since midnight `(start, end)`; the buzzer stays silent inside.
    pub(crate) quiet_hours: Option<(u32, u32)>,
    pub(crate) spool_warn: u64,
    pub(crate) spool_alarm: u64,
    pub(crate) pending_age_alarm: Duration,
    pub(crate) buzzer_repeat: Duration,
}

impl Loader<'_> {
    pub(super) fn indicator(&self, r: RawIndicator) -> Result<IndicatorConfig, ConfigError> {
        let backend = match r.backend.as_deref().unwrap_or("none") {
            "cdev" => Backend::Cdev {
                chip: r.chip.clone().ok_or_else(|| self.err("indicator.chip", "missing: a chip label such as \"pinctrl-bcm2711\" or a path such as /dev/gpiochip0"))?,
            },
            "sim" => Backend::Sim { trace: r.trace.clone() },
            "none" => Backend::None,
            other => return Err(self.err("indicator.backend", format!("{other:?} is not one of cdev, sim, none"))),
        };
        let pin = |p: RawPin| Pin {
            line: p.line,
            active_low: p.active_low.unwrap_or(false),
        };
        let led = match (r.led, &backend) {
            (Some(p), _) => pin(p),
            (None, Backend::Cdev { .. }) => {
                return Err(self.err("indicator.led", "missing: led = { line = 17 }"))
            }
            (None, _) => Pin {
                line: 17,
                active_low: false,
            },
        };
        let spool_warn = r.spool_warn.unwrap_or(50);
        let spool_alarm = r.spool_alarm.unwrap_or(500);
        if spool_warn >= spool_alarm {
            return Err(self.err(
                "indicator.spool_warn",
                format!("must be below spool_alarm ({spool_alarm})"),
            ));
        }
        let quiet_hours = r
            .quiet_hours
            .as_deref()
            .map(|q| parse_quiet_hours(q).map_err(|e| self.err("indicator.quiet_hours", e)))
            .transpose()?;
        Ok(IndicatorConfig {
            backend,
            led,
            buzzer: r.buzzer.map(pin),
            led2: r.led2.map(pin),
            quiet_hours,
            spool_warn,
            spool_alarm,
            pending_age_alarm: self.duration(
                "indicator.pending_age_alarm",
                r.pending_age_alarm.as_deref(),
                "6h",
            )?,
            buzzer_repeat: self.duration(
                "indicator.buzzer_repeat",
                r.buzzer_repeat.as_deref(),
                "15m",
            )?,
        })
    }
}

/// `"22:00-07:00"` → minutes since midnight (1320, 420).
fn parse_quiet_hours(text: &str) -> Result<(u32, u32), String> {
    let hm = |s: &str| -> Option<u32> {
        let (h, m) = s.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    text.split_once('-')
        .and_then(|(a, b)| Some((hm(a)?, hm(b)?)))
        .ok_or_else(|| format!("{text:?} is not \"HH:MM-HH:MM\""))
}

#[cfg(test)]
mod tests {
    use super::parse_quiet_hours;
    use crate::config::tests::{load, GOOD};

    #[test]
    fn quiet_hours_and_thresholds() {
        assert_eq!(parse_quiet_hours("22:00-07:00"), Ok((1320, 420)));
        assert!(parse_quiet_hours("25:00-07:00").is_err());
        let e = load(
            "thr",
            &format!("{GOOD}\n[indicator]\nspool_warn = 10\nspool_alarm = 5\n"),
        )
        .unwrap_err();
        assert!(e.key.contains("spool_warn"), "{e}");
    }
}
