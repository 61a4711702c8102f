//! The one `mailbeacon.toml` the daemon tests run, built from shared defaults and the few keys
//! a test changes: alice's INBOX on the test Dovecot (implicit TLS, 1 s polls) and the `sim`
//! LED traced to `dir/led.jsonl`, plus the test's own sinks and buckets.

use crate::common::daemon::{temp_dir, Daemon};
use crate::common::dovecot::{Dovecot, PASSWORD};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `Config::new(dir, dovecot)` is the config most daemon tests run, its state in `dir/state`;
/// each method changes one part of it, and [`Config::text`] writes it out:
///
/// ```ignore
/// let dir = temp_dir("bound");
/// let daemon = Config::new(&dir, &dovecot)
///     .top("spool_max_mb = 0.002")
///     .account("poll_interval = \"2s\"")
///     .webhook(&url)
///     .start_watching();
/// ```
pub struct Config {
    dir: PathBuf,
    port: u16,
    ca: PathBuf,
    top: String,
    home: String,
    without: Vec<String>,
    accounts: Option<String>,
    body: String,
}

impl Config {
    pub fn new(dir: &Path, dovecot: &Dovecot) -> Config {
        Config::on(dir, dovecot.imaps_port(), dovecot.ca_file())
    }

    /// [`Config::new`] for another server: alice's INBOX on 127.0.0.1:`port` (implicit TLS)
    /// trusting only `ca` (tests/servers.rs runs Cyrus and Courier this way).
    pub fn on(dir: &Path, port: u16, ca: PathBuf) -> Config {
        Config {
            dir: dir.to_path_buf(),
            port,
            ca,
            top: String::new(),
            home: String::new(),
            without: Vec::new(),
            accounts: None,
            body: String::new(),
        }
    }

    /// [`Config::new`] in a fresh directory named after `tag`.
    pub fn temp(tag: &str, dovecot: &Dovecot) -> Config {
        Config::new(&temp_dir(tag), dovecot)
    }

    /// Top-level keys (`spool_max_mb = 1`), written right after `state_dir`.
    pub fn top(mut self, keys: &str) -> Config {
        self.top = format!("{}{keys}\n", self.top);
        self
    }

    /// Keys of the `home` account; each replaces the default of the same name (see [`account`]).
    pub fn account(mut self, keys: &str) -> Config {
        self.home = format!("{}{keys}\n", self.home);
        self
    }

    /// Leaves `key` out of the `home` account (`ca_file`: trust only the system's roots).
    pub fn without(mut self, key: &str) -> Config {
        self.without.push(key.to_string());
        self
    }

    /// `[[account]]` tables (made with [`account`]) in place of the `home` account.
    pub fn accounts(mut self, tables: &str) -> Config {
        self.accounts = Some(tables.to_string());
        self
    }

    /// `[[sink]]` tables. A test that tunes the LED adds its own `[indicator]` table here or
    /// with the buckets; the `sim` keys join it.
    pub fn sinks(mut self, tables: &str) -> Config {
        self.body = format!("{}{}\n\n", self.body, tables.trim());
        self
    }

    /// `[[bucket]]` tables.
    pub fn buckets(self, tables: &str) -> Config {
        self.sinks(tables)
    }

    /// Every mail to one webhook: sink `alerts` at `url`, through the catch-all bucket `unknown`.
    pub fn webhook(self, url: &str) -> Config {
        self.sinks(&format!(
            "[[sink]]\nname = \"alerts\"\nkind = \"webhook\"\nurl = \"{url}\""
        ))
        .buckets("[[bucket]]\nname = \"unknown\"\nsinks = [\"alerts\"]")
    }

    pub fn text(&self) -> String {
        let led = format!(
            "backend = \"sim\"\ntrace = \"{}\"\n",
            self.dir.join("led.jsonl").display()
        );
        let body = if self.body.contains("[indicator]\n") {
            self.body
                .replacen("[indicator]\n", &format!("[indicator]\n{led}"), 1)
        } else {
            format!("{}[indicator]\n{led}", self.body)
        };
        let accounts = self.accounts.clone().unwrap_or_else(|| {
            let defaults = defaults("home", "alice", self.port, &self.ca);
            table(&defaults, &self.home, &self.without)
        });
        format!(
            "state_dir = \"{state}\"\n{top}\n{accounts}\n{body}",
            state = self.dir.join("state").display(),
            top = self.top,
        )
    }

    /// Writes the config to `dir/mailbeacon.toml`; its path.
    pub fn write(&self) -> PathBuf {
        let path = self.dir.join("mailbeacon.toml");
        std::fs::write(&path, self.text()).expect("write config");
        path
    }

    /// The daemon on this config, written to `dir/mailbeacon.toml`.
    pub fn start(&self) -> Daemon {
        Daemon::start(&self.dir, &self.text())
    }

    /// [`Config::start`], returned once the first account's mailbox is watched.
    pub fn start_watching(&self) -> Daemon {
        let daemon = self.start();
        wait_watching(&daemon);
        daemon
    }
}

/// The config of [`Config::new`] with `top` keys, `sinks` and `buckets`.
pub fn config(dir: &Path, dovecot: &Dovecot, top: &str, sinks: &str, buckets: &str) -> String {
    Config::new(dir, dovecot)
        .top(top)
        .sinks(sinks)
        .buckets(buckets)
        .text()
}

/// A daemon on [`config`] in a fresh directory, returned once alice's INBOX is watched.
pub fn start_watching(tag: &str, dovecot: &Dovecot, sinks: &str, buckets: &str) -> Daemon {
    Config::temp(tag, dovecot)
        .sinks(sinks)
        .buckets(buckets)
        .start_watching()
}

/// Waits until the first account's first folder is watched (IDLE or polling).
pub fn wait_watching(daemon: &Daemon) {
    crate::common::daemon::wait_until(Duration::from_secs(20), "the mailbox to be watched", || {
        daemon.status()["accounts"][0]["state"] == "idle"
    });
}

/// One `[[account]]` table: `user`'s INBOX on `dovecot`'s implicit-TLS port with its private
/// CA, polled every second. Each of `keys` replaces the default of the same name; a
/// `password_file` or `credential` replaces the `password`.
pub fn account(dovecot: &Dovecot, name: &str, user: &str, keys: &str) -> String {
    let defaults = defaults(name, user, dovecot.imaps_port(), &dovecot.ca_file());
    table(&defaults, keys, &[])
}

fn defaults(name: &str, user: &str, port: u16, ca: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("name", format!("\"{name}\"")),
        ("host", "\"127.0.0.1\"".into()),
        ("port", port.to_string()),
        ("tls", "\"implicit\"".into()),
        ("username", format!("\"{user}\"")),
        ("password", format!("\"{PASSWORD}\"")),
        ("ca_file", format!("\"{}\"", ca.display())),
        ("folders", "[\"INBOX\"]".into()),
        ("poll_interval", "\"1s\"".into()),
    ]
}

/// `[[account]]` with the `defaults` that `keys` and `without` leave, then `keys`.
fn table(defaults: &[(&str, String)], keys: &str, without: &[String]) -> String {
    let set: Vec<&str> = keys
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .map(|k| match k {
            "password_file" | "credential" => "password",
            k => k,
        })
        .collect();
    let mut out = String::from("[[account]]\n");
    for (key, value) in defaults {
        if !set.contains(key) && !without.iter().any(|w| w == key) {
            out += &format!("{key} = {value}\n");
        }
    }
    format!("{out}{}\n", keys.trim())
}
