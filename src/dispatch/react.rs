//! What each delivery outcome does to the sink's loop and to the spool, as the table in
//! docs/design.md says: delivered is recorded, a rate limit waited out, a transient failure
//! backed off, a dead sink stopped and probed, a refusal dead-lettered.

use super::{Dispatcher, LoopState, Next};
use crate::backoff::backoff;
use crate::discord::{Outcome, Scope};
use crate::health::SinkState;
use crate::spool::{Item, Update};
use std::time::Duration;
use tokio::time::Instant;

/// The same update for every item of a message.
fn each(ids: &[u64], update: &Update) -> Vec<(u64, Update)> {
    ids.iter().map(|id| (*id, update.clone())).collect()
}

impl Dispatcher {
    /// Reacts to the outcome of the message that carried `ids`.
    pub(super) async fn react(
        &self,
        st: &mut LoopState,
        outcome: Outcome,
        ids: &[u64],
        items: &[Item],
    ) -> Next {
        let now = Instant::now();
        let name = self.sink.name();
        match outcome {
            Outcome::Delivered { message_id } => {
                self.delivered(st, message_id, ids, items, now).await
            }
            Outcome::RateLimited { retry_after, scope } => {
                log::warn!("sink {name}: rate limited ({scope:?}), waiting {retry_after:?}");
                let error = (scope == Scope::Banned)
                    .then(|| "Discord/Cloudflare ban on this IP (error 1015)".to_string());
                self.report(SinkState::RateLimited, error, false);
                Next::At(now + retry_after)
            }
            Outcome::Transient { reason } => {
                st.failures += 1;
                let wait = backoff(st.failures, fastrand::f64());
                log::warn!("sink {name}: {reason}; retry {} in {wait:?}", st.failures);
                self.record(each(
                    ids,
                    &Update::Failed {
                        error: reason.clone(),
                    },
                ))
                .await;
                self.report(SinkState::Retrying, Some(reason), false);
                Next::At(now + wait)
            }
            Outcome::Dead { reason } => self.died(st, reason, ids, now).await,
            Outcome::Rejected { reason } => {
                self.record(each(ids, &Update::DeadLetter { error: reason }))
                    .await;
                Next::At(now)
            }
        }
    }

    /// Acknowledged: the items leave `pending` once the spool has recorded it (invariant 3).
    async fn delivered(
        &self,
        st: &mut LoopState,
        message_id: String,
        ids: &[u64],
        items: &[Item],
        now: Instant,
    ) -> Next {
        let at = chrono::Utc::now().timestamp();
        if !self
            .record_delivered(
                each(
                    ids,
                    &Update::Delivered {
                        message_id: message_id.clone(),
                        at,
                    },
                ),
                items,
            )
            .await
        {
            // Discord has the message but the spool could not say so: a repeat is possible
            // later, a loss is not. Try again after a pause.
            return Next::At(now + Duration::from_secs(5));
        }
        log::info!(
            "sink {}: delivered {} mail(s) as message {message_id}",
            self.sink.name(),
            ids.len()
        );
        st.failures = 0;
        st.revived = false;
        st.probe_delay = self.probe_every;
        self.report(SinkState::Ok, None, true);
        // The guard paces the next request from this answer's headers.
        Next::At(now)
    }

    /// Dead: no more posts, only probes; a sink that dies again right after a revival waits
    /// longer before its next probe.
    async fn died(&self, st: &mut LoopState, reason: String, ids: &[u64], now: Instant) -> Next {
        log::error!(
            "sink {}: DEAD ({reason}); no more posts, probing every {:?}+; mail keeps spooling",
            self.sink.name(),
            self.probe_every
        );
        self.record(each(
            ids,
            &Update::Failed {
                error: reason.clone(),
            },
        ))
        .await;
        st.dead = true;
        st.probe_delay = if std::mem::take(&mut st.revived) {
            (st.probe_delay * 2).min(self.probe_max)
        } else {
            self.probe_every
        };
        self.report(SinkState::Dead, Some(reason), false);
        Next::At(now + st.probe_delay)
    }
}
