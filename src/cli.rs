//! The command line: parse, dispatch, map every failure to DESIGN.md's exit codes
//! (0 ok, 1 runtime failure, 2 usage, 65 damaged spool, 78 configuration).

use crate::config::Config;
use crate::control::{self, Request};
use crate::daemon::{self, RunError};
use crate::discord::{HttpSink, Outcome, Sink};
use crate::spool::{Spool, SpoolError, State};
use crate::status::{self, DumpRecord, Filter};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

pub const EX_CONFIG: i32 = 78;
/// EX_DATAERR: the spool's files are damaged. Restarting cannot help (systemd's
/// `RestartPreventExitStatus=` lists it); `spool salvage` can.
pub const EX_SPOOL_DAMAGED: i32 = 65;

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
    /// Accounts, sinks, buckets and the LED pattern.
    Status {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Read the spool.
    Spool {
        #[command(subcommand)]
        action: SpoolAction,
    },
    /// Exercise a fresh throwaway spool on this machine (no config needed); exit 0 when sound.
    Selftest {
        /// Where to create (and afterwards remove) the throwaway spool; default: the temp dir.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum StateArg {
    Pending,
    Delivered,
    Dead,
    All,
}

#[derive(clap::Args)]
struct FilterArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[arg(long)]
    bucket: Option<String>,
    #[arg(long, value_enum, default_value = "all")]
    state: StateArg,
}

#[derive(Subcommand)]
enum SpoolAction {
    /// A table of items.
    Ls(FilterArgs),
    /// Every item as JSON Lines on stdout, streamed.
    Dump(FilterArgs),
    /// One item, everything about it.
    Show {
        id: u64,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Copy every readable item and cursor of a damaged spool into a fresh one; the damaged
    /// spool is moved aside (never deleted). Stop the daemon first.
    Salvage(ConfigArg),
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
    let result = match cli.command {
        Command::Run(c) => daemon::run(&c.config).map_err(Failure::from),
        Command::Check { config, probe } => check(&config.config, probe),
        Command::Status { config, json } => status(&config.config, json),
        Command::Spool { action } => spool(action),
        Command::Selftest { dir } => selftest(dir),
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
    if !probe {
        return Ok(());
    }
    let mut failed = 0;
    for a in &config.accounts {
        let session = crate::imap::tls_config(a.ca_file.as_deref())
            .and_then(|tls| crate::imap::login(a, &tls));
        match session {
            Err(e) => {
                failed += 1;
                println!("FAIL imap {}: {e}", a.name);
            }
            Ok(mut s) => {
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
                let _ = s.logout();
            }
        }
    }
    for s in &config.sinks {
        match HttpSink::new(s.clone()).probe().outcome {
            Outcome::Delivered { .. } => println!("ok   sink {} answers", s.name),
            Outcome::RateLimited { retry_after, .. } => {
                println!("ok   sink {} rate limited for {retry_after:?}", s.name)
            }
            Outcome::Dead { reason }
            | Outcome::Transient { reason }
            | Outcome::Rejected { reason } => {
                failed += 1;
                println!("FAIL sink {}: {reason}", s.name);
            }
        }
    }
    failed += probe_gpio(&config);
    if failed > 0 {
        return Err(fail(format!("{failed} check(s) failed")));
    }
    Ok(())
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
        match control::ask(&control::client_path(&config), &Request::Status) {
            Some(reply) => {
                let mut line = String::new();
                reply
                    .and_then(|mut r| r.read_line(&mut line))
                    .map_err(|e| fail(format!("daemon: {e}")))?;
                serde_json::from_str(&line)
                    .map_err(|_| fail(format!("daemon answered: {}", line.trim())))?
            }
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
        status::table(&report)
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| fail(e.to_string()))
}

/// Calls `each` for every matching record, from the daemon or from the spool itself.
fn records(
    config: &Config,
    filter: Filter,
    each: &mut dyn FnMut(DumpRecord) -> std::io::Result<()>,
) -> Result<(), Failure> {
    match control::ask(
        &control::client_path(config),
        &Request::Items {
            filter: filter.clone(),
        },
    ) {
        Some(reply) => {
            let reader = reply.map_err(|e| fail(format!("daemon: {e}")))?;
            for line in reader.lines() {
                let line = line.map_err(|e| fail(format!("daemon: {e}")))?;
                let rec: DumpRecord = serde_json::from_str(&line)
                    .map_err(|_| fail(format!("daemon answered: {}", line.trim())))?;
                each(rec).map_err(|e| fail(e.to_string()))?;
            }
        }
        None => {
            let spool = open_offline(config)?;
            let mut unreadable = 0;
            for item in spool.iter() {
                let item = match item {
                    Ok(item) => item,
                    // One bad record is reported and skipped; the rest is still worth reading.
                    Err(e @ SpoolError::Corrupt { .. }) => {
                        eprintln!("mailbeacon: skipped: {e}");
                        unreadable += 1;
                        continue;
                    }
                    Err(e) => return Err(fail(e.to_string())),
                };
                if filter.accepts(&item) {
                    each(DumpRecord::from(item)).map_err(|e| fail(e.to_string()))?;
                }
            }
            if unreadable > 0 {
                return Err(Failure {
                    code: EX_SPOOL_DAMAGED,
                    message: format!(
                        "{unreadable} record(s) could not be read (listed above); \
                         `mailbeacon spool salvage` copies the rest into a fresh spool"
                    ),
                });
            }
        }
    }
    Ok(())
}

fn filter_of(args: &FilterArgs) -> Filter {
    let state = match args.state {
        StateArg::Pending => Some(State::Pending),
        StateArg::Delivered => Some(State::Delivered),
        StateArg::Dead => Some(State::Dead),
        StateArg::All => None,
    };
    Filter {
        bucket: args.bucket.clone(),
        state,
    }
}

fn spool(action: SpoolAction) -> Result<(), Failure> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = match action {
        SpoolAction::Dump(args) => {
            let config = load_public(&args.config.config)?;
            records(&config, filter_of(&args), &mut |r| {
                serde_json::to_writer(&mut out, &r)?;
                out.write_all(b"\n")
            })
        }
        SpoolAction::Ls(args) => {
            let config = load_public(&args.config.config)?;
            writeln!(out, "{}", status::ls_header()).map_err(|e| fail(e.to_string()))?;
            records(&config, filter_of(&args), &mut |r| {
                writeln!(out, "{}", status::ls_row(&r))
            })
        }
        SpoolAction::Show { id, config } => {
            let config = load_public(&config.config)?;
            let mut found = false;
            records(&config, Filter::default(), &mut |r| {
                if r.id == id {
                    found = true;
                    serde_json::to_writer_pretty(&mut out, &r)?;
                    out.write_all(b"\n")?;
                }
                Ok(())
            })?;
            if found {
                Ok(())
            } else {
                Err(fail(format!("no item {id} in the spool")))
            }
        }
        SpoolAction::Salvage(config) => salvage(&load_public(&config.config)?),
    };
    out.flush().map_err(|e| fail(e.to_string()))?;
    result
}

/// `spool salvage`: refuses while a daemon answers (it holds the spool), then copies.
fn salvage(config: &Config) -> Result<(), Failure> {
    if control::ask(&control::client_path(config), &Request::Status).is_some() {
        return Err(fail(
            "a running daemon holds the spool: stop it first (systemctl stop mailbeacon)",
        ));
    }
    let dir = daemon::spool_dir(config);
    if !dir.exists() {
        return Err(fail(format!("no spool at {}", dir.display())));
    }
    println!("salvage: reading {}", dir.display());
    let done = crate::spool::salvage(&dir, config.spool_cache_bytes, &mut |line| {
        println!("{line}")
    })
    .map_err(|e| match e {
        SpoolError::Locked { path } => fail(format!(
            "the spool {} is locked by another process",
            path.display()
        )),
        other => fail(other.to_string()),
    })?;
    if let Some(why) = &done.unopenable {
        println!("salvage: sled cannot open the damaged spool at all: {why}");
    }
    println!(
        "salvage: copied {} item(s) and {} cursor(s); unreadable: {}",
        done.items, done.cursors, done.unreadable
    );
    println!(
        "salvage: fresh spool at {}; the damaged one is kept at {}",
        dir.display(),
        done.damaged.display()
    );
    if !done.lost_cursors.is_empty() {
        println!(
            "salvage: the cursor of {} is lost: that mailbox starts again as on a first run \
             (start_at); to fetch the mail it may have missed, set start_at = \"unseen\" or \
             \"all\" with a backfill window before starting",
            done.lost_cursors.join(", ")
        );
    }
    if done.unreadable > 0 || done.unopenable.is_some() {
        println!("salvage: mail whose record was lost is still on the IMAP server, but below the cursor: it is not fetched again");
    }
    Ok(())
}
