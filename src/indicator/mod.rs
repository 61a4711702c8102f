//! The LED and buzzer: a frozen process stops blinking, a dead channel blinks fast and chirps,
//! an overflowing spool stays lit and sounds a long tone (docs/design.md's table).
//!
//! [`Indicator`] is generic over `embedded_hal::digital::OutputPin` and never names a board;
//! the binary hands it [`cdev`] pins on a Pi or [`sim`] pins that record every edge. Timing uses
//! tokio's clock, so tests drive it with paused time and assert the exact edges.

pub(crate) mod cdev;
pub(crate) mod sim;

use crate::health::Pattern;
use crate::time::local_minute;
use crate::watchdog::Beat;
use embedded_hal::digital::{OutputPin, PinState};
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

/// One step of a blink cycle: LED level and how long it holds. `None` holds forever.
type Step = (bool, Option<Duration>);

const fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

const OK: [Step; 2] = [(true, ms(100)), (false, ms(1900))];
const BACKLOG: [Step; 2] = [(true, ms(500)), (false, ms(500))];
const DEAD: [Step; 2] = [(true, ms(125)), (false, ms(125))];
const SOLID: [Step; 1] = [(true, None)];
const DARK: [Step; 1] = [(false, None)];

/// The LED cycle of each pattern.
fn led_cycle(p: Pattern) -> &'static [Step] {
    match p {
        // A short heartbeat every 2 s: a frozen process stops blinking.
        Pattern::Ok => &OK,
        Pattern::Backlog => &BACKLOG,
        Pattern::Dead => &DEAD,
        Pattern::Alarm => &SOLID,
        Pattern::Off | Pattern::Selftest => &DARK,
    }
}

/// How long the buzzer sounds on entering a pattern (and at each repeat), if at all.
fn buzz_length(p: Pattern) -> Option<Duration> {
    match p {
        Pattern::Dead => Some(Duration::from_millis(150)),
        Pattern::Alarm => Some(Duration::from_millis(1000)),
        _ => None,
    }
}

/// The boot self-test: LED sweep (three blinks; the second LED alternates) and one short chirp.
const SELFTEST_STEP: Duration = Duration::from_millis(200);
const SELFTEST_CHIRP: Duration = Duration::from_millis(100);

/// Whether local minute-of-day `now` falls in `(start, end)`, which may wrap past midnight.
pub(crate) fn in_quiet_hours(quiet: Option<(u32, u32)>, now: u32) -> bool {
    match quiet {
        None => false,
        Some((start, end)) if start <= end => now >= start && now < end,
        Some((start, end)) => now >= start || now < end,
    }
}

/// A pin whose logical level (1 = lit / sounding) maps to the wire through `active_low`.
pub(crate) struct Logical<P> {
    pin: P,
    active_low: bool,
    name: &'static str,
    warned: bool,
}

impl<P: OutputPin> Logical<P> {
    pub(crate) fn new(pin: P, active_low: bool, name: &'static str) -> Self {
        Logical {
            pin,
            active_low,
            name,
            warned: false,
        }
    }

    /// The physical level for a logical one: the one place active-low is decided (a cdev line
    /// is requested with its initial level from here too).
    pub(crate) fn physical(on: bool, active_low: bool) -> PinState {
        PinState::from(on != active_low)
    }

    fn set(&mut self, on: bool) {
        if let Err(e) = self.pin.set_state(Self::physical(on, self.active_low)) {
            if !self.warned {
                log::error!("indicator: cannot drive the {} pin: {e:?}", self.name);
                self.warned = true;
            }
        }
    }

    /// Hands the pin back (the line is released when the caller drops it).
    pub(crate) fn release(self) -> P {
        self.pin
    }
}

pub(crate) struct Indicator<L, B> {
    led: Logical<L>,
    led2: Option<Logical<L>>,
    buzzer: Option<Logical<B>>,
    quiet: Option<(u32, u32)>,
    repeat: Duration,
    minute_of_day: fn() -> u32,
    /// Checked in before every wait with its length: a pin write that blocks shows as a hung
    /// loop to the watchdog.
    beat: Option<Beat>,
}

impl<L: OutputPin, B: OutputPin> Indicator<L, B> {
    pub(crate) fn new(
        led: Logical<L>,
        led2: Option<Logical<L>>,
        buzzer: Option<Logical<B>>,
        quiet: Option<(u32, u32)>,
        repeat: Duration,
    ) -> Self {
        Indicator {
            led,
            led2,
            buzzer,
            quiet,
            repeat,
            beat: None,
            minute_of_day: local_minute,
        }
    }

    /// Replaces the clock used for quiet hours (tests).
    #[cfg(test)]
    fn with_clock(mut self, minute_of_day: fn() -> u32) -> Self {
        self.minute_of_day = minute_of_day;
        self
    }

    fn quiet_now(&self) -> bool {
        in_quiet_hours(self.quiet, (self.minute_of_day)())
    }

    fn set_led(&mut self, on: bool, pattern: Pattern) {
        self.led.set(on);
        // The optional second (green) LED is lit while nothing needs attention beyond a backlog.
        let green = matches!(pattern, Pattern::Ok | Pattern::Backlog);
        if let Some(l2) = self.led2.as_mut() {
            l2.set(green);
        }
    }

    fn set_buzzer(&mut self, on: bool) {
        if let Some(b) = self.buzzer.as_mut() {
            b.set(on);
        }
    }

    /// Reports to the watchdog through `beat`.
    pub(crate) fn with_beat(mut self, beat: Beat) -> Self {
        self.beat = Some(beat);
        self
    }

    fn alive_for(&self, d: Duration) {
        if let Some(b) = &self.beat {
            b.within(d + Duration::from_secs(5));
        }
    }

    /// Shows `patterns` until `stop` completes, then turns everything off and hands the pins back.
    pub(crate) async fn run(
        mut self,
        mut patterns: watch::Receiver<Pattern>,
        stop: impl Future<Output = ()>,
    ) -> (L, Option<L>, Option<B>) {
        tokio::pin!(stop);
        self.alive_for(SELFTEST_STEP * 6);
        let stopped = tokio::select! {
            _ = &mut stop => true,
            _ = self.selftest() => false,
        };
        if !stopped {
            self.show(&mut patterns, &mut stop).await;
        }
        self.set_led(false, Pattern::Off);
        self.set_buzzer(false);
        if let Some(b) = &self.beat {
            b.waiting();
        }
        (
            self.led.release(),
            self.led2.map(Logical::release),
            self.buzzer.map(Logical::release),
        )
    }

    async fn selftest(&mut self) {
        let chirp = !self.quiet_now();
        self.set_buzzer(chirp);
        // The clock starts once the first writes are done: on a loaded Pi the first GPIO
        // write can land tens of milliseconds late, and the chirp must still last its 100 ms.
        let mut start = None;
        for i in 0..3u32 {
            self.led.set(true);
            if let Some(l2) = self.led2.as_mut() {
                l2.set(false);
            }
            let start = *start.get_or_insert_with(Instant::now);
            sleep_until(start + SELFTEST_STEP * (2 * i) + SELFTEST_CHIRP.min(SELFTEST_STEP)).await;
            self.set_buzzer(false);
            sleep_until(start + SELFTEST_STEP * (2 * i + 1)).await;
            self.led.set(false);
            if let Some(l2) = self.led2.as_mut() {
                l2.set(true);
            }
            sleep_until(start + SELFTEST_STEP * (2 * i + 2)).await;
        }
    }

    async fn show(
        &mut self,
        patterns: &mut watch::Receiver<Pattern>,
        stop: &mut (impl Future<Output = ()> + Unpin),
    ) {
        let far = || Instant::now() + Duration::from_secs(86_400);
        let mut pattern = *patterns.borrow_and_update();
        let mut step = 0usize;
        let mut step_end = self
            .enter_step(pattern, 0, Instant::now())
            .unwrap_or_else(far);
        let mut buzz_off: Option<Instant> = None;
        let mut next_buzz = self.start_buzz(pattern, Instant::now(), &mut buzz_off);
        loop {
            let deadline = [Some(step_end), buzz_off, next_buzz]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or_else(far);
            self.alive_for(deadline.saturating_duration_since(Instant::now()));
            tokio::select! {
                _ = &mut *stop => return,
                changed = patterns.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let next = *patterns.borrow_and_update();
                    if next != pattern {
                        pattern = next;
                        let now = Instant::now();
                        step = 0;
                        step_end = self.enter_step(pattern, 0, now).unwrap_or_else(far);
                        self.set_buzzer(false);
                        buzz_off = None;
                        next_buzz = self.start_buzz(pattern, now, &mut buzz_off);
                    }
                }
                _ = sleep_until(deadline) => {
                    let now = Instant::now();
                    if buzz_off.is_some_and(|t| t <= now) {
                        self.set_buzzer(false);
                        buzz_off = None;
                    }
                    if next_buzz.is_some_and(|t| t <= now) {
                        next_buzz = self.start_buzz(pattern, now, &mut buzz_off);
                    }
                    if step_end <= now {
                        let cycle = led_cycle(pattern);
                        step = (step + 1) % cycle.len();
                        step_end = self.enter_step(pattern, step, step_end).unwrap_or_else(far);
                    }
                }
            }
        }
    }

    /// Sets the LED for `step` of `pattern` starting at `at`; returns when the step ends.
    fn enter_step(&mut self, pattern: Pattern, step: usize, at: Instant) -> Option<Instant> {
        let (on, hold) = led_cycle(pattern)[step];
        self.set_led(on, pattern);
        hold.map(|d| at + d)
    }

    /// Sounds the buzzer for `pattern` unless quiet; returns when to sound it again.
    fn start_buzz(
        &mut self,
        pattern: Pattern,
        now: Instant,
        buzz_off: &mut Option<Instant>,
    ) -> Option<Instant> {
        let length = buzz_length(pattern)?;
        if self.buzzer.is_some() && !self.quiet_now() {
            self.set_buzzer(true);
            *buzz_off = Some(now + length);
        }
        Some(now + self.repeat)
    }
}

#[cfg(test)]
mod tests;
