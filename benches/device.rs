//! What reaches the device: a fresh ext4 file system on a loop device of its own, and the
//! sectors written to that device (`/sys/block/loopN/stat`, after `sync -f`), so the figure
//! holds everything the kernel sent for the spool, the journal included, and nothing of the
//! machine's other work.
//!
//! `write_bytes` of `/proc/PID/io` is the other measure, but it counts the page-cache folios a
//! process dirties, and since Linux 6.16 ext4 caches files in large folios: a 24-byte append
//! to a folio written back since is counted as the whole folio again. A Pi's kernel (6.12 and
//! older) counts 4 KiB pages. The device count is the same on both.
//!
//! Needs root, `mkfs.ext4`, `losetup` and `mount`; without them the rows say so and the bench
//! goes on.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// 1 GiB image, sparse: holds a 5,000-mail spool many times over.
const IMAGE_BYTES: u64 = 1 << 30;

pub struct Device {
    mount: PathBuf,
    image: PathBuf,
    loop_dev: String,
}

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Device {
    /// A fresh ext4 mounted under `dir`, or why there is none.
    pub fn mount(dir: &Path) -> Result<Device, String> {
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root (a loop device needs it)".into());
        }
        let image = dir.join("ext4.img");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(IMAGE_BYTES))
            .map_err(|e| format!("image: {e}"))?;
        let path = |p: &Path| p.to_string_lossy().to_string();
        run("mkfs.ext4", &["-q", "-F", &path(&image)])?;
        let loop_dev = run("losetup", &["--find", "--show", &path(&image)])?;
        let mount = dir.join("ext4");
        let device = Device {
            mount: mount.clone(),
            image,
            loop_dev,
        };
        std::fs::create_dir_all(&mount).map_err(|e| format!("mount point: {e}"))?;
        run("mount", &[&device.loop_dev, &path(&mount)])?;
        Ok(device)
    }

    /// The mounted file system's root.
    pub fn dir(&self) -> &Path {
        &self.mount
    }

    /// Bytes written to the device so far, after writing back everything dirty on it.
    pub fn written(&self) -> u64 {
        let _ = run("sync", &["-f", &self.mount.to_string_lossy()]);
        let name = self.loop_dev.trim_start_matches("/dev/");
        std::fs::read_to_string(format!("/sys/block/{name}/stat"))
            .ok()
            .and_then(|s| s.split_whitespace().nth(6)?.parse::<u64>().ok())
            .map_or(0, |sectors| sectors * 512)
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = run("umount", &[&self.mount.to_string_lossy()]);
        let _ = run("losetup", &["--detach", &self.loop_dev]);
        let _ = std::fs::remove_file(&self.image);
    }
}
