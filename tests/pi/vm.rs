//! An emulated Raspberry Pi 3B: Debian's arm64 kernel with its own `pinctrl-bcm2835` driver in
//! QEMU's `raspi3b` board, booted from an initramfs holding busybox, the aarch64 release build
//! of mailbeacon, tests/pi/gpio_watch.rs and tests/pi/ (init.sh runs the scenarios). The serial
//! console is read into [`Section`]s.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const TARGET: &str = "aarch64-unknown-linux-musl";
const QEMU: &str = "qemu-system-aarch64";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo().join("target"), PathBuf::from)
}

fn elapsed(start: Instant) -> String {
    format!("{:5.1} s", start.elapsed().as_secs_f64())
}

/// The kernel, device tree and busybox, from `.ci/pi-vm` (which installs QEMU and cpio too).
pub struct Parts {
    pub kernel: PathBuf,
    pub dtb: PathBuf,
    pub busybox: PathBuf,
}

/// Runs `.ci/pi-vm`; `Err` says why when it failed.
pub fn parts() -> Result<Parts, String> {
    let cache = target_dir().join("pi-vm");
    let out = Command::new(repo().join(".ci/pi-vm"))
        .arg(&cache)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!(".ci/pi-vm: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(".ci/pi-vm exited with {}: {text}", out.status));
    }
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(PathBuf::from)
            .ok_or_else(|| format!(".ci/pi-vm did not print {key}=: {text}"))
    };
    Ok(Parts {
        kernel: get("kernel")?,
        dtb: get("dtb")?,
        busybox: get("busybox")?,
    })
}

/// Why QEMU's Pi 3B cannot start on this machine at all, if it cannot.
pub fn qemu_missing() -> Option<String> {
    match Command::new(QEMU).args(["-machine", "help"]).output() {
        Err(e) => Some(format!("{QEMU} cannot be run: {e}")),
        Ok(o) if !String::from_utf8_lossy(&o.stdout).contains("raspi3b") => {
            Some(format!("{QEMU} has no raspi3b machine (QEMU too old?)"))
        }
        Ok(_) => None,
    }
}

/// Builds the release binary for the Pi (a no-op when it is fresh; the same build `.ci/cross`
/// packages) and the GPIO watcher (std alone, so a bare rustc; the linker as in
/// .cargo/config.toml). Returns their paths.
pub fn build(start: Instant) -> (PathBuf, PathBuf) {
    eprintln!(
        "pi: [{}] cargo build --release --no-default-features --target {TARGET}",
        elapsed(start)
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    // What cargo tells a test about its package: build scripts (ring's) track some of it, and
    // inheriting it would make this build differ from `.ci/cross`'s and rebuild each time.
    let from_cargo_test = |k: &str| {
        [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|p| k.starts_with(p))
            || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&k)
    };
    let mut command = Command::new(cargo);
    for (k, _) in std::env::vars_os() {
        if from_cargo_test(&k.to_string_lossy()) {
            command.env_remove(k);
        }
    }
    let status = command
        .current_dir(repo())
        .args(["build", "--release", "--locked", "--no-default-features"])
        .args(["--target", TARGET])
        .args(["--bin", "mailbeacon"])
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build for {TARGET} failed");
    let watch = target_dir().join("pi-vm/gpio_watch");
    let status = Command::new("rustc")
        .args(["--edition", "2021", "-O", "--target", TARGET])
        .args(["-C", "linker=aarch64-linux-gnu-gcc", "-o"])
        .arg(&watch)
        .arg(repo().join("tests/pi/gpio_watch.rs"))
        .status()
        .expect("run rustc");
    assert!(
        status.success(),
        "rustc tests/pi/gpio_watch.rs for {TARGET} failed"
    );
    eprintln!("pi: [{}] built", elapsed(start));
    (target_dir().join(TARGET).join("release/mailbeacon"), watch)
}

fn copy(from: &Path, to: &Path) {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
}

/// Copies every file under `from` to `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()));
        } else {
            copy(&path, &to.join(entry.file_name()));
        }
    }
}

/// Lays out the initramfs in `root` (the caller has already put the spool in place) and packs it
/// as a newc cpio archive next to it.
pub fn initramfs(root: &Path, parts: &Parts, mailbeacon: &Path, watch: &Path) -> PathBuf {
    let repo = repo();
    copy(&parts.busybox, &root.join("bin/busybox"));
    copy(&repo.join("tests/pi/init.sh"), &root.join("init"));
    copy(mailbeacon, &root.join("pi/mailbeacon"));
    copy(watch, &root.join("pi/gpio_watch"));
    for f in ["imap-down.toml", "alarm.toml", "wrong-chip.toml"] {
        copy(&repo.join("tests/pi").join(f), &root.join("pi").join(f));
    }
    copy(
        &repo.join("tests/pi/webhook-gone.cgi"),
        &root.join("www/cgi-bin/api"),
    );
    copy(
        &repo.join("board/mailbeacon.example.toml"),
        &root.join("pi/board/mailbeacon.example.toml"),
    );
    copy_tree(
        &repo.join("board/example-secrets"),
        &root.join("pi/board/example-secrets"),
    );
    for d in ["proc", "sys", "dev", "tmp", "www", "etc"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    std::fs::write(root.join("etc/epoch"), epoch.to_string()).expect("write epoch");
    let image = root.with_extension("cpio");
    let status = Command::new("sh")
        .current_dir(root)
        .arg("-c")
        .arg(format!(
            "chmod 755 init bin/busybox pi/mailbeacon pi/gpio_watch www/cgi-bin/api && \
             find . | cpio -o -H newc --quiet > '{}'",
            image.display()
        ))
        .status()
        .expect("run cpio");
    assert!(status.success(), "packing the initramfs failed");
    image
}

/// What init.sh printed between `@@ section NAME` and `@@ end NAME rc=N`.
#[derive(Debug, Default, Clone)]
pub struct Section {
    pub lines: Vec<String>,
    pub rc: Option<i32>,
    /// `@@ mark WHAT UPTIME` lines: when the script acted.
    pub marks: BTreeMap<String, f64>,
}

impl Section {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    pub fn mark(&self, what: &str) -> f64 {
        *self
            .marks
            .get(what)
            .unwrap_or_else(|| panic!("no mark {what} in:\n{}", self.text()))
    }
}

pub struct Console {
    pub sections: BTreeMap<String, Section>,
    pub all: String,
    pub done: bool,
}

/// Boots the Pi with `image` and reads its console until init.sh says `@@ done` or `limit`
/// passes; progress goes to stderr. `Err` (QEMU's own words) when QEMU quit without a word on
/// the console: it cannot start. A guest that stays silent until `limit` is a failure, left to
/// the caller.
pub fn boot(
    parts: &Parts,
    image: &Path,
    limit: Duration,
    start: Instant,
) -> Result<Console, String> {
    let mut child = Command::new(QEMU)
        .args(["-M", "raspi3b", "-display", "none", "-monitor", "none"])
        .args(["-serial", "stdio", "-no-reboot"])
        // Guest time counts executed instructions (2 ns each), not the host's clock: a host
        // busy with other work slows the run down but cannot stretch, squash or hide a blink.
        // An idle guest skips ahead to its next timer.
        .args(["-icount", "shift=1,sleep=off"])
        .arg("-kernel")
        .arg(&parts.kernel)
        .arg("-dtb")
        .arg(&parts.dtb)
        .arg("-initrd")
        .arg(image)
        .args(["-append", "console=ttyAMA0 rdinit=/init quiet loglevel=1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{QEMU}: {e}"))?;
    eprintln!("pi: [{}] QEMU raspi3b started", elapsed(start));
    let (tx, rx) = mpsc::channel();
    let stdout = child
        .stdout
        .take()
        .ok_or("QEMU's console is not readable")?;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line).trim_end().to_string();
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + limit;
    let mut console = Console {
        sections: BTreeMap::new(),
        all: String::new(),
        done: false,
    };
    let mut current: Option<String> = None;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        console.all.push_str(&line);
        console.all.push('\n');
        let Some(said) = line.strip_prefix("@@ ") else {
            if let Some(name) = &current {
                let s = console.sections.entry(name.clone()).or_default();
                s.lines.push(line);
            }
            continue;
        };
        eprintln!("pi: [{}] {said}", elapsed(start));
        let mut words = said.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("section"), Some(name), _) => {
                console.sections.entry(name.to_string()).or_default();
                current = Some(name.to_string());
            }
            (Some("end"), Some(name), Some(rc)) => {
                let s = console.sections.entry(name.to_string()).or_default();
                s.rc = rc.strip_prefix("rc=").and_then(|n| n.parse().ok());
                current = None;
            }
            (Some("mark"), Some(what), Some(t)) => {
                if let (Some(name), Ok(t)) = (&current, t.parse()) {
                    let s = console.sections.entry(name.clone()).or_default();
                    s.marks.insert(what.to_string(), t);
                }
            }
            (Some("done"), ..) => {
                console.done = true;
                break;
            }
            _ => {}
        }
    }
    // The console closes when QEMU quits; give it a moment to be reaped.
    let exited_by_itself = (0..20).any(|_| {
        let exited = matches!(child.try_wait(), Ok(Some(_)));
        if !exited {
            std::thread::sleep(Duration::from_millis(100));
        }
        exited
    });
    let _ = child.kill();
    let stderr = child.wait_with_output().map_or_else(
        |e| e.to_string(),
        |o| String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    if console.all.trim().is_empty() {
        eprintln!("pi: QEMU printed nothing on the console; its stderr: {stderr}");
        if exited_by_itself {
            return Err(format!("{QEMU} -M raspi3b quit at once: {}", stderr.trim()));
        }
    }
    let log = target_dir().join("pi-vm/last-console.txt");
    let _ = std::fs::write(&log, &console.all);
    eprintln!(
        "pi: [{}] QEMU stopped; console kept in {}",
        elapsed(start),
        log.display()
    );
    Ok(console)
}
