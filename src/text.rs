//! Small pure text helpers shared by mail reading and Discord rendering: cutting on character
//! boundaries and folding whitespace.

/// The longest prefix of `s` with at most `max` characters (never splits a character).
pub(crate) fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// At most `max` characters; when cut, the last one is "…" so the reader sees it was cut.
pub(crate) fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out = truncate_chars(s, max.saturating_sub(1)).to_string();
    out.push('…');
    out
}

/// Runs of whitespace become one space, control characters vanish, at most `max` characters.
pub(crate) fn collapse_whitespace(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            pending_space = count > 0;
            continue;
        }
        if c.is_control() {
            continue;
        }
        if pending_space {
            if count + 1 >= max {
                break;
            }
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        if count >= max {
            break;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// Percent-encoding of everything but RFC 3986's unreserved characters: a value that cannot
/// reshape the URL it is put in.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_character_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hi", 5), "hi");
        assert_eq!(ellipsize("abcdef", 4), "abc…");
        assert_eq!(ellipsize("abc", 4), "abc");
        assert_eq!(ellipsize("日本語テキスト", 3).chars().count(), 3);
    }

    #[test]
    fn folds_whitespace_and_drops_controls() {
        assert_eq!(collapse_whitespace("  a \r\n\t b\0c  ", 100), "a bc");
        assert_eq!(collapse_whitespace("aaaa bbbb", 6), "aaaa b");
        assert!(collapse_whitespace(&"x ".repeat(1000), 10).chars().count() <= 10);
    }
}
