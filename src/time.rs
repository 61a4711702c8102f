//! Times as the agent shows them: RFC 3339 UTC in JSON and logs, ages as people read them; and
//! the local minute of the day that quiet hours are told in.

/// RFC 3339 UTC for unix seconds.
pub(crate) fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(String::new, |d| {
        d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    })
}

/// Seconds as people read an age: `42s`, `7m05s`, `3h12m`, `2d04h`.
pub(crate) fn age(s: i64) -> String {
    match s {
        ..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The device's local time as minutes since midnight (quiet hours are in local time).
pub(crate) fn local_minute() -> u32 {
    use chrono::Timelike;
    let now = chrono::Local::now();
    now.hour() * 60 + now.minute()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(
            [
                age(42),
                age(425),
                age(3 * 3600 + 60),
                age(2 * 86_400 + 4 * 3600)
            ],
            ["42s", "7m05s", "3h01m", "2d04h"]
        );
    }
}
