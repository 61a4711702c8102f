//! Actions after delivery (a bucket's `after_delivery`): one loop that does what the spool's
//! `actions` tree says is owed — mark seen, flag, move — in a short IMAP session per folder
//! (`imap::action`), and forgets each action only once the server has done it.
//!
//! - An action exists only for mail whose every delivery Discord acknowledged; the spool writes
//!   it in the transaction that records the last acknowledgement (`spool/actions.rs`).
//! - A failure (server down, target folder missing, a server that cannot move safely) keeps it
//!   owed: retried with the delivery backoff, 1 s doubling to 5 min, forever, with a log line.
//! - A folder whose UIDVALIDITY changed since drops its actions with a log line: its UIDs name
//!   other mail now.
//! - An action is forgotten (flushed) right after the server did it; a crash in between makes
//!   the next run do it again, which finds the flag already set or the UID already gone.

use crate::backoff::backoff;
use crate::config::{Account, AfterDelivery};
use crate::imap::action::{apply, Applied, Refused};
use crate::spool::{Action, Spool};
use crate::stop::Stop;
use crate::watchdog::Beat;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

/// Actions read per round.
const BATCH: usize = 200;
/// An idle loop looks again this often, in case a bell was missed.
const RECHECK: Duration = Duration::from_secs(60);

pub(crate) struct After {
    pub spool: Spool,
    pub accounts: Arc<HashMap<String, Account>>,
    /// Rung by the delivery loops when an acknowledgement made an action owed.
    pub wake: Arc<Notify>,
    pub beat: Beat,
}

/// How a round ended.
enum Round {
    /// Everything read was done (or dropped); more may be owed.
    Done { more: bool },
    /// Something failed and stays owed.
    Failed,
}

impl After {
    pub(crate) async fn run(self, stop: Stop) {
        let mut failures = 0u32;
        let mut until = Instant::now();
        loop {
            self.beat
                .within(until.saturating_duration_since(Instant::now()) + Duration::from_secs(10));
            tokio::select! {
                _ = stop.wait() => break,
                _ = self.wake.notified() => {}
                _ = sleep_until(until) => {}
            }
            if stop.is_stopped() {
                break;
            }
            until = match self.round(&stop).await {
                Round::Done { more: true } => Instant::now(),
                Round::Done { more: false } => {
                    failures = 0;
                    Instant::now() + RECHECK
                }
                Round::Failed => {
                    failures += 1;
                    Instant::now() + backoff(failures, fastrand::f64())
                }
            };
        }
        self.beat.waiting();
    }

    /// Reads owed actions and tries each folder's in one session.
    async fn round(&self, stop: &Stop) -> Round {
        let spool = self.spool.clone();
        self.beat.within(Duration::from_secs(60));
        let owed = match tokio::task::spawn_blocking(move || spool.actions(BATCH)).await {
            Ok(Ok(owed)) => owed,
            Ok(Err(e)) => {
                log::error!("after delivery: cannot read the owed actions from the spool: {e}");
                return Round::Failed;
            }
            Err(_) => return Round::Failed,
        };
        let more = owed.len() == BATCH;
        let mut failed = false;
        for ((account, folder, uidvalidity), actions) in by_folder(owed) {
            if stop.is_stopped() {
                return Round::Failed;
            }
            failed |= !self
                .folder(&account, &folder, uidvalidity, actions, stop)
                .await;
        }
        if failed {
            Round::Failed
        } else {
            Round::Done { more }
        }
    }

    /// Tries the actions of one folder; false when any stays owed.
    async fn folder(
        &self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
        mut actions: Vec<Action>,
        stop: &Stop,
    ) -> bool {
        let Some(config) = self.accounts.get(account).cloned() else {
            log::warn!(
                "after delivery: {} action(s) owed in {account}/{folder}, but no [[account]] is named {account:?} any more; kept until it is",
                actions.len()
            );
            return false;
        };
        // Login, SELECT and each command are bounded by the account's timeout.
        self.beat
            .within(config.timeout * (4 + actions.len() as u32 * 4) + Duration::from_secs(10));
        let (spool, name, stop) = (self.spool.clone(), folder.to_string(), stop.clone());
        let done = tokio::task::spawn_blocking(move || {
            let mut copied = |a: &Action| {
                if let Err(e) = spool.action_tried(a) {
                    log::error!(
                        "after delivery: cannot record in the spool that item {} was copied: {e}",
                        a.item
                    );
                }
            };
            let results = apply(
                &config,
                &name,
                uidvalidity,
                &mut actions,
                &mut copied,
                &stop,
            );
            (actions, results)
        })
        .await;
        let Ok((actions, results)) = done else {
            log::error!("after delivery: the worker for {account}/{folder} failed");
            return false;
        };
        let results = match results {
            Ok(results) => results,
            Err(e @ Refused::Renumbered { .. }) => {
                for a in &actions {
                    log::warn!(
                        "after delivery: {account}/{folder} uid {}: {} dropped (item {}, bucket {}): {e}",
                        a.uid, a.action, a.item, a.bucket
                    );
                    self.forget(a).await;
                }
                return true;
            }
            Err(Refused::Session(e)) => {
                let e = e.to_string();
                self.tried_all(account, folder, actions, &e).await;
                return false;
            }
        };
        self.settle(account, folder, actions, results).await
    }

    /// Records what the server did with each action: done ones are forgotten, failed ones
    /// stay owed with their error; false when any failed.
    async fn settle(
        &self,
        account: &str,
        folder: &str,
        actions: Vec<Action>,
        results: Vec<Result<Applied, String>>,
    ) -> bool {
        let mut ok = true;
        for (mut a, result) in actions.into_iter().zip(results) {
            match result {
                Ok(applied) => {
                    log::info!(
                        "after delivery: {account}/{folder} uid {} {} (item {}, bucket {})",
                        a.uid,
                        said(&a.action, &applied),
                        a.item,
                        a.bucket
                    );
                    self.forget(&a).await;
                }
                Err(e) => {
                    ok = false;
                    log::warn!(
                        "after delivery: {account}/{folder} uid {}: {} failed (item {}, bucket {}): {e}; retrying",
                        a.uid, a.action, a.item, a.bucket
                    );
                    a.attempts += 1;
                    a.last_error = Some(e);
                    self.tried(a).await;
                }
            }
        }
        ok
    }

    async fn tried_all(&self, account: &str, folder: &str, actions: Vec<Action>, e: &str) {
        log::warn!(
            "after delivery: {account}/{folder}: {} action(s) not done: {e}; retrying",
            actions.len()
        );
        for mut a in actions {
            a.attempts += 1;
            a.last_error = Some(e.to_string());
            self.tried(a).await;
        }
    }

    async fn tried(&self, a: Action) {
        let spool = self.spool.clone();
        match tokio::task::spawn_blocking(move || spool.action_tried(&a)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::error!("after delivery: cannot record an attempt: {e}"),
            Err(_) => log::error!("after delivery: the spool worker failed"),
        }
    }

    async fn forget(&self, a: &Action) {
        let (spool, a) = (self.spool.clone(), a.clone());
        match tokio::task::spawn_blocking(move || spool.action_done(&a)).await {
            Ok(Ok(())) => {}
            // Still owed: the next round does it again, which is harmless (see above).
            Ok(Err(e)) => log::error!("after delivery: cannot record a done action: {e}"),
            Err(_) => log::error!("after delivery: the spool worker failed"),
        }
    }
}

/// The actions grouped by the session that can do them: account, folder, UIDVALIDITY.
fn by_folder(owed: Vec<Action>) -> BTreeMap<(String, String, u32), Vec<Action>> {
    let mut out: BTreeMap<_, Vec<Action>> = BTreeMap::new();
    for a in owed {
        out.entry((a.account.clone(), a.folder.clone(), a.uidvalidity))
            .or_default()
            .push(a);
    }
    out
}

/// The log's words for what was done.
fn said(action: &AfterDelivery, applied: &Applied) -> String {
    match (action, applied) {
        (_, Applied::Gone) => format!("{action}: the mail is no longer in the folder"),
        (AfterDelivery::Seen, Applied::Done) => "marked seen".into(),
        (AfterDelivery::Flag, Applied::Done) => "flagged".into(),
        (AfterDelivery::Move(to), Applied::Done) => format!("moved to {to}"),
    }
}
