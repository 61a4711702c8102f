//! What the demo shows: narration lines, and the `sim` LED and buzzer read live from the
//! daemon's trace file. On a terminal the bottom line is redrawn at every edge (the LED lit or
//! dark, the buzzer sounding, the health pattern, the spool); otherwise (CI, a pipe, `--plain`)
//! nothing is redrawn and each change of pattern is printed once.

use super::process::lock;
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct View {
    led: bool,
    buzzer: bool,
    /// LED edges seen, with the instant each was read.
    led_edges: Vec<Instant>,
    buzzer_chirps: u64,
    pattern: String,
    detail: String,
}

pub(crate) struct Screen {
    live: bool,
    view: Arc<Mutex<View>>,
    stop: Arc<AtomicBool>,
}

const CLEAR_LINE: &str = "\r\x1b[2K";

impl Screen {
    pub(crate) fn new(live: bool) -> Screen {
        Screen {
            live,
            view: Arc::new(Mutex::new(View::default())),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A narration line (on a terminal, above the redrawn LED line).
    pub(crate) fn say(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        if self.live && !self.stop.load(Ordering::Relaxed) {
            let _ = write!(out, "{CLEAR_LINE}{text}\n{}", led_line(&lock(&self.view)));
        } else {
            let _ = writeln!(out, "{text}");
        }
        let _ = out.flush();
    }

    /// Follows the trace file the daemon's `sim` indicator appends to.
    pub(crate) fn follow(&self, trace: PathBuf) {
        let (view, stop, live) = (self.view.clone(), self.stop.clone(), self.live);
        let _ = std::thread::Builder::new()
            .name("demo-led".into())
            .spawn(move || tail(&trace, &view, &stop, live));
    }

    /// The health pattern and a short state line from the latest `status`; in plain mode a
    /// change of pattern is printed.
    pub(crate) fn update(&self, pattern: &str, detail: String) {
        let changed = {
            let mut v = lock(&self.view);
            let changed = v.pattern != pattern;
            v.pattern = pattern.to_string();
            v.detail = detail;
            changed
        };
        if self.live {
            self.redraw();
        } else if changed {
            self.say(&format!("   [LED] {pattern}: {}", meaning(pattern)));
        }
    }

    /// LED edges read within the last `window`, and buzzer chirps so far.
    pub(crate) fn activity(&self, window: Duration) -> (usize, u64) {
        let v = lock(&self.view);
        let recent = v.led_edges.iter().filter(|t| t.elapsed() <= window).count();
        (recent, v.buzzer_chirps)
    }

    fn redraw(&self) {
        if !self.stop.load(Ordering::Relaxed) {
            redraw(&lock(&self.view));
        }
    }

    /// Clears the LED line (on a terminal) before the last words.
    pub(crate) fn finish(&self) {
        if !self.stop.swap(true, Ordering::Relaxed) && self.live {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{CLEAR_LINE}");
            let _ = out.flush();
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.finish();
    }
}

fn redraw(v: &View) {
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{CLEAR_LINE}{}", led_line(v));
    let _ = out.flush();
}

/// `  LED ●  buzzer ♪  dead — …` with the LED in the pattern's colour.
fn led_line(v: &View) -> String {
    let colour = match v.pattern.as_str() {
        "ok" => "32",
        "backlog" | "selftest" => "33",
        "dead" | "alarm" => "31",
        _ => "90",
    };
    let led = if v.led {
        format!("\x1b[1;{colour}m●\x1b[0m")
    } else {
        "\x1b[90m○\x1b[0m".to_string()
    };
    let buzzer = if v.buzzer { "\x1b[1m♪\x1b[0m" } else { " " };
    format!(
        "   LED {led}  buzzer {buzzer}  \x1b[{colour}m{}\x1b[0m  {}",
        v.pattern, v.detail
    )
}

pub(crate) fn meaning(pattern: &str) -> &'static str {
    match pattern {
        "selftest" => "three blinks at boot, one chirp",
        "ok" => "a short heartbeat blink every 2 s",
        "backlog" => "slow blink, 1 Hz",
        "dead" => "fast blink, 4 Hz, and a buzzer chirp",
        "alarm" => "solid on, and a long tone",
        _ => "off",
    }
}

/// Reads new trace lines every 50 ms until `stop`.
fn tail(path: &PathBuf, view: &Mutex<View>, stop: &AtomicBool, live: bool) {
    let mut offset = 0u64;
    let mut partial = String::new();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        let Ok(mut f) = std::fs::File::open(path) else {
            continue;
        };
        if f.seek(std::io::SeekFrom::Start(offset)).is_err() {
            continue;
        }
        let mut reader = BufReader::new(f);
        let mut changed = false;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(n) => offset += n as u64,
            }
            partial.push_str(&line);
            if !partial.ends_with('\n') {
                continue;
            }
            changed |= apply(&mut lock(view), &partial);
            partial.clear();
        }
        if changed && live && !stop.load(Ordering::Relaxed) {
            redraw(&lock(view));
        }
    }
}

/// One trace line `{"t":…,"pin":"led"|"buzzer"|"led2","level":0|1}`.
fn apply(v: &mut View, line: &str) -> bool {
    let Ok(edge) = serde_json::from_str::<serde_json::Value>(line) else {
        return false;
    };
    let on = edge["level"].as_u64() == Some(1);
    match edge["pin"].as_str() {
        Some("led") => {
            v.led = on;
            v.led_edges.push(Instant::now());
        }
        Some("buzzer") => {
            v.buzzer = on;
            v.buzzer_chirps += u64::from(on);
        }
        _ => return false,
    }
    true
}
