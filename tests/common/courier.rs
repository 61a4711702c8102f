//! A private Courier-IMAP (Debian's 5.0) on 127.0.0.1 for tests/servers.rs, run from the root
//! `.ci/imap-servers` unpacked (see tests/common/servers.rs): nothing of it is installed.
//!
//! Courier's paths are compiled in (`/etc/courier`, `/run/courier/authdaemon/socket`, helpers
//! under `/usr/lib/courier`), so the instance runs in a private mount namespace (`unshare
//! --mount --propagation private`): `/usr` is an overlay of the unpacked root's `usr` on the
//! system's, and `/etc/courier` and `/run/courier` are bind mounts of this instance's folder,
//! over overlays that give them a place to be mounted on. Nothing outside the namespace sees
//! any of it. Inside, one shell script (`launch.sh`, written here) builds the user database
//! (`makeuserdb` from the `userdb` text file), starts `authdaemond` with `authuserdb`, a
//! `couriertcpd` for the plaintext port and one for `imaps` through `couriertls`, as Debian's
//! `imapd-ssl` does. Mail is in maildirs owned by `nobody`.
//!
//! IDLE is the setting that matters: `IMAP_ENHANCEDIDLE=1` watches the maildir through FAM
//! (gamin, whose `gam_server` the library starts from the overlaid `/usr`) and pushes new mail;
//! Debian's default `0` looks only every `IMAP_IDLE_TIMEOUT` (60 s) while idling, and tells
//! about new mail in its answers to `DONE` and `NOOP`.

use crate::common::cyrus::nobody;
use crate::common::instance::{make_cert, read, run, Instance};
use crate::common::servers::{library_path, pin_uidvalidity, PASSWORD, USERS};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Courier {
    inst: Instance,
    root: PathBuf,
    enhanced_idle: bool,
}

impl Courier {
    /// Prepares a fresh instance and starts it, each user's INBOX empty with a settled
    /// UIDVALIDITY ([`pin_uidvalidity`]). On failure the folder is removed and the error
    /// carries the log.
    pub fn start(root: &Path, enhanced_idle: bool) -> Result<Courier, String> {
        let c = Courier {
            inst: Instance::new("mbco"),
            root: root.to_path_buf(),
            enhanced_idle,
        };
        let started = c
            .prepare()
            .and_then(|()| c.launch())
            .and_then(|()| c.seed());
        match started {
            Ok(()) => Ok(c),
            Err(e) => {
                let log = c.log();
                c.inst.remove();
                Err(format!("{e}\n{log}"))
            }
        }
    }

    pub fn instance(&self) -> &Instance {
        &self.inst
    }

    fn prepare(&self) -> Result<(), String> {
        let d = &self.inst.dir;
        let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
        let etc = d.join("etc/courier");
        fs::create_dir_all(&etc).map_err(|e| io("mkdir etc/courier", e))?;
        fs::create_dir_all(d.join("run/courier/authdaemon")).map_err(|e| io("mkdir run", e))?;
        fs::write(
            etc.join("authdaemonrc"),
            "authmodulelist=\"authuserdb\"\ndaemons=2\nauthdaemonvar=/run/courier/authdaemon\n\
             DEBUG_LOGIN=1\nDEFAULTOPTIONS=\"\"\nLOGGEROPTS=\"\"\n",
        )
        .map_err(|e| io("authdaemonrc", e))?;

        let hash = Command::new("openssl")
            .args(["passwd", "-6", PASSWORD])
            .output()
            .map_err(|e| io("openssl passwd", e))?;
        let hash = String::from_utf8_lossy(&hash.stdout).trim().to_string();
        if !hash.starts_with("$6$") {
            return Err(format!("openssl passwd -6 gave {hash:?}"));
        }
        let (uid, gid) = nobody();
        let mut userdb = String::new();
        for user in USERS {
            let home = d.join("home").join(user);
            for sub in ["cur", "new", "tmp"] {
                fs::create_dir_all(home.join("Maildir").join(sub))
                    .map_err(|e| io("mkdir Maildir", e))?;
            }
            userdb += &format!(
                "{user}\tuid={uid}|gid={gid}|home={h}|mail={h}/Maildir|systempw={hash}\n",
                h = home.display()
            );
        }
        // makeuserdb refuses a userdb that others can read.
        fs::write(etc.join("userdb"), userdb).map_err(|e| io("userdb", e))?;
        fs::set_permissions(etc.join("userdb"), fs::Permissions::from_mode(0o600))
            .map_err(|e| io("chmod userdb", e))?;

        make_cert(d)?;
        let pem = read(&d.join("key.pem")) + &read(&d.join("cert.pem"));
        fs::write(etc.join("imapd.pem"), pem).map_err(|e| io("imapd.pem", e))?;
        fs::set_permissions(etc.join("imapd.pem"), fs::Permissions::from_mode(0o600))
            .map_err(|e| io("chmod imapd.pem", e))?;
        fs::write(d.join("launch.sh"), self.script()).map_err(|e| io("launch.sh", e))?;

        let mut chown = Command::new("chown");
        chown
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(d.join("home"));
        run(chown)
    }

    /// The script run inside the mount namespace; it ends by exec'ing the `imaps` listener, so
    /// that every process of the instance is in the group [`Instance`] stops.
    fn script(&self) -> String {
        let d = self.inst.dir.display();
        let root = self.root.display();
        // Debian's /etc/courier/imapd and imapd-ssl, reduced to what matters here. Every
        // instance has its own gam_server (GAM_CLIENT_ID names its socket): one started by
        // another instance would die with that instance's namespace.
        let env = format!(
            "env -i PATH=/usr/bin:/usr/sbin:/bin:/sbin LD_LIBRARY_PATH={libs} \
             GAM_CLIENT_ID={gam} \
             IMAP_CAPABILITY='IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT \
             THREAD=REFERENCES SORT QUOTA IDLE' \
             IMAP_KEYWORDS=1 IMAP_ACL=1 IMAP_IDLE_TIMEOUT=60 IMAP_ENHANCEDIDLE={idle} \
             IMAP_MAILBOX_SANITY_CHECK=1 IMAP_USELOCKS=1 IMAP_UMASK=022 \
             IMAP_TRASHFOLDERNAME=Trash MAILDIRPATH=Maildir DEBUG_LOGIN=1",
            libs = library_path(&self.root),
            idle = u8::from(self.enhanced_idle),
            gam = self
                .inst
                .dir
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().to_string()),
        );
        let tcpd = format!(
            "/usr/sbin/couriertcpd -address=127.0.0.1 -maxprocs=40 -maxperip=40 \
             -nodnslookup -noidentlookup -stderr={d}/imapd.log"
        );
        let imapd = "/usr/lib/courier/courier/imaplogin /usr/bin/imapd Maildir";
        format!(
            "# generated by tests/common/courier.rs; runs in a private mount namespace
set -eu
mount -t overlay overlay -o lowerdir={root}/usr:/usr /usr
mount -t overlay overlay -o lowerdir={d}/etc:/etc /etc
mount --bind {d}/etc/courier /etc/courier
mount -t overlay overlay -o lowerdir={d}/run:/run /run
mount --bind {d}/run/courier /run/courier
export LD_LIBRARY_PATH={libs}
/usr/sbin/makeuserdb
# The listener below replaces this shell: when it dies (its parent-death signal), these go too.
setpriv --pdeathsig TERM /usr/lib/courier/courier-authlib/authdaemond &
setpriv --pdeathsig TERM {env} {tcpd} {imap} {imapd} &
exec {env} IMAP_TLS=1 TLS_CERTFILE=/etc/courier/imapd.pem TLS_VERIFYPEER=NONE \\
  IMAP_CAPABILITY_TLS='IMAP4rev1 UIDPLUS CHILDREN NAMESPACE IDLE AUTH=PLAIN' \\
  {tcpd} {imaps} /usr/bin/couriertls -server -tcpd {imapd}
",
            libs = library_path(&self.root),
            imap = self.inst.imap_port,
            imaps = self.inst.imaps_port,
        )
    }

    /// Starts the namespace and its processes, and waits until both ports answer.
    pub fn launch(&self) -> Result<(), String> {
        let d = &self.inst.dir;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("launch.log"))
            .map_err(|e| format!("launch.log: {e}"))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh"])
            .arg(d.join("launch.sh"))
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        self.inst.launch(cmd)
    }

    fn seed(&self) -> Result<(), String> {
        for user in USERS {
            let mut s = crate::common::servers::login(self.inst.imap_port, user, PASSWORD)?;
            pin_uidvalidity(&mut s, "INBOX")?;
            let _ = s.logout();
        }
        Ok(())
    }

    /// The namespace script's output, authdaemond's and the IMAP servers' logs.
    pub fn log(&self) -> String {
        let d = &self.inst.dir;
        format!(
            "--- Courier ({} IDLE) in {} ---\n--- launch.log ---\n{}--- imapd.log ---\n{}",
            if self.enhanced_idle {
                "enhanced"
            } else {
                "default"
            },
            d.display(),
            read(&d.join("launch.log")),
            read(&d.join("imapd.log")),
        )
    }
}
