//! The LED and buzzer on a Raspberry Pi, as the kernel drives them: the aarch64 release build
//! runs in QEMU's emulated Pi 3B on Debian's arm64 kernel, whose own `pinctrl-bcm2835` driver
//! owns GPIO17 (LED) and GPIO27 (buzzer). The daemon finds the chip by its label through the
//! `cdev` backend; `gpio_watch` reads the kernel's view of both lines from debugfs while it
//! runs. The VM boots once; tests/pi/init.sh runs every scenario in turn.
//!
//! Emulated CPUs are slow and noisy: patterns are judged by shape and rough rate (a 4 Hz blink
//! is neither a 1 Hz one nor a 2 s heartbeat), never to the millisecond.
//!
//! Skipped, loudly, only when QEMU cannot start at all. Locally (as root: `.ci/pi-vm`
//! installs QEMU and downloads the kernel once into target/pi-vm/):
//! `cargo test --test integration pi:: -- --nocapture`.

// Its `main` runs on the emulated Pi (compiled there by tests/pi/vm.rs); here only its parsers,
// which trace.rs tests.
#[allow(dead_code)]
mod gpio_watch;
mod trace;
mod vm;

use mailbeacon::config::Severity;
use mailbeacon::spool::{Cursor, NewItem, Spool};
use std::path::Path;
use std::time::{Duration, Instant};
use trace::{median, Trace};
use vm::Section;

/// Pending mails in the spool the alarm scenario starts with; tests/pi/alarm.toml alarms above 5.
const PENDING: u32 = 8;

fn skip_loudly(why: &str) {
    let bar = "!".repeat(78);
    eprintln!("{bar}\n!! SKIPPED: the emulated Raspberry Pi test did not run.\n!! {why}\n{bar}");
}

/// The spool of tests/pi/alarm.toml, written here on the host: the ARM binary must read the
/// x86 one's sled files (same endianness and word size, so the same format).
fn write_spool(state_dir: &Path) {
    let spool = Spool::open(&state_dir.join("spool"), 1 << 20).expect("open spool");
    let items: Vec<NewItem> = (1..=PENDING)
        .map(|uid| {
            let raw = format!(
                "From: Shop <orders@example.net>\r\nTo: me@example.net\r\n\
                 Subject: spooled on the host {uid}\r\nMessage-ID: <pi-{uid}@example.net>\r\n\r\nbody\r\n"
            );
            NewItem {
                bucket: "unknown".to_string(),
                severity: Severity::P3,
                uid,
                mail: (&mailbeacon::mail::summarize(raw.as_bytes())).into(),
                sinks: vec!["alerts".to_string()],
            }
        })
        .collect();
    let cursor = Cursor {
        uidvalidity: 7,
        last_uid: PENDING,
    };
    let ids = spool
        .ingest("home", "INBOX", cursor, &items, false)
        .expect("ingest");
    assert_eq!(ids.len(), PENDING as usize);
    spool.flush().expect("flush");
}

#[test]
fn led_and_buzzer_on_an_emulated_pi_3b() {
    let _one = crate::common::vm::one_at_a_time();
    let start = Instant::now();
    let parts = match vm::parts() {
        Ok(p) => p,
        Err(why) => match vm::qemu_missing() {
            Some(qemu) => return skip_loudly(&format!("{qemu}; {why}")),
            None => panic!("{why}"),
        },
    };
    if let Some(why) = vm::qemu_missing() {
        return skip_loudly(&why);
    }
    let (mailbeacon, watch) = vm::build(start);
    let root = vm::target_dir().join(format!("pi-vm/run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    write_spool(&root.join("pi/state-alarm"));
    let image = vm::initramfs(&root, &parts, &mailbeacon, &watch);
    let console = match vm::boot(&parts, &image, Duration::from_secs(240), start) {
        Ok(c) => c,
        Err(why) => return skip_loudly(&format!("QEMU cannot start: {why}")),
    };
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_file(&image);
    assert!(
        console.done,
        "the emulated Pi did not finish its scenarios within 240 s; console:\n{}",
        console.all
    );
    let section = |name: &str| -> &Section {
        console
            .sections
            .get(name)
            .unwrap_or_else(|| panic!("no section {name} on the console:\n{}", console.all))
    };

    cli_runs_on_the_arm_kernel(section("version"), section("check"), section("selftest"));
    assert!(
        section("chips").text().contains("pinctrl-bcm2835"),
        "the kernel's GPIO view:\n{}",
        section("chips").text()
    );
    selftest_then_imap_down(section("imap-down"));
    spool_alarm_then_sigterm(section("spool-ls"), section("alarm"));
    wrong_chip(section("wrong-chip"));
    line_in_use(section("line-in-use"));
    eprintln!(
        "pi: every scenario passed in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

fn cli_runs_on_the_arm_kernel(version: &Section, check: &Section, selftest: &Section) {
    assert_eq!(version.rc, Some(0), "{}", version.text());
    assert!(
        version
            .text()
            .contains(concat!("mailbeacon ", env!("CARGO_PKG_VERSION"))),
        "{}",
        version.text()
    );
    assert_eq!(
        check.rc,
        Some(0),
        "check of the example config:\n{}",
        check.text()
    );
    assert_eq!(selftest.rc, Some(0), "{}", selftest.text());
    let text = selftest.text();
    assert!(text.contains("selftest on aarch64-linux"), "{text}");
    assert!(text.contains("selftest passed"), "{text}");
}

fn no_panic(s: &Section) {
    assert!(!s.text().contains("panicked"), "{}", s.text());
}

/// Both lines were claimed under mailbeacon's names and, after SIGTERM, neither is held any
/// more and neither was left driven high: the Pi's driver turns a released line into an input,
/// and the emulated pad keeps reading the level last driven.
fn stopped_cleanly(s: &Section, led: &Trace, buzzer: &Trace) {
    assert_eq!(s.rc, Some(0), "exit code after SIGTERM\n{}", s.text());
    let sigterm = s.mark("sigterm");
    for (t, consumer) in [(led, "mailbeacon-led"), (buzzer, "mailbeacon-buzzer")] {
        assert!(
            t.claimed_by(consumer).is_some(),
            "never held by {consumer}: {}",
            t.show()
        );
        let last = t.last();
        assert!(
            last.is_some_and(|l| l.consumer.is_none()),
            "{} still held after exit: {}",
            t.name,
            t.show()
        );
        assert!(
            last.is_some_and(|l| !l.high),
            "{} left high after SIGTERM at {sigterm:.3}: {}",
            t.name,
            t.show()
        );
    }
}

/// The boot self-test: three LED blinks of about 200 ms and, with the first, one short chirp.
/// Returns when the sweep ended.
fn selftest_sweep(led: &Trace, buzzer: &Trace) -> f64 {
    let sweep: Vec<_> = led.pulses().into_iter().take(3).collect();
    let widths: Vec<f64> = sweep.iter().filter_map(|p| p.width()).collect();
    assert!(
        widths.len() == 3 && widths.iter().all(|w| (0.1..0.6).contains(w)),
        "the self-test sweep (three ~200 ms blinks) is missing: {}",
        led.show()
    );
    let gaps: Vec<f64> = sweep.windows(2).map(|w| w[1].start - w[0].start).collect();
    assert!(
        gaps.iter().all(|g| (0.25..1.2).contains(g)),
        "the sweep's blinks should start ~400 ms apart: {gaps:?}\n{}",
        led.show()
    );
    // A stalled watcher sees a rise late: judge the chirp by the longest it can have lasted.
    let chirp = buzzer.pulses().first().copied();
    assert!(
        chirp.is_some_and(|c| (c.start - sweep[0].start).abs() < 0.3
            && c.width().is_some_and(|w| w < 0.5)
            && c.longest().is_some_and(|w| w >= 0.03)),
        "one short chirp with the first blink: {}\n{}",
        buzzer.show(),
        led.show()
    );
    sweep[2].end.unwrap_or(f64::MAX)
}

fn selftest_then_imap_down(s: &Section) {
    let (led, buzzer) = (Trace::of("led", &s.lines), Trace::of("buzzer", &s.lines));
    let shown = format!("{}\n{}\n{}", led.show(), buzzer.show(), s.text());
    no_panic(s);
    assert!(
        s.text()
            .contains("indicator: GPIO chip pinctrl-bcm2835, led line 17, buzzer line 27"),
        "{shown}"
    );
    assert!(
        s.text().contains("health: dead: imap home/INBOX backoff"),
        "{shown}"
    );
    let swept = selftest_sweep(&led, &buzzer);
    let sigterm = s.mark("sigterm");
    // After the self-test's chirp, exactly one: on entering "dead" when the name lookup failed.
    let chirps: Vec<_> = buzzer
        .pulses()
        .into_iter()
        .skip(1)
        .filter(|p| p.start < sigterm)
        .collect();
    assert!(
        chirps.len() == 1 && chirps[0].width().is_some_and(|w| (0.07..0.5).contains(&w)),
        "IMAP down should chirp once (150 ms) after the self-test: {chirps:?}\n{shown}"
    );
    let dead = chirps[0].start;
    // While the lookup was still pending the state was ok: a 100 ms heartbeat every 2 s.
    let beats: Vec<_> = led
        .pulses()
        .into_iter()
        .filter(|p| p.start > swept && p.end.is_some_and(|e| e < dead - 0.05))
        .collect();
    if dead - swept > 2.5 {
        assert!(
            !beats.is_empty()
                && beats.iter().all(|p| p.width().is_some_and(|w| w < 0.25))
                && beats.windows(2).all(|w| w[1].start - w[0].start > 1.5),
            "before IMAP failed the LED should show the ok heartbeat (100 ms every 2 s):\n{shown}"
        );
    }
    // The fast blink, from the chirp to SIGTERM.
    let window = sigterm - dead;
    assert!(window > 2.5, "too short a run to judge: {shown}");
    let blinks: Vec<_> = led
        .pulses()
        .into_iter()
        .filter(|p| p.start >= dead && p.end.is_some_and(|e| e <= sigterm))
        .collect();
    let rate = blinks.len() as f64 / window;
    let width = median(blinks.iter().filter_map(|p| p.width()).collect());
    assert!(
        (2.5..6.0).contains(&rate) && (0.05..0.25).contains(&width),
        "IMAP down should blink fast (4 Hz, 125 ms on): saw {rate:.1}/s, {width:.3} s on\n{shown}"
    );
    stopped_cleanly(s, &led, &buzzer);
}

fn spool_alarm_then_sigterm(ls: &Section, s: &Section) {
    // The host's sled files read back by the ARM binary.
    assert_eq!(ls.rc, Some(0), "{}", ls.text());
    for uid in 1..=PENDING {
        assert!(
            ls.text().contains(&format!("spooled on the host {uid}")),
            "spool ls on the Pi misses mail {uid}:\n{}",
            ls.text()
        );
    }
    let (led, buzzer) = (Trace::of("led", &s.lines), Trace::of("buzzer", &s.lines));
    let shown = format!("{}\n{}\n{}", led.show(), buzzer.show(), s.text());
    no_panic(s);
    assert!(
        s.text()
            .contains("health: alarm: 8 mails pending (alarm above 5)")
            && s.text().contains("Unknown Webhook"),
        "the sink should be dead and the spool in alarm:\n{shown}"
    );
    let swept = selftest_sweep(&led, &buzzer);
    let sigterm = s.mark("sigterm");
    // Solid on: lit for the last 3 s before SIGTERM, without a single dark moment.
    let from = sigterm - 3.0;
    assert!(from > swept, "too short a run to judge: {shown}");
    assert!(
        led.at(from).is_some_and(trace::Line::is_high) && led.between(from, sigterm).is_empty(),
        "spool alarm should hold the LED solid on:\n{shown}"
    );
    let tones: Vec<_> = buzzer
        .pulses()
        .into_iter()
        .filter(|p| p.width().is_some_and(|w| w >= 0.6))
        .collect();
    assert!(
        tones.len() == 1 && tones[0].width().is_some_and(|w| w < 2.5) && tones[0].start > swept,
        "spool alarm should sound one long tone (1 s): {tones:?}\n{shown}"
    );
    stopped_cleanly(s, &led, &buzzer);
}

fn wrong_chip(s: &Section) {
    let text = s.text();
    no_panic(s);
    assert_eq!(s.rc, Some(1), "{text}");
    assert!(
        text.contains("no GPIO chip labelled pinctrl-bcm2711 (found: ")
            && text.contains("gpiochip0 = pinctrl-bcm2835")
            && text.contains("set indicator.chip = \"pinctrl-bcm2835\""),
        "the error should name the chip asked for and the one found:\n{text}"
    );
    for name in ["led", "buzzer"] {
        let t = Trace::of(name, &s.lines);
        assert!(
            t.changes.iter().all(|(_, l)| l.consumer.is_none()),
            "nothing may be claimed on a wrong chip: {}",
            t.show()
        );
    }
}

fn line_in_use(s: &Section) {
    let text = s.text();
    no_panic(s);
    assert_eq!(s.rc, Some(1), "{text}");
    assert!(
        text.contains("line 27 (buzzer) on pinctrl-bcm2835 is in use by 'sysfs'"),
        "the error should name chip, line and holder:\n{text}"
    );
    let buzzer = Trace::of("buzzer", &s.lines);
    assert!(
        buzzer.claimed_by("sysfs").is_some(),
        "the buzzer line should have been held through sysfs: {}",
        buzzer.show()
    );
    let led = Trace::of("led", &s.lines);
    assert!(
        led.last().is_some_and(|l| l.consumer.is_none()),
        "the LED line must be let go when the buzzer's cannot be had: {}",
        led.show()
    );
}
