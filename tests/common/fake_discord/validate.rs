//! What Discord refuses in a message body (400, code 50035, with the path of each error): the
//! limits on content, embeds and their fields, and `allowed_mentions`.

use super::*;

pub(super) fn push_err(
    errors: &mut Map<String, Value>,
    path: &[&str],
    code: &str,
    message: String,
) {
    let mut cur = errors;
    for seg in path {
        let next = cur
            .entry(seg.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        cur = next.as_object_mut().unwrap();
    }
    let list = cur
        .entry("_errors")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(a) = list.as_array_mut() {
        a.push(json!({ "code": code, "message": message }));
    }
}

/// Checks a string field: type and max length. Returns its length (0 if absent).
pub(super) fn check_str(
    errors: &mut Map<String, Value>,
    obj: &Value,
    key: &str,
    path: &[&str],
    max: usize,
    required: bool,
) -> usize {
    let mut p: Vec<&str> = path.to_vec();
    p.push(key);
    match obj.get(key) {
        None | Some(Value::Null) => {
            if required {
                push_err(
                    errors,
                    &p,
                    "BASE_TYPE_REQUIRED",
                    "This field is required".into(),
                );
            }
            0
        }
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if required && s.trim().is_empty() {
                push_err(
                    errors,
                    &p,
                    "BASE_TYPE_REQUIRED",
                    "This field is required".into(),
                );
            }
            if n > max {
                push_err(
                    errors,
                    &p,
                    "BASE_TYPE_MAX_LENGTH",
                    format!("Must be {max} or fewer in length."),
                );
            }
            n
        }
        Some(_) => {
            push_err(
                errors,
                &p,
                "STRING_TYPE_CONVERT",
                "Could not interpret value as string.".into(),
            );
            0
        }
    }
}

pub(super) fn validate(body: &Value) -> Result<(), Reply> {
    if !body.is_object() {
        return Err(Reply::form_errors(json!({ "_errors": [{
            "code": "DICT_TYPE_CONVERT", "message": "Only dictionaries may be used in a DictType"
        }]})));
    }
    let mut errors = Map::new();
    check_str(&mut errors, body, "content", &[], 2000, false);
    if let Some(u) = body.get("username") {
        check_username(&mut errors, u);
    }
    let n_embeds = match body.get("embeds") {
        None | Some(Value::Null) => 0,
        Some(Value::Array(embeds)) => check_embeds(&mut errors, embeds),
        Some(_) => {
            push_err(
                &mut errors,
                &["embeds"],
                "BASE_TYPE_LIST",
                "Must be an array.".into(),
            );
            0
        }
    };
    match body.get("allowed_mentions") {
        None | Some(Value::Null) => {}
        Some(Value::Object(am)) => check_allowed_mentions(&mut errors, am),
        Some(_) => push_err(
            &mut errors,
            &["allowed_mentions"],
            "DICT_TYPE_CONVERT",
            "Only dictionaries may be used in a DictType".into(),
        ),
    }
    if !errors.is_empty() {
        return Err(Reply::form_errors(Value::Object(errors)));
    }
    let has_content = body
        .get("content")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.trim().is_empty());
    if !has_content && n_embeds == 0 {
        return Err(Reply::error(400, 50006));
    }
    Ok(())
}

/// A webhook's `username` override: 1–80 characters, without "discord" or "clyde", not
/// "everyone" or "here".
fn check_username(errors: &mut Map<String, Value>, u: &Value) {
    let Some(s) = u.as_str() else {
        if !u.is_null() {
            push_err(
                errors,
                &["username"],
                "STRING_TYPE_CONVERT",
                "Could not interpret value as string.".into(),
            );
        }
        return;
    };
    let lower = s.to_lowercase();
    if !(1..=80).contains(&s.chars().count()) {
        push_err(
            errors,
            &["username"],
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 80 in length.".into(),
        );
    }
    for bad in ["discord", "clyde"] {
        if lower.contains(bad) {
            push_err(
                errors,
                &["username"],
                "USERNAME_INVALID_CONTAINS",
                format!("Username cannot contain \"{bad}\""),
            );
        }
    }
    if matches!(lower.trim(), "everyone" | "here") {
        push_err(
            errors,
            &["username"],
            "USERNAME_INVALID",
            "Username is invalid".into(),
        );
    }
}

/// At most 10 embeds whose texts add up to at most 6,000 characters; returns how many.
fn check_embeds(errors: &mut Map<String, Value>, embeds: &[Value]) -> usize {
    if embeds.len() > 10 {
        push_err(
            errors,
            &["embeds"],
            "BASE_TYPE_MAX_LENGTH",
            "Must be 10 or fewer in length.".into(),
        );
    }
    let total: usize = embeds
        .iter()
        .enumerate()
        .map(|(i, e)| check_embed(errors, &i.to_string(), e))
        .sum();
    if total > 6000 {
        push_err(
            errors,
            &["embeds"],
            "MAX_EMBED_SIZE_EXCEEDED",
            "Embed size exceeds maximum size of 6000".into(),
        );
    }
    embeds.len()
}

/// One embed's limits; returns the characters it counts toward the 6,000.
fn check_embed(errors: &mut Map<String, Value>, idx: &str, e: &Value) -> usize {
    let p: [&str; 2] = ["embeds", idx];
    if !e.is_object() {
        push_err(
            errors,
            &p,
            "DICT_TYPE_CONVERT",
            "Only dictionaries may be used in a DictType".into(),
        );
        return 0;
    }
    let mut total = check_str(errors, e, "title", &p, 256, false);
    total += check_str(errors, e, "description", &p, 4096, false);
    if let Some(url) = e.get("url").and_then(Value::as_str) {
        let ok = (url.starts_with("http://") || url.starts_with("https://"))
            && !url.contains(char::is_whitespace)
            && url.len() > "https://".len();
        if !ok {
            push_err(
                errors,
                &["embeds", idx, "url"],
                "URL_TYPE_INVALID_URL",
                "Not a well formed URL.".into(),
            );
        }
    }
    if let Some(c) = e.get("color") {
        if !(c.is_null() || c.as_u64().is_some_and(|v| v <= 0xFF_FF_FF)) {
            push_err(
                errors,
                &["embeds", idx, "color"],
                "NUMBER_TYPE_COERCE",
                format!("Value \"{c}\" is not int."),
            );
        }
    }
    if let Some(ts) = e.get("timestamp") {
        if !(ts.is_null() || ts.as_str().is_some_and(is_iso8601)) {
            push_err(
                errors,
                &["embeds", idx, "timestamp"],
                "DATE_TIME_TYPE_PARSE",
                format!("Could not parse {ts}. Should be ISO8601."),
            );
        }
    }
    if let Some(f) = e.get("footer").filter(|f| !f.is_null()) {
        total += check_str(errors, f, "text", &["embeds", idx, "footer"], 2048, true);
    }
    if let Some(a) = e.get("author").filter(|a| !a.is_null()) {
        total += check_str(errors, a, "name", &["embeds", idx, "author"], 256, true);
    }
    match e.get("fields") {
        None | Some(Value::Null) => {}
        Some(Value::Array(fields)) => total += check_fields(errors, idx, fields),
        Some(_) => push_err(
            errors,
            &["embeds", idx, "fields"],
            "BASE_TYPE_LIST",
            "Must be an array.".into(),
        ),
    }
    total
}

/// At most 25 fields, each with a name (256) and a value (1,024); `inline` a bool.
fn check_fields(errors: &mut Map<String, Value>, idx: &str, fields: &[Value]) -> usize {
    if fields.len() > 25 {
        push_err(
            errors,
            &["embeds", idx, "fields"],
            "BASE_TYPE_MAX_LENGTH",
            "Must be 25 or fewer in length.".into(),
        );
    }
    let mut total = 0;
    for (j, f) in fields.iter().enumerate() {
        let jdx = j.to_string();
        let fp: [&str; 4] = ["embeds", idx, "fields", &jdx];
        total += check_str(errors, f, "name", &fp, 256, true);
        total += check_str(errors, f, "value", &fp, 1024, true);
        if f.get("inline")
            .is_some_and(|v| !v.is_null() && !v.is_boolean())
        {
            push_err(
                errors,
                &["embeds", idx, "fields", &jdx, "inline"],
                "BOOLEAN_TYPE_CONVERT",
                "Must be either true or false.".into(),
            );
        }
    }
    total
}

/// `allowed_mentions` as Discord checks it: `parse` holds only "roles", "users", "everyone";
/// `roles` and `users` are lists of at most 100 snowflakes; a kind may not be both parsed and
/// listed; `replied_user` is a bool.
pub(super) fn check_allowed_mentions(errors: &mut Map<String, Value>, am: &Map<String, Value>) {
    let parse: Vec<&str> = match am.get("parse") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => {
            for (i, v) in a.iter().enumerate() {
                if !matches!(v.as_str(), Some("roles" | "users" | "everyone")) {
                    let idx = i.to_string();
                    push_err(
                        errors,
                        &["allowed_mentions", "parse", &idx],
                        "BASE_TYPE_CHOICES",
                        format!("Value must be one of {{'roles', 'users', 'everyone'}}, got {v}."),
                    );
                }
            }
            a.iter().filter_map(Value::as_str).collect()
        }
        Some(_) => {
            push_err(
                errors,
                &["allowed_mentions", "parse"],
                "BASE_TYPE_LIST",
                "Must be an array.".into(),
            );
            Vec::new()
        }
    };
    for kind in ["roles", "users"] {
        let list = match am.get(kind) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(a)) => a,
            Some(_) => {
                push_err(
                    errors,
                    &["allowed_mentions", kind],
                    "BASE_TYPE_LIST",
                    "Must be an array.".into(),
                );
                continue;
            }
        };
        if list.len() > 100 {
            push_err(
                errors,
                &["allowed_mentions", kind],
                "BASE_TYPE_MAX_LENGTH",
                "Must be 100 or fewer in length.".into(),
            );
        }
        let snowflake = |v: &Value| match v {
            Value::String(s) => !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()),
            Value::Number(n) => n.is_u64(),
            _ => false,
        };
        if !list.iter().all(snowflake) {
            push_err(
                errors,
                &["allowed_mentions", kind],
                "NUMBER_TYPE_COERCE",
                "Value is not snowflake.".into(),
            );
        }
        if !list.is_empty() && parse.contains(&kind) {
            push_err(
                errors,
                &["allowed_mentions"],
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                format!("parse:[\"{kind}\"] and {kind}: [ids...] are mutually exclusive."),
            );
        }
    }
    if am
        .get("replied_user")
        .is_some_and(|v| !v.is_null() && !v.is_boolean())
    {
        push_err(
            errors,
            &["allowed_mentions", "replied_user"],
            "BOOLEAN_TYPE_CONVERT",
            "Must be either true or false.".into(),
        );
    }
}

/// An ISO 8601 date-time as Discord's API (Python's `datetime`) reads it:
/// `YYYY-MM-DDTHH:MM[:SS[.ffffff]]` with an optional `Z` or `±HH:MM` offset, year 1..=9999, real
/// calendar dates, seconds below 60 (no leap second), offsets below 24 h.
pub(super) fn is_iso8601(s: &str) -> bool {
    fn num(s: &str, range: std::ops::RangeInclusive<u32>) -> Option<u32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok().filter(|n| range.contains(n))
    }
    let Some((date, time)) = s.split_once(['T', ' ']) else {
        return false;
    };
    let d: Vec<&str> = date.split('-').collect();
    let (Some(y), Some(m)) = (
        d.first()
            .filter(|y| y.len() == 4)
            .and_then(|y| num(y, 1..=9999)),
        d.get(1)
            .filter(|m| m.len() == 2)
            .and_then(|m| num(m, 1..=12)),
    ) else {
        return false;
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if d.len() != 3 || d[2].len() != 2 || num(d[2], 1..=days).is_none() {
        return false;
    }
    let (clock, offset) = if let Some(c) = time.strip_suffix('Z') {
        (c, None)
    } else if let Some(i) = time.rfind(['+', '-']) {
        (&time[..i], Some(&time[i + 1..]))
    } else {
        (time, None)
    };
    if let Some(o) = offset {
        let ok = o.len() == 5
            && o.as_bytes()[2] == b':'
            && num(&o[..2], 0..=23).is_some()
            && num(&o[3..], 0..=59).is_some();
        if !ok {
            return false;
        }
    }
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, "0"));
    let t: Vec<&str> = hms.split(':').collect();
    let two = |x: &&str| x.len() == 2;
    (2..=3).contains(&t.len())
        && t.iter().all(two)
        && num(t[0], 0..=23).is_some()
        && num(t[1], 0..=59).is_some()
        && t.get(2).is_none_or(|sec| num(sec, 0..=59).is_some())
        && (1..=6).contains(&frac.len())
        && num(frac, 0..=999_999).is_some()
}
