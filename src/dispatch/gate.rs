//! Before every request: the guard's word ([`crate::discord::limits::Guard`]), the one `GET`
//! that asks whether a ban is over, and the probes of a dead sink.

use super::{Dispatcher, LoopState, Next, SLACK};
use crate::discord::limits::{Gate, Route, Why};
use crate::discord::Outcome;
use crate::health::SinkState;
use tokio::time::{sleep_until, Instant};

impl Dispatcher {
    /// Waits until the guard lets this sink send on `route`; false when stopped meanwhile.
    pub(super) async fn gate(&self, st: &mut LoopState, route: Route) -> bool {
        loop {
            let now = Instant::now();
            let (until, why) = match self.guard.admit(&st.who, route, now) {
                Gate::Go => {
                    if std::mem::take(&mut st.paused) && !st.dead {
                        log::info!("sink {}: pause over", self.sink.name());
                        self.report(SinkState::Ok, None, false);
                    }
                    return true;
                }
                Gate::ProbeBan => {
                    self.ban_probe(st).await;
                    continue;
                }
                Gate::Wait { until, why } => (until, why),
            };
            if why != Why::Pacing && !st.paused {
                st.paused = true;
                log::warn!(
                    "sink {}: {why}; next request in {:?}",
                    self.sink.name(),
                    until - now
                );
                if !st.dead {
                    self.report(SinkState::RateLimited, Some(why.to_string()), false);
                }
            }
            self.beat.within(until - now + SLACK);
            tokio::select! {
                _ = st.stop.wait() => return false,
                _ = sleep_until(until) => {}
            }
        }
    }

    /// The one `GET` that asks whether Cloudflare's ban is over; its answer lifts or renews it.
    async fn ban_probe(&self, st: &mut LoopState) {
        log::warn!(
            "sink {}: asking Discord once (GET) whether the IP ban is over",
            self.sink.name()
        );
        let sink = self.sink.clone();
        if let Some(reply) = self.blocking(move || sink.probe()).await {
            self.guard
                .observe(&st.who, Route::Get, &reply, Instant::now());
        }
    }

    /// A dead sink asks with a `GET` on a doubling schedule; a success revives it.
    pub(super) async fn probe(&self, st: &mut LoopState) -> Next {
        if !self.gate(st, Route::Get).await {
            return Next::Idle;
        }
        let sink = self.sink.clone();
        let Some(reply) = self.blocking(move || sink.probe()).await else {
            return Next::At(Instant::now() + st.probe_delay);
        };
        self.guard
            .observe(&st.who, Route::Get, &reply, Instant::now());
        match reply.outcome {
            Outcome::Delivered { .. } => {
                log::info!(
                    "sink {}: probe succeeded, alive again; draining the backlog",
                    self.sink.name()
                );
                st.dead = false;
                st.failures = 0;
                st.revived = true;
                self.report(SinkState::Ok, None, false);
                Next::At(Instant::now())
            }
            Outcome::RateLimited { retry_after, .. } => Next::At(Instant::now() + retry_after),
            Outcome::Dead { reason }
            | Outcome::Transient { reason }
            | Outcome::Rejected { reason } => {
                st.probe_delay = (st.probe_delay * 2).min(self.probe_max);
                log::warn!(
                    "sink {}: still dead ({reason}); next probe in {:?}",
                    self.sink.name(),
                    st.probe_delay
                );
                self.report(SinkState::Dead, Some(reason), false);
                Next::At(Instant::now() + st.probe_delay)
            }
        }
    }
}
