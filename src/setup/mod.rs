//! `mailbeacon setup`: from a fresh board to a config that works, by asking and testing each
//! answer at once — the mailbox login (password or `mailbeacon login`'s OAuth sign-in), the
//! Discord webhook (probed without posting; one test message only when the user says so),
//! bucket templates, the GPIO pins — then writing the config and its secret files, running
//! `check --probe` and offering to enable the service.
//!
//! Every question has a flag, and `--yes` takes the defaults for the rest, so the same setup
//! can be scripted. An existing config is edited in place (src/setup/document.rs): what setup
//! does not ask about stays as it was. Nothing is written until every answer has been tested;
//! the config is validated like `check` before it replaces the old one (atomically).

mod account;
mod ask;
mod discord;
mod document;
mod files;
mod steps;

pub(crate) use ask::Ask;

use document::Document;
use std::path::{Path, PathBuf};

/// Every question's flag.
#[derive(clap::Args, Debug, Default, Clone)]
pub(crate) struct Flags {
    /// Take the default of every question not answered by a flag; fail where there is none.
    #[arg(long)]
    pub(crate) yes: bool,
    /// The account's name in the config.
    #[arg(long)]
    pub(crate) account: Option<String>,
    /// gmail, outlook, office365, icloud, yahoo, fastmail, or other.
    #[arg(long)]
    pub(crate) provider: Option<String>,
    #[arg(long)]
    pub(crate) host: Option<String>,
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// implicit or starttls.
    #[arg(long)]
    pub(crate) tls: Option<String>,
    /// A private CA, or a self-signed server's own certificate, to trust (`none` for none).
    #[arg(long)]
    pub(crate) ca_file: Option<String>,
    #[arg(long)]
    pub(crate) username: Option<String>,
    /// Read the IMAP password (an app password) from this file.
    #[arg(long)]
    pub(crate) password_file: Option<PathBuf>,
    /// password or oauth2 (a server without a preset; gmail with your own OAuth client).
    #[arg(long)]
    pub(crate) auth: Option<String>,
    /// OAuth 2.0 (outlook, office365, or gmail with your own client): the client id.
    #[arg(long)]
    pub(crate) client_id: Option<String>,
    /// OAuth 2.0 with a provider without a preset: its device authorization endpoint.
    #[arg(long)]
    pub(crate) oauth_device_url: Option<String>,
    /// OAuth 2.0 with a provider without a preset: its token endpoint.
    #[arg(long)]
    pub(crate) oauth_token_url: Option<String>,
    /// OAuth 2.0 with a provider without a preset: the scopes to ask for (comma list).
    #[arg(long)]
    pub(crate) oauth_scopes: Option<String>,
    /// How to post to Discord: webhook or bot.
    #[arg(long)]
    pub(crate) discord: Option<String>,
    /// Read the Discord webhook URL from this file.
    #[arg(long)]
    pub(crate) webhook_file: Option<PathBuf>,
    /// Read the bot's token from this file.
    #[arg(long)]
    pub(crate) bot_token_file: Option<PathBuf>,
    /// The bot's channel id.
    #[arg(long)]
    pub(crate) channel: Option<String>,
    /// The bot's channel for everything no other bucket takes (`none`: the same channel).
    #[arg(long)]
    pub(crate) noise_channel: Option<String>,
    /// Discord's API origin for a bot (a stand-in in tests).
    #[arg(long, hide = true)]
    pub(crate) api_base: Option<String>,
    /// Read a second webhook URL, for everything no other bucket takes, from this file
    /// (`none`: the same channel).
    #[arg(long)]
    pub(crate) noise_webhook_file: Option<String>,
    /// Send one test message to Discord.
    #[arg(long, conflicts_with = "no_test_message")]
    pub(crate) test_message: bool,
    #[arg(long)]
    pub(crate) no_test_message: bool,
    /// Bucket templates besides "everything else": vip, customers, payments (comma list), or none.
    #[arg(long)]
    pub(crate) buckets: Option<String>,
    /// vip: the senders' addresses, comma-separated.
    #[arg(long)]
    pub(crate) vip: Option<String>,
    /// customers: the address(es) customers write to, comma-separated.
    #[arg(long)]
    pub(crate) customers: Option<String>,
    /// The GPIO chip's label or path, or `none` for no LED and buzzer.
    #[arg(long)]
    pub(crate) gpio: Option<String>,
    #[arg(long)]
    pub(crate) led: Option<u32>,
    /// The buzzer's line, or `none`.
    #[arg(long)]
    pub(crate) buzzer: Option<String>,
    /// Where the spool and grants live (a new config only).
    #[arg(long)]
    pub(crate) state_dir: Option<PathBuf>,
    /// Run `systemctl enable --now mailbeacon` at the end.
    #[arg(long, conflicts_with = "no_enable")]
    pub(crate) enable: bool,
    #[arg(long)]
    pub(crate) no_enable: bool,
}

impl Flags {
    fn yes_no(yes: bool, no: bool) -> Option<bool> {
        match (yes, no) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

/// What the steps gathered and tested, written at the end.
#[derive(Default)]
pub(crate) struct Plan {
    /// Secret files to write: (path, content).
    pub(crate) secrets: Vec<(PathBuf, String)>,
}

/// Runs setup for the config at `path`.
pub(crate) fn run(path: &Path, flags: &Flags, ask: &mut Ask) -> Result<(), String> {
    let existing = match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    ask.say(&format!(
        "mailbeacon setup: {} {}. Each answer is tested at once; nothing is written until the end \
         (but an OAuth sign-in's grant, kept at once).",
        if existing.is_some() {
            "editing"
        } else {
            "writing"
        },
        path.display()
    ));
    let mut doc = Document::read(existing.as_deref())?;
    let state_dir = flags
        .state_dir
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "/var/lib/mailbeacon".to_string());
    doc.set_default("state_dir", &state_dir);
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut plan = Plan::default();
    let mut s = steps::Steps {
        ask,
        flags,
        doc: &mut doc,
        dir: &dir,
        path,
        plan: &mut plan,
        bot_token: None,
    };
    let account = s.account()?;
    let sinks = s.discord()?;
    s.buckets(&sinks)?;
    s.indicator()?;
    files::write(path, &doc, &plan, ask)?;
    ask.say(&format!(
        "ok   wrote {} for account {account}",
        path.display()
    ));
    steps::finish(path, flags, ask)
}
