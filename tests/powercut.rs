//! Pulling the plug. The static x86_64 build runs in a VM (tests/powercut/vm.rs) with its
//! spool on an ext4 disk image; mail arrives in a real Dovecot on this machine and is delivered
//! to the fake Discord on this machine, through QEMU's restricted network. QEMU is killed at
//! random instants — a power cut: whatever the guest had not synced is gone — about a quarter
//! of them while the daemon is starting (sled recovering its log and writing a snapshot), the
//! others 0.3–8 s after it runs, some rounds with a sink answering 500 every third POST or a
//! 429. sled's segments are made small (the spool's test hook, src/spool/durable.rs), so it
//! writes blobs and reclaims segments all the time and cuts land during that work too. A few
//! cuts also on QEMU's Raspberry Pi 3B: the static aarch64 build with its spool on the board's
//! SD card (`-drive if=sd`), the storage path a real Pi has.
//!
//! Every boot the daemon must start by itself and open its spool: no boot may log sled's
//! `empty/corrupt configuration file found`, end the daemon, or need anything else. At the end
//! every mail must be acknowledged by the fake Discord (Message-IDs compared), spooled exactly
//! once and delivered in the spool; no cut may repeat more than one Discord message.
//!
//! `MAILBEACON_CUTS` sets the number of cuts on the x86 VM (10), `MAILBEACON_PI_CUTS` on the
//! Pi (3). The soak, which prints the figures on its last line:
//! `MAILBEACON_CUTS=200 cargo test --test integration powercut::x86 -- --nocapture`.

mod vm;

use crate::common::daemon::{mail, temp_dir};
use crate::common::dovecot::{Dovecot, PASSWORD};
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TOKEN: &str = "cutTOKEN";
/// sled's segment size in the guest: 16 KiB, so pages over 4 KiB become blobs.
const SEGMENT_SIZE: usize = 16 << 10;
/// The line the daemon logs once its spool is open and its workers run (src/daemon.rs).
const RUNNING: &str = " running: ";
/// What sled logs when it finds its `conf` file empty: written without a sync, cut.
const CONF_WARNING: &str = "empty/corrupt configuration file found";

fn config(dovecot: &Dovecot, webhook: &str) -> String {
    format!(
        "state_dir = \"/data/state\"\n\n\
         [[account]]\nname = \"home\"\nhost = \"localhost\"\nport = {port}\ntls = \"implicit\"\n\
         username = \"alice\"\npassword = \"{PASSWORD}\"\nca_file = \"/pc/ca.pem\"\n\
         folders = [\"INBOX\"]\npoll_interval = \"1s\"\nstart_at = \"all\"\n\n\
         [[sink]]\nname = \"cut\"\nkind = \"webhook\"\nurl = \"{url}\"\n\n\
         [[bucket]]\nname = \"unknown\"\nsinks = [\"cut\"]\n",
        port = dovecot.imaps_port(),
        url = webhook.replace("127.0.0.1", "localhost"),
    )
}

fn message_id(i: usize) -> String {
    format!("cut{i:05}@example.org")
}

/// The sink's behaviour in round `k`: mostly healthy, some rounds flaky or rate limited.
fn behaviour(k: usize) -> Behaviour {
    match k % 4 {
        1 => Behaviour::FlakyEvery(3),
        3 => Behaviour::RateLimited {
            retry_after: 1.5,
            scope: "user",
            global: false,
        },
        _ => Behaviour::Ok,
    }
}

/// What one boot showed that a user would have had to deal with, if anything.
fn trouble(console: &str) -> Option<String> {
    let bad = console.lines().find(|l| {
        l.contains(CONF_WARNING)
            || l.starts_with("@@ exited")
            || l.contains("mount failed")
            || l.contains("insmod")
            || l.contains("spool damaged")
            || l.contains("salvage")
            || l.contains("rebuilt")
    });
    bad.map(str::to_string)
}

fn cuts(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(default)
}

#[test]
fn x86_power_cuts_while_mail_arrives_lose_nothing() {
    let _one = crate::common::vm::one_at_a_time();
    let started = Instant::now();
    let parts = vm::parts();
    let (mailbeacon, relay) = vm::build();
    cut_and_check(
        "x86",
        started,
        &parts,
        &mailbeacon,
        relay,
        cuts("MAILBEACON_CUTS", 10),
    );
}

#[test]
fn pi_3b_power_cuts_with_the_spool_on_its_sd_card_lose_nothing() {
    let _one = crate::common::vm::one_at_a_time();
    let started = Instant::now();
    let parts = vm::pi_parts();
    let (mailbeacon, relay) = vm::build_pi();
    cut_and_check(
        "pi",
        started,
        &parts,
        &mailbeacon,
        relay,
        cuts("MAILBEACON_PI_CUTS", 3),
    );
}

/// The machine `parts` describes, running `mailbeacon` on `config` with sled's segment size
/// `segment` (0: sled's own) and a disk of `disk_mib`, reaching `dovecot` and `discord`.
#[allow(clippy::too_many_arguments)]
fn machine<'a>(
    name: &str,
    parts: &'a vm::Parts,
    mailbeacon: &std::path::Path,
    relay: std::path::PathBuf,
    dovecot: &Dovecot,
    discord: &FakeDiscord,
    segment: usize,
    disk_mib: u64,
) -> vm::Machine<'a> {
    let url = discord.webhook("777", TOKEN, Behaviour::Ok);
    let dir = temp_dir(&format!("powercut-{name}"));
    let config_file = dir.join("mailbeacon.toml");
    std::fs::write(&config_file, config(dovecot, &url)).expect("write config");
    let segment_file = dir.join("segment-size");
    let segment = if segment == 0 {
        String::new()
    } else {
        segment.to_string()
    };
    std::fs::write(&segment_file, segment).expect("write segment size");
    let initrd = vm::initramfs(
        &dir.join("initramfs"),
        parts,
        &[
            ("mailbeacon", mailbeacon),
            ("mailbeacon.toml", &config_file),
            ("ca.pem", &dovecot.ca_file()),
            ("segment-size", &segment_file),
        ],
    );
    let disk = dir.join("disk.img");
    vm::disk(&disk, disk_mib);
    let port = |u: &str| {
        u.rsplit_once(':')
            .and_then(|(_, p)| p.split('/').next()?.parse().ok())
            .expect("fake Discord port")
    };
    vm::Machine {
        parts,
        initrd,
        disk,
        relay,
        ports: vec![dovecot.imaps_port(), port(&discord.base())],
    }
}

/// The peak RSS the last boot's daemon reported (`@@ peak N kB`), in kB.
fn peak_kb(console: &str) -> Option<u64> {
    console
        .lines()
        .find_map(|l| l.strip_prefix("@@ peak "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// `cuts` power cuts of the machine `parts` describes running `mailbeacon`, then a last boot
/// that delivers everything; asserts what a user would notice, prints the figures.
fn cut_and_check(
    name: &str,
    started: Instant,
    parts: &vm::Parts,
    mailbeacon: &std::path::Path,
    relay: std::path::PathBuf,
    cuts: usize,
) {
    eprintln!(
        "powercut {name}: built in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let machine = machine(
        name,
        parts,
        mailbeacon,
        relay,
        &dovecot,
        &discord,
        SEGMENT_SIZE,
        64,
    );

    let next = AtomicUsize::new(0);
    let feeding = AtomicBool::new(true);
    let mut troubled: Vec<String> = Vec::new();
    let mut early = 0;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while feeding.load(Ordering::SeqCst) {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let id = message_id(i);
                let raw = mail("Sender <s@example.org>", &format!("Cut {id}"), "x", &id);
                dovecot.deliver("alice", "INBOX", &raw);
                std::thread::sleep(Duration::from_millis(fastrand::u64(100..600)));
            }
        });
        for k in 0..cuts {
            discord.set_behaviour(TOKEN, behaviour(k));
            let mut vm = machine.boot("run", 0);
            let start = vm.wait_for(Duration::from_secs(90), |l| l == "@@ start");
            assert!(
                start.is_some(),
                "boot {k}: init never started the daemon:\n{}",
                vm.console
            );
            if k % 4 == 2 {
                // While sled opens: recovery, the snapshot it writes, our syncs after it.
                early += 1;
                std::thread::sleep(Duration::from_millis(fastrand::u64(0..1500)));
            } else {
                let running = vm.wait_for(Duration::from_secs(90), |l| {
                    l.contains(RUNNING) || l.starts_with("@@ exited")
                });
                if running.as_deref().is_some_and(|l| l.contains(RUNNING)) {
                    std::thread::sleep(Duration::from_millis(fastrand::u64(300..8000)));
                } else {
                    vm.console
                        .push_str("@@ exited: the daemon did not come up by itself\n");
                }
            }
            vm.drain();
            let console = vm.cut();
            if let Some(line) = trouble(&console) {
                eprintln!("powercut {name}: boot {k} needed something ({line}):\n{console}");
                troubled.push(format!("boot {k}: {line}"));
            }
            eprintln!(
                "powercut {name}: cut {}/{cuts} at {:.0} s, {} mails sent, {} acknowledged",
                k + 1,
                started.elapsed().as_secs_f64(),
                next.load(Ordering::SeqCst),
                discord.delivered_titles(TOKEN).len()
            );
        }
        feeding.store(false, Ordering::SeqCst);
    });
    let mails = next.load(Ordering::SeqCst);

    // The last boot: no cut; the guest stops the daemon once the spool holds every mail
    // delivered, and dumps the spool with the daemon's own tool.
    discord.set_behaviour(TOKEN, Behaviour::Ok);
    let mut vm = machine.boot("final", mails);
    let done = vm.wait_for(Duration::from_secs(300), |l| l == "@@ done");
    let console = vm.cut();
    let kept = vm::target_dir().join(format!("powercut-{name}-last-console.txt"));
    let _ = std::fs::write(&kept, &console);
    eprintln!(
        "powercut {name}: the last boot's console is kept in {}",
        kept.display()
    );
    if let Some(line) = trouble(&console) {
        eprintln!("powercut {name}: the last boot needed something ({line})");
        troubled.push(format!("last boot: {line}"));
    }
    assert!(
        done.is_some(),
        "the last boot did not deliver every mail:\n{console}"
    );
    assert!(
        console.contains("@@ stopped rc=0"),
        "no clean stop:\n{console}"
    );
    assert!(
        console.contains("@@ dump-rc 0"),
        "spool dump failed:\n{console}"
    );
    let mut spooled: HashMap<String, usize> = HashMap::new();
    let mut undelivered = Vec::new();
    for line in console.lines().filter_map(|l| l.strip_prefix("@@ dump ")) {
        let item: serde_json::Value = serde_json::from_str(line).expect("dump line is JSON");
        let id = item["message_id"].as_str().unwrap_or("").to_string();
        if item["state"] != "delivered" {
            undelivered.push(id.clone());
        }
        *spooled.entry(id).or_default() += 1;
    }
    let files = console
        .lines()
        .find(|l| l.starts_with("@@ files"))
        .unwrap_or("");

    // What the channel shows.
    // Titles as a user reads them: the zero-width space that disarms an `@` taken out.
    let titles: Vec<String> = discord
        .delivered_titles(TOKEN)
        .iter()
        .map(|t| t.replace('\u{200b}', ""))
        .collect();
    let mut lost = Vec::new();
    let mut duplicates = 0;
    for i in 0..mails {
        let t = format!("Cut {}", message_id(i));
        match titles.iter().filter(|x| **x == t).count() {
            0 => lost.push(message_id(i)),
            n => duplicates += n - 1,
        }
    }
    let posts = discord.posts_to(TOKEN);
    let failed = posts.iter().filter(|r| r.status >= 400).count();
    let mut shown = HashSet::new();
    let mut repeated = 0;
    for post in posts.iter().filter(|r| (200..300).contains(&r.status)) {
        let t = post.embed_titles();
        if t.iter().any(|t| shown.contains(t)) {
            repeated += 1;
        }
        shown.extend(t);
    }
    let twice: Vec<_> = spooled.iter().filter(|(_, n)| **n > 1).collect();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "powercut {name}: {cuts} cuts ({early} while the daemon started) + the last boot, {mails} mails, \
         {} POSTs ({failed} answered 4xx/5xx), lost {}, duplicate mails {duplicates} ({:.2} per \
         cut) in {repeated} repeated messages, boots that needed anything: {}, spool {files}, \
         last boot's peak RSS {} kB; {secs:.0} s",
        posts.len(),
        lost.len(),
        duplicates as f64 / (cuts + 1) as f64,
        troubled.len(),
        peak_kb(&console).map_or("?".to_string(), |k| k.to_string()),
    );
    assert!(
        troubled.is_empty(),
        "boots that needed something: {troubled:?}"
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert_eq!(spooled.len(), mails, "every mail in the spool: {spooled:?}");
    assert!(twice.is_empty(), "mail spooled twice: {twice:?}");
    assert!(
        undelivered.is_empty(),
        "not delivered in the spool: {undelivered:?}"
    );
    // A cut can repeat the one POST whose answer was not yet recorded, never more.
    assert!(
        repeated <= cuts + 1,
        "{repeated} repeated messages for {} cuts",
        cuts + 1
    );
}

/// Memory on the board itself: the static aarch64 build catching up on a backlog in the
/// emulated Pi 3B, whose own kernel counts its pages as a Pi's does (this machine's kernel
/// maps the executable in large folios). `MAILBEACON_PI_BACKLOG` mails (5000) of about 1.5 KB
/// wait in Dovecot before the one boot; the daemon, with sled's own segment size and the
/// spool on the SD card, spools and delivers them all; its peak RSS (`VmHWM`) is printed.
/// Minutes of emulation, so not in CI:
/// `cargo test --test integration powercut::pi_3b_backlog -- --ignored --nocapture`.
#[test]
#[ignore]
fn pi_3b_backlog_peak_memory() {
    let _one = crate::common::vm::one_at_a_time();
    let started = Instant::now();
    let n = cuts("MAILBEACON_PI_BACKLOG", 5000);
    let parts = vm::pi_parts();
    let (mailbeacon, relay) = vm::build_pi();
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let machine = machine(
        "pi-backlog",
        &parts,
        &mailbeacon,
        relay,
        &dovecot,
        &discord,
        0,
        256,
    );
    let text = "Your order has shipped and should arrive within three working days. \
                Track it from your account page; reply if anything is wrong.\r\n";
    for i in 0..n {
        let id = message_id(i);
        let raw = mail(
            "Shop <orders@example.org>",
            &format!("Order {id}"),
            &text.repeat(14),
            &id,
        );
        dovecot.deliver("alice", "INBOX", &raw);
    }
    eprintln!(
        "powercut pi-backlog: {n} mails waiting after {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let mut vm = machine.boot("final", n);
    let done = vm.wait_for(Duration::from_secs(3600), |l| l == "@@ done");
    let console = vm.cut();
    assert!(done.is_some(), "the backlog was not delivered:\n{console}");
    let peak = peak_kb(&console).expect("the daemon's peak RSS");
    eprintln!(
        "powercut pi-backlog: {n} mails spooled and delivered on the emulated Pi 3B (aarch64, \
         static musl), peak RSS {:.1} MB; {:.0} s",
        peak as f64 * 1024.0 / 1e6,
        started.elapsed().as_secs_f64()
    );
    if let Some(parts) = console
        .lines()
        .find_map(|l| l.strip_prefix("@@ memory at "))
    {
        eprintln!("powercut pi-backlog: memory at {parts}");
    }
    // Health notices (the backlog past its warning level) go to the same channel: count mail.
    let titles = discord.delivered_titles(TOKEN);
    let orders = titles.iter().filter(|t| t.starts_with("Order ")).count();
    assert_eq!(orders, n, "every mail posted once");
}
