//! Builds the LED/buzzer indicator from the config — real GPIO lines through the character
//! device, or simulated pins with an optional trace file — and runs it until the daemon stops.

use super::RunError;
use crate::config::{Backend, IndicatorConfig};
use crate::health::Pattern;
use crate::indicator::{cdev, sim, Indicator, Logical};
use crate::stop::Stop;
use crate::watchdog::Beat;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(crate) fn start_indicator(
    c: &IndicatorConfig,
    patterns: watch::Receiver<Pattern>,
    stop: Stop,
    beat: Beat,
) -> Result<JoinHandle<()>, RunError> {
    let done = async move { stop.wait().await };
    Ok(match &c.backend {
        Backend::Cdev { chip } => {
            let mut gpio = cdev::open_chip(chip)?;
            let led = cdev::output(&mut gpio, chip, c.led.line, c.led.active_low, "led")?;
            let led2 = c
                .led2
                .map(|p| cdev::output(&mut gpio, chip, p.line, p.active_low, "led2"))
                .transpose()?;
            let buzzer = c
                .buzzer
                .map(|p| cdev::output(&mut gpio, chip, p.line, p.active_low, "buzzer"))
                .transpose()?;
            log::info!(
                "indicator: GPIO chip {chip}, led line {}{}",
                c.led.line,
                c.buzzer
                    .map_or(String::new(), |b| format!(", buzzer line {}", b.line))
            );
            let ind = Indicator::new(
                Logical::new(led, c.led.active_low, "led"),
                led2.map(|p| Logical::new(p, c.led2.is_some_and(|x| x.active_low), "led2")),
                buzzer.map(|p| Logical::new(p, c.buzzer.is_some_and(|x| x.active_low), "buzzer")),
                c.quiet_hours,
                c.buzzer_repeat,
            )
            .with_beat(beat.clone());
            tokio::spawn(async move {
                // Dropping the returned pins releases the lines.
                drop(ind.run(patterns, done).await);
            })
        }
        Backend::Sim { .. } | Backend::None => {
            let trace = match &c.backend {
                Backend::Sim { trace: Some(path) } => Some(sim::open_trace(path)?),
                _ => None,
            };
            let pin = |name| sim::SimPin::new(name, trace.clone());
            let ind = Indicator::new(
                Logical::new(pin("led"), false, "led"),
                c.led2.map(|_| Logical::new(pin("led2"), false, "led2")),
                c.buzzer
                    .map(|_| Logical::new(pin("buzzer"), false, "buzzer")),
                c.quiet_hours,
                c.buzzer_repeat,
            )
            .with_beat(beat.clone());
            tokio::spawn(async move {
                drop(ind.run(patterns, done).await);
            })
        }
    })
}
