//! The power-cut VM: Debian's amd64 kernel under QEMU's TCG (a KVM guest hangs on these
//! machines), an initramfs with busybox, the virtio and ext4 modules, the static x86_64 build
//! of mailbeacon and tests/powercut/init.sh; the spool on an ext4 disk image attached with
//! `cache=writeback`, so what the guest had not synced is lost when QEMU is killed. The only
//! network is one `guestfwd` relay per server on this machine (`restrict=on`). Or the same on
//! QEMU's Raspberry Pi 3B: Debian's arm64 kernel, the static aarch64 build, the disk image as
//! the Pi's SD card (`-drive if=sd`, the kernel's `sdhost` driver) and QEMU's USB network
//! adapter on the Pi's USB host.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const TARGET: &str = "x86_64-unknown-linux-musl";
const PI_TARGET: &str = "aarch64-unknown-linux-musl";
/// The guest's name for this machine (init.sh maps `localhost` to it).
const HOST_IN_GUEST: &str = "10.0.2.100";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo().join("target"), PathBuf::from)
}

/// Kernel, modules and busybox from `.ci/powercut-vm` (which installs QEMU and the rest too),
/// or for the Pi from `.ci/powercut-pi`, with its device tree.
pub struct Parts {
    pub kernel: PathBuf,
    pub modules: PathBuf,
    pub busybox: PathBuf,
    pub dtb: Option<PathBuf>,
}

/// Runs `.ci/powercut-vm`; panics with its words when it fails: the test must run, not skip.
pub fn parts() -> Parts {
    fetch(".ci/powercut-vm", "powercut-vm")
}

/// Runs `.ci/powercut-pi` (its parts shared with tests/pi.rs in target/pi-vm).
pub fn pi_parts() -> Parts {
    fetch(".ci/powercut-pi", "pi-vm")
}

fn fetch(script: &str, cache: &str) -> Parts {
    let cache = target_dir().join(cache);
    let out = Command::new(repo().join(script))
        .arg(&cache)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script} failed: {text}");
    let find = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(PathBuf::from)
    };
    let get =
        |key: &str| find(key).unwrap_or_else(|| panic!("{script} did not print {key}=: {text}"));
    Parts {
        kernel: get("kernel"),
        modules: get("modules"),
        busybox: get("busybox"),
        dtb: find("dtb"),
    }
}

/// The cargo profile of the guest's binary: release without LTO and with parallel codegen. The
/// code is the shipped code; only the optimiser's effort differs, and the build takes about a
/// third of the release build's time on 2 cores. Defined here, through cargo's environment, so
/// no other build sees it.
const PROFILE: [(&str, &str); 4] = [
    ("CARGO_PROFILE_POWERCUT_INHERITS", "release"),
    ("CARGO_PROFILE_POWERCUT_LTO", "false"),
    ("CARGO_PROFILE_POWERCUT_CODEGEN_UNITS", "16"),
    ("CARGO_PROFILE_POWERCUT_OPT_LEVEL", "1"),
];

/// Builds the static x86_64 binary (a no-op when fresh) and the relay; returns their paths.
pub fn build() -> (PathBuf, PathBuf) {
    let status = cargo()
        .envs(PROFILE)
        .args([
            "build",
            "--locked",
            "--profile",
            "powercut",
            "--target",
            TARGET,
        ])
        .args(["--bin", "mailbeacon"])
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build for {TARGET} failed");
    (
        target_dir().join(TARGET).join("powercut/mailbeacon"),
        relay(),
    )
}

/// The static aarch64 release binary: the very build tests/pi.rs runs and `.ci/cross`
/// packages, so in a full test run it is already fresh. Returns it and the relay.
pub fn build_pi() -> (PathBuf, PathBuf) {
    let status = cargo()
        .args(["build", "--release", "--locked", "--no-default-features"])
        .args(["--target", PI_TARGET, "--bin", "mailbeacon"])
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build for {PI_TARGET} failed");
    (
        target_dir().join(PI_TARGET).join("release/mailbeacon"),
        relay(),
    )
}

fn cargo() -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    // What cargo tells a test about its package would make this build differ from a plain one
    // and rebuild each time (as in tests/pi/vm.rs).
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        let from_test = [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|p| k.starts_with(p))
            || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&k.as_str());
        if from_test {
            command.env_remove(k);
        }
    }
    command.current_dir(repo());
    command
}

/// Compiles tests/powercut/relay.rs (std alone, for this machine); returns its path.
fn relay() -> PathBuf {
    let relay = target_dir().join("powercut-vm/relay");
    if let Some(dir) = relay.parent() {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    let status = Command::new("rustc")
        .args(["--edition", "2021", "-O", "-o"])
        .arg(&relay)
        .arg(repo().join("tests/powercut/relay.rs"))
        .status()
        .expect("run rustc");
    assert!(status.success(), "rustc tests/powercut/relay.rs failed");
    relay
}

fn copy(from: &Path, to: &Path) {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
}

/// Packs the initramfs in `root`: busybox, init.sh, the modules, and `files` under /pc.
pub fn initramfs(root: &Path, parts: &Parts, files: &[(&str, &Path)]) -> PathBuf {
    copy(&parts.busybox, &root.join("bin/busybox"));
    copy(&repo().join("tests/powercut/init.sh"), &root.join("init"));
    for entry in std::fs::read_dir(&parts.modules)
        .expect("modules")
        .flatten()
    {
        copy(&entry.path(), &root.join("modules").join(entry.file_name()));
    }
    for (name, from) in files {
        copy(from, &root.join("pc").join(name));
    }
    for d in ["proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    let image = root.with_extension("cpio");
    let status = Command::new("sh")
        .current_dir(root)
        .arg("-c")
        .arg(format!(
            "chmod 755 init bin/busybox pc/mailbeacon && find . | cpio -o -H newc --quiet > '{}'",
            image.display()
        ))
        .status()
        .expect("run cpio");
    assert!(status.success(), "packing the initramfs failed");
    image
}

/// A fresh ext4 image of `mib` MiB at `path`.
pub fn disk(path: &Path, mib: u64) {
    let file = std::fs::File::create(path).expect("create disk image");
    file.set_len(mib << 20).expect("size disk image");
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(path)
        .output()
        .expect("run mkfs.ext4");
    assert!(
        out.status.success(),
        "mkfs.ext4: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running VM and its console.
pub struct Vm {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub console: String,
}

/// What the VM needs: kernel, initramfs, disk and the host ports the guest may reach.
pub struct Machine<'a> {
    pub parts: &'a Parts,
    pub initrd: PathBuf,
    pub disk: PathBuf,
    pub relay: PathBuf,
    pub ports: Vec<u16>,
}

impl Machine<'_> {
    /// Boots with init.sh in `mode` (`run`, or `final` expecting `expect` mails delivered).
    pub fn boot(&self, mode: &str, expect: usize) -> Vm {
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // One relay process per guest connection, to the same port on this machine's loopback.
        let forwards: String = self
            .ports
            .iter()
            .map(|p| {
                format!(
                    ",guestfwd=tcp:{HOST_IN_GUEST}:{p}-cmd:{} 127.0.0.1:{p}",
                    self.relay.display()
                )
            })
            .collect();
        let netdev = format!("user,id=n0,restrict=on{forwards}");
        let drive = |iface: &str| {
            format!(
                "file={},format=raw,if={iface},cache=writeback",
                self.disk.display()
            )
        };
        let args = format!("mb.epoch={epoch} mb.mode={mode} mb.expect={expect}");
        let mut command = match &self.parts.dtb {
            None => {
                let mut c = Command::new("qemu-system-x86_64");
                // no_timer_check: on a loaded host the emulated CPU can be too slow for the
                // kernel's IO-APIC timer check, which then panics at boot (seen in a soak).
                c.args(["-M", "pc", "-accel", "tcg", "-m", "512", "-smp", "1"])
                    .args(["-drive", &drive("virtio")])
                    .args(["-device", "virtio-net-pci,netdev=n0"])
                    .arg("-append")
                    .arg(format!(
                        "console=ttyS0 panic=-1 loglevel=3 no_timer_check rdinit=/init {args} \
                         mb.disk=/dev/vda mb.net=eth0"
                    ));
                c
            }
            Some(dtb) => {
                let mut c = Command::new("qemu-system-aarch64");
                c.args(["-M", "raspi3b", "-dtb"])
                    .arg(dtb)
                    .args(["-drive", &drive("sd")])
                    .args(["-device", "usb-net,netdev=n0"])
                    .arg("-append")
                    .arg(format!(
                        "console=ttyAMA0 loglevel=3 rdinit=/init {args} \
                         mb.disk=/dev/mmcblk0 mb.net=usb0"
                    ));
                c
            }
        };
        let mut child = command
            .args(["-display", "none", "-nodefaults", "-monitor", "none"])
            .args(["-serial", "stdio", "-no-reboot"])
            .arg("-kernel")
            .arg(&self.parts.kernel)
            .arg("-initrd")
            .arg(&self.initrd)
            .args(["-netdev", &netdev])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("QEMU: {e}"));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("QEMU's console");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).trim_end().to_string();
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Vm {
            child,
            lines,
            console: String::new(),
        }
    }
}

impl Vm {
    /// Reads the console until a line satisfies `wanted` (returned) or `limit` passes (`None`).
    pub fn wait_for(&mut self, limit: Duration, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let line = self.lines.recv_timeout(left).ok()?;
            self.console.push_str(&line);
            self.console.push('\n');
            if wanted(&line) {
                return Some(line);
            }
        }
        None
    }

    /// Reads what the console printed so far without waiting.
    pub fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.console.push_str(&line);
            self.console.push('\n');
        }
    }

    /// Pulls the plug: SIGKILL to QEMU, so nothing the guest had not written reaches the disk
    /// image. Returns the whole console of this boot.
    pub fn cut(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader thread ends with the pipe; take what it still had.
        std::thread::sleep(Duration::from_millis(50));
        self.drain();
        self.console
    }
}
