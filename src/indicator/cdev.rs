//! The `cdev` backend: real GPIO lines through the Linux character device, the chip found by
//! its label (Pi 3: `pinctrl-bcm2835`, Pi 4: `pinctrl-bcm2711`, Pi 5: `pinctrl-rp1`) or by
//! path. Lines are requested plainly; active-low is decided by [`super::Logical`] alone so it is
//! never inverted twice. Dropping the pin releases the line.

use linux_embedded_hal::gpio_cdev::{chips, Chip, LineRequestFlags};
use linux_embedded_hal::CdevPin;

#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    #[error("no GPIO chip labelled {label:?} (found: {found}); set indicator.chip to a label or a /dev/gpiochipN path")]
    NoChip { label: String, found: String },
    #[error("GPIO chip {chip}: {reason}")]
    Chip { chip: String, reason: String },
    #[error("GPIO chip {chip} line {line}: {reason}")]
    Line {
        chip: String,
        line: u32,
        reason: String,
    },
}

fn hint(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    if text.contains("Permission denied") || text.contains("EACCES") {
        format!("{text} (add the service user to group gpio)")
    } else if text.contains("busy") || text.contains("EBUSY") {
        format!("{text} (the line is in use by another program)")
    } else {
        text
    }
}

/// Opens the chip named by a label such as `pinctrl-bcm2711`, or by a path under `/dev`.
pub fn open_chip(chip: &str) -> Result<Chip, GpioError> {
    if chip.starts_with('/') {
        return Chip::new(chip).map_err(|e| GpioError::Chip {
            chip: chip.to_string(),
            reason: hint(&e),
        });
    }
    let mut found = Vec::new();
    let all = chips().map_err(|e| GpioError::Chip {
        chip: chip.to_string(),
        reason: hint(&e),
    })?;
    for c in all {
        match c {
            Ok(c) if c.label() == chip => return Ok(c),
            Ok(c) => found.push(format!("{} at {}", c.label(), c.path().display())),
            Err(e) => found.push(hint(&e)),
        }
    }
    let found = if found.is_empty() {
        "none".to_string()
    } else {
        found.join(", ")
    };
    Err(GpioError::NoChip {
        label: chip.to_string(),
        found,
    })
}

/// Requests `line` as an output, initially off, under the consumer name `mailbeacon-NAME`.
pub fn output(
    chip: &mut Chip,
    chip_name: &str,
    line: u32,
    active_low: bool,
    name: &str,
) -> Result<CdevPin, GpioError> {
    let err = |reason: String| GpioError::Line {
        chip: chip_name.to_string(),
        line,
        reason,
    };
    let off = u8::from(active_low);
    let handle = chip
        .get_line(line)
        .map_err(|e| err(hint(&e)))?
        .request(LineRequestFlags::OUTPUT, off, &format!("mailbeacon-{name}"))
        .map_err(|e| err(hint(&e)))?;
    CdevPin::new(handle).map_err(|e| err(hint(&e)))
}
