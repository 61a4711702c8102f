//! `dump`: `mailbeacon spool dump` (the real binary, no daemon: it opens the spool itself) of a
//! spool holding N items (`MAILBEACON_BENCH_DUMP_ITEMS`, default 1,000,000), written as the
//! watcher writes them. The bench reads the JSON lines from a pipe and samples the process's
//! `VmRSS` every 50 ms against how many lines have arrived: the dump's memory is bounded when
//! it stops growing with the items streamed, so the figure is the growth over the second half
//! of the dump, beside the RSS once the first item arrived (the spool opened) and the peak.

use crate::daemon::{mb, prepare_spool, write_config, BIN};
use crate::dovecot::Dovecot;
use crate::{env_usize, progress, temp_dir, Row};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn run() -> Vec<Row> {
    let n = env_usize("MAILBEACON_BENCH_DUMP_ITEMS", 1_000_000);
    progress("dump", "starting Dovecot (only for a valid config)");
    let dovecot = Dovecot::start();
    let dir = temp_dir("dump");
    let config = write_config(
        &dir,
        &dovecot,
        "http://127.0.0.1:9/api/webhooks/1/deadTOKEN",
    );
    let started = Instant::now();
    prepare_spool(&dir.join("state/spool"), 1, n);
    progress(
        "dump",
        &format!(
            "{n} items spooled in {:.1} s",
            started.elapsed().as_secs_f64()
        ),
    );
    let mut child = Command::new(BIN)
        .args(["spool", "dump", "--config"])
        .arg(&config)
        .env_remove("RUNTIME_DIRECTORY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mailbeacon spool dump");
    let pid = child.id();
    let lines = Arc::new(AtomicU64::new(0));
    let stdout = child.stdout.take().expect("dump's stdout");
    let counter = {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::with_capacity(1 << 16, stdout).split(b'\n') {
                if line.is_err() {
                    break;
                }
                lines.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // (lines so far, VmRSS) while the process lives.
    let mut samples: Vec<(u64, u64)> = Vec::new();
    while let Some(rss) = vm_rss(pid) {
        samples.push((lines.load(Ordering::Relaxed), rss));
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().expect("wait for the dump");
    let _ = counter.join();
    let _ = std::fs::remove_dir_all(&dir);
    let total = lines.load(Ordering::Relaxed);
    assert!(status.success(), "spool dump failed: {status}");
    assert_eq!(total, n as u64, "every item dumped");
    let at = |share: f64| -> u64 {
        let mark = (total as f64 * share) as u64;
        samples
            .iter()
            .filter(|(l, _)| *l >= mark.max(1))
            .map(|(_, r)| *r)
            .next()
            .unwrap_or(0)
    };
    let opened = at(0.0);
    let half = at(0.5);
    let peak = samples.iter().map(|(_, r)| *r).max().unwrap_or(0);
    let growth = peak.saturating_sub(half);
    progress(
        "dump",
        &format!(
            "RSS: first item {}, half {}, peak {}",
            mb(opened),
            mb(half),
            mb(peak)
        ),
    );
    vec![Row::new(
        "dump",
        &format!("spool dump of {n} items: RSS growth over the second half"),
        mb(growth),
    )
    .goal(
        "bounded (≤ 5 % of peak)",
        growth as f64 <= peak as f64 * 0.05,
    )
    .note(&format!(
        "RSS {} when the first item arrived, {} at half, peak {}",
        mb(opened),
        mb(half),
        mb(peak)
    ))]
}

/// `VmRSS` of a live process in bytes; `None` once it is gone.
fn vm_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}
