//! The questions of `setup`, one step each, every answer tested before the next: the mailbox
//! login, the Discord channel, the bucket templates, the LED and buzzer. A failed test asks
//! again at a terminal and ends setup (exit 1, nothing written) when the answers came from flags.

use super::ask::{Ask, Failed};
use super::document::{rules, set, strings, Document};
use super::{Flags, Plan};
use crate::config::{Auth, Config, Secret};
use crate::discord::{HttpSink, Outcome, Sink};
use std::path::{Path, PathBuf};
use toml_edit::{value, DocumentMut, Item, Table};

pub struct Steps<'a> {
    pub ask: &'a mut Ask,
    pub flags: &'a Flags,
    pub doc: &'a mut Document,
    pub dir: &'a Path,
    pub path: &'a Path,
    pub plan: &'a mut Plan,
    /// The bot token once given: one bot posts to every channel.
    pub bot_token: Option<Secret>,
}

/// A sink's answers given as flags.
struct Given {
    webhook_file: Option<PathBuf>,
    channel: Option<String>,
}

/// What an answer from Discord means, in words.
fn why(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Delivered { .. } => "posted".into(),
        Outcome::RateLimited { retry_after, .. } => {
            format!(
                "rate limited; try again in {}s",
                retry_after.as_secs().max(1)
            )
        }
        Outcome::Dead { reason } | Outcome::Transient { reason } | Outcome::Rejected { reason } => {
            reason.clone()
        }
    }
}

const PROVIDERS: &[&str] = &[
    "gmail",
    "outlook",
    "office365",
    "icloud",
    "yahoo",
    "fastmail",
    "other",
];

impl Steps<'_> {
    /// A config holding `account`, `sink` and a bucket, parsed as `check` would: the same
    /// validation and defaults the daemon gets, for testing one answer.
    fn probe_config(
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
    fn again(&mut self, what: &str, why: &str) -> Result<(), Failed> {
        self.ask.say(&format!("FAIL {what}: {why}"));
        if self.ask.yes || !self.ask.confirm("Try again?", None, true)? {
            return Err(format!("{what}: {why}; nothing was written"));
        }
        Ok(())
    }

    /// The mailbox: provider or server, user, password or OAuth sign-in, tested by a login.
    pub fn account(&mut self) -> Result<String, Failed> {
        let f = self.flags.clone();
        let existing = self.doc.names("account").into_iter().next();
        let name = self.ask.text(
            "Account name",
            "--account",
            f.account.as_deref(),
            Some(existing.as_deref().unwrap_or("home")),
        )?;
        let mut attempt = 0;
        loop {
            let first = attempt == 0;
            attempt += 1;
            let provider = self.ask.choice(
                "Mail provider",
                "--provider",
                f.provider.as_deref(),
                PROVIDERS,
                "gmail",
            )?;
            let mut t = Table::new();
            t["name"] = value(name.as_str());
            let preset = crate::config::provider::find(&provider);
            match preset {
                Some(p) => {
                    t["provider"] = value(p.name);
                    self.ask.say(&format!(
                        "  {} at {}:993 (TLS); {}",
                        p.name, p.host, p.credential_hint
                    ));
                }
                None => self.server(&mut t)?,
            }
            let username = self.ask.text(
                "Mail address (the login's user name)",
                "--username",
                f.username.as_deref(),
                None,
            )?;
            t["username"] = value(username.as_str());
            let oauth = match preset.map(|p| p.auth) {
                Some(crate::config::AuthKind::OAuth2) => true,
                _ => f.client_id.is_some() && first,
            };
            let secret = if oauth {
                t["auth"] = value("oauth2");
                let id = self.ask.text(
                    "OAuth client id (your app registration's; see README)",
                    "--client-id",
                    f.client_id.as_deref(),
                    None,
                )?;
                let mut o = Table::new();
                o["client_id"] = value(id.as_str());
                t["oauth2"] = Item::Table(o);
                None
            } else {
                let file = if first { f.password_file.clone() } else { None };
                let s = self.ask.secret(
                    "Password (an app password where the provider needs one)",
                    "--password-file",
                    file.as_deref(),
                )?;
                t["password"] = value(s.expose());
                Some(s)
            };
            let config = match self.probe_config(Some(&t), None, None) {
                Ok(c) => c,
                Err(e) => {
                    self.again("account", &e)?;
                    continue;
                }
            };
            let Some(account) = config.accounts.first() else {
                return Err("the account did not load".into());
            };
            if let Auth::OAuth2(o) = &account.auth {
                let mut out = std::io::stdout();
                let input = Box::new(std::io::BufReader::new(std::io::stdin()));
                match crate::oauth::login::sign_in(&name, o, &mut out, input) {
                    Ok(grant) => {
                        grant
                            .save(&o.grant_file)
                            .map_err(|e| format!("signed in, but {e}"))?;
                        self.ask.say(&format!(
                            "ok   signed in; the grant is stored in {}",
                            o.grant_file.display()
                        ));
                    }
                    Err(e) => {
                        self.again("sign-in", &e)?;
                        continue;
                    }
                }
            }
            let login =
                crate::imap::tls_config(account).and_then(|tls| crate::imap::login(account, &tls));
            match login {
                Ok(mut s) => {
                    let _ = s.logout();
                    self.ask.say(&format!(
                        "ok   imap {name}: logged in to {} as {}",
                        account.host, account.username
                    ));
                }
                Err(e) => {
                    self.again(&format!("imap {name}"), &e.to_string())?;
                    continue;
                }
            }
            self.keep_account(&name, t, secret);
            return Ok(name);
        }
    }

    /// Host, port, TLS and trust of a server without a preset.
    fn server(&mut self, t: &mut Table) -> Result<(), Failed> {
        let f = self.flags.clone();
        let host = self
            .ask
            .text("IMAP server", "--host", f.host.as_deref(), None)?;
        let tls = self.ask.choice(
            "TLS",
            "--tls",
            f.tls.as_deref(),
            &["implicit", "starttls"],
            "implicit",
        )?;
        let default_port = if tls == "implicit" { "993" } else { "143" };
        let port = self.ask.number(
            "Port",
            "--port",
            f.port.map(|p| p.to_string()).as_deref(),
            Some(default_port),
        )?;
        let ca = self.ask.text(
            "A certificate to trust for a self-signed server (a PEM file), or none",
            "--ca-file",
            f.ca_file.as_deref(),
            Some("none"),
        )?;
        t["host"] = value(host);
        t["port"] = value(i64::from(port));
        t["tls"] = value(tls);
        if ca != "none" {
            t["ca_file"] = value(ca);
        }
        Ok(())
    }

    /// The tested account into the config: its keys replaced, the password moved to a file.
    fn keep_account(&mut self, name: &str, tested: Table, secret: Option<Secret>) {
        let file = self.dir.join(format!("{}.pass", file_name(name)));
        let target = self.doc.named("account", name);
        for key in ["provider", "host", "port", "tls", "ca_file", "auth"] {
            target.remove(key);
        }
        for (key, item) in tested.iter() {
            if key == "password" || key == "name" || key == "oauth2" {
                continue;
            }
            target[key] = item.clone();
        }
        match secret {
            Some(s) => {
                set(
                    target,
                    "password_file",
                    file.display().to_string(),
                    &["password", "credential", "oauth2"],
                );
                self.plan.secrets.push((file, s.expose().to_string()));
            }
            None => {
                for k in ["password", "password_file", "credential"] {
                    target.remove(k);
                }
                if let Some(o) = tested.get("oauth2").and_then(|o| o.as_table()) {
                    if !target.get("oauth2").is_some_and(|i| i.is_table()) {
                        target["oauth2"] = Item::Table(Table::new());
                    }
                    if let Some(mine) = target["oauth2"].as_table_mut() {
                        for (k, v) in o.iter() {
                            mine[k] = v.clone();
                        }
                    }
                }
            }
        }
    }

    /// The Discord channel(s), by webhook or by bot: probed without posting; one test message
    /// if the user wants. Returns the sinks: the main one, and the one for everything else.
    pub fn discord(&mut self) -> Result<(String, String), Failed> {
        let f = self.flags.clone();
        let kind = self.ask.choice(
            "Post to Discord with a webhook or a bot",
            "--discord",
            f.discord.as_deref(),
            &["webhook", "bot"],
            "webhook",
        )?;
        let main = self.sink(
            "alerts",
            &kind,
            Given {
                webhook_file: f.webhook_file.clone(),
                channel: f.channel.clone(),
            },
        )?;
        let test = Flags::yes_no(f.test_message, f.no_test_message);
        if self.ask.confirm(
            "Send one test message to that channel now? It will show there.",
            test,
            false,
        )? {
            let reply = main.post(&serde_json::json!({
                "content": "mailbeacon setup: a test message. New mail will be announced in this channel.",
                "allowed_mentions": { "parse": [] },
            }), "mbsetup", None);
            match reply.outcome {
                Outcome::Delivered { .. } => self.ask.say("ok   sink alerts: test message posted"),
                other => self.ask.say(&format!(
                    "FAIL sink alerts: the test message was not posted: {}",
                    why(&other)
                )),
            }
        }
        let noise = match kind.as_str() {
            "bot" => f.noise_channel.clone(),
            _ => f.noise_webhook_file.clone(),
        };
        let separate = match noise.as_deref() {
            Some("none") => Some(false),
            Some(_) => Some(true),
            None => None,
        };
        if self.ask.confirm(
            "A separate channel for mail no other bucket takes?",
            separate,
            false,
        )? {
            let noise = noise.filter(|n| n != "none");
            self.sink(
                "noise",
                &kind,
                Given {
                    webhook_file: noise.clone().map(PathBuf::from),
                    channel: noise,
                },
            )?;
            return Ok(("alerts".into(), "noise".into()));
        }
        Ok(("alerts".into(), "alerts".into()))
    }

    /// One sink named `name`: a webhook URL, or a channel of the bot (whose token is asked
    /// once); asked, probed, kept with its secret in a file of its own.
    fn sink(&mut self, name: &str, kind: &str, given: Given) -> Result<HttpSink, Failed> {
        let f = self.flags.clone();
        let (mut webhook_file, mut channel) = (given.webhook_file, given.channel);
        loop {
            let mut t = Table::new();
            t["name"] = value(name);
            t["kind"] = value(kind);
            let (secret, file) = if kind == "bot" {
                let token = match self.bot_token.clone() {
                    Some(token) => token,
                    None => self.ask.secret(
                        "Bot token (Developer Portal → your application → Bot → Reset Token)",
                        "--bot-token-file",
                        f.bot_token_file.as_deref(),
                    )?,
                };
                let flag = if name == "alerts" {
                    "--channel"
                } else {
                    "--noise-channel"
                };
                let id = self.ask.text(
                    "Channel id (Discord settings → Advanced → Developer Mode; right-click the channel → Copy Channel ID)",
                    flag,
                    channel.take().as_deref(),
                    None,
                )?;
                t["channel_id"] = value(id);
                t["token"] = value(token.expose());
                if let Some(base) = &f.api_base {
                    t["api_base"] = value(base.as_str());
                }
                (token, self.dir.join("bot.token"))
            } else {
                let flag = if name == "alerts" {
                    "--webhook-file"
                } else {
                    "--noise-webhook-file"
                };
                let url = self.ask.secret(
                    "Discord webhook URL (Channel settings → Integrations → Webhooks → Copy Webhook URL)",
                    flag,
                    webhook_file.take().as_deref(),
                )?;
                t["url"] = value(url.expose());
                (url, self.dir.join(format!("{}.url", file_name(name))))
            };
            let sink = match self.probe_config(None, Some(&t), None) {
                Ok(c) => match c.sinks.into_iter().next() {
                    Some(s) => HttpSink::new(s),
                    None => return Err("the sink did not load".into()),
                },
                Err(e) => {
                    self.bot_token = None;
                    self.again(&format!("sink {name}"), &e)?;
                    continue;
                }
            };
            match sink.probe().outcome {
                Outcome::Delivered { .. } | Outcome::RateLimited { .. } => {
                    self.ask.say(&format!("ok   sink {name} answers"));
                }
                other => {
                    // A refused token is asked again; a wrong channel keeps the token.
                    if matches!(other, Outcome::Dead { ref reason } if reason.contains("401")) {
                        self.bot_token = None;
                    }
                    self.again(&format!("sink {name}"), &why(&other))?;
                    continue;
                }
            }
            let target = self.doc.named("sink", name);
            if kind == "bot" {
                set(target, "kind", "bot", &["url", "url_file"]);
                set(
                    target,
                    "channel_id",
                    t["channel_id"].as_str().unwrap_or_default(),
                    &[],
                );
                set(
                    target,
                    "token_file",
                    file.display().to_string(),
                    &["token", "credential"],
                );
                if let Some(base) = &f.api_base {
                    set(target, "api_base", base.as_str(), &[]);
                }
                if self.bot_token.is_none() {
                    self.plan.secrets.push((file, secret.expose().to_string()));
                }
                self.bot_token = Some(secret);
            } else {
                set(
                    target,
                    "kind",
                    "webhook",
                    &["channel_id", "token", "token_file", "api_base"],
                );
                set(
                    target,
                    "url_file",
                    file.display().to_string(),
                    &["url", "credential"],
                );
                self.plan.secrets.push((file, secret.expose().to_string()));
            }
            return Ok(sink);
        }
    }

    /// Bucket templates: VIP senders, customers, payments, and everything else.
    pub fn buckets(&mut self, sinks: &(String, String)) -> Result<(), Failed> {
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
    pub fn indicator(&mut self) -> Result<(), Failed> {
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
fn file_name(name: &str) -> String {
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
pub fn finish(path: &Path, flags: &Flags, ask: &mut Ask) -> Result<(), Failed> {
    ask.say(&format!(
        "$ mailbeacon check --probe --config {}",
        path.display()
    ));
    let checked = crate::cli::check_config(path, true);
    let unit = Path::new("/lib/systemd/system/mailbeacon.service").exists()
        || Path::new("/etc/systemd/system/mailbeacon.service").exists();
    let root = crate::demo::process::is_root();
    let enable = Flags::yes_no(flags.enable, flags.no_enable);
    if unit && root && which("systemctl") {
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

fn which(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
}
