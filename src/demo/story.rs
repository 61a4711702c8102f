//! The story, in three acts, told against the real daemon: mail sorted and delivered; the noise
//! webhook answers 403 and the spool holds while the LED alarms; the webhook is rotated, SIGHUP,
//! and the backlog drains; the dead webhook is announced in #alerts, and its end. Each wait polls `status` over the control socket (as the CLI does)
//! and feeds the LED line; Ctrl-C ends any wait.

use super::screen::{meaning, Screen};
use super::stage::{self, Stage, ALERTS, FIRST_WAVE, NOISE, NOISE_ROTATED, SECOND_WAVE};
use super::{Options, Summary};
use crate::control::{self, Reply, Request};
use crate::status::{DumpRecord, Filter, StatusReport};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

struct Act<'a> {
    screen: &'a Screen,
    stage: Stage,
    socket: std::path::PathBuf,
    interrupted: &'a AtomicBool,
    /// Pauses for a reader: on a terminal only.
    live: bool,
    sent: usize,
}

pub(crate) fn tell(
    screen: &Screen,
    options: &Options,
    interrupted: &AtomicBool,
) -> Result<Summary, String> {
    screen.say("mailbeacon demo: the whole pipeline on this machine, no credentials needed");
    let stage = Stage::build(options.keep)?;
    screen.say(&format!("   demo folder: {}", stage.dir.display()));
    let config = crate::config::Config::load_without_secrets(&stage.config)
        .map_err(|e| format!("demo config: {e}"))?;
    let mut act = Act {
        screen,
        socket: control::client_path(&config),
        stage,
        interrupted,
        live: options.live,
        sent: 0,
    };
    let told = act.tell();
    screen.finish();
    let summary = told.map_err(|e| {
        format!(
            "{e}\n--- last lines of the daemon's log ---\n{}",
            act.stage.log_tail(15)
        )
    })?;
    act.epilogue(options.keep, &summary);
    Ok(summary)
}

impl Act<'_> {
    fn tell(&mut self) -> Result<Summary, String> {
        let port = self.stage.dovecot.as_ref().map_or(0, |d| d.imaps_port());
        self.say(&format!(
            "1. A private Dovecot (IMAPS on 127.0.0.1:{port}) and a Discord stand-in are up; \
             mailbeacon runs with the `sim` LED"
        ));
        self.screen.follow(self.stage.trace.clone());
        self.stage.start_daemon()?;
        self.wait("the mailbox to be watched", 30, |r| {
            r.accounts
                .iter()
                .all(|a| a.state.is_some_and(|s| name(&s) == "idle"))
        })?;
        self.pause(2);

        self.say("2. Five mails arrive:");
        for sample in FIRST_WAVE {
            self.send(sample)?;
        }
        self.wait("the five mails to be delivered", 30, |r| delivered(r) == 5)?;
        for rec in self.items()? {
            self.say(&format!(
                "   {:<44} → bucket {:<9} → #{}",
                clip(&rec.subject, 44),
                rec.bucket,
                rec.deliveries.first().map_or("", |d| d.sink.as_str())
            ));
        }
        self.say("   The \"@everyone\" subject arrived as inert text: allowed_mentions {\"parse\": []}, mentions escaped.");
        self.pause(3);

        self.say("3. The noise webhook starts answering 403 (the failure that once lost three weeks of mail),");
        self.say("   and three more mails arrive:");
        self.stage.standin.forbid(NOISE.0, NOISE.1);
        for sample in SECOND_WAVE {
            self.send(sample)?;
        }
        self.wait("the noise sink to be dead", 30, |r| {
            sink_state(r, "noise") == "dead"
        })?;
        self.wait("the spool to hold 2 mails", 30, |r| {
            pending(r) == 2 && delivered(r) == 6
        })?;
        let report = self.status().ok_or("the daemon stopped answering")?;
        self.say(&format!("   status: {}", report.summary));
        self.say("   The spool holds the 2 noise mails (pending); the Stripe receipt still went to #alerts.");
        self.pause(if self.live { 5 } else { 2 });
        let (edges, chirps) = self.screen.activity(Duration::from_secs(2));
        self.say(&format!(
            "   The LED shows \"dead\" ({}): {edges} LED edges in the last 2 s; the buzzer chirped {chirps} time(s) in all.",
            meaning("dead")
        ));
        self.pause(2);
        self.wait("the notice in #alerts", 30, |r| {
            last_notice(r) == Some("trouble")
        })?;
        self.say_notice(
            "   #alerts, which still works, got a notice (the sink stayed dead past notify_after):",
        );
        self.pause(2);

        self.say(
            "4. The operator rotates the webhook (a new URL in noise.url) and reloads with SIGHUP:",
        );
        let url = self.stage.standin.webhook(NOISE_ROTATED.0, NOISE_ROTATED.1);
        self.stage.secret_file("noise.url", &url)?;
        self.stage.signal(libc::SIGHUP);
        self.wait("the backlog to drain", 30, |r| {
            pending(r) == 0 && delivered(r) == 8
        })?;
        self.wait("the noise sink to be ok", 10, |r| {
            sink_state(r, "noise") == "ok"
        })?;
        self.say(&format!(
            "   The backlog drained to the new webhook: {} mail(s) arrived there.",
            self.stage
                .standin
                .received(NOISE_ROTATED.0, NOISE_ROTATED.1)
                .len()
        ));
        self.wait("the all-clear in #alerts", 30, |r| {
            last_notice(r) == Some("resolved")
        })?;
        self.say_notice("   #alerts got the all-clear:");
        self.pause(2);
        self.summary()
    }

    fn summary(&mut self) -> Result<Summary, String> {
        let items = self.items()?;
        let delivered = items
            .iter()
            .filter(|r| r.state == crate::spool::State::Delivered)
            .count();
        let standin = &self.stage.standin;
        let received = standin.received_total();
        let summary = Summary {
            sent: self.sent,
            delivered,
            lost: self.sent.saturating_sub(received.min(delivered)),
            pings: standin.pings(),
        };
        let refused = standin.refused(NOISE.0, NOISE.1);
        let at_alerts = standin.received(ALERTS.0, ALERTS.1).len();
        if self.stage.stop_daemon() != Some(0) {
            return Err("the daemon did not stop cleanly on SIGTERM".into());
        }
        self.screen.finish();
        self.say("");
        self.say("Summary");
        self.say(&format!(
            "   sent: {}   spooled: {}   delivered: {}   lost: {}   pings: {}",
            summary.sent,
            items.len(),
            summary.delivered,
            summary.lost,
            summary.pings
        ));
        self.say(&format!(
            "   The Discord stand-in accepted {received} mail(s) ({at_alerts} at #alerts); the dead webhook \
             was sent {refused} POST(s) before mailbeacon stopped posting to it."
        ));
        Ok(summary)
    }

    fn epilogue(&self, keep: bool, _summary: &Summary) {
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "mailbeacon".into());
        let cmd = format!("{exe} spool dump --config {}", self.stage.config.display());
        if keep {
            self.say(&format!("   Try it (the demo folder is kept): {cmd}"));
        } else {
            self.say(&format!(
                "   Try `{exe} demo --keep`, then: {cmd}   (without --keep the demo folder is removed now)"
            ));
        }
    }

    /// Says `intro`, then the latest notice #alerts received: its title and first line.
    fn say_notice(&self, intro: &str) {
        self.say(intro);
        let notices = self.stage.standin.notices(ALERTS.0, ALERTS.1);
        if let Some((title, description)) = notices.last() {
            // As Discord shows it: markdown escapes rendered away.
            let first = description.lines().next().unwrap_or("").replace('\\', "");
            self.say(&format!("   📣 {title} — {}", clip(&first, 100)));
        }
    }

    fn say(&self, text: &str) {
        self.screen.say(text);
    }

    /// Waits `seconds` on a terminal (so a reader can follow), briefly otherwise.
    fn pause(&self, seconds: u64) {
        let d = if self.live {
            Duration::from_secs(seconds)
        } else {
            Duration::from_millis(200)
        };
        let end = Instant::now() + d;
        while Instant::now() < end && !self.interrupted.load(Ordering::Relaxed) {
            self.refresh();
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn send(&mut self, sample: &stage::Sample) -> Result<(), String> {
        self.sent += 1;
        let dovecot = self.stage.dovecot.as_ref().ok_or("Dovecot is gone")?;
        dovecot.deliver(stage::USER, "INBOX", &stage::raw(sample, self.sent))?;
        self.say(&format!("   ✉  {:<24} {}", sample.0, sample.2));
        Ok(())
    }

    fn status(&self) -> Option<StatusReport> {
        match control::ask_one(&self.socket, &Request::Status)?.ok()? {
            Reply::Status(r) => Some(*r),
            _ => None,
        }
    }

    fn items(&self) -> Result<Vec<DumpRecord>, String> {
        let request = Request::Items {
            filter: Filter::default(),
        };
        let replies =
            control::ask(&self.socket, &request).ok_or("the daemon does not answer")??;
        let mut items = Vec::new();
        for reply in replies {
            match reply? {
                Reply::Item(r) => items.push(*r),
                other => return Err(control::unexpected(&other)),
            }
        }
        Ok(items)
    }

    /// The latest status, shown on the LED line.
    fn refresh(&self) -> Option<StatusReport> {
        let report = self.status()?;
        let line = format!(
            "sinks: {}   pending: {}   delivered: {}",
            report
                .sinks
                .iter()
                .map(|s| format!("{} {}", s.name, s.state.map_or("?".into(), |x| name(&x))))
                .collect::<Vec<_>>()
                .join(", "),
            pending(&report),
            delivered(&report)
        );
        self.screen.update(report.indicator.pattern.as_str(), line);
        Some(report)
    }

    fn wait(
        &mut self,
        what: &str,
        seconds: u64,
        cond: impl Fn(&StatusReport) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if self.interrupted.load(Ordering::Relaxed) {
                return Err("interrupted".into());
            }
            if let Some(code) = self.stage.daemon_exited() {
                return Err(format!(
                    "the daemon exited ({code}) while waiting for {what}"
                ));
            }
            if self.refresh().is_some_and(|r| cond(&r)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("gave up waiting for {what} after {seconds} s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn delivered(r: &StatusReport) -> u64 {
    r.buckets.iter().map(|b| b.delivered).sum()
}

fn pending(r: &StatusReport) -> u64 {
    r.buckets.iter().map(|b| b.pending).sum()
}

/// The kind of the last health notice (trouble, reminder, resolved, daily), if any.
fn last_notice(r: &StatusReport) -> Option<&str> {
    r.notices.as_ref()?.last_kind.as_deref()
}

fn sink_state(r: &StatusReport, sink: &str) -> String {
    r.sinks
        .iter()
        .find(|s| s.name == sink)
        .and_then(|s| s.state)
        .map_or("?".into(), |s| name(&s))
}

/// An enum's name as `status --json` spells it.
fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| j.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut t: String = s.chars().take(n - 1).collect();
    t.push('…');
    t
}
