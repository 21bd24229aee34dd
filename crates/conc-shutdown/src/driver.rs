//! The shutdown sequence itself: what `wait` runs.

use std::future::{Future, pending};
use std::pin::pin;
use std::sync::Arc;

use conc_core::Cause;
use tokio::time::{Instant, sleep_until};

use crate::report::{AbortReason, HookReport, Outcome, PhaseReport, ShutdownReport, Trigger};
use crate::shutdown::Owner;
use crate::state::{Inner, Until};
use crate::{Phase, Signal};

/// Why a wait ended.
enum Wake<T> {
    /// The awaited condition holds.
    Done,
    /// The awaited piece of work completed.
    Work(T),
    /// The deadline passed first.
    Deadline,
    /// The shutdown was forced.
    Forced,
}

pub(crate) struct Driver {
    owner: Owner,
    inner: Arc<Inner>,
    signals_seen: usize,
}

impl Driver {
    pub(crate) fn new(owner: Owner) -> Driver {
        let inner = Arc::clone(&owner.inner);
        Driver { owner, inner, signals_seen: 0 }
    }

    pub(crate) async fn run(mut self) -> ShutdownReport {
        let inner = Arc::clone(&self.inner);
        self.wait_for(Until::Triggered, None, pending::<()>()).await;
        let delay = inner.config.pre_drain_delay;
        if !delay.is_zero() {
            self.wait_for(Until::Never, Instant::now().checked_add(delay), pending::<()>()).await;
        }

        let mut phases = Vec::new();
        let mut hooks = Vec::new();
        for phase in Phase::ALL {
            if inner.is_forced() {
                break;
            }
            let started = inner.start_phase(phase);
            let deadline = started.checked_add(inner.config.timeouts[phase.index()]);
            let wake = self.wait_for(Until::PhaseDone(phase), deadline, pending::<()>()).await;
            let deadline_hit =
                matches!(wake, Wake::Deadline) && inner.abort_live(Some(phase), AbortReason::Deadline).await;
            if phase == Phase::Final && !inner.is_forced() {
                self.run_hooks(&mut hooks).await;
            }
            phases.push(PhaseReport { phase, duration: started.elapsed(), deadline_hit });
        }
        let forced = inner.is_forced();
        if forced {
            inner.abort_live(None, AbortReason::Forced).await;
            hooks.extend(inner.drop_hooks(AbortReason::Forced));
        }
        inner.close().await;
        // Hooks registered while the last ones ran, after the stack emptied.
        hooks.extend(inner.drop_hooks(AbortReason::Deadline));
        self.owner.done = true;

        let subsystems = inner.subsystem_reports();
        let triggered_at = inner.triggered_at().unwrap_or_else(Instant::now);
        ShutdownReport {
            trigger: inner.trigger_kind().unwrap_or(Trigger::Requested),
            forced,
            phases,
            subsystems,
            hooks,
            duration: triggered_at.elapsed(),
        }
    }

    /// Runs the cleanup hooks, last registered first, each within the final
    /// phase's timeout.
    async fn run_hooks(&mut self, reports: &mut Vec<HookReport>) {
        let budget = self.inner.config.timeouts[Phase::Final.index()];
        while let Some((name, mut handle)) = self.inner.next_hook() {
            let started = Instant::now();
            let wake = self.wait_for(Until::Never, started.checked_add(budget), &mut handle).await;
            let outcome = match wake {
                Wake::Work(Ok(outcome)) => outcome,
                // Only an abort from outside (the runtime shutting down) ends
                // a hook's task without an outcome.
                Wake::Work(Err(_)) => Outcome::Aborted(AbortReason::Forced),
                Wake::Deadline => Outcome::Aborted(AbortReason::Deadline),
                Wake::Forced | Wake::Done => Outcome::Aborted(AbortReason::Forced),
            };
            if outcome.is_aborted() {
                handle.abort();
                let _ = handle.await;
            }
            reports.push(HookReport { name, outcome, duration: started.elapsed() });
            if self.inner.is_forced() {
                return;
            }
        }
    }

    /// Waits until `until` holds, `work` completes, `deadline` passes or the
    /// shutdown is forced, meanwhile turning signals and the root token's
    /// cancellation into triggers.
    async fn wait_for<F: Future>(&mut self, until: Until, deadline: Option<Instant>, work: F) -> Wake<F::Output> {
        let mut work = pin!(work);
        let inner = Arc::clone(&self.inner);
        let root = inner.root.clone();
        loop {
            let notified = inner.notify.notified();
            let mut notified = pin!(notified);
            notified.as_mut().enable();
            if root.is_cancelled() {
                inner.trigger(Trigger::TokenCancelled(root.cause().unwrap_or(Cause::Cancelled)));
            }
            if inner.is_forced() {
                return Wake::Forced;
            }
            if inner.reached(until) {
                return Wake::Done;
            }
            let sleep = async {
                match deadline {
                    Some(deadline) => sleep_until(deadline).await,
                    None => pending().await,
                }
            };
            tokio::select! {
                biased;
                output = work.as_mut() => return Wake::Work(output),
                () = notified => {}
                signal = self.owner.signals.recv() => self.on_signal(signal),
                () = root.cancelled(), if !root.is_cancelled() => {}
                () = sleep => return Wake::Deadline,
            }
        }
    }

    /// The first signal triggers the shutdown; any later one forces it.
    fn on_signal(&mut self, signal: Signal) {
        self.signals_seen += 1;
        if self.signals_seen == 1 {
            self.inner.trigger(Trigger::Signal(signal));
        } else {
            self.inner.force();
        }
    }
}
