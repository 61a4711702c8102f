use super::*;
use embedded_hal_mock::eh1::digital::{Mock, State, Transaction};
use std::sync::{Arc, Mutex};

/// Records (milliseconds since start, logical level) on every write, under tokio's clock.
#[derive(Clone)]
struct Rec {
    start: Instant,
    edges: Arc<Mutex<Vec<(u64, bool)>>>,
}

impl embedded_hal::digital::ErrorType for Rec {
    type Error = std::convert::Infallible;
}

impl OutputPin for Rec {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.push(false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.push(true);
        Ok(())
    }
}

impl Rec {
    fn new(start: Instant) -> Rec {
        Rec {
            start,
            edges: Arc::default(),
        }
    }
    fn push(&self, level: bool) {
        let t = Instant::now().duration_since(self.start).as_millis() as u64;
        let mut e = self.edges.lock().unwrap();
        // Keep edges only: a repeated write of the same level is not visible on the wire.
        if e.last().map(|x| x.1) != Some(level) {
            e.push((t, level));
        }
    }
    fn edges(&self) -> Vec<(u64, bool)> {
        self.edges.lock().unwrap().clone()
    }
}

fn noon() -> u32 {
    12 * 60
}
fn midnight() -> u32 {
    0
}

async fn run_for(
    pattern: Pattern,
    changes: Vec<(u64, Pattern)>,
    total_ms: u64,
    clock: fn() -> u32,
) -> (Vec<(u64, bool)>, Vec<(u64, bool)>) {
    let start = Instant::now();
    let (led, buzzer) = (Rec::new(start), Rec::new(start));
    let ind = Indicator::new(
        Logical::new(led.clone(), false, "led"),
        None,
        Some(Logical::new(buzzer.clone(), false, "buzzer")),
        Some((22 * 60, 7 * 60)),
        Duration::from_secs(600),
    )
    .with_clock(clock);
    let (tx, rx) = watch::channel(pattern);
    let stop = tokio::time::sleep(Duration::from_millis(total_ms));
    let task = tokio::spawn(ind.run(rx, stop));
    for (at, p) in changes {
        tokio::time::sleep_until(start + Duration::from_millis(at)).await;
        tx.send(p).unwrap();
    }
    task.await.unwrap();
    (led.edges(), buzzer.edges())
}

const BOOT: u64 = 1200;

#[tokio::test(start_paused = true)]
async fn boot_selftest_sweeps_and_chirps_once() {
    let (led, buzzer) = run_for(Pattern::Off, vec![], BOOT + 100, noon).await;
    assert_eq!(
        led,
        vec![
            (0, true),
            (200, false),
            (400, true),
            (600, false),
            (800, true),
            (1000, false)
        ]
    );
    assert_eq!(buzzer, vec![(0, true), (100, false)]);
}

#[tokio::test(start_paused = true)]
async fn ok_is_a_short_heartbeat_every_two_seconds() {
    let (led, _) = run_for(Pattern::Ok, vec![], BOOT + 4500, noon).await;
    let after: Vec<_> = led.into_iter().filter(|e| e.0 >= BOOT).collect();
    assert_eq!(
        after,
        vec![
            (1200, true),
            (1300, false),
            (3200, true),
            (3300, false),
            (5200, true),
            (5300, false)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn dead_blinks_at_four_hertz_and_chirps_on_entry() {
    let (led, buzzer) = run_for(Pattern::Ok, vec![(2000, Pattern::Dead)], 3060, noon).await;
    let dead: Vec<_> = led.into_iter().filter(|e| e.0 >= 2000).collect();
    assert_eq!(
        dead,
        vec![
            (2000, true),
            (2125, false),
            (2250, true),
            (2375, false),
            (2500, true),
            (2625, false),
            (2750, true),
            (2875, false),
            (3000, true),
            (3060, false)
        ]
    );
    let chirps: Vec<_> = buzzer.into_iter().filter(|e| e.0 >= BOOT).collect();
    assert_eq!(chirps, vec![(2000, true), (2150, false)]);
}

#[tokio::test(start_paused = true)]
async fn backlog_blinks_at_one_hertz() {
    let (led, buzzer) = run_for(Pattern::Backlog, vec![], BOOT + 2060, noon).await;
    let after: Vec<_> = led.into_iter().filter(|e| e.0 >= BOOT).collect();
    assert_eq!(
        after,
        vec![
            (1200, true),
            (1700, false),
            (2200, true),
            (2700, false),
            (3200, true),
            (3260, false)
        ]
    );
    assert_eq!(buzzer.len(), 2, "only the boot chirp");
}

#[tokio::test(start_paused = true)]
async fn alarm_is_solid_with_a_long_tone_repeated() {
    let (led, buzzer) = run_for(Pattern::Alarm, vec![], BOOT + 601_000, noon).await;
    let after: Vec<_> = led.into_iter().filter(|e| e.0 >= BOOT).collect();
    assert_eq!(
        after,
        vec![(1200, true), (BOOT + 601_000, false)],
        "solid until stopped, then off"
    );
    let tones: Vec<_> = buzzer.into_iter().filter(|e| e.0 >= BOOT).collect();
    assert_eq!(
        tones,
        vec![
            (1200, true),
            (2200, false),
            (601_200, true),
            (601_200 + 1000, false)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn quiet_hours_silence_the_buzzer_but_not_the_led() {
    let (led, buzzer) = run_for(Pattern::Dead, vec![], BOOT + 1000, midnight).await;
    assert!(buzzer.iter().all(|e| !e.1), "{buzzer:?}");
    assert!(led.iter().filter(|e| e.0 >= BOOT && e.1).count() >= 4);
}

#[tokio::test(start_paused = true)]
async fn exact_transactions_on_a_mock_pin() {
    // Self-test sweep, then `off` holds the LED low, then the stop turns it low once more.
    let mut expected = Vec::new();
    for _ in 0..3 {
        expected.push(Transaction::set(State::High));
        expected.push(Transaction::set(State::Low));
    }
    expected.push(Transaction::set(State::Low));
    expected.push(Transaction::set(State::Low));
    let led = Mock::new(&expected);
    let ind: Indicator<Mock, Mock> = Indicator::new(
        Logical::new(led, false, "led"),
        None,
        None,
        None,
        Duration::from_secs(60),
    );
    let (_tx, rx) = watch::channel(Pattern::Off);
    let (mut led, _, _) = ind
        .run(rx, tokio::time::sleep(Duration::from_millis(1500)))
        .await;
    led.done();
}

#[test]
fn active_low_inverts_on_the_wire_only() {
    assert_eq!(Logical::<Mock>::physical(true, false), PinState::High);
    assert_eq!(Logical::<Mock>::physical(true, true), PinState::Low);
    assert_eq!(Logical::<Mock>::physical(false, true), PinState::High);
}

#[test]
fn quiet_hours_wrap_past_midnight() {
    let q = Some((22 * 60, 7 * 60));
    assert!(in_quiet_hours(q, 23 * 60) && in_quiet_hours(q, 0) && in_quiet_hours(q, 6 * 60 + 59));
    assert!(!in_quiet_hours(q, 7 * 60) && !in_quiet_hours(q, 12 * 60) && !in_quiet_hours(None, 0));
    assert!(in_quiet_hours(Some((60, 120)), 90) && !in_quiet_hours(Some((60, 120)), 150));
}
