//! The command line: parse, dispatch, map every failure to docs/design.md's exit codes
//! (0 ok, 1 runtime failure, 2 usage, 65 damaged spool, 78 configuration).

use crate::config::{Account, Bucket, Config, SinkConfig};
use crate::control::{self, Reply, Request};
use crate::daemon::{self, RunError};
use crate::discord::{HttpSink, Outcome, Sink};
use crate::spool::{Spool, SpoolError};
use crate::status;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};

mod login;
mod probe;
mod spool;
use spool::{SinkAction, SpoolAction};

pub(crate) const EX_CONFIG: i32 = 78;
/// EX_DATAERR: the spool's files are damaged. Restarting cannot help (systemd's
/// `RestartPreventExitStatus=` lists it); `spool salvage` can.
const EX_SPOOL_DAMAGED: i32 = 65;

#[derive(Parser)]
#[command(
    name = "mailbeacon",
    version,
    about = "Watches IMAP, spools every mail, pushes to Discord, and shows a dead channel on a LED"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ConfigArg {
    /// The configuration file.
    #[arg(
        long,
        short,
        env = "MAILBEACON_CONFIG",
        default_value = "/etc/mailbeacon/mailbeacon.toml"
    )]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent in the foreground (systemd Type=notify when NOTIFY_SOCKET is set).
    Run(ConfigArg),
    /// Validate the configuration; --probe also logs in to IMAP and probes each sink without posting.
    Check {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        probe: bool,
    },
    /// Sign ACCOUNT in with OAuth 2.0 (auth = "oauth2"): prints an address and a code (or a
    /// link) to approve on any device, then stores the grant the daemon logs in with.
    Login {
        /// The account's name in the config.
        account: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Guided setup: asks for the mailbox, the Discord channel, buckets and the LED pins,
    /// tests each answer at once, writes the config and its secret files, runs check --probe.
    /// Every question has a flag; --yes takes the defaults for the rest.
    Setup {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        flags: Box<crate::setup::Flags>,
    },
    /// Accounts, sinks, buckets and the LED pattern.
    Status {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Read the spool, retry dead-lettered mail, drop an item.
    Spool {
        #[command(subcommand)]
        action: SpoolAction,
    },
    /// The whole pipeline on this machine with no credentials: a throwaway Dovecot, a Discord
    /// stand-in and the daemon with the LED drawn live; a webhook dies and is rotated; nothing is
    /// lost. Needs root (installs dovecot-imapd with apt when it is missing).
    Demo {
        /// No live redraw: print each step once (the default when stdout is not a terminal).
        #[arg(long)]
        plain: bool,
        /// Keep the demo folder (config and spool) afterwards, to try the CLI on it.
        #[arg(long)]
        keep: bool,
    },
    /// Ask a sink whether it still accepts us, without posting.
    Sink {
        #[command(subcommand)]
        action: SinkAction,
    },
    /// Digest buckets: `digest now [BUCKET]` sends what a digest bucket holds at once.
    Digest {
        #[command(subcommand)]
        action: DigestAction,
    },
    /// Exercise a fresh throwaway spool on this machine (no config needed); exit 0 when sound.
    Selftest {
        /// Where to create (and afterwards remove) the throwaway spool; default: the temp dir.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DigestAction {
    /// Send the digest of BUCKET (default: every digest bucket) now, through the running daemon.
    Now {
        /// A bucket with mode = "digest"; without it, every digest bucket.
        bucket: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// A failure and the exit code it maps to.
struct Failure {
    code: i32,
    message: String,
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Config(_) => Failure {
                code: EX_CONFIG,
                message: e.to_string(),
            },
            RunError::Spool(s) if s.is_damaged() => damaged(&s),
            RunError::SpoolDamaged(reason) => damaged(&reason),
            _ => fail(e.to_string()),
        }
    }
}

fn damaged(e: &dyn std::fmt::Display) -> Failure {
    Failure {
        code: EX_SPOOL_DAMAGED,
        message: format!(
            "{e}\nThe spool is damaged; it was left untouched and the daemon will not run on it. \
             Run `mailbeacon spool salvage` (with the same --config) to copy what is readable \
             into a fresh spool; the damaged one is kept aside."
        ),
    }
}

fn fail(message: impl Into<String>) -> Failure {
    Failure {
        code: 1,
        message: message.into(),
    }
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    crate::logger::init();
    // Before any thread starts: the daemon and the spool tools (a dump of a large spool) alike.
    daemon::memory::tune();
    let result = match cli.command {
        Command::Run(c) => daemon::run(&c.config).map_err(Failure::from),
        Command::Check { config, probe } => check(&config.config, probe),
        Command::Login { account, config } => login::run(&config.config, &account),
        Command::Setup { config, flags } => setup(&config.config, &flags),
        Command::Status { config, json } => status(&config.config, json),
        Command::Spool { action } => spool::run(action),
        Command::Sink { action } => spool::sink(action),
        Command::Selftest { dir } => selftest(dir),
        Command::Demo { plain, keep } => demo(plain, keep),
        Command::Digest {
            action: DigestAction::Now { bucket, config },
        } => digest_now(&config.config, bucket.as_deref()),
    };
    match result {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("mailbeacon: {}", f.message);
            f.code
        }
    }
}

fn load(path: &Path) -> Result<Config, Failure> {
    Config::load(path).map_err(|e| Failure {
        code: EX_CONFIG,
        message: e.to_string(),
    })
}

/// For commands that read state only: secrets in files and credentials stay unread.
fn load_public(path: &Path) -> Result<Config, Failure> {
    Config::load_without_secrets(path).map_err(|e| Failure {
        code: EX_CONFIG,
        message: e.to_string(),
    })
}

/// Opens the spool directly when no daemon answers; a lock held by a silent process is an error.
fn open_offline(config: &Config) -> Result<Spool, Failure> {
    Spool::open(&daemon::spool_dir(config), config.spool_cache_bytes).map_err(|e| match e {
        SpoolError::Locked { path } => fail(format!(
            "the spool {} is locked by a process that does not answer on {}",
            path.display(),
            control::client_path(config).display()
        )),
        other if other.is_damaged() => damaged(&other),
        other => fail(other.to_string()),
    })
}

/// `check` for `setup`: its lines printed, its verdict as a sentence.
pub(crate) fn check_config(path: &Path, probe: bool) -> Result<(), String> {
    check(path, probe).map_err(|f| f.message)
}

fn check(path: &Path, probe: bool) -> Result<(), Failure> {
    let config = load(path)?;
    println!(
        "ok   config {} ({} account(s), {} sink(s), {} bucket(s))",
        path.display(),
        config.accounts.len(),
        config.sinks.len(),
        config.buckets.len()
    );
    for warning in config.warnings() {
        println!("warn {warning}");
    }
    for a in &config.accounts {
        login::describe(a);
    }
    if !probe {
        return Ok(());
    }
    print_perms(path);
    let mut failed = 0;
    for a in &config.accounts {
        failed += probe_account(a, &config.buckets);
    }
    for s in &config.sinks {
        failed += probe_sink(s);
    }
    failed += probe_gpio(&config);
    if failed > 0 {
        return Err(fail(format!("{failed} check(s) failed")));
    }
    Ok(())
}

/// How open each file holding a secret of the config at `path` is.
fn print_perms(path: &Path) {
    for file in crate::config::perms::secret_files(path) {
        match crate::config::perms::exposure(&file.path) {
            Ok(mode) => println!("ok   perms {}: {} ({mode})", file.key, file.path.display()),
            Err(why) => println!("warn perms {}: {why}", file.key),
        }
    }
}

/// Logs in to account `a`, examines each of its folders and the folders its buckets move
/// mail to; returns the number of failures.
fn probe_account(a: &Account, buckets: &[Bucket]) -> usize {
    let (session, seen) = probe::login_seeing(a);
    probe::print_certificate(a, &session, seen.as_ref());
    let mut s = match session {
        Ok(s) => s,
        Err(e) => {
            println!("FAIL imap {}: {e}", a.name);
            return 1;
        }
    };
    let mut failed = 0;
    for f in &a.folders {
        match s.examine(f) {
            Ok(m) => println!(
                "ok   imap {}/{f}: {} message(s), uidvalidity {}",
                a.name,
                m.exists,
                m.uid_validity.unwrap_or(0)
            ),
            Err(e) => {
                failed += 1;
                println!(
                    "FAIL imap {}/{f}: {}",
                    a.name,
                    crate::imap::ImapError::from_imap(e)
                );
            }
        }
    }
    failed += probe::moves(a, &mut s, buckets);
    let _ = s.logout();
    failed
}

/// Probes sink `s` without posting; returns the number of failures (0 or 1).
fn probe_sink(s: &SinkConfig) -> usize {
    match HttpSink::new(s.clone()).probe().outcome {
        Outcome::Delivered { .. } => println!("ok   sink {} answers", s.name),
        Outcome::RateLimited { retry_after, .. } => {
            println!("ok   sink {} rate limited for {retry_after:?}", s.name)
        }
        Outcome::Dead { reason } | Outcome::Transient { reason } | Outcome::Rejected { reason } => {
            println!("FAIL sink {}: {reason}", s.name);
            return 1;
        }
    }
    0
}

/// Claims and releases the indicator's GPIO lines; returns the number of failures (0 or 1).
fn probe_gpio(config: &Config) -> usize {
    match crate::indicator::cdev::probe(&config.indicator) {
        Ok(Some(found)) => {
            println!("ok   gpio {found}");
            0
        }
        Ok(None) => 0,
        Err(e) => {
            println!("FAIL gpio: {e}");
            1
        }
    }
}

fn setup(path: &Path, flags: &crate::setup::Flags) -> Result<(), Failure> {
    let mut ask = crate::setup::Ask {
        yes: flags.yes,
        input: Box::new(std::io::BufReader::new(std::io::stdin())),
        out: Box::new(std::io::stdout()),
        last: Default::default(),
    };
    crate::setup::run(path, flags, &mut ask).map_err(|e| fail(format!("setup: {e}")))
}

#[cfg(not(feature = "demo"))]
fn demo(_plain: bool, _keep: bool) -> Result<(), Failure> {
    Err(Failure {
        code: 2,
        message: "this build has no demo: builds for a board leave it out (it runs a private \
                  Dovecot and may install it with apt-get); run it from a build of the \
                  source with default features: `cargo run --release -- demo`"
            .into(),
    })
}

#[cfg(feature = "demo")]
fn demo(plain: bool, keep: bool) -> Result<(), Failure> {
    use std::io::IsTerminal;
    let live = !plain && std::io::stdout().is_terminal();
    crate::demo::run(&crate::demo::Options { live, keep })
        .map(|_| ())
        .map_err(|e| fail(format!("demo: {e}")))
}

/// `selftest`: one line per spool check, exit 1 at the first that fails.
fn selftest(dir: Option<PathBuf>) -> Result<(), Failure> {
    let parent = dir.unwrap_or_else(std::env::temp_dir);
    println!(
        "mailbeacon {} selftest on {}-{}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    );
    let passed = crate::spool::selftest::run(&parent, &mut |name, outcome| match outcome {
        Ok(found) => println!("ok   spool {name}: {found}"),
        Err(why) => println!("FAIL spool {name}: {why}"),
    });
    if passed {
        println!("selftest passed");
        Ok(())
    } else {
        Err(fail("selftest failed"))
    }
}

fn status(path: &Path, json: bool) -> Result<(), Failure> {
    let config = load_public(path)?;
    let report: status::StatusReport =
        match control::ask_one(&control::client_path(&config), &Request::Status) {
            Some(Ok(Reply::Status(r))) => *r,
            Some(Ok(other)) => return Err(fail(control::unexpected(&other))),
            Some(Err(e)) => return Err(fail(e)),
            None => status::report(
                &config,
                None,
                Some(&open_offline(&config)?),
                chrono::Utc::now().timestamp(),
            )
            .map_err(|e| fail(e.to_string()))?,
        };
    let text = if json {
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
    } else {
        status::table(&report, status::use_colour())
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| fail(e.to_string()))
}

/// `digest now`: asks the running daemon, which owns the spool and the sinks' rate limits, to
/// send the digest at once. With no daemon nothing is sent (posting from the CLI would bypass
/// the daemon's pacing and invalid-request guard): it says so and exits 1; the daemon sends a
/// digest that fell due while it was stopped as soon as it starts.
fn digest_now(path: &Path, bucket: Option<&str>) -> Result<(), Failure> {
    let config = load_public(path)?;
    let names = crate::dispatch::digest::named(&config.buckets, bucket).map_err(|e| Failure {
        code: 2,
        message: e,
    })?;
    let socket = control::client_path(&config);
    let Some(reply) = control::ask_one(
        &socket,
        &Request::Digest {
            bucket: bucket.map(str::to_string),
        },
    ) else {
        return Err(fail(format!(
            "the daemon is not running (nothing answers on {}): no digest was sent. Start it \
             (systemctl start mailbeacon); it sends every digest that fell due while it was \
             stopped at once, and the digest of {} at its next digest_every",
            socket.display(),
            names.join(", ")
        )));
    };
    let buckets = match reply.map_err(fail)? {
        Reply::Digest { buckets } => buckets,
        other => return Err(fail(control::unexpected(&other))),
    };
    for b in buckets {
        println!(
            "digest of bucket {}: {} pending mail(s) sent now; `mailbeacon status` shows when they are delivered",
            b.name, b.pending
        );
    }
    Ok(())
}
