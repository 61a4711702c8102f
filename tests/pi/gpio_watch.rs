//! Prints what the kernel says about some GPIO lines each time it changes: the emulated-Pi test
//! (tests/pi.rs) runs it beside the daemon to see the LED and buzzer as the kernel drives them.
//! It uses std alone, so tests/pi/vm.rs compiles it for the Pi with a bare `rustc` (a cargo
//! target would bring the dev-dependencies' features into the release build it sits beside).
//!
//! ```text
//! gpio_watch CHIP_LABEL NAME=LINE...      e.g. gpio_watch pinctrl-bcm2835 led=17 buzzer=27
//! ```
//!
//! In a tight loop it reads two debugfs views (debugfs must be mounted): the pin controller's
//! (`/sys/kernel/debug/pinctrl/*-CHIP_LABEL/pins`: the pad's function and level, whoever holds
//! it) and gpiolib's (`/sys/kernel/debug/gpio`: who holds the line). On each change it prints
//! `T <seconds since boot> since=<the sample before> NAME=STATE...`, STATE being `FUNCTION-LEVEL[:CONSUMER]`:
//! `out-hi:mailbeacon-led` (driven high by mailbeacon), `in-lo:sysfs` (an input held through
//! sysfs), `in-lo` (nobody holds it; the Pi's driver turns a released line into an input).

use std::io::Write;
use std::time::{Duration, Instant};

const GPIO: &str = "/sys/kernel/debug/gpio";
const PINCTRL: &str = "/sys/kernel/debug/pinctrl";

/// Who holds line `offset` of the chip labelled `label` in gpiolib's text, which lists each chip
/// as `gpiochipN: GPIOs BASE-END, parent: …, LABEL[, can sleep]:` followed by one line per GPIO:
/// ` gpio-NUM (NAME                |CONSUMER            ) out hi` (only a held line has a
/// consumer). `None`: no such line; `Some("")`: nobody.
pub fn holder(text: &str, label: &str, offset: u32) -> Option<String> {
    let mut base = None;
    for line in text.lines() {
        if line.starts_with("gpiochip") {
            base = line
                .trim_end()
                .strip_suffix(':')
                .filter(|l| l.split(", ").any(|part| part == label))
                .and_then(|l| l.split_once("GPIOs "))
                .and_then(|(_, rest)| rest.split(['-', ',']).next())
                .and_then(|n| n.trim().parse::<u32>().ok());
            continue;
        }
        let Some(base) = base else { continue };
        let Some((num, rest)) = line
            .trim_start()
            .strip_prefix("gpio-")
            .and_then(|r| r.split_once(' '))
        else {
            continue;
        };
        if num.parse::<u32>().ok() == Some(base + offset) {
            let inside = rest.split_once(')').map_or(rest, |(i, _)| i);
            return Some(
                inside
                    .split_once('|')
                    .map_or("", |(_, c)| c.trim())
                    .to_string(),
            );
        }
    }
    None
}

/// The pad of pin `offset` in the pin controller's text:
/// `pin 17 (gpio17) 0:? function gpio_out in hi; irq 112 (none)` gives `out-hi`.
pub fn pad(text: &str, offset: u32) -> Option<String> {
    let prefix = format!("pin {offset} (");
    let line = text.lines().find(|l| l.starts_with(&prefix))?;
    let (_, rest) = line.split_once("function ")?;
    let mut words = rest.split([' ', ';']).filter(|w| !w.is_empty());
    let function = words.next()?;
    let level = match (words.next(), words.next()) {
        (Some("in"), Some(level)) => level,
        _ => "?",
    };
    Some(format!(
        "{}-{level}",
        function.strip_prefix("gpio_").unwrap_or(function)
    ))
}

/// One line's STATE from both views.
pub fn state(gpio: &str, pins: &str, label: &str, offset: u32) -> String {
    let pad = pad(pins, offset).unwrap_or_else(|| "missing".to_string());
    match holder(gpio, label, offset) {
        None => format!("{pad}:?"),
        Some(c) if c.is_empty() => pad,
        Some(c) => format!("{pad}:{c}"),
    }
}

/// The `pins` file of the pin controller whose directory is named `…-LABEL`.
fn pins_file(label: &str) -> Option<std::path::PathBuf> {
    std::fs::read_dir(PINCTRL)
        .ok()?
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(label))
        .map(|e| e.path().join("pins"))
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| {
        eprintln!("gpio_watch: {}: {e}", path.display());
        std::process::exit(1);
    })
}

fn uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Asks for a real-time priority (SCHED_FIFO) so that a busy daemon on the slow emulated CPU
/// cannot starve the sampling; it sleeps between reads, so it takes little from anyone.
/// (musl's `sched_setscheduler` is a stub; its `pthread_setschedparam` is the real call.)
fn prefer_me() {
    #[repr(C)]
    struct SchedParam {
        priority: i32,
    }
    extern "C" {
        fn pthread_self() -> usize;
        fn pthread_setschedparam(thread: usize, policy: i32, param: *const SchedParam) -> i32;
    }
    const SCHED_FIFO: i32 = 1;
    let param = SchedParam { priority: 50 };
    // SAFETY: plain calls on this (single-threaded) process with a parameter that outlives them.
    let err = unsafe { pthread_setschedparam(pthread_self(), SCHED_FIFO, &param) };
    if err != 0 {
        let e = std::io::Error::from_raw_os_error(err);
        eprintln!("gpio_watch: no real-time priority: {e}");
    }
}

pub fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((label, wanted)) = args.split_first() else {
        eprintln!("usage: gpio_watch CHIP_LABEL NAME=LINE...");
        std::process::exit(2);
    };
    let pins_wanted: Vec<(&str, u32)> = wanted
        .iter()
        .filter_map(|p| {
            let (name, line) = p.split_once('=')?;
            Some((name, line.parse().ok()?))
        })
        .collect();
    if pins_wanted.is_empty() {
        eprintln!("gpio_watch: no NAME=LINE given");
        std::process::exit(2);
    }
    prefer_me();
    // One clock with the shell's `cat /proc/uptime`, at the resolution of Instant.
    let (boot, start) = (uptime(), Instant::now());
    let mut last = String::new();
    let mut previous = boot;
    let mut out = std::io::stdout().lock();
    let Some(pins_path) = pins_file(label) else {
        eprintln!("gpio_watch: no pin controller {label} under {PINCTRL}");
        std::process::exit(1);
    };
    loop {
        let gpio = read(std::path::Path::new(GPIO));
        let pins = read(&pins_path);
        let now: Vec<String> = pins_wanted
            .iter()
            .map(|(name, line)| format!("{name}={}", state(&gpio, &pins, label, *line)))
            .collect();
        let now = now.join(" ");
        let t = boot + start.elapsed().as_secs_f64();
        if now != last {
            // `since`: the sample before, which still saw the old state. The change happened
            // between the two; on a stalled emulated CPU they can be far apart.
            if writeln!(out, "T {t:.3} since={previous:.3} {now}")
                .and_then(|()| out.flush())
                .is_err()
            {
                std::process::exit(1);
            }
            last = now;
        }
        previous = t;
        std::thread::sleep(Duration::from_millis(2));
    }
}
