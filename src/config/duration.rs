//! Durations in the config are strings such as `"30s"`, `"15m"`, `"1h"`, `"7d"` (docs/design.md).
//! Several parts add up (`"1h30m"`); `ms` is accepted for tests that need fast timers.

use std::time::Duration;

/// Parses `"250ms"`, `"30s"`, `"15m"`, `"1h"`, `"7d"` or a sum of such parts like `"1h30m"`.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration; write e.g. \"30s\", \"15m\", \"1h\" or \"7d\"".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "{text:?} is not a duration: expected a number before the unit"
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ms" => None,
            "s" => Some(1),
            "m" => Some(60),
            "h" => Some(3600),
            "d" => Some(86_400),
            "" => {
                return Err(format!(
                    "{text:?} has no unit: write \"{number}s\" or \"{number}m\""
                ))
            }
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (use ms, s, m, h or d)"
                ))
            }
        };
        let part = match seconds_per_unit {
            None => Duration::from_millis(number),
            Some(k) => Duration::from_secs(
                number
                    .checked_mul(k)
                    .ok_or_else(|| format!("{text:?}: too large"))?,
            ),
        };
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("{text:?}: too large"))?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_forms() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(parse("").is_err());
        assert!(parse("15").unwrap_err().contains("no unit"));
        assert!(parse("5 weeks").is_err());
        assert!(parse("m").is_err());
        assert!(parse("99999999999999999999d").is_err());
    }
}
