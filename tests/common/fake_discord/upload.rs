//! Messages with files in the fake Discord: `multipart/form-data` with `payload_json` and
//! `files[n]`, as Discord takes them. Past the upload limit (10 MiB for a webhook, or what
//! a test sets) the answer is Discord's 413 with code 40005, and nothing is created.

use super::*;

/// One uploaded file: its name, content type and bytes.
pub type File = (String, String, Vec<u8>);

impl FakeDiscord {
    /// Files larger than this, together, are refused (413, code 40005).
    pub fn set_upload_limit(&self, bytes: usize) {
        lock(&self.state).upload_limit = Some(bytes);
    }
}

/// The JSON part and the files of a multipart body, or `None` when it is not multipart.
pub(super) fn split(headers: &[(String, String)], raw: &[u8]) -> Option<(Vec<u8>, Vec<File>)> {
    let ct = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str())?;
    let boundary = ct
        .strip_prefix("multipart/form-data; boundary=")?
        .trim_matches('"');
    let marker = format!("--{boundary}");
    let mut json = Vec::new();
    let mut files = Vec::new();
    for part in split_on(raw, marker.as_bytes()).into_iter().skip(1) {
        if part.starts_with(b"--") {
            break;
        }
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let at = find(part, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&part[..at]).to_string();
        let body = part[at + 4..]
            .strip_suffix(b"\r\n")
            .unwrap_or(&part[at + 4..]);
        let param = |key: &str| {
            head.split(&format!("{key}=\""))
                .nth(1)?
                .split('"')
                .next()
                .map(str::to_string)
        };
        let name = param("name").unwrap_or_default();
        if name == "payload_json" {
            json = body.to_vec();
        } else if name.starts_with("files[") {
            let ctype = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Type: "))
                .unwrap_or("application/octet-stream")
                .to_string();
            files.push((param("filename").unwrap_or_default(), ctype, body.to_vec()));
        }
    }
    Some((json, files))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_on<'a>(raw: &'a [u8], marker: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some(at) = find(rest, marker) {
        out.push(&rest[..at]);
        rest = &rest[at + marker.len()..];
    }
    out.push(rest);
    out
}
