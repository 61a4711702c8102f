//! `spool …` and `sink probe`: each asks the running daemon over the control socket, or, when
//! none answers, opens the spool (or reads the sink's secret) itself. Both ways print the same.

use super::{fail, load, load_public, open_offline, ConfigArg, Failure, EX_SPOOL_DAMAGED};
use crate::config::Config;
use crate::control::{self, Reply, Request};
use crate::spool::{SpoolError, State};
use crate::status::{self, DumpRecord, Filter, Listed};
use crate::tools::{self, Answer, RetryTarget};
use clap::{Subcommand, ValueEnum};
use std::io::Write;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum StateArg {
    Pending,
    Delivered,
    Dead,
    All,
}

#[derive(clap::Args)]
pub(super) struct FilterArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[arg(long)]
    bucket: Option<String>,
    #[arg(long, value_enum, default_value = "all")]
    state: StateArg,
    /// Only items spooled since: a duration back from now ("2h", "7d"), a date ("2026-11-22",
    /// UTC) or an RFC 3339 time.
    #[arg(long, value_parser = parse_since)]
    since: Option<i64>,
}

#[derive(Subcommand)]
pub(super) enum SpoolAction {
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
    /// Put dead-lettered mail back in its sinks' queues: one item by ID, or every dead item
    /// with `--state dead` (of one bucket with `--bucket`).
    Retry {
        id: Option<u64>,
        #[arg(long)]
        bucket: Option<String>,
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Remove one item from the spool; says what it would drop unless given --yes.
    Drop {
        id: u64,
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Copy every readable item and cursor of a damaged spool into a fresh one; the damaged
    /// spool is moved aside (never deleted). Stop the daemon first.
    Salvage(ConfigArg),
}

#[derive(Subcommand)]
pub(super) enum SinkAction {
    /// GET the webhook (or the bot's channel) and print the classified answer; posts nothing.
    Probe {
        name: String,
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// `--since`: how far back, a date, or a time; Unix seconds.
fn parse_since(text: &str) -> Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp());
    }
    crate::config::duration::parse(text)
        .map(|d| chrono::Utc::now().timestamp() - d.as_secs() as i64)
        .map_err(|_| {
            format!("{text:?}: give a duration (\"2h\", \"7d\"), a date (2026-11-22) or an RFC 3339 time")
        })
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
        since: args.since,
    }
}

/// Calls `each` for every matching record, from the daemon or from the spool itself. A record
/// that cannot be read is reported and skipped, and the listing then ends with exit 65.
fn records(
    config: &Config,
    filter: Filter,
    each: &mut dyn FnMut(DumpRecord) -> std::io::Result<()>,
) -> Result<(), Failure> {
    let mut unreadable = 0;
    let mut take = |listed: Listed| -> std::io::Result<()> {
        match listed {
            Listed::Record(r) => each(*r),
            Listed::Unreadable(e) => {
                eprintln!("mailbeacon: skipped: {e}");
                unreadable += 1;
                Ok(())
            }
        }
    };
    let request = Request::Items {
        filter: filter.clone(),
    };
    match control::ask(&control::client_path(config), &request) {
        Some(replies) => {
            for reply in replies.map_err(fail)? {
                let listed = match reply.map_err(fail)? {
                    Reply::Item(r) => Listed::Record(r),
                    Reply::Unreadable { error } => Listed::Unreadable(error),
                    Reply::Error { error } => return Err(fail(format!("daemon: {error}"))),
                    other => return Err(fail(control::unexpected(&other))),
                };
                take(listed).map_err(|e| fail(e.to_string()))?;
            }
        }
        None => status::list(&open_offline(config)?, &filter, &mut take)
            .map_err(|e| fail(e.to_string()))?,
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
    Ok(())
}

/// Asks the daemon for an [`Answer`]; `None` when no daemon answers.
fn ask_answer(config: &Config, request: &Request) -> Option<Result<Answer, Failure>> {
    let reply = control::ask_one(&control::client_path(config), request)?;
    Some(match reply {
        Ok(Reply::Answer(a)) => Ok(a),
        Ok(other) => Err(fail(control::unexpected(&other))),
        Err(e) => Err(fail(e)),
    })
}

/// Prints an answer: on stdout when done, as the error otherwise.
fn finish(answer: Answer) -> Result<(), Failure> {
    if answer.code == 0 {
        println!("{}", answer.text);
        Ok(())
    } else {
        Err(Failure {
            code: answer.code,
            message: answer.text,
        })
    }
}

/// Runs a spool action by the daemon when it answers, else on the spool itself.
fn act(
    config: &Config,
    request: Request,
    offline: impl FnOnce(&crate::spool::Spool) -> Answer,
) -> Result<(), Failure> {
    match ask_answer(config, &request) {
        Some(answer) => finish(answer?),
        None => finish(offline(&open_offline(config)?)),
    }
}

pub(super) fn sink(action: SinkAction) -> Result<(), Failure> {
    let SinkAction::Probe { name, config } = action;
    let public = load_public(&config.config)?;
    let request = Request::Probe { sink: name.clone() };
    match ask_answer(&public, &request) {
        Some(answer) => finish(answer?),
        // No daemon: the CLI reads the sink's secret itself.
        None => finish(control::probe_sink(&load(&config.config)?, &name)),
    }
}

pub(super) fn run(action: SpoolAction) -> Result<(), Failure> {
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
        SpoolAction::Retry {
            id,
            bucket,
            state,
            config,
        } => {
            let target = match (id, state) {
                (Some(id), None) if bucket.is_none() => RetryTarget::One(id),
                (None, Some(StateArg::Dead)) => RetryTarget::Dead { bucket },
                _ => return Err(Failure {
                    code: 2,
                    message:
                        "spool retry takes an ID, or --state dead (with --bucket B for one bucket)"
                            .into(),
                }),
            };
            let config = load_public(&config.config)?;
            act(
                &config,
                Request::Retry {
                    target: target.clone(),
                },
                |s| tools::retry(s, &target),
            )
        }
        SpoolAction::Drop { id, yes, config } => {
            let config = load_public(&config.config)?;
            act(&config, Request::Drop { id, yes }, |s| {
                tools::drop(s, id, yes)
            })
        }
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
    let dir = crate::daemon::spool_dir(config);
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
