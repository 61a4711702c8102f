use super::*;
use crate::mail::Summary;

fn wb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/io").unwrap();
    s.lines().find(|l| l.starts_with("write_bytes:")).unwrap()[12..]
        .trim()
        .parse()
        .unwrap()
}
fn dev() -> u64 {
    let _ = std::process::Command::new("sync").status();
    let Ok(l) = std::env::var("LOOP") else {
        return 0;
    };
    let s = std::fs::read_to_string(format!("/sys/block/{l}/stat")).unwrap();
    s.split_whitespace().nth(6).unwrap().parse::<u64>().unwrap() * 512
}

fn words(seed: u32, n: usize) -> String {
    const W: &[&str] = &[
        "order",
        "shipped",
        "arrive",
        "within",
        "three",
        "working",
        "days",
        "track",
        "account",
        "page",
        "reply",
        "anything",
        "wrong",
        "hello",
        "regards",
        "invoice",
        "payment",
        "received",
        "thank",
        "you",
        "for",
        "your",
        "purchase",
        "the",
        "a",
        "of",
        "to",
        "and",
        "is",
        "in",
        "we",
        "will",
        "send",
        "tracking",
        "number",
        "soon",
        "please",
        "contact",
        "support",
        "if",
        "have",
        "questions",
        "about",
        "delivery",
        "address",
        "changed",
        "refund",
        "processed",
        "customer",
        "service",
        "team",
        "item",
        "returned",
        "warehouse",
        "parcel",
        "courier",
        "monday",
        "friday",
        "weekend",
        "update",
        "status",
    ];
    let mut r = fastrand::Rng::with_seed(seed as u64);
    let mut s = String::new();
    while s.len() < n {
        s.push_str(W[r.usize(..W.len())]);
        s.push(if r.u8(..10) == 0 { '.' } else { ' ' });
    }
    s.truncate(n);
    s
}
#[test]
#[ignore]
fn wear_probe() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let d = std::env::temp_dir().join(format!("wear-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let spool = Spool::open(&d, 64 << 20).unwrap();
    let (w0, d0) = (wb(), dev());
    let text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(9);
    let mut uid = 1;
    for chunk in 0..n / 50 {
        let items: Vec<NewItem> = (0..50)
            .map(|i| {
                uid += 1;
                NewItem {
                    bucket: "orders".into(),
                    severity: crate::config::Severity::P3,
                    uid,
                    summary: Summary {
                        from: "Shop <orders@shop.example>".into(),
                        to: "me@example.org".into(),
                        subject: format!("Order {chunk}-{i} confirmed"),
                        message_id: Some(format!("<catchup-{uid}@shop.example>")),
                        date: Some("2026-09-01T10:00:00Z".into()),
                        snippet: words(uid, 480),
                        ..Summary::default()
                    },
                    sinks: vec!["hook".into()],
                }
            })
            .collect();
        spool
            .ingest(
                "a",
                "INBOX",
                Cursor {
                    uidvalidity: 1,
                    last_uid: uid,
                },
                &items,
                false,
            )
            .unwrap();
    }
    let (w1, d1) = (wb(), dev());
    let enc = encode(&spool.iter().next().unwrap().unwrap()).len();
    loop {
        let batch = spool
            .pending_for(
                "hook",
                std::env::var("B")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(10),
            )
            .unwrap();
        if batch.is_empty() {
            break;
        }
        let ups: Vec<(u64, Update)> = batch
            .iter()
            .map(|i| {
                (
                    i.id,
                    Update::Delivered {
                        message_id: format!("{}", i.id),
                        at: 5,
                    },
                )
            })
            .collect();
        spool.record("hook", &ups).unwrap();
    }
    let (w2, d2) = (wb(), dev());
    drop(spool);
    let w3 = wb();
    let du = std::process::Command::new("du")
        .arg("-sk")
        .arg(&d)
        .output()
        .unwrap();
    eprintln!(
        "PROBE n={n} item={enc}B spool={:.2} KiB/mail deliver={:.2} KiB/mail close={:.1} KiB du={}",
        (w1 - w0) as f64 / 1024.0 / n as f64,
        (w2 - w1) as f64 / 1024.0 / n as f64,
        (w3 - w2) as f64 / 1024.0,
        String::from_utf8_lossy(&du.stdout).trim()
    );
    eprintln!(
        "DEVICE spool={:.2} KiB/mail deliver={:.2} KiB/mail",
        (d1 - d0) as f64 / 1024.0 / n as f64,
        (d2 - d1) as f64 / 1024.0 / n as f64
    );
    let _ = std::fs::remove_dir_all(&d);
}
