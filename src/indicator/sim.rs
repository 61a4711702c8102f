//! The `sim` backend: pins that record every edge as a JSON line
//! `{"t": <unix seconds>, "pin": "led"|"buzzer"|"led2", "level": 0|1}` (logical level), for
//! tests and the demo.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub(crate) struct SimPin {
    name: &'static str,
    level: Option<bool>,
    trace: Option<Arc<Mutex<BufWriter<File>>>>,
}

/// The shared trace file; one per daemon run, appended to.
pub(crate) fn open_trace(path: &Path) -> std::io::Result<Arc<Mutex<BufWriter<File>>>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    Ok(Arc::new(Mutex::new(BufWriter::new(file))))
}

impl SimPin {
    pub(crate) fn new(name: &'static str, trace: Option<Arc<Mutex<BufWriter<File>>>>) -> SimPin {
        SimPin {
            name,
            level: None,
            trace,
        }
    }

    fn write(&mut self, level: bool) {
        if self.level == Some(level) {
            return;
        }
        self.level = Some(level);
        let Some(trace) = &self.trace else { return };
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        if let Ok(mut w) = trace.lock() {
            // Flushed per edge: the trace is read live by tests and the demo.
            let _ = writeln!(
                w,
                "{{\"t\":{t:.3},\"pin\":\"{}\",\"level\":{}}}",
                self.name,
                u8::from(level)
            )
            .and_then(|_| w.flush());
        }
    }
}

impl embedded_hal::digital::ErrorType for SimPin {
    type Error = std::convert::Infallible;
}

impl embedded_hal::digital::OutputPin for SimPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.write(false);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.write(true);
        Ok(())
    }
}
