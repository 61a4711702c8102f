//! The `cdev` backend: real GPIO lines through the Linux character device, the chip found by
//! its label (Pi 3: `pinctrl-bcm2835`, Pi 4: `pinctrl-bcm2711`, Pi 5: `pinctrl-rp1`) or by
//! path. Lines are requested plainly; active-low is decided by [`super::Logical`] alone so it is
//! never inverted twice. Dropping the pin releases the line.
//!
//! Every way this can go wrong on a freshly wired board — no such chip, no permission on
//! `/dev/gpiochipN`, a line that does not exist or that another program holds — becomes a
//! [`GpioError`] whose message says what was found and what to change. The choice of chip
//! ([`choose`]) is a pure function over what the scan of `/dev` saw, tested without hardware.

use crate::config::{Backend, IndicatorConfig};
use linux_embedded_hal::gpio_cdev::{self, Chip, LineRequestFlags};
use linux_embedded_hal::CdevPin;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// The header's GPIO chip on each Raspberry Pi generation, for advice when the label is wrong.
const PI_CHIPS: [(&str, &str); 3] = [
    ("pinctrl-bcm2835", "Pi 1/2/3, Zero, Zero 2 W"),
    ("pinctrl-bcm2711", "Pi 4, Pi 400, CM4"),
    ("pinctrl-rp1", "Pi 5, Pi 500, CM5"),
];

#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    #[error("no GPIO chip labelled {label} (found: {found}){advice}")]
    NoChip {
        label: String,
        found: String,
        advice: String,
    },
    #[error("no GPIO chip at {} (found: {found})", path.display())]
    NoPath { path: PathBuf, found: String },
    #[error(
        "permission denied on {}: add the service user to group gpio (the unit sets \
         SupplementaryGroups=gpio; for a shell user: usermod -aG gpio USER, then log in again)",
        path.display()
    )]
    PermissionDenied { path: PathBuf },
    #[error("GPIO chip {chip}: {reason}")]
    Chip { chip: String, reason: String },
    #[error("line {line} ({pin}) does not exist on {chip}: its lines are 0 to {}", lines.saturating_sub(1))]
    NoLine {
        chip: String,
        line: u32,
        pin: String,
        lines: u32,
    },
    #[error("line {line} ({pin}) on {chip} is in use by {}", holder(consumer))]
    InUse {
        chip: String,
        line: u32,
        pin: String,
        consumer: String,
    },
    #[error("line {line} ({pin}) on {chip}: {reason}")]
    Line {
        chip: String,
        line: u32,
        pin: String,
        reason: String,
    },
}

/// Who holds a line, and what the operator can do about it.
fn holder(consumer: &str) -> String {
    if consumer.is_empty() {
        "the kernel (no consumer name: a driver or device-tree overlay claims it; pick another \
         line or remove the overlay)"
            .to_string()
    } else if consumer.starts_with("mailbeacon-") {
        format!("'{consumer}': is mailbeacon already running? (systemctl status mailbeacon)")
    } else {
        format!("'{consumer}' (gpioinfo lists every line and its user)")
    }
}

/// What opening one `/dev/gpiochipN` told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    Label(String),
    Denied,
    Unreadable(String),
}

/// `gpiochip0 = pinctrl-bcm2835, gpiochip1 = raspberrypi-exp-gpio`, or `none`.
fn describe(seen: &[(PathBuf, Seen)]) -> String {
    if seen.is_empty() {
        return "none".to_string();
    }
    let name = |p: &Path| {
        p.file_name()
            .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
    };
    let one = |(path, s): &(PathBuf, Seen)| match s {
        Seen::Label(l) if l.is_empty() => format!("{} = (no label)", name(path)),
        Seen::Label(l) => format!("{} = {l}", name(path)),
        Seen::Denied => format!("{} = ? (permission denied)", name(path)),
        Seen::Unreadable(why) => format!("{} = ? ({why})", name(path)),
    };
    seen.iter().map(one).collect::<Vec<_>>().join(", ")
}

/// Picks the chip labelled `label` among `seen`, or says why none fits: a chip that could not
/// be opened for lack of permission is the likeliest reason the label is missing.
pub(crate) fn choose(label: &str, seen: &[(PathBuf, Seen)]) -> Result<usize, GpioError> {
    if let Some(i) = seen
        .iter()
        .position(|(_, s)| matches!(s, Seen::Label(l) if l == label))
    {
        return Ok(i);
    }
    if let Some((path, _)) = seen.iter().find(|(_, s)| *s == Seen::Denied) {
        return Err(GpioError::PermissionDenied { path: path.clone() });
    }
    let pi = seen.iter().find_map(|(_, s)| match s {
        Seen::Label(l) => PI_CHIPS.iter().find(|(chip, _)| chip == l),
        _ => None,
    });
    let advice = match pi {
        Some((chip, boards)) => {
            format!("; this looks like a {boards}: set indicator.chip = \"{chip}\"")
        }
        None if seen.is_empty() => {
            "; this machine has no /dev/gpiochip* (not a Raspberry Pi, or a container without \
             the device)"
                .to_string()
        }
        None => "; set indicator.chip to one of these labels or a /dev/gpiochipN path".to_string(),
    };
    Err(GpioError::NoChip {
        label: label.to_string(),
        found: describe(seen),
        advice,
    })
}

fn io_kind(e: &gpio_cdev::Error) -> Option<ErrorKind> {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind)
}

type Opened = Vec<(PathBuf, Result<Chip, gpio_cdev::Error>)>;

fn seen(all: &Opened) -> Vec<(PathBuf, Seen)> {
    let one = |opened: &Result<Chip, gpio_cdev::Error>| match opened {
        Ok(c) => Seen::Label(c.label().to_string()),
        Err(e) if io_kind(e) == Some(ErrorKind::PermissionDenied) => Seen::Denied,
        Err(e) => Seen::Unreadable(e.to_string()),
    };
    all.iter().map(|(p, c)| (p.clone(), one(c))).collect()
}

/// The GPIO chips of this machine as `gpiochip0 = pinctrl-bcm2835, …`, `none`, or why they
/// could not be listed; and the labels found, for `setup` to offer.
pub(crate) fn detected() -> (String, Vec<String>) {
    match scan() {
        Ok(all) => {
            let seen = seen(&all);
            let labels = seen
                .iter()
                .filter_map(|(_, s)| match s {
                    Seen::Label(l) if !l.is_empty() => Some(l.clone()),
                    _ => None,
                })
                .collect();
            (describe(&seen), labels)
        }
        Err(e) => (e.to_string(), Vec::new()),
    }
}

/// Opens every `/dev/gpiochipN`, in chip-number order.
fn scan() -> Result<Opened, GpioError> {
    let entries = std::fs::read_dir("/dev").map_err(|e| GpioError::Chip {
        chip: "/dev".to_string(),
        reason: e.to_string(),
    })?;
    let mut paths: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix("gpiochip")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|(_, p)| {
            let chip = Chip::new(&p);
            (p, chip)
        })
        .collect())
}

/// Opens the chip named by a label such as `pinctrl-bcm2711`, or by a path under `/dev`.
pub(crate) fn open_chip(chip: &str) -> Result<Chip, GpioError> {
    if chip.starts_with('/') {
        return Chip::new(chip).map_err(|e| match io_kind(&e) {
            Some(ErrorKind::PermissionDenied) => GpioError::PermissionDenied { path: chip.into() },
            Some(ErrorKind::NotFound) => GpioError::NoPath {
                path: chip.into(),
                found: scan().map_or_else(|e| e.to_string(), |all| describe(&seen(&all))),
            },
            // Opened, but the chip-info ioctl was refused: some other kind of device.
            None => GpioError::Chip {
                chip: chip.to_string(),
                reason: format!("not a GPIO chip ({e})"),
            },
            _ => GpioError::Chip {
                chip: chip.to_string(),
                reason: e.to_string(),
            },
        });
    }
    let all = scan()?;
    let index = choose(chip, &seen(&all))?;
    match all.into_iter().nth(index) {
        Some((_, Ok(c))) => Ok(c),
        // `choose` only picks a chip that opened; this arm keeps the compiler honest.
        _ => Err(GpioError::Chip {
            chip: chip.to_string(),
            reason: "the chip vanished while it was being opened".to_string(),
        }),
    }
}

/// Requests `line` as an output, initially off, under the consumer name `mailbeacon-NAME`.
pub(crate) fn output(
    chip: &mut Chip,
    chip_name: &str,
    line: u32,
    active_low: bool,
    name: &str,
) -> Result<CdevPin, GpioError> {
    let lines = chip.num_lines();
    let failed = |reason: String| GpioError::Line {
        chip: chip_name.to_string(),
        line,
        pin: name.to_string(),
        reason,
    };
    if line >= lines {
        return Err(GpioError::NoLine {
            chip: chip_name.to_string(),
            line,
            pin: name.to_string(),
            lines,
        });
    }
    let handle = chip.get_line(line).map_err(|e| failed(e.to_string()))?;
    // The line's level before the first write: off, as `Logical::physical` decides it.
    let off = u8::from(
        super::Logical::<CdevPin>::physical(false, active_low)
            == embedded_hal::digital::PinState::High,
    );
    let requested = handle.request(LineRequestFlags::OUTPUT, off, &format!("mailbeacon-{name}"));
    let requested = match requested {
        Ok(r) => r,
        Err(e) => {
            // The kernel answers EBUSY without naming the holder; the line's info names it.
            return Err(match handle.info() {
                Ok(info) if info.is_kernel() => GpioError::InUse {
                    chip: chip_name.to_string(),
                    line,
                    pin: name.to_string(),
                    consumer: info.consumer().unwrap_or("").to_string(),
                },
                _ if io_kind(&e) == Some(ErrorKind::PermissionDenied) => {
                    GpioError::PermissionDenied {
                        path: chip.path().to_path_buf(),
                    }
                }
                _ => failed(e.to_string()),
            });
        }
    };
    CdevPin::new(requested).map_err(|e| failed(e.to_string()))
}

/// What `check --probe` does for the indicator: open the chip and claim every configured line
/// (off), then release them. Lines held by a running mailbeacon count as fine. `None` when the
/// backend uses no GPIO.
pub(crate) fn probe(c: &IndicatorConfig) -> Result<Option<String>, GpioError> {
    let Backend::Cdev { chip: name } = &c.backend else {
        return Ok(None);
    };
    let mut chip = open_chip(name)?;
    let pins = [("led", Some(c.led)), ("led2", c.led2), ("buzzer", c.buzzer)];
    let mut claimed = Vec::new();
    for (pin, config) in pins {
        let Some(p) = config else { continue };
        match output(&mut chip, name, p.line, p.active_low, pin) {
            Ok(_released_on_drop) => claimed.push(format!("{pin} line {} free", p.line)),
            Err(GpioError::InUse { consumer, .. }) if consumer == format!("mailbeacon-{pin}") => {
                claimed.push(format!("{pin} line {} held by the running daemon", p.line))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Some(format!(
        "{} ({}, {} lines): {}",
        chip.label(),
        chip.path().display(),
        chip.num_lines(),
        claimed.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(n: u32, s: Seen) -> (PathBuf, Seen) {
        (PathBuf::from(format!("/dev/gpiochip{n}")), s)
    }

    fn label(l: &str) -> Seen {
        Seen::Label(l.to_string())
    }

    #[test]
    fn the_chip_is_found_by_label_whatever_its_number() {
        let seen = [
            dev(0, label("gpio-brcmstb@107d508500")),
            dev(4, label("pinctrl-rp1")),
        ];
        assert_eq!(choose("pinctrl-rp1", &seen).ok(), Some(1));
    }

    #[test]
    fn a_wrong_label_lists_what_was_found_and_names_the_board() {
        let seen = [
            dev(0, label("pinctrl-bcm2835")),
            dev(1, label("raspberrypi-exp-gpio")),
        ];
        let msg = choose("pinctrl-bcm2711", &seen).unwrap_err().to_string();
        assert_eq!(
            msg,
            "no GPIO chip labelled pinctrl-bcm2711 (found: gpiochip0 = pinctrl-bcm2835, \
             gpiochip1 = raspberrypi-exp-gpio); this looks like a Pi 1/2/3, Zero, Zero 2 W: \
             set indicator.chip = \"pinctrl-bcm2835\""
        );
    }

    #[test]
    fn a_machine_without_gpio_chips_says_so() {
        let msg = choose("pinctrl-bcm2711", &[]).unwrap_err().to_string();
        assert!(
            msg.starts_with("no GPIO chip labelled pinctrl-bcm2711 (found: none); this machine has no /dev/gpiochip*"),
            "{msg}"
        );
    }

    #[test]
    fn an_unopenable_chip_means_permission_not_a_missing_chip() {
        let seen = [dev(0, Seen::Denied), dev(1, label("raspberrypi-exp-gpio"))];
        let msg = choose("pinctrl-bcm2711", &seen).unwrap_err().to_string();
        assert!(
            msg.starts_with(
                "permission denied on /dev/gpiochip0: add the service user to group gpio"
            ),
            "{msg}"
        );
        // A readable chip with the right label wins over an unreadable one.
        let seen = [dev(0, Seen::Denied), dev(1, label("pinctrl-bcm2711"))];
        assert_eq!(choose("pinctrl-bcm2711", &seen).ok(), Some(1));
    }

    #[test]
    fn other_chips_are_listed_with_why_they_could_not_be_read() {
        let seen = [
            dev(0, Seen::Unreadable("Inappropriate ioctl for device".into())),
            dev(2, label("")),
            dev(3, label("gpio-mockup-A")),
        ];
        let msg = choose("pinctrl-rp1", &seen).unwrap_err().to_string();
        assert_eq!(
            msg,
            "no GPIO chip labelled pinctrl-rp1 (found: gpiochip0 = ? (Inappropriate ioctl for \
             device), gpiochip2 = (no label), gpiochip3 = gpio-mockup-A); set indicator.chip to \
             one of these labels or a /dev/gpiochipN path"
        );
    }

    #[test]
    fn a_busy_line_names_its_holder() {
        let busy = |consumer: &str| {
            GpioError::InUse {
                chip: "pinctrl-bcm2711".into(),
                line: 17,
                pin: "led".into(),
                consumer: consumer.into(),
            }
            .to_string()
        };
        assert_eq!(
            busy("xyz"),
            "line 17 (led) on pinctrl-bcm2711 is in use by 'xyz' (gpioinfo lists every line and its user)"
        );
        assert!(busy("mailbeacon-led").contains("is mailbeacon already running?"));
        assert!(busy("").contains("in use by the kernel"));
    }

    #[test]
    fn a_line_past_the_end_names_the_range() {
        let e = GpioError::NoLine {
            chip: "pinctrl-bcm2835".into(),
            line: 60,
            pin: "buzzer".into(),
            lines: 54,
        };
        assert_eq!(
            e.to_string(),
            "line 60 (buzzer) does not exist on pinctrl-bcm2835: its lines are 0 to 53"
        );
    }
}
