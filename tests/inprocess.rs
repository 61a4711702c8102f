//! The daemon inside the test process: `daemon::serve` on a tokio runtime, ordered by a channel
//! in place of the process's signals. A mail reaches Discord; the webhook is rotated, the sink
//! goes dead, and a reload with the new URL delivers what was held; a stop ends `serve` with
//! `Ok`, the LED dark and the control socket gone.

use crate::common::config::Config;
use crate::common::daemon::{cli, mail, temp_dir, wait_until};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use mailbeacon::daemon::{prepare, serve, Control};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn status(config: &Path) -> Option<Value> {
    let out = cli(config, &["status", "--json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

#[test]
fn the_daemon_runs_reloads_and_stops_inside_a_test() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1501", "inprocess-first", Behaviour::Ok);
    let first = discord.webhook_channel("inprocess-first");
    let dir = temp_dir("inprocess");
    let path = Config::new(&dir, &dovecot).webhook(&url).write();

    let prepared = prepare(&path).expect("the config and the spool open");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let (orders, control) = tokio::sync::mpsc::channel(4);
    let running = runtime.spawn(serve(prepared, control));

    wait_until(Duration::from_secs(20), "the mailbox to be watched", || {
        status(&path).is_some_and(|s| s["accounts"][0]["state"] == "idle")
    });
    let deliver = |subject: &str, id: &str| {
        dovecot.deliver(
            "alice",
            "INBOX",
            &mail("Ann <ann@example.com>", subject, "Hello.", id),
        )
    };
    deliver("First, in process", "<ip1@example.com>");
    wait_until(Duration::from_secs(20), "the first mail in Discord", || {
        discord
            .titles_in(&first)
            .iter()
            .any(|t| t.contains("First, in process"))
    });

    // The webhook is rotated in Discord: the old URL is refused, the sink goes dead.
    let rotated = discord.webhook("1501", "inprocess-rotated", Behaviour::Ok);
    let second = discord.webhook_channel("inprocess-rotated");
    deliver("Second, held", "<ip2@example.com>");
    wait_until(Duration::from_secs(20), "the sink to be dead", || {
        status(&path).is_some_and(|s| s["sinks"][0]["state"] == "dead")
    });

    // The new URL in the config and a reload: the held mail goes out.
    Config::new(&dir, &dovecot).webhook(&rotated).write();
    orders
        .blocking_send(Control::Reload)
        .expect("the daemon takes orders");
    wait_until(
        Duration::from_secs(20),
        "the held mail after the reload",
        || {
            discord
                .titles_in(&second)
                .iter()
                .any(|t| t.contains("Second, held"))
        },
    );

    orders
        .blocking_send(Control::Stop)
        .expect("the daemon takes orders");
    let ended = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), running).await })
        .expect("serve ends within 20 s of the stop")
        .expect("serve does not panic");
    assert!(ended.is_ok(), "serve ended with {ended:?}");
    assert!(
        !dir.join("state/control.sock").exists(),
        "the control socket is removed"
    );
    let trace = std::fs::read_to_string(dir.join("led.jsonl")).expect("the LED trace");
    let last_led = trace
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["pin"] == "led")
        .expect("the LED moved");
    assert_eq!(last_led["level"], 0, "the LED is dark after the stop");
    // The spool is closed: the CLI opens it itself and finds both mails delivered.
    let after = status(&path).expect("status without the daemon");
    assert_eq!(after["buckets"][0]["delivered"], 2, "{after}");
}
