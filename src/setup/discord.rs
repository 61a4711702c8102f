//! The Discord step of `setup`: a webhook URL per channel, or a bot's token and channel ids —
//! each probed without posting; one test message only when the user says so.

use super::ask::Failed;
use super::document::set;
use super::steps::{file_name, Steps};
use super::Flags;
use crate::config::Secret;
use crate::discord::{HttpSink, Outcome, Sink};
use std::path::PathBuf;
use toml_edit::{value, Table};

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

impl Steps<'_> {
    /// The Discord channel(s), by webhook or by bot: probed without posting; one test message
    /// if the user wants. Returns the sinks: the main one, and the one for everything else.
    pub(crate) fn discord(&mut self) -> Result<(String, String), Failed> {
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
        let (mut webhook_file, mut channel) = (given.webhook_file, given.channel);
        loop {
            let mut t = Table::new();
            t["name"] = value(name);
            t["kind"] = value(kind);
            let (secret, file) = if kind == "bot" {
                self.ask_bot(name, &mut t, channel.take())?
            } else {
                self.ask_webhook(name, &mut t, webhook_file.take())?
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
                    let said = self.refused(kind, &other);
                    self.again(&format!("sink {name}"), &said)?;
                    continue;
                }
            }
            if kind == "bot" {
                self.keep_bot(name, &t, file, secret);
            } else {
                self.keep_webhook(name, file, secret);
            }
            return Ok(sink);
        }
    }

    /// The bot's token (asked once) and the channel id for sink `name`, written into `t`.
    /// Returns the token and the file that will keep it.
    fn ask_bot(
        &mut self,
        name: &str,
        t: &mut Table,
        channel: Option<String>,
    ) -> Result<(Secret, PathBuf), Failed> {
        let f = self.flags;
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
            channel.as_deref(),
            None,
        )?;
        t["channel_id"] = value(id);
        t["token"] = value(token.expose());
        if let Some(base) = &f.api_base {
            t["api_base"] = value(base.as_str());
        }
        Ok((token, self.dir.join("bot.token")))
    }

    /// The webhook URL for sink `name`, written into `t`. Returns it and the file that will
    /// keep it.
    fn ask_webhook(
        &mut self,
        name: &str,
        t: &mut Table,
        webhook_file: Option<PathBuf>,
    ) -> Result<(Secret, PathBuf), Failed> {
        let flag = if name == "alerts" {
            "--webhook-file"
        } else {
            "--noise-webhook-file"
        };
        let url = self.ask.secret(
            "Discord webhook URL (Channel settings → Integrations → Webhooks → Copy Webhook URL)",
            flag,
            webhook_file.as_deref(),
        )?;
        t["url"] = value(url.expose());
        Ok((url, self.dir.join(format!("{}.url", file_name(name)))))
    }

    /// Why a probe of a sink of `kind` failed, in words. A refused token is asked again; a
    /// wrong channel keeps the token.
    fn refused(&mut self, kind: &str, outcome: &Outcome) -> String {
        let mut said = why(outcome);
        if let Outcome::Dead { reason } = outcome {
            if reason.contains("401") {
                self.bot_token = None;
                said.push_str(": the token was refused; copy it again (Reset Token)");
            } else if kind == "bot" {
                said.push_str(
                    ": the bot cannot see that channel; check the id, and that the \
                     bot was added to the server with View Channel and Send Messages",
                );
            } else {
                said.push_str(
                    ": the webhook is gone or its URL is wrong; copy it again from \
                     the channel's Integrations → Webhooks",
                );
            }
        }
        said
    }

    /// Writes bot sink `name` (channel from `t`) to the config; its token goes to `file` the
    /// first time only.
    fn keep_bot(&mut self, name: &str, t: &Table, file: PathBuf, secret: Secret) {
        let target = self.doc.named("sink", name);
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
        if let Some(base) = &self.flags.api_base {
            set(target, "api_base", base.as_str(), &[]);
        }
        if self.bot_token.is_none() {
            self.plan.secrets.push((file, secret.expose().to_string()));
        }
        self.bot_token = Some(secret);
    }

    /// Writes webhook sink `name` to the config, its URL to `file`.
    fn keep_webhook(&mut self, name: &str, file: PathBuf, secret: Secret) {
        let target = self.doc.named("sink", name);
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
}
