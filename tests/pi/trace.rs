//! The GPIO lines as the emulated Pi's kernel reported them (tests/pi/gpio_watch.rs prints one
//! `T <uptime> led=… buzzer=…` line per change), and the shapes a person would see in them:
//! pulses (a lit LED, a sounding buzzer), how often, how long.

/// What the kernel said about one line at one moment: the pad (`out`put or `in`put, and its
/// level) and who holds the line, if anyone.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub output: bool,
    pub high: bool,
    pub consumer: Option<String>,
}

impl Line {
    /// `out-hi:mailbeacon-led`, `in-lo:sysfs`, `in-lo`.
    fn parse(s: &str) -> Option<Line> {
        let (pad, consumer) = match s.split_once(':') {
            Some((pad, c)) => (pad, Some(c.to_string())),
            None => (s, None),
        };
        let (function, level) = pad.split_once('-')?;
        Some(Line {
            output: function == "out",
            high: level == "hi",
            consumer,
        })
    }

    /// Lit / sounding: driven high.
    pub fn is_high(&self) -> bool {
        self.output && self.high
    }

    pub fn consumer(&self) -> Option<&str> {
        self.consumer.as_deref()
    }
}

/// Every change of one named line: (seconds since boot, state), the first entry being the state
/// when watching began.
#[derive(Debug, Clone)]
pub struct Trace {
    pub name: String,
    pub changes: Vec<(f64, Line)>,
    /// For each change, the sample before it, which still saw the old state: the change
    /// happened after that (or at the start of watching, when the watcher did not say).
    pub since: Vec<f64>,
}

/// A time the line was high: [start, end); `end` is `None` while still high at the last sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pulse {
    pub start: f64,
    pub end: Option<f64>,
    /// The earliest the rise can have happened: the sample before the one that saw it.
    pub after: f64,
}

impl Pulse {
    pub fn width(&self) -> Option<f64> {
        self.end.map(|e| e - self.start)
    }

    /// The longest the pulse can have been, given when the watcher looked.
    pub fn longest(&self) -> Option<f64> {
        self.end.map(|e| e - self.after)
    }
}

impl Trace {
    /// The trace of line `name` from gpio_watch's `T` lines among `lines`.
    pub fn of(name: &str, lines: &[String]) -> Trace {
        let mut changes: Vec<(f64, Line)> = Vec::new();
        let mut since = Vec::new();
        let prefix = format!("{name}=");
        for l in lines {
            let mut words = l.split_whitespace();
            if words.next() != Some("T") {
                continue;
            }
            let Some(t) = words.next().and_then(|t| t.parse::<f64>().ok()) else {
                continue;
            };
            let words: Vec<&str> = words.collect();
            let before = words
                .iter()
                .find_map(|w| w.strip_prefix("since=")?.parse::<f64>().ok())
                .unwrap_or(t);
            let Some(state) = words.iter().find_map(|w| w.strip_prefix(&prefix)) else {
                continue;
            };
            let Some(state) = Line::parse(state) else {
                continue;
            };
            if changes.last().map(|(_, s)| s) != Some(&state) {
                changes.push((t, state));
                since.push(before);
            }
        }
        Trace {
            name: name.to_string(),
            changes,
            since,
        }
    }

    pub fn pulses(&self) -> Vec<Pulse> {
        let mut out = Vec::new();
        let mut start = None;
        for ((t, s), since) in self.changes.iter().zip(&self.since) {
            match (s.is_high(), start) {
                (true, None) => start = Some((*t, *since)),
                (false, Some((st, after))) => {
                    out.push(Pulse {
                        start: st,
                        end: Some(*t),
                        after,
                    });
                    start = None;
                }
                _ => {}
            }
        }
        if let Some((st, after)) = start {
            out.push(Pulse {
                start: st,
                end: None,
                after,
            });
        }
        out
    }

    /// The state at time `t` (the last change at or before it).
    pub fn at(&self, t: f64) -> Option<&Line> {
        self.changes
            .iter()
            .take_while(|(ct, _)| *ct <= t)
            .last()
            .map(|(_, s)| s)
    }

    /// The changes within [from, to].
    pub fn between(&self, from: f64, to: f64) -> Vec<&(f64, Line)> {
        self.changes
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .collect()
    }

    /// When the line was first held by `consumer`.
    pub fn claimed_by(&self, consumer: &str) -> Option<f64> {
        self.changes
            .iter()
            .find(|(_, s)| s.consumer() == Some(consumer))
            .map(|(t, _)| *t)
    }

    /// The state at the last sample.
    pub fn last(&self) -> Option<&Line> {
        self.changes.last().map(|(_, s)| s)
    }

    /// One line per change, for failure messages.
    pub fn show(&self) -> String {
        let mut out = format!("{} changes:", self.name);
        for ((t, s), since) in self.changes.iter().zip(&self.since) {
            let level = match (s.output, s.high) {
                (true, true) => "driven HIGH",
                (true, false) => "driven low",
                (false, true) => "input, reads high",
                (false, false) => "input, reads low",
            };
            let s = format!("{level}, held by {}", s.consumer().unwrap_or("nobody"));
            out.push_str(&format!("\n  {t:9.3}  {s}"));
            if t - since > 0.02 {
                out.push_str(&format!(" (unseen since {since:.3})"));
            }
        }
        out
    }
}

/// The median of `xs` (0 when empty).
pub fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[test]
fn pulses_follow_the_kernels_view_of_a_line() {
    let lines: Vec<String> = [
        "T 1.000 led=in-lo buzzer=in-lo",
        "T 1.100 led=out-lo:mailbeacon-led buzzer=out-hi:mailbeacon-buzzer",
        "T 1.110 since=1.050 led=out-hi:mailbeacon-led buzzer=out-hi:mailbeacon-buzzer",
        "T 1.210 since=1.208 led=out-hi:mailbeacon-led buzzer=out-lo:mailbeacon-buzzer",
        "T 1.310 led=out-lo:mailbeacon-led buzzer=out-lo:mailbeacon-buzzer",
        "some log line",
        "T 1.500 led=out-hi:mailbeacon-led buzzer=in-lo:sysfs",
        "T 1.600 led=in-hi buzzer=in-lo",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let led = Trace::of("led", &lines);
    assert_eq!(led.changes.len(), 6, "{}", led.show());
    let p = led.pulses();
    assert_eq!(p.len(), 2, "{}", led.show());
    assert!((p[0].width().unwrap_or(0.0) - 0.2).abs() < 1e-9);
    assert!(
        (p[0].longest().unwrap_or(0.0) - 0.26).abs() < 1e-9,
        "unseen for 60 ms before the rise: {:?}",
        p[0]
    );
    assert_eq!(
        p[1].end,
        Some(1.6),
        "an input is not lit, whatever it reads"
    );
    assert_eq!(led.claimed_by("mailbeacon-led"), Some(1.1));
    let last = led.last().cloned();
    assert!(last.is_some_and(|l| l.high && !l.output && l.consumer.is_none()));
    let buzzer = Trace::of("buzzer", &lines);
    assert_eq!(buzzer.pulses().len(), 1);
    assert_eq!(buzzer.at(1.55).and_then(Line::consumer), Some("sysfs"));
    assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
}

/// What Debian's 6.1 arm64 kernel printed on the emulated Pi 3B with the LED lit.
#[test]
fn the_watcher_reads_the_kernels_debugfs_views() {
    let gpio = "gpiochip1: GPIOs 450-457, parent: platform/soc:firmware:gpio, raspberrypi-exp-gpio, can sleep:
 gpio-452 (STATUS_LED          )

gpiochip0: GPIOs 458-511, parent: platform/3f200000.gpio, pinctrl-bcm2835:
 gpio-474 (GPIO16              )
 gpio-475 (GPIO17              |mailbeacon-led      ) out hi
 gpio-485 (GPIO27              |sysfs               ) in  lo
 gpio-486 (GPIO28              )
";
    let pins = "registered pins: 54
pin 16 (gpio16) 0:? function gpio_in in lo; irq 0 (none)
pin 17 (gpio17) 0:? function gpio_out in hi; irq 112 (none)
pin 27 (gpio27) 0:? function gpio_in in lo; irq 0 (none)
pin 28 (gpio28) 0:? function alt0 in hi; irq 0 (none)
";
    use super::gpio_watch::state;
    let bcm = "pinctrl-bcm2835";
    assert_eq!(state(gpio, pins, bcm, 17), "out-hi:mailbeacon-led");
    assert_eq!(state(gpio, pins, bcm, 27), "in-lo:sysfs");
    assert_eq!(state(gpio, pins, bcm, 16), "in-lo");
    assert_eq!(state(gpio, pins, bcm, 28), "alt0-hi");
    assert_eq!(
        super::gpio_watch::holder(gpio, "raspberrypi-exp-gpio", 2).as_deref(),
        Some("")
    );
    assert_eq!(state(gpio, pins, "pinctrl-bcm2711", 17), "out-hi:?");
}
