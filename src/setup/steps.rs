//! The questions of `setup`, one step each, every answer tested before the next: the mailbox
//! login (account.rs), the Discord channel (discord.rs), and here the bucket templates, the LED
//! and buzzer, and what the steps share. A failed test asks again at a terminal and ends setup
//! (exit 1, nothing written) when the answers came from flags.

use super::ask::{Ask, Failed};
use super::document::{rules, strings, Document};
use super::{Flags, Plan};
use crate::config::{Config, Secret};
use std::path::Path;
use toml_edit::{value, DocumentMut, Item, Table};

pub(crate) struct Steps<'a> {
    pub(crate) ask: &'a mut Ask,
    pub(crate) flags: &'a Flags,
    pub(crate) doc: &'a mut Document,
    pub(crate) dir: &'a Path,
    pub(crate) path: &'a Path,
    pub(crate) plan: &'a mut Plan,
    /// The bot token once given: one bot posts to every channel.
    pub(crate) bot_token: Option<Secret>,
}

impl Steps<'_> {
    /// A config holding `account`, `sink` and a bucket, parsed as `check` would: the same
    /// validation and defaults the daemon gets, for testing one answer.
    pub(super) fn probe_config(
        &self,
        account: Option<&Table>,
        sink: Option<&Table>,
        indicator: Option<&Table>,
    ) -> Result<Config, Failed> {
        let mut d = DocumentMut::new();
        d["state_dir"] = self
            .doc
            .doc
            .get("state_dir")
            .cloned()
            .unwrap_or(value("/var/lib/mailbeacon"));
        let mut a = toml_edit::ArrayOfTables::new();
        a.push(account.cloned().unwrap_or_else(|| {
            let mut t = Table::new();
            t["name"] = value("probe");
            t["host"] = value("127.0.0.1");
            t["tls"] = value("none");
            t["username"] = value("probe");
            t["password"] = value("probe");
            t
        }));
        d["account"] = Item::ArrayOfTables(a);
        let mut s = toml_edit::ArrayOfTables::new();
        let sink = sink.cloned().unwrap_or_else(|| {
            let mut t = Table::new();
            t["name"] = value("probe");
            t["kind"] = value("webhook");
            t["url"] = value("https://discord.com/api/webhooks/1/probe");
            t
        });
        let sink_name = sink
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or("probe")
            .to_string();
        s.push(sink);
        d["sink"] = Item::ArrayOfTables(s);
        let mut b = toml_edit::ArrayOfTables::new();
        let mut bucket = Table::new();
        bucket["name"] = value("probe");
        bucket["sinks"] = value(strings(&[sink_name]));
        b.push(bucket);
        d["bucket"] = Item::ArrayOfTables(b);
        if let Some(i) = indicator {
            d["indicator"] = Item::Table(i.clone());
        }
        Config::parse(self.path, &d.to_string(), true).map_err(|e| {
            // The probe file's key names are the user's own; its name is ours.
            e.to_string()
                .replace(&format!("{}: ", self.path.display()), "")
        })
    }

    /// A failed test: asked again at a terminal, the end of setup otherwise.
    pub(super) fn again(&mut self, what: &str, why: &str) -> Result<(), Failed> {
        self.ask.say(&format!("FAIL {what}: {why}"));
        if self.ask.yes || !self.ask.confirm("Try again?", None, true)? {
            return Err(format!("{what}: {why}; nothing was written"));
        }
        Ok(())
    }

    /// Bucket templates: VIP senders, customers, payments, and everything else.
    pub(crate) fn buckets(&mut self, sinks: &(String, String)) -> Result<(), Failed> {
        let f = self.flags.clone();
        let chosen = self.ask.text(
            "Buckets besides \"everything else\" (vip, customers, payments; comma list, or none)",
            "--buckets",
            f.buckets.as_deref(),
            Some("payments"),
        )?;
        let chosen: Vec<String> = chosen
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty() && s != "none")
            .collect();
        for b in &chosen {
            let (severity, rules_of) = match b.as_str() {
                "vip" => {
                    let who = self.ask.text(
                        "VIP senders' addresses (comma-separated)",
                        "--vip",
                        f.vip.as_deref(),
                        None,
                    )?;
                    (
                        "P1",
                        vec![("from", format!("(?i)({})>?$", alternatives(&who)))],
                    )
                }
                "customers" => {
                    let to = self.ask.text("Addresses your customers write to (comma-separated, e.g. support@your.shop)", "--customers", f.customers.as_deref(), None)?;
                    ("P2", vec![("to", format!("(?i)({})", alternatives(&to)))])
                }
                "payments" => (
                    "P2",
                    vec![
                        ("from", r"(?i)@(stripe|paypal)\.com>?$".to_string()),
                        (
                            "subject",
                            "(?i)(payment|invoice|receipt|payout|refund)".to_string(),
                        ),
                    ],
                ),
                other => {
                    return Err(format!(
                        "--buckets: {other:?} is not one of vip, customers, payments"
                    ))
                }
            };
            let t = self.doc.named("bucket", b);
            t["severity"] = value(severity);
            t["sinks"] = value(strings(std::slice::from_ref(&sinks.0)));
            t["rules"] = value(rules(&rules_of));
        }
        let fallback = self.doc.fallback().unwrap_or_else(|| "other".to_string());
        self.doc.move_last("bucket", &fallback);
        let t = self.doc.named("bucket", &fallback);
        t["sinks"] = value(strings(std::slice::from_ref(&sinks.1)));
        if !t.contains_key("severity") {
            t["severity"] = value("P3");
        }
        self.ask.say(&format!(
            "ok   buckets: {}{}{fallback} (everything else)",
            chosen.join(", "),
            if chosen.is_empty() { "" } else { ", " }
        ));
        Ok(())
    }

    /// The LED and buzzer: the chips found here, the lines, claimed and released as a test.
    pub(crate) fn indicator(&mut self) -> Result<(), Failed> {
        let f = self.flags.clone();
        let (found, labels) = crate::indicator::cdev::detected();
        self.ask.say(&format!("  GPIO chips here: {found}"));
        let default = labels
            .iter()
            .find(|l| l.starts_with("pinctrl-"))
            .cloned()
            .unwrap_or_else(|| "none".into());
        loop {
            let chip = self.ask.text(
                "GPIO chip for the LED and buzzer (a label, a /dev/gpiochipN path, or none)",
                "--gpio",
                f.gpio.as_deref(),
                Some(&default),
            )?;
            let mut t = Table::new();
            if chip == "none" {
                t["backend"] = value("none");
            } else {
                let led = self.ask.number(
                    "LED line (BCM number)",
                    "--led",
                    f.led.map(|l| l.to_string()).as_deref(),
                    Some("17"),
                )?;
                let buzzer = self.ask.text(
                    "Buzzer line (BCM number, or none)",
                    "--buzzer",
                    f.buzzer.as_deref(),
                    Some("27"),
                )?;
                t["backend"] = value("cdev");
                t["chip"] = value(chip.as_str());
                t["led"] = value(pin(led));
                if buzzer != "none" {
                    match buzzer.parse() {
                        Ok(n) => t["buzzer"] = value(pin(n)),
                        Err(_) => {
                            self.again("gpio", &format!("buzzer line {buzzer:?} is not a number"))?;
                            continue;
                        }
                    }
                }
            }
            let tested = self.probe_config(None, None, Some(&t)).and_then(|c| {
                crate::indicator::cdev::probe(&c.indicator).map_err(|e| e.to_string())
            });
            match tested {
                Ok(Some(found)) => self.ask.say(&format!("ok   gpio {found}")),
                Ok(None) => self.ask.say("ok   no LED or buzzer"),
                Err(e) => {
                    self.again("gpio", &e)?;
                    continue;
                }
            }
            let target = self.doc.table("indicator");
            for key in ["backend", "chip", "led", "buzzer"] {
                target.remove(key);
            }
            for (k, v) in t.iter() {
                target[k] = v.clone();
            }
            return Ok(());
        }
    }
}

/// `{ line = 17 }`.
fn pin(line: u32) -> toml_edit::InlineTable {
    let mut t = toml_edit::InlineTable::new();
    t.insert("line", i64::from(line).into());
    t
}

/// `a@x.com, b@y.com` → `a@x\.com|b@y\.com`.
fn alternatives(list: &str) -> String {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join("|")
}

/// A name fit for a file next to the config.
pub(super) fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `check --probe` on the written config, then the offer to enable the service.
pub(crate) fn finish(path: &Path, flags: &Flags, ask: &mut Ask) -> Result<(), Failed> {
    ask.say(&format!(
        "$ mailbeacon check --probe --config {}",
        path.display()
    ));
    let checked = crate::cli::check_config(path, true);
    let unit = Path::new("/lib/systemd/system/mailbeacon.service").exists()
        || Path::new("/etc/systemd/system/mailbeacon.service").exists();
    let root = crate::system::is_root();
    let enable = Flags::yes_no(flags.enable, flags.no_enable);
    if unit && root && crate::system::find_bin("systemctl").is_some() {
        if ask.confirm(
            "Enable and start the service now (systemctl enable --now mailbeacon)?",
            enable,
            false,
        )? {
            let status = std::process::Command::new("systemctl")
                .args(["enable", "--now", "mailbeacon"])
                .status();
            match status {
                Ok(s) if s.success() => ask.say("ok   mailbeacon is enabled and running"),
                Ok(s) => ask.say(&format!("FAIL systemctl enable --now mailbeacon: {s}")),
                Err(e) => ask.say(&format!("FAIL systemctl: {e}")),
            }
        }
    } else {
        ask.say("Next: `sudo systemctl enable --now mailbeacon` on the board (or `mailbeacon run --config …`).");
    }
    checked.map_err(|e| format!("check --probe: {e}"))
}
