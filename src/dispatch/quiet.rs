//! Quiet hours in chat: during `[indicator] quiet_hours` (the device's local time), a P2 or P3
//! bucket's messages carry Discord's SUPPRESS_NOTIFICATIONS flag — they arrive, silently, with
//! no push or desktop notification. P0 and P1, and buckets with `quiet = false`, notify as
//! always (the bucket's `quiet` window is `None` then: src/config/notices.rs).

use crate::config::Bucket;

/// Discord's message flag 1 << 12: no push or desktop notification.
pub(crate) const SUPPRESS_NOTIFICATIONS: u64 = 1 << 12;

/// Marks `body` silent when `bucket` is quiet at local minute-of-day `minute`.
pub(crate) fn silence(body: &mut serde_json::Value, bucket: Option<&Bucket>, minute: u32) {
    let quiet = bucket.and_then(|b| b.quiet);
    if quiet.is_some() && crate::indicator::in_quiet_hours(quiet, minute) {
        let flags = body["flags"].as_u64().unwrap_or(0) | SUPPRESS_NOTIFICATIONS;
        body["flags"] = serde_json::json!(flags);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Mode, Severity};

    fn bucket(quiet: Option<(u32, u32)>) -> Bucket {
        Bucket {
            name: "news".into(),
            severity: Severity::P3,
            mode: Mode::Push,
            sinks: vec!["alerts".into()],
            rules: vec![],
            mention: None,
            digest_every: None,
            fallback: None,
            escalate_after: None,
            audit: None,
            quiet,
            applied_tags: Vec::new(),
            thread_id: None,
            upload_max: None,
            after_delivery: None,
        }
    }

    #[test]
    fn a_quiet_bucket_is_silent_only_inside_its_hours() {
        let night = Some((22 * 60, 7 * 60));
        let mut body = serde_json::json!({ "content": "x" });
        silence(&mut body, Some(&bucket(night)), 12 * 60);
        assert!(body.get("flags").is_none(), "noon is not quiet");
        silence(&mut body, Some(&bucket(night)), 23 * 60);
        assert_eq!(body["flags"], 4096);
        let mut loud = serde_json::json!({ "content": "x" });
        silence(&mut loud, Some(&bucket(None)), 23 * 60);
        silence(&mut loud, None, 23 * 60);
        assert!(
            loud.get("flags").is_none(),
            "P0/P1 and opted-out buckets notify"
        );
    }
}
