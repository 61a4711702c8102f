//! A full and a read-only disk, for real: the spool lives on a small loop-mounted ext4 image
//! that the test fills up, and later forces read-only (an ext4 error with `errors=remount-ro`,
//! which works while files are open for writing, unlike `mount -o remount,ro`), while mail
//! arrives. What a user would notice is asserted: ingestion stops with a clear log line and the
//! alarm pattern, the cursor does not move past unspooled mail, nothing is lost, and the daemon
//! resumes by itself once the disk is writable again. Needs root (mount) and e2fsprogs (from
//! .ci/install-deps); skipped loudly when mounting is impossible here.

use crate::common::config::Config;
use crate::common::daemon::{mail, temp_dir, wait_until, Daemon};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn run(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// An ext4 image mounted on `at` (no journal, so it can be repaired and mounted again after a
/// forced error); unmounted on drop.
struct Disk {
    image: PathBuf,
    at: PathBuf,
}

impl Disk {
    fn create(image: &Path, at: &Path, size_mb: u32) -> Option<Disk> {
        std::fs::create_dir_all(at).ok()?;
        let f = std::fs::File::create(image).ok()?;
        f.set_len(u64::from(size_mb) << 20).ok()?;
        let image_s = image.to_str()?;
        if !run(
            "mkfs.ext4",
            &["-q", "-F", "-m", "0", "-O", "^has_journal", image_s],
        ) {
            return None;
        }
        let disk = Disk {
            image: image.to_path_buf(),
            at: at.to_path_buf(),
        };
        disk.mount().then_some(disk)
    }

    fn mount(&self) -> bool {
        run(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                self.image.to_str().unwrap_or_default(),
                self.at.to_str().unwrap_or_default(),
            ],
        )
    }

    /// The loop device's name (`loop3`), for /sys/fs/ext4/<dev>/.
    fn device(&self) -> String {
        let out = Command::new("findmnt")
            .args(["-n", "-o", "SOURCE"])
            .arg(&self.at)
            .output()
            .expect("findmnt");
        let source = String::from_utf8_lossy(&out.stdout).trim().to_string();
        source.rsplit('/').next().unwrap_or_default().to_string()
    }

    /// Forces the file system read-only, as ext4 does itself on an I/O error.
    fn force_read_only(&self) {
        let knob = format!("/sys/fs/ext4/{}/trigger_fs_error", self.device());
        std::fs::write(&knob, "mailbeacon test").expect("trigger an ext4 error");
    }

    fn is_read_only(&self) -> bool {
        let out = Command::new("findmnt")
            .args(["-n", "-o", "OPTIONS"])
            .arg(&self.at)
            .output()
            .expect("findmnt");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(',')
            .any(|o| o == "ro" || o == "emergency_ro")
    }

    /// What an operator does after an ext4 error: unmount (possible only once nothing holds a
    /// file on it), repair, mount again.
    fn repair(&self) -> bool {
        run("umount", &[self.at.to_str().unwrap_or_default()])
            && Command::new("e2fsck")
                .args(["-f", "-y"])
                .arg(&self.image)
                .status()
                .is_ok_and(|s| s.code().is_some_and(|c| c <= 2))
            && self.mount()
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// Writes until the file system refuses; returns the filler's path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
    path
}

/// Distinct mails delivered (a mail may be delivered twice around a crash; never zero times).
fn distinct(discord: &FakeDiscord) -> usize {
    let mut titles = discord.delivered_titles("diskTOKEN");
    titles.sort();
    titles.dedup();
    titles.len()
}

fn last_uid(daemon: &Daemon) -> u64 {
    daemon.status()["accounts"][0]["last_uid"]
        .as_u64()
        .unwrap_or(0)
}

fn pattern(daemon: &Daemon) -> String {
    daemon.status()["indicator"]["pattern"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_full_then_read_only_disk_stops_ingestion_loudly_and_loses_nothing() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: mounting a disk image needs root");
        return;
    }
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let dir = temp_dir("disk");
    let state = dir.join("state");
    // The spool directory itself is the mount: the control socket (in state_dir) stays off it,
    // so the image can be unmounted while the daemon runs.
    let spool = state.join("spool");
    let Some(disk) = Disk::create(&dir.join("spool.img"), &spool, 32) else {
        eprintln!(
            "SKIPPED: cannot create and loop-mount an ext4 image here (mkfs.ext4, loop devices)"
        );
        return;
    };

    let url = discord.webhook("1", "diskTOKEN", Behaviour::Ok);
    let mut daemon = Config::new(&dir, &dovecot)
        .account("poll_interval = \"2s\"\ntimeout = \"5s\"")
        .webhook(&url)
        .start_watching();
    let deliver = |from: usize, to: usize| {
        for i in from..to {
            // Text deflate cannot shrink (the spool deflates its records): the disk must fill.
            let body: String = std::iter::repeat_with(fastrand::alphanumeric)
                .take(1200)
                .collect();
            dovecot.deliver(
                "alice",
                "INBOX",
                &mail(
                    "d@example.org",
                    &format!("Disk {i:03}"),
                    &body,
                    &format!("d{i}@x"),
                ),
            );
        }
    };
    deliver(0, 5);
    wait_until(Duration::from_secs(15), "five delivered", || {
        distinct(&discord) == 5
    });
    let mut sent = 5;

    // The disk fills up. sled may still have room in pages it already holds, so mail keeps
    // coming until a write needs new space.
    let until_alarm = |daemon: &Daemon, sent: &mut usize| {
        // 25 at a time: records are small once deflated, and sled has room in the segment it
        // holds for a few hundred of them.
        for _ in 0..40 {
            deliver(*sent, *sent + 25);
            *sent += 25;
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while std::time::Instant::now() < deadline {
                if pattern(daemon) == "alarm" {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!(
            "no alarm after {sent} mails on a full disk\n{}",
            daemon.log_text()
        );
    };
    let filler = fill(&spool);
    until_alarm(&daemon, &mut sent);
    let log = daemon.log_text();
    assert!(
        log.contains("ingestion and delivery pause, mail stays on the server"),
        "{log}"
    );
    assert_eq!(daemon.status()["running"], true, "the daemon keeps running");

    // While the disk stays full, new mail does not move the cursor.
    let cursor = last_uid(&daemon);
    deliver(sent, sent + 5);
    sent += 5;
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        last_uid(&daemon),
        cursor,
        "the cursor stays put on a full disk"
    );
    assert_eq!(pattern(&daemon), "alarm");

    // The worst moment for a crash: killed while the disk is full. After a restart on a freed
    // disk every mail arrives.
    daemon.kill9();
    std::fs::remove_file(&filler).expect("free the disk");
    daemon.spawn();
    wait_until(
        Duration::from_secs(60),
        "all delivered after the restart",
        || distinct(&discord) >= sent,
    );

    // Full again, and this time space returns while the daemon runs: it resumes by itself.
    let filler = fill(&spool);
    until_alarm(&daemon, &mut sent);
    std::fs::remove_file(&filler).expect("free the disk");
    wait_until(
        Duration::from_secs(60),
        "all delivered after space returned",
        || distinct(&discord) >= sent,
    );
    wait_until(Duration::from_secs(10), "the alarm clears", || {
        pattern(&daemon) != "alarm"
    });
    assert!(daemon
        .log_text()
        .contains("spool: writable again and reopened"));

    // Read-only, as after an ext4 error: loud, and the daemon lets go of the spool's files so
    // that the operator can unmount, repair and remount; then it resumes by itself.
    disk.force_read_only();
    wait_until(Duration::from_secs(10), "ext4 read-only", || {
        disk.is_read_only()
    });
    deliver(sent, sent + 5);
    sent += 5;
    wait_until(
        Duration::from_secs(30),
        "the alarm for a read-only disk",
        || pattern(&daemon) == "alarm",
    );
    let cursor = last_uid(&daemon);
    wait_until(
        Duration::from_secs(30),
        "the disk unmounted and repaired",
        || disk.repair(),
    );
    assert!(!disk.is_read_only());
    wait_until(
        Duration::from_secs(60),
        "all delivered after the repair",
        || distinct(&discord) >= sent,
    );
    assert!(last_uid(&daemon) > cursor, "the cursor moves again");
    wait_until(Duration::from_secs(10), "the alarm clears", || {
        pattern(&daemon) != "alarm"
    });

    assert_eq!(distinct(&discord), sent, "each mail delivered");
    let mut spooled: Vec<String> = daemon
        .dump()
        .iter()
        .map(|i| i["subject"].as_str().unwrap_or_default().to_string())
        .collect();
    spooled.sort();
    spooled.dedup();
    assert_eq!(spooled.len(), sent, "each mail spooled");
}
